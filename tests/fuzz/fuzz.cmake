# libFuzzer targets, included by every tests/fuzz/<target>/CMakeLists.txt.
#
# Why a second tree: libFuzzer needs clang (-fsanitize=fuzzer) and the main
# build uses gcc. Building the fuzzers from the main tree would mean either
# switching everyone's compiler or bolting an ExternalProject onto `all`, so
# every `cmake --build` would pay a second compile of the host libraries.
# Instead:
#  - the main (gcc) tree only registers ctest entries: `fuzz_build` (a
#    fixture setup that runs tests/fuzz/build.sh, which configures and builds
#    a clang tree in <build>/fuzz-clang with -DQUARK_FUZZ=ON) and one short
#    smoke run per target over its committed seeds. Nothing is compiled by
#    `cmake --build` of the main tree.
#  - the clang tree (QUARK_FUZZ=ON) compiles the same module CMakeLists with
#    -fsanitize=fuzzer-no-link,address,undefined everywhere (so others' code
#    carries coverage counters) and links the fuzz_<target> executables with
#    -fsanitize=fuzzer. Only the fuzz targets and the libraries they link are
#    built there.
include_guard(GLOBAL)

option(QUARK_FUZZ "This tree builds the libFuzzer targets (clang only; see tests/fuzz/build.sh)" OFF)

# Cache variables: include_guard(GLOBAL) skips this file in every later
# target directory, and plain variables would stay in the first one's scope.
set(QUARK_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR} CACHE INTERNAL "")
set(QUARK_FUZZ_TREE ${CMAKE_BINARY_DIR}/fuzz-clang CACHE INTERNAL "")

# Sources that clang refuses to compile: they jump with `goto` past a
# declaration that carries a cleanup attribute (clang: "cannot jump from this
# goto statement to its label"); gcc accepts it and the cleanup then frees an
# uninitialized pointer on that error path (findings/README.md). The fuzz
# tree builds their libraries without them; a target that needs a skipped
# file's symbols must then link its own stand-ins. Empty today: the one
# entry it had (cri/image/rootfs.c) was fixed. Drop an entry once its file
# compiles with clang.
set(QUARK_FUZZ_SKIP_SOURCES "" CACHE INTERNAL "")

