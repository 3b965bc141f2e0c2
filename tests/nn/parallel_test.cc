// Tensor-parallel layers and the tensor-parallel MLP, inside SPMD over a "model" axis of M devices:
// each device's part against the unsharded layer (1e-6 relative), the backward against central
// finite differences in f64, and the parallel MLP's gradients against nn::Mlp's on one device.
#include "datarax/nn/parallel_linear.h"
#include "datarax/nn/parallel_mlp.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <mutex>

#include "datarax/distributed/data_parallel_module.h"
#include "datarax/nn/linear.h"
#include "datarax/spmd.h"
#include "nn/gradcheck.h"
#include "nn/tree_layer_params.h"
#include "support/error_of.h"
#include "support/test_devices.h"

namespace datarax::nn {
namespace {

using ::testing::HasSubstr;
using test::uniform;

// Columns [c0, c1) of a row-major [rows, cols] matrix.
template <class T>
std::vector<T> columns(const std::vector<T>& m, int rows, int cols, int c0, int c1) {
  std::vector<T> out;
  for (int r = 0; r < rows; ++r)
    for (int c = c0; c < c1; ++c) out.push_back(m[static_cast<std::size_t>(r * cols + c)]);
  return out;
}
template <class T>
std::vector<T> rows_of(const std::vector<T>& m, int cols, int r0, int r1) {
  return std::vector<T>(m.begin() + r0 * cols, m.begin() + r1 * cols);
}

double max_relative(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0, ref = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::abs(got[i] - want[i])));
    ref = std::max(ref, static_cast<double>(std::abs(want[i])));
  }
  return ref > 0 ? diff / ref : diff;
}

// Column- then row-parallel, M = 1..4 (odd too): every device's outputs and gradients are the
// matching parts of the unsharded layers'.
TEST(ParallelLinear, ColumnAndRowEqualTheUnshardedLayer) {
  const int B = 5, in = 7, hidden = 12, out = 6;
  const auto x = test::to_float(uniform(B * in, -1, 1, 1));
  const auto w1 = test::to_float(uniform(in * hidden, -1, 1, 2)), b1 = test::to_float(uniform(hidden, -1, 1, 3));
  const auto w2 = test::to_float(uniform(hidden * out, -1, 1, 4)), b2 = test::to_float(uniform(out, -1, 1, 5));
  const auto dy = test::to_float(uniform(B * out, -1, 1, 6));
  // The unsharded reference: y = (x W1 + b1) W2 + b2, and its backward from dy.
  std::vector<float> h(B * hidden), y(B * out), dh(B * hidden), dx(B * in), dw1(in * hidden, 0), db1(hidden, 0),
      dw2(hidden * out, 0), db2(out, 0);
  linear_forward(h, x, w1, b1, B, in, hidden);
  linear_forward(y, h, w2, b2, B, hidden, out);
  linear_backward(dh, dw2, db2, dy, h, w2, B, hidden, out);
  linear_backward(dx, dw1, db1, dh, x, w1, B, in, hidden);
  for (int M : {1, 2, 3, 4}) {
    SCOPED_TRACE("M = " + std::to_string(M));
    const Mesh mesh(datarax::test::first_devices(M), {{"model", M}});
    const int cols = hidden / M;
    std::mutex mu;
    double worst = 0;
    run_spmd(mesh, [&](const Device&) {
      const int r = axis_index("model");
      const auto w1r = columns(w1, in, hidden, r * cols, (r + 1) * cols);
      const std::vector<float> b1r(b1.begin() + r * cols, b1.begin() + (r + 1) * cols);
      const auto w2r = rows_of(w2, out, r * cols, (r + 1) * cols);
      std::vector<float> hr(B * cols), yr(B * out), dhr(B * cols), dxr(B * in), dw1r(in * cols, 0), db1r(cols, 0),
          dw2r(cols * out, 0), db2r(out, 0);
      column_parallel_linear_forward(hr, x, w1r, b1r, B, in, cols);
      row_parallel_linear_forward(yr, hr, w2r, b2, B, cols, out, "model");
      row_parallel_linear_backward(dhr, dw2r, db2r, dy, hr, w2r, B, cols, out);
      column_parallel_linear_backward(dxr, dw1r, db1r, dhr, x, w1r, B, in, cols, "model");
      const double e = std::max({max_relative(hr, columns(h, B, hidden, r * cols, (r + 1) * cols)), max_relative(yr, y),
                                 max_relative(dhr, columns(dh, B, hidden, r * cols, (r + 1) * cols)), max_relative(dxr, dx),
                                 max_relative(dw1r, columns(dw1, in, hidden, r * cols, (r + 1) * cols)),
                                 max_relative(db1r, std::vector<float>(db1.begin() + r * cols, db1.begin() + (r + 1) * cols)),
                                 max_relative(dw2r, rows_of(dw2, out, r * cols, (r + 1) * cols)), max_relative(db2r, db2)});
      std::lock_guard lock(mu);
      worst = std::max(worst, e);
    });
    EXPECT_LT(worst, 1e-6);
    std::printf("M = %d: largest relative difference to the unsharded layers %.3g\n", M, worst);
  }
}

