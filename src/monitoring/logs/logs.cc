#include "monitoring/logs/logs.h"

namespace berth::logs {

Status Logs::Start() {
  Retention retention{.max_bytes = options_.max_bytes,
                      .max_files = options_.max_files,
                      .max_age = std::chrono::hours(options_.max_age_hours)};
  if (options_.access_log != "off") {
    auto file = LogFile::Open(options_.access_log, retention);
    if (!file.ok()) return file.status().WithContext("--access-log");
    access_ = std::make_unique<AccessLog>(std::move(file).value());
    access_->Start();
  }
  if (options_.payload_log != "off") {
    PayloadLogOptions o{.where = options_.payload_log,
                        .ca_file = options_.payload_ca,
                        .rate = options_.payload_rate,
                        .redact = {options_.redact.begin(), options_.redact.end()},
                        .retention = retention};
    auto log = PayloadLog::Create(std::move(o));
    if (!log.ok()) return log.status().WithContext("--payload-log");
    payload_ = std::move(log).value();
    payload_->Start();
  }
  return Status::Ok();
}

void Logs::Stop() {
  if (access_) access_->Stop();
  if (payload_) payload_->Stop();
}

std::string Logs::RenderPrometheus() const {
  std::string out;
  if (access_) {
    out +=
        "# HELP berth_access_log_lines_total Access log lines written.\n"
        "# TYPE berth_access_log_lines_total counter\nberth_access_log_lines_total " +
        std::to_string(access_->lines()) +
        "\n# HELP berth_access_log_dropped_total Access log lines dropped: queue_full (the "
        "writer fell 8 MiB behind), write_error (the file could not be written).\n"
        "# TYPE berth_access_log_dropped_total counter\n"
        "berth_access_log_dropped_total{reason=\"queue_full\"} " +
        std::to_string(access_->dropped()) +
        "\nberth_access_log_dropped_total{reason=\"write_error\"} " +
        std::to_string(access_->write_errors()) + "\n";
  }
  if (payload_) {
    out +=
        "# HELP berth_payload_log_events_total Payload log CloudEvents written or accepted by "
        "the sink.\n# TYPE berth_payload_log_events_total counter\n"
        "berth_payload_log_events_total " +
        std::to_string(payload_->events()) +
        "\n# HELP berth_payload_log_dropped_total Payload log CloudEvents dropped: queue_full "
        "(the sink is slower than the traffic), sink_error (a write or POST failed).\n"
        "# TYPE berth_payload_log_dropped_total counter\n"
        "berth_payload_log_dropped_total{reason=\"queue_full\"} " +
        std::to_string(payload_->dropped_queue_full()) +
        "\nberth_payload_log_dropped_total{reason=\"sink_error\"} " +
        std::to_string(payload_->dropped_sink_error()) + "\n";
  }
  return out;
}

}  // namespace berth::logs
