#include "backends/onnxruntime/onnx_external_data.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace berth {
namespace {

namespace fs = std::filesystem;

// Protobuf wire format, just enough to write the fields the scanner reads.
std::string Varint(uint64_t v) {
  std::string out;
  do {
    const auto byte = static_cast<char>((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    out.push_back(byte);
    v >>= 7;
  } while (v != 0);
  return out;
}
std::string Bytes(uint32_t field, const std::string& bytes) {
  return Varint(uint64_t{field} << 3 | 2) + Varint(bytes.size()) + bytes;
}
std::string Number(uint32_t field, uint64_t v) { return Varint(uint64_t{field} << 3) + Varint(v); }

// A TensorProto named `name` whose data is in `location`.
std::string ExternalTensor(const std::string& name, const std::string& location) {
  return Bytes(8, name) + Number(14, 1) +  // name, data_location: EXTERNAL
         Bytes(13, Bytes(1, "location") + Bytes(2, location)) +
         Bytes(13, Bytes(1, "offset") + Bytes(2, "0")) + Bytes(9, std::string(8, '\0'));
}
// A ModelProto whose graph holds `initializer` (field 5 of GraphProto).
std::string ModelWithInitializer(const std::string& tensor) {
  return Number(1, 8) + Bytes(7, Bytes(2, "graph") + Bytes(5, tensor));  // ir_version, graph
}

TEST(ExternalDataLocationsTest, FindsInitializersAndTensorsNestedInSubgraphs) {
  // An If node whose then-branch has an external initializer, and a
  // Constant whose sparse value's indices are external.
  const std::string branch = Bytes(5, ExternalTensor("inner", "../inner.bin"));
  const std::string if_node = Bytes(5, Bytes(1, "then_branch") + Bytes(6, branch));
  const std::string sparse = Bytes(2, ExternalTensor("idx", "/abs/idx.bin"));
  const std::string const_node = Bytes(5, Bytes(1, "sparse_value") + Bytes(22, sparse));
  const std::string graph = Bytes(1, if_node) + Bytes(1, const_node) +
                            Bytes(5, ExternalTensor("w", "weights.bin")) +
                            Bytes(5, Bytes(8, "inline") + Bytes(9, "abcd"));
  auto refs = ExternalDataLocations(Number(1, 8) + Bytes(7, graph));
  ASSERT_TRUE(refs.ok()) << refs.status().ToString();
  ASSERT_EQ(refs->size(), 3u);
  EXPECT_EQ((*refs)[0].tensor, "inner");
  EXPECT_EQ((*refs)[0].location, "../inner.bin");
  EXPECT_EQ((*refs)[1].tensor, "idx");
  EXPECT_EQ((*refs)[1].location, "/abs/idx.bin");
  EXPECT_EQ((*refs)[2].tensor, "w");
  EXPECT_EQ((*refs)[2].location, "weights.bin");
}

TEST(ExternalDataLocationsTest, FindsTensorsInFunctionsAndTrainingInfo) {
  const std::string node = Bytes(5, Bytes(1, "value") + Bytes(5, ExternalTensor("f", "f.bin")));
  const std::string function = Bytes(7, node);
  const std::string training = Bytes(1, Bytes(5, ExternalTensor("t", "t.bin")));
  auto refs = ExternalDataLocations(Bytes(25, function) + Bytes(20, training));
  ASSERT_TRUE(refs.ok()) << refs.status().ToString();
  ASSERT_EQ(refs->size(), 2u);
  EXPECT_EQ((*refs)[0].location, "f.bin");
  EXPECT_EQ((*refs)[1].location, "t.bin");
}

TEST(ExternalDataLocationsTest, MalformedBytesAreRefused) {
  const std::string model = ModelWithInitializer(ExternalTensor("w", "w.bin"));
  for (size_t cut : {size_t{1}, model.size() / 2, model.size() - 1}) {
    auto refs = ExternalDataLocations(model.substr(0, cut));
    EXPECT_EQ(refs.status().code(), Status::Code::kInvalidArgument) << cut;
  }
  EXPECT_FALSE(ExternalDataLocations(std::string("\x3b", 1)).ok());  // a group never ended
  EXPECT_FALSE(ExternalDataLocations(std::string("\x3c", 1)).ok());  // an end without a start
  EXPECT_FALSE(ExternalDataLocations(std::string("\x3b\x44", 2)).ok());  // ended by another field
  EXPECT_FALSE(ExternalDataLocations(std::string("\x00", 1)).ok());  // field 0
  EXPECT_TRUE(ExternalDataLocations("").ok());
}

TEST(ExternalDataLocationsTest, GroupsAreSkippedAsProtobufSkipsThem) {
  // An unknown group (field 30) holding a nested group and a length-delimited
  // field, before the graph: skipped, and the tensor after it still found.
  const std::string group = "\xf3\x01" + Bytes(1, "x") + "\x0b\x0c" + "\xf4\x01";
  auto refs = ExternalDataLocations(group + ModelWithInitializer(ExternalTensor("w", "w.bin")));
  ASSERT_TRUE(refs.ok()) << refs.status().ToString();
  ASSERT_EQ(refs->size(), 1u);
  EXPECT_EQ((*refs)[0].location, "w.bin");
}

TEST(ExternalDataLocationsTest, NestingDeeperThanProtobufAllowsIsRefused) {
  std::string graph;
  for (int i = 0; i < 120; ++i) graph = Bytes(1, Bytes(5, Bytes(6, graph)));
  auto refs = ExternalDataLocations(Bytes(7, graph));
  EXPECT_EQ(refs.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(refs.status().message().find("deep"), std::string::npos);
}

class CheckExternalDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "berth_external_data_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ / "model" / "1";
    fs::create_directories(dir_);
    Write(root_ / "secret.bin", "secret!!");
    Write(dir_ / "weights.bin", "weights!");
  }
  void TearDown() override { fs::remove_all(root_); }

  static void Write(const fs::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary) << bytes;
  }
  Status Check(const std::string& location) {
    Write(dir_ / "model.onnx", ModelWithInitializer(ExternalTensor("w", location)));
    return CheckExternalData(dir_ / "model.onnx");
  }

  fs::path root_, dir_;
};

TEST_F(CheckExternalDataTest, LocationsInsideTheVersionDirectoryAreAccepted) {
  EXPECT_TRUE(Check("weights.bin").ok());
  EXPECT_TRUE(Check("./weights.bin").ok());
  fs::create_directories(dir_ / "data");
  Write(dir_ / "data" / "w.bin", "weights!");
  EXPECT_TRUE(Check("data/w.bin").ok());
  fs::create_symlink("weights.bin", dir_ / "alias.bin");
  EXPECT_TRUE(Check("alias.bin").ok());
  Write(dir_ / "model.onnx", ModelWithInitializer(Bytes(8, "inline") + Bytes(9, "abcd")));
  EXPECT_TRUE(CheckExternalData(dir_ / "model.onnx").ok());
}

TEST_F(CheckExternalDataTest, LocationsLeavingTheDirectoryAreRefusedWithTheReason) {
  Status s = Check("../../secret.bin");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("tensor 'w' takes its data from '../../secret.bin'"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("'..'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("model.onnx"), std::string::npos) << s.message();

  s = Check((root_ / "secret.bin").string());
  EXPECT_NE(s.message().find("an absolute path"), std::string::npos) << s.message();

  s = Check("data/../../secret.bin");
  EXPECT_NE(s.message().find("'..'"), std::string::npos) << s.message();

  fs::create_symlink(root_ / "secret.bin", dir_ / "link.bin");
  s = Check("link.bin");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("symlink"), std::string::npos) << s.message();

  fs::create_directory_symlink(root_, dir_ / "up");
  s = Check("up/secret.bin");
  EXPECT_NE(s.message().find("symlink"), std::string::npos) << s.message();

  EXPECT_FALSE(Check("").ok());
  EXPECT_FALSE(Check(std::string("w\0.bin", 6)).ok());
}

// ONNX Runtime refuses these with its own reason, naming the file.
TEST_F(CheckExternalDataTest, AnUnreadableOrMalformedFileIsLeftToOnnxRuntime) {
  EXPECT_TRUE(CheckExternalData(dir_ / "missing.onnx").ok());
  EXPECT_TRUE(CheckExternalData(dir_).ok());  // a directory
  Write(dir_ / "model.onnx", "\x3a\xff\xff\xff\xff\x0f");
  EXPECT_TRUE(CheckExternalData(dir_ / "model.onnx").ok());
}

}  // namespace
}  // namespace berth
