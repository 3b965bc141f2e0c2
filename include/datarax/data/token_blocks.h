// TokenBlocks: a language model's data set — fixed-length blocks over a stream of token ids, as
// nanoGPT trains on.
//
// The stream comes from a text file's bytes (vocabulary 256: each byte is a token), from several
// text files one after another (the default corpus: Debian's fortunes), or from nanoGPT's prepared
// format (train.bin: little-endian uint16 ids, with a vocabulary size given by the caller). The
// first floor(0.9 · N) tokens are the training split, the rest the validation split (nanoGPT's
// prepare.py: data[:int(n*0.9)]). Block j of a split s (of L tokens) is
//
//   inputs = s[j·T : j·T + T],  labels = s[j·T + 1 : j·T + T + 1]        (fields i32 [T] each)
//
// for j = 0 .. (L − 1) / T − 1: consecutive, non-overlapping windows, the labels shifted by one.
// A split too short for one block (L < T + 1) is refused naming its length and the block size.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "datarax/data/dataset.h"

namespace datarax::data {

// A whole stream of token ids, shared by its two splits.
struct TokenStream {
  std::vector<std::int32_t> tokens;
  std::int64_t vocab_size = 256;
  std::string source;  // the file(s) it was read from, for messages
};

// A text file's bytes, each a token (vocab_size 256). An empty or unreadable file is refused
// naming it.
TokenStream read_text_tokens(const std::string& path);
// Several text files' bytes, one after another (in the order given).
TokenStream read_text_tokens(std::span<const std::string> paths);
// nanoGPT's token file: little-endian uint16 ids. An odd byte count, or an id >= vocab_size
// ("token 70000 at index 12 is >= vocab_size 50257"), is refused; vocab_size in 1..65536.
TokenStream read_token_file(const std::string& path, std::int64_t vocab_size);

// The default corpus: the text files of Debian's `fortunes` package (/usr/share/games/fortunes,
// every regular file without a '.' in its name, sorted by name). Refused, saying to install the
// package (scripts/install-deps.sh does), when there are none.
std::vector<std::string> fortunes_files(const std::string& dir = "/usr/share/games/fortunes");

enum class Split : unsigned char { train, validation };
std::string_view to_string(Split s);

class TokenBlocks : public Dataset {
 public:
  TokenBlocks(std::shared_ptr<const TokenStream> stream, Split split, std::int64_t block_size);

  std::int64_t size() const override { return blocks_; }
  const std::string& name() const override { return name_; }
  // {"inputs", i32, [T]}, {"labels", i32, [T]}
  std::vector<Field> fields() const override;
  void read(std::span<const std::int64_t> indices, std::span<Array> rows) const override;
  // "1234 blocks of 64 tokens (79041 tokens of vocabulary 256, train split of fortunes), crc32 ..."
  std::string describe() const override;

  std::int64_t block_size() const { return T_; }
  std::int64_t vocab_size() const { return stream_->vocab_size; }
  // The split's tokens.
  std::span<const std::int32_t> tokens() const { return {stream_->tokens.data() + begin_, static_cast<std::size_t>(length_)}; }
  // Where the training split ends: floor(0.9 · n) for a stream of n tokens.
  static std::int64_t train_tokens(std::int64_t n);

 private:
  std::shared_ptr<const TokenStream> stream_;
  Split split_;
  std::int64_t T_, begin_, length_, blocks_;
  std::string name_;
};

}  // namespace datarax::data
