// The gradient check used by every op test can fail: an op with a plausibly wrong backward
// (softmax without its "− Σ dy · y" term; a gradient off by one part in 10⁵) fails it at kGradTol,
// while the right one passes.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "nn/ops/op_check.h"

namespace datarax::nn {
namespace {

using test::check_op;
using test::random;

// f64 softmax over the last axis of [rows, n], written here; backward as chosen.
class TestSoftmax final : public Op {
 public:
  enum class Bug { none, missing_term, off_by_1e5 };
  explicit TestSoftmax(Bug bug) : bug_(bug) {}
  std::string_view name() const override { return "test_softmax"; }
  void forward(std::span<const Array> in, Array& out) override {
    const auto x = in[0].data<double>();
    auto y = out.data<double>();
    const std::size_t n = static_cast<std::size_t>(in[0].shape()[1]);
    for (std::size_t r = 0; r < x.size(); r += n) {
      double mx = -INFINITY, total = 0;
      for (std::size_t j = 0; j < n; ++j) mx = std::max(mx, x[r + j]);
      for (std::size_t j = 0; j < n; ++j) total += y[r + j] = std::exp(x[r + j] - mx);
      for (std::size_t j = 0; j < n; ++j) y[r + j] /= total;
    }
  }
  void backward(std::span<const Array>, const Array& out, const Array& dout, std::span<Array* const> din) override {
    const auto y = out.data<double>();
    const auto g = dout.data<double>();
    auto dx = din[0]->data<double>();
    const std::size_t n = static_cast<std::size_t>(out.shape()[1]);
    for (std::size_t r = 0; r < y.size(); r += n) {
      double dot = 0;
      for (std::size_t j = 0; j < n; ++j) dot += g[r + j] * y[r + j];
      if (bug_ == Bug::missing_term) dot = 0;
      const double f = bug_ == Bug::off_by_1e5 ? 1 + 1e-5 : 1;
      for (std::size_t j = 0; j < n; ++j) dx[r + j] += f * y[r + j] * (g[r + j] - dot);
    }
  }

 private:
  Bug bug_;
};

bool passes(TestSoftmax::Bug bug) {
  return check_op(
             [bug](const VarTree& p, const VarTree&) {
               Var x = p["x"];
               // Scaled by 10 so the gradients are O(1): a 1e-5 relative error is 1e-5 absolute.
               return x.graph().apply(std::make_unique<TestSoftmax>(bug), {x * 10.0}, x.shape(), x.dtype());
             },
             {{"x", random({3, 5}, 1)}})
      .passed;
}

TEST(GradientCheck, FailsOnAWrongBackward) {
  EXPECT_TRUE(passes(TestSoftmax::Bug::none));
  EXPECT_FALSE(passes(TestSoftmax::Bug::missing_term));
  EXPECT_FALSE(passes(TestSoftmax::Bug::off_by_1e5));
}

}  // namespace
}  // namespace datarax::nn
