# Static test programs for the guest tests, one function for every test
# directory that builds some. They are built with the host's compilers, not
# with the project's flags: static binaries cannot carry ASan.
#
# quark_guest_progs(<target> PROGS <name>... [VARIANTS <v>...] [NOSUFFIX]
#                   [FLAGS <flag>...] [LIBS <lib>...] [DEPENDS <file>...])
#   Builds ${CMAKE_CURRENT_SOURCE_DIR}/progs/<name>.c into
#   ${CMAKE_CURRENT_BINARY_DIR}/progs/<name>.<v> for each variant v: glibc
#   (-static), pie (-static-pie) or musl (musl-gcc -static; left out where
#   musl-gcc is not installed). Default variants: glibc musl. NOSUFFIX (one
#   variant): the output is progs/<name>. Every program
#   depends on the shared check header tests/integration/guest/progs/t.h.
#   All outputs hang off the custom target <target> (built by `all`).
#   Sets in the caller's scope: QK_PROG_DIR (the output directory), QK_LIBCS
#   (the variants actually built), QK_SBX and QK_KERNEL (quark-sandbox and
#   the guest kernel, as test command arguments).
include_guard(GLOBAL)
find_program(QK_MUSL_GCC musl-gcc)
if(NOT QK_MUSL_GCC)
  message(WARNING "musl-gcc not found: the guest tests run glibc builds only")
endif()
set(QK_GUEST_T_H ${CMAKE_CURRENT_LIST_DIR}/progs/t.h CACHE INTERNAL "")

function(quark_guest_progs target)
  cmake_parse_arguments(G "NOSUFFIX" "" "PROGS;VARIANTS;FLAGS;LIBS;DEPENDS" ${ARGN})
  if(NOT G_VARIANTS)
    set(G_VARIANTS glibc musl)
  endif()
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/progs)
  file(MAKE_DIRECTORY ${dir})
  set(outs "")
  set(built "")
  foreach(v ${G_VARIANTS})
    if(v STREQUAL "glibc")
      set(cc ${CMAKE_C_COMPILER})
      set(fl -static)
    elseif(v STREQUAL "pie")
      set(cc ${CMAKE_C_COMPILER})
      set(fl -static-pie -fPIE)
    elseif(v STREQUAL "musl")
      if(NOT QK_MUSL_GCC)
        continue()
      endif()
      set(cc ${QK_MUSL_GCC})
      set(fl -static)
    else()
      message(FATAL_ERROR "quark_guest_progs: unknown variant ${v}")
    endif()
    list(APPEND built ${v})
    foreach(p ${G_PROGS})
      if(G_NOSUFFIX)
        set(out ${dir}/${p})
      else()
        set(out ${dir}/${p}.${v})
      endif()
      add_custom_command(OUTPUT ${out}
        COMMAND ${cc} ${fl} -O2 -Wall -Wextra -Werror ${G_FLAGS} -o ${out}
                ${CMAKE_CURRENT_SOURCE_DIR}/progs/${p}.c ${G_LIBS}
        DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/progs/${p}.c ${QK_GUEST_T_H} ${G_DEPENDS}
        COMMENT "guest test program ${p} (${v})" VERBATIM)
      list(APPEND outs ${out})
    endforeach()
  endforeach()
  add_custom_target(${target} ALL DEPENDS ${outs})
  set(QK_PROG_DIR ${dir} PARENT_SCOPE)
  set(QK_LIBCS ${built} PARENT_SCOPE)
  if(TARGET quark-sandbox)
    set(QK_SBX $<TARGET_FILE:quark-sandbox> PARENT_SCOPE)
  else()
    set(QK_SBX ${CMAKE_BINARY_DIR}/sandbox/quark-sandbox PARENT_SCOPE)
  endif()
  set(QK_KERNEL $<TARGET_FILE:qkernel> PARENT_SCOPE)
endfunction()

# quark_guest_tests(<name> SCRIPT <script> TIMEOUT <s> [RING0])
#   After quark_guest_progs: one ctest <name>_<libc> per built variant, each
#   running `<script> <libc> QK_SBX QK_KERNEL QK_PROG_DIR`; with RING0 also
#   <name>_<libc>-ring0 (the script's mode argument then ends in -ring0:
#   lib.sh guest_split_mode). Skip code 77, label integration.
function(quark_guest_tests name)
  cmake_parse_arguments(T "RING0" "SCRIPT;TIMEOUT" "" ${ARGN})
  set(modes worker)
  if(T_RING0)
    list(APPEND modes ring0)
  endif()
  foreach(v ${QK_LIBCS})
    foreach(mode ${modes})
      set(m "")
      if(mode STREQUAL "ring0")
        set(m "-ring0")
      endif()
      add_test(NAME ${name}_${v}${m}
               COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/${T_SCRIPT} ${v}${m} ${QK_SBX} ${QK_KERNEL}
                       ${QK_PROG_DIR})
      set_tests_properties(${name}_${v}${m} PROPERTIES SKIP_RETURN_CODE 77 LABELS integration
                           TIMEOUT ${T_TIMEOUT})
    endforeach()
  endforeach()
endfunction()
