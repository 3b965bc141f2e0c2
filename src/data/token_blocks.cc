// TokenBlocks (data/token_blocks.h).
#include "datarax/data/token_blocks.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "datarax/error.h"

namespace datarax::data {

namespace {

std::vector<unsigned char> read_bytes(const std::string& what, const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw InvalidArgumentError(what + ": " + path + " is not a readable regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InvalidArgumentError(what + ": cannot open " + path + ": " + std::strerror(errno));
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw InvalidArgumentError(what + ": reading " + path + " failed");
  return bytes;
}

}  // namespace

TokenStream read_text_tokens(const std::string& path) { return read_text_tokens(std::span<const std::string>(&path, 1)); }

TokenStream read_text_tokens(std::span<const std::string> paths) {
  TokenStream s;
  s.vocab_size = 256;
  for (const std::string& p : paths) {
    const std::vector<unsigned char> bytes = read_bytes("read_text_tokens", p);
    s.tokens.insert(s.tokens.end(), bytes.begin(), bytes.end());
  }
  if (paths.size() == 1) s.source = paths[0];
  else s.source = std::to_string(paths.size()) + " files" + (paths.empty() ? "" : " (" + paths[0] + ", ...)");
  if (s.tokens.empty()) throw InvalidArgumentError("read_text_tokens: " + (s.source.empty() ? std::string("no files") : s.source) + " holds no bytes");
  return s;
}

TokenStream read_token_file(const std::string& path, std::int64_t vocab_size) {
  if (vocab_size < 1 || vocab_size > 65536)
    throw InvalidArgumentError("read_token_file: vocab_size " + std::to_string(vocab_size) + "; valid: 1..65536 (uint16 ids)");
  const std::vector<unsigned char> bytes = read_bytes("read_token_file", path);
  if (bytes.size() % 2 != 0)
    throw InvalidArgumentError("read_token_file: " + path + " has " + std::to_string(bytes.size()) +
                               " bytes, an odd count; the format is little-endian uint16 token ids");
  if (bytes.empty()) throw InvalidArgumentError("read_token_file: " + path + " is empty");
  TokenStream s;
  s.vocab_size = vocab_size;
  s.source = path;
  s.tokens.resize(bytes.size() / 2);
  for (std::size_t i = 0; i < s.tokens.size(); ++i) {
    const std::int32_t id = bytes[2 * i] | (bytes[2 * i + 1] << 8);
    if (id >= vocab_size)
      throw InvalidArgumentError("read_token_file: " + path + ": token " + std::to_string(id) + " at index " +
                                 std::to_string(i) + " is >= vocab_size " + std::to_string(vocab_size));
    s.tokens[i] = id;
  }
  return s;
}

std::vector<std::string> fortunes_files(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.find('.') == std::string::npos && e.is_regular_file(ec) && !e.is_symlink(ec)) files.push_back(e.path().string());
  }
  if (files.empty())
    throw InvalidArgumentError("fortunes_files: no text files in " + dir +
                               "; install Debian's fortunes package (scripts/install-deps.sh does) or name a file");
  std::sort(files.begin(), files.end());
  return files;
}

std::string_view to_string(Split s) { return s == Split::train ? "train" : "validation"; }

std::int64_t TokenBlocks::train_tokens(std::int64_t n) { return static_cast<std::int64_t>(static_cast<double>(n) * 0.9); }

TokenBlocks::TokenBlocks(std::shared_ptr<const TokenStream> stream, Split split, std::int64_t block_size)
    : stream_(std::move(stream)), split_(split), T_(block_size) {
  if (!stream_) throw InvalidArgumentError("TokenBlocks: no stream");
  if (T_ < 1) throw InvalidArgumentError("TokenBlocks: block_size " + std::to_string(T_) + "; valid: >= 1");
  const auto n = static_cast<std::int64_t>(stream_->tokens.size());
  const std::int64_t cut = train_tokens(n);
  begin_ = split == Split::train ? 0 : cut;
  length_ = split == Split::train ? cut : n - cut;
  name_ = std::string(to_string(split)) + " split of " + stream_->source;
  if (length_ < T_ + 1)
    throw InvalidArgumentError("TokenBlocks: the " + name_ + " has " + std::to_string(length_) + " tokens (of " +
                               std::to_string(n) + "); a block of " + std::to_string(T_) + " needs " +
                               std::to_string(T_ + 1) + " (its inputs and the next token)");
  blocks_ = (length_ - 1) / T_;
}

std::vector<Field> TokenBlocks::fields() const {
  return {{"inputs", DType::i32, Shape{T_}}, {"labels", DType::i32, Shape{T_}}};
}

void TokenBlocks::read(std::span<const std::int64_t> indices, std::span<Array> rows) const {
  const std::int32_t* s = stream_->tokens.data() + begin_;
  std::int32_t* in = rows[0].data<std::int32_t>().data();
  std::int32_t* lab = rows[1].data<std::int32_t>().data();
  const auto T = static_cast<std::size_t>(T_);
  for (std::size_t r = 0; r < indices.size(); ++r) {
    const std::int32_t* at = s + indices[r] * T_;
    std::memcpy(in + r * T, at, T * sizeof(std::int32_t));
    std::memcpy(lab + r * T, at + 1, T * sizeof(std::int32_t));
  }
}

std::string TokenBlocks::describe() const {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* bytes = reinterpret_cast<const Bytef*>(stream_->tokens.data() + begin_);
  const std::size_t nbytes = static_cast<std::size_t>(length_) * sizeof(std::int32_t);
  for (std::size_t at = 0; at < nbytes; at += std::size_t{1} << 30)
    crc = crc32(crc, bytes + at, static_cast<uInt>(std::min(nbytes - at, std::size_t{1} << 30)));
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08lx", static_cast<unsigned long>(crc));
  return std::to_string(blocks_) + " blocks of " + std::to_string(T_) + " tokens (" + std::to_string(length_) +
         " tokens of vocabulary " + std::to_string(stream_->vocab_size) + ", " + name_ + "), crc32 " + hex;
}

}  // namespace datarax::data
