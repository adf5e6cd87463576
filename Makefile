# Front for the CMake build. Every target installs missing Debian packages
# first (scripts/install-deps.sh is idempotent and quick when nothing is
# missing), so `make demo` and `make test` work on a fresh Debian 12.

BUILD      ?= build
ASAN_BUILD ?= build-asan
COV_BUILD  ?= build-cov
JOBS       ?= $(shell nproc)
CMAKE_GEN  := -G Ninja

.PHONY: all deps build demo test test-unit test-asan coverage lint format \
        format-check bench fuzz soak install clean

all: build

deps:
	@sh scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# The demo needs only the command, not the tests.
demo: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target ice
	@echo "== ice run examples/hello.json"
	@$(BUILD)/ice run examples/hello.json
	@echo "== ice run examples/pipeline.yaml --input topic=agents"
	@$(BUILD)/ice run examples/pipeline.yaml --input topic=agents

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

$(ASAN_BUILD)/build.ninja: | deps
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DICE_ASAN=ON

# tests/lsan.supp holds known leaks inside third-party code, by function
# name; print_suppressions=1 lists each suppressed leak with a count, so none
# is silent. Its names are only on the stack with the slow unwinder (libfyaml
# has no frame pointers), which makes a test up to 15 times slower: only
# test_doc, the test that parses the known-leaky YAML, runs with it.
LSAN_SUPP := suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=1

test-asan: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  LSAN_OPTIONS=$(LSAN_SUPP) \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -E '^test_doc$$'
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  LSAN_OPTIONS=$(LSAN_SUPP):fast_unwind_on_malloc=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -R '^test_doc$$'

$(COV_BUILD)/build.ninja: | deps
	cmake -S . -B $(COV_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DICE_COVERAGE=ON

# Line coverage of the library (src/) must stay >= 90 %.
coverage: deps $(COV_BUILD)/build.ninja
	find $(COV_BUILD) -name '*.gcda' -delete
	cmake --build $(COV_BUILD) -j $(JOBS)
	cd $(COV_BUILD) && ctest --output-on-failure -j $(JOBS)
	gcovr -r . --object-directory $(COV_BUILD) --filter 'src/' \
	  --print-summary --fail-under-line 90 -j $(JOBS)

# ctuuninitvar is suppressed: it flags every `ice__err_t err;` handed to a
# callee that only writes it (an out-parameter), which is our error idiom.
lint: deps
	cppcheck --error-exitcode=1 --enable=warning,portability,performance \
	  --inline-suppr --quiet --std=c11 -D_GNU_SOURCE -Iinclude -Isrc \
	  --suppress=missingIncludeSystem --suppress=ctuuninitvar src cli

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

# The whole gate: lint, formatting, the unit + CLI tests under ASan/UBSan, and the
# coverage build (which runs the tests once more, instrumented).
test: lint format-check test-asan coverage test-python fuzz-short
	@echo "make test: all checks passed"

# The Python binding (python/, docs/python.md): its pytest suite against
# $(BUILD)/libice.so. Debian's pytest (python3-pytest) is installed for
# /usr/bin/python3, which a pyenv `python3` first on PATH does not see.
PYTEST_PYTHON ?= /usr/bin/python3
.PHONY: test-python
test-python: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target ice_shared
	ICE_LIBRARY=$(abspath $(BUILD))/libice.so PYTHONPATH=$(CURDIR)/python \
	  $(PYTEST_PYTHON) -m pytest -q -p no:cacheprovider python/tests

# Benchmarks, not part of `make test` (docs/performance.md); the same
# workloads on other systems: bench/peers/run.
bench: build
	sh bench/run.sh $(BUILD)

# The soak, not part of `make test` (docs/reliability.md): one process runs
# the load test's mix of workflows for SOAK_SECONDS (default 600), store
# on, sampling RSS, the heap in use and open fds; it fails when they keep
# growing after the warm-up. SOAK_SAMPLE sets the seconds between samples
# (default 5).
SOAK_SECONDS ?= 600
SOAK_SAMPLE  ?= 5
soak: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target soak
	$(BUILD)/soak $(SOAK_SECONDS) $(SOAK_SAMPLE)

# libFuzzer targets (fuzz/fuzz_*.c, clang; docs/reliability.md): the
# loaders, expressions, templates, schemas, tool output, LLM answers and
# damaged stores. `make fuzz` runs each for FUZZ_SECONDS (default 60);
# `make fuzz-short`, part of `make test`, for 10 s. Both first replay the
# crashes fixed so far (fuzz/regressions/TARGET/).
.PHONY: fuzz-short
fuzz: deps
	@dpkg-query -W clang >/dev/null 2>&1 || apt-get install -y -qq clang >/dev/null
	sh fuzz/run.sh

fuzz-short: deps
	@dpkg-query -W clang >/dev/null 2>&1 || apt-get install -y -qq clang >/dev/null
	FUZZ_SECONDS=10 sh fuzz/run.sh

install: build
	cmake --install $(BUILD)
	sh python/install.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(COV_BUILD) build-fuzz
