// libFuzzer target: the IDX reader (raw and gzip) on arbitrary bytes.
#include "datarax/io/idx.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return datarax::fuzz::expect_errors_only([&] { datarax::io::read_idx(datarax::fuzz::as_file(data, size)); });
}
