#include "monitoring/logs/access_log.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "monitoring/logs/logs_options.h"

namespace berth::logs {
namespace {

namespace fs = std::filesystem;

TEST(AccessLogTest, FormatsOneJsonLine) {
  InferenceTimings t;
  t.protocol = Protocol::kTfServing;
  t.queue = std::chrono::microseconds(5);
  t.compute_input = std::chrono::microseconds(1);
  t.compute_infer = std::chrono::microseconds(10);
  t.compute_output = std::chrono::microseconds(2);
  t.total = std::chrono::microseconds(30);
  t.batch_size = 4;
  const Status ok;
  std::string line;
  AccessLog::Format({.model = "iris",
                     .requested = "iris",
                     .version = "1",
                     .id = "abc",
                     .status = ok,
                     .timings = t,
                     .bytes_in = 16,
                     .bytes_out = 8},
                    &line);
  const std::string rest = line.substr(line.find("\",\"level\""));
  EXPECT_EQ(rest, R"(","level":"info","msg":"access","id":"abc","model":"iris","version":"1",)"
                  R"("protocol":"tfserving","ok":true,"status":"OK","queue_us":5,"compute_us":13,)"
                  R"("total_us":30,"batch_size":4,"bytes_in":16,"bytes_out":8})"
                  "\n");
}

TEST(AccessLogTest, AnUnknownModelIsNamedAsRequestedAndBounded) {
  InferenceTimings t;
  const Status missing = Status::NotFound("no such model");
  const std::string huge(10000, 'm');
  std::string line;
  AccessLog::Format({.model = "",
                     .requested = huge,
                     .version = "",
                     .id = "bad\n\xff",
                     .status = missing,
                     .timings = t,
                     .bytes_in = 0,
                     .bytes_out = 0},
                    &line);
  EXPECT_NE(line.find(R"("level":"warn")"), std::string::npos);
  EXPECT_NE(line.find(R"("ok":false,"status":"NOT_FOUND","known_model":false)"), std::string::npos);
  EXPECT_NE(line.find(R"("id":"bad??")"), std::string::npos);
  EXPECT_LT(line.size(), 1000u);
  EXPECT_EQ(line.find("no such model"), std::string::npos);  // the reason class only
}

TEST(AccessLogTest, ARefusalSaysWhatTheDoorKnowsAndNoMore) {
  InferenceTimings t;
  t.protocol = Protocol::kRest;
  t.total = std::chrono::microseconds(7);
  const Status refused = Status::Unauthenticated("no API key");
  std::string line;
  AccessLog::Format({.model = "",
                     .requested = "iris",
                     .version = "",
                     .id = "",
                     .status = refused,
                     .timings = t,
                     .refused = true,
                     .http_status = 401,
                     .client = "10.0.0.7"},
                    &line);
  const std::string rest = line.substr(line.find("\",\"level\""));
  EXPECT_EQ(rest, R"(","level":"warn","msg":"access","model":"iris","protocol":"rest",)"
                  R"("ok":false,"status":"UNAUTHENTICATED","refused":true,"http_status":401,)"
                  R"("client":"10.0.0.7","queue_us":0,"compute_us":0,"total_us":7,"bytes_in":0,)"
                  R"("bytes_out":0})"
                  "\n");
  // No route named a model: no model field either.
  AccessLog::Format({.model = "",
                     .requested = "",
                     .version = "",
                     .id = "",
                     .status = refused,
                     .timings = t,
                     .refused = true},
                    &line);
  EXPECT_EQ(line.find("\"model\""), std::string::npos) << line;
  EXPECT_EQ(line.find("\"http_status\""), std::string::npos) << line;
}

TEST(AccessLogTest, ConcurrentRequestsWriteWholeLines) {
  std::string tmpl = (fs::temp_directory_path() / "berth_access_log_test_XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const fs::path path = fs::path(tmpl) / "access.log";
  {
    auto file = LogFile::Open(path.string(), {});
    ASSERT_TRUE(file.ok());
    AccessLog log(std::move(file).value());
    log.Start();
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&log, i] {
        const Status ok;
        InferenceTimings t;
        const std::string id = "thread-" + std::to_string(i);
        for (int n = 0; n < 500; ++n) {
          log.Record({.model = "m",
                      .requested = "m",
                      .version = "1",
                      .id = id,
                      .status = ok,
                      .timings = t,
                      .bytes_in = 0,
                      .bytes_out = 0});
        }
      });
    }
    for (auto& t : threads) t.join();
    log.Stop();
    EXPECT_EQ(log.lines(), 2000u);
    EXPECT_EQ(log.dropped(), 0u);
  }
  std::ifstream in(path);
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    ASSERT_EQ(line.front(), '{');
    ASSERT_EQ(line.back(), '}');
  }
  EXPECT_EQ(lines, 2000);
  fs::remove_all(tmpl);
}

TEST(LogsOptionsTest, ParsesTheFlags) {
  LogsOptions o;
  Status error;
  EXPECT_TRUE(ParseLogsFlag("--payload-log-redact", "ssn,,email", &o, &error));
  EXPECT_TRUE(error.ok());
  EXPECT_EQ(o.redact, (std::vector<std::string>{"ssn", "email"}));
  EXPECT_TRUE(ParseLogsFlag("--payload-log-rate", "0.25", &o, &error));
  EXPECT_EQ(o.payload_rate, 0.25);
  EXPECT_TRUE(ParseLogsFlag("--log-max-bytes", "10M", &o, &error));
  EXPECT_EQ(o.max_bytes, 10u << 20);
  EXPECT_FALSE(ParseLogsFlag("--log-level", "info", &o, &error));
  for (auto [flag, value] :
       std::vector<std::pair<const char*, const char*>>{{"--payload-log-rate", "0"},
                                                        {"--payload-log-rate", "1.5"},
                                                        {"--payload-log-rate", "x"},
                                                        {"--payload-log", "https://"},
                                                        {"--payload-log-ca", ""},
                                                        {"--payload-log", "http://"},
                                                        {"--log-max-files", "0"},
                                                        {"--log-max-age-hours", "-1"},
                                                        {"--access-log", ""}}) {
    error = Status::Ok();
    EXPECT_TRUE(ParseLogsFlag(flag, value, &o, &error));
    EXPECT_FALSE(error.ok()) << flag << " " << value;
  }
}

}  // namespace
}  // namespace berth::logs
