// libFuzzer target: a checkpoint's manifest.json, parsed and checked, on arbitrary text.
#include <string>

#include "datarax/train/checkpoint.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return datarax::fuzz::expect_errors_only([&] {
    datarax::train::TrainState state;
    datarax::train::parse_manifest(std::string(reinterpret_cast<const char*>(data), size), state);
    // What parsed must write back and parse to the same state.
    datarax::train::TrainState again;
    datarax::train::parse_manifest(datarax::train::manifest_json(state), again);
    if (again.step != state.step || again.must_match != state.must_match || again.layout != state.layout ||
        again.epoch_loss != state.epoch_loss)
      __builtin_trap();
  });
}
