// Mlp and mlp_init: loss and gradient against a naive forward pass and its finite differences in
// f64, determinism and scale of the initializer, no allocation per step, and concurrent use.
#include "datarax/nn/mlp.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "datarax/nn/blas.h"
#include "nn/count_allocations.h"
#include "nn/gradcheck.h"
#include "support/error_of.h"

namespace datarax::nn {
namespace {

using ::testing::HasSubstr;
using datarax::test::error_of;
using test::numeric_grad;
using test::relative_error;
using test::uniform;

// The parameters as plain vectors, for the naive reference.
struct Net {
  std::vector<std::vector<double>> w, b;
};

std::vector<double> to_doubles(const Array& a) {
  const Array d = a.astype(DType::f64);
  return {d.data<double>().begin(), d.data<double>().end()};
}

Net net_from(const Tree& params, int layers) {
  Net net;
  for (int l = 0; l < layers; ++l) {
    net.w.push_back(to_doubles(params.at("dense_" + std::to_string(l) + "/kernel")));
    net.b.push_back(to_doubles(params.at("dense_" + std::to_string(l) + "/bias")));
  }
  return net;
}

Tree tree_from(const Net& net, const MlpConfig& c, DType dtype) {
  Tree t;
  for (std::size_t l = 0; l < net.w.size(); ++l) {
    const std::string p = "dense_" + std::to_string(l);
    t.set(p + "/kernel", Array::from_values<double>({c.sizes[l], c.sizes[l + 1]}, net.w[l]).astype(dtype));
    t.set(p + "/bias", Array::from_values<double>({c.sizes[l + 1]}, net.b[l]).astype(dtype));
  }
  return t;
}

double act(Activation a, double x) {
  if (a == Activation::relu) return x > 0 ? x : 0;
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

// The logits of x [B, sizes[0]], by loops.
std::vector<double> naive_logits(const Net& net, const MlpConfig& c, std::vector<double> x, int B) {
  const int L = static_cast<int>(c.sizes.size()) - 1;
  for (int l = 0; l < L; ++l) {
    const int in = c.sizes[l], out = c.sizes[l + 1];
    std::vector<double> y(static_cast<std::size_t>(B * out));
    for (int b = 0; b < B; ++b)
      for (int o = 0; o < out; ++o) {
        double s = net.b[l][o];
        for (int i = 0; i < in; ++i) s += x[b * in + i] * net.w[l][i * out + o];
        y[b * out + o] = l + 1 < L ? act(c.activation, s) : s;
      }
    x = std::move(y);
  }
  return x;
}

// Σ mask · (−log softmax(logits)[label]) / denom, by loops.
double naive_loss(const Net& net, const MlpConfig& c, const std::vector<double>& x,
                  const std::vector<std::int32_t>& y, const std::vector<double>& mask,
                  double denom, int B) {
  const int C = c.sizes.back();
  const std::vector<double> z = naive_logits(net, c, x, B);
  double total = 0;
  for (int b = 0; b < B; ++b) {
    if (mask[b] == 0) continue;
    double max = z[b * C], sum = 0;
    for (int k = 0; k < C; ++k) max = std::max(max, z[b * C + k]);
    for (int k = 0; k < C; ++k) sum += std::exp(z[b * C + k] - max);
    total += mask[b] * (std::log(sum) - (z[b * C + y[b]] - max));
  }
  return total / denom;
}

struct Batch {
  std::vector<double> x, mask;
  std::vector<std::int32_t> y;
};

Batch make_batch(const MlpConfig& c, int B, std::uint64_t seed) {
  Batch batch{uniform(B * c.sizes[0], -1, 1, seed), std::vector<double>(B, 1.0), {}};
  const auto r = uniform(B, 0, c.sizes.back(), seed + 1);
  for (double v : r) batch.y.push_back(static_cast<std::int32_t>(v));
  return batch;
}

Array array(const std::vector<double>& v, Shape shape, DType dtype) {
  return Array::from_values<double>(std::move(shape), v).astype(dtype);
}

void check_gradient(Activation activation) {
  const MlpConfig c{.sizes = {5, 7, 6, 4}, .activation = activation};
  const int B = 6, L = 3;
  Net net = net_from(mlp_init(c, 7), L);
  for (int l = 0; l < L; ++l) net.b[l] = uniform(net.b[l].size(), -0.5, 0.5, 20 + l);
  Batch batch = make_batch(c, B, 30);
  batch.y[2] = -1;  // padding
  batch.mask = {1, 1, 0, 0.5, 1, 1};
  const double denom = 4.5;

  Mlp mlp(c, B, DType::f64);
  Tree grads;
  std::int64_t correct = -1;
  const double loss = mlp.loss_and_grad(
      tree_from(net, c, DType::f64), array(batch.x, {B, 5}, DType::f64),
      Array::from_values<std::int32_t>({B}, batch.y), array(batch.mask, {B}, DType::f64), denom,
      grads, &correct);
  EXPECT_NEAR(loss, naive_loss(net, c, batch.x, batch.y, batch.mask, denom, B), 1e-14);
  EXPECT_GE(correct, 0);
  EXPECT_EQ(grads.size(), 6u);

  const auto f = [&] { return naive_loss(net, c, batch.x, batch.y, batch.mask, denom, B); };
  for (int l = 0; l < L; ++l) {
    const std::string p = "dense_" + std::to_string(l);
    EXPECT_LT(relative_error(p + "/kernel", to_doubles(grads.at(p + "/kernel")),
                             numeric_grad(net.w[l], f)),
              1e-6);
    EXPECT_LT(relative_error(p + "/bias", to_doubles(grads.at(p + "/bias")),
                             numeric_grad(net.b[l], f)),
              1e-6);
  }
}

TEST(Mlp, ReluGradientMatchesFiniteDifferencesInF64) { check_gradient(Activation::relu); }
TEST(Mlp, GeluGradientMatchesFiniteDifferencesInF64) { check_gradient(Activation::gelu); }

TEST(Mlp, F32AgreesWithF64) {
  const MlpConfig c{.sizes = {20, 16, 10}};
  const int B = 8;
  const Tree p32 = mlp_init(c, 3);
  const Tree p64 = p32.map([](const Array& a) { return a.astype(DType::f64); });
  const Batch batch = make_batch(c, B, 40);
  const auto run = [&](DType dtype, const Tree& params, Tree& grads) {
    Mlp mlp(c, B, dtype);
    return mlp.loss_and_grad(params, array(batch.x, {B, 20}, dtype),
                             Array::from_values<std::int32_t>({B}, batch.y),
                             array(batch.mask, {B}, dtype), B, grads);
  };
  Tree g32, g64;
  EXPECT_NEAR(run(DType::f32, p32, g32), run(DType::f64, p64, g64), 1e-6);
  for (const auto& [key, g] : g64) {
    const auto a = to_doubles(g32.at(key)), b = to_doubles(g);
    for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6) << key << i;
  }
}

TEST(Mlp, LogitsAndEvaluateMatchTheNaiveForwardInChunks) {
  const MlpConfig c{.sizes = {6, 9, 5}, .activation = Activation::gelu};
  const int N = 23;
  const Tree params = mlp_init(c, 11);
  const Net net = net_from(params, 2);
  Batch data = make_batch(c, N, 50);
  Mlp mlp(c, /*max_batch=*/8);
  const Array x = array(data.x, {N, 6}, DType::f32);
  const Array labels = Array::from_values<std::int32_t>({N}, data.y);

  const std::vector<double> want = naive_logits(net, c, data.x, 8);
  Array out;
  mlp.logits(params, x.slice(0, 8), out);
  ASSERT_EQ(out.shape(), (Shape{8, 5}));
  for (int i = 0; i < 40; ++i) EXPECT_NEAR(out.data<float>()[i], want[i], 1e-5) << i;
  const void* buffer = out.raw();
  mlp.logits(params, x.slice(8, 16), out);
  EXPECT_EQ(out.raw(), buffer);  // reused

  // evaluate: totals over every row, 8 at a time.
  const std::vector<double> z = naive_logits(net, c, data.x, N);
  std::int64_t correct = 0;
  for (int b = 0; b < N; ++b)
    correct += std::max_element(z.begin() + b * 5, z.begin() + b * 5 + 5) - (z.begin() + b * 5) ==
               data.y[b];
  const EvalResult all = mlp.evaluate(params, x, labels);
  EXPECT_EQ(all.count, N);
  EXPECT_EQ(all.correct, correct);
  EXPECT_NEAR(all.loss_sum, naive_loss(net, c, data.x, data.y, data.mask, 1.0, N), 1e-4);
  EXPECT_NEAR(all.mean_loss(), all.loss_sum / N, 1e-12);

  std::vector<double> mask(N, 1.0);
  for (int b = 0; b < N; b += 3) mask[b] = 0;
  const EvalResult masked = mlp.evaluate(params, x, labels, array(mask, {N}, DType::f32));
  EXPECT_EQ(masked.count, N - 8);
  EXPECT_NEAR(masked.loss_sum, naive_loss(net, c, data.x, data.y, mask, 1.0, N), 1e-4);
}

TEST(Mlp, GradsAreOverwrittenInPlaceAndNothingIsAllocatedPerStep) {
  const MlpConfig c{.sizes = {12, 10, 8, 3}};
  const int B = 16;
  const Tree params = mlp_init(c, 5);
  const Batch batch = make_batch(c, B, 60);
  const Array x = array(batch.x, {B, 12}, DType::f32);
  const Array y = Array::from_values<std::int32_t>({B}, batch.y);
  const Array m = array(batch.mask, {B}, DType::f32);
  Mlp mlp(c, B);
  const void* workspace = mlp.workspace_data();
  const std::size_t bytes = mlp.workspace_bytes();
  // (12·10 + 10·8 + 8·3) [z] + (10 + 8) [h] + 3 [probs] + 2·10 [d] per row, f32.
  EXPECT_EQ(bytes, static_cast<std::size_t>(B) * (10 + 8 + 3 + 10 + 8 + 3 + 20) * 4);

  Tree grads;
  const long start = datarax::test::allocation_count();
  const double first = mlp.loss_and_grad(params, x, y, m, B, grads);
  EXPECT_GT(datarax::test::allocation_count(), start);  // the first call makes the grads' leaves
  const Tree first_grads = grads.map([](const Array& a) { return a.copy(); });
  std::vector<const void*> leaves;
  for (const auto& [key, g] : grads) leaves.push_back(g.raw());

  double loss = 0;
  std::int64_t correct = 0;
  const long before = datarax::test::allocation_count();
  for (int step = 0; step < 3; ++step) loss = mlp.loss_and_grad(params, x, y, m, B, grads, &correct);
  const long allocations = datarax::test::allocation_count() - before;

  EXPECT_EQ(allocations, 0);
  EXPECT_EQ(loss, first);
  EXPECT_TRUE(bitwise_equal(grads, first_grads));  // overwritten, not accumulated
  std::size_t i = 0;
  for (const auto& [key, g] : grads) EXPECT_EQ(g.raw(), leaves[i++]) << key;
  EXPECT_EQ(mlp.workspace_data(), workspace);
  EXPECT_EQ(mlp.workspace_bytes(), bytes);

  // A smaller batch uses the same buffers.
  Tree small;
  mlp.loss_and_grad(params, x.slice(0, 5), y.slice(0, 5), m.slice(0, 5), 5, small);
  EXPECT_EQ(mlp.workspace_data(), workspace);
}

TEST(Mlp, AnEmptyShardGivesZeroLossAndZeroGradients) {
  // A device whose shard of a short last batch is empty still takes part in the step.
  const MlpConfig c{.sizes = {3, 4, 2}};
  Mlp mlp(c, 4);
  Tree grads;
  std::int64_t correct = -1;
  const double loss = mlp.loss_and_grad(mlp_init(c, 2), Array::zeros({0, 3}),
                                        Array::zeros({0}, DType::i32), Array::zeros({0}), 10,
                                        grads, &correct);
  EXPECT_EQ(loss, 0.0);
  EXPECT_EQ(correct, 0);
  for (const auto& [key, g] : grads)
    for (float v : g.data<float>()) EXPECT_EQ(v, 0.0f) << key;
}

TEST(Mlp, ConcurrentDevicesGiveTheSerialResults) {
  const MlpConfig c{.sizes = {784, 128, 64, 10}};
  const int devices = 4, B = 32;
  const Tree params = mlp_init(c, 9);
  std::vector<Batch> shards;
  for (int d = 0; d < devices; ++d) shards.push_back(make_batch(c, B, 100 + d));
  const auto step = [&](Mlp& mlp, int d, Tree& grads) {
    return mlp.loss_and_grad(params, array(shards[d].x, {B, 784}, DType::f32),
                             Array::from_values<std::int32_t>({B}, shards[d].y),
                             array(shards[d].mask, {B}, DType::f32), devices * B, grads);
  };
  std::vector<double> serial_loss(devices), loss(devices);
  std::vector<Tree> serial_grads(devices), grads(devices);
  {
    Mlp mlp(c, B);
    for (int d = 0; d < devices; ++d) serial_loss[d] = step(mlp, d, serial_grads[d]);
  }
  EXPECT_EQ(blas_num_threads(), 1);
  std::vector<std::thread> threads;
  for (int d = 0; d < devices; ++d)
    threads.emplace_back([&, d] {
      Mlp mlp(c, B);
      for (int repeat = 0; repeat < 5; ++repeat) loss[d] = step(mlp, d, grads[d]);
    });
  for (auto& t : threads) t.join();
  for (int d = 0; d < devices; ++d) {
    EXPECT_EQ(loss[d], serial_loss[d]) << "device " << d;
    EXPECT_TRUE(bitwise_equal(grads[d], serial_grads[d])) << "device " << d;
  }
}

TEST(Mlp, ExplicitBlasThreadCountWinsOverTheDefault) {
  set_blas_num_threads(2);
  Mlp mlp(MlpConfig{.sizes = {2, 2}}, 1);
  EXPECT_EQ(blas_num_threads(), 2);
  set_blas_num_threads(1);
  EXPECT_EQ(blas_num_threads(), 1);
  EXPECT_THAT(error_of([] { set_blas_num_threads(0); }), HasSubstr("set_blas_num_threads: n = 0"));
}

TEST(Mlp, BadArgumentsAreNamed) {
  const MlpConfig c{.sizes = {4, 3, 2}};
  const Tree params = mlp_init(c, 1);
  Mlp mlp(c, 4);
  Tree grads;
  const Array y = Array::zeros({4}, DType::i32);
  const Array m = Array::full({4}, 1.0);
  EXPECT_THAT(error_of([&] { mlp.loss_and_grad(params, Array::zeros({4, 5}), y, m, 4, grads); }),
              HasSubstr("Mlp::loss_and_grad: inputs is f32[4, 5]; this Mlp needs f32[B, 4]"));
  EXPECT_THAT(error_of([&] { mlp.loss_and_grad(params, Array::zeros({8, 4}), y, m, 4, grads); }),
              HasSubstr("a batch of 8 rows is out of range (0..4): the Mlp was built for max_batch 4"));
  EXPECT_THAT(error_of([&] {
                mlp.loss_and_grad(params, Array::zeros({4, 4}), Array::zeros({4}), m, 4, grads);
              }),
              HasSubstr("labels is f32[4]; it must be i32[4]"));
  Tree missing = params;
  missing.erase("dense_1/bias");
  EXPECT_THAT(error_of([&] { mlp.loss_and_grad(missing, Array::zeros({4, 4}), y, m, 4, grads); }),
              HasSubstr("params has no \"dense_1/bias\""));
  EXPECT_THAT(error_of([&] {
                mlp.loss_and_grad(params.map([](const Array& a) { return a.astype(DType::f64); }),
                                  Array::zeros({4, 4}), y, m, 4, grads);
              }),
              HasSubstr("params \"dense_0/kernel\" is f64[4, 3]; this Mlp needs f32[4, 3]"));
  EXPECT_THAT(error_of([] { Mlp(MlpConfig{.sizes = {4}}, 1); }),
              HasSubstr("Mlp: sizes has 1 entries; an MLP needs at least 2"));
  EXPECT_THAT(error_of([] { Mlp(MlpConfig{.sizes = {4, 0}}, 1); }),
              HasSubstr("Mlp: sizes[1] = 0 must be >= 1"));
  EXPECT_THAT(error_of([&] { Mlp(c, 0); }), HasSubstr("Mlp: max_batch = 0 must be >= 1"));
  EXPECT_THROW(Mlp(c, 1, DType::bf16), DTypeError);
}

// splitmix64 written out again, independently of src/core/splitmix64.h.
std::uint64_t reference_splitmix(std::uint64_t key, std::uint64_t n) {
  std::uint64_t z = key + (n + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

TEST(MlpInit, FollowsTheDocumentedFormula) {
  const MlpConfig c{.sizes = {784, 512, 10}};
  const std::uint64_t seed = 42;
  const Tree params = mlp_init(c, seed);
  EXPECT_EQ(params.keys(), (std::vector<std::string>{"dense_0/bias", "dense_0/kernel",
                                                     "dense_1/bias", "dense_1/kernel"}));
  EXPECT_EQ(params.at("dense_0/kernel").shape(), (Shape{784, 512}));
  EXPECT_EQ(params.at("dense_1/bias").shape(), (Shape{10}));
  EXPECT_EQ(num_params(c), 784 * 512 + 512 + 512 * 10 + 10);
  for (int l = 0; l < 2; ++l) {
    const std::string p = "dense_" + std::to_string(l);
    for (float b : params.at(p + "/bias").data<float>()) EXPECT_EQ(b, 0.0f);
    const auto w = params.at(p + "/kernel").data<float>();
    const double limit = std::sqrt(6.0 / c.sizes[l]);
    const std::uint64_t key = reference_splitmix(seed, l);
    for (std::size_t j : {std::size_t{0}, std::size_t{1}, std::size_t{777}, w.size() - 1}) {
      const double u = static_cast<double>(reference_splitmix(key, j) >> 11) * 0x1.0p-53;
      EXPECT_EQ(w[j], static_cast<float>((2 * u - 1) * limit)) << p << "[" << j << "]";
    }
  }
}

TEST(MlpInit, IsDeterministicAndHeScaled) {
  const MlpConfig c{.sizes = {784, 512, 512, 10}};
  const Tree a = mlp_init(c, 0), b = mlp_init(c, 0), other = mlp_init(c, 1);
  EXPECT_TRUE(bitwise_equal(a, b));
  EXPECT_FALSE(bitwise_equal(a.at("dense_0/kernel"), other.at("dense_0/kernel")));
  // Layers draw from different streams.
  EXPECT_NE(a.at("dense_1/kernel").data<float>()[0], a.at("dense_2/kernel").data<float>()[0]);
  for (int l = 0; l < 3; ++l) {
    const auto w = a.at("dense_" + std::to_string(l) + "/kernel").data<float>();
    const double limit = std::sqrt(6.0 / c.sizes[l]);
    double sum = 0, sq = 0, max = 0;
    for (float v : w) {
      sum += v;
      sq += double{v} * v;
      max = std::max(max, std::abs(double{v}));
    }
    const double n = static_cast<double>(w.size());
    const double stddev = std::sqrt(sq / n - (sum / n) * (sum / n));
    EXPECT_LE(max, limit);
    EXPECT_NEAR(stddev, std::sqrt(2.0 / c.sizes[l]), 0.03 * std::sqrt(2.0 / c.sizes[l])) << l;
    EXPECT_NEAR(sum / n, 0.0, 0.05 * stddev) << l;
  }
}

}  // namespace
}  // namespace datarax::nn
