#include "datarax/device_discovery.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "datarax/error.h"
#include "device/process_group.h"

#if DATARAX_HAVE_MPI
#include "device/mpi/world.h"
#endif

namespace datarax {

namespace {

struct Runtime {
  bool initialized = false;
  int num_cpu_devices = 0;
  int process_index = 0;
  int process_count = 1;
  int host_devices = 0;  // device threads of every process on this host
  std::vector<Device> devices;
  std::vector<Device> local_devices;
};

std::mutex& runtime_mutex() {
  static std::mutex mu;
  return mu;
}

Runtime& runtime_state() {
  static Runtime rt;
  return rt;
}

int resolve_num_cpu_devices(const InitOptions& options) {
  if (options.num_cpu_devices) {
    const int n = *options.num_cpu_devices;
    if (n < 1 || n > kMaxCpuDevices)
      throw InvalidArgumentError("initialize: num_cpu_devices = " + std::to_string(n) +
                                 " is out of range; valid: 1.." + std::to_string(kMaxCpuDevices));
    return n;
  }
  if (const char* env = std::getenv("DATARAX_NUM_CPU_DEVICES"); env != nullptr)
    return parse_num_cpu_devices(env, "DATARAX_NUM_CPU_DEVICES");
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(std::min<unsigned>(hw, kMaxCpuDevices));
}

// The environment variable that shows this process was started by an MPI launcher, or null.
// mpirun/mpiexec of Open MPI set OMPI_COMM_WORLD_SIZE; MPICH's Hydra (mpiexec.mpich) and Slurm's
// srun with PMI-2 set PMI_SIZE (with PMI_RANK and PMI_FD), except Hydra's -pmi-port mode, which
// sets PMI_PORT and PMI_ID instead; PMIx launchers (Open MPI 5, srun --mpi=pmix) set PMIX_RANK.
// DATARAX_MPI=0 ignores them all, DATARAX_MPI=1 joins MPI even without them.
const char* launcher_variable() {
  if (const char* force = std::getenv("DATARAX_MPI"); force != nullptr) {
    if (std::string_view(force) == "0") return nullptr;
    if (std::string_view(force) == "1") return "DATARAX_MPI";
    throw InvalidArgumentError("initialize: DATARAX_MPI=\"" + std::string(force) +
                               "\" is not valid; use 1 (join MPI), 0 (stay a single process) or unset it "
                               "(join MPI when started by mpirun, mpiexec or srun)");
  }
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_PORT"})
    if (std::getenv(name) != nullptr) return name;
  return nullptr;
}

#if DATARAX_HAVE_MPI
// A launcher of one MPI starts the programs of another (Open MPI's mpirun and an MPICH build of
// datarax, or the reverse) each as a singleton: MPI_Init sees a job of one. Throws then, instead
// of running every process as a job of its own. `size`: the processes MPI sees.
void check_launcher_size(int size) {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char* env = std::getenv(name);
    if (env == nullptr) continue;
    int launched = 0;
    const std::string_view text(env);
    if (std::from_chars(text.data(), text.data() + text.size(), launched).ec != std::errc() || launched == size)
      return;
    throw Error("initialize: the launcher started " + std::string(text) + " processes (" + name + "=" +
                std::string(text) + ") but MPI sees " + std::to_string(size) +
                "; the launcher belongs to another MPI than the one datarax was built with. Start the "
                "program with that MPI's mpiexec (ldd shows which: libmpi.so.40 is Open MPI's mpirun, "
                "libmpich.so.12 is MPICH's mpiexec.mpich)");
  }
}
#endif

// Called with the runtime mutex held.
void set_up(Runtime& rt, int num_cpu_devices) {
  std::vector<int> counts{num_cpu_devices};
  int host_devices = num_cpu_devices;
  if (const char* launcher = launcher_variable(); launcher != nullptr) {
#if DATARAX_HAVE_MPI
    const detail::mpi::World world = detail::mpi::join(num_cpu_devices);
    check_launcher_size(world.size);
    rt.process_index = world.rank;
    rt.process_count = world.size;
    counts = world.device_counts;
    host_devices = world.host_devices;
#else
    throw Error(std::string("initialize: started by an MPI launcher (") + launcher +
                " is set) but this build of datarax has no MPI; rebuild with MPI installed "
                "(-DDATARAX_WITH_MPI=ON), or set DATARAX_MPI=0 to run each process on its own");
#endif
  }
  rt.num_cpu_devices = num_cpu_devices;
  rt.host_devices = host_devices;
  rt.devices.clear();
  rt.local_devices.clear();
  int id = 0;
  for (int p = 0; p < static_cast<int>(counts.size()); ++p)
    for (int i = 0; i < counts[static_cast<std::size_t>(p)]; ++i) {
      rt.devices.push_back(Device{DeviceKind::cpu, id++, p, i});
      if (p == rt.process_index) rt.local_devices.push_back(rt.devices.back());
    }
  rt.initialized = true;
}

const Runtime& ensure_initialized() {
  std::lock_guard lock(runtime_mutex());
  Runtime& rt = runtime_state();
  if (!rt.initialized) set_up(rt, resolve_num_cpu_devices({}));
  return rt;
}

}  // namespace

int parse_num_cpu_devices(std::string_view text, std::string_view source) {
  int value = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, value);
  const std::string valid = "; valid: a whole number from 1 to " + std::to_string(kMaxCpuDevices);
  if (text.empty() || ec == std::errc::invalid_argument || ptr != last)
    throw InvalidArgumentError(std::string(source) + ": \"" + std::string(text) +
                               "\" is not a device count" + valid);
  if (ec == std::errc::result_out_of_range || value < 1 || value > kMaxCpuDevices)
    throw InvalidArgumentError(std::string(source) + ": " + std::string(text) +
                               " devices is out of range" + valid);
  return value;
}

void initialize(const InitOptions& options) {
  const int requested = resolve_num_cpu_devices(options);
  std::lock_guard lock(runtime_mutex());
  Runtime& rt = runtime_state();
  if (!rt.initialized) {
    set_up(rt, requested);
  } else if (options.num_cpu_devices && rt.num_cpu_devices != requested) {
    throw InvalidArgumentError("initialize: already initialized with " +
                               std::to_string(rt.num_cpu_devices) + " CPU devices, now asked for " +
                               std::to_string(requested) +
                               "; call initialize() once, before anything else uses devices");
  }
}

bool is_initialized() {
  std::lock_guard lock(runtime_mutex());
  return runtime_state().initialized;
}

const std::vector<Device>& devices() { return ensure_initialized().devices; }
const std::vector<Device>& local_devices() { return ensure_initialized().local_devices; }
int device_count() { return static_cast<int>(devices().size()); }
int local_device_count() { return static_cast<int>(local_devices().size()); }
int process_index() { return ensure_initialized().process_index; }
int process_count() { return ensure_initialized().process_count; }

void end_job_if_multi_process(int exit_code) {
  {
    std::lock_guard lock(runtime_mutex());
    const Runtime& rt = runtime_state();
    if (!rt.initialized || rt.process_count < 2) return;
  }
  detail::end_job(exit_code, "");
}

namespace detail {
int other_devices_on_this_host() {
  const Runtime& rt = ensure_initialized();
  return rt.host_devices - static_cast<int>(rt.local_devices.size());
}
}  // namespace detail

}  // namespace datarax
