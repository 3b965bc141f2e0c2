// Every collective of the threads backend against a naive gather-then-reduce reference written
// here: group sizes 1..8, sizes 0, 1, 7, 1000 and 1<<20, dtypes f32, f64, i32, bf16. Inputs are
// small integers from a formula, so sums, maxima and minima are exact in every dtype and the
// results must match the reference exactly; means are compared within one rounding.
#include <gtest/gtest.h>

#include <cmath>

#include "group_runner.h"

namespace datarax {
namespace {

double input_value(int rank, std::int64_t i) { return static_cast<double>((rank * 7 + i * 3) % 11) - 5.0; }

template <class T>
std::vector<T> input(int rank, std::int64_t count, std::int64_t offset = 0) {
  std::vector<T> v(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i)
    v[static_cast<std::size_t>(i)] = static_cast<T>(static_cast<float>(input_value(rank, i + offset)));
  return v;
}

// Naive reference: gather every member's value for element i, combine in rank order in double.
template <class T>
T reference(int n, std::int64_t i, ReduceOp op) {
  double acc = input_value(0, i);
  for (int r = 1; r < n; ++r) {
    const double v = input_value(r, i);
    if (op == ReduceOp::sum || op == ReduceOp::mean) acc += v;
    if (op == ReduceOp::max) acc = std::max(acc, v);
    if (op == ReduceOp::min) acc = std::min(acc, v);
  }
  if (op == ReduceOp::mean) acc /= n;
  return static_cast<T>(static_cast<float>(acc));
}

// Index of the first element where got differs from want (beyond one rounding for means), or -1.
template <class T>
std::int64_t first_difference(const std::vector<T>& got, const std::vector<T>& want, ReduceOp op) {
  const double tol = op != ReduceOp::mean ? 0.0 : std::is_same_v<T, bfloat16> ? 1e-2 : 1e-6;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double g = static_cast<float>(got[i]), w = static_cast<float>(want[i]);
    if (std::abs(g - w) > tol * std::max(1.0, std::abs(w))) return static_cast<std::int64_t>(i);
  }
  return -1;
}

// Sanitizer builds run the same grid with a smaller largest size: they are 10-50x slower.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr std::int64_t kLarge = 1 << 16;
#else
constexpr std::int64_t kLarge = 1 << 20;
#endif
const std::vector<std::int64_t> kCounts = {0, 1, 7, 1000, kLarge};

template <class T>
void check_all_reduce(int n, std::int64_t count, ReduceOp op) {
  std::vector<std::vector<T>> out(static_cast<std::size_t>(n));
  test::rethrow_first(test::run_group(n, [&](Communicator& c) {
    auto& buf = out[static_cast<std::size_t>(c.rank())];
    buf = input<T>(c.rank(), count);
    c.all_reduce(std::span<T>(buf), op);
  }));
  std::vector<T> want(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) want[static_cast<std::size_t>(i)] = reference<T>(n, i, op);
  for (int r = 0; r < n; ++r) {
    const std::int64_t bad = first_difference(out[static_cast<std::size_t>(r)], want, op);
    ASSERT_EQ(bad, -1) << "rank " << r << " element " << bad << ": got "
                       << static_cast<float>(out[static_cast<std::size_t>(r)][static_cast<std::size_t>(bad)])
                       << ", want " << static_cast<float>(want[static_cast<std::size_t>(bad)]);
  }
}

template <class T>
void sweep_all_reduce() {
  for (int n = 1; n <= 8; ++n)
    for (std::int64_t count : kCounts)
      for (ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::max, ReduceOp::min}) {
        if (op == ReduceOp::mean && !is_floating(dtype_v<T>)) continue;
        if (count == kLarge && (op == ReduceOp::mean || op == ReduceOp::min) && n % 3 != 2) continue;
        SCOPED_TRACE("n=" + std::to_string(n) + " count=" + std::to_string(count) + " op=" +
                     std::string(to_string(op)));
        check_all_reduce<T>(n, count, op);
        if (::testing::Test::HasFatalFailure()) return;
      }
}

TEST(ThreadsAllReduce, F32) { sweep_all_reduce<float>(); }
TEST(ThreadsAllReduce, F64) { sweep_all_reduce<double>(); }
TEST(ThreadsAllReduce, I32) { sweep_all_reduce<std::int32_t>(); }
TEST(ThreadsAllReduce, BF16) { sweep_all_reduce<bfloat16>(); }

TEST(ThreadsAllReduce, IdenticalAcrossRuns) {
  // Non-integer floats: the fixed rank order makes results bitwise repeatable.
  auto run = [] {
    std::vector<std::vector<float>> out(5);
    test::rethrow_first(test::run_group(5, [&](Communicator& c) {
      auto& b = out[static_cast<std::size_t>(c.rank())];
      b.resize(10007);
      for (std::size_t i = 0; i < b.size(); ++i) b[i] = std::sin(static_cast<float>(i * (c.rank() + 1))) * 1e3f;
      c.all_reduce(std::span<float>(b), ReduceOp::sum);
    }));
    return out;
  };
  const auto a = run(), b = run();
  EXPECT_EQ(a, b);
  for (int r = 1; r < 5; ++r) EXPECT_EQ(a[0], a[static_cast<std::size_t>(r)]);
}

