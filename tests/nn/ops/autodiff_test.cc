// Automatic gradients: the core ops' values against naive formulas, their gradients against central
// differences in f64, recording once and replaying (same values as a fresh recording, no
// allocation), modules and their initializers, and the errors a careless caller meets.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "nn/count_allocations.h"
#include "datarax/nn/check_gradients.h"
#include "datarax/nn/layers/dense.h"
#include "datarax/nn/module.h"
#include "datarax/nn/ops/cross_entropy.h"
#include "datarax/nn/ops/elementwise.h"
#include "datarax/nn/ops/linear.h"
#include "datarax/nn/ops/reduce.h"
#include "datarax/nn/ops/reshape.h"
#include "datarax/nn/value_and_grad.h"
#include "nn/gradcheck.h"

namespace datarax::nn {
namespace {

Array f64(Shape shape, std::uint64_t seed, double lo = -1, double hi = 1) {
  const std::int64_t n = shape.numel();
  return Array::from_values<double>(std::move(shape), test::uniform(static_cast<std::size_t>(n), lo, hi, seed));
}

// The value of a one-op function of a parameter x, recorded in a fresh graph.
template <class F>
Array eval(const Array& x, F&& f) {
  Graph g;
  Var v = f(g.parameter("x", x));
  return v.value().copy();
}

double gelu_exact_ref(double x) { return 0.5 * x * (1 + std::erf(x / std::numbers::sqrt2)); }
double gelu_tanh_ref(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}

TEST(Ops, ElementwiseValuesMatchTheirFormulas) {
  const Array x = f64({3, 5}, 1, -3, 3);
  struct Case {
    const char* name;
    Var (*op)(Var);
    double (*ref)(double);
  };
  const Case cases[] = {
      {"relu", [](Var v) { return relu(v); }, [](double v) { return v > 0 ? v : 0.0; }},
      {"gelu", [](Var v) { return gelu(v); }, gelu_exact_ref},
      {"gelu_tanh", [](Var v) { return gelu(v, GeluMode::tanh); }, gelu_tanh_ref},
      {"tanh", [](Var v) { return nn::tanh(v); }, [](double v) { return std::tanh(v); }},
      {"sigmoid", [](Var v) { return sigmoid(v); }, [](double v) { return 1 / (1 + std::exp(-v)); }},
      {"scale", [](Var v) { return v * 2.5; }, [](double v) { return 2.5 * v; }},
      {"add_scalar", [](Var v) { return v + 0.75; }, [](double v) { return v + 0.75; }},
  };
  for (const Case& c : cases) {
    const Array y = eval(x, c.op);
    for (std::int64_t i = 0; i < x.numel(); ++i)
      EXPECT_NEAR(y.data<double>()[i], c.ref(x.data<double>()[i]), 1e-14) << c.name << " at " << i;
  }
}

// GELU in f32 runs its own erfc (nn/ops/fast_math.h), vectorized; against the f64 formula on
// 2^17 + 1 points of [−16, 16] (every element of a vector, and the tails where Φ is tiny), the
// value and the gradient (dout 1, so the gradient is GELU'(x) = Φ + x·φ) must be within f32
// rounding of the exact value: 4e-7 relative (for the gradient, of |Φ| + |x·φ|, the sum's terms), plus 1.5e-7 · x² relative where x < 0 (Φ(x) there is erfc(|x|/√2),
// and the rounding of x² in its exponent scales so), plus 1e-36 absolute (the exponents' clamp at
// −87, below f32's normal range, times |x| <= 16).
TEST(Ops, GeluInF32IsTheExactFormulaToRounding) {
  constexpr int kN = (1 << 17) + 1;
  Array x = Array::empty({kN}, DType::f32);
  for (int i = 0; i < kN; ++i) x.data<float>()[i] = -16.0F + 32.0F * static_cast<float>(i) / (kN - 1);
  Graph g;
  Var xv = g.parameter("x", x);
  Var y = gelu(xv);
  g.backward(sum(y));
  const Array& dx = g.grad(xv);
  double worst_y = 0, worst_d = 0;
  for (int i = 0; i < kN; ++i) {
    const double v = x.data<float>()[i];
    const double cdf = 0.5 * std::erfc(-v / std::numbers::sqrt2), pdf = std::exp(-0.5 * v * v) / std::sqrt(2 * std::numbers::pi);
    const double want_y = v * cdf, want_d = cdf + v * pdf;
    const double rel = 4e-7 + (v < 0 ? 1.5e-7 * v * v : 0);
    const double got_y = y.value().data<float>()[i], got_d = dx.data<float>()[i];
    ASSERT_LE(std::abs(got_y - want_y), rel * std::abs(want_y) + 1e-36) << "gelu(" << v << ")";
    ASSERT_LE(std::abs(got_d - want_d), rel * (cdf + std::abs(v * pdf)) + 1e-36) << "gelu'(" << v << ")";
    if (std::abs(want_y) > 1e-30) worst_y = std::max(worst_y, std::abs(got_y - want_y) / std::abs(want_y) / rel);
    if (std::abs(want_d) > 1e-30) worst_d = std::max(worst_d, std::abs(got_d - want_d) / (cdf + std::abs(v * pdf)) / rel);
  }
  std::printf("f32 gelu: worst error / bound %.2f (value), %.2f (gradient)\n", worst_y, worst_d);
}

TEST(Ops, BroadcastingArithmeticRepeatsTheSecondOperand) {
  const Array a = f64({2, 3, 4}, 2), bias = f64({4}, 3), row = f64({3, 4}, 4), one = f64({1}, 5);
  Graph g;
  Var va = g.parameter("a", a);
  const Var outs[] = {va + g.parameter("bias", bias), va - g.parameter("row", row), va * g.parameter("one", one)};
  for (std::int64_t i = 0; i < 24; ++i) {
    const double av = a.data<double>()[i];
    EXPECT_DOUBLE_EQ(outs[0].value().data<double>()[i], av + bias.data<double>()[i % 4]);
    EXPECT_DOUBLE_EQ(outs[1].value().data<double>()[i], av - row.data<double>()[i % 12]);
    EXPECT_DOUBLE_EQ(outs[2].value().data<double>()[i], av * one.data<double>()[0]);
  }
  EXPECT_THROW(va + g.parameter("bad", f64({3}, 6)), InvalidArgumentError);
}

TEST(Ops, LinearIsTheNaiveProductPlusBias) {
  const std::int64_t B = 3, T = 2, K = 5, N = 4;
  const Array x = f64({B, T, K}, 7), w = f64({K, N}, 8), b = f64({N}, 9);
  Graph g;
  Var y = linear(g.parameter("x", x), g.parameter("w", w), g.parameter("b", b));
  ASSERT_EQ(y.shape(), (Shape{B, T, N}));
  for (std::int64_t r = 0; r < B * T; ++r)
    for (std::int64_t j = 0; j < N; ++j) {
      double ref = b.data<double>()[j];
      for (std::int64_t k = 0; k < K; ++k) ref += x.data<double>()[r * K + k] * w.data<double>()[k * N + j];
      EXPECT_NEAR(y.value().data<double>()[r * N + j], ref, 1e-14);
    }
}

// linear_relu is relu(linear(...)) in one op: the naive formula's values, and its gradients
// against central differences (away from the kink: the check's inputs give no output within 1e-3 of 0).
TEST(Ops, LinearReluIsTheNaiveProductPlusBiasClampedAtZero) {
  const std::int64_t B = 4, K = 5, N = 6;
  const Array x = f64({B, K}, 17), w = f64({K, N}, 18), b = f64({N}, 19);
  Graph g;
  Var y = linear_relu(g.parameter("x", x), g.parameter("w", w), g.parameter("b", b));
  int positive = 0;
  for (std::int64_t r = 0; r < B; ++r)
    for (std::int64_t j = 0; j < N; ++j) {
      double ref = b.data<double>()[j];
      for (std::int64_t k = 0; k < K; ++k) ref += x.data<double>()[r * K + k] * w.data<double>()[k * N + j];
      positive += ref > 0;
      EXPECT_NEAR(y.value().data<double>()[r * N + j], std::max(ref, 0.0), 1e-14);
    }
  EXPECT_GT(positive, 0);
  EXPECT_LT(positive, B * N);  // both sides of the kink are exercised
  // Σ y ⊙ c with c fixed: every output's gradient differs, so a mask applied to the wrong element shows.
  const Array c = f64({B, N}, 20);
  const LossFn fn = [&c](const VarTree& p, const VarTree&) {
    Var out = linear_relu(p["x"], p["w"], p["b"]);
    return sum(mul(out, out.graph().constant(c)));
  };
  const GradientCheckReport report =
      check_gradients(fn, Tree{{"x", x}, {"w", w}, {"b", b}}, Tree{}, {.eps = 1e-6, .tolerance = 1e-7});
  EXPECT_TRUE(report.passed) << report.to_string();
}

TEST(Ops, ReductionsSumOverTheirAxis) {
  const Array x = f64({2, 3, 4}, 10);
  Graph g;
  Var v = g.parameter("x", x);
  Var s1 = sum(v, 1), m = mean(v), s_last = sum(v, -1);
  ASSERT_EQ(s1.shape(), (Shape{2, 4}));
  ASSERT_EQ(s_last.shape(), (Shape{2, 3}));
  double total = 0;
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 4; ++k) {
      double ref = 0;
      for (int j = 0; j < 3; ++j) ref += x.at<double>({i, j, k});
      EXPECT_NEAR(s1.value().at<double>({i, k}), ref, 1e-14);
      total += ref;
    }
  EXPECT_NEAR(m.value().item<double>(), total / 24, 1e-15);
  // Rows longer than the 8 partial sums of a contiguous reduction, and not a multiple of them.
  const Array w = f64({3, 21}, 12);
  Var rows = sum(g.parameter("w", w), -1);
  for (int i = 0; i < 3; ++i) {
    double ref = 0;
    for (int j = 0; j < 21; ++j) ref += w.at<double>({i, j});
    EXPECT_NEAR(rows.value().at<double>({i}), ref, 1e-14);
  }
  EXPECT_THROW(sum(v, 3), InvalidArgumentError);
  EXPECT_THROW(mean(v, -4), InvalidArgumentError);
}

TEST(Ops, SoftmaxCrossEntropyIsTheMaskedMeanOfLogSumExpMinusTheLabelsLogit) {
  const std::int64_t B = 4, C = 5;
  const Array logits = f64({B, C}, 11, -4, 4);
  const Array labels = Array::from_values<std::int32_t>({B}, {0, 4, 2, 9});  // 9: masked out
  const Array mask = Array::from_values<double>({B}, {1, 1, 0.5, 0});
  Graph g;
  Var l = g.parameter("logits", logits);
  Var loss = softmax_cross_entropy(l, g.input("labels", labels), g.input("mask", mask));
  double ref = 0, wsum = 0;
  for (int b = 0; b < 3; ++b) {
    double lse = 0;
    for (int c = 0; c < C; ++c) lse += std::exp(logits.at<double>({b, c}));
    ref += mask.data<double>()[b] * (std::log(lse) - logits.at<double>({b, labels.data<std::int32_t>()[b]}));
    wsum += mask.data<double>()[b];
  }
  EXPECT_NEAR(loss.value().item<double>(), ref / wsum, 1e-13);
  // A label out of range on an example that counts is refused.
  const Array bad = Array::from_values<std::int32_t>({B}, {0, 5, 2, 1});
  EXPECT_THROW(softmax_cross_entropy(l, g.input("bad", bad)), InvalidArgumentError);
}

// --- gradients against central differences -------------------------------------------------------

// Every core op inside one loss: each parameter's gradient is checked element by element.
LossFn all_core_ops() {
  return [](const VarTree& p, const VarTree& b) {
    Var h = linear(b["x"], p["w1"], p["b1"]);               // [2, 3, 6]
    Var a = gelu(h) + sigmoid(h) * p["gate"] - nn::tanh(h);  // bias broadcast of [6]
    Var r = relu(a + 0.1) * 0.5 + gelu(h, GeluMode::tanh);
    Var flat = reshape(r, {6, 6});
    Var logits = matmul(flat, p["w2"]);                     // [6, 3]
    Var ce = softmax_cross_entropy(logits, b["labels"], b["mask"]);
    return ce + mean(sum(logits * logits, 0)) * 0.01 + sum(p["gate"]) * 0.1;
  };
}

Tree core_params() {
  return {{"w1", f64({4, 6}, 20)}, {"b1", f64({6}, 21)}, {"gate", f64({6}, 22)}, {"w2", f64({6, 3}, 23)}};
}
Tree core_batch() {
  return {{"x", f64({2, 3, 4}, 24, -2, 2)},
          {"labels", Array::from_values<std::int32_t>({6}, {0, 1, 2, 2, 1, 0})},
          {"mask", Array::from_values<double>({6}, {1, 1, 1, 0, 1, 1})}};
}

TEST(Gradients, EveryCoreOpMatchesCentralDifferences) {
  const GradientCheckReport report = check_gradients(all_core_ops(), core_params(), core_batch(),
                                                     {.eps = 1e-6, .tolerance = 1e-7, .max_checks_per_leaf = 1000});
  std::printf("%s", report.to_string().c_str());
  EXPECT_TRUE(report.passed) << report.to_string();
  ASSERT_EQ(report.leaves.size(), 4u);
  for (const auto& leaf : report.leaves) EXPECT_GT(leaf.max_abs_numeric, 1e-3) << leaf.key;  // not a vacuous check
}

// The checker is not vacuous: an op whose backward is off by 1% fails it.
class WrongSquare final : public Op {
 public:
  std::string_view name() const override { return "wrong_square"; }
  void forward(std::span<const Array> in, Array& out) override {
    for (std::int64_t i = 0; i < out.numel(); ++i) out.data<double>()[i] = in[0].data<double>()[i] * in[0].data<double>()[i];
  }
  void backward(std::span<const Array> in, const Array&, const Array& dout, std::span<Array* const> din) override {
    if (!din[0]) return;
    for (std::int64_t i = 0; i < dout.numel(); ++i)
      din[0]->data<double>()[i] += 2.02 * in[0].data<double>()[i] * dout.data<double>()[i];
  }
};

TEST(Gradients, AWrongBackwardFailsTheCheck) {
  LossFn fn = [](const VarTree& p, const VarTree&) {
    Var x = p["x"];
    return sum(x.graph().apply(std::make_unique<WrongSquare>(), {x}, x.shape(), x.dtype()));
  };
  const GradientCheckReport report = check_gradients(fn, {{"x", f64({5}, 30)}}, {});
  EXPECT_FALSE(report.passed) << report.to_string();
}

// --- record once, replay --------------------------------------------------------------------------

TEST(ValueAndGrad, ReplayGivesWhatAFreshRecordingGivesAndAllocatesNothing) {
  ValueAndGrad vg(all_core_ops());
  Tree params = core_params();
  const Tree batch = core_batch();
  (void)vg(params, batch);
  // New values of the same shapes: replayed, not recorded again.
  Tree params2 = params.map([](const Array& a) { return a.copy(); });
  for (auto& kv : params2)
    for (double& v : kv.second.data<double>()) v *= 0.9;
  const long before = datarax::test::allocation_count();
  auto [loss, grads] = vg(params2, batch);
  const long allocations = datarax::test::allocation_count() - before;
  EXPECT_EQ(allocations, 0);
  EXPECT_EQ(vg.recordings(), 1);

  ValueAndGrad fresh(all_core_ops());
  auto [loss_ref, grads_ref] = fresh(params2, batch);
  EXPECT_EQ(loss, loss_ref);
  EXPECT_TRUE(bitwise_equal(grads, grads_ref));
}

TEST(ValueAndGrad, AnotherShapeRecordsAgain) {
  LossFn fn = [](const VarTree& p, const VarTree& b) { return mean(linear(b["x"], p["w"], p["b"])); };
  ValueAndGrad vg(fn);
  const Tree params{{"w", f64({3, 2}, 40)}, {"b", f64({2}, 41)}};
  const double l1 = vg(params, {{"x", f64({4, 3}, 42)}}).loss;
  const Array x5 = f64({5, 3}, 43);
  const auto r = vg(params, {{"x", x5}});
  EXPECT_EQ(vg.recordings(), 2);
  EXPECT_NE(l1, r.loss);
  // d mean / d b = 1/2 for each output column, whatever the rows.
  for (double g : r.grads.at("b").data<double>()) EXPECT_NEAR(g, 0.5, 1e-15);
  // d mean / d w[k, j] = Σ_rows x[r, k] / (rows · 2).
  for (int k = 0; k < 3; ++k) {
    double col = 0;
    for (int row = 0; row < 5; ++row) col += x5.at<double>({row, k});
    EXPECT_NEAR(r.grads.at("w").at<double>({k, 0}), col / 10, 1e-15);
  }
}

// Each gradient is written by its first contributor and added to by the others (Op::
// backward_fresh): replays must not carry the last call's sums over, a value used by several ops
// (and twice by one) sums all of them, and a parameter the loss ignores gets zeros.
TEST(ValueAndGrad, GradientsAreWrittenAfreshAtEveryCall) {
  LossFn fn = [](const VarTree& p, const VarTree& b) {
    Var h = linear(b["x"], p["w"], p["b"]);     // h feeds three ops
    Var y = relu(h) + h * h + linear(h, p["v"], p["c"]);
    return sum(y);
  };
  const Tree params{{"w", f64({3, 2}, 60)}, {"b", f64({2}, 61)}, {"v", f64({2, 2}, 62)}, {"c", f64({2}, 63)},
                    {"unused", f64({4}, 64)}};
  const Tree batch{{"x", f64({5, 3}, 65)}};
  ValueAndGrad vg(fn);
  Tree first;
  for (int call = 0; call < 3; ++call) {
    const Tree grads = vg(params, batch).grads.map([](const Array& a) { return a.copy(); });
    if (call == 0) first = grads;
    EXPECT_TRUE(bitwise_equal(grads, first)) << "call " << call;
  }
  for (double g : first.at("unused").data<double>()) EXPECT_EQ(g, 0.0);
  // d/db of Σ relu(h) + h² + h·v + c: per column j, Σ_rows [h>0] + 2h + Σ_k v[j, k].
  const Array x = batch.at("x"), w = params.at("w"), b = params.at("b"), v = params.at("v");
  for (int j = 0; j < 2; ++j) {
    double want = 0;
    for (int r = 0; r < 5; ++r) {
      double h = b.data<double>()[j];
      for (int k = 0; k < 3; ++k) h += x.at<double>({r, k}) * w.at<double>({k, j});
      want += (h > 0 ? 1.0 : 0.0) + 2 * h + v.at<double>({j, 0}) + v.at<double>({j, 1});
    }
    EXPECT_NEAR(first.at("b").data<double>()[j], want, 1e-12);
  }
}

TEST(ValueAndGrad, ExposedValuesFollowTheReplay) {
  LossFn fn = [](const VarTree& p, const VarTree& b) {
    Var y = matmul(b["x"], p["w"]);
    expose("y", y);
    return sum(y);
  };
  ValueAndGrad vg(fn);
  const Tree params{{"w", Array::from_values<double>({1, 1}, {2.0})}};
  (void)vg(params, {{"x", Array::from_values<double>({2, 1}, {1.0, 3.0})}});
  (void)vg(params, {{"x", Array::from_values<double>({2, 1}, {5.0, 7.0})}});
  EXPECT_EQ(vg.outputs().at("y").data<double>()[0], 10.0);
  EXPECT_EQ(vg.outputs().at("y").data<double>()[1], 14.0);
}

TEST(ValueAndGrad, ErrorsNameTheProblem) {
  ValueAndGrad not_scalar([](const VarTree& p, const VarTree&) { return p["w"] * 2.0; });
  try {
    (void)not_scalar({{"w", f64({3}, 1)}}, {});
    FAIL() << "a loss of shape [3] was accepted";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("shape [3]"), std::string::npos) << e.what();
  }
  ValueAndGrad missing([](const VarTree& p, const VarTree&) { return sum(p["nope"]); });
  EXPECT_THROW((void)missing({{"w", f64({3}, 1)}}, {}), KeyError);
  Graph g;
  Var a = g.parameter("a", f64({2, 3}, 1));
  try {
    (void)linear(a, g.parameter("w", f64({4, 2}, 2)), g.parameter("b", f64({2}, 3)));
    FAIL();
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("linear: the input's last dimension is 3"), std::string::npos) << e.what();
  }
  Graph other;
  EXPECT_THROW(a + other.parameter("b", f64({3}, 4)), InvalidArgumentError);
  EXPECT_THROW(a + g.parameter("f32", Array::zeros({3}, DType::f32)), DTypeError);
  EXPECT_THROW(relu(Var{}), InvalidArgumentError);
}

