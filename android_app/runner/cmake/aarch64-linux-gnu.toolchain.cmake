# Cross-compiling for 64-bit Arm Linux (glibc) with Debian's toolchain:
# g++-aarch64-linux-gnu, binutils-aarch64-linux-gnu, libc6-dev-arm64-cross.
# Used for the arm64 bundle (see ../../README.md); the ExecuTorch SDK comes from PyPI's
# aarch64 wheel, passed as -Dexecutorch_DIR=<unzipped wheel>/executorch/share/cmake.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Debian's cross compilers know their own target directory; not a --sysroot (its libc.so
# linker script names absolute /usr/aarch64-linux-gnu/lib paths, which a sysroot re-roots).
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# The SDK lives outside the sysroot (an unzipped wheel); ONLY would re-root its path
# under /usr/aarch64-linux-gnu and find nothing.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# 16 KB-page kernels (recent Pixels, Android 15+) refuse LOAD segments aligned to less.
# 64 KB also covers 64 KB-page kernels, and is what the wheel's libraries use.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-z,max-page-size=65536")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,-z,max-page-size=65536")
