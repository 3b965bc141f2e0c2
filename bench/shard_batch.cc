// shard_batch: what DataParallelModule::shard_batch costs as the batch grows.
//
// On CPU devices, splitting a batch along its leading axis makes each shard a view of the batch's
// buffer, so the cost should be a few allocations per leaf and device, whatever the batch size.
// The limit that matters is the alternative it avoids: copying the batch, i.e. a memcpy of the same
// bytes into a buffer that is already allocated and touched (so only memory bandwidth is timed).
// The table shows both per size; the claim holds when the shard_batch column stays flat while the
// memcpy column doubles with each row.
//
//   ./build/bench/shard_batch [--devices 8] [--min-mib 1] [--max-mib 256] [--reps 21] [--warmup 3]
//
// Each size: one f32 leaf "inputs" [rows, 1024] (4 KiB per row), sharded over a data-parallel mesh
// of --devices CPU devices. Verified once before timing: every shard is a view of the batch at the
// right offset, and the shards cover the batch in order. A shard_batch sample is one call
// including the release of its result.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.h"
#include "datarax/datarax.h"

namespace {

constexpr std::int64_t kRowElements = 1024;  // f32: 4 KiB per row
constexpr std::int64_t kMiB = 1024 * 1024;
constexpr const char* kUsage =
    "shard_batch [--devices N] [--min-mib N] [--max-mib N] [--reps N] [--warmup N]";

void verify_views(const datarax::ShardedTree& sharded, const datarax::Array& inputs, int devices);

}  // namespace

int main(int argc, char** argv) {
  namespace bench = datarax::bench;
  bench::reject_unknown_flags(
      argc, argv, {"--devices", "--min-mib", "--max-mib", "--reps", "--warmup"}, kUsage);
  const auto devices = static_cast<int>(bench::int_flag(argc, argv, "--devices", 8, 1, kUsage));
  const long long min_mib = bench::int_flag(argc, argv, "--min-mib", 1, 1, kUsage);
  const long long max_mib = bench::int_flag(argc, argv, "--max-mib", 256, min_mib, kUsage);
  const bench::MeasureOptions options{
      .warmup = static_cast<int>(bench::int_flag(argc, argv, "--warmup", 3, 0, kUsage)),
      .reps = static_cast<int>(bench::int_flag(argc, argv, "--reps", 21, 1, kUsage))};

  datarax::initialize({.num_cpu_devices = devices});
  datarax::distributed::DeviceMeshModule mesh_module;
  datarax::distributed::DataParallelModule dp_module;
  const datarax::Mesh mesh = mesh_module.create_data_parallel_mesh();
  const datarax::NamedSharding sharding = dp_module.create_data_parallel_sharding(mesh);

  std::printf("# shard_batch vs memcpy: f32 [rows, %lld] onto %s (build %s)\n",
              static_cast<long long>(kRowElements), mesh.to_string().c_str(),
              DATARAX_BENCH_BUILD_TYPE);
  std::printf("# reproduce: %s --devices %d --min-mib %lld --max-mib %lld --reps %d --warmup %d\n",
              argv[0], devices, min_mib, max_mib, options.reps, options.warmup);
  std::printf("# times in microseconds; %d timed reps after %d warm-up calls per size\n",
              options.reps, options.warmup);
  std::printf("%8s %8s | %12s %10s %10s | %12s %10s | %13s\n", "MiB", "rows", "shard_med_us",
              "shard_p10", "shard_p90", "memcpy_med_us", "memcpy_GB/s", "memcpy/shard");

  double first_shard = 0, last_shard = 0, first_copy = 0, last_copy = 0;
  for (long long mib = min_mib; mib <= max_mib; mib *= 2) {
    // Rows must divide by the device count; round up to the next multiple.
    std::int64_t rows = mib * kMiB / (kRowElements * 4);
    rows = (rows + devices - 1) / devices * devices;
    const datarax::Shape shape{rows, kRowElements};

    // Source and destination both written once up front, so no timing includes first-touch faults.
    datarax::Array inputs = datarax::Array::empty(shape, datarax::DType::f32);
    auto values = inputs.data<float>();
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 4093);
    datarax::Array copy_target = datarax::Array::zeros(shape, datarax::DType::f32);
    const datarax::Tree batch{{"inputs", inputs}};

    verify_views(dp_module.shard_batch(batch, sharding), inputs, devices);

    const bench::Samples shard = bench::measure(options, [&] {
      datarax::ShardedTree sharded = dp_module.shard_batch(batch, sharding);
      bench::do_not_optimize(sharded);
    });
    const bench::Samples copy = bench::measure(options, [&] {
      std::memcpy(copy_target.raw(), inputs.raw(), inputs.nbytes());
      bench::do_not_optimize(copy_target.raw());
    });
    bench::verify(std::memcmp(copy_target.raw(), inputs.raw(), inputs.nbytes()) == 0,
                  "memcpy copied the batch");

    const auto bytes = static_cast<double>(inputs.nbytes());
    std::printf("%8.0f %8lld | %12.2f %10.2f %10.2f | %12.1f %10.2f | %12.0fx\n", bytes / kMiB,
                static_cast<long long>(rows), shard.median(), shard.percentile(10),
                shard.percentile(90), copy.median(), bench::gb_per_s(bytes, copy.median()),
                copy.median() / shard.median());
    if (mib == min_mib) {
      first_shard = shard.median();
      first_copy = copy.median();
    }
    last_shard = shard.median();
    last_copy = copy.median();
  }
  std::printf("# from the smallest to the largest size: shard_batch median x%.2f, memcpy median "
              "x%.1f\n",
              last_shard / first_shard, last_copy / first_copy);
  return 0;
}

namespace {

// Every shard a view of `inputs` (shared buffer, data pointer at its first row), one per device,
// the row ranges consecutive and covering every row.
void verify_views(const datarax::ShardedTree& sharded, const datarax::Array& inputs, int devices) {
  namespace bench = datarax::bench;
  const datarax::ShardedArray& leaf = sharded.at("inputs");
  bench::verify(static_cast<int>(leaf.shards().size()) == devices, "one shard per device");
  const auto* base = static_cast<const std::byte*>(inputs.raw());
  const std::int64_t row_bytes = kRowElements * 4;
  std::int64_t next_row = 0;
  for (const datarax::Shard& shard : leaf.shards()) {
    const std::string where = "shard on " + shard.device.to_string();
    bench::verify(shard.data.shares_buffer_with(inputs), where + " shares the batch's buffer");
    bench::verify(shard.index.front().start == next_row, where + " starts where the last ended");
    bench::verify(shard.data.raw() == base + next_row * row_bytes, where + " points at its rows");
    next_row = shard.index.front().stop;
  }
  bench::verify(next_row == inputs.shape()[0], "the shards cover every row");
}

}  // namespace
