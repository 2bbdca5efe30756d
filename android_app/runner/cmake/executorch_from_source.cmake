# ExecuTorch built from a source checkout inside this build tree: the route for Android
# (arm64-v8a with the NDK toolchain), where no prebuilt SDK exists. build_android.sh sets
# EXECUTORCH_SOURCE_DIR and the toolchain; this file only picks the runtime's parts.
if(NOT EXISTS "${EXECUTORCH_SOURCE_DIR}/CMakeLists.txt" OR NOT EXISTS "${EXECUTORCH_SOURCE_DIR}/version.txt")
  message(FATAL_ERROR "EXECUTORCH_SOURCE_DIR=${EXECUTORCH_SOURCE_DIR} is not an ExecuTorch checkout")
endif()

# The same components the wheel route links: Module + tensor extensions, optimized and
# quantized CPU kernels, the XNNPACK delegate (which brings the thread pool).
set(EXECUTORCH_BUILD_EXTENSION_DATA_LOADER ON CACHE BOOL "" FORCE)
set(EXECUTORCH_BUILD_EXTENSION_FLAT_TENSOR ON CACHE BOOL "" FORCE)
set(EXECUTORCH_BUILD_EXTENSION_MODULE ON CACHE BOOL "" FORCE)
set(EXECUTORCH_BUILD_EXTENSION_TENSOR ON CACHE BOOL "" FORCE)
set(EXECUTORCH_BUILD_KERNELS_OPTIMIZED ON CACHE BOOL "" FORCE)
set(EXECUTORCH_BUILD_KERNELS_QUANTIZED ON CACHE BOOL "" FORCE)
set(EXECUTORCH_BUILD_XNNPACK ON CACHE BOOL "" FORCE)
set(EXECUTORCH_ENABLE_LOGGING ON CACHE BOOL "" FORCE)
if(MOBILEBENCH_WITH_ETDUMP)
  set(EXECUTORCH_BUILD_DEVTOOLS ON CACHE BOOL "" FORCE)
  set(EXECUTORCH_ENABLE_EVENT_TRACER ON CACHE BOOL "" FORCE)
endif()
add_subdirectory("${EXECUTORCH_SOURCE_DIR}" "${CMAKE_BINARY_DIR}/executorch" EXCLUDE_FROM_ALL)

# Aggregate targets ExecuTorch defines for consumers (docs: using-executorch-cpp.md);
# they carry include directories, definitions and whole-archive linking themselves.
set(MB_ET_LINK executorch executorch_backends executorch_extensions executorch_kernels)
set(MB_HAVE_ETDUMP OFF)
if(MOBILEBENCH_WITH_ETDUMP AND TARGET etdump)
  list(APPEND MB_ET_LINK etdump)
  set(MB_HAVE_ETDUMP ON)
endif()
set(MB_ET_INCLUDE_DIRS "")
set(MB_ET_DEFINITIONS ET_USE_THREADPOOL)
set(MB_ET_RPATH "")  # static libraries: nothing to find at run time

file(STRINGS "${EXECUTORCH_SOURCE_DIR}/version.txt" MB_ET_VERSION LIMIT_COUNT 1)
set(MB_ET_GIT_VERSION "unknown")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND "${GIT_EXECUTABLE}" -C "${EXECUTORCH_SOURCE_DIR}" rev-parse HEAD
                  OUTPUT_VARIABLE _mb_git OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE _mb_git_rc ERROR_QUIET)
  if(_mb_git_rc EQUAL 0)
    set(MB_ET_GIT_VERSION "${_mb_git}")
  endif()
endif()
message(STATUS "mobilebench_runner: executorch ${MB_ET_VERSION} (${MB_ET_GIT_VERSION}) from source")
