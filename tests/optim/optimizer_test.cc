// Optimizers against their formulas written out here, a few steps on a tiny tree; clipping;
// state layout, purity, errors, and no allocation per step.
#include "datarax/optim/optimizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "datarax/optim/adam.h"
#include "datarax/optim/clip.h"
#include "datarax/optim/sgd.h"
#include "nn/count_allocations.h"
#include "support/error_of.h"

namespace datarax::optim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using datarax::test::error_of;

constexpr int kSteps = 4;

// Parameters: "a" f64[3], "b" f64[2, 2] (and, with f32_b, "b" in f32).
Tree params(bool f32_b = false) {
  Tree t{{"a", Array::from_values<double>({3}, {1.0, -2.0, 0.5})},
         {"b", Array::from_values<double>({2, 2}, {0.25, -0.75, 3.0, 0.0})}};
  if (f32_b) t.set("b", t.at("b").astype(DType::f32));
  return t;
}

// The gradient of element i of leaf `leaf` at step k: a fixed formula, varying in sign and size.
double grad_value(int leaf, int i, int k) { return std::sin(1.0 + 3 * leaf + i + 0.7 * k) * (k + 1); }

Tree grads_at(const Tree& like, int k) {
  int leaf = 0;
  return like.map([&](const Array& p) {
    Array g = Array::empty(p.shape(), DType::f64);
    auto v = g.data<double>();
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = grad_value(leaf, static_cast<int>(i), k);
    ++leaf;
    return g.astype(p.dtype());
  });
}

std::vector<double> values(const Array& a) {
  const Array d = a.astype(DType::f64);
  return {d.data<double>().begin(), d.data<double>().end()};
}

// Runs kSteps of opt (update + apply_updates) from params(f32_b) and returns the final parameters.
Tree run(const Optimizer& opt, bool f32_b = false) {
  Tree p = params(f32_b);
  Tree state = opt.init(p);
  for (int k = 0; k < kSteps; ++k) {
    Tree g = grads_at(p, k);
    opt.update(g, state, p);
    apply_updates(p, g);
  }
  EXPECT_EQ(step_count(state), kSteps);
  return p;
}

// The same, elementwise, by the formula `step(p, g, k, slot...)` on doubles.
template <class Step>
Tree reference(Step step) {
  Tree p = params();
  int leaf = 0;
  for (auto& entry : p) {
    const std::string& key = entry.first;
    std::span<double> v = entry.second.data<double>();
    for (std::size_t i = 0; i < v.size(); ++i) {
      double s1 = 0, s2 = 0;  // the optimizer's per-element state, zero at init
      for (int k = 0; k < kSteps; ++k)
        v[i] += step(v[i], grad_value(leaf, static_cast<int>(i), k), k, s1, s2, key);
    }
    ++leaf;
  }
  return p;
}

void expect_near(const Tree& got, const Tree& want, double tol) {
  ASSERT_EQ(got.keys(), want.keys());
  for (const auto& [key, w] : want) {
    const auto g = values(got.at(key)), e = values(w);
    for (std::size_t i = 0; i < e.size(); ++i)
      EXPECT_NEAR(g[i], e[i], tol * std::max(1.0, std::abs(e[i]))) << key << "[" << i << "]";
  }
}

// A learning rate that changes every step, to show the schedule reads the count (0 first).
double lr_at(std::int64_t count) { return 0.1 / static_cast<double>(count + 1); }
Schedule varying_lr() { return Schedule(lr_at, "0.1 / (count + 1)"); }

TEST(Sgd, PlainIsMinusLearningRateTimesGradient) {
  const Tree want = reference([](double, double g, int k, double&, double&, auto&) {
    return -lr_at(k) * g;
  });
  const auto opt = sgd(varying_lr());
  expect_near(run(*opt), want, 1e-15);
  expect_near(run(*opt, /*f32_b=*/true), want, 1e-6);
  EXPECT_EQ(opt->init(params()).keys(), std::vector<std::string>{"count"});
}

