// libFuzzer target: the safetensors reader (whole files and the header alone) on arbitrary bytes.
#include "datarax/io/safetensors.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = datarax::fuzz::as_file(data, size);
  datarax::fuzz::expect_errors_only([&] { datarax::io::load_safetensors(path); });
  return datarax::fuzz::expect_errors_only([&] { datarax::io::load_safetensors_metadata(path); });
}