// --- what a careless caller meets (found in review) ----------------------------------------------

TEST(Graph, ReferencesFromVarsStayValidWhileTheGraphGrows) {
  Graph g;
  Var x = g.parameter("x", f64({3, 4}, 70));
  const Shape& s = x.shape();  // a reference into the graph
  Var h = x;
  for (int i = 0; i < 100; ++i) h = relu(h);  // many nodes: a vector would have moved
  EXPECT_EQ(s, (Shape{3, 4}));
  EXPECT_EQ(reshape(h, {s[0], -1}).shape(), (Shape{3, 4}));
}

TEST(Graph, AnOpThatFailsWhenRecordedLeavesNoTrace) {
  Graph g;
  Var x = g.parameter("x", f64({4}, 71));
  Var y = relu(x);
  const std::size_t before = g.size();
  EXPECT_THROW(x.graph().apply(std::make_unique<WrongSquare>(), {g.input("labels", Array::zeros({4}, DType::i32))},
                               Shape{4}, DType::f64),
               DTypeError);  // WrongSquare's forward reads doubles from an i32 input
  EXPECT_EQ(g.size(), before + 1);  // the input leaf, not the failed op
  g.forward();                      // the graph replays
  EXPECT_EQ(y.value().data<double>()[0], std::max(0.0, x.value().data<double>()[0]));
}

