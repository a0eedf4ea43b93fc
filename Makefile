# Berth: the two commands are `make run` and `make test`.
SHELL := /bin/bash
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
PORT ?= 8000
GRPC_PORT ?= 8001
VENV := .venv
PYTEST := $(VENV)/bin/python -m pytest

.PHONY: all setup build run test unit-test integration-test asan tsan fuzz bench clean image cluster-demo

all: build

setup:
	@scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(BUILD_DIR)

run: build
	$(BUILD_DIR)/berth serve --model-repository examples/models --http-port $(PORT) --grpc-port $(GRPC_PORT)

unit-test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure

# PyTorch's import aborted the whole pytest process once the other suites had
# loaded their native libraries (gRPC, protobuf, TensorFlow...) into it: the
# PyTorch and TensorFlow importers' tests run in a process of their own.
OWN_PROCESS_TESTS := tests/integration/test_python_tensor_models.py

integration-test: build
	BERTH_BINARY=$(BUILD_DIR)/berth $(PYTEST) tests/integration -q --ignore=$(OWN_PROCESS_TESTS)
	BERTH_BINARY=$(BUILD_DIR)/berth $(PYTEST) $(OWN_PROCESS_TESTS) -q

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure
	BERTH_BINARY=$(BUILD_DIR)/berth $(PYTEST) tests/integration -q --ignore=$(OWN_PROCESS_TESTS)
	BERTH_BINARY=$(BUILD_DIR)/berth $(PYTEST) $(OWN_PROCESS_TESTS) -q

# AddressSanitizer + UndefinedBehaviorSanitizer build, unit and integration tests.
asan: setup
	@cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBERTH_SANITIZE=ON >/dev/null
	@cmake --build build-asan
	ctest --test-dir build-asan --output-on-failure
	BERTH_BINARY=build-asan/berth BERTH_SANITIZER=address,undefined ASAN_OPTIONS=detect_leaks=0 $(PYTEST) tests/integration -q

# ThreadSanitizer over the unit tests that exercise threads: the dynamic
# batcher (queue, workers, drain on destruction) and the model table.
TSAN_TESTS := AdminExecutor*:DynamicBatcher*:ModelManager*:InflightBudget*:PendingReplies*:HttpServerShutdown*:Metrics*:MemoryBudget*:SharedMemory*:DriftMonitor*:TokenBucket*:AuthorizerTest.Concurrent*:FeedbackMonitor*:RequestIdTest.Threads*:WorkerProcess*:AccessLogTest.Concurrent*:AlertManagerTest.Concurrent*:GrpcConnectionCapTest.ManyThreads*:TlsStreamTest.*
tsan: setup
	@cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBERTH_TSAN=ON >/dev/null
	@cmake --build build-tsan --target berth_unit_tests
	TSAN_OPTIONS=halt_on_error=1 build-tsan/berth_unit_tests --gtest_filter='$(TSAN_TESTS)' --gtest_repeat=20

# libFuzzer (clang-14, ASan+UBSan): each target in tests/fuzz runs for
# FUZZ_SECONDS from its seed corpus; new inputs go to build-fuzz/corpus/<target>,
# crashes to build-fuzz/artifacts. Not part of `make test` (the seed corpora
# run there as plain regression tests).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := v2_infer_request model_config model_name content_encoding http_request models_cli \
  grpc_codec csv_tensor onnx_external_data load_parameters baseline auth_header feedback_request \
  python_worker_frame push_files
FUZZ_CXX ?= clang++-14

fuzz: setup
	@command -v $(FUZZ_CXX) >/dev/null && \
	  dpkg-query -W -f='$${Status}' libclang-rt-14-dev 2>/dev/null | grep -q 'ok installed' || { \
	  sudo_cmd=(); [[ $$(id -u) -eq 0 ]] || sudo_cmd=(sudo); \
	  "$${sudo_cmd[@]}" apt-get update -q && DEBIAN_FRONTEND=noninteractive \
	    "$${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends clang-14 libclang-rt-14-dev; }
	@cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) -DBERTH_FUZZ=ON >/dev/null
	@cmake --build build-fuzz --target $(addsuffix _fuzzer,$(FUZZ_TARGETS))
	@mkdir -p build-fuzz/artifacts
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  echo "[fuzz] $$t for $(FUZZ_SECONDS) s"; \
	  build-fuzz/$${t}_fuzzer build-fuzz/corpus/$$t tests/fuzz/corpus/$$t \
	    -dict=tests/fuzz/$$t.dict -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
	    -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/artifacts/$$t- || exit 1; \
	done

# The container image (deploy/Dockerfile's runtime stage) without a Docker
# engine: mmdebstrap + buildah (deploy/image/build.sh, a few minutes, so not
# part of `make test`), then its tests: the image's files, and the image run
# with podman where the kernel allows it. Prints the image's size.
image: build
	deploy/image/build.sh $(BUILD_DIR)/berth
	BERTH_IMAGE_DIR=build-image BERTH_BINARY=$(BUILD_DIR)/berth $(PYTEST) tests/integration/test_deploy_image.py -q -rs

# Three replicas on a private PostgreSQL behind nginx (REST and gRPC), the
# example model pushed and promoted; Ctrl-C stops it all (docs/deploy.md).
cluster-demo: build
	BERTH_BINARY=$(BUILD_DIR)/berth $(VENV)/bin/python scripts/cluster_demo.py

bench: build
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf $(BUILD_DIR) build-asan build-tsan build-fuzz
