// SplitMix64 (Steele, Lea & Flood 2014; Vigna's reference code), the library's one generator of
// random bits: the data order (data/permutation.h), the parameter initialisation (nn/param.h's
// initializers, through Module::init), dropout's masks (nn/ops/dropout.h) and the GPT decoder's
// sampling (nn/models/gpt_decoder.h) all draw from it. Fully specified by the constants below,
// so every platform, compiler and standard library gives the same numbers (std:: distributions
// are implementation-defined).
//
// Two ways to draw: a sequential generator (next(), uniform()) and counter-based draws (at(key, n):
// the n-th output of a generator seeded with key, computed directly), so that any element of a
// tensor can be drawn alone and the result never depends on the order of draws or on threads.
#pragma once

#include <cstdint>
#include <string>

#include "datarax/error.h"

namespace datarax::detail {

class SplitMix64 {
 public:
  static constexpr std::uint64_t kGamma = 0x9E3779B97F4A7C15ull;

  explicit constexpr SplitMix64(std::uint64_t state) : state_(state) {}

  // The output function: z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27;
  // z *= 0x94D049BB133111EB; z ^= z >> 31.
  static constexpr std::uint64_t mix(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // The n-th output (n = 0, 1, ...) of a generator whose state starts at `key`.
  static constexpr std::uint64_t at(std::uint64_t key, std::uint64_t n) { return mix(key + (n + 1) * kGamma); }

  // state += gamma; return mix(state).
  constexpr std::uint64_t next() {
    state_ += kGamma;
    return mix(state_);
  }
  // Uniform in [0, bound) for bound >= 1: draws x = next() until x >= (2^64 mod bound), returns
  // x mod bound (the rejection makes it exactly uniform).
  std::uint64_t uniform(std::uint64_t bound) {
    if (bound == 0) throw InvalidArgumentError("SplitMix64::uniform: bound 0 is out of range; valid: 1 or more");
    const std::uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
    std::uint64_t x = next();
    while (x < threshold) x = next();
    return x % bound;
  }

 private:
  std::uint64_t state_;
};

// A double uniform in [0, 1) from the top 53 bits of a draw.
constexpr double unit_double(std::uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

}  // namespace datarax::detail
