#include "datarax/io/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <csignal>
#include <cstring>
#include <functional>
#include <limits>

#include "io/test_files.h"
#include "support/error_of.h"

namespace datarax::io {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using test::error_of;
using test::TempDir;

// One leaf of every dtype, with the bit patterns that conversions would lose: NaN payloads,
// negative zero, infinities, subnormals, integer extremes; plus a scalar and an empty tensor.
Tree every_dtype() {
  const float f_nan = std::bit_cast<float>(0x7fc01234u);
  const double d_nan = std::bit_cast<double>(0xfff0000000000abcull);
  std::vector<std::uint8_t> bytes(256);
  for (int i = 0; i < 256; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
  return Tree{
      {"f32", Array::from_values<float>({2, 3}, {1.5f, -0.0f, f_nan, std::numeric_limits<float>::infinity(),
                                                 std::numeric_limits<float>::denorm_min(), -3e38f})},
      {"f64", Array::from_vector<double>({d_nan, -0.0, 1e-310, 6.02e23})},
      {"params/dense_0/bf16", Array::from_vector<bfloat16>({bfloat16::from_bits(0x7fc1), bfloat16::from_bits(0x8000),
                                                            bfloat16(1.0f)})},
      {"params/dense_0/f16", Array::from_vector<float16>({float16::from_bits(0x7e01), float16::from_bits(0x0001),
                                                          float16(-2.0f)})},
      {"i32", Array::from_values<std::int32_t>({2, 2}, {std::numeric_limits<std::int32_t>::min(), -1, 0,
                                                        std::numeric_limits<std::int32_t>::max()})},
      {"i64", Array::from_vector<std::int64_t>({std::numeric_limits<std::int64_t>::min(), 42,
                                                std::numeric_limits<std::int64_t>::max()})},
      {"u8", Array::from_values<std::uint8_t>({16, 16}, bytes)},
      {"bool", Array::from_vector<bool>({true, false, true})},
      {"scalar", Array::scalar<float>(3.25f)},
      {"empty", Array::zeros({0, 7}, DType::i64)},
  };
}

std::string le64(std::uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>(n >> (8 * i));
  return s;
}

// A safetensors file made by hand: length prefix, header text as given, data.
std::string file_bytes(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

TEST(Safetensors, EveryDtypeRoundTripsBitwise) {
  TempDir dir;
  const Tree tree = every_dtype();
  save_safetensors(dir.file("all.safetensors"), tree);
  const Tree back = load_safetensors(dir.file("all.safetensors"));
  EXPECT_EQ(back.keys(), tree.keys());
  EXPECT_TRUE(bitwise_equal(back, tree)) << back.to_string();
  EXPECT_TRUE(load_safetensors_metadata(dir.file("all.safetensors")).empty());
}

// The bytes the format prescribes, spelled out: header padded with spaces to a multiple of 8,
// tensors in key order, little-endian.
TEST(Safetensors, WritesTheDocumentedLayout) {
  TempDir dir;
  save_safetensors(dir.file("t"), Tree{{"b", Array::from_vector<std::int32_t>({1, -2})},
                                       {"a", Array::from_vector<float>({1.0f})}},
                   {{"format", "pt"}});
  std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
      R"("b":{"dtype":"I32","shape":[2],"data_offsets":[4,12]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::string data("\x00\x00\x80\x3f" "\x01\x00\x00\x00" "\xfe\xff\xff\xff", 12);
  EXPECT_EQ(test::read_bytes(dir.file("t")), file_bytes(header, data));
  EXPECT_EQ(header.size() % 8, 0u);
}

// What another writer (the Python library) may produce: no padding, other key order, whitespace,
// data not in key order.
TEST(Safetensors, ReadsAFileWrittenElsewhere) {
  TempDir dir;
  const std::string header =
      R"({"w": {"dtype": "I32", "shape": [2, 2], "data_offsets": [2, 18]},)"
      R"( "__metadata__": {"format": "pt", "step": "7"}, "b": {"dtype": "BF16", "shape": [], "data_offsets": [0, 2]}})";
  std::string data("\x80\x3f", 2);  // bf16 1.0
  for (std::int32_t v : {1, 2, 3, 4}) data += std::string(reinterpret_cast<const char*>(&v), 4);
  test::write_bytes(dir.file("f"), file_bytes(header, data));
  const Tree t = load_safetensors(dir.file("f"));
  EXPECT_EQ(t.keys(), (std::vector<std::string>{"b", "w"}));
  EXPECT_EQ(float(t.at("b").item<bfloat16>()), 1.0f);
  EXPECT_EQ(t.at("w").at<std::int32_t>({1, 0}), 3);
  EXPECT_EQ(load_safetensors_metadata(dir.file("f")),
            (std::map<std::string, std::string>{{"format", "pt"}, {"step", "7"}}));
}

TEST(Safetensors, MetadataAndEmptyTreeRoundTrip) {
  TempDir dir;
  const std::map<std::string, std::string> meta{{"step", "1200"}, {"note", "quotes \" and ünïcode"}};
  save_safetensors(dir.file("m"), every_dtype(), meta);
  EXPECT_EQ(load_safetensors_metadata(dir.file("m")), meta);
  save_safetensors(dir.file("empty"), Tree{});
  EXPECT_TRUE(load_safetensors(dir.file("empty")).empty());
  EXPECT_EQ(test::read_bytes(dir.file("empty")), file_bytes("{}      ", ""));
}

TEST(Safetensors, SaveReplacesTheFileAndLeavesNoTemporaries) {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  save_safetensors(path, Tree{{"x", Array::full({1000}, 1.0)}});
  save_safetensors(path, Tree{{"y", Array::full({3}, 2.0)}});
  EXPECT_EQ(load_safetensors(path).keys(), std::vector<std::string>{"y"});
  EXPECT_THAT(dir.entries(), ElementsAre("ckpt.safetensors"));
}

TEST(Safetensors, FailedSaveThrowsAndLeavesNothing) {
  TempDir dir;
  const Tree tree = every_dtype();
  EXPECT_THAT(error_of([&] { save_safetensors(dir.file("missing/x.safetensors"), tree); }),
              AllOf(HasSubstr("save_safetensors: \"" + dir.file("missing/x.safetensors") + "\""),
                    HasSubstr("its folder"), HasSubstr("No such file or directory")));
  test::write_bytes(dir.file("plain"), "not a directory");
  EXPECT_THAT(error_of([&] { save_safetensors(dir.file("plain/x"), tree); }), HasSubstr("Not a directory"));
  // A folder at the path is refused before anything is written (file_test.cc checks the rename's
  // own failure).
  std::filesystem::create_directory(dir.path() / "target-is-a-dir");
  EXPECT_THAT(error_of([&] { save_safetensors(dir.file("target-is-a-dir"), tree); }),
              HasSubstr("exists and is a folder, not a regular file"));
  EXPECT_THAT(dir.entries(), ElementsAre("plain", "target-is-a-dir"));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "target-is-a-dir"));
}

// A disk that fills up mid-write, simulated with the file-size limit (which binds root too):
// the old file must survive whole.
TEST(Safetensors, WriteErrorKeepsTheOldFile) {
  TempDir dir;
  const std::string path = dir.file("ckpt");
  const Tree old_tree{{"old", Array::full({10}, 7.0)}};
  save_safetensors(path, old_tree);
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto* saved_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const std::string message =
      error_of([&] { save_safetensors(path, Tree{{"big", Array::zeros({100000})}}); });
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, saved_handler);
  EXPECT_THAT(message, AllOf(HasSubstr("save_safetensors: \""), HasSubstr("write failed after"),
                             HasSubstr("File too large")));
  EXPECT_TRUE(bitwise_equal(load_safetensors(path), old_tree));
  EXPECT_THAT(dir.entries(), ElementsAre("ckpt"));
}

