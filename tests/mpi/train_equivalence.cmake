# mpirun -np 2 datarax-train --devices 2 must give the per-step losses of a single process with 4
# devices (the same global batches, the same seed) within 1e-5 relative, for 50 steps; and only
# process 0 may report (one header line) and write the metrics file.
#
# cmake -DTRAIN=... -DLAUNCHER="mpiexec;flags..." -DWORK_DIR=... -P train_equivalence.cmake
foreach(var TRAIN LAUNCHER WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "train_equivalence.cmake: ${var} is not set")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(common --steps 50 --log-every 1 --batch-size 256)

execute_process(COMMAND ${TRAIN} --devices 4 ${common} --metrics-out ${WORK_DIR}/single.jsonl
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "single process run failed (${rc}):\n${out}")
endif()
execute_process(COMMAND ${LAUNCHER} -n 2 ${TRAIN} --devices 2 ${common} --metrics-out ${WORK_DIR}/multi.jsonl
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mpirun run failed (${rc}):\n${out}")
endif()
string(REGEX MATCHALL "datarax-train: [0-9]+ devices" headers "${out}")
list(LENGTH headers n_headers)
if(NOT n_headers EQUAL 1 OR NOT headers MATCHES "datarax-train: 4 devices")
  message(FATAL_ERROR "expected one header line for 4 devices (process 0 alone reports), got ${n_headers}: ${headers}\n${out}")
endif()

function(step_losses file out_var)
  file(STRINGS ${file} lines)
  set(losses "")
  foreach(line IN LISTS lines)
    string(JSON step ERROR_VARIABLE err GET "${line}" step)
    if(err)
      continue()  # an epoch line
    endif()
    string(JSON loss GET "${line}" loss)
    list(APPEND losses "${step}:${loss}")
  endforeach()
  set(${out_var} "${losses}" PARENT_SCOPE)
endfunction()
step_losses(${WORK_DIR}/single.jsonl single)
step_losses(${WORK_DIR}/multi.jsonl multi)
list(LENGTH single n1)
list(LENGTH multi n2)
if(NOT n1 EQUAL 50 OR NOT n2 EQUAL 50)
  message(FATAL_ERROR "expected 50 step records in each metrics file, got ${n1} (single) and ${n2} (mpirun)")
endif()
# |a - b| <= 1e-5 |a|, in Python-free CMake: compare through math(EXPR) on scaled integers is too
# coarse, so the check runs in the shell's awk.
set(pairs "")
foreach(i RANGE 49)
  list(GET single ${i} a)
  list(GET multi ${i} b)
  string(REPLACE ":" " " a "${a}")
  string(REPLACE ":" " " b "${b}")
  string(APPEND pairs "${a} ${b}\n")
endforeach()
file(WRITE ${WORK_DIR}/pairs.txt "${pairs}")
execute_process(COMMAND awk "{ if ($1 != $3) { print \"step \" $1 \" vs \" $3; bad = 1 } d = $2 - $4; if (d < 0) d = -d; a = $2; if (a < 0) a = -a; r = d / a; if (r > worst) worst = r; if (r > 1e-5) { print \"step \" $1 \": loss \" $2 \" (1 process) vs \" $4 \" (2 processes), relative difference \" r; bad = 1 } } END { printf \"largest relative difference over 50 steps: %.3g\\n\", worst; exit bad }" ${WORK_DIR}/pairs.txt
                RESULT_VARIABLE rc OUTPUT_VARIABLE report)
message(STATUS "${report}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "per-step losses differ:\n${report}")
endif()
