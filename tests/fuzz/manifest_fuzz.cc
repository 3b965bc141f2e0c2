// libFuzzer target: a checkpoint's manifest.json, parsed and checked, on arbitrary text.
#include <string>

#include "datarax/train/checkpoint.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return datarax::fuzz::expect_errors_only([&] {
    datarax::train::TrainState state;
    datarax::train::ManifestFiles files;
    datarax::train::parse_manifest(std::string(reinterpret_cast<const char*>(data), size), state, files);
    // What parsed must write back and parse to the same state, every field of it (the run, the
    // counters and their cross-checks, the files' sizes and checksums).
    datarax::train::TrainState again;
    datarax::train::ManifestFiles files_again;
    datarax::train::parse_manifest(datarax::train::manifest_json(state, files), again, files_again);
    if (again.run != state.run || again.step != state.step || again.epoch != state.epoch ||
        again.step_in_epoch != state.step_in_epoch || again.steps_per_epoch != state.steps_per_epoch ||
        again.must_match != state.must_match || again.layout != state.layout || again.epoch_loss != state.epoch_loss ||
        again.epoch_correct != state.epoch_correct || again.epoch_count != state.epoch_count ||
        files_again.params.bytes != files.params.bytes || files_again.params.xxh3 != files.params.xxh3 ||
        files_again.optimizer.bytes != files.optimizer.bytes || files_again.optimizer.xxh3 != files.optimizer.xxh3)
      __builtin_trap();
  });
}