TEST(Ops, ReshapeRefusesExtentsWhoseProductOverflows) {
  Graph g;
  Var x = g.parameter("x", f64({4}, 72));
  try {
    (void)reshape(x, {4, (std::int64_t{1} << 62) + 1});
    FAIL() << "an overflowing shape was accepted";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("reshape: extents overflow"), std::string::npos) << e.what();
  }
}

TEST(Ops, EmptyProductsAreEmptyNotErrors) {
  // K = 0: x [2, 0] · w [0, 3] + b is b on every row; N = 0: an empty result.
  LossFn fn = [](const VarTree& p, const VarTree& b) { return sum(linear(b["x"], p["w"], p["b"])) + sum(matmul(b["x2"], p["w0"])); };
  ValueAndGrad vg(fn);
  const Tree params{{"w", Array::zeros({0, 3}, DType::f64)}, {"b", f64({3}, 73)}, {"w0", Array::zeros({3, 0}, DType::f64)}};
  const Tree batch{{"x", Array::zeros({2, 0}, DType::f64)}, {"x2", f64({2, 3}, 74)}};
  auto [loss, grads] = vg(params, batch);
  double bsum = 0;
  for (double v : params.at("b").data<double>()) bsum += v;
  EXPECT_NEAR(loss, 2 * bsum, 1e-14);
  for (double v : grads.at("b").data<double>()) EXPECT_EQ(v, 2.0);
}

