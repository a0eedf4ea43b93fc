// The compute floor in C++: ONNX Runtime running the benchmark model on one
// row, in process, with one intra-op and one inter-op thread, as Berth's
// ONNX Runtime backend configures it. Nothing here parses, copies or sends a
// request, so the gap between this and Berth's latency is the cost of serving.
//
//   ort_inprocess_bench --model model.onnx --row 5.1,3.5,1.4,0.2
//       --benchmark_min_time=10 --benchmark_format=json   (one command line)
//
// Besides Google Benchmark's mean time per iteration, the counters p50_us and
// p99_us give the distribution of single calls (each timed with steady_clock,
// whose cost is tens of nanoseconds against microseconds per call).

#include <benchmark/benchmark.h>
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Options {
  std::string model_path;
  std::vector<float> row;
};

Options& GetOptions() {
  static Options options;
  return options;
}

std::vector<float> ParseRow(const std::string& text) {
  std::vector<float> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) values.push_back(std::stof(item));
  return values;
}

// Reads and removes --model and --row; Google Benchmark has already taken its own flags.
bool ParseFlags(int argc, char** argv) {
  Options& options = GetOptions();
  for (int i = 1; i < argc; ++i) {
    std::string_view arg(argv[i]);
    auto value = [&](std::string_view flag) -> const char* {
      if (arg.substr(0, flag.size() + 1) == std::string(flag) + "=") return argv[i] + flag.size() + 1;
      if (arg == flag && i + 1 < argc) return argv[++i];
      return nullptr;
    };
    if (const char* model = value("--model")) {
      options.model_path = model;
    } else if (const char* row = value("--row")) {
      options.row = ParseRow(row);
    } else {
      std::cerr << "unknown argument: " << arg << "\n";
      return false;
    }
  }
  if (options.model_path.empty() || options.row.empty()) {
    std::cerr << "usage: ort_inprocess_bench --model FILE.onnx --row V1,V2,... [--benchmark_* flags]\n";
    return false;
  }
  return true;
}

double Percentile(std::vector<double>& values, double fraction) {
  if (values.empty()) return 0.0;
  auto nth = values.begin() + static_cast<std::ptrdiff_t>(fraction * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), nth, values.end());
  return *nth;
}

void BM_OrtRunOneRow(benchmark::State& state) {
  const Options& options = GetOptions();
  Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "ort_inprocess_bench");
  Ort::SessionOptions session_options;
  session_options.SetIntraOpNumThreads(1);
  session_options.SetInterOpNumThreads(1);
  session_options.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
  session_options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
  Ort::Session session(env, options.model_path.c_str(), session_options);

  Ort::AllocatorWithDefaultOptions allocator;
  Ort::AllocatedStringPtr input_name = session.GetInputNameAllocated(0, allocator);
  std::vector<Ort::AllocatedStringPtr> output_name_holders;
  std::vector<const char*> output_names;
  for (size_t i = 0; i < session.GetOutputCount(); ++i) {
    output_name_holders.push_back(session.GetOutputNameAllocated(i, allocator));
    output_names.push_back(output_name_holders.back().get());
  }
  const char* input_names[] = {input_name.get()};
  std::vector<float> row = options.row;
  const std::array<int64_t, 2> shape = {1, static_cast<int64_t>(row.size())};
  Ort::MemoryInfo memory_info = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);

  std::vector<double> durations_us;
  durations_us.reserve(1 << 20);
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    // As a server does per request: wrap the request's buffer, run, get fresh outputs.
    Ort::Value input = Ort::Value::CreateTensor<float>(memory_info, row.data(), row.size(), shape.data(),
                                                       shape.size());
    std::vector<Ort::Value> outputs =
        session.Run(Ort::RunOptions{nullptr}, input_names, &input, 1, output_names.data(), output_names.size());
    benchmark::DoNotOptimize(outputs.data());
    const auto end = std::chrono::steady_clock::now();
    durations_us.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  state.counters["p50_us"] = Percentile(durations_us, 0.50);
  state.counters["p99_us"] = Percentile(durations_us, 0.99);
  state.SetLabel("onnxruntime " + Ort::GetVersionString());
}
BENCHMARK(BM_OrtRunOneRow)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (!ParseFlags(argc, argv)) return EXIT_FAILURE;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return EXIT_SUCCESS;
}
