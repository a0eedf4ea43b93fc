#include "monitoring/logs/payload_log.h"

#include <unistd.h>

#include <algorithm>
#include <optional>

#include "net/http_client.h"
#include "core/logging.h"
#include "core/model.h"
#include "monitoring/logs/cloud_event.h"

namespace berth::logs {

// What one request leaves for the writer: both events' contents.
struct PayloadLog::Pair : InferenceSample {
  std::string id;
  std::string model;
  std::string version;
  Protocol protocol = Protocol::kUnknown;
  std::chrono::system_clock::time_point request_time;
  std::vector<Tensor> inputs;  // redacted ones without data
  std::chrono::system_clock::time_point response_time;
  Status status;
  std::vector<Tensor> outputs;  // likewise
  uint64_t bytes = 0;
  // The names of the tensors copied without data: --payload-log-redact
  // and the version's monitoring.redact.
  std::set<std::string> redacted;
};

namespace {

// A copy of `t` that keeps its data only if neither the flag nor the
// model's config redacts it; a redacted one's name goes to `redacted`.
Tensor CopyUnlessRedacted(const Tensor& t, const std::set<std::string>& flag, const Model& model,
                          std::set<std::string>* redacted) {
  const std::vector<std::string>& config = model.config.monitoring.redact;
  if (!flag.contains(t.name()) &&
      std::find(config.begin(), config.end(), t.name()) == config.end()) {
    return t;
  }
  redacted->insert(t.name());
  return Tensor(t.name(), t.datatype(), t.shape());
}

constexpr std::chrono::seconds kPostTimeout{5};
// How long Stop goes on writing or sending what is queued.
constexpr std::chrono::seconds kDrainTime{3};

}  // namespace

PayloadLog::PayloadLog(PayloadLogOptions options) : options_(std::move(options)) {}

PayloadLog::~PayloadLog() { Stop(); }

StatusOr<std::unique_ptr<PayloadLog>> PayloadLog::Create(PayloadLogOptions options) {
  std::unique_ptr<PayloadLog> log(new PayloadLog(std::move(options)));
  const std::string& where = log->options_.where;
  if (where.starts_with("http://") || where.starts_with("https://")) {
    ASSIGN_OR_RETURN(net::ServerUrl url, net::ParseServerUrl(where));
    log->http_target_ = url.path_prefix.empty() ? "" : url.path_prefix;
    url.path_prefix.clear();
    log->http_ = std::make_unique<net::HttpClient>(
        std::move(url), std::chrono::duration_cast<std::chrono::milliseconds>(kPostTimeout),
        log->options_.ca_file);
    if (!log->http_->tls_status().ok()) return log->http_->tls_status();
  } else if (!log->options_.ca_file.empty()) {
    return Status::InvalidArgument("--payload-log-ca is for an https:// sink");
  } else {
    ASSIGN_OR_RETURN(log->file_, LogFile::Open(where, log->options_.retention));
  }
  return log;
}

std::shared_ptr<InferenceSample> PayloadLog::OnRequest(const Model& model,
                                                       const InferenceRequest& request) {
  if (!SampleDraw(options_.rate)) return nullptr;
  auto pair = std::make_shared<Pair>();
  pair->id = request.id;
  if (pair->id.empty()) {
    // CloudEvents need an id; the request has none to give.
    pair->id = "berth-" + std::to_string(getpid()) + "-" +
               std::to_string(next_id_.fetch_add(1, std::memory_order_relaxed));
  }
  pair->model = model.name;
  pair->version = std::to_string(model.version);
  pair->protocol = request.protocol;
  pair->request_time = std::chrono::system_clock::now();
  pair->inputs.reserve(request.inputs.size());
  for (const Tensor& t : request.inputs) {
    pair->inputs.push_back(CopyUnlessRedacted(t, options_.redact, model, &pair->redacted));
  }
  pair->bytes = TensorDataBytes(pair->inputs);
  return pair;
}

void PayloadLog::OnResponse(const Model& model, std::shared_ptr<InferenceSample> sample,
                            const StatusOr<InferenceResponse>& response) {
  std::shared_ptr<Pair> pair = std::static_pointer_cast<Pair>(std::move(sample));
  pair->response_time = std::chrono::system_clock::now();
  pair->status = response.status();
  if (response.ok()) {
    pair->outputs.reserve(response->outputs.size());
    for (const Tensor& t : response->outputs) {
      pair->outputs.push_back(CopyUnlessRedacted(t, options_.redact, model, &pair->redacted));
    }
    pair->bytes += TensorDataBytes(pair->outputs);
  }
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueuedEvents || queued_bytes_ + pair->bytes > kMaxQueuedBytes) {
      dropped_full_.fetch_add(2, std::memory_order_relaxed);
      return;
    }
    queued_bytes_ += pair->bytes;
    queue_.push_back(std::move(pair));
  }
  wake_.notify_one();
}

