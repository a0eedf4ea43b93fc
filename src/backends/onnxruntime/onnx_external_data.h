// Which files an ONNX model reads its tensors from, and whether they stay in
// the model's own directory.
//
// An ONNX tensor may keep its data in another file (`data_location:
// EXTERNAL`, with a `location` entry in `external_data`) that ONNX Runtime
// opens relative to the model file's directory. A hostile artifact could
// name `../../etc/shadow`, an absolute path or a symlink leaving the
// directory, and have the server read (and, through the model's outputs,
// disclose) any file it can open. The backend checks every location before
// it hands the model to ONNX Runtime.
//
// The model is read with a minimal protobuf wire-format scanner rather than
// the ONNX schema: the schema is not in the tree, parsing the whole
// ModelProto would copy every weight, and only a few fields matter (the
// messages that can hold a TensorProto, and the tensor's name and external
// data). Everything else is skipped by its length without being copied.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace berth {

struct ExternalDataRef {
  std::string tensor;    // the tensor's name (may be empty)
  std::string location;  // as written in the model
};

// Every tensor of the serialized ModelProto `model` that names an external
// `location`: initializers, sparse initializers, tensors in node attributes,
// in subgraphs (If, Loop, Scan bodies), in functions and in training info.
// InvalidArgument if the bytes are not a well-formed protobuf message or
// nest deeper than protobuf's own limit. Never reads past `model`.
StatusOr<std::vector<ExternalDataRef>> ExternalDataLocations(std::string_view model);

// InvalidArgument naming the tensor and the location if any external data
// location of the model at `model_file` is empty, absolute, has a `..`
// component, or resolves (following symlinks) outside the model file's
// directory. OK for a model with no external data, and for a file that
// cannot be read or is not a protobuf message (the scanner skips what
// protobuf skips, groups included, so ONNX Runtime cannot parse it either
// and refuses it with its own reason). Never throws.
Status CheckExternalData(const std::filesystem::path& model_file);

}  // namespace berth
