// How long a checkpoint of the default model takes to write, to choose who writes it under MPI:
// one writer (process 0, which holds the whole state after the snapshot), or every process writing
// its share at the same time (here: two writers of half the state each, as two processes on one
// host would). Both write whole files with fsync through io::write_folder_atomically.
//
//   ./build/bench/checkpoint_write [--reps N] [--dir D]   (D: where to write; default the temp dir)
#include <cstdio>
#include <filesystem>
#include <thread>

#include "bench_util.h"
#include "datarax/nn/models/mlp.h"
#include "datarax/optim/optimizer.h"
#include "datarax/train/checkpoint.h"

namespace {
namespace fs = std::filesystem;
namespace bench = datarax::bench;

// The leaves of `t` whose index (in key order) has parity `half`.
datarax::Tree half_of(const datarax::Tree& t, int half) {
  datarax::Tree out;
  int i = 0;
  for (const auto& [key, leaf] : t)
    if (i++ % 2 == half) out.set(key, leaf);
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  const char* usage = "checkpoint_write [--reps N] [--dir D]";
  bench::reject_unknown_flags(argc, argv, {"--reps", "--dir"}, usage);
  const int reps = static_cast<int>(bench::int_flag(argc, argv, "--reps", 21, 3, usage));
  const std::string root = bench::string_flag(argc, argv, "--dir", fs::temp_directory_path().string(), usage);
  const fs::path dir = fs::path(root) / ("datarax-bench-checkpoint-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const datarax::nn::Mlp model({.sizes = {784, 512, 512, 10}});
  datarax::train::TrainState state;
  state.steps_per_epoch = 1;  // step 0 of epoch 1 (a manifest's counters are checked)
  state.params = model.init(0);
  state.opt_state = datarax::optim::make_optimizer("adam")->init(state.params);
  std::size_t bytes = 0;
  for (const auto* t : {&state.params, &state.opt_state})
    for (const auto& [key, leaf] : *t) bytes += leaf.nbytes();
  std::printf("# checkpoint_write: MLP 784-512-512-10 + Adam state, %.1f MB per checkpoint, %d reps, in %s (%s build)\n",
              static_cast<double>(bytes) / 1e6, reps, dir.c_str(), DATARAX_BENCH_BUILD_TYPE);
  int n = 0;
  auto write_one = [&](const datarax::train::TrainState& s) {
    const std::string path = (dir / ("ckpt-" + std::to_string(n++))).string();
    datarax::train::save_checkpoint(path, s);
    return path;
  };
  // Verify once: what was written reads back.
  const datarax::train::TrainState back = datarax::train::load_checkpoint(write_one(state));
  bench::verify(datarax::bitwise_equal(back.params, state.params) && datarax::bitwise_equal(back.opt_state, state.opt_state),
                "the checkpoint reads back bitwise");
  datarax::train::TrainState halves[2];
  for (int h = 0; h < 2; ++h) {
    halves[h].steps_per_epoch = 1;
    halves[h].params = half_of(state.params, h);
    halves[h].opt_state = half_of(state.opt_state, h);
  }
  const bench::Samples one = bench::measure({.warmup = 2, .reps = reps}, [&] { fs::remove_all(write_one(state)); });
  const bench::Samples two = bench::measure({.warmup = 2, .reps = reps}, [&] {
    std::string paths[2];
    std::thread other([&] { paths[1] = write_one(halves[1]); });
    paths[0] = write_one(halves[0]);
    other.join();
    for (const auto& p : paths) fs::remove_all(p);
  });
  std::printf("writers | ms per checkpoint (median, p10-p90) | MB/s\n");
  for (const auto& [name, s] : {std::pair{"1 (process 0, whole)", &one}, std::pair{"2 (halves, at once)", &two}})
    std::printf("%-20s | %7.2f (%6.2f-%6.2f)              | %6.0f\n", name, s->median() / 1e3, s->percentile(10) / 1e3,
                s->percentile(90) / 1e3, static_cast<double>(bytes) / s->median());
  fs::remove_all(dir);
  return 0;
}
