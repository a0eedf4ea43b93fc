// The layout KServe's storage initializer leaves in /mnt/models, served as a
// repository of one model named by --model-name (KServe passes the
// InferenceService's name). Three layouts are accepted:
//   DIR/NAME/...            DIR is already a repository holding NAME: used as it is;
//   DIR/config.yaml, DIR/1/model.onnx, ...
//                           DIR is one model's directory (version directories, and a
//                           config file or none);
//   DIR/model.onnx          DIR holds one ONNX file (any name ending .onnx),
//                           with or without a config file beside it: version 1.
// For the last two, a repository is built of links in a new temporary
// directory (the source may be read-only, as /mnt/models is), and removed
// with this object; the source is never written.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "core/status.h"

namespace berth {

class SingleModelLayout {
 public:
  // The repository that serves `source` as the model `name`. `scratch` is
  // where the temporary repository is made ("" for the system's temporary
  // directory). InvalidArgument, naming the layouts, when `source` is none
  // of them; NotFound when it does not exist.
  static StatusOr<std::unique_ptr<SingleModelLayout>> Create(
      const std::filesystem::path& source, const std::string& name,
      const std::filesystem::path& scratch = {});

  ~SingleModelLayout();
  SingleModelLayout(const SingleModelLayout&) = delete;
  SingleModelLayout& operator=(const SingleModelLayout&) = delete;

  // The directory to pass as the model repository.
  const std::filesystem::path& repository() const { return repository_; }

 private:
  SingleModelLayout(std::filesystem::path repository, bool owned)
      : repository_(std::move(repository)), owned_(owned) {}

  std::filesystem::path repository_;
  bool owned_;  // repository_ is our temporary directory, removed with us
};

}  // namespace berth