TEST(Safetensors, UnwritableDirectory) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root, which may write into any directory";
  TempDir dir;
  const auto locked = dir.path() / "locked";
  std::filesystem::create_directory(locked);
  ::chmod(locked.c_str(), 0555);
  EXPECT_THAT(error_of([&] { save_safetensors((locked / "x").string(), every_dtype()); }),
              HasSubstr("Permission denied"));
  EXPECT_TRUE(std::filesystem::is_empty(locked));
  ::chmod(locked.c_str(), 0755);
}

TEST(Safetensors, SaveRejectsTheReservedKey) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { save_safetensors(dir.file("r"), Tree{{"__metadata__", Array::zeros({1})}}); }),
              HasSubstr("the key \"__metadata__\" is reserved"));
  EXPECT_TRUE(dir.entries().empty());
}

// Every prefix of a valid file is rejected with an error, never read as something else.
TEST(Safetensors, EveryTruncationIsAnError) {
  TempDir dir;
  save_safetensors(dir.file("good"), every_dtype(), {{"k", "v"}});
  const std::string good = test::read_bytes(dir.file("good"));
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    test::write_bytes(dir.file("cut"), good.substr(0, cut));
    EXPECT_THROW(load_safetensors(dir.file("cut")), InvalidArgumentError) << "cut at " << cut;
  }
}

struct BadFile {
  const char* name;
  std::string bytes;
  const char* expected;
};

