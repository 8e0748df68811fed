# skiff: the two commands are `make run` and `make test` (see README.md).
BUILD_TYPE ?= RelWithDebInfo
DATA_DIR ?= ./data
CMAKE_FLAGS ?=

.PHONY: all deps build run test test-deps build-asan bench clean

all: build

deps:
	@scripts/install-deps.sh run

build: deps
	@cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null
	@cmake --build build

run: build
	@./build/skiff server --data-dir $(DATA_DIR)

test-deps:
	@scripts/install-deps.sh test

build-asan: test-deps
	@cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSKIFF_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan --target unit_tests

test: test-deps
	@cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null
	@cmake --build build
	@$(MAKE) --no-print-directory build-asan
	@tests/run.sh

clean:
	rm -rf build build-asan

# bench: the benchmarks (bench/run.sh), each against a baseline in the same run: the API
# against etcd, the scheduler against a round-robin binder, a rolling update against plain pods.
.PHONY: bench
bench: test-deps build
	@cmake --build build --target bench_api bench_scheduler bench_rollout bench_pod_start
	@bench/run.sh
