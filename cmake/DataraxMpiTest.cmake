# datarax_add_mpi_test(NAME NP <processes> DEVICES <per process> COMMAND <program> [args...]
#                      [TIMEOUT s] [LABELS ...])
# A CTest test that runs COMMAND under the MPI launcher FindMPI found (MPIEXEC_EXECUTABLE) with NP
# processes, each with DEVICES logical CPU devices. Open MPI's mpirun also gets --oversubscribe
# (more processes than cores is how these tests run on small machines) and, when the tests run as
# root, --allow-run-as-root; MPICH's mpiexec (Hydra) needs neither, and rejects them. The flags
# chosen here are chosen again when the launcher changes (another MPIEXEC_EXECUTABLE, or the same
# path now leading elsewhere, as /usr/bin/mpiexec after update-alternatives); flags set by hand
# are kept.
include_guard(GLOBAL)

get_filename_component(_datarax_launcher "${MPIEXEC_EXECUTABLE}" REALPATH)
if(DEFINED CACHE{_DATARAX_MPIEXEC_FLAGS_FOR} AND NOT _DATARAX_MPIEXEC_FLAGS_FOR STREQUAL _datarax_launcher AND
   "${DATARAX_MPIEXEC_FLAGS}" STREQUAL "${_DATARAX_MPIEXEC_FLAGS_CHOSEN}")
  unset(DATARAX_MPIEXEC_FLAGS CACHE)
endif()
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
  set(_DATARAX_MPIEXEC_FLAGS_CHOSEN "${_flags}" CACHE INTERNAL "DATARAX_MPIEXEC_FLAGS as chosen here")
endif()
set(_DATARAX_MPIEXEC_FLAGS_FOR "${_datarax_launcher}" CACHE INTERNAL "The launcher DATARAX_MPIEXEC_FLAGS was chosen for")

# Under AddressSanitizer the MPI tests run without LeakSanitizer: Open MPI leaves allocations of its
# plugins at exit, from libraries it has unloaded by then, whose frames no suppression can name.
# ASan's memory errors and UBSan stay on. Every test that starts the launcher gets this.
function(datarax_mpi_test_environment name)
  if(DATARAX_SANITIZE MATCHES "address")
    set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
  endif()
endfunction()

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
  datarax_mpi_test_environment(${name})
endfunction()