std::string f32_entry(const char* key, int n, int begin, int end) {
  return "\"" + std::string(key) + "\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(n) +
         "],\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

std::vector<BadFile> bad_files() {
  const std::string d8(8, '\0'), d12(12, '\0'), d16(16, '\0');
  return {
      {"Short", "abcde", "truncated: the file has 5 bytes, fewer than the 8-byte header length"},
      {"HeaderPastEnd", le64(1000) + "{}", "the header length 1000 exceeds the 2 bytes after the length prefix"},
      {"NotJson", file_bytes("{\"a\": ", ""), "the 6-byte header is not valid JSON ("},
      {"NotObject", file_bytes("[1, 2]", ""), "the header is array, not a JSON object"},
      {"EntryNotObject", file_bytes(R"({"a": 3})", ""), "tensor \"a\": is 3; expected an object"},
      {"NoDtype", file_bytes(R"({"a": {"shape": [], "data_offsets": [0, 4]}})", d8), "tensor \"a\": has no \"dtype\""},
      {"UnknownDtype", file_bytes(R"({"a":{"dtype":"I8","shape":[1],"data_offsets":[0,1]}})", "x"),
       "tensor \"a\": dtype \"I8\" is not supported; expected one of F32, F64, BF16, F16, I32, I64, U8, BOOL"},
      {"NegativeDim", file_bytes(R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", "x"),
       "shape [-1] holds -1; expected non-negative integers"},
      {"SizeMismatch", file_bytes("{" + f32_entry("a", 3, 0, 8) + "}", d8),
       "tensor \"a\": data_offsets [0,8] span 8 bytes, but shape [3] of F32 needs 12"},
      {"EndBeforeBegin", file_bytes(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", ""),
       "data_offsets [4,0] end before they begin"},
      {"Overlap", file_bytes("{" + f32_entry("a", 2, 0, 8) + "," + f32_entry("b", 2, 4, 12) + "}", d12),
       "tensor \"b\" (data bytes [4, 12)) overlaps tensor \"a\" (data bytes [0, 8))"},
      {"Gap", file_bytes("{" + f32_entry("a", 2, 0, 8) + "," + f32_entry("b", 2, 12, 20) + "}", d16 + "abcd"),
       "data bytes [8, 12) belong to no tensor"},
      {"TruncatedData", file_bytes("{" + f32_entry("a", 4, 0, 16) + "}", std::string(10, 'x')),
       "truncated: tensor \"a\" (data bytes [0, 16)) ends past the data section's 10 bytes"},
      {"TrailingData", file_bytes("{" + f32_entry("a", 2, 0, 8) + "}", d12),
       "4 bytes of trailing data after the last tensor, which ends at data byte 8"},
      {"MetadataNotStrings", file_bytes(R"({"__metadata__":{"step":7}})", ""),
       "\"__metadata__\" maps \"step\" to 7; metadata values must be strings"},
      {"BadKey", file_bytes("{" + f32_entry("a//b", 2, 0, 8) + "}", d8),
       "key path \"a//b\" has an empty segment"},
      {"BoolNotZeroOrOne", file_bytes(R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", std::string("\1\2\0", 3)),
       "tensor \"m\" (BOOL) holds byte 2 at element 1; BOOL elements must be 0 or 1"},
  };
}

// Test names show the case's name, not the struct's bytes.
void PrintTo(const BadFile& f, std::ostream* os) { *os << f.name; }

class SafetensorsBadFile : public ::testing::TestWithParam<BadFile> {};

TEST_P(SafetensorsBadFile, ErrorNamesTheFileAndTheProblem) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  test::write_bytes(path, GetParam().bytes);
  const std::string message = error_of([&] { load_safetensors(path); });
  EXPECT_THAT(message, AllOf(HasSubstr("load_safetensors: \"" + path + "\""), HasSubstr(GetParam().expected)));
  EXPECT_THROW(load_safetensors(path), InvalidArgumentError);
}

INSTANTIATE_TEST_SUITE_P(Cases, SafetensorsBadFile, ::testing::ValuesIn(bad_files()),
                         [](const auto& test_info) { return std::string(test_info.param.name); });

TEST(Safetensors, MissingFile) {
  EXPECT_THAT(error_of([] { load_safetensors("/no/such/file.safetensors"); }),
              AllOf(HasSubstr("load_safetensors: \"/no/such/file.safetensors\": cannot open for reading"),
                    HasSubstr("No such file or directory")));
  EXPECT_THAT(error_of([] { load_safetensors_metadata("/no/such/file.safetensors"); }),
              HasSubstr("load_safetensors_metadata: \"/no/such/file.safetensors\""));
}

}  // namespace
}  // namespace datarax::io
