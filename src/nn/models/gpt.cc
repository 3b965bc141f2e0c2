// Gpt (models/gpt.h).
#include "datarax/nn/models/gpt.h"

#include <cmath>
#include <sstream>

#include "datarax/error.h"
#include "datarax/nn/layers/dense.h"
#include "datarax/nn/ops/attention.h"
#include "datarax/nn/ops/broadcast.h"
#include "datarax/nn/ops/collective.h"
#include "datarax/nn/ops/cross_entropy.h"
#include "datarax/nn/ops/dropout.h"
#include "datarax/nn/ops/elementwise.h"
#include "datarax/nn/ops/linear.h"
#include "datarax/nn/ops/reshape.h"
#include "datarax/nn/ops/slice.h"
#include "datarax/nn/ops/transpose.h"

namespace datarax::nn {

namespace {

constexpr const char* kModelAxis = "model";

// Dropout sites' seeds: one per site, so that no two sites draw the same mask (ops/dropout.h).
constexpr std::uint64_t kDropoutSeed = 0x6770742d64726f70ULL;  // "gpt-drop"
std::uint64_t site_seed(std::uint64_t site) { return kDropoutSeed + 0x9e3779b97f4a7c15ULL * (site + 1); }

const GptConfig& validated(const GptConfig& c) {
  c.validate();
  return c;
}

// The fused q, k, v projection: kernel [C, 3, C] and bias [3, C], split by heads over "model".
struct FusedQkv : Module {
  Param kernel, bias;
  FusedQkv(Module& parent, std::int64_t C)
      : Module(parent, "c_attn"),
        kernel(param("kernel", {C, 3, C}, init::normal(0.02), PartitionSpec{std::nullopt, std::nullopt, kModelAxis})),
        bias(param("bias", {3, C}, init::zeros(), PartitionSpec{std::nullopt, kModelAxis})) {}
};

DenseOptions gpt_dense(DenseOptions layout, double stddev) {
  layout.kernel_init = init::normal(stddev);
  layout.bias_init = init::zeros();
  return layout;
}

struct Attention : Module {
  std::int64_t C, D;
  FusedQkv c_attn;
  Dense c_proj;
  Attention(Module& parent, const GptConfig& c, double proj_std)
      : Module(parent, "attn"), C(c.n_embd), D(c.head_size()), c_attn(*this, c.n_embd),
        c_proj(*this, "c_proj", c.n_embd, c.n_embd, gpt_dense(row_parallel({}, kModelAxis), proj_std)) {}

  // x [B, T, C] (whole on every device of the axis) -> [B, T, C]
  Var operator()(const VarTree& p, Var x) const {
    const Var kernel = p[c_attn.kernel];
    const Shape& ks = kernel.shape();
    const std::int64_t Cl = ks.rank() == 3 ? ks[2] : -1;  // this device's heads · D
    if (ks.rank() != 3 || ks[0] != C || ks[1] != 3 || Cl < 1 || C % Cl != 0 || Cl % D != 0)
      throw InvalidArgumentError("Gpt: " + c_attn.path() + "/kernel has shape " + ks.to_string() + "; expected [" +
                                 std::to_string(C) + ", 3, C/M] for a model axis of M devices dividing n_head");
    const std::int64_t Hl = Cl / D;
    if (Cl != C) x = copy_to_axis(x, kModelAxis);  // a block of the heads: Megatron's f
    Var qkv = linear(x, reshape(kernel, {C, 3 * Cl}), reshape(p[c_attn.bias], {3 * Cl}));  // [B, T, 3·Cl]
    Var y = causal_attention(qkv, Hl);  // q, k, v read in place from qkv's thirds: [B, T, Cl]
    return c_proj(p, y);  // row-parallel on a block: sum_over_axis, then the bias (Megatron's g)
  }
};

struct Mlp : Module {
  Dense c_fc, c_proj;
  Mlp(Module& parent, const GptConfig& c, double proj_std)
      : Module(parent, "mlp"),
        c_fc(*this, "c_fc", c.n_embd, 4 * c.n_embd, gpt_dense(column_parallel({}, kModelAxis), 0.02)),
        c_proj(*this, "c_proj", 4 * c.n_embd, c.n_embd, gpt_dense(row_parallel({}, kModelAxis), proj_std)) {}
  Var operator()(const VarTree& p, Var x) const { return c_proj(p, gelu(c_fc(p, x), GeluMode::exact)); }
};

}  // namespace

struct Gpt::Block : Module {
  LayerNorm ln_1;
  Attention attn;
  LayerNorm ln_2;
  Mlp mlp;
  Block(Module& parent, int i, const GptConfig& c, double proj_std)
      : Module(parent, "h_" + std::to_string(i)), ln_1(*this, "ln_1", c.n_embd), attn(*this, c, proj_std),
        ln_2(*this, "ln_2", c.n_embd), mlp(*this, c, proj_std) {}
};

void GptConfig::validate() const {
  auto bad = [](const char* field, const std::string& value, const std::string& valid) {
    throw InvalidArgumentError("GptConfig: " + std::string(field) + " = " + value + "; " + valid);
  };
  if (vocab_size < 1 || vocab_size > (std::int64_t{1} << 31) - 1)
    bad("vocab_size", std::to_string(vocab_size), "valid: 1..2147483647");
  if (block_size < 1) bad("block_size", std::to_string(block_size), "valid: >= 1");
  if (n_layer < 1) bad("n_layer", std::to_string(n_layer), "valid: >= 1");
  if (n_head < 1) bad("n_head", std::to_string(n_head), "valid: >= 1");
  if (n_embd < 1 || n_embd % n_head != 0)
    bad("n_embd", std::to_string(n_embd), "valid: a positive multiple of n_head (" + std::to_string(n_head) + ")");
  if (!(dropout >= 0 && dropout < 1)) {
    std::ostringstream v;
    v << dropout;
    bad("dropout", v.str(), "valid: 0 <= dropout < 1");
  }
}

std::string GptConfig::to_string() const {
  std::ostringstream s;
  s << "n_layer " << n_layer << ", n_head " << n_head << ", n_embd " << n_embd << ", block_size " << block_size
    << ", vocab_size " << vocab_size << ", dropout " << dropout;
  return s.str();
}

Gpt::Gpt(GptConfig config)
    : config_(validated(config)),
      wte_(*this, "wte", config.vocab_size, config.n_embd),
      wpe_(*this, "wpe", config.block_size, config.n_embd),
      ln_f_(*this, "ln_f", config.n_embd) {
  const double proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(config.n_layer));
  for (std::int64_t i = 0; i < config.n_layer; ++i)
    h_.push_back(std::make_unique<Block>(*this, static_cast<int>(i), config_, proj_std));
}