TEST(Ops, ALossWhoseMaskDependsOnAParameterIsRefused) {
  Graph g;
  Var logits = g.parameter("logits", f64({2, 3}, 75));
  Var labels = g.input("labels", Array::from_values<std::int32_t>({2}, {0, 1}));
  Var mask = sigmoid(g.parameter("m", f64({2}, 76)));
  try {
    (void)softmax_cross_entropy(logits, labels, mask);
    FAIL() << "a mask computed from a parameter was accepted (its gradient would be dropped)";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("the mask depends on a parameter"), std::string::npos) << e.what();
  }
}

TEST(ValueAndGrad, AnExposedInputFollowsTheBatch) {
  ValueAndGrad vg([](const VarTree& p, const VarTree& b) {
    expose("x", b["x"]);
    return sum(b["x"] * p["w"]);
  });
  const Tree params{{"w", Array::from_values<double>({1}, {2.0})}};
  (void)vg(params, {{"x", Array::from_values<double>({1}, {1.0})}});
  (void)vg(params, {{"x", Array::from_values<double>({1}, {5.0})}});
  EXPECT_EQ(vg.outputs().at("x").data<double>()[0], 5.0);
}

// --- modules --------------------------------------------------------------------------------------

struct TwoLayer : Module {
  Dense hidden{*this, "dense_0", 4, 8};
  Dense out{*this, "dense_1", 8, 3, {.kernel_sharding = PartitionSpec{std::nullopt, "model"}}};
  Var operator()(const VarTree& p, Var x) const { return out(p, relu(hidden(p, x))); }
};

