// Fuzz target: model names and versions as requests send them, and the
// repository calls they reach. The first byte picks the check:
//   0: ValidateModelName: a name it accepts is safe as a path component;
//   1: ParseVersionNumber: what it accepts is a canonical positive integer;
//   2: ModelRepository::LoadModel / UnloadModel over a small repository with
//      link loops: whatever the name, a Status comes back (no throw, no
//      abort), nothing is published under an invalid name, and no message
//      shows the repository's absolute path.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/model_manager.h"
#include "core/model_name.h"
#include "registry/model_repository.h"

namespace {

namespace fs = std::filesystem;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

// A repository with one model directory, a link loop and a looping model file.
struct Repository {
  Repository() {
    std::string tmpl = (fs::temp_directory_path() / "berth_name_fuzz_XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) Fail("mkdtemp");
    root = tmpl;
    fs::create_directories(root / "m" / "1");
    std::ofstream(root / "m" / "config.yaml") << "{}\n";
    fs::create_directory_symlink(root / "loop", root / "loop");
    fs::create_symlink(root / "m" / "1" / "model.onnx", root / "m" / "1" / "model.onnx");
    repository = std::make_unique<berth::ModelRepository>(
        root, std::map<std::string, berth::BackendFactory*>{}, &manager);
  }
  ~Repository() {
    std::error_code ignored;
    fs::remove_all(root, ignored);
  }
  fs::path root;
  berth::ModelManager manager;
  std::unique_ptr<berth::ModelRepository> repository;
};

void CheckRepository(const std::string& name) {
  static Repository repo;
  const bool valid = berth::ValidateModelName(name).ok();
  for (const berth::Status& s : {repo.repository->LoadModel(name), repo.repository->UnloadModel(name)}) {
    if (!valid && s.code() != berth::Status::Code::kInvalidArgument) {
      Fail("an invalid name must be INVALID_ARGUMENT: " + s.ToString());
    }
    // (A name that itself spells the path is echoed, not leaked.)
    if (s.message().find(repo.root.string()) != std::string::npos &&
        name.find(repo.root.string()) == std::string::npos) {
      Fail("a message shows the repository's path: " + s.message());
    }
  }
  for (const auto& entry : repo.manager.List()) {
    if (!berth::ValidateModelName(entry.name).ok()) Fail("published an invalid name");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      if (!berth::ValidateModelName(text).ok()) return 0;
      if (text.size() > berth::kMaxModelNameBytes || text[0] == '.' ||
          text.find_first_of(std::string("/\\\0", 3)) != std::string::npos) {
        Fail("accepted an unsafe name");
      }
      return 0;
    }
    case 1: {
      auto version = berth::ParseVersionNumber(text);
      if (version.ok() && (*version <= 0 || std::to_string(*version) != text)) {
        Fail("accepted a non-canonical version: " + text);
      }
      return 0;
    }
    default:
      CheckRepository(text);
      return 0;
  }
}
