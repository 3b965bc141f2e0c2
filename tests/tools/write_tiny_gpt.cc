// Writes a tiny random GPT in GPT-2's checkpoint format for datarax-generate's tests:
//   write_tiny_gpt FILE [VOCAB]
#include <cstdlib>
#include <iostream>

#include "datarax/nn/models/gpt.h"
#include "datarax/nn/models/gpt_checkpoint.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: write_tiny_gpt FILE [VOCAB]\n";
    return 2;
  }
  const datarax::nn::GptConfig c{.vocab_size = argc > 2 ? std::atoi(argv[2]) : 256, .block_size = 16, .n_layer = 2,
                                 .n_head = 2, .n_embd = 16};
  datarax::nn::save_gpt(argv[1], datarax::nn::Gpt(c).init(7), c);
  return 0;
}
