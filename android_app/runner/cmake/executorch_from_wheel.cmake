# The ExecuTorch C++ SDK of the installed pip wheel.
#
# Found through the package (CMAKE_PREFIX_PATH=<site-packages>/executorch, which the
# Makefile computes from `import executorch`), never through a hard-coded path. The
# config gives the library directory, include directories, compile definitions and
# version; the libraries are then linked by path, the same way on every CMake version.
find_package(executorch REQUIRED CONFIG)

if(NOT EXECUTORCH_RUNTIME_LIBRARY_DIR OR NOT EXISTS "${EXECUTORCH_RUNTIME_LIBRARY_DIR}")
  message(FATAL_ERROR "the executorch package at ${executorch_DIR} ships no C++ runtime library")
endif()
get_filename_component(_mb_et_lib_dir "${EXECUTORCH_RUNTIME_LIBRARY_DIR}" REALPATH)
get_filename_component(_mb_et_package_root "${_mb_et_lib_dir}/.." ABSOLUTE)

# One shipped component, linked by path and kept on the link line with --no-as-needed: a
# kernel or delegate library only registers itself from static initialisers, so the runner
# references none of its symbols. By path rather than through the executorch::<name>
# targets (CMake >= 3.28) on purpose: those add $ORIGIN-relative search paths, and this
# binary must find exactly the wheel's libraries wherever it is copied (see MB_ET_RPATH).
function(mb_executorch_component out_var library_name required)
  set(_library "${_mb_et_lib_dir}/lib${library_name}.so")
  if(EXISTS "${_library}")
    set(${out_var} "-Wl,--push-state,--no-as-needed,${_library},--pop-state" PARENT_SCOPE)
  elseif(required)
    message(FATAL_ERROR "the executorch wheel at ${_mb_et_package_root} lacks lib${library_name}.so")
  else()
    set(${out_var} "" PARENT_SCOPE)
  endif()
endfunction()

# Only what an XNNPACK program (fp32 or int8) needs: the runtime, the CPU kernels for ops
# left outside the delegate, the quantized kernels (quantize/dequantize left at a
# delegate's boundary), the XNNPACK delegate and the shared thread pool. Other delegates
# the wheel carries (OpenVINO, QNN) are left out on purpose.
mb_executorch_component(_mb_runtime executorch TRUE)
mb_executorch_component(_mb_kernels executorch_kernels_optimized TRUE)
mb_executorch_component(_mb_quantized executorch_kernels_quantized FALSE)
mb_executorch_component(_mb_xnnpack executorch_backend_xnnpack TRUE)
mb_executorch_component(_mb_threadpool executorch_threadpool TRUE)
set(MB_ET_LINK ${_mb_runtime} ${_mb_kernels} ${_mb_quantized} ${_mb_xnnpack} ${_mb_threadpool})

set(MB_HAVE_ETDUMP OFF)
if(MOBILEBENCH_WITH_ETDUMP)
  mb_executorch_component(_mb_etdump executorch_etdump FALSE)
  if(_mb_etdump)
    list(APPEND MB_ET_LINK ${_mb_etdump})
    set(MB_HAVE_ETDUMP ON)
  endif()
endif()

set(MB_ET_INCLUDE_DIRS ${EXECUTORCH_INCLUDE_DIRS})
set(MB_ET_DEFINITIONS ${EXECUTORCH_COMPILE_DEFINITIONS})
# The runner resets the thread pool itself: it needs the threaded declaration (the config
# puts it in the variable only on CMake < 3.28, on the runtime target above that).
if(NOT "ET_USE_THREADPOOL" IN_LIST MB_ET_DEFINITIONS)
  list(APPEND MB_ET_DEFINITIONS ET_USE_THREADPOOL)
endif()
if(CMAKE_CROSSCOMPILING)
  # A cross build (the arm64 bundle) ships the SDK's libraries in lib/ next to the runner.
  set(MB_ET_RPATH "$ORIGIN/lib")
else()
  set(MB_ET_RPATH "${_mb_et_lib_dir}")
endif()

# The runtime version the binary reports, from the wheel's own version.py (the same
# string `executorch.version.__version__` gives in Python).
set(MB_ET_VERSION "unknown")
set(MB_ET_GIT_VERSION "unknown")
set(_mb_version_py "${_mb_et_package_root}/version.py")
if(EXISTS "${_mb_version_py}")
  file(STRINGS "${_mb_version_py}" _mb_version_lines REGEX "^(__version__|git_version)")
  foreach(_line IN LISTS _mb_version_lines)
    if(_line MATCHES "^__version__[^'\"]*['\"]([^'\"]+)['\"]")
      set(MB_ET_VERSION "${CMAKE_MATCH_1}")
    elseif(_line MATCHES "^git_version[^'\"]*['\"]([^'\"]+)['\"]")
      set(MB_ET_GIT_VERSION "${CMAKE_MATCH_1}")
    endif()
  endforeach()
elseif(EXECUTORCH_BUILD_VERSION)
  set(MB_ET_VERSION "${EXECUTORCH_BUILD_VERSION}")
endif()
message(STATUS "mobilebench_runner: executorch ${MB_ET_VERSION} from ${_mb_et_package_root}")
