// gpt_steps: trains datarax's Gpt for N steps on one device through value_and_grad + optim and
// prints each step's loss — the C++ half of the comparison with bench/peers/nanogpt_reference.py
// (the same GPT-2-format initial file, the same blocks, the same optimizer), and a throughput
// measurement of the training step.
//
//   gpt_steps --write-init FILE [--n-layer L --n-head H --n-embd C --block-size T --seed S]
//   gpt_steps --init FILE --text FILE --batch B --steps N --opt sgd|adam --lr X [--time] [--ops]
//   gpt_steps --gemm-rate ROWS --n-embd C
//
// Batch k holds the training split's blocks k·B .. k·B+B−1 (no shuffle; data/token_blocks.h),
// the loss is the mean cross-entropy over B·T positions (mask 1, count B). With --time it prints
// the median step time and tokens/s after 3 warm-up steps, and where the time goes (forward +
// backward vs the optimizer). With --ops (and --time) the steps after the warm-up time each op
// kind's forward and backward (Graph::time_ops) and print them summed by kind, largest first.
// --gemm-rate times the chosen f32 kernel (nn::matmul) on one block's linear products at ROWS
// rows (B·T of a device) — c_attn, attn c_proj, c_fc and mlp c_proj, each forward, dkernel and
// dx — and prints their combined rate, "gemm rate <GFLOP/s>": the GEMM bound's rate.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "datarax/datarax.h"

