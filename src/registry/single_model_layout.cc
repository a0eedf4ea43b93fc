#include "registry/single_model_layout.h"

#include <stdlib.h>

#include <fstream>
#include <system_error>
#include <vector>

#include "core/logging.h"
#include "core/model_name.h"
#include "registry/config_parser.h"
#include "registry/repository_files.h"

namespace berth {

namespace fs = std::filesystem;

namespace {

// What the top level of a model directory holds; hidden entries (KServe's
// and the storage initializer's own files) are not looked at.
struct TopLevel {
  std::vector<fs::path> configs;
  std::vector<fs::path> onnx_files;
  std::vector<fs::path> version_dirs;
};

StatusOr<TopLevel> ReadTopLevel(const fs::path& dir) {
  TopLevel top;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) return Status::InvalidArgument("cannot read " + dir.string() + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return Status::InvalidArgument("cannot read " + dir.string() + ": " + ec.message());
    const std::string name = it->path().filename().string();
    if (name.starts_with(".")) continue;
    int64_t version = 0;
    if (IsConfigFileName(name) && it->is_regular_file(ec)) {
      top.configs.push_back(it->path());
    } else if (name.size() > 5 && name.ends_with(".onnx") && it->is_regular_file(ec)) {
      top.onnx_files.push_back(it->path());
    } else if (ParseVersionDir(name, &version) && it->is_directory(ec)) {
      top.version_dirs.push_back(it->path());
    }
  }
  return top;
}

Status Link(const fs::path& target, const fs::path& link) {
  std::error_code ec;
  fs::create_symlink(fs::absolute(target, ec), link, ec);
  if (ec) return Status::Internal("cannot link " + link.string() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<SingleModelLayout>> SingleModelLayout::Create(
    const fs::path& source, const std::string& name, const fs::path& scratch) {
  if (Status valid = ValidateModelName(name); !valid.ok()) {
    return Status::InvalidArgument("--model-name: " + valid.message());
  }
  std::error_code ec;
  if (!fs::is_directory(source, ec)) {
    return Status::NotFound("the model repository " + source.string() + " is not a directory");
  }
  if (fs::is_directory(source / name, ec)) {
    return std::unique_ptr<SingleModelLayout>(new SingleModelLayout(source, false));
  }
  ASSIGN_OR_RETURN(TopLevel top, ReadTopLevel(source));
  const bool model_dir = !top.version_dirs.empty();
  if (!model_dir && top.onnx_files.size() != 1) {
    return Status::InvalidArgument(
        source.string() + " is not a layout --model-name serves: expected " + name +
        "/ (a repository), version directories with or without a config file (one "
        "model's directory), or exactly one .onnx file (found " +
        std::to_string(top.onnx_files.size()) + ")");
  }
  if (top.configs.size() > 1) {
    return Status::InvalidArgument(source.string() + " holds more than one config file");
  }

  fs::path base = scratch;
  if (base.empty()) {
    std::error_code tmp_ec;
    base = fs::temp_directory_path(tmp_ec);
    if (tmp_ec) base = "/tmp";
  }
  std::string pattern = (base / "berth-model-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return Status::Internal("cannot make a temporary directory under " + base.string());
  }
  std::unique_ptr<SingleModelLayout> layout(new SingleModelLayout(pattern, true));
  const fs::path model = layout->repository_ / name;
  if (model_dir && !top.configs.empty()) {
    RETURN_IF_ERROR(Link(source, model));
  } else if (model_dir) {
    fs::create_directories(model, ec);
    if (ec) return Status::Internal("cannot make " + model.string() + ": " + ec.message());
    for (const fs::path& version : top.version_dirs) {
      RETURN_IF_ERROR(Link(version, model / version.filename()));
    }
    std::ofstream(model / "config.yaml") << "backend: onnx\n";
  } else {
    fs::create_directories(model / "1", ec);
    if (ec) return Status::Internal("cannot make " + model.string() + ": " + ec.message());
    RETURN_IF_ERROR(Link(top.onnx_files[0], model / "1" / "model.onnx"));
    if (!top.configs.empty()) {
      RETURN_IF_ERROR(Link(top.configs[0], model / top.configs[0].filename()));
    } else {
      // The signature comes from the graph, as for a config that declares none.
      std::ofstream(model / "config.yaml") << "backend: onnx\n";
    }
  }
  LOG_INFO("serving one model from its directory",
           {{"model", name}, {"source", source.string()}, {"repository", model.string()}});
  return layout;
}

SingleModelLayout::~SingleModelLayout() {
  if (!owned_) return;
  std::error_code ec;
  fs::remove_all(repository_, ec);  // links only: their targets are not followed
}

}  // namespace berth