TEST(ThreadsAllGather, Sweep) {
  for (int n = 1; n <= 8; ++n)
    for (std::int64_t count : {0, 1, 7, 1000}) {
      std::vector<std::vector<std::int32_t>> out(static_cast<std::size_t>(n));
      test::rethrow_first(test::run_group(n, [&](Communicator& c) {
        const auto in = input<std::int32_t>(c.rank(), count);
        auto& o = out[static_cast<std::size_t>(c.rank())];
        o.assign(static_cast<std::size_t>(count * n), -99);
        c.all_gather(std::span<const std::int32_t>(in), std::span<std::int32_t>(o));
      }));
      std::vector<std::int32_t> want;
      for (int r = 0; r < n; ++r) {
        const auto part = input<std::int32_t>(r, count);
        want.insert(want.end(), part.begin(), part.end());
      }
      for (int r = 0; r < n; ++r) ASSERT_EQ(out[static_cast<std::size_t>(r)], want) << n << " " << count;
    }
}

TEST(ThreadsReduceScatter, Sweep) {
  for (int n = 1; n <= 8; ++n)
    for (std::int64_t per : {0, 1, 7, 1000}) {
      const std::int64_t count = per * n;
      std::vector<std::vector<float>> out(static_cast<std::size_t>(n));
      test::rethrow_first(test::run_group(n, [&](Communicator& c) {
        const auto in = input<float>(c.rank(), count);
        auto& o = out[static_cast<std::size_t>(c.rank())];
        o.assign(static_cast<std::size_t>(per), -99);
        c.reduce_scatter(std::span<const float>(in), std::span<float>(o), ReduceOp::sum);
      }));
      for (int r = 0; r < n; ++r)
        for (std::int64_t i = 0; i < per; ++i)
          ASSERT_EQ(out[static_cast<std::size_t>(r)][static_cast<std::size_t>(i)],
                    reference<float>(n, r * per + i, ReduceOp::sum));
    }
}

TEST(ThreadsBroadcastAllToAllPermute, Sweep) {
  for (int n = 1; n <= 8; ++n) {
    const std::int64_t per = 5, count = per * n;
    std::vector<std::vector<double>> bc(static_cast<std::size_t>(n)), a2a(static_cast<std::size_t>(n)),
        perm(static_cast<std::size_t>(n));
    std::vector<int> send_to(static_cast<std::size_t>(n));
    for (int r = 0; r < n; ++r) send_to[static_cast<std::size_t>(r)] = (r + 1) % n;  // a ring shift
    if (n > 2) send_to[0] = -1;  // rank 1 then receives nothing: zeros
    const int root = n / 2;
    test::rethrow_first(test::run_group(n, [&](Communicator& c) {
      const auto me = static_cast<std::size_t>(c.rank());
      bc[me] = input<double>(c.rank(), count);
      c.broadcast(std::span<double>(bc[me]), root);
      const auto in = input<double>(c.rank(), count);
      a2a[me].assign(static_cast<std::size_t>(count), -99);
      c.all_to_all(std::span<const double>(in), std::span<double>(a2a[me]));
      perm[me].assign(static_cast<std::size_t>(count), -99);
      c.permute(std::span<const double>(in), std::span<double>(perm[me]), send_to);
    }));
    for (int r = 0; r < n; ++r) {
      const auto me = static_cast<std::size_t>(r);
      EXPECT_EQ(bc[me], input<double>(root, count)) << n;
      for (int j = 0; j < n; ++j)
        for (std::int64_t i = 0; i < per; ++i)
          ASSERT_EQ(a2a[me][static_cast<std::size_t>(j * per + i)], input_value(j, r * per + i));
      int source = -1;
      for (int s = 0; s < n; ++s)
        if (send_to[static_cast<std::size_t>(s)] == r) source = s;
      EXPECT_EQ(perm[me], source < 0 ? std::vector<double>(static_cast<std::size_t>(count), 0.0)
                                     : input<double>(source, count));
    }
  }
}

TEST(ThreadsAllReduce, ArraysAndInPlaceBf16AccumulatesInF32) {
  // 300 values of 1/256 summed over 8 members is exact in f32 but not step by step in bf16.
  std::vector<Array> out(8);
  test::rethrow_first(test::run_group(8, [&](Communicator& c) {
    Array a = Array::full({300}, 1.0 / 256 + (c.rank() == 0 ? 1.0 : 0.0), DType::bf16);
    c.all_reduce(a, ReduceOp::sum);
    out[static_cast<std::size_t>(c.rank())] = a;
  }));
  for (const Array& a : out) EXPECT_EQ(float(a.data<bfloat16>()[0]), float(bfloat16(1.0f + 8.0f / 256)));
}

TEST(ThreadsCollectives, ManySmallAllReducesWithEightMembersOnFewCores) {
  // 8 members on 2 cores: waits must yield instead of spinning, or this crawls.
  const auto start = std::chrono::steady_clock::now();
  test::rethrow_first(test::run_group(8, [&](Communicator& c) {
    std::vector<float> v(16);
    for (int it = 0; it < 10000; ++it) {
      std::fill(v.begin(), v.end(), 1.0f);
      c.all_reduce(std::span<float>(v), ReduceOp::sum);
      if (v[0] != 8.0f) throw std::runtime_error("wrong sum at iteration " + std::to_string(it));
    }
  }));
  std::printf("10^4 all-reduces of 16 floats over 8 members: %.1f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace
}  // namespace datarax
