// The table all_reduce and mpi_all_reduce both print, one row per size, so that
// run_all_reduce.sh can put them side by side: the sizes swept, the repetitions per size, the
// legend, the header and the row, written once.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>

#include "bench_util.h"

namespace datarax::bench {

inline constexpr long long kKiB = 1024;
inline constexpr long long kMiB = 1024 * 1024;
inline constexpr double kTrafficPerSize = 8.0 * 1024 * 1024 * 1024;  // bytes moved per size (--reps 0)

// "4KiB", "16MiB", "1000B".
inline std::string size_name(long long bytes) {
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + "MiB";
  if (bytes >= kKiB && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + "KiB";
  return std::to_string(bytes) + "B";
}

// Bytes an all-reduce of `bytes` per member over n members reads and writes in all: 2·n·S.
inline double all_reduce_traffic(int n, long long bytes) { return 2.0 * n * static_cast<double>(bytes); }

// Calls timed for one size: `fixed` if > 0, else enough to move kTrafficPerSize, within 21..2001.
inline int reps_for(int n, long long bytes, int fixed) {
  if (fixed > 0) return fixed;
  return static_cast<int>(std::clamp(kTrafficPerSize / all_reduce_traffic(n, bytes), 21.0, 2001.0));
}

// `member` is "device" or "rank": whose slowest time each sample is.
inline void print_all_reduce_legend(const char* member) {
  std::printf("# per call: median, p10, p90 of the slowest %s's time (us); algbw = S/t, "
              "busbw = algbw*2(n-1)/n; triad = B measured just before the row (best of 5); "
              "bound = 2*n*S/B; ratio = bound/median; ratio_wa = 0.75*ratio (B counting "
              "write-allocate)\n",
              member);
}

inline void print_all_reduce_header(int n) {
  std::printf("## n=%d\n", n);
  std::printf("%10s %8s | %10s %9s %9s | %10s %10s | %10s %10s %6s %8s | %5s\n", "bytes", "size",
              "median_us", "p10_us", "p90_us", "algbw_GB/s", "busbw_GB/s", "triad_GB/s", "bound_us",
              "ratio", "ratio_wa", "reps");
}

// One size's row; `triad_gbs` is the B of the bound, or 0 where none was measured (the bound
// columns then read "-").
inline void print_all_reduce_row(int n, long long bytes, const Samples& s, double triad_gbs, int reps) {
  const double algbw = gb_per_s(static_cast<double>(bytes), s.median());
  std::printf("%10lld %8s | %10.2f %9.2f %9.2f | %10.2f %10.2f | ", bytes, size_name(bytes).c_str(), s.median(),
              s.percentile(10), s.percentile(90), algbw, algbw * 2.0 * (n - 1) / n);
  if (triad_gbs > 0) {
    const double bound_us = all_reduce_traffic(n, bytes) / (triad_gbs * 1e3);
    std::printf("%10.2f %10.2f %6.3f %8.3f", triad_gbs, bound_us, bound_us / s.median(), 0.75 * bound_us / s.median());
  } else {
    std::printf("%10s %10s %6s %8s", "-", "-", "-", "-");
  }
  std::printf(" | %5d\n", reps);
  std::fflush(stdout);
}

}  // namespace datarax::bench
