// Helpers shared by the benchmark programs under bench/: timing, order statistics, and the habits
// every benchmark here follows (STYLE.md: verify once, warm up, report median and spread, compare
// with the limit that matters, print the command that reproduces the numbers).
//
//   bench::Samples s = bench::measure({.warmup = 3, .reps = 21}, [&] { work(); });
//   std::printf("%.1f us (p10 %.1f, p90 %.1f)\n", s.median(), s.percentile(10), s.percentile(90));
//
// Times are microseconds of wall-clock time (steady_clock), one sample per call of the function.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace datarax::bench {

struct MeasureOptions {
  int warmup = 3;  // untimed calls first: page faults, caches and lazy set-up are not measured
  int reps = 21;   // timed calls; odd, so the median is one of the samples
};

// Timed samples in microseconds, kept sorted.
class Samples {
 public:
  explicit Samples(std::vector<double> us) : us_(std::move(us)) {
    if (us_.empty()) throw std::invalid_argument("bench::Samples: no samples");
    std::sort(us_.begin(), us_.end());
  }

  // The q-th percentile (0..100), nearest rank: always one of the samples, no interpolation.
  double percentile(double q) const {
    const double clamped = std::clamp(q, 0.0, 100.0);
    const auto last = static_cast<double>(us_.size() - 1);
    return us_[static_cast<std::size_t>(clamped / 100.0 * last + 0.5)];
  }
  double median() const { return percentile(50); }
  double min() const { return us_.front(); }
  double max() const { return us_.back(); }
  std::size_t size() const { return us_.size(); }
  const std::vector<double>& sorted() const { return us_; }

 private:
  std::vector<double> us_;
};

// Keeps the compiler from proving a result unused and deleting the work that made it.
template <class T>
inline void do_not_optimize(T const& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}
// Makes the compiler assume memory was read and written here (around a memcpy into a buffer that
// is otherwise never read).
inline void clobber_memory() { asm volatile("" : : : "memory"); }

// Wall-clock microseconds of one call of fn.
template <class Fn>
double time_us(Fn&& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  clobber_memory();
  const auto stop = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::micro>(stop - start).count();
}

// options.warmup untimed calls of fn, then options.reps timed ones.
template <class Fn>
Samples measure(const MeasureOptions& options, Fn&& fn) {
  for (int i = 0; i < options.warmup; ++i) fn();
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(options.reps));
  for (int i = 0; i < options.reps; ++i) us.push_back(time_us(fn));
  return Samples(std::move(us));
}

// Bytes per microsecond is MB/s; this gives GB/s (10^9 bytes per second).
inline double gb_per_s(double bytes, double us) { return us > 0 ? bytes / us / 1e3 : 0.0; }

// The value of "--name N" in argv, or fallback. Anything malformed ends the program with a usage
// line: benchmarks are run by hand, and a silently ignored flag gives numbers for the wrong thing.
inline long long int_flag(int argc, char** argv, std::string_view name, long long fallback,
                          long long min_value, std::string_view usage) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] != name) continue;
    char* end = nullptr;
    const long long value = i + 1 < argc ? std::strtoll(argv[i + 1], &end, 10) : 0;
    if (i + 1 >= argc || *end != '\0' || end == argv[i + 1] || value < min_value) {
      std::fprintf(stderr, "%.*s needs a whole number >= %lld\nusage: %.*s\n",
                   static_cast<int>(name.size()), name.data(), min_value,
                   static_cast<int>(usage.size()), usage.data());
      std::exit(2);
    }
    return value;
  }
  return fallback;
}

// The value of "--name TEXT" in argv, or fallback; a missing value ends the program with the usage.
inline std::string string_flag(int argc, char** argv, std::string_view name, std::string fallback,
                               std::string_view usage) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] != name) continue;
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%.*s needs a value\nusage: %.*s\n", static_cast<int>(name.size()), name.data(),
                   static_cast<int>(usage.size()), usage.data());
      std::exit(2);
    }
    return argv[i + 1];
  }
  return fallback;
}

// Ends the program with the usage line if argv holds anything but "--name value" pairs with names
// from `known`.
inline void reject_unknown_flags(int argc, char** argv, const std::vector<std::string_view>& known,
                                 std::string_view usage) {
  for (int i = 1; i < argc; i += 2) {
    if (std::find(known.begin(), known.end(), std::string_view(argv[i])) != known.end()) continue;
    std::fprintf(stderr, "unknown argument %s\nusage: %.*s\n", argv[i],
                 static_cast<int>(usage.size()), usage.data());
    std::exit(2);
  }
}

// Fails the benchmark when a pre-timing check does not hold: numbers for wrong results are worse
// than none.
inline void verify(bool condition, const std::string& what) {
  if (condition) return;
  std::fprintf(stderr, "verification FAILED: %s\n", what.c_str());
  std::exit(1);
}

}  // namespace datarax::bench
