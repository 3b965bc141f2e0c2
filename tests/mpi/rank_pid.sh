# Sourced by the MPI test scripts: rank_pid RANK PROGRAM prints the PID of the process of world rank
# RANK among the processes running PROGRAM (the launcher's children carry their rank in their
# environment: Open MPI's OMPI_COMM_WORLD_RANK, MPICH Hydra's PMI_RANK), or nothing.
rank_pid() {
  local rank=$1 program=$2 p
  for p in $(pgrep -f -- "$program"); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qxE "OMPI_COMM_WORLD_RANK=$rank|PMI_RANK=$rank"; then
      echo "$p"
      return
    fi
  done
}
