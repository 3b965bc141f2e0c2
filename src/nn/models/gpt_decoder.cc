// GptDecoder and sampling (models/gpt_decoder.h). One position at a time, per layer:
//   a = ln_1(x); [q k v] = a · c_attn + b; k, v appended to the layer's cache;
//   per head: p = softmax(q · K[0..pos]ᵀ / √D), y = p · V[0..pos]; x += y · c_proj + b
//   m = ln_2(x); x += gelu(m · c_fc + b) · c_proj + b
// then logits = ln_f(x) · wteᵀ.
#include "datarax/nn/models/gpt_decoder.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/splitmix64.h"
#include "datarax/error.h"
#include "datarax/nn/matmul.h"

namespace datarax::nn {

namespace {

template <class T>
void layer_norm_row(const T* x, const T* scale, const T* bias, T* y, std::int64_t C) {
  T mean = 0, var = 0;
  for (std::int64_t i = 0; i < C; ++i) mean += x[i];
  mean /= static_cast<T>(C);
  for (std::int64_t i = 0; i < C; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= static_cast<T>(C);
  const T rstd = T(1) / std::sqrt(var + static_cast<T>(1e-5));
  for (std::int64_t i = 0; i < C; ++i) y[i] = (x[i] - mean) * rstd * scale[i] + bias[i];
}

// y [N] = x [K] · W [K, N] + b [N]
template <class T>
void affine(const T* x, const Array& W, const Array& b, T* y) {
  const std::int64_t K = W.shape()[0], N = W.numel() / K;
  matmul(false, false, 1, N, K, T(1), x, K, W.data<T>().data(), N, T(0), y, N);
  const T* bias = b.data<T>().data();
  for (std::int64_t i = 0; i < N; ++i) y[i] += bias[i];
}

}  // namespace

struct GptDecoder::Impl {
  GptConfig c;
  Tree p;
  DType dtype;
  std::vector<Array> k_cache, v_cache;  // per layer [block_size, C]
  Array x, a, qkv, y, hidden, scores, logits;
  std::int64_t pos = 0;

