# The consumer_find_package test: can a project outside datarax's build use an installed datarax?
#
#   0. bring the installed targets up to date (a no-op after a full build)
#   1. install the build tree into a fresh prefix, and check that only the library, its headers,
#      its CMake package and datarax-info were installed (no test, example or benchmark binaries)
#   2. configure tests/consumer as a project of its own with CMAKE_PREFIX_PATH=<prefix>, and check
#      that find_package found the package in that prefix
#   3. build it
#   4. run it and check its output
#
# Every step fails the test with the step's name and the output of the command. Nothing is
# downloaded; every directory it writes is under WORK_DIR and is recreated on each run.

foreach(var DATARAX_BINARY_DIR DATARAX_TARGETS CONSUMER_SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: pass -D${var}=...")
  endif()
endforeach()

set(prefix ${WORK_DIR}/prefix)
set(consumer_build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

set(config_args "")
if(CONFIG)
  set(config_args --config ${CONFIG})
endif()

# run(<step> <command>...): runs the command; any failure ends the test, showing its output.
function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "consumer_find_package: step '${step}' failed (exit ${rc})\n"
                        "command: ${command}\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

# 0. The installed targets, up to date: installing needs them built, and a stale library would be
#    checked instead of the current one.
string(REPLACE "," ";" targets "${DATARAX_TARGETS}")
run("build datarax" ${CMAKE_COMMAND} --build ${DATARAX_BINARY_DIR} ${config_args} --target ${targets})

# 1. Install, and check what was installed.
run("install" ${CMAKE_COMMAND} --install ${DATARAX_BINARY_DIR} --prefix ${prefix} ${config_args})
file(GLOB_RECURSE installed LIST_DIRECTORIES false RELATIVE ${prefix} ${prefix}/*)
set(unexpected "")
set(found_library FALSE)
set(found_config FALSE)
set(found_header FALSE)
foreach(file IN LISTS installed)
  if(file MATCHES "^include/datarax/.+\\.h$")
    set(found_header TRUE)
  elseif(file MATCHES "^lib(64)?/libdatarax\\.(a|so[.0-9]*)$")
    set(found_library TRUE)
  elseif(file MATCHES "^lib(64)?/cmake/datarax/dataraxConfig\\.cmake$")
    set(found_config TRUE)
  elseif(file MATCHES "^lib(64)?/cmake/datarax/[A-Za-z-]+\\.cmake$")
  elseif(file MATCHES "^bin/datarax-(info|train|generate)$")
  else()
    list(APPEND unexpected ${file})
  endif()
endforeach()
if(unexpected)
  string(REPLACE ";" "\n  " unexpected "${unexpected}")
  message(FATAL_ERROR "consumer_find_package: step 'install' installed files that are not part of "
                      "the package (only the library, include/datarax, lib/cmake/datarax and the "
                      "datarax-* tools in bin belong there):\n  ${unexpected}")
endif()
if(NOT found_library OR NOT found_config OR NOT found_header)
  message(FATAL_ERROR "consumer_find_package: step 'install' did not install the library "
                      "(${found_library}), dataraxConfig.cmake (${found_config}) and the headers "
                      "(${found_header}); installed: ${installed}")
endif()
list(LENGTH installed installed_count)
message(STATUS "installed ${installed_count} files into ${prefix}")

# 2. Configure the consumer against the prefix only: no package registries, so a datarax found
#    anywhere else cannot stand in for the one just installed.
set(configure_args
  -S ${CONSUMER_SOURCE_DIR} -B ${consumer_build} -G ${GENERATOR}
  -DCMAKE_PREFIX_PATH=${prefix}
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
  -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
  -DCONSUMER_WERROR=${WERROR})
if(MAKE_PROGRAM)
  list(APPEND configure_args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
if(CONFIG)
  list(APPEND configure_args -DCMAKE_BUILD_TYPE=${CONFIG})
endif()
if(SANITIZE)
  # The static library was built with sanitizers; its users must link their runtimes too.
  list(APPEND configure_args "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=${SANITIZE}")
endif()
run("configure consumer" ${CMAKE_COMMAND} ${configure_args})
file(STRINGS ${consumer_build}/CMakeCache.txt found_dir REGEX "^datarax_DIR:")
if(NOT found_dir MATCHES "=${prefix}/lib(64)?/cmake/datarax$")
  message(FATAL_ERROR "consumer_find_package: step 'configure consumer' found datarax outside the "
                      "install prefix ${prefix}: ${found_dir}")
endif()

# 3. Build.
run("build consumer" ${CMAKE_COMMAND} --build ${consumer_build} ${config_args})

# 4. Run, and check the output.
find_program(app NAMES app PATHS ${consumer_build} ${consumer_build}/${CONFIG} NO_DEFAULT_PATH
             NO_CACHE)
if(NOT app)
  message(FATAL_ERROR "consumer_find_package: step 'run consumer': no app binary in ${consumer_build}")
endif()
run("run consumer" ${app})
set(expected "consumer: MeshInfo(total_devices=8, axes={data=2, model=4}, device_kinds={cpu}")
string(FIND "${step_output}" "${expected}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "consumer_find_package: step 'run consumer' printed\n${step_output}\n"
                      "which lacks: ${expected}")
endif()
message(STATUS "consumer_find_package: passed\n${step_output}")
