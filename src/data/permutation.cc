#include "datarax/data/permutation.h"

#include <numeric>
#include <string>
#include <utility>

#include "core/splitmix64.h"
#include "datarax/error.h"

namespace datarax::data {

namespace {

using datarax::detail::SplitMix64;

// The generator for (seed, epoch): state first(first(seed) + epoch), as permutation.h defines it.
SplitMix64 for_epoch(std::uint64_t seed, std::int64_t epoch) {
  const std::uint64_t first_of_seed = SplitMix64(seed).next();
  return SplitMix64(SplitMix64(first_of_seed + static_cast<std::uint64_t>(epoch)).next());
}

}  // namespace

void fill_epoch_permutation(std::span<std::int64_t> out, std::uint64_t seed, std::int64_t epoch) {
  if (epoch < 0)
    throw InvalidArgumentError("epoch_permutation: epoch " + std::to_string(epoch) +
                               " is negative; expected 0 or more");
  std::iota(out.begin(), out.end(), std::int64_t{0});
  SplitMix64 rng = for_epoch(seed, epoch);
  for (std::size_t i = out.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(rng.uniform(i));
    std::swap(out[i - 1], out[j]);
  }
}

std::vector<std::int64_t> epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
  if (n < 0)
    throw InvalidArgumentError("epoch_permutation: n " + std::to_string(n) +
                               " is negative; expected 0 or more");
  std::vector<std::int64_t> out(static_cast<std::size_t>(n));
  fill_epoch_permutation(out, seed, epoch);
  return out;
}

}  // namespace datarax::data
