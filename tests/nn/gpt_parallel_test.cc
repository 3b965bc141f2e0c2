// Gpt tensor-parallel over a "model" axis of 2 devices (c_attn split by heads, c_proj and the MLP
// Megatron's column / row pairs, placed by the model's own sharding rules): every device's loss is
// the one-device loss, and its gradient blocks are the matching blocks of the one-device gradient
// (f64, 1e-12 relative).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "datarax/collectives.h"
#include "datarax/distributed/data_parallel_module.h"
#include "datarax/mesh.h"
#include "datarax/nn/models/gpt.h"
#include "datarax/nn/value_and_grad.h"
#include "datarax/spmd.h"
#include "support/error_of.h"
#include "support/test_devices.h"

namespace datarax::nn {
namespace {

Tree batch_of(std::int64_t b, std::int64_t T, std::int64_t V) {
  std::vector<std::int32_t> in(static_cast<std::size_t>(b * T)), lab(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    in[i] = static_cast<std::int32_t>((i * 7 + 3) % static_cast<std::size_t>(V));
    lab[i] = static_cast<std::int32_t>((i * 5 + 1) % static_cast<std::size_t>(V));
  }
  Array mask = Array::full({b}, 1.0, DType::f64);
  mask.data<double>()[b - 1] = 0;
  return Tree{{"inputs", Array::from_values<std::int32_t>({b, T}, in)},
              {"labels", Array::from_values<std::int32_t>({b, T}, lab)},
              {"mask", mask},
              {"count", Array::full({}, static_cast<double>(b - 1), DType::f64)}};
}

TEST(GptTensorParallel, TwoModelDevicesGiveTheOneDeviceLossAndGradients) {
  const Gpt model({.vocab_size = 13, .block_size = 6, .n_layer = 2, .n_head = 4, .n_embd = 16});
  const int M = 2;
  model.check_model_axis(M);
  const Tree params = model.init(11, DType::f64);
  const Tree batch = batch_of(3, 6, 13);
  auto loss_fn = [&](const VarTree& p, const VarTree& b) { return model.loss(p, b); };
  ValueAndGrad one(loss_fn);
  const auto [want_loss, want_grads_ref] = one(params, batch);
  const Tree want = want_grads_ref.map([](const Array& a) { return a.copy(); });

  const Mesh mesh(datarax::test::first_devices(M), {{"model", M}});
  const ShardingRules rules = model.sharding_rules();
  const distributed::DataParallelModule dp;
  const ShardedTree placed = dp.shard_model_state(params, mesh, rules);
  const ShardedTree grads = dp.shard_model_state(params.map([](const Array& a) { return Array::zeros(a.shape(), a.dtype()); }), mesh, rules);
  std::vector<double> losses(M);
  std::vector<std::string> local_c_attn(M);
  run_spmd(mesh, [&](const Device& d) {
    const Tree local = placed.local_tree(d);
    Tree out = grads.local_tree(d);
    ValueAndGrad vg(loss_fn);
    const auto [loss, g] = vg(local, batch);
    const int i = axis_index("model");
    losses[static_cast<std::size_t>(i)] = loss;
    local_c_attn[static_cast<std::size_t>(i)] = local.at("h_0/attn/c_attn/kernel").shape().to_string();
    for (const auto& [key, leaf] : g) out.at(key).copy_from(leaf);
  });
  for (int i = 0; i < M; ++i) {
    EXPECT_NEAR(losses[static_cast<std::size_t>(i)], want_loss, 1e-12 * std::abs(want_loss));
    EXPECT_EQ(local_c_attn[static_cast<std::size_t>(i)], "[16, 3, 8]");  // 2 of 4 heads of q, k and v
  }
  const Tree got = grads.gather();
  for (const auto& [key, leaf] : want) {
    double diff = 0, ref = 0;
    for (std::size_t i = 0; i < leaf.data<double>().size(); ++i) {
      diff = std::max(diff, std::abs(got.at(key).data<double>()[i] - leaf.data<double>()[i]));
      ref = std::max(ref, std::abs(leaf.data<double>()[i]));
    }
    EXPECT_LE(diff, 1e-12 * std::max(ref, 1e-3)) << key;
    EXPECT_GT(ref, 0) << key;
  }
}

}  // namespace
}  // namespace datarax::nn