if(QUARK_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "QUARK_FUZZ=ON needs clang (tests/fuzz/build.sh sets CC=clang)")
  endif()
  include(CheckCSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer")
  check_c_source_compiles(
    "#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }"
    QUARK_HAVE_LIBFUZZER)
  unset(CMAKE_REQUIRED_FLAGS)
  if(NOT QUARK_HAVE_LIBFUZZER)
    message(FATAL_ERROR "clang cannot link -fsanitize=fuzzer (Debian: libclang-rt-14-dev)")
  endif()
  # "<name> <binary> <seed dir> <max_len>" per target, for smoke.sh and the
  # figures script (tests/bench/fuzz/run.sh).
  file(WRITE ${CMAKE_BINARY_DIR}/fuzz-targets.txt "")
endif()

# The library to link in the clang tree for `orig`: orig itself, or a copy
# ("qfuzz_<orig>": same includes, definitions and options) without the
# sources in QUARK_FUZZ_SKIP_SOURCES and linking the copies of its own
# dependencies where those needed one. Memoized in a global property.
function(_quark_fuzz_lib orig outvar)
  get_property(known GLOBAL PROPERTY QUARK_FUZZ_MAP_${orig} SET)
  if(known)
    get_property(m GLOBAL PROPERTY QUARK_FUZZ_MAP_${orig})
    set(${outvar} ${m} PARENT_SCOPE)
    return()
  endif()
  get_target_property(srcs ${orig} SOURCES)
  get_target_property(dir ${orig} SOURCE_DIR)
  set(keep "")
  set(changed FALSE)
  foreach(s IN LISTS srcs)
    if(IS_ABSOLUTE "${s}")
      set(abs "${s}")
    else()
      set(abs "${dir}/${s}")
    endif()
    file(RELATIVE_PATH rel "${PROJECT_SOURCE_DIR}" "${abs}")
    if(rel IN_LIST QUARK_FUZZ_SKIP_SOURCES)
      set(changed TRUE)
    else()
      list(APPEND keep "${abs}")
    endif()
  endforeach()
  get_target_property(libs ${orig} LINK_LIBRARIES)
  set(mapped "")
  foreach(l IN LISTS libs)
    set(use "${l}")
    if(TARGET "${l}")
      get_target_property(imported "${l}" IMPORTED)
      if(NOT imported)
        _quark_fuzz_lib("${l}" use)
      endif()
    endif()
    if(NOT use STREQUAL l)
      set(changed TRUE)
    endif()
    list(APPEND mapped "${use}")
  endforeach()
  set(result ${orig})
  if(changed)
    set(result qfuzz_${orig})
    # Imported targets the module found in its own directory (Threads::Threads).
    find_package(Threads REQUIRED)
    add_library(${result} STATIC ${keep})
    target_include_directories(${result} PUBLIC $<TARGET_PROPERTY:${orig},INCLUDE_DIRECTORIES>)
    target_compile_definitions(${result} PUBLIC $<TARGET_PROPERTY:${orig},COMPILE_DEFINITIONS>)
    target_compile_options(${result} PUBLIC $<TARGET_PROPERTY:${orig},COMPILE_OPTIONS>)
    if(mapped)
      target_link_libraries(${result} PUBLIC ${mapped})
    endif()
  endif()
  set_property(GLOBAL PROPERTY QUARK_FUZZ_MAP_${orig} ${result})
  set(${outvar} ${result} PARENT_SCOPE)
endfunction()

# Main tree: the build fixture, registered once.
# --keep-going: a target that does not build fails its own smoke test, not
# every other one.
if(NOT QUARK_FUZZ)
  add_test(NAME fuzz_build
           COMMAND ${QUARK_FUZZ_DIR}/build.sh --keep-going ${QUARK_FUZZ_TREE})
  set_tests_properties(fuzz_build PROPERTIES FIXTURES_SETUP quark_fuzz SKIP_RETURN_CODE 77
                       LABELS fuzz TIMEOUT 900)
endif()

# quark_fuzz_target(<name> SOURCES <files> LIBS <targets> [SEEDS <dir>] [RUNS <n>]
#                   [SECONDS <s>] [MAX_LEN <bytes>])
# Clang tree: the executable fuzz_<name>, built only when every LIBS target
# exists. Main tree: the ctest smoke run `fuzz_<name>` over SEEDS (default
# <target dir>/seeds), at most RUNS inputs (default 20000) or SECONDS
# (default 15), whichever ends first.
function(quark_fuzz_target name)
  cmake_parse_arguments(F "" "SEEDS;RUNS;SECONDS;MAX_LEN" "SOURCES;LIBS" ${ARGN})
  if(NOT F_SEEDS)
    set(F_SEEDS ${CMAKE_CURRENT_SOURCE_DIR}/seeds)
  endif()
  if(NOT F_RUNS)
    set(F_RUNS 20000)
  endif()
  if(NOT F_SECONDS)
    set(F_SECONDS 15)
  endif()
  if(NOT F_MAX_LEN)
    set(F_MAX_LEN 65536)
  endif()
  if(QUARK_FUZZ)
    set(libs "")
    foreach(l IN LISTS F_LIBS)
      if(NOT TARGET ${l})
        message(STATUS "fuzz_${name}: ${l} is not a target here, not built")
        return()
      endif()
      _quark_fuzz_lib(${l} use)
      list(APPEND libs ${use})
    endforeach()
    add_executable(fuzz_${name} ${F_SOURCES})
    target_include_directories(fuzz_${name} PRIVATE ${QUARK_FUZZ_DIR}/include)
    target_link_libraries(fuzz_${name} PRIVATE ${libs})
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    set_property(GLOBAL APPEND PROPERTY QUARK_FUZZ_TARGETS fuzz_${name})
    # One line per target for build.sh and the figures script.
    file(APPEND ${CMAKE_BINARY_DIR}/fuzz-targets.txt
         "${name} ${CMAKE_CURRENT_BINARY_DIR}/fuzz_${name} ${F_SEEDS} ${F_MAX_LEN}\n")
  else()
    add_test(NAME fuzz_${name}
             COMMAND ${QUARK_FUZZ_DIR}/smoke.sh ${QUARK_FUZZ_TREE} ${name} ${F_RUNS} ${F_SECONDS})
    set_tests_properties(fuzz_${name} PROPERTIES FIXTURES_REQUIRED quark_fuzz SKIP_RETURN_CODE 77
                         LABELS fuzz TIMEOUT 300)
  endif()
endfunction()
