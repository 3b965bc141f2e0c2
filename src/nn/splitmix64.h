// Counter-based draws from splitmix64 (Steele, Lea & Flood 2014; Vigna's reference code): the n-th
// output of a splitmix64 generator seeded with `key` is computed directly, so any element of a
// tensor can be drawn alone and the result never depends on the order of draws or on threads.
// Fully specified by the constants below: portable, unlike std:: distributions.
#pragma once

#include <cstdint>

namespace datarax::nn::detail {

inline constexpr std::uint64_t kSplitmixGamma = 0x9E3779B97F4A7C15ull;

// splitmix64's output function.
constexpr std::uint64_t splitmix64_mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The n-th output (n = 0, 1, ...) of splitmix64 seeded with `key`.
constexpr std::uint64_t splitmix64_at(std::uint64_t key, std::uint64_t n) {
  return splitmix64_mix(key + (n + 1) * kSplitmixGamma);
}

// A double uniform in [0, 1) from the top 53 bits.
constexpr double unit_double(std::uint64_t bits) {
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

}  // namespace datarax::nn::detail