Gpt::~Gpt() = default;

void Gpt::check_model_axis(int m) const {
  if (m >= 1 && config_.n_head % m == 0) return;
  std::string valid;
  for (std::int64_t d = 1; d <= config_.n_head; ++d)
    if (config_.n_head % d == 0) valid += (valid.empty() ? "" : ", ") + std::to_string(d);
  throw InvalidArgumentError("Gpt: n_head " + std::to_string(config_.n_head) +
                             " is not divisible by the model axis of " + std::to_string(m) +
                             " devices; valid model-axis sizes: " + valid);
}

Var Gpt::forward(const VarTree& p, Var tokens, const VarTree* dropout_batch) const {
  if (!tokens.valid() || tokens.dtype() != DType::i32 || tokens.rank() != 2 || tokens.shape()[1] < 1 ||
      tokens.shape()[1] > config_.block_size)
    throw InvalidArgumentError("Gpt: tokens are " +
                               (tokens.valid() ? std::string(datarax::to_string(tokens.dtype())) + tokens.shape().to_string()
                                               : std::string("an empty Var")) +
                               "; expected i32 [B, T] with 1 <= T <= block_size (" +
                               std::to_string(config_.block_size) + ")");
  const std::int64_t T = tokens.shape()[1];
  // Each site's x is a whole [B, T, C] on every device of a "model" axis (replicated embeddings,
  // row-parallel c_proj summed over the axis): its element indices are the 1-device ones.
  std::uint64_t site = 0;
  auto drop = [&](Var x) {
    if (dropout_batch == nullptr) return x;
    return dropout(x, config_.dropout, site_seed(site++), (*dropout_batch)["step"], (*dropout_batch)["first_example"]);
  };
  Var x = drop(wte_(p, tokens) + slice(p[wpe_.embedding()], 0, 0, T));  // [B, T, C]
  for (const auto& block : h_) {
    x = x + drop(block->attn(p, block->ln_1(p, x)));
    x = x + drop(block->mlp(p, block->ln_2(p, x)));
  }
  return matmul(ln_f_(p, x), transpose(p[wte_.embedding()], {1, 0}));  // tied head: [B, T, V]
}

Var Gpt::logits(const VarTree& p, Var tokens) const { return forward(p, tokens, nullptr); }

Var Gpt::loss(const VarTree& p, const VarTree& batch, bool training) const {
  const bool dropping = training && config_.dropout > 0;
  Var logits = forward(p, batch["inputs"], dropping ? &batch : nullptr);
  const std::int64_t b = logits.shape()[0], T = logits.shape()[1];
  const Var row_mask = batch["mask"];
  if (row_mask.shape() != Shape{b})
    throw InvalidArgumentError("Gpt::loss: the batch's mask has shape " + row_mask.shape().to_string() +
                               "; expected [" + std::to_string(b) + "] (one weight per row)");
  const Var mask = broadcast_to(reshape(row_mask, {b, 1}), Shape{b, T});
  const Var denom = scale(batch["count"], static_cast<double>(T));
  return softmax_cross_entropy(logits, batch["labels"], mask, denom);
}

}  // namespace datarax::nn