TEST(Sgd, MomentumKeepsATrace) {
  const double m = 0.9;
  const Tree want = reference([&](double, double g, int k, double& trace, double&, auto&) {
    trace = g + m * trace;
    return -lr_at(k) * trace;
  });
  expect_near(run(*sgd(varying_lr(), m)), want, 1e-14);
  EXPECT_THAT(sgd(0.1, m)->init(params()).keys(), ElementsAre("count", "trace/a", "trace/b"));
}

TEST(Sgd, NesterovLooksAhead) {
  const double m = 0.8;
  const Tree want = reference([&](double, double g, int k, double& trace, double&, auto&) {
    trace = g + m * trace;
    return -lr_at(k) * (g + m * trace);
  });
  expect_near(run(*sgd(varying_lr(), m, /*nesterov=*/true)), want, 1e-14);
  expect_near(run(*sgd(varying_lr(), m, true), true), want, 1e-6);
}

TEST(Adam, BiasCorrectedMoments) {
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const Tree want = reference([&](double, double g, int k, double& mu, double& nu, auto&) {
    mu = b1 * mu + (1 - b1) * g;
    nu = b2 * nu + (1 - b2) * g * g;
    const double t = k + 1;
    const double mu_hat = mu / (1 - std::pow(b1, t)), nu_hat = nu / (1 - std::pow(b2, t));
    return -lr_at(k) * mu_hat / (std::sqrt(nu_hat) + eps);
  });
  const auto opt = adam(varying_lr());
  EXPECT_EQ(opt->name(), "adam");
  expect_near(run(*opt), want, 1e-14);
  expect_near(run(*opt, true), want, 1e-6);
  EXPECT_THAT(opt->init(params()).keys(), ElementsAre("count", "mu/a", "mu/b", "nu/a", "nu/b"));
}

TEST(Adam, AdamWDecaysWeightsDecoupled) {
  const double b1 = 0.8, b2 = 0.99, eps = 1e-6, wd = 0.05;
  const auto formula = [&](bool decay_b) {
    return reference([&, decay_b](double p, double g, int k, double& mu, double& nu,
                                  const std::string& key) {
      mu = b1 * mu + (1 - b1) * g;
      nu = b2 * nu + (1 - b2) * g * g;
      const double t = k + 1;
      double u = (mu / (1 - std::pow(b1, t))) / (std::sqrt(nu / (1 - std::pow(b2, t))) + eps);
      if (key == "a" || decay_b) u += wd * p;
      return -lr_at(k) * u;
    });
  };
  const auto opt = adamw(varying_lr(), b1, b2, eps, wd);
  EXPECT_EQ(opt->name(), "adamw");
  expect_near(run(*opt), formula(true), 1e-14);
  // A mask: only "a" decays.
  const Adam masked({.learning_rate = varying_lr(), .b1 = b1, .b2 = b2, .eps = eps,
                     .weight_decay = wd,
                     .weight_decay_mask = [](std::string_view key) { return key == "a"; }});
  expect_near(run(masked), formula(false), 1e-14);
}

TEST(Optimizer, PureFormsLeaveTheirArgumentsAlone) {
  const auto opt = adamw(0.01);
  const Tree p = params();
  const Tree state = opt->init(p);
  const Tree g = grads_at(p, 0);
  const Tree g_before = g.map([](const Array& a) { return a.copy(); });
  const UpdateResult r = opt->update_copy(g, state, p);
  EXPECT_TRUE(bitwise_equal(g, g_before));
  EXPECT_EQ(step_count(state), 0);
  EXPECT_EQ(step_count(r.state), 1);
  const Tree next = apply_updates_copy(p, r.updates);
  EXPECT_TRUE(bitwise_equal(p, params()));
  // The in-place forms give the same bits.
  Tree p2 = params(), g2 = grads_at(p2, 0), s2 = opt->init(p2);
  opt->update(g2, s2, p2);
  apply_updates(p2, g2);
  EXPECT_TRUE(bitwise_equal(p2, next));
  EXPECT_TRUE(bitwise_equal(s2, r.state));
}

