// A closed-loop gRPC load generator for bench/: ModelInfer from N workers,
// one connection each, all on one thread, through gRPC C++ (C-core, the
// stack of tritonclient.grpc and Triton's perf_analyzer). ghz (grpc-go)
// keeps its core busy before Berth's gRPC server is (and sends a PING on
// every response); this client costs less per call, so the server is the
// limit and throughput measures it.
//
//   grpc_load --address HOST:PORT --request FILE.json --concurrency N --duration S
//             [--ca-file PEM] [--metadata KEY=VALUE ...] [--timeout S]
//
// FILE.json is a ModelInferRequest in protobuf's JSON mapping (the file ghz
// takes). Prints one JSON line: the calls answered within the duration, the
// failed ones by status, and latency percentiles in microseconds.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "server/grpc/grpc_service.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string address;
  std::string request_file;
  std::string ca_file;
  std::vector<std::pair<std::string, std::string>> metadata;
  int concurrency = 1;
  double duration_s = 10;
  double timeout_s = 20;
};

[[noreturn]] void Fail(const std::string& message) {
  std::cerr << "grpc_load: " << message << "\n";
  std::exit(2);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) Fail(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--address") {
      o.address = value;
    } else if (flag == "--request") {
      o.request_file = value;
    } else if (flag == "--ca-file") {
      o.ca_file = value;
    } else if (flag == "--concurrency") {
      o.concurrency = std::atoi(value.c_str());
    } else if (flag == "--duration") {
      o.duration_s = std::atof(value.c_str());
    } else if (flag == "--timeout") {
      o.timeout_s = std::atof(value.c_str());
    } else if (flag == "--metadata") {
      const size_t eq = value.find('=');
      if (eq == std::string::npos) Fail("--metadata takes KEY=VALUE");
      o.metadata.emplace_back(value.substr(0, eq), value.substr(eq + 1));
    } else {
      Fail("unknown flag " + flag);
    }
  }
  if (o.address.empty() || o.request_file.empty() || o.concurrency < 1 || o.duration_s <= 0) {
    Fail("usage: grpc_load --address HOST:PORT --request FILE.json --concurrency N --duration S "
         "[--ca-file PEM] [--metadata KEY=VALUE ...] [--timeout S]");
  }
  return o;
}

// One call in flight; its tag on the completion queue is itself.
struct Call {
  int worker = 0;
  Clock::time_point start;
  grpc::ClientContext context;
  inference::ModelInferResponse response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<inference::ModelInferResponse>> reader;
};

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t index = std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()));
  return sorted[index];
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = Parse(argc, argv);
  inference::ModelInferRequest request;
  if (auto parsed =
          google::protobuf::util::JsonStringToMessage(ReadFile(options.request_file), &request);
      !parsed.ok()) {
    Fail("the request is not a ModelInferRequest: " + parsed.ToString());
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!options.ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(options.ca_file);
    credentials = grpc::SslCredentials(ssl);
  }
  // One connection per worker: channels with their own subchannel pools do
  // not share one.
  std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>> stubs;
  for (int i = 0; i < options.concurrency; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(-1);
    stubs.push_back(inference::GRPCInferenceService::NewStub(
        grpc::CreateCustomChannel(options.address, credentials, args)));
  }

  grpc::CompletionQueue queue;
  const auto timeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(options.timeout_s));
  auto start_call = [&](int worker) {
    auto* call = new Call;
    call->worker = worker;
    for (const auto& [key, value] : options.metadata) call->context.AddMetadata(key, value);
    call->context.set_deadline(std::chrono::system_clock::now() + timeout);
    call->start = Clock::now();
    call->reader = stubs[worker]->AsyncModelInfer(&call->context, request, &queue);
    call->reader->Finish(&call->response, &call->status, call);
  };

  const Clock::time_point begin = Clock::now();
  const Clock::time_point end =
      begin + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(options.duration_s));
  for (int i = 0; i < options.concurrency; ++i) start_call(i);
  int outstanding = options.concurrency;
  std::vector<double> latencies_us;
  std::map<std::string, int64_t> failures;
  void* tag = nullptr;
  bool ok = false;
  while (outstanding > 0 && queue.Next(&tag, &ok)) {
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    const Clock::time_point now = Clock::now();
    --outstanding;
    if (now <= end) {
      if (call->status.ok()) {
        latencies_us.push_back(
            std::chrono::duration<double, std::micro>(now - call->start).count());
      } else {
        ++failures[std::to_string(call->status.error_code()) + " " + call->status.error_message()];
      }
      start_call(call->worker);
      ++outstanding;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::min(Clock::now(), end) - begin).count();
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }

  std::sort(latencies_us.begin(), latencies_us.end());
  double mean = 0;
  for (double l : latencies_us) mean += l;
  if (!latencies_us.empty()) mean /= static_cast<double>(latencies_us.size());
  int64_t errors = 0;
  std::ostringstream failed;
  for (const auto& [what, count] : failures) {
    std::string escaped;
    for (char c : what) {
      if (c == '"' || c == '\\') escaped += '\\';
      escaped += (c >= 0x20) ? c : ' ';
    }
    failed << (errors == 0 ? "" : ",") << "\"" << escaped << "\":" << count;
    errors += count;
  }
  std::printf(
      "{\"requests\":%zu,\"errors\":%lld,\"seconds\":%.3f,\"latency_us\":{\"mean\":%.1f,"
      "\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f},\"failures\":{%s}}\n",
      latencies_us.size(), static_cast<long long>(errors), seconds, mean,
      Percentile(latencies_us, 0.50), Percentile(latencies_us, 0.90),
      Percentile(latencies_us, 0.99), failed.str().c_str());
  return 0;
}
