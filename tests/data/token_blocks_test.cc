// TokenBlocks (data/token_blocks.h): blocks from the formula, nanoGPT's 90/10 split, uint16 token
// files, and every refusal.
#include "datarax/data/token_blocks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "io/test_files.h"
#include "support/error_of.h"

namespace datarax::data {
namespace {

using ::testing::HasSubstr;
using datarax::test::error_of;

std::vector<std::int32_t> rows_of(const TokenBlocks& d, std::vector<std::int64_t> idx, int field) {
  std::vector<Array> rows{Array::zeros({static_cast<std::int64_t>(idx.size()), d.block_size()}, DType::i32),
                          Array::zeros({static_cast<std::int64_t>(idx.size()), d.block_size()}, DType::i32)};
  d.read(idx, rows);
  return {rows[static_cast<std::size_t>(field)].data<std::int32_t>().begin(),
          rows[static_cast<std::size_t>(field)].data<std::int32_t>().end()};
}

TEST(TokenBlocks, BlocksFollowTheFormulaOnBothSplits) {
  datarax::test::TempDir dir;
  std::string text;
  for (int i = 0; i < 1000; ++i) text += static_cast<char>((i * 37 + 11) % 251);
  datarax::test::write_bytes(dir.file("t.txt"), text);
  auto stream = std::make_shared<const TokenStream>(read_text_tokens(dir.file("t.txt")));
  ASSERT_EQ(stream->tokens.size(), 1000u);
  EXPECT_EQ(TokenBlocks::train_tokens(1000), 900);
  const std::int64_t T = 16;
  const TokenBlocks train(stream, Split::train, T), val(stream, Split::validation, T);
  EXPECT_EQ(train.size(), (900 - 1) / 16);  // 56
  EXPECT_EQ(val.size(), (100 - 1) / 16);    // 6
  ASSERT_EQ(train.fields().size(), 2u);
  EXPECT_EQ(train.fields()[0].name, "inputs");
  EXPECT_EQ(train.fields()[1].name, "labels");
  EXPECT_EQ(train.fields()[1].shape, (Shape{16}));
  EXPECT_EQ(train.fields()[1].dtype, DType::i32);
  auto byte = [&](std::int64_t i) { return static_cast<std::int32_t>(static_cast<unsigned char>(text[static_cast<std::size_t>(i)])); };
  for (std::int64_t j : {0L, 7L, 55L}) {
    const auto in = rows_of(train, {j}, 0), lab = rows_of(train, {j}, 1);
    for (std::int64_t t = 0; t < T; ++t) {
      EXPECT_EQ(in[static_cast<std::size_t>(t)], byte(j * T + t));
      EXPECT_EQ(lab[static_cast<std::size_t>(t)], byte(j * T + t + 1));
    }
  }
  const auto vin = rows_of(val, {5, 0}, 0), vlab = rows_of(val, {5, 0}, 1);
  EXPECT_EQ(vin[0], byte(900 + 5 * T));
  EXPECT_EQ(vlab[static_cast<std::size_t>(T - 1)], byte(900 + 5 * T + T));
  EXPECT_EQ(vin[static_cast<std::size_t>(T)], byte(900));
  EXPECT_THAT(train.describe(), HasSubstr("56 blocks of 16 tokens (900 tokens of vocabulary 256, train split of"));
  // A split too short for one block.
  EXPECT_THAT(error_of([&] { TokenBlocks(stream, Split::validation, 100); }),
              HasSubstr("TokenBlocks: the validation split of " + dir.file("t.txt") +
                        " has 100 tokens (of 1000); a block of 100 needs 101"));
  EXPECT_NO_THROW(TokenBlocks(stream, Split::validation, 99));
}

TEST(TokenBlocks, ReadsUint16TokenFilesAndRefusesBadOnes) {
  datarax::test::TempDir dir;
  std::string bin;
  for (int i = 0; i < 300; ++i) {
    const int id = (i * 131) % 50257;
    bin += static_cast<char>(id & 0xff);
    bin += static_cast<char>(id >> 8);
  }
  datarax::test::write_bytes(dir.file("train.bin"), bin);
  const TokenStream s = read_token_file(dir.file("train.bin"), 50257);
  ASSERT_EQ(s.tokens.size(), 300u);
  EXPECT_EQ(s.tokens[299], (299 * 131) % 50257);
  const TokenBlocks b(std::make_shared<const TokenStream>(s), Split::train, 8);
  EXPECT_EQ(b.vocab_size(), 50257);
  EXPECT_EQ(rows_of(b, {2}, 1)[0], (17 * 131) % 50257);
  EXPECT_THAT(error_of([&] { read_token_file(dir.file("train.bin"), 1000); }),
              HasSubstr("token 1048 at index 8 is >= vocab_size 1000"));
  datarax::test::write_bytes(dir.file("odd.bin"), "abc");
  EXPECT_THAT(error_of([&] { read_token_file(dir.file("odd.bin"), 256); }), HasSubstr("has 3 bytes, an odd count"));
  EXPECT_THAT(error_of([&] { read_token_file(dir.file("train.bin"), 70000); }), HasSubstr("vocab_size 70000; valid: 1..65536"));
  EXPECT_THAT(error_of([&] { read_text_tokens(dir.file("missing.txt")); }), HasSubstr("is not a readable regular file"));
  datarax::test::write_bytes(dir.file("empty.txt"), "");
  EXPECT_THAT(error_of([&] { read_text_tokens(dir.file("empty.txt")); }), HasSubstr("holds no bytes"));
  EXPECT_THAT(error_of([&] { fortunes_files(dir.file("nowhere")); }), HasSubstr("install Debian's fortunes package"));
}

TEST(TokenBlocks, FortunesCorpusWhenInstalled) {
  if (!std::filesystem::exists("/usr/share/games/fortunes/fortunes")) GTEST_SKIP() << "Debian's fortunes is not installed";
  const auto files = fortunes_files();
  EXPECT_GT(files.size(), 10u);
  for (const auto& f : files) EXPECT_EQ(std::filesystem::path(f).filename().string().find('.'), std::string::npos) << f;
  const TokenStream s = read_text_tokens(files);
  EXPECT_GT(s.tokens.size(), 1000000u);
}

}  // namespace
}  // namespace datarax::data