// update_and_apply is documented as update() then apply_updates(), bit for bit: checked against
// that composition (the oracle) for every optimizer, in f32 and f64, on leaves long enough for the
// vector loops and their tails (1029 = 64 x 16 + 5), over several steps, with weight decay on and
// masked, and from a state that is not zero.
TEST(Optimizer, UpdateAndApplyIsUpdateThenApplyBitForBit) {
  const Adam masked({.learning_rate = varying_lr(), .weight_decay = 0.05,
                     .weight_decay_mask = [](std::string_view key) { return key == "a"; }});
  const auto adam_opt = adam(varying_lr());
  const auto adamw_opt = adamw(varying_lr(), 0.8, 0.99, 1e-6, 0.05);
  const auto sgd_opt = make_optimizer("sgd", {.learning_rate = 0.1, .momentum = 0.9, .nesterov = true});
  const std::vector<const Optimizer*> opts = {adam_opt.get(), adamw_opt.get(), &masked, sgd_opt.get()};
  for (const DType dtype : {DType::f32, DType::f64})
    for (const Optimizer* opt : opts) {
      Tree p{{"a", Array::empty({1029}, DType::f64)}, {"b", Array::empty({3, 7}, DType::f64)}};
      for (auto& entry : p) {
        std::span<double> v = entry.second.data<double>();
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::cos(0.37 * static_cast<double>(i)) * 2;
      }
      p = p.map([&](const Array& a) { return a.astype(dtype); });
      Tree q = p.map([](const Array& a) { return a.copy(); });
      Tree sp = opt->init(p), sq = opt->init(q);
      for (int k = 0; k < 5; ++k) {
        Tree gp = grads_at(p, k), gq = grads_at(q, k);
        opt->update(gp, sp, p);  // the oracle
        apply_updates(p, gp);
        opt->update_and_apply(gq, sq, q);
        ASSERT_TRUE(bitwise_equal(p, q)) << opt->name() << " " << to_string(dtype) << " step " << k;
        ASSERT_TRUE(bitwise_equal(sp, sq)) << opt->name() << " " << to_string(dtype) << " step " << k;
      }
    }
}

TEST(Optimizer, UpdateAndApplyAllocatesNothingAndNamesMismatches) {
  const auto opt = adam(0.01);
  Tree p = params(true), state = opt->init(p), g = grads_at(p, 0);
  const long before = datarax::test::allocation_count();
  for (int k = 0; k < 3; ++k) opt->update_and_apply(g, state, p);
  EXPECT_EQ(datarax::test::allocation_count() - before, 0);
  Tree fewer{{"a", p.at("a")}};
  EXPECT_THAT(error_of([&] { opt->update_and_apply(g, state, fewer); }),
              HasSubstr("adam.update_and_apply (gradients vs parameters)"));
}

TEST(Optimizer, AStepAllocatesNothing) {
  for (const char* name : {"sgd", "adam", "adamw"}) {
    const auto opt = make_optimizer(name, {.learning_rate = warmup_cosine_decay(0.1, 2, 10),
                                           .momentum = std::string_view(name) == "sgd" ? 0.9 : 0});
    Tree p = params(true), state = opt->init(p), g = grads_at(p, 0);
    const long before = datarax::test::allocation_count();
    for (int k = 0; k < 3; ++k) {
      opt->update(g, state, p);
      apply_updates(p, g);
    }
    const long allocations = datarax::test::allocation_count() - before;
    EXPECT_EQ(allocations, 0) << name;
  }
}