// The backward of the pair against central finite differences of L = Σ dy · y, in f64, on M = 3.
TEST(ParallelLinear, BackwardMatchesFiniteDifferences) {
  const int B = 3, in = 4, hidden = 6, out = 5, M = 3, cols = hidden / M;
  auto x = uniform(B * in, -1, 1, 11);
  auto w1 = uniform(in * hidden, -1, 1, 12), b1 = uniform(hidden, -1, 1, 13);
  auto w2 = uniform(hidden * out, -1, 1, 14), b2 = uniform(out, -1, 1, 15);
  const auto dy = uniform(B * out, -1, 1, 16);
  const Mesh mesh(datarax::test::first_devices(M), {{"model", M}});
  // Runs the pair on the mesh; returns L and leaves every device's gradients in `grads`.
  struct Grads {
    std::vector<double> dx, dw1, db1, dw2, db2;
  };
  std::vector<Grads> grads(M);
  auto run = [&](bool backward) {
    std::vector<double> loss(M);
    run_spmd(mesh, [&](const Device&) {
      const int r = axis_index("model");
      const auto w1r = columns(w1, in, hidden, r * cols, (r + 1) * cols);
      const std::vector<double> b1r(b1.begin() + r * cols, b1.begin() + (r + 1) * cols);
      const auto w2r = rows_of(w2, out, r * cols, (r + 1) * cols);
      std::vector<double> hr(B * cols), y(B * out);
      column_parallel_linear_forward(hr, x, w1r, b1r, B, in, cols);
      row_parallel_linear_forward(y, hr, w2r, b2, B, cols, out, "model");
      double l = 0;
      for (std::size_t i = 0; i < y.size(); ++i) l += dy[i] * y[i];
      loss[static_cast<std::size_t>(r)] = l;
      if (!backward) return;
      Grads& g = grads[static_cast<std::size_t>(r)];
      g = {std::vector<double>(B * in), std::vector<double>(in * cols, 0), std::vector<double>(cols, 0),
           std::vector<double>(cols * out, 0), std::vector<double>(out, 0)};
      std::vector<double> dhr(B * cols);
      row_parallel_linear_backward(dhr, g.dw2, g.db2, dy, hr, w2r, B, cols, out);
      column_parallel_linear_backward(g.dx, g.dw1, g.db1, dhr, x, w1r, B, in, cols, "model");
    });
    for (double l : loss) EXPECT_EQ(l, loss[0]);  // every device has the whole output
    return loss[0];
  };
  run(true);
  auto f = [&] { return run(false); };
  EXPECT_LT(test::relative_error("dinp", grads[0].dx, test::numeric_grad(x, f)), 1e-6);
  const auto nw1 = test::numeric_grad(w1, f), nb1 = test::numeric_grad(b1, f), nw2 = test::numeric_grad(w2, f),
             nb2 = test::numeric_grad(b2, f);
  for (int r = 0; r < M; ++r) {
    EXPECT_LT(test::relative_error("column dweight", grads[r].dw1, columns(nw1, in, hidden, r * cols, (r + 1) * cols)), 1e-6);
    EXPECT_LT(test::relative_error("column dbias", grads[r].db1,
                                   std::vector<double>(nb1.begin() + r * cols, nb1.begin() + (r + 1) * cols)), 1e-6);
    EXPECT_LT(test::relative_error("row dweight", grads[r].dw2, rows_of(nw2, out, r * cols, (r + 1) * cols)), 1e-6);
    EXPECT_LT(test::relative_error("row dbias", grads[r].db2, nb2), 1e-6);
  }
}