TEST(Module, ParametersAreKeyedByAttributePathWithFlaxLayouts) {
  TwoLayer model;
  const Tree params = model.init(3);
  EXPECT_EQ(params.keys(), (std::vector<std::string>{"dense_0/bias", "dense_0/kernel", "dense_1/bias", "dense_1/kernel"}));
  EXPECT_EQ(params.at("dense_0/kernel").shape(), (Shape{4, 8}));
  EXPECT_EQ(params.at("dense_1/bias").shape(), (Shape{3}));
  EXPECT_EQ(model.num_params(), 4 * 8 + 8 + 8 * 3 + 3);
  for (float v : params.at("dense_0/bias").data<float>()) EXPECT_EQ(v, 0.0f);
  // Deterministic per seed; another seed differs.
  EXPECT_TRUE(bitwise_equal(params, model.init(3)));
  EXPECT_FALSE(bitwise_equal(params.at("dense_0/kernel"), model.init(4).at("dense_0/kernel")));
  const ShardingRules rules = model.sharding_rules();
  ASSERT_EQ(rules.rules().size(), 1u);
  EXPECT_EQ(rules.rules()[0].pattern, "dense_1/kernel");
}

TEST(Module, LecunNormalHasTheVarianceOfItsFanIn) {
  struct Wide : Module {
    Dense d{*this, "d", 200, 300};
  } model;
  const Array k = model.init(1, DType::f64).at("d/kernel");
  double s = 0, s2 = 0, amax = 0;
  for (double v : k.data<double>()) {
    s += v;
    s2 += v * v;
    amax = std::max(amax, std::abs(v));
  }
  const double n = static_cast<double>(k.numel());
  const double stddev = std::sqrt(s2 / n - (s / n) * (s / n));
  // 60,000 draws: the sample stddev is within 1% of √(1/200) with overwhelming probability.
  EXPECT_NEAR(stddev, std::sqrt(1.0 / 200), 0.01 * std::sqrt(1.0 / 200));
  // Truncated at 2 stddevs of the untruncated normal.
  EXPECT_LE(amax, 2 * std::sqrt(1.0 / 200) / 0.87962566103423978 + 1e-12);
}