TEST(Optimizer, MakeOptimizerKnowsThreeNames) {
  EXPECT_THAT(optimizer_names(), ElementsAre("sgd", "adam", "adamw"));
  for (std::string_view name : optimizer_names()) EXPECT_EQ(make_optimizer(name)->name(), name);
  EXPECT_THAT(error_of([] { make_optimizer("adagrad"); }),
              HasSubstr("make_optimizer: unknown optimizer \"adagrad\"; valid: sgd, adam, adamw"));
  EXPECT_THAT(error_of([] { make_optimizer("sgd", {.nesterov = true}); }),
              HasSubstr("sgd: nesterov needs momentum > 0"));
  EXPECT_THAT(error_of([] { make_optimizer("adam", {.b2 = 1.0}); }),
              HasSubstr("adam: b2 = 1 is out of range [0, 1)"));
  EXPECT_THAT(error_of([] { sgd(0.1, -0.5); }), HasSubstr("sgd: momentum = -0.5 must be >= 0"));
}

TEST(Optimizer, MismatchedTreesAreNamed) {
  const auto opt = adam(0.1);
  Tree p = params();
  Tree state = opt->init(p);
  Tree extra = grads_at(p, 0);
  extra.set("c", Array::zeros({1}, DType::f64));
  EXPECT_THAT(error_of([&] { opt->update(extra, state, p); }),
              HasSubstr("adam.update: state has no \"mu/c\" for the gradient \"c\""));
  Tree fewer = grads_at(p, 0);
  fewer.erase("b");
  EXPECT_THAT(error_of([&] { opt->update(fewer, state, p); }),
              HasSubstr("state has \"mu/b\" but the gradients have no such key"));
  Tree wrong_shape = grads_at(p, 0);
  wrong_shape.set("a", Array::zeros({4}, DType::f64));
  EXPECT_THAT(error_of([&] { opt->update(wrong_shape, state, p); }),
              HasSubstr("state \"mu/a\" is f64[3] but the gradient is f64[4]"));
  Tree ints{{"a", Array::zeros({3}, DType::i32)}};
  EXPECT_THROW(opt->init(ints), DTypeError);
  Tree no_count = state;
  no_count.erase("count");
  EXPECT_THAT(error_of([&] { Tree g = grads_at(p, 0); opt->update(g, no_count, p); }),
              HasSubstr("the optimizer state has no \"count\" leaf"));
  EXPECT_THAT(error_of([&] { apply_updates(p, params(/*f32_b=*/true)); }),
              HasSubstr("apply_updates: the update \"b\" is f32[2, 2] but the parameter is "
                        "f64[2, 2]"));
  EXPECT_THAT(error_of([&] { apply_updates(p, extra); }),
              HasSubstr("apply_updates: key \"c\" is in the second tree but missing from the first"));
}

TEST(Clip, ClipByGlobalNormMatchesOptax) {
  // Global norm √(3² + 4² + 12²) = 13.
  const auto tree = [] {
    return Tree{{"x", Array::from_values<double>({2}, {3.0, 4.0})},
                {"y", Array::from_values<float>({1}, {12.0f})}};
  };
  EXPECT_DOUBLE_EQ(global_norm(tree()), 13.0);
  EXPECT_DOUBLE_EQ(sum_of_squares(tree()), 169.0);
  Tree t = tree();
  EXPECT_DOUBLE_EQ(clip_by_global_norm(t, 26.0), 13.0);  // below: unchanged
  EXPECT_TRUE(bitwise_equal(t, tree()));
  EXPECT_DOUBLE_EQ(clip_by_global_norm(t, 6.5), 13.0);  // above: scaled by 6.5 / 13
  EXPECT_THAT(values(t.at("x")), ElementsAre(1.5, 2.0));
  EXPECT_FLOAT_EQ(t.at("y").data<float>()[0], 6.0f);
  EXPECT_NEAR(global_norm(t), 6.5, 1e-6);
  // With the norm given (reduced across devices): scaled by max_norm / norm.
  Tree u = tree();
  clip_by_global_norm(u, 1.0, 26.0);
  EXPECT_THAT(values(u.at("x")), ElementsAre(3.0 / 26, 4.0 / 26));
  EXPECT_THAT(error_of([&] { clip_by_global_norm(u, 0.0); }),
              HasSubstr("clip_by_global_norm: max_norm = 0 must be > 0"));
}

}  // namespace
}  // namespace datarax::optim
