# Berth: the two commands are `make run` and `make test`.
SHELL := /bin/bash
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
PORT ?= 8000
GRPC_PORT ?= 8001
VENV := .venv
PYTEST := $(VENV)/bin/python -m pytest

.PHONY: all setup build run test unit-test integration-test asan bench clean

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

integration-test: build
	BERTH_BINARY=$(BUILD_DIR)/berth $(PYTEST) tests/integration -q

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure
	BERTH_BINARY=$(BUILD_DIR)/berth $(PYTEST) tests/integration -q

# AddressSanitizer + UndefinedBehaviorSanitizer build, unit and integration tests.
asan: setup
	@cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBERTH_SANITIZE=ON >/dev/null
	@cmake --build build-asan
	ctest --test-dir build-asan --output-on-failure
	BERTH_BINARY=build-asan/berth ASAN_OPTIONS=detect_leaks=0 $(PYTEST) tests/integration -q

bench: build
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf $(BUILD_DIR) build-asan
