#include "registry/version_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "registry/artifact_digest.h"

namespace berth {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(VersionFilesTest, NamesStayInsideTheVersionsDirectory) {
  for (const char* good : {"model.py", "features.py", "pkg/__init__.py", "a/b/c.txt", ".hidden"}) {
    EXPECT_TRUE(ValidateVersionFileName(good).ok()) << good;
  }
  for (const char* bad : {"../x", "/etc/passwd", "a/../../x", "", "a//b", "./x", "a\\b",
                          "berth-version.json"}) {
    EXPECT_EQ(ValidateVersionFileName(bad).code(), Status::Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ValidateVersionFileName(std::string("a\0b", 3)).code(),
            Status::Code::kInvalidArgument);
}

TEST(VersionFilesTest, ListsAreBoundedUniqueAndNeverAFileAndADirectory) {
  EXPECT_FALSE(ValidateVersionFiles({}).ok());
  EXPECT_THAT(ValidateVersionFiles({{"a", "", 1}, {"a", "", 1}}).message(), HasSubstr("twice"));
  EXPECT_THAT(ValidateVersionFiles({{"a", "", 1}, {"a/b", "", 1}}).message(),
              HasSubstr("both a file and a directory"));
  EXPECT_THAT(ValidateVersionFiles({{"a", "", kMaxVersionFilesBytes}, {"b", "", 1}}).message(),
              HasSubstr("total more than"));
  EXPECT_FALSE(ValidateVersionFiles({{"a", "", -1}}).ok());
  std::vector<VersionFile> many;
  for (size_t i = 0; i <= kMaxVersionFiles; ++i) many.push_back({"f" + std::to_string(i), "", 0});
  EXPECT_THAT(ValidateVersionFiles(many).message(), HasSubstr("more than the"));
  many.pop_back();
  EXPECT_TRUE(ValidateVersionFiles(many).ok());
}

TEST(VersionFilesTest, TheSetsDigestIgnoresOrderAndChangesWithAnyFile) {
  const std::string a = Sha256Bytes("a").digest, b = Sha256Bytes("b").digest;
  const std::string digest = FilesDigest({{"x.py", a, 1}, {"y.py", b, 1}});
  EXPECT_EQ(digest, FilesDigest({{"y.py", b, 1}, {"x.py", a, 1}}));
  EXPECT_NE(digest, FilesDigest({{"x.py", b, 1}, {"y.py", a, 1}}));
  EXPECT_NE(digest, FilesDigest({{"x.py", a, 1}, {"z.py", b, 1}}));
  EXPECT_EQ(FilesDigest({}), "");
}

TEST(VersionFilesTest, TheStoresColumnRoundTripsAndRefusesWhatAStoreShouldNotHold) {
  const std::vector<VersionFile> files = {{"model.py", Sha256Bytes("m").digest, 1},
                                          {"pkg/x.py", Sha256Bytes("x").digest, 1}};
  auto back = ParseVersionFilesJson(VersionFilesJson(files));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, files);
  EXPECT_TRUE(ParseVersionFilesJson("")->empty());
  const std::string digest = Sha256Bytes("m").digest;
  for (const std::string bad :
       {std::string("{}"), std::string("[1]"), "[{\"name\":\"../x\",\"digest\":\"" + digest +
                                                   "\",\"size\":1}]",
        std::string("[{\"name\":\"x\",\"digest\":\"sha256:zz\",\"size\":1}]")}) {
    EXPECT_EQ(ParseVersionFilesJson(bad).status().code(), Status::Code::kInvalidArgument) << bad;
  }
}

TEST(VersionFilesTest, APushsFileListIsCheckedBeforeItsBytesAreRead) {
  auto files = ParsePushedFiles(
      R"({"files": [{"name": "model.py", "size": 3}, {"name": "lib/features.py", "size": 4}]})", 7);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ(files->at(1).name, "lib/features.py");
  EXPECT_EQ(files->at(1).offset, 3u);
  EXPECT_EQ(files->at(1).size, 4u);
  EXPECT_THAT(ParsePushedFiles(R"({"files": [{"name": "../x", "size": 1}]})", 1).status().message(),
              HasSubstr("'..'"));
  EXPECT_THAT(ParsePushedFiles(R"({"files": [{"name": "a", "size": 1}]})", 2).status().message(),
              HasSubstr("add up to 1 bytes, but 2"));
  EXPECT_THAT(ParsePushedFiles(R"({"files": [{"name": "a", "size": 5000000000}]})", 1)
                  .status()
                  .message(),
              HasSubstr("total more than"));
  EXPECT_THAT(ParsePushedFiles(R"({"files": [], "x": 1})", 0).status().message(),
              HasSubstr("unknown field 'x'"));
  EXPECT_FALSE(ParsePushedFiles(R"({"files": [{"name": "a", "size": -1}]})", 0).ok());
  EXPECT_FALSE(ParsePushedFiles(R"({"files": [{"name": "a"}]})", 0).ok());
  EXPECT_FALSE(ParsePushedFiles("[", 0).ok());
}

TEST(VersionFilesTest, ADirectoryIsListedWithoutBytecodeAndRefusedWithALink) {
  std::string tmpl = (fs::temp_directory_path() / "berth_files_test_XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const fs::path dir = tmpl;
  fs::create_directories(dir / "pkg");
  fs::create_directories(dir / "__pycache__");
  std::ofstream(dir / "model.py") << "import features\n";
  std::ofstream(dir / "pkg" / "__init__.py") << "";
  std::ofstream(dir / "__pycache__" / "features.cpython-311.pyc") << "bytecode";
  std::ofstream(dir / "berth-version.json") << "{}";
  auto files = ListVersionFiles(dir);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ(files->at(0).name, "model.py");
  EXPECT_EQ(files->at(0).digest, Sha256Bytes("import features\n").digest);
  EXPECT_EQ(files->at(1).name, "pkg/__init__.py");
  auto read = ReadVersionFiles(dir, *files);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->at(0), "import features\n");
  fs::create_symlink("/etc/hostname", dir / "outside");
  EXPECT_THAT(ListVersionFiles(dir).status().message(), HasSubstr("'outside' is a symbolic link"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace berth
