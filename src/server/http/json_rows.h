// Row-format JSON: a list with one entry per example, as TF Serving's
// "instances", the row route (/v2/models/{m}/infer_rows) and the cloud
// routes (SageMaker, Vertex AI, Azure ML) send it, assembled into one batched
// tensor per model input; and model outputs split back into one entry per row.
//
// Every input's first dimension is the batch; the rest of its shape (the
// per-row shape) is read from the JSON values. A per-row value may leave out
// trailing dimensions of size 1: a scalar stands for a [1] feature, which is
// how skl2onnx declares one column of a DataFrame ([-1, 1]).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "core/status.h"
#include "core/tensor.h"
#include "server/http/json_tensor.h"

namespace berth::http {

// InvalidArgument naming the first member of `object` that is not in
// `allowed`; `where` names the object in the message ("the request").
Status CheckMembers(const rapidjson::Value& object, std::initializer_list<std::string_view> allowed,
                    std::string_view where);

// "'a', 'b'": the names of `specs`, for error messages.
std::string QuotedNames(const std::vector<TensorSpec>& specs);

// The shape of `value` (nested arrays of equal lengths; anything else is a
// leaf) read against `pattern`, a declared shape in which -1 matches any
// size. Dimensions that `value` leaves out at the end are 1 where `pattern`
// allows it. InvalidArgument, naming `what`, for ragged arrays, more
// dimensions than `pattern` has, or a size that contradicts `pattern`.
StatusOr<std::vector<int64_t>> ResolveJsonShape(const rapidjson::Value& value,
                                                std::span<const int64_t> pattern,
                                                std::string_view what);

// How the entries of a row list name the model's inputs.
enum class RowForm {
  // Each row is an object {input: value}; or, for a model with exactly one
  // input, each row is that input's value (TF Serving's "instances").
  kAuto,
  // Each row is an object {input: value}.
  kNamed,
};

// Builds the tensors of a row list one row at a time, so that a reader can
// hand over each row as soon as it is parsed and drop it: the list is never
// held whole. Each input's elements go straight into its tensor. The checks
// and messages are TensorsFromRows', row by row.
class RowsBuilder {
 public:
  // `inputs` must outlive the builder. `reserve_rows` (best effort) sizes the
  // storage when the first row shows how many elements a row has.
  RowsBuilder(const std::vector<TensorSpec>& inputs, RowForm form, std::string_view list_name,
              int64_t reserve_rows = 0);
  ~RowsBuilder();
  RowsBuilder(const RowsBuilder&) = delete;
  RowsBuilder& operator=(const RowsBuilder&) = delete;

  // Before the first Add: how many rows to reserve storage for.
  void set_reserve_rows(int64_t rows) { reserve_rows_ = rows; }

  // Before the first Add: TF Serving's binary strings. A value {"b64":
  // "<base64>"} is the decoded bytes of one BYTES element (see
  // JsonTensorBuilder::set_base64_objects), and a row that is such an object
  // is a value of the model's one input, not an object naming inputs.
  void set_base64_objects(bool on) { base64_objects_ = on; }

  // Adds the next row (the list's entry number rows()). After an error the
  // builder must not be used again.
  Status Add(const rapidjson::Value& row);
  int64_t rows() const { return rows_; }

  // One tensor per input, of shape [rows, per-row shape...]; InvalidArgument
  // if no row was added (the list is empty).
  StatusOr<std::vector<Tensor>> Finish();

 private:
  struct Column;
  std::string RowName(int64_t r) const;
  Status CheckForm(const rapidjson::Value& row);
  // Whether `row` is an object {input name: value}.
  bool IsNamed(const rapidjson::Value& row) const;

  const std::vector<TensorSpec>& inputs_;
  const RowForm form_;
  const std::string list_name_;
  int64_t reserve_rows_;
  int64_t rows_ = 0;
  bool named_ = false;
  bool base64_objects_ = false;
  std::vector<std::unique_ptr<Column>> columns_;
};

// One tensor per entry of `inputs`, in that order, from `rows` (a JSON array
// with one entry per example); `list_name` names the list in messages
// ("instances"). Tensor shapes are [rows, per-row shape...]. InvalidArgument,
// naming the row and the input, for: a list that is not an array or is empty;
// rows of mixed or wrong form; an unknown, missing or repeated input name; per-row
// values of different shapes; an input without a batch dimension; elements
// whose JSON type does not fit the input's datatype.
StatusOr<std::vector<Tensor>> TensorsFromRows(const rapidjson::Value& rows,
                                              const std::vector<TensorSpec>& inputs, RowForm form,
                                              std::string_view list_name);

// Where a JSON body keeps its row list, and the messages that refuse a body
// of another form.
struct RowsBody {
  // {"<key>": [row, ...]}: exactly one of these keys names the list.
  std::vector<std::string_view> list_keys;
  // The body may also be the list itself, [row, ...], named "rows" in messages.
  bool bare_list = false;
  // The object may also have "parameters", which must be an object and is ignored.
  bool parameters = false;
  RowForm row_form = RowForm::kAuto;
  // {"b64": "<base64>"} elements are BYTES values (RowsBuilder::set_base64_objects).
  bool base64_objects = false;
  // The body is neither an object nor (where allowed) a list.
  std::string not_object;
  // "the request has an unknown field '<key>' (expected <expected>)".
  std::string expected;
  // The object names no list.
  std::string missing;
};

// The tensors of the row list in `body`, as TensorsFromRows makes them from
// the list. The body is read with ReadJson, not held as a document: each row
// is built on its own as soon as it ends, handed to a RowsBuilder and
// dropped, so memory stays near the body and the tensors. Errors, the first
// of: malformed JSON or a repeated key (as ParseJson); in the order of the
// body's members, a body of the wrong form, "parameters" not an object, an
// unknown field, two list keys; no list; a list that is not an array
// ("'<key>' must be a list of rows"); then the rows' (as TensorsFromRows).
StatusOr<std::vector<Tensor>> ReadRowsBody(std::string_view body, const RowsBody& form,
                                           const std::vector<TensorSpec>& inputs);

// Whether a row of predictions names its outputs.
enum class OutputNames {
  kUnlessSingle,  // a model with one output gives that output's value per row (TF Serving)
  kAlways,        // every row is an object {output: value}
};

// What a row door tells a client whose output holds BYTES that are not
// UTF-8: row formats have no binary form, the v2 and gRPC doors do.
inline constexpr std::string_view kRowsBinaryRemedy =
    "ask for it as binary data through POST /v2/models/{model}/infer (parameter "
    "\"binary_data_output\": true, or the output's \"binary_data\": true) or gRPC";

// Writes a JSON array with one entry per row: each output split along its
// first dimension, a per-row value nested by the rest of its shape (a scalar
// for outputs of shape [rows]), BYTES elements as `bytes` says.
// FailedPrecondition, with nothing written, if an output's first dimension
// is not `rows`, or (kText) if a BYTES element is not valid UTF-8
// (CheckBytesAreText, with kRowsBinaryRemedy).
Status WriteRowPredictions(std::span<const Tensor> outputs, int64_t rows, OutputNames names,
                           JsonWriter* writer, BytesEncoding bytes = BytesEncoding::kText);

}  // namespace berth::http