void PayloadLog::Start() {
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  writer_ = std::thread([this] { Run(); });
}

void PayloadLog::Stop() {
  if (!writer_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  writer_.join();
}

void PayloadLog::Run() {
  std::optional<std::chrono::steady_clock::time_point> give_up;
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_ || !queue_.empty(); });
    if (stop_ && !give_up) give_up = std::chrono::steady_clock::now() + kDrainTime;
    if (give_up && std::chrono::steady_clock::now() > *give_up) {
      // A sink that stopped answering must not hold the shutdown up.
      dropped_error_.fetch_add(2 * queue_.size(), std::memory_order_relaxed);
      queue_.clear();
      queued_bytes_ = 0;
    }
    if (queue_.empty()) {
      if (stop_) return;
      lock.unlock();
      if (file_) file_->Maintain();
      lock.lock();
      continue;
    }
    std::shared_ptr<Pair> pair = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= pair->bytes;
    lock.unlock();
    Emit(*pair);
    pair.reset();
    lock.lock();
  }
}

void PayloadLog::Emit(const Pair& p) {
  PayloadEvent request{.id = p.id,
                       .type = kRequestEventType,
                       .model = p.model,
                       .version = p.version,
                       .protocol = p.protocol,
                       .time = p.request_time,
                       .data = "{\"id\":"};
  AppendJsonString(&request.data, p.id);
  request.data += ",\"inputs\":" + TensorsJson(p.inputs, p.redacted) + "}";
  Send(request);

  PayloadEvent response{.id = p.id,
                        .type = kResponseEventType,
                        .model = p.model,
                        .version = p.version,
                        .protocol = p.protocol,
                        .time = p.response_time,
                        .data = "{\"model_name\":"};
  AppendJsonString(&response.data, p.model);
  response.data += ",\"model_version\":";
  AppendJsonString(&response.data, p.version);
  response.data += ",\"id\":";
  AppendJsonString(&response.data, p.id);
  if (p.status.ok()) {
    response.data += ",\"outputs\":" + TensorsJson(p.outputs, p.redacted) + "}";
  } else {
    // The reason class only: a message may quote the request.
    response.data += ",\"error\":";
    AppendJsonString(&response.data, StatusCodeName(p.status.code()));
    response.data += "}";
  }
  Send(response);
}

void PayloadLog::Send(const PayloadEvent& event) {
  if (file_) {
    std::string line = StructuredEvent(event);
    line.push_back('\n');
    if (file_->Write(line).ok()) {
      events_.fetch_add(1, std::memory_order_relaxed);
    } else {
      dropped_error_.fetch_add(1, std::memory_order_relaxed);
    }
    return;
  }
  net::HttpHeaders headers;
  for (auto& [name, value] : BinaryHeaders(event)) headers.emplace_back(name, value);
  auto answer = http_->Post(http_target_.empty() ? "/" : http_target_, event.data,
                            "application/json", headers);
  if (answer.ok() && answer->status >= 200 && answer->status < 300) {
    events_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (dropped_error_.fetch_add(1, std::memory_order_relaxed) == 0) {
    LOG_WARN(
        "the payload log's sink refused an event; dropped events are counted in "
        "berth_payload_log_dropped_total",
        {{"sink", options_.where},
         {"error",
          answer.ok() ? "HTTP " + std::to_string(answer->status) : answer.status().message()}});
  }
}

}  // namespace berth::logs
