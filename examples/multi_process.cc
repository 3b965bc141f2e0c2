// One program, one process or many: the same code runs alone or under mpirun, where every
// process's devices join one mesh and collectives cross processes. docs/multi_host.md quotes it.
//
// Run:  ./build/examples/multi_process                          (one process, its CPU devices)
//       mpirun -np 2 ./build/examples/multi_process              (2 processes)
// (checked by the CTest tests example_multi_process and example_multi_process_mpi)
#include <cstdlib>
#include <iostream>
#include <string>

#include "datarax/datarax.h"

namespace {

void require(bool condition, const std::string& what) {
  if (condition) return;
  std::cerr << "multi_process: FAILED: " << what << "\n";
  std::exit(1);
}

// Global example g of the data set: 4 features, g + 0.25 * feature.
float feature(std::int64_t g, std::int64_t f) { return static_cast<float>(g) + 0.25f * static_cast<float>(f); }

}  // namespace

int main() {
  // --- The job ---------------------------------------------------------------------------------
  // Under mpirun (or mpiexec, or srun with PMI) initialize() joins the MPI job: devices() is then
  // every process's devices in process order, local_devices() this process's. Alone, it is this
  // process's devices and nothing else changes. DATARAX_NUM_CPU_DEVICES sets the count per process.
  datarax::initialize();
  const int process = datarax::process_index();
  std::cout << "process " << process << " of " << datarax::process_count() << ": "
            << datarax::local_device_count() << " of " << datarax::device_count() << " devices\n";

  // --- One mesh over every process -------------------------------------------------------------
  datarax::distributed::DeviceMeshModule mesh_module;
  datarax::distributed::DataParallelModule dp_module;
  const datarax::Mesh mesh = mesh_module.create_data_parallel_mesh();  // "data" over all devices
  const datarax::NamedSharding sharding = dp_module.create_data_parallel_sharding(mesh);

  // --- Each process loads only its slice of the global batch -----------------------------------
  // 8 examples per device; process p holds rows [p * local_rows, (p + 1) * local_rows) of it.
  const std::int64_t local_rows = 8 * datarax::local_device_count();
  const std::int64_t first_row = process * local_rows;
  datarax::Array local = datarax::Array::empty({local_rows, 4});
  for (std::int64_t r = 0; r < local_rows; ++r)
    for (std::int64_t f = 0; f < 4; ++f) local.at<float>({r, f}) = feature(first_row + r, f);
  // shard_batch takes this process's part and describes the global batch: its shards are views
  // of `local`, one per local device, and its shape counts every process's rows.
  const datarax::ShardedArray batch = dp_module.shard_batch(local, sharding);
  std::cout << "process " << process << ": global batch " << batch.shape().to_string() << "\n";

  // --- A collective across processes -----------------------------------------------------------
  // Each device sums its rows; psum over "data" adds every device's sum, whichever process it is in.
  datarax::run_spmd(mesh, [&](const datarax::Device& device) {
    const datarax::Array& rows = batch.shard_for(device);
    double mine = 0;
    for (float v : rows.data<float>()) mine += v;
    const datarax::Array total = datarax::psum(datarax::Array::scalar<double>(mine, device), "data");
    const auto n = static_cast<double>(batch.shape()[0]);
    const double expected = 4 * n * (n - 1) / 2 + n * 0.25 * (0 + 1 + 2 + 3);  // sum of every feature
    require(total.item<double>() == expected, "psum over every process's devices");
  });

  // --- The whole batch back on every process ----------------------------------------------------
  // gather() is collective when the mesh spans processes: every process calls it, and each gets it all.
  const datarax::Array whole = batch.gather();
  for (std::int64_t g = 0; g < whole.shape()[0]; ++g)
    require(whole.at<float>({g, 3}) == feature(g, 3), "gather() row " + std::to_string(g));
  std::cout << "process " << process << ": multi_process: all checks passed\n";
  return 0;
}
