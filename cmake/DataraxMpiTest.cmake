# datarax_add_mpi_test(NAME NP <processes> DEVICES <per process> COMMAND <program> [args...]
#                      [TIMEOUT s] [LABELS ...])
# A CTest test that runs COMMAND under the MPI launcher FindMPI found (MPIEXEC_EXECUTABLE) with NP
# processes, each with DEVICES logical CPU devices. Open MPI's mpirun also gets --oversubscribe
# (more processes than cores is how these tests run on small machines) and, when the tests run as
# root, --allow-run-as-root; MPICH's mpiexec (Hydra) needs neither.
include_guard(GLOBAL)

if(NOT DEFINED DATARAX_MPIEXEC_FLAGS)
  execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE _mpiexec_version
                  ERROR_VARIABLE _mpiexec_version RESULT_VARIABLE _rc)
  set(_flags "")
  if(_mpiexec_version MATCHES "Open MPI|OpenRTE")
    list(APPEND _flags --oversubscribe)
    execute_process(COMMAND id -u OUTPUT_VARIABLE _uid OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(_uid STREQUAL "0")
      list(APPEND _flags --allow-run-as-root)
    endif()
  endif()
  set(DATARAX_MPIEXEC_FLAGS "${_flags}" CACHE STRING "Flags datarax's MPI tests pass to ${MPIEXEC_EXECUTABLE}")
endif()

function(datarax_add_mpi_test name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "NP;DEVICES;TIMEOUT" "COMMAND;LABELS")
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 300)
  endif()
  add_test(NAME ${name}
    COMMAND ${CMAKE_COMMAND} -E env DATARAX_NUM_CPU_DEVICES=${arg_DEVICES}
            ${MPIEXEC_EXECUTABLE} ${DATARAX_MPIEXEC_FLAGS} ${MPIEXEC_NUMPROC_FLAG} ${arg_NP} ${arg_COMMAND})
  # RUN_SERIAL: NP processes of DEVICES threads each already fill the machine.
  set_tests_properties(${name} PROPERTIES LABELS "mpi;${arg_LABELS}" TIMEOUT ${arg_TIMEOUT}
                       PROCESSORS ${arg_NP} RUN_SERIAL TRUE)
endfunction()
