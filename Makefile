# Tapio's front door. `make run` and `make test` install what they need from Debian first.
BUILD_DIR ?= build
JOBS ?= 2
CMAKE_FLAGS ?=
AGENT_FLAGS ?= --output=json
CTEST_FLAGS ?= --output-on-failure --timeout 900

.PHONY: all deps test-deps configure build run test unit kernel e2e bench demo lint format clean

all: build

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

$(BUILD_DIR)/CMakeCache.txt:
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null

configure: $(BUILD_DIR)/CMakeCache.txt

build: deps configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# Runs the agent in the foreground with its embedded default: this host, no Kubernetes.
run: build
	$(BUILD_DIR)/agent/tapio-agent $(AGENT_FLAGS)

# Everything CI runs: lint, unit, kernel integration and e2e suites.
test: test-deps build
	@scripts/lint.sh
	@cd $(BUILD_DIR) && ctest $(CTEST_FLAGS)

unit: build
	@cd $(BUILD_DIR) && ctest $(CTEST_FLAGS) -L unit

kernel: build
	@cd $(BUILD_DIR) && ctest $(CTEST_FLAGS) -L kernel

e2e: test-deps build
	@cd $(BUILD_DIR) && ctest $(CTEST_FLAGS) -L e2e

bench: build
	@scripts/bench.sh $(BUILD_DIR)

demo: build
	@scripts/demo.sh $(BUILD_DIR)

lint: test-deps
	@scripts/lint.sh

format:
	@git ls-files '*.cc' '*.h' | grep -v '^bpf/vmlinux' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
