# The ExecuTorch C++ SDK of the installed pip wheel.
#
# Found through the package (CMAKE_PREFIX_PATH=<site-packages>/executorch, which the
# Makefile computes from `import executorch`), never through a hard-coded path.
# The wheel's config offers imported targets on CMake >= 3.28 and plain library paths
# below that; both are handled by mb_executorch_component().
find_package(executorch REQUIRED CONFIG)

if(NOT EXECUTORCH_RUNTIME_LIBRARY_DIR OR NOT EXISTS "${EXECUTORCH_RUNTIME_LIBRARY_DIR}")
  message(FATAL_ERROR "the executorch package at ${executorch_DIR} ships no C++ runtime library")
endif()
get_filename_component(_mb_et_lib_dir "${EXECUTORCH_RUNTIME_LIBRARY_DIR}" REALPATH)
get_filename_component(_mb_et_package_root "${_mb_et_lib_dir}/.." ABSOLUTE)

# One shipped component: its imported target when the config defined one, else the library
# by path, kept on the link line with --no-as-needed because a kernel or delegate library
# only registers itself from static initialisers and has no symbol the runner references.
function(mb_executorch_component out_var target_suffix library_name required)
  set(_item "")
  if(TARGET executorch::${target_suffix})
    set(_item executorch::${target_suffix})
  elseif(EXISTS "${_mb_et_lib_dir}/lib${library_name}.so")
    set(_item "-Wl,--push-state,--no-as-needed,${_mb_et_lib_dir}/lib${library_name}.so,--pop-state")
  elseif(required)
    message(FATAL_ERROR "the executorch wheel at ${_mb_et_package_root} lacks lib${library_name}.so")
  endif()
  set(${out_var} "${_item}" PARENT_SCOPE)
endfunction()

# Only what an XNNPACK program (fp32 or int8) needs: the runtime, the CPU kernels for ops
# left outside the delegate, the quantized kernels (quantize/dequantize left at a
# delegate's boundary), the XNNPACK delegate and the shared thread pool. Other delegates
# the wheel carries (OpenVINO, QNN) are left out on purpose.
mb_executorch_component(_mb_runtime runtime executorch TRUE)
mb_executorch_component(_mb_kernels kernels_optimized executorch_kernels_optimized TRUE)
mb_executorch_component(_mb_quantized kernels_quantized executorch_kernels_quantized FALSE)
mb_executorch_component(_mb_xnnpack backend_xnnpack executorch_backend_xnnpack TRUE)
mb_executorch_component(_mb_threadpool threadpool executorch_threadpool TRUE)
set(MB_ET_LINK ${_mb_runtime} ${_mb_kernels} ${_mb_quantized} ${_mb_xnnpack} ${_mb_threadpool})

set(MB_HAVE_ETDUMP OFF)
if(MOBILEBENCH_WITH_ETDUMP)
  mb_executorch_component(_mb_etdump etdump executorch_etdump FALSE)
  if(_mb_etdump)
    list(APPEND MB_ET_LINK ${_mb_etdump})
    set(MB_HAVE_ETDUMP ON)
  endif()
endif()

set(MB_ET_INCLUDE_DIRS ${EXECUTORCH_INCLUDE_DIRS})
set(MB_ET_DEFINITIONS ${EXECUTORCH_COMPILE_DEFINITIONS})
# The runner resets the thread pool itself, so it needs the threaded declaration even on
# the imported-target route, where the config puts it on the runtime target only.
if(NOT "ET_USE_THREADPOOL" IN_LIST MB_ET_DEFINITIONS)
  list(APPEND MB_ET_DEFINITIONS ET_USE_THREADPOOL)
endif()
set(MB_ET_RPATH "${_mb_et_lib_dir}")

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
