// GPT-2's checkpoint format (gpt_checkpoint.h): the names, shapes and c_attn's byte layout, the
// round trip through a file with its metadata, each refusal; and GptDecoder's KV cache, whose
// logits at every position equal Gpt::logits recomputed over the whole prefix.
#include "datarax/nn/models/gpt_checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "datarax/io/safetensors.h"
#include "datarax/nn/models/gpt_decoder.h"
#include "datarax/nn/value_and_grad.h"
#include "io/test_files.h"
#include "support/error_of.h"

namespace datarax::nn {
namespace {

using ::testing::HasSubstr;
using datarax::test::error_of;

const GptConfig kCfg{.vocab_size = 11, .block_size = 7, .n_layer = 2, .n_head = 2, .n_embd = 8};

bool same(const Array& a, const Array& b) {
  return a.dtype() == b.dtype() && a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TEST(GptCheckpoint, HfNamesShapesAndRoundTrip) {
  const Gpt model(kCfg);
  const Tree params = model.init(2);
  const Tree hf = gpt_to_hf(params);
  EXPECT_EQ(hf.size(), params.size());
  EXPECT_EQ(hf.at("wte.weight").shape(), (Shape{11, 8}));
  EXPECT_EQ(hf.at("wpe.weight").shape(), (Shape{7, 8}));
  EXPECT_EQ(hf.at("h.1.attn.c_attn.weight").shape(), (Shape{8, 24}));
  EXPECT_EQ(hf.at("h.1.attn.c_attn.bias").shape(), (Shape{24}));
  EXPECT_EQ(hf.at("h.0.mlp.c_proj.weight").shape(), (Shape{32, 8}));
  EXPECT_TRUE(same(hf.at("h.0.ln_2.weight"), params.at("h_0/ln_2/scale")));
  // c_attn: column j of [C, 3C] is block j / C (q, k, v), feature j % C (head (j % C) / D).
  const Array& k3 = params.at("h_1/attn/c_attn/kernel");
  const Array& k2 = hf.at("h.1.attn.c_attn.weight");
  for (std::int64_t r = 0; r < 8; ++r)
    for (std::int64_t j = 0; j < 24; ++j) EXPECT_EQ(k2.at<float>({r, j}), k3.at<float>({r, j / 8, j % 8}));
  // Back, with the prefix, lm_head (tied) and the buffers of Hugging Face's files.
  Tree file;
  for (const auto& [k, v] : hf) file.set("transformer." + k, v);
  file.set("lm_head.weight", hf.at("wte.weight").copy());
  file.set("transformer.h.0.attn.bias", Array::zeros({1, 1, 7, 7}));
  file.set("transformer.h.1.attn.masked_bias", Array::scalar<float>(-1e4f));
  const Tree back = gpt_from_hf(file, kCfg);
  ASSERT_EQ(back.keys(), params.keys());
  for (const auto& [k, v] : params) EXPECT_TRUE(same(back.at(k), v)) << k;
  // f64 on request, from a bf16 file too.
  EXPECT_EQ(gpt_from_hf(hf, kCfg, DType::f64).at("ln_f/scale").dtype(), DType::f64);
  EXPECT_EQ(gpt_from_hf(hf.map([](const Array& a) { return a.astype(DType::bf16); }), kCfg).at("wte/embedding").dtype(),
            DType::f32);

  datarax::test::TempDir dir;
  const std::string path = dir.file("gpt.safetensors");
  save_gpt(path, params, kCfg);
  const auto meta = io::load_safetensors_metadata(path);
  EXPECT_EQ(meta.at("n_head"), "2");
  EXPECT_EQ(meta.at("n_layer"), "2");
  EXPECT_EQ(meta.at("n_embd"), "8");
  EXPECT_EQ(meta.at("block_size"), "7");
  EXPECT_EQ(meta.at("vocab_size"), "11");
  const GptCheckpoint ck = load_gpt(path);
  EXPECT_EQ(ck.config.to_string(), kCfg.to_string());
  for (const auto& [k, v] : params) EXPECT_TRUE(same(ck.params.at(k), v)) << k;
  // Without metadata: sizes from the shapes, n_head = n_embd / 64.
  const GptConfig wide{.vocab_size = 5, .block_size = 3, .n_layer = 1, .n_head = 2, .n_embd = 128};
  const GptConfig inferred = gpt_config_from_hf(gpt_to_hf(Gpt(wide).init(0)), {});
  EXPECT_EQ(inferred.to_string(), wide.to_string());
  EXPECT_THAT(error_of([&] { gpt_config_from_hf(hf, {}); }),
              HasSubstr("the file's metadata has no n_head, and n_embd 8 is not a multiple of GPT-2's head width 64"));
  EXPECT_THAT(error_of([&] { gpt_config_from_hf(hf, {{"n_head", "two"}}); }),
              HasSubstr("metadata n_head = \"two\"; expected a positive integer"));
}

TEST(GptCheckpoint, RefusesFilesThatDoNotFit) {
  const Tree hf = gpt_to_hf(Gpt(kCfg).init(2));
  GptConfig wider = kCfg;
  wider.n_embd = 10;
  EXPECT_THAT(error_of([&] { gpt_from_hf(hf, wider); }),
              HasSubstr("gpt_from_hf: wte.weight has shape [11, 8]; expected [11, 10] for n_layer 2"));
  Tree t = hf;
  t.set("h.0.attn.c_attn.weight", Array::zeros({8, 16}));
  EXPECT_THAT(error_of([&] { gpt_from_hf(t, kCfg); }),
              HasSubstr("gpt_from_hf: h.0.attn.c_attn.weight has shape [8, 16]; expected [8, 24]"));
  t = hf;
  t.erase("h.1.mlp.c_fc.bias");
  EXPECT_THAT(error_of([&] { gpt_from_hf(t, kCfg); }), HasSubstr("gpt_from_hf: the file has no h.1.mlp.c_fc.bias"));
  t = hf;
  t.set("h.2.ln_1.weight", Array::zeros({8}));
  EXPECT_THAT(error_of([&] { gpt_from_hf(t, kCfg); }), HasSubstr("gpt_from_hf: unknown tensors h.2.ln_1.weight"));
  t = hf;
  t.set("lm_head.weight", Array::zeros({11, 8}));
  EXPECT_THAT(error_of([&] { gpt_from_hf(t, kCfg); }), HasSubstr("lm_head.weight [11, 8] differs from wte.weight"));
  t = hf;
  t.set("ln_f.bias", Array::zeros({8}, DType::i32));
  EXPECT_THAT(error_of([&] { gpt_from_hf(t, kCfg); }), HasSubstr("gpt_from_hf: ln_f.bias has dtype i32"));
  // n_head, which no shape shows: from the metadata (none in Hugging Face's own files).
  GptConfig four_heads = kCfg;
  four_heads.n_head = 4;
  EXPECT_NO_THROW(check_gpt_metadata(gpt_hf_metadata(kCfg), kCfg));
  EXPECT_NO_THROW(check_gpt_metadata({}, four_heads));
  EXPECT_THAT(error_of([&] { check_gpt_metadata(gpt_hf_metadata(kCfg), four_heads); }),
              HasSubstr("gpt_from_hf: the file's __metadata__ has n_head 2; this model has n_head 4 (n_layer 2, n_head 4, "));
  EXPECT_THAT(error_of([&] { check_gpt_metadata({{"format", "pt"}, {"block_size", "9"}}, kCfg); }),
              HasSubstr("has block_size 9; this model has block_size 7"));
  EXPECT_THAT(error_of([&] { check_gpt_metadata({{"n_layer", "two"}}, kCfg); }), HasSubstr("metadata n_layer = \"two\""));
  Tree blocks = Gpt(kCfg).init(0);
  blocks.set("h_0/mlp/c_fc/kernel", Array::zeros({8, 16}));  // one device's block
  EXPECT_THAT(error_of([&] { gpt_to_hf(blocks); }),
              HasSubstr("gpt_to_hf: h_0/mlp/c_fc/kernel has shape [8, 16]; expected [8, 32] (whole parameters"));
}

// The decoder's logits at each position against the graph's over the whole prefix, f64 and f32.
TEST(GptDecoder, KvCacheEqualsFullRecompute) {
  const Gpt model(kCfg);
  const std::vector<std::int32_t> tokens{3, 1, 4, 1, 5, 9, 2};
  for (DType dt : {DType::f64, DType::f32}) {
    const Tree params = model.init(4, dt);
    GptDecoder dec(kCfg, params);
    for (std::size_t n = 1; n <= tokens.size(); ++n) {
      const Array& got = dec.step(tokens[n - 1]);
      Graph g;
      VarTree p;
      for (const auto& [k, v] : params) p.set(k, g.parameter(k, v));
      const Var logits = model.logits(p, g.input("tokens", Array::from_values<std::int32_t>(
                                                             {1, static_cast<std::int64_t>(n)},
                                                             std::vector<std::int32_t>(tokens.begin(), tokens.begin() + n))));
      const Array& want = logits.value();
      double diff = 0;
      for (std::int64_t v = 0; v < 11; ++v) {
        const std::int64_t at = static_cast<std::int64_t>(n - 1) * 11 + v;
        diff = std::max(diff, dt == DType::f64 ? std::abs(got.data<double>()[v] - want.data<double>()[at])
                                               : std::abs(double(got.data<float>()[v]) - double(want.data<float>()[at])));
      }
      EXPECT_LT(diff, dt == DType::f64 ? 1e-12 : 2e-5) << "position " << n - 1 << " " << to_string(dt);
    }
    EXPECT_THAT(error_of([&] { dec.step(0); }), HasSubstr("GptDecoder::step: the cache is full (block_size 7"));
    dec.reset();
    EXPECT_THAT(error_of([&] { dec.step(11); }), HasSubstr("GptDecoder::step: token 11 is out of range; valid: 0..10"));
  }
}

TEST(GptDecoder, GenerateCropsTheContextAndIsSeeded) {
  const Tree params = Gpt(kCfg).init(4);
  GptDecoder dec(kCfg, params);
  const std::vector<std::int32_t> prompt{1, 2, 3, 4, 5, 6, 7, 8, 9};  // longer than block_size 7
  const auto a = generate(dec, prompt, 12, {.temperature = 1.0, .top_k = 5, .seed = 3});
  const auto b = generate(dec, prompt, 12, {.temperature = 1.0, .top_k = 5, .seed = 3});
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.size(), 12u);
  // Greedy: each token is the argmax of the full recompute over the last 7 tokens (nanoGPT's crop).
  const auto greedy = generate(dec, prompt, 4, {.temperature = 0});
  std::vector<std::int32_t> ctx = prompt;
  for (std::int32_t t : greedy) {
    GptDecoder fresh(kCfg, params);
    const Array* logits = nullptr;
    for (std::size_t i = ctx.size() - 7; i < ctx.size(); ++i) logits = &fresh.step(ctx[i]);
    const auto v = logits->data<float>();
    EXPECT_EQ(t, std::max_element(v.begin(), v.end()) - v.begin());
    ctx.push_back(t);
  }
  // top_k 1 is greedy too.
  EXPECT_EQ(generate(dec, prompt, 4, {.temperature = 0.7, .top_k = 1}), greedy);
  EXPECT_THAT(error_of([&] { generate(dec, {}, 3, {}); }), HasSubstr("generate: the prompt is empty"));
  std::uint64_t s = 0;
  EXPECT_THAT(error_of([&] { sample_token(Array::zeros({3}), {.temperature = -1}, s); }), HasSubstr("temperature"));
}

}  // namespace
}  // namespace datarax::nn
