// datarax-generate: text from a GPT saved in GPT-2's checkpoint format (nn/models/gpt_checkpoint.h),
// sampled as nanoGPT's sample.py does, with a KV cache (nn/models/gpt_decoder.h).
//
//   datarax-generate --init gpt.safetensors --prompt "Once" --max-new-tokens 200 --top-k 40
//
// Bytes models (vocab_size 256) print the prompt and the new bytes as text (control characters
// other than newlines escaped as \xNN); other vocabularies take and print token ids.
// Exit codes: 0 success, 2 bad arguments or a file that is not a GPT, 1 anything else.
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli_parse.h"
#include "datarax/datarax.h"

namespace {

using datarax::InvalidArgumentError;

// "--prompt" for a token-id model: ids separated by spaces or commas.
std::vector<std::int32_t> parse_ids(const std::string& text, std::int64_t vocab) {
  std::vector<std::int32_t> ids;
  std::string t = text;
  for (char& c : t)
    if (c == ',') c = ' ';
  std::istringstream in(t);
  std::string word;
  while (in >> word)
    ids.push_back(static_cast<std::int32_t>(datarax::tools::parse_whole(word, "--prompt", 0, vocab - 1)));
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "datarax-generate: sample from a GPT saved in GPT-2's safetensors format. Sizes come from the file's "
      "metadata (or its shapes). A prompt longer than the model's block_size keeps only its last block_size "
      "tokens (nanoGPT's crop), and so does the growing context once it passes block_size."};
  std::string init, prompt, max_new_text = "256", temperature_text = "0.8", top_k_text = "200", seed_text = "1337";
  bool has_prompt = false;
  app.add_option("--init", init, "the model: a GPT-2-format safetensors file (datarax-train --save writes one)")->required();
  auto* prompt_opt = app.add_option("--prompt", prompt,
                                    "the start: text for a bytes model (default: a newline), token ids separated by "
                                    "spaces or commas otherwise (default: 0)");
  app.add_option("--max-new-tokens", max_new_text, "tokens to sample (0..1000000, default 256)");
  app.add_option("--temperature", temperature_text, "divides the logits (0: always the most likely; default 0.8)");
  app.add_option("--top-k", top_k_text, "sample among the k most likely only (0: all; default 200)");
  app.add_option("--seed", seed_text, "the sampling seed (default 1337)");
  if (auto code = datarax::tools::parse_command_line(app, argc, argv)) return *code;
  has_prompt = prompt_opt->count() > 0;
  return datarax::tools::run_tool("datarax-generate", [&] {
    namespace nn = datarax::nn;
    const std::int64_t max_new = datarax::tools::parse_whole(max_new_text, "--max-new-tokens", 0, 1000000);
    const double temperature = datarax::tools::parse_real(temperature_text, "--temperature", 0, true, 1e6);
    const std::int64_t top_k = datarax::tools::parse_whole(top_k_text, "--top-k", 0, std::int64_t{1} << 31);
    const std::uint64_t seed = datarax::tools::parse_unsigned(seed_text, "--seed");
    const nn::GptCheckpoint ck = nn::load_gpt(init);
    const bool bytes = ck.config.vocab_size == 256;
    std::vector<std::int32_t> context;
    if (bytes) {
      const std::string start = has_prompt ? prompt : std::string("\n");
      context.assign(start.begin(), start.end());
      for (auto& t : context) t &= 0xff;  // char may be signed
    } else {
      context = has_prompt ? parse_ids(prompt, ck.config.vocab_size) : std::vector<std::int32_t>{0};
    }
    if (context.empty()) throw InvalidArgumentError("--prompt: empty; give at least one token (or leave it out)");
    nn::GptDecoder decoder(ck.config, ck.params);
    const std::vector<std::int32_t> out =
        nn::generate(decoder, context, max_new, {.temperature = temperature, .top_k = top_k, .seed = seed});
    if (bytes) {
      std::string text;
      for (std::int32_t t : context) text += static_cast<char>(t);
      for (std::int32_t t : out) text += static_cast<char>(t);
      std::cout << datarax::tools::printable(text, /*keep_newlines=*/true) << "\n";
    } else {
      std::string line;
      for (std::int32_t t : context) line += std::to_string(t) + " ";
      for (std::int32_t t : out) line += std::to_string(t) + " ";
      if (!line.empty()) line.pop_back();
      std::cout << line << "\n";
    }
  });
}
