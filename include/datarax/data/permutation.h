// Seeded permutations that are the same on every platform, compiler and standard library.
//
// Why not std::shuffle with std::mt19937: std::shuffle's algorithm and the distributions it uses
// are implementation-defined, so libstdc++ and libc++ shuffle differently from the same seed, and
// every process of a job (and a run resumed elsewhere) must see the same order. The algorithm
// below is fixed, and a few lines in any language reproduce it:
//
//   SplitMix64 (Steele, Lea & Flood, 2014; src/core/splitmix64.h), 64-bit unsigned arithmetic, wrapping:
//     next():  state += 0x9E3779B97F4A7C15; z = state;
//              z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
//              z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
//              return z ^ (z >> 31)
//   uniform(bound), for bound >= 1: draw x = next() until x >= (2^64 mod bound); return x mod bound
//     (rejection makes it exactly uniform).
//   The generator for (seed, epoch) starts at state = first(first(seed) + epoch), where first(s) is
//     the first next() of a generator whose state is s; distinct epochs of one seed therefore
//     start at distinct states.
//   epoch_permutation(n, seed, epoch): p = [0, 1, ..., n-1]; for i = n-1 down to 1:
//     j = uniform(i + 1); swap(p[i], p[j])   (Fisher–Yates).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace datarax::data {

// Writes a permutation of 0..out.size()-1 into `out`, as described above. It depends only on
// (out.size(), seed, epoch). epoch must be >= 0 (InvalidArgumentError otherwise).
void fill_epoch_permutation(std::span<std::int64_t> out, std::uint64_t seed, std::int64_t epoch);

// The same, as a new vector of n (>= 0) indices.
std::vector<std::int64_t> epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch);

}  // namespace datarax::data
