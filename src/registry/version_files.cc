#include "registry/version_files.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <set>
#include <system_error>

#include "core/model_name.h"
#include "registry/artifact_digest.h"
#include "registry/model_repository.h"
#include "registry/repository_files.h"

namespace berth {
namespace fs = std::filesystem;

namespace {

bool IsDigest(std::string_view digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (!digest.starts_with(kPrefix) || digest.size() != kPrefix.size() + 64) return false;
  return std::all_of(digest.begin() + kPrefix.size(), digest.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

}  // namespace

Status ValidateVersionFileName(std::string_view name) {
  const std::string why = RelativePathProblem(name);
  if (!why.empty()) {
    return Status::InvalidArgument("file name '" + PrintableExcerpt(name) + "': " + why);
  }
  if (name == kVersionRecordFile) {
    return Status::InvalidArgument(std::string("file name '") + kVersionRecordFile +
                                   "' is reserved: Berth writes it");
  }
  return Status::Ok();
}

Status ValidateVersionFiles(const std::vector<VersionFile>& files) {
  if (files.empty()) return Status::InvalidArgument("a version has at least one file");
  if (files.size() > kMaxVersionFiles) {
    return Status::InvalidArgument(std::to_string(files.size()) + " files, more than the " +
                                   std::to_string(kMaxVersionFiles) + " a version may hold");
  }
  std::set<std::string_view> names;
  int64_t total = 0;
  for (const VersionFile& f : files) {
    RETURN_IF_ERROR(ValidateVersionFileName(f.name));
    if (!names.insert(f.name).second) {
      return Status::InvalidArgument("file name '" + PrintableExcerpt(f.name) + "' appears twice");
    }
    if (f.size < 0 || f.size > kMaxVersionFilesBytes - total) {
      return Status::InvalidArgument("the files total more than the " +
                                     std::to_string(kMaxVersionFilesBytes) +
                                     " bytes a version may hold");
    }
    total += f.size;
  }
  for (std::string_view name : names) {
    // "a" and "a/b": one path cannot be both a file and a directory.
    const std::string prefix = std::string(name) + "/";
    const auto next = names.lower_bound(prefix);
    if (next != names.end() && next->starts_with(prefix)) {
      return Status::InvalidArgument("'" + PrintableExcerpt(name) +
                                     "' is both a file and a directory");
    }
  }
  return Status::Ok();
}

std::string FilesDigest(const std::vector<VersionFile>& files) {
  if (files.empty()) return "";
  std::vector<const VersionFile*> sorted;
  for (const VersionFile& f : files) sorted.push_back(&f);
  std::sort(sorted.begin(), sorted.end(),
            [](const VersionFile* a, const VersionFile* b) { return a->name < b->name; });
  std::string lines;
  for (const VersionFile* f : sorted) {
    lines += std::string_view(f->digest).substr(std::string_view("sha256:").size());
    lines += "  " + f->name + "\n";
  }
  return Sha256Bytes(lines).digest;
}

std::string VersionFilesJson(const std::vector<VersionFile>& files) {
  if (files.empty()) return "";
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  for (const VersionFile& f : files) {
    w.StartObject();
    w.Key("name");
    w.String(f.name.data(), static_cast<rapidjson::SizeType>(f.name.size()));
    w.Key("digest");
    w.String(f.digest.data(), static_cast<rapidjson::SizeType>(f.digest.size()));
    w.Key("size");
    w.Int64(f.size);
    w.EndObject();
  }
  w.EndArray();
  return std::string(buf.GetString(), buf.GetSize());
}

StatusOr<std::vector<VersionFile>> ParseVersionFilesJson(std::string_view json) {
  std::vector<VersionFile> out;
  if (json.empty()) return out;
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  const Status bad = Status::InvalidArgument("the store's file list of a version is malformed");
  if (doc.HasParseError() || !doc.IsArray()) return bad;
  for (const auto& item : doc.GetArray()) {
    if (!item.IsObject()) return bad;
    const auto name = item.FindMember("name");
    const auto digest = item.FindMember("digest");
    const auto size = item.FindMember("size");
    if (name == item.MemberEnd() || !name->value.IsString() || digest == item.MemberEnd() ||
        !digest->value.IsString() || size == item.MemberEnd() || !size->value.IsInt64()) {
      return bad;
    }
    VersionFile f;
    f.name.assign(name->value.GetString(), name->value.GetStringLength());
    f.digest.assign(digest->value.GetString(), digest->value.GetStringLength());
    f.size = size->value.GetInt64();
    if (!IsDigest(f.digest)) return bad;
    out.push_back(std::move(f));
  }
  RETURN_IF_ERROR(ValidateVersionFiles(out));
  return out;
}

StatusOr<std::vector<VersionFile>> ListVersionFiles(const fs::path& dir) {
  std::vector<VersionFile> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().lexically_relative(dir).generic_string();
    const fs::file_status status = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_directory(status)) {
      if (it->path().filename() == "__pycache__") it.disable_recursion_pending();
      continue;
    }
    if (name == kVersionRecordFile) continue;
    if (!fs::is_regular_file(status)) {
      return Status::InvalidArgument("'" + PrintableExcerpt(name) + "' is " +
                                     (fs::is_symlink(status) ? "a symbolic link"
                                                             : "not a regular file") +
                                     ": a version holds regular files only");
    }
    if (out.size() == kMaxVersionFiles) {
      return Status::InvalidArgument("more than the " + std::to_string(kMaxVersionFiles) +
                                     " files a version may hold");
    }
    ASSIGN_OR_RETURN(ArtifactDigest digest, Sha256File(it->path()));
    out.push_back({name, digest.digest, digest.size});
  }
  if (ec) return Status::Internal("cannot list a version's files: " + ec.message());
  std::sort(out.begin(), out.end(),
            [](const VersionFile& a, const VersionFile& b) { return a.name < b.name; });
  RETURN_IF_ERROR(ValidateVersionFiles(out));
  return out;
}

StatusOr<std::vector<std::string>> ReadVersionFiles(const fs::path& dir,
                                                    const std::vector<VersionFile>& files) {
  std::vector<std::string> out;
  for (const VersionFile& f : files) {
    ASSIGN_OR_RETURN(std::string bytes, ReadFileBytes(dir / f.name));
    if (Sha256Bytes(bytes).digest != f.digest) {
      return Status::FailedPrecondition("'" + PrintableExcerpt(f.name) +
                                        "' changed since it was hashed");
    }
    out.push_back(std::move(bytes));
  }
  return out;
}

StatusOr<std::vector<PushedFile>> ParsePushedFiles(std::string_view json, uint64_t available) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  const auto refuse = [](const std::string& why) {
    return Status::InvalidArgument("the push's file list (Berth-Files-Length): " + why);
  };
  if (doc.HasParseError() || !doc.IsObject()) return refuse("it is not a JSON object");
  for (const auto& member : doc.GetObject()) {
    if (std::string_view(member.name.GetString()) != "files") {
      return refuse("unknown field '" + PrintableExcerpt(member.name.GetString()) +
                    "' (expected \"files\")");
    }
  }
  const auto list = doc.FindMember("files");
  if (list == doc.MemberEnd() || !list->value.IsArray()) {
    return refuse("\"files\" must be an array of {\"name\", \"size\"}");
  }
  if (list->value.Size() > kMaxVersionFiles) {
    return refuse(std::to_string(list->value.Size()) + " files, more than the " +
                  std::to_string(kMaxVersionFiles) + " a version may hold");
  }
  std::vector<VersionFile> checked;
  for (const auto& item : list->value.GetArray()) {
    if (!item.IsObject() || item.MemberCount() != 2 || !item.HasMember("name") ||
        !item["name"].IsString() || !item.HasMember("size") || !item["size"].IsInt64() ||
        item["size"].GetInt64() < 0) {
      return refuse("each file must be {\"name\": string, \"size\": bytes}");
    }
    checked.push_back({std::string(item["name"].GetString(), item["name"].GetStringLength()),
                       "", item["size"].GetInt64()});
  }
  if (Status valid = ValidateVersionFiles(checked); !valid.ok()) return refuse(valid.message());
  std::vector<PushedFile> out;
  uint64_t offset = 0;
  for (VersionFile& f : checked) {
    out.push_back({std::move(f.name), offset, static_cast<uint64_t>(f.size)});
    offset += static_cast<uint64_t>(f.size);
  }
  if (offset != available) {
    return refuse("the files' sizes add up to " + std::to_string(offset) + " bytes, but " +
                  std::to_string(available) + " follow the list");
  }
  return out;
}

Status CheckVersionContents(const VersionRecord& record, const VersionFiles& files) {
  if (files.contents.empty()) return Status::Ok();
  const std::string what =
      "version " + std::to_string(record.version) + " of model '" + record.model + "'";
  if (files.contents.size() != record.files.size()) {
    return Status::InvalidArgument(what + ": its files' bytes do not match its file list");
  }
  for (const VersionFile& f : record.files) {
    const auto bytes = files.contents.find(f.name);
    if (bytes == files.contents.end() || Sha256Bytes(bytes->second).digest != f.digest) {
      return Status::InvalidArgument(what + ": the bytes of '" + PrintableExcerpt(f.name) +
                                     "' are not " + f.digest);
    }
  }
  return Status::Ok();
}

}  // namespace berth
