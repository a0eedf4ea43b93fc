// A version's metadata: what a team records about a model version besides
// its bytes (when and on what it was trained, how well it scored, how the
// artifact was made). The registry stores it as one JSON object with the
// version (VersionRecord::metadata_json); this file is its schema, checked
// wherever metadata enters: a push, a directory version's metadata.json,
// an evaluation. docs/registry.md "Version metadata" documents each field.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace berth {

// Checks `json` against the schema and returns it compacted. Every field is
// optional; a field of the wrong type or range, or a top-level name the
// schema does not know (free-form values go under "tags" or "extra"), is
// InvalidArgument naming the field's path, e.g. "metadata.metrics.accuracy
// must be a number in [0, 1]".
StatusOr<std::string> CheckVersionMetadata(std::string_view json);

// An evaluation recorded against a version after registration (the version
// itself stays immutable): {"metrics": {...}, "dataset": {...}, "rows": N}.
// "metrics" is required and checked as the metadata's "metrics" is;
// returns the object compacted.
StatusOr<std::string> CheckEvaluation(std::string_view json);

}  // namespace berth