// The tensor-parallel MLP (Megatron splits over M = 2 and 4, layers 784-... scaled down) gives the
// loss and the gradients of the one-device nn::Mlp: each device's gradient blocks are the blocks
// of the whole gradient its sharding rules say it holds.
TEST(ParallelMlp, GradientsEqualTheOneDeviceMlp) {
  for (int M : {2, 4}) {
    for (const std::vector<int>& sizes : {std::vector<int>{6, 8, 12, 5}, std::vector<int>{6, 8, 4}}) {
      SCOPED_TRACE("M = " + std::to_string(M) + ", " + std::to_string(sizes.size() - 1) + " layers");
      const MlpConfig model{sizes};
      const int B = 7;
      const Tree params = mlp_init(model, 3).map([](const Array& a) { return a.astype(DType::f64); });
      const Array x = Array::from_vector(uniform(B * 6, -1, 1, 7)).reshape({B, 6});
      Array labels = Array::from_vector(std::vector<std::int32_t>{0, 1, 2, 3, 4, 3, 1}).reshape({B});
      for (auto& v : labels.data<std::int32_t>()) v %= sizes.back();
      const Array mask = Array::full({B}, 1.0, DType::f64);
      Mlp reference(model, B, DType::f64);
      Tree want;
      const double want_loss = reference.loss_and_grad(params, x, labels, mask, B, want);

      const Mesh mesh(datarax::test::first_devices(M), {{"model", M}});
      const ShardingRules rules = tensor_parallel_rules(model, M);
      const ShardedTree placed = distributed::DataParallelModule().shard_model_state(params, mesh, rules);
      const ShardedTree placed_grads = distributed::DataParallelModule().shard_model_state(
          params.map([](const Array& a) { return Array::zeros(a.shape(), a.dtype()); }), mesh, rules);
      std::vector<double> losses(M);
      run_spmd(mesh, [&](const Device& d) {
        Tree local = placed.local_tree(d), grads = placed_grads.local_tree(d);
        test::TreeLayerParams<double> store(local, grads);  // this device's blocks
        ParallelMlp<double> mlp({model, megatron_splits(static_cast<int>(sizes.size()) - 1, M), "model", M}, B);
        losses[static_cast<std::size_t>(axis_index("model"))] = mlp.loss_and_grad(store, x, labels, mask, B);
      });
      for (double l : losses) EXPECT_NEAR(l, want_loss, 1e-12 * std::abs(want_loss));
      // The devices' gradient blocks, gathered into whole tensors, are the reference's.
      const Tree got = placed_grads.gather();
      for (const auto& [key, leaf] : want) {
        double diff = 0, ref = 0;
        for (std::size_t i = 0; i < leaf.data<double>().size(); ++i) {
          diff = std::max(diff, std::abs(got.at(key).data<double>()[i] - leaf.data<double>()[i]));
          ref = std::max(ref, std::abs(leaf.data<double>()[i]));
        }
        EXPECT_LT(diff, 1e-12 * std::max(ref, 1.0)) << key;
      }
    }
  }
}

TEST(ParallelMlp, RefusesSplitsThatDoNotFit) {
  const MlpConfig model{{784, 512, 512, 10}};
  EXPECT_THAT(datarax::test::error_of([&] { ParallelMlpConfig{model, megatron_splits(3, 3), "model", 3}.validate(); }),
              HasSubstr("layer 0 (784 -> 512): width 512 is not divisible by the model axis of 3 devices"));
  EXPECT_THAT(datarax::test::error_of([&] {
                ParallelMlpConfig{model, {LayerSplit::none, LayerSplit::column, LayerSplit::none}, "model", 2}.validate();
              }),
              HasSubstr("layer 1 (512 -> 512) is column-parallel but the next layer is not row-parallel"));
  EXPECT_EQ(megatron_splits(3, 4), (std::vector<LayerSplit>{LayerSplit::column, LayerSplit::row, LayerSplit::none}));
  EXPECT_EQ(tensor_parallel_rules(model, 4).to_string(),
            "{dense_0/kernel: PartitionSpec(None, model), dense_0/bias: PartitionSpec(model), dense_1/kernel: "
            "PartitionSpec(model)}");
}

}  // namespace
}  // namespace datarax::nn
