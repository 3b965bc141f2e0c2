# Two runs of datarax-train that must compute the same thing: a reference (1 device, or whatever
# REF_ARGS says) and a layout (ARGS, under LAUNCHER when set), both with COMMON. Their per-step
# losses must agree within 1e-5 relative for every step, and, when CLOSE is set, their --save
# files per tensor within 1e-5 in relative L2 norm (CLOSE is the safetensors_close helper). Only
# process 0 may report: the layout run must print exactly one header line, for the mesh
# HEADER (a regex) when given, and a "layout: " line matching LAYOUT (a regex) when given.
#
# cmake -DTRAIN=... -DCOMMON="--steps;50;..." -DREF_ARGS="--devices;1" -DARGS="--devices;4;--mesh;data=2,model=2"
#       [-DLAUNCHER="mpiexec;flags...;-n;2"] [-DCLOSE=safetensors_close] [-DHEADER=regex] -DWORK_DIR=...
#       -P train_equivalence.cmake
foreach(var TRAIN COMMON REF_ARGS ARGS WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "train_equivalence.cmake: ${var} is not set")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(ref_save "")
set(run_save "")
if(CLOSE)
  set(ref_save --save ${WORK_DIR}/reference.safetensors)
  set(run_save --save ${WORK_DIR}/layout.safetensors)
endif()

execute_process(COMMAND ${TRAIN} ${REF_ARGS} ${COMMON} --log-every 1 --metrics-out ${WORK_DIR}/reference.jsonl ${ref_save}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "reference run (${REF_ARGS}) failed (${rc}):\n${out}")
endif()
execute_process(COMMAND ${LAUNCHER} ${TRAIN} ${ARGS} ${COMMON} --log-every 1 --metrics-out ${WORK_DIR}/layout.jsonl ${run_save}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "layout run (${LAUNCHER} ${ARGS}) failed (${rc}):\n${out}")
endif()
message(STATUS "${out}")
string(REGEX MATCHALL "datarax-train: [0-9]+ devices Mesh\\([^;)]*" headers "${out}")
list(LENGTH headers n_headers)
if(NOT n_headers EQUAL 1)
  message(FATAL_ERROR "expected one header line (process 0 alone reports), got ${n_headers}: ${headers}\n${out}")
endif()
if(HEADER AND NOT headers MATCHES "${HEADER}")
  message(FATAL_ERROR "the header \"${headers}\" does not match \"${HEADER}\"")
endif()
string(REGEX MATCH "  layout: [^\n]*" layout_line "${out}")
if(LAYOUT AND NOT layout_line MATCHES "${LAYOUT}")
  message(FATAL_ERROR "the layout line \"${layout_line}\" does not match \"${LAYOUT}\"")
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
step_losses(${WORK_DIR}/reference.jsonl reference)
step_losses(${WORK_DIR}/layout.jsonl layout)
list(LENGTH reference n1)
list(LENGTH layout n2)
if(NOT n1 EQUAL n2 OR n1 LESS 2)
  message(FATAL_ERROR "expected the same steps in both metrics files, got ${n1} (reference) and ${n2} (layout)")
endif()
# |a - b| <= 1e-5 |a| per step, in the shell's awk (CMake has no floating point).
set(pairs "")
math(EXPR last "${n1} - 1")
foreach(i RANGE ${last})
  list(GET reference ${i} a)
  list(GET layout ${i} b)
  string(REPLACE ":" " " a "${a}")
  string(REPLACE ":" " " b "${b}")
  string(APPEND pairs "${a} ${b}\n")
endforeach()
file(WRITE ${WORK_DIR}/pairs.txt "${pairs}")
execute_process(COMMAND awk "{ if ($1 != $3) { print \"step \" $1 \" vs \" $3; bad = 1 } d = $2 - $4; if (d < 0) d = -d; a = $2; if (a < 0) a = -a; r = d / a; if (r > worst) worst = r; if (!(r <= 1e-5)) { print \"step \" $1 \": loss \" $2 \" (reference) vs \" $4 \" (layout), relative difference \" r; bad = 1 } } END { printf \"largest relative loss difference over %d steps: %.3g\\n\", NR, worst; exit bad }" ${WORK_DIR}/pairs.txt
                RESULT_VARIABLE rc OUTPUT_VARIABLE report)
message(STATUS "${report}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "per-step losses differ:\n${report}")
endif()
if(CLOSE)
  execute_process(COMMAND ${CLOSE} ${WORK_DIR}/reference.safetensors ${WORK_DIR}/layout.safetensors 1e-5
                  RESULT_VARIABLE rc OUTPUT_VARIABLE report ERROR_VARIABLE report)
  message(STATUS "--save files:\n${report}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the --save files differ:\n${report}")
  endif()
endif()
