# Every target sets up what it needs on a fresh Debian machine and is quick when done.
# Stamps under .make/ remember finished set-up steps; `make clean` forgets them.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .make
RUNNER := android_app/build/host/mobilebench_runner
RUNNER_SOURCES := $(shell find android_app/runner -type f 2>/dev/null)
# adb: a second, independent ADB client to check the phone emulator against.
# bubblewrap: the emulator's private /data and /sys view. cmake/g++: the native runner.
# libusb-1.0-0: ADB over USB (adb-shell[usb]).
APT_PACKAGES := adb bubblewrap cmake g++ make libusb-1.0-0
# postgresql: the server the tests start (tests/pg.py) for the PostgreSQL store and the lab queue.
APT_PACKAGES += postgresql
# The arm64 runner bundle (make runner-arm64; android_app/README.md): Debian's aarch64
# cross toolchain and glibc, qemu to run it here, unzip for the wheel.
ARM64_APT_PACKAGES := g++-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static unzip
ARM64_SDK := android_app/build/linux-arm64-sdk
ARM64_BUILD := android_app/build/linux-arm64-build
ARM64_BUNDLE := android_app/build/linux-arm64
PYTEST_ARGS ?= --durations=20
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: demo test test-exports runner runner-arm64 setup bytecode clean

# The main job on the built-in emulated phone: start the emulator (Pixel 4 profile) in
# the background, profile two models through it over ADB, print the table, stop it.
DEMO_DIR := .make/demo
demo: setup runner
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	@$(BIN)/mobilebench emulator --profile pixel4 --port 0 --root $(DEMO_DIR)/phone > $(DEMO_DIR)/emulator.log 2>&1 & \
	pid=$$!; trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null' EXIT; \
	for _ in $$(seq 300); do \
	  address=$$(grep -o -m1 'listening on 127.0.0.1:[0-9]*' $(DEMO_DIR)/emulator.log | head -n 1 | cut -d' ' -f3); \
	  [ -n "$$address" ] && break; kill -0 $$pid 2>/dev/null || break; sleep 0.1; \
	done; \
	[ -n "$$address" ] || { cat $(DEMO_DIR)/emulator.log; echo "the emulator did not start"; exit 1; }; \
	echo "emulated Pixel 4 at $$address"; \
	$(BIN)/mobilebench profile skipnet_m mobilenet_v3_large --device emulator --address $$address

test: setup runner runner-arm64
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Every zoo model to .pte and .onnx with parity (about 10 CPU minutes, so not in `make test`).
test-exports: setup
	MOBILEBENCH_EXPORT_MATRIX=1 $(BIN)/python -m pytest tests/export -k every_zoo_model $(PYTEST_ARGS)

runner: $(RUNNER)

# The runner for arm64 phones without an NDK: cross-compiled against PyPI's aarch64 wheel
# of the installed executorch version, bundled with its libraries and glibc loader.
runner-arm64: $(ARM64_BUNDLE)/manifest.json

setup: $(STAMPS)/apt $(STAMPS)/venv bytecode

# Byte-compile the package as a regular (non-editable) install does, so that no command
# pays for compiling it, even where PYTHONDONTWRITEBYTECODE keeps Python from caching.
bytecode: $(STAMPS)/venv
	@$(BIN)/python -m compileall -q mobilebench

$(STAMPS)/apt: Makefile
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/venv: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@mkdir -p $(STAMPS) && touch $@

$(RUNNER): $(RUNNER_SOURCES) $(STAMPS)/venv
	cmake -S android_app/runner -B android_app/build/host -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_PREFIX_PATH="$$($(BIN)/python -c 'import executorch; print(list(executorch.__path__)[0])')"
	cmake --build android_app/build/host -j2 --target mobilebench_runner

$(STAMPS)/apt-arm64: Makefile
	@missing=$$(for p in $(ARM64_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi
	@mkdir -p $(STAMPS) && touch $@

# Only the C++ SDK of the wheel: libraries, headers, CMake package, version.py. (The
# packages are order-only: a Makefile edit re-checks them without rebuilding the SDK.)
$(ARM64_SDK)/.unpacked: $(STAMPS)/venv | $(STAMPS)/apt-arm64
	rm -rf $(ARM64_SDK) && mkdir -p $(ARM64_SDK)/wheel
	version=$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("executorch"))') && \
	python=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])') && \
	$(BIN)/pip download -q --no-deps --only-binary=:all: --python-version $$python \
	  --platform manylinux_2_28_aarch64 -d $(ARM64_SDK)/wheel "executorch==$$version"
	unzip -q $(ARM64_SDK)/wheel/executorch-*.whl 'executorch/lib/*' 'executorch/include/*' \
	  'executorch/share/*' executorch/version.py -d $(ARM64_SDK)
	@touch $@

# touch: cmake leaves the binary alone when nothing changed, and make would ask again.
$(ARM64_BUILD)/mobilebench_runner: $(RUNNER_SOURCES) $(ARM64_SDK)/.unpacked
	cmake -S android_app/runner -B $(ARM64_BUILD) -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/android_app/runner/cmake/aarch64-linux-gnu.toolchain.cmake \
	  -Dexecutorch_DIR=$(CURDIR)/$(ARM64_SDK)/executorch/share/cmake
	cmake --build $(ARM64_BUILD) -j2 --target mobilebench_runner
	@touch $@

$(ARM64_BUNDLE)/manifest.json: $(ARM64_BUILD)/mobilebench_runner android_app/assemble_bundle.py mobilebench/bench/runner_builds.py
	$(BIN)/python android_app/assemble_bundle.py --runner $(ARM64_BUILD)/mobilebench_runner \
	  --search $(ARM64_SDK)/executorch/lib --search /usr/aarch64-linux-gnu/lib --out $(ARM64_BUNDLE)

clean:
	rm -rf $(STAMPS) android_app/build .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