  template <class T>
  void run(std::int32_t token) {
    const std::int64_t C = c.n_embd, H = c.n_head, D = c.head_size(), V = c.vocab_size;
    T* xs = x.data<T>().data();
    T* as = a.data<T>().data();
    T* q = qkv.data<T>().data();
    T* ys = y.data<T>().data();
    T* hs = hidden.data<T>().data();
    T* sc = scores.data<T>().data();
    const T* wte = p.at("wte/embedding").data<T>().data();
    const T* wpe = p.at("wpe/embedding").data<T>().data();
    for (std::int64_t i = 0; i < C; ++i) xs[i] = wte[token * C + i] + wpe[pos * C + i];
    const T inv = T(1) / std::sqrt(static_cast<T>(D));
    for (std::int64_t l = 0; l < c.n_layer; ++l) {
      const std::string h = "h_" + std::to_string(l) + "/";
      auto P = [&](const char* name) -> const Array& { return p.at(h + name); };
      layer_norm_row(xs, P("ln_1/scale").template data<T>().data(), P("ln_1/bias").template data<T>().data(), as, C);
      affine(as, P("attn/c_attn/kernel"), P("attn/c_attn/bias"), q);  // [3C]: q | k | v
      T* K = k_cache[static_cast<std::size_t>(l)].data<T>().data();
      T* Vc = v_cache[static_cast<std::size_t>(l)].data<T>().data();
      std::copy(q + C, q + 2 * C, K + pos * C);
      std::copy(q + 2 * C, q + 3 * C, Vc + pos * C);
      for (std::int64_t hd = 0; hd < H; ++hd) {
        const T* qh = q + hd * D;
        T mx = -INFINITY;
        for (std::int64_t s = 0; s <= pos; ++s) {
          T dot = 0;
          for (std::int64_t d = 0; d < D; ++d) dot += qh[d] * K[s * C + hd * D + d];
          sc[s] = dot * inv;
          mx = std::max(mx, sc[s]);
        }
        T sum = 0;
        for (std::int64_t s = 0; s <= pos; ++s) sum += (sc[s] = std::exp(sc[s] - mx));
        T* yh = ys + hd * D;
        std::fill(yh, yh + D, T(0));
        for (std::int64_t s = 0; s <= pos; ++s)
          for (std::int64_t d = 0; d < D; ++d) yh[d] += sc[s] / sum * Vc[s * C + hd * D + d];
      }
      affine(ys, P("attn/c_proj/kernel"), P("attn/c_proj/bias"), as);
      for (std::int64_t i = 0; i < C; ++i) xs[i] += as[i];
      layer_norm_row(xs, P("ln_2/scale").template data<T>().data(), P("ln_2/bias").template data<T>().data(), as, C);
      affine(as, P("mlp/c_fc/kernel"), P("mlp/c_fc/bias"), hs);
      for (std::int64_t i = 0; i < 4 * C; ++i) hs[i] = T(0.5) * hs[i] * (T(1) + std::erf(hs[i] / std::sqrt(T(2))));
      affine(hs, P("mlp/c_proj/kernel"), P("mlp/c_proj/bias"), as);
      for (std::int64_t i = 0; i < C; ++i) xs[i] += as[i];
    }
    layer_norm_row(xs, p.at("ln_f/scale").data<T>().data(), p.at("ln_f/bias").data<T>().data(), as, C);
    // logits [V] = wte [V, C] · a [C]
    matmul(false, true, 1, V, C, T(1), as, C, wte, C, T(0), logits.data<T>().data(), V);
  }
};

GptDecoder::GptDecoder(const GptConfig& config, const Tree& params) : impl_(std::make_unique<Impl>()) {
  config.validate();
  Impl& m = *impl_;
  m.c = config;
  const Gpt model(config);  // the declared keys and shapes, to check the parameters against
  m.dtype = params.contains("wte/embedding") ? params.at("wte/embedding").dtype() : DType::f32;
  if (m.dtype != DType::f32 && m.dtype != DType::f64)
    throw InvalidArgumentError("GptDecoder: wte/embedding has dtype " + std::string(to_string(m.dtype)) + "; valid: f32, f64");
  for (const ParamSpec& s : model.param_specs()) {
    if (!params.contains(s.key)) throw InvalidArgumentError("GptDecoder: the parameters have no " + s.key);
    const Array& a = params.at(s.key);
    if (a.shape() != s.shape || a.dtype() != m.dtype)
      throw InvalidArgumentError("GptDecoder: " + s.key + " is " + std::string(to_string(a.dtype())) +
                                 a.shape().to_string() + "; expected " + std::string(to_string(m.dtype)) +
                                 s.shape.to_string() + " for " + config.to_string());
    m.p.set(s.key, a.device().kind == DeviceKind::cpu ? a : a.copy_to(Device{}));
  }
  const std::int64_t C = config.n_embd;
  for (std::int64_t l = 0; l < config.n_layer; ++l) {
    m.k_cache.push_back(Array::zeros({config.block_size, C}, m.dtype));
    m.v_cache.push_back(Array::zeros({config.block_size, C}, m.dtype));
  }
  m.x = Array::zeros({C}, m.dtype);
  m.a = Array::zeros({C}, m.dtype);
  m.y = Array::zeros({C}, m.dtype);
  m.qkv = Array::zeros({3 * C}, m.dtype);
  m.hidden = Array::zeros({4 * C}, m.dtype);
  m.scores = Array::zeros({config.block_size}, m.dtype);
  m.logits = Array::zeros({config.vocab_size}, m.dtype);
}

GptDecoder::~GptDecoder() = default;

const Array& GptDecoder::step(std::int32_t token) {
  Impl& m = *impl_;
  if (token < 0 || token >= m.c.vocab_size)
    throw InvalidArgumentError("GptDecoder::step: token " + std::to_string(token) + " is out of range; valid: 0.." +
                               std::to_string(m.c.vocab_size - 1));
  if (m.pos >= m.c.block_size)
    throw InvalidArgumentError("GptDecoder::step: the cache is full (block_size " + std::to_string(m.c.block_size) +
                               " positions); reset() and feed a cropped context");
  if (m.dtype == DType::f64)
    m.run<double>(token);
  else
    m.run<float>(token);
  ++m.pos;
  return m.logits;
}

void GptDecoder::reset() { impl_->pos = 0; }
std::int64_t GptDecoder::position() const { return impl_->pos; }
const GptConfig& GptDecoder::config() const { return impl_->c; }

std::int32_t sample_token(const Array& logits, const SamplingOptions& o, std::uint64_t& state) {
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature))
    throw InvalidArgumentError("sample_token: temperature " + std::to_string(o.temperature) + "; valid: >= 0");
  if (o.top_k < 0) throw InvalidArgumentError("sample_token: top_k " + std::to_string(o.top_k) + "; valid: >= 0 (0: all)");
  const std::int64_t V = logits.numel();
  if (V < 1) throw InvalidArgumentError("sample_token: no logits");
  std::vector<double> z(static_cast<std::size_t>(V));
  for (std::int64_t i = 0; i < V; ++i)
    z[static_cast<std::size_t>(i)] = logits.dtype() == DType::f64 ? logits.data<double>()[i] : logits.data<float>()[i];
  if (o.temperature == 0) return static_cast<std::int32_t>(std::max_element(z.begin(), z.end()) - z.begin());
  for (double& v : z) v /= o.temperature;
  if (o.top_k > 0 && o.top_k < V) {
    std::vector<double> sorted = z;
    std::nth_element(sorted.begin(), sorted.begin() + (o.top_k - 1), sorted.end(), std::greater<>());
    const double kth = sorted[static_cast<std::size_t>(o.top_k - 1)];
    for (double& v : z)
      if (v < kth) v = -INFINITY;
  }
  const double mx = *std::max_element(z.begin(), z.end());
  double sum = 0;
  for (double& v : z) sum += (v = std::exp(v - mx));
  detail::SplitMix64 rng(state);
  const double u = detail::unit_double(rng.next()) * sum;
  state = rng.next();  // the next draw's state
  double acc = 0;
  for (std::int64_t i = 0; i < V; ++i) {
    acc += z[static_cast<std::size_t>(i)];
    if (u < acc) return static_cast<std::int32_t>(i);
  }
  // Rounding left u at the very end: the last token with a nonzero probability.
  for (std::int64_t i = V - 1; i >= 0; --i)
    if (z[static_cast<std::size_t>(i)] > 0) return static_cast<std::int32_t>(i);
  return 0;
}

