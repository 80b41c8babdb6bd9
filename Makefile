# Thin wrapper around CMake. `make run` and `make test` are all a user types
# on a fresh Debian 12 machine: both install missing packages first.
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
BUILD     ?= build
ASAN      ?= build-asan
FUZZBUILD ?= build-fuzz
CONFIG    ?= etc/psycgate.conf
FUZZ_SECONDS ?= 60

.PHONY: all deps build run test test-normal test-asan bench fuzz clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/psycgate -c $(CONFIG)

test: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DPSYCGATE_SANITIZE=ON
	cmake --build $(ASAN) -j $(JOBS)
	@echo "=== normal build ==="
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@echo "=== ASan+UBSan build ==="
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

bench: build
	@scripts/bench

fuzz: deps
	CC=clang cmake -S . -B $(FUZZBUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPSYCGATE_FUZZ=ON
	cmake --build $(FUZZBUILD) -j $(JOBS)
	scripts/fuzz $(FUZZBUILD) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZBUILD)
