#include "server/tls/tls_config.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace berth {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class GrpcIdentityFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "berth_tls_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A new P-256 key and a self-signed certificate for it, written as PEM to
  // <name>.key and <name>.pem.
  void Issue(const std::string& name) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    ASSERT_NE(key, nullptr);
    X509* cert = X509_new();
    ASSERT_NE(cert, nullptr);
    X509_set_version(cert, 2);
    SetSerial(cert);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* subject = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, subject);
    ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
    FILE* k = std::fopen((dir_ / (name + ".key")).c_str(), "w");
    FILE* c = std::fopen((dir_ / (name + ".pem")).c_str(), "w");
    ASSERT_TRUE(k != nullptr && c != nullptr);
    PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr);
    PEM_write_X509(c, cert);
    std::fclose(k);
    std::fclose(c);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  static void SetSerial(X509* cert) {
    static long serial = 1;
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
  }

  // The files the operator gives: live.key and live.pem, copied from a pair.
  TlsConfig Live() const {
    return {(dir_ / "live.pem").string(), (dir_ / "live.key").string(), ""};
  }
  void Install(const std::string& key_from, const std::string& cert_from) {
    fs::copy_file(dir_ / (key_from + ".key"), dir_ / "live.key",
                  fs::copy_options::overwrite_existing);
    fs::copy_file(dir_ / (cert_from + ".pem"), dir_ / "live.pem",
                  fs::copy_options::overwrite_existing);
  }

  fs::path dir_;
};

TEST_F(GrpcIdentityFileTest, HoldsOnlyAMatchingPairAndKeepsTheLastOne) {
  Issue("a");
  Issue("b");
  Install("a", "a");
  auto file = GrpcIdentityFile::Create(Live());
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const fs::path path = (*file)->path();
  const std::string first = Slurp(path);
  EXPECT_EQ(first, Slurp(dir_ / "a.key") + Slurp(dir_ / "a.pem"));
  // Owner-only: the directory 0700, the file 0600.
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(path.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // What gRPC does with it: the same file as the chain and as the key.
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx, path.c_str()), 1);
  EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx, path.c_str(), SSL_FILETYPE_PEM), 1);
  EXPECT_EQ(SSL_CTX_check_private_key(ctx), 1);
  SSL_CTX_free(ctx);

  // The new key beside the old certificate (one replaced before the other):
  // refused, the file keeps the last good pair.
  Install("b", "a");
  const Status mismatched = (*file)->Update(Live());
  EXPECT_EQ(mismatched.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(mismatched.message().find("does not match"), std::string::npos) << mismatched.message();
  EXPECT_EQ(Slurp(path), first);
  // A certificate that does not load: the same.
  std::ofstream(dir_ / "live.pem")
      << "-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n";
  EXPECT_FALSE((*file)->Update(Live()).ok());
  EXPECT_EQ(Slurp(path), first);
  // Both replaced: the new pair.
  Install("b", "b");
  ASSERT_TRUE((*file)->Update(Live()).ok());
  EXPECT_EQ(Slurp(path), Slurp(dir_ / "b.key") + Slurp(dir_ / "b.pem"));
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));

  // Gone with the object.
  file->reset();
  EXPECT_FALSE(fs::exists(path.parent_path()));
}

TEST_F(GrpcIdentityFileTest, AMismatchedPairAtStartIsAnError) {
  Issue("a");
  Issue("b");
  Install("b", "a");
  auto file = GrpcIdentityFile::Create(Live());
  EXPECT_EQ(file.status().code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(
      GrpcIdentityFile::Create({(dir_ / "none.pem").string(), (dir_ / "none.key").string(), ""})
          .ok());
}

}  // namespace
}  // namespace berth
