# The README's commands. `make check` is what CI runs (.ci/run).
#   make demo    install dependencies, build, run the demonstration
#   make check   install dependencies, build with -Werror, run the whole suite, then again under ASan+UBSan
#   make build | test | asan | bench | fuzz | format | clean
JOBS  ?= $(shell nproc)
CMAKE ?= cmake
CTEST ?= ctest

.PHONY: all deps build test asan check demo bench fuzz format clean

all: build

deps:
	@scripts/deps.sh

build:
	$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLST_WERROR=ON >/dev/null
	$(CMAKE) --build build -j $(JOBS)

test: build
	$(CTEST) --test-dir build --output-on-failure -j $(JOBS)

asan:
	$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCLST_WERROR=ON -DCLST_SANITIZE=ON >/dev/null
	$(CMAKE) --build build-asan -j $(JOBS)
	$(CTEST) --test-dir build-asan --output-on-failure -j $(JOBS)

check: deps
	$(MAKE) --no-print-directory test
	$(MAKE) --no-print-directory asan

demo: deps build
	@scripts/demo.sh build

bench: build
	$(CMAKE) --build build -j $(JOBS) --target $$(ls bench | sed 's/^/bench_/' | tr '\n' ' ')

fuzz:
	CC=clang $(CMAKE) -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCLST_FUZZ=ON -DCLST_SANITIZE=ON >/dev/null
	$(CMAKE) --build build-fuzz -j $(JOBS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz
