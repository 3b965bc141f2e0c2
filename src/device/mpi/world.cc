#include "device/mpi/world.h"

#include <cstdio>
#include <cstdlib>

#include "datarax/error.h"

namespace datarax::detail::mpi {

namespace {

MPI_Comm g_comm = MPI_COMM_NULL;
int g_tag_ub = 32767;  // the least MPI guarantees
bool g_we_initialized = false;

std::string thread_level_name(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE: return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED: return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED: return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE: return "MPI_THREAD_MULTIPLE";
  }
  return "level " + std::to_string(level);
}

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (g_comm != MPI_COMM_NULL) MPI_Comm_free(&g_comm);
  if (g_we_initialized) MPI_Finalize();
}

}  // namespace

std::string error_text(int rc) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) return "MPI error code " + std::to_string(rc);
  return std::string(text, static_cast<std::size_t>(len));
}

void check(int rc, std::string_view what) {
  if (rc != MPI_SUCCESS) throw CollectiveError(std::string(what) + ": " + error_text(rc));
}

World join(int local_devices) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  int provided = MPI_THREAD_SINGLE;
  if (!initialized) {
    const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS) throw Error("initialize: MPI_Init_thread failed: " + error_text(rc));
    g_we_initialized = true;
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_MULTIPLE) {
    const std::string msg = "initialize: MPI provides " + thread_level_name(provided) +
                            "; datarax needs MPI_THREAD_MULTIPLE (each device thread calls MPI, and "
                            "collectives over different mesh axes run at the same time). Use an MPI "
                            "built with thread support (Open MPI: --enable-mpi-thread-multiple; "
                            "MPICH: the default ch4 or ch3 builds)";
    if (g_we_initialized) MPI_Finalize();
    throw Error(msg);
  }
  std::atexit(finalize_at_exit);
  check(MPI_Comm_dup(MPI_COMM_WORLD, &g_comm), "initialize: MPI_Comm_dup");
  check(MPI_Comm_set_errhandler(g_comm, MPI_ERRORS_RETURN), "initialize: MPI_Comm_set_errhandler");
  void* attr = nullptr;
  int flag = 0;
  if (MPI_Comm_get_attr(g_comm, MPI_TAG_UB, &attr, &flag) == MPI_SUCCESS && flag)
    g_tag_ub = *static_cast<int*>(attr);
  World w;
  check(MPI_Comm_rank(g_comm, &w.rank), "initialize: MPI_Comm_rank");
  check(MPI_Comm_size(g_comm, &w.size), "initialize: MPI_Comm_size");
  w.device_counts.resize(static_cast<std::size_t>(w.size));
  check(MPI_Allgather(&local_devices, 1, MPI_INT, w.device_counts.data(), 1, MPI_INT, g_comm),
        "initialize: exchanging device counts (MPI_Allgather)");
  // The processes that share this host, and so its cores: how many device threads run here.
  MPI_Comm host = MPI_COMM_NULL;
  check(MPI_Comm_split_type(g_comm, MPI_COMM_TYPE_SHARED, w.rank, MPI_INFO_NULL, &host),
        "initialize: finding the processes on this host (MPI_Comm_split_type)");
  check(MPI_Allreduce(&local_devices, &w.host_devices, 1, MPI_INT, MPI_SUM, host),
        "initialize: counting this host's devices (MPI_Allreduce)");
  MPI_Comm_free(&host);
  return w;
}

MPI_Comm comm() { return g_comm; }
int tag_upper_bound() { return g_tag_ub; }

}  // namespace datarax::detail::mpi
