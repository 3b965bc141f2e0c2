// GPT-2's checkpoint format (models/gpt_checkpoint.h).
#include "datarax/nn/models/gpt_checkpoint.h"

#include <cstring>
#include <set>
#include <vector>

#include "datarax/error.h"
#include "datarax/io/safetensors.h"

namespace datarax::nn {

namespace {

// One tensor: its name in the file, its key in Gpt's Tree, and its shapes in each.
struct Entry {
  std::string hf, ours;
  Shape hf_shape, our_shape;
};

std::vector<Entry> entries(const GptConfig& c) {
  const std::int64_t V = c.vocab_size, T = c.block_size, C = c.n_embd;
  std::vector<Entry> e{{"wte.weight", "wte/embedding", {V, C}, {V, C}},
                       {"wpe.weight", "wpe/embedding", {T, C}, {T, C}}};
  for (std::int64_t i = 0; i < c.n_layer; ++i) {
    const std::string h = "h." + std::to_string(i) + ".", o = "h_" + std::to_string(i) + "/";
    for (const char* ln : {"ln_1", "ln_2"}) {
      e.push_back({h + ln + ".weight", o + ln + "/scale", {C}, {C}});
      e.push_back({h + ln + ".bias", o + ln + "/bias", {C}, {C}});
    }
    e.push_back({h + "attn.c_attn.weight", o + "attn/c_attn/kernel", {C, 3 * C}, {C, 3, C}});
    e.push_back({h + "attn.c_attn.bias", o + "attn/c_attn/bias", {3 * C}, {3, C}});
    e.push_back({h + "attn.c_proj.weight", o + "attn/c_proj/kernel", {C, C}, {C, C}});
    e.push_back({h + "attn.c_proj.bias", o + "attn/c_proj/bias", {C}, {C}});
    e.push_back({h + "mlp.c_fc.weight", o + "mlp/c_fc/kernel", {C, 4 * C}, {C, 4 * C}});
    e.push_back({h + "mlp.c_fc.bias", o + "mlp/c_fc/bias", {4 * C}, {4 * C}});
    e.push_back({h + "mlp.c_proj.weight", o + "mlp/c_proj/kernel", {4 * C, C}, {4 * C, C}});
    e.push_back({h + "mlp.c_proj.bias", o + "mlp/c_proj/bias", {C}, {C}});
  }
  e.push_back({"ln_f.weight", "ln_f/scale", {C}, {C}});
  e.push_back({"ln_f.bias", "ln_f/bias", {C}, {C}});
  return e;
}

bool is_float(DType t) { return t == DType::f32 || t == DType::f64 || t == DType::bf16 || t == DType::f16; }

// Whether `name` is "h.<digits>.attn.bias" or "h.<digits>.attn.masked_bias": an attention-mask
// buffer of Hugging Face's GPT-2, not a parameter.
bool is_mask_buffer(const std::string& name) {
  if (name.rfind("h.", 0) != 0) return false;
  std::size_t i = 2;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') ++i;
  if (i == 2) return false;
  const std::string rest = name.substr(i);
  return rest == ".attn.bias" || rest == ".attn.masked_bias";
}

// The file's tensors by name without the "transformer." prefix; the attention-mask buffers dropped.
Tree normalized(const Tree& file) {
  static const std::string prefix = "transformer.";
  Tree out;
  for (const auto& [key, leaf] : file) {
    const std::string name = key.rfind(prefix, 0) == 0 ? key.substr(prefix.size()) : key;
    if (is_mask_buffer(name)) continue;
    if (out.contains(name))
      throw InvalidArgumentError("gpt_from_hf: " + name + " is in the file twice (with and without \"transformer.\")");
    out.set(name, leaf);
  }
  return out;
}

std::string list(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < 8; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > 8) s += ", ... (" + std::to_string(names.size()) + " in all)";
  return s;
}

std::int64_t parse_size(const std::map<std::string, std::string>& metadata, const std::string& key) {
  const std::string& v = metadata.at(key);
  std::size_t used = 0;
  long long n = -1;
  try {
    n = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (v.empty() || used != v.size() || n < 1)
    throw InvalidArgumentError("gpt_config_from_hf: metadata " + key + " = \"" + v + "\"; expected a positive integer");
  return n;
}

}  // namespace

Tree gpt_from_hf(const Tree& file, const GptConfig& config, DType dtype) {
  config.validate();
  if (dtype != DType::f32 && dtype != DType::f64)
    throw InvalidArgumentError("gpt_from_hf: dtype " + std::string(to_string(dtype)) + "; valid: f32, f64");
  Tree tensors = normalized(file);
  std::vector<std::string> missing;
  Tree params;
  for (const Entry& e : entries(config)) {
    if (!tensors.contains(e.hf)) {
      missing.push_back(e.hf);
      continue;
    }
    const Array& a = tensors.at(e.hf);
    if (a.shape() != e.hf_shape)
      throw InvalidArgumentError("gpt_from_hf: " + e.hf + " has shape " + a.shape().to_string() + "; expected " +
                                 e.hf_shape.to_string() + " for " + config.to_string());
    if (!is_float(a.dtype()))
      throw InvalidArgumentError("gpt_from_hf: " + e.hf + " has dtype " + std::string(to_string(a.dtype())) +
                                 "; valid: F32, F64, BF16, F16");
    params.set(e.ours, a.astype(dtype).reshape(e.our_shape));
    tensors.erase(e.hf);
  }
  if (!missing.empty())
    throw InvalidArgumentError("gpt_from_hf: the file has no " + list(missing) + " (" + config.to_string() + ")");
  if (tensors.contains("lm_head.weight")) {
    const Array& head = tensors.at("lm_head.weight");
    const Array& wte = params.at("wte/embedding");
    const Array as = is_float(head.dtype()) ? head.astype(dtype) : head;
    if (head.shape() != wte.shape() || as.dtype() != wte.dtype() || std::memcmp(as.raw(), wte.raw(), wte.nbytes()) != 0)
      throw InvalidArgumentError("gpt_from_hf: lm_head.weight " + head.shape().to_string() +
                                 " differs from wte.weight; the head is tied to the token embedding and must equal it");
    tensors.erase("lm_head.weight");
  }
  if (!tensors.empty())
    throw InvalidArgumentError("gpt_from_hf: unknown tensors " + list(tensors.keys()) + " (" + config.to_string() + ")");
  return params;
}

Tree gpt_to_hf(const Tree& params) {
  // The sizes from the parameters themselves.
  GptConfig c;
  const Array& wte = params.at("wte/embedding");
  const Array& wpe = params.at("wpe/embedding");
  if (wte.rank() != 2 || wpe.rank() != 2)
    throw InvalidArgumentError("gpt_to_hf: wte/embedding " + wte.shape().to_string() + " and wpe/embedding " +
                               wpe.shape().to_string() + " must be matrices");
  c.vocab_size = wte.shape()[0];
  c.n_embd = wte.shape()[1];
  c.block_size = wpe.shape()[0];
  c.n_head = 1;
  c.n_layer = 0;
  while (params.contains("h_" + std::to_string(c.n_layer) + "/ln_1/scale")) ++c.n_layer;
  if (c.n_layer == 0) throw InvalidArgumentError("gpt_to_hf: the parameters have no block h_0");
  Tree out;
  std::set<std::string> used;
  for (const Entry& e : entries(c)) {
    const Array& a = params.at(e.ours);
    if (a.shape() != e.our_shape)
      throw InvalidArgumentError("gpt_to_hf: " + e.ours + " has shape " + a.shape().to_string() + "; expected " +
                                 e.our_shape.to_string() + " (whole parameters, not one device's block)");
    out.set(e.hf, a.reshape(e.hf_shape));
    used.insert(e.ours);
  }
  for (const auto& [key, leaf] : params)
    if (!used.count(key)) throw InvalidArgumentError("gpt_to_hf: " + key + " is not a parameter of a GPT");
  return out;
}

GptConfig gpt_config_from_hf(const Tree& file, const std::map<std::string, std::string>& metadata) {
  const Tree t = normalized(file);
  auto shape_of = [&](const std::string& name) -> const Shape& {
    if (!t.contains(name)) throw InvalidArgumentError("gpt_config_from_hf: the file has no " + name);
    const Shape& s = t.at(name).shape();
    if (s.rank() != 2) throw InvalidArgumentError("gpt_config_from_hf: " + name + " has shape " + s.to_string() + "; expected a matrix");
    return s;
  };
  GptConfig c;
  c.vocab_size = shape_of("wte.weight")[0];
  c.n_embd = shape_of("wte.weight")[1];
  c.block_size = shape_of("wpe.weight")[0];
  c.n_layer = 0;
  while (t.contains("h." + std::to_string(c.n_layer) + ".ln_1.weight")) ++c.n_layer;
  c.n_head = c.n_embd % 64 == 0 ? c.n_embd / 64 : 0;
  for (auto [key, field] : {std::pair{"vocab_size", &c.vocab_size}, std::pair{"block_size", &c.block_size},
                            std::pair{"n_layer", &c.n_layer}, std::pair{"n_head", &c.n_head}, std::pair{"n_embd", &c.n_embd}})
    if (metadata.count(key)) *field = parse_size(metadata, key);
  if (c.n_head == 0)
    throw InvalidArgumentError("gpt_config_from_hf: the file's metadata has no n_head, and n_embd " +
                               std::to_string(c.n_embd) + " is not a multiple of GPT-2's head width 64 to infer it from");
  c.validate();
  return c;
}

void check_gpt_metadata(const std::map<std::string, std::string>& metadata, const GptConfig& config) {
  for (auto [key, value] : {std::pair{"n_layer", config.n_layer}, std::pair{"n_head", config.n_head},
                            std::pair{"n_embd", config.n_embd}, std::pair{"block_size", config.block_size},
                            std::pair{"vocab_size", config.vocab_size}})
    if (metadata.count(key) && parse_size(metadata, key) != value)
      throw InvalidArgumentError("gpt_from_hf: the file's __metadata__ has " + std::string(key) + " " + metadata.at(key) +
                                 "; this model has " + key + " " + std::to_string(value) + " (" + config.to_string() + ")");
}

std::map<std::string, std::string> gpt_hf_metadata(const GptConfig& c) {
  return {{"format", "pt"},
          {"n_layer", std::to_string(c.n_layer)},
          {"n_head", std::to_string(c.n_head)},
          {"n_embd", std::to_string(c.n_embd)},
          {"block_size", std::to_string(c.block_size)},
          {"vocab_size", std::to_string(c.vocab_size)}};
}

GptCheckpoint load_gpt(const std::string& path, DType dtype) {
  const Tree file = io::load_safetensors(path);
  GptCheckpoint ck;
  try {
    ck.config = gpt_config_from_hf(file, io::load_safetensors_metadata(path));
    ck.params = gpt_from_hf(file, ck.config, dtype);
  } catch (const InvalidArgumentError& e) {
    throw InvalidArgumentError("load_gpt: " + path + ": " + e.what());
  }
  return ck;
}

void save_gpt(const std::string& path, const Tree& params, const GptConfig& config) {
  config.validate();
  const Tree file = gpt_to_hf(params);
  gpt_from_hf(file, config, params.at("wte/embedding").dtype());  // the sizes agree with the config
  io::save_safetensors(path, file, gpt_hf_metadata(config));
}

}  // namespace datarax::nn
