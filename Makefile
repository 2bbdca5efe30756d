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
PYTEST_ARGS ?= --durations=20
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: demo test test-exports runner setup bytecode clean

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

test: setup runner
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Every zoo model to .pte and .onnx with parity (about 10 CPU minutes, so not in `make test`).
test-exports: setup
	MOBILEBENCH_EXPORT_MATRIX=1 $(BIN)/python -m pytest tests/export -k every_zoo_model $(PYTEST_ARGS)

runner: $(RUNNER)

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

clean:
	rm -rf $(STAMPS) android_app/build .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