namespace {

using namespace datarax;

std::string arg(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return def;
}
bool flag(int argc, char** argv, const std::string& name) {
  for (int i = 1; i < argc; ++i)
    if (argv[i] == name) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) try {
  if (flag(argc, argv, "--gemm-rate")) {
    const std::int64_t R = std::stoll(arg(argc, argv, "--gemm-rate", "1024")), C = std::stoll(arg(argc, argv, "--n-embd", "384"));
    struct P {
      bool ta, tb;
      std::int64_t M, N, K;
    };
    std::vector<P> products;
    for (const auto& [in, out] : {std::pair{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}})
      for (const P p : {P{false, false, R, out, in}, P{true, false, in, out, R}, P{false, true, R, in, out}}) products.push_back(p);
    std::vector<float> a(static_cast<std::size_t>(R * 4 * C), 0.5F), b(a.size(), 0.25F), c(a.size());
    double flops = 0;
    for (const P& p : products) flops += 2.0 * static_cast<double>(p.M * p.N * p.K);
    std::vector<double> seconds;
    for (int rep = 0; rep < 7; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      for (const P& p : products)
        nn::matmul(p.ta, p.tb, p.M, p.N, p.K, 1.0F, a.data(), p.ta ? p.M : p.K, b.data(), p.tb ? p.K : p.N, 0.0F, c.data(), p.N);
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(seconds.begin(), seconds.end());
    std::printf("gemm rate %.1f GFLOP/s (kernel %s; %lld rows, n_embd %lld, median of 7)\n", flops / seconds[3] / 1e9,
                std::string(nn::to_string(nn::matmul_kernel(nn::Precision::f32))).c_str(), static_cast<long long>(R),
                static_cast<long long>(C));
    return 0;
  }
  if (flag(argc, argv, "--write-init")) {
    const nn::GptConfig c{.vocab_size = 256,
                          .block_size = std::stoll(arg(argc, argv, "--block-size", "32")),
                          .n_layer = std::stoll(arg(argc, argv, "--n-layer", "2")),
                          .n_head = std::stoll(arg(argc, argv, "--n-head", "4")),
                          .n_embd = std::stoll(arg(argc, argv, "--n-embd", "64"))};
    nn::save_gpt(arg(argc, argv, "--write-init", ""), nn::Gpt(c).init(std::stoull(arg(argc, argv, "--seed", "0"))), c);
    return 0;
  }
  const nn::GptCheckpoint ck = nn::load_gpt(arg(argc, argv, "--init", ""));
  const nn::Gpt model(ck.config);
  const std::int64_t B = std::stoll(arg(argc, argv, "--batch", "8")), steps = std::stoll(arg(argc, argv, "--steps", "60"));
  const std::int64_t T = ck.config.block_size;
  const double lr = std::stod(arg(argc, argv, "--lr", "1e-3"));
  const std::string opt_name = arg(argc, argv, "--opt", "adam");
  const bool timing = flag(argc, argv, "--time"), ops = timing && flag(argc, argv, "--ops");
  auto stream = std::make_shared<const data::TokenStream>(data::read_text_tokens(arg(argc, argv, "--text", "")));
  const data::TokenBlocks blocks(stream, data::Split::train, T);
  std::unique_ptr<optim::Optimizer> opt = opt_name == "sgd" ? optim::sgd(lr) : optim::adam(lr);
  Tree params = ck.params;
  Tree state = opt->init(params);
  Array inputs = Array::zeros({B, T}, DType::i32), labels = Array::zeros({B, T}, DType::i32);
  const Tree batch{{"inputs", inputs}, {"labels", labels}, {"mask", Array::full({B}, 1.0)},
                   {"count", Array::full({}, static_cast<double>(B))}};
  nn::ValueAndGrad vg([&](const nn::VarTree& p, const nn::VarTree& b) { return model.loss(p, b); });
  std::vector<double> step_s, opt_s;
  for (std::int64_t k = 0; k < steps; ++k) {
    std::vector<std::int64_t> idx(static_cast<std::size_t>(B));
    for (std::int64_t r = 0; r < B; ++r) idx[static_cast<std::size_t>(r)] = (k * B + r) % blocks.size();
    std::vector<Array> rows{inputs, labels};
    blocks.read(idx, rows);
    if (ops && k == 3) vg.graph()->time_ops(true);
    const auto t0 = std::chrono::steady_clock::now();
    auto [loss, grads] = vg(params, batch);
    const auto t1 = std::chrono::steady_clock::now();
    Tree g = grads;  // shares the buffers: update_and_apply overwrites them, as the trainer's step does
    opt->update_and_apply(g, state, params);
    const auto t2 = std::chrono::steady_clock::now();
    if (!timing) std::printf("step %lld loss %.9g\n", static_cast<long long>(k), loss);
    if (k >= 3) {
      step_s.push_back(std::chrono::duration<double>(t2 - t0).count());
      opt_s.push_back(std::chrono::duration<double>(t2 - t1).count());
    }
  }
  if (timing && !step_s.empty()) {
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    const double s = median(step_s), o = median(opt_s);
    std::printf("%s, batch %lld, %s: median step %.4f s (min %.4f, max %.4f) over %zu steps = %.0f tokens/s; "
                "value_and_grad %.4f s, optimizer %.4f s; %lld parameters\n",
                ck.config.to_string().c_str(), static_cast<long long>(B), opt_name.c_str(), s,
                *std::min_element(step_s.begin(), step_s.end()), *std::max_element(step_s.begin(), step_s.end()),
                step_s.size(), static_cast<double>(B * T) / s, s - o, o, static_cast<long long>(model.num_params()));
  }
  if (ops && vg.graph() != nullptr) {
    std::map<std::string, std::pair<double, double>> by_kind;  // op -> (forward s, backward s) over the timed steps
    double all = 0;
    for (const nn::Graph::OpTime& t : vg.graph()->op_times()) {
      auto& [f, b] = by_kind[std::string(t.op)];
      f += t.forward_s;
      b += t.backward_s;
      all += t.forward_s + t.backward_s;
    }
    std::vector<std::pair<std::string, std::pair<double, double>>> rows(by_kind.begin(), by_kind.end());
    std::sort(rows.begin(), rows.end(), [](const auto& x, const auto& y) {
      return x.second.first + x.second.second > y.second.first + y.second.second;
    });
    const double n = static_cast<double>(step_s.size());
    std::printf("op | forward ms/step | backward ms/step | share of the ops' time\n---|---|---|---\n");
    for (const auto& [op, fb] : rows)
      std::printf("%s | %.2f | %.2f | %.1f%%\n", op.c_str(), fb.first * 1e3 / n, fb.second * 1e3 / n,
                  (fb.first + fb.second) / all * 100);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "gpt_steps: %s\n", e.what());
  return 2;
}
