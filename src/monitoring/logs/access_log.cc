#include "monitoring/logs/access_log.h"

#include <chrono>

#include "core/logging.h"
#include "core/model_name.h"

namespace berth::logs {
namespace {

// Ids and names come from requests: bounded, and valid UTF-8 in the line.
constexpr size_t kMaxFieldBytes = 256;

void AppendField(std::string* out, std::string_view key, std::string_view value) {
  out->push_back(',');
  AppendJsonString(out, key);
  out->push_back(':');
  if (value.size() <= kMaxFieldBytes && IsValidUtf8(value)) {
    AppendJsonString(out, value);
  } else {
    AppendJsonString(out, PrintableExcerpt(value, kMaxFieldBytes));
  }
}

void AppendNumber(std::string* out, std::string_view key, uint64_t value) {
  out->push_back(',');
  AppendJsonString(out, key);
  out->push_back(':');
  *out += std::to_string(value);
}

uint64_t Micros(std::chrono::nanoseconds d) {
  return d.count() <= 0 ? 0 : static_cast<uint64_t>(d.count() / 1000);
}

}  // namespace

void AccessLog::Format(const RequestSummary& s, std::string* line) {
  const bool ok = s.status.ok();
  line->clear();
  *line += "{\"ts\":\"";
  *line += FormatTimestamp(std::chrono::system_clock::now());
  *line += ok ? "\",\"level\":\"info\"" : "\",\"level\":\"warn\"";
  *line += ",\"msg\":\"access\"";
  const std::string_view model = s.model.empty() ? s.requested : s.model;
  // A refused request's line leaves out what the door did not learn.
  if (!s.refused || !s.id.empty()) AppendField(line, "id", s.id);
  if (!s.refused || !model.empty()) AppendField(line, "model", model);
  if (!s.refused || !s.version.empty()) AppendField(line, "version", s.version);
  AppendField(line, "protocol", ProtocolName(s.timings.protocol));
  *line += ok ? ",\"ok\":true" : ",\"ok\":false";
  AppendField(line, "status", StatusCodeName(s.status.code()));
  if (s.refused) {
    *line += ",\"refused\":true";
    if (s.http_status > 0) AppendNumber(line, "http_status", static_cast<uint64_t>(s.http_status));
    if (!s.client.empty()) AppendField(line, "client", s.client);
  } else if (!ok && s.model.empty()) {
    *line += ",\"known_model\":false";
  }
  const InferenceTimings& t = s.timings;
  AppendNumber(line, "queue_us", Micros(t.queue));
  AppendNumber(line, "compute_us", Micros(t.compute_input + t.compute_infer + t.compute_output));
  AppendNumber(line, "total_us", Micros(t.total));
  if (t.batch_size > 0) AppendNumber(line, "batch_size", static_cast<uint64_t>(t.batch_size));
  AppendNumber(line, "bytes_in", s.bytes_in);
  AppendNumber(line, "bytes_out", s.bytes_out);
  *line += "}\n";
}

void AccessLog::Record(const RequestSummary& summary) {
  if (!LogEnabled(summary.status.ok() ? LogLevel::kInfo : LogLevel::kWarn)) return;
  // One buffer per thread, so that a line costs no allocation once warm.
  thread_local std::string line;
  Format(summary, &line);
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (pending_.size() + line.size() > kMaxPendingBytes) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    pending_ += line;
    wake = pending_.size() >= (64 << 10);
  }
  if (wake) wake_.notify_one();
}

void AccessLog::Start() {
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  writer_ = std::thread([this] { Run(); });
}

void AccessLog::Stop() {
  if (!writer_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  writer_.join();
}

void AccessLog::Run() {
  std::string writing;
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait_for(lock, std::chrono::milliseconds(100),
                   [this] { return stop_ || pending_.size() >= (64 << 10); });
    const bool stopping = stop_;
    writing.swap(pending_);
    lock.unlock();
    if (!writing.empty()) {
      uint64_t n = 0;
      for (char c : writing) n += c == '\n';
      if (file_->Write(writing).ok()) {
        lines_.fetch_add(n, std::memory_order_relaxed);
      } else {
        write_errors_.fetch_add(n, std::memory_order_relaxed);
      }
      writing.clear();
    } else {
      file_->Maintain();
    }
    lock.lock();
    if (stopping && pending_.empty()) return;
  }
}

}  // namespace berth::logs