std::vector<std::int32_t> generate(GptDecoder& dec, std::span<const std::int32_t> prompt, std::int64_t max_new_tokens,
                                   const SamplingOptions& options, const std::function<void(std::int32_t)>& on_token) {
  if (prompt.empty()) throw InvalidArgumentError("generate: the prompt is empty; it needs at least one token");
  if (max_new_tokens < 0) throw InvalidArgumentError("generate: max_new_tokens " + std::to_string(max_new_tokens) + "; valid: >= 0");
  const std::int64_t T = dec.config().block_size;
  std::vector<std::int32_t> context(prompt.begin(), prompt.end()), out;
  std::uint64_t state = options.seed;
  // Fills the cache with the last T tokens of the context; returns the last position's logits.
  auto refill = [&]() -> const Array& {
    dec.reset();
    const std::size_t from = context.size() > static_cast<std::size_t>(T) ? context.size() - static_cast<std::size_t>(T) : 0;
    const Array* logits = nullptr;
    for (std::size_t i = from; i < context.size(); ++i) logits = &dec.step(context[i]);
    return *logits;
  };
  const Array* logits = &refill();
  for (std::int64_t n = 0; n < max_new_tokens; ++n) {
    const std::int32_t t = sample_token(*logits, options, state);
    out.push_back(t);
    context.push_back(t);
    if (on_token) on_token(t);
    if (n + 1 == max_new_tokens) break;
    logits = dec.position() < T ? &dec.step(t) : &refill();
  }
  return out;
}

}  // namespace datarax::nn
