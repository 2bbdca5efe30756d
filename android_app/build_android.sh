#!/usr/bin/env bash
# Build mobilebench_runner for Android arm64-v8a with the NDK, compiling the ExecuTorch
# runtime from a source checkout (the pip wheels are for glibc Linux, not Android; for an
# arm64 runner without an NDK, see `make runner-arm64` in README.md).
#
#   ANDROID_NDK=/path/to/ndk android_app/build_android.sh /path/to/executorch [BUILD_DIR]
#
# The checkout must be the ExecuTorch version the .pte files are exported with (the wheel's
# `python -c 'import executorch.version as v; print(v.__version__)'`), with submodules:
#   git clone --branch v1.5.1 https://github.com/pytorch/executorch
#   git -C executorch submodule update --init --recursive
# Output: BUILD_DIR/mobilebench_runner (default android_app/build/android-arm64-v8a),
# a static binary to `adb push` to /data/local/tmp and run pinned with taskset.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() {
  echo "build_android.sh: error: $*" >&2
  exit 2
}

[[ -n "${ANDROID_NDK:-}" ]] ||
  die "ANDROID_NDK is not set; point it at an Android NDK, e.g. ANDROID_NDK=\$HOME/Android/Sdk/ndk/27.2.12479018"
toolchain="$ANDROID_NDK/build/cmake/android.toolchain.cmake"
[[ -f "$toolchain" ]] || die "ANDROID_NDK=$ANDROID_NDK is not an Android NDK ($toolchain is missing)"

executorch_src="${1:-}"
[[ -n "$executorch_src" ]] ||
  die "no ExecuTorch source checkout given; usage: ANDROID_NDK=... $0 /path/to/executorch [BUILD_DIR]"
[[ -f "$executorch_src/CMakeLists.txt" && -f "$executorch_src/version.txt" ]] ||
  die "$executorch_src is not an ExecuTorch source checkout (no CMakeLists.txt and version.txt)"
# ExecuTorch's headers are included as <executorch/...> relative to the checkout's parent.
[[ "$(basename "$(cd "$executorch_src" && pwd -P)")" == executorch ]] ||
  die "the ExecuTorch checkout must be a directory named 'executorch' (its headers are included as <executorch/...>), got $executorch_src"
[[ -f "$executorch_src/backends/xnnpack/third-party/XNNPACK/CMakeLists.txt" ]] ||
  die "$executorch_src lacks its submodules; run: git -C '$executorch_src' submodule update --init --recursive"

build_dir="${2:-$here/build/android-arm64-v8a}"

# ANDROID_PLATFORM 26 (Android 8) covers the Pixel 3/4 and is what ExecuTorch's own
# Android builds use; c++_static keeps the binary free of a libc++_shared.so to push.
cmake -S "$here/runner" -B "$build_dir" \
  -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
  -DANDROID_ABI=arm64-v8a \
  -DANDROID_PLATFORM=android-26 \
  -DANDROID_STL=c++_static \
  -DCMAKE_BUILD_TYPE=Release \
  -DPYTHON_EXECUTABLE="${PYTHON:-python3}" \
  -DEXECUTORCH_SOURCE_DIR="$executorch_src"
cmake --build "$build_dir" -j"$(nproc 2>/dev/null || echo 4)" --target mobilebench_runner
echo "built $build_dir/mobilebench_runner"