TEST(Module, AModelsGradientsPassTheCheck) {
  TwoLayer model;
  LossFn fn = [&](const VarTree& p, const VarTree& b) {
    return softmax_cross_entropy(model(p, b["x"]), b["labels"]);
  };
  const Tree batch{{"x", f64({5, 4}, 50, -2, 2)}, {"labels", Array::from_values<std::int32_t>({5}, {0, 1, 2, 1, 0})}};
  const GradientCheckReport report = check_gradients(model, fn, batch, 7, {.tolerance = 1e-7});
  EXPECT_TRUE(report.passed) << report.to_string();
}

TEST(Module, BadDeclarationsAreRefused) {
  struct Twice : Module {
    Twice() {
      param("w", {2}, init::zeros());
      param("w", {2}, init::zeros());
    }
  };
  EXPECT_THROW(Twice{}, InvalidArgumentError);
  struct Negative : Module {
    Negative() { param("w", Shape{std::vector<std::int64_t>{-1}}, init::zeros()); }
  };
  EXPECT_THROW(Negative{}, InvalidArgumentError);
  Module root;
  EXPECT_THROW(Dense(root, "a/b", 2, 2), InvalidArgumentError);
  EXPECT_THROW(Dense(root, "d", 0, 2), InvalidArgumentError);
}

}  // namespace
}  // namespace datarax::nn
