#include "datarax/io/idx.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zlib.h>

#include <bit>
#include <cstring>
#include <functional>

#include "io/test_files.h"
#include "support/idx_bytes.h"
#include "support/error_of.h"

namespace datarax::io {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using test::error_of;
using test::TempDir;
using test::idx_bytes;


std::string counting_bytes(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 7 % 256);
  return s;
}

// Gzip through zlib's own file API, independent of the reader under test. mode "ab" appends a
// second gzip member.
void write_gzip(const std::string& path, const std::string& bytes, const char* mode = "wb") {
  gzFile f = gzopen(path.c_str(), mode);
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

void expect_u8_contents(const Array& a, const Shape& shape, const std::string& payload) {
  ASSERT_EQ(a.dtype(), DType::u8);
  ASSERT_EQ(a.shape(), shape);
  ASSERT_EQ(a.nbytes(), payload.size());
  EXPECT_EQ(std::memcmp(a.raw(), payload.data(), payload.size()), 0);
}

TEST(ReadIdx, RawUnsignedBytesKeepTheFileDims) {
  TempDir dir;
  const std::string payload = counting_bytes(3 * 4 * 5);
  test::write_bytes(dir.file("a-idx3-ubyte"), idx_bytes(0x08, {3, 4, 5}, payload));
  expect_u8_contents(read_idx(dir.file("a-idx3-ubyte")), Shape{3, 4, 5}, payload);
}

TEST(ReadIdx, GzipIsDetectedByContentNotName) {
  TempDir dir;
  const std::string payload = counting_bytes(70000);  // several inflate chunks of output
  write_gzip(dir.file("plain-name"), idx_bytes(0x08, {70000}, payload));
  expect_u8_contents(read_idx(dir.file("plain-name")), Shape{70000}, payload);
  // And a raw file named .gz is read raw.
  test::write_bytes(dir.file("raw.gz"), idx_bytes(0x08, {2, 2}, "abcd"));
  expect_u8_contents(read_idx(dir.file("raw.gz")), Shape{2, 2}, "abcd");
}

TEST(ReadIdx, ConcatenatedGzipMembersReadAsOneStream) {
  TempDir dir;
  const std::string file = idx_bytes(0x08, {10, 100}, counting_bytes(1000));
  write_gzip(dir.file("two.gz"), file.substr(0, 300));
  write_gzip(dir.file("two.gz"), file.substr(300), "ab");
  expect_u8_contents(read_idx(dir.file("two.gz")), Shape{10, 100}, counting_bytes(1000));
}

TEST(ReadIdx, EmptyDimensionGivesAnEmptyArray) {
  TempDir dir;
  test::write_bytes(dir.file("e"), idx_bytes(0x08, {0, 28, 28}, ""));
  const Array a = read_idx(dir.file("e"));
  EXPECT_EQ(a.shape(), (Shape{0, 28, 28}));
  EXPECT_EQ(a.numel(), 0);
}

TEST(ReadIdx, WideTypesAreConvertedFromBigEndian) {
  TempDir dir;
  // i32: -2 and 0x01020304, written big-endian by hand.
  test::write_bytes(dir.file("i32"), idx_bytes(0x0C, {2}, std::string("\xff\xff\xff\xfe\x01\x02\x03\x04", 8)));
  const Array i = read_idx(dir.file("i32"));
  ASSERT_EQ(i.dtype(), DType::i32);
  EXPECT_EQ(i.data<std::int32_t>()[0], -2);
  EXPECT_EQ(i.data<std::int32_t>()[1], 0x01020304);
  // f32 1.5 = 0x3fc00000; f64 -0.25 = 0xbfd0000000000000.
  test::write_bytes(dir.file("f32"), idx_bytes(0x0D, {1, 1}, std::string("\x3f\xc0\x00\x00", 4)));
  EXPECT_EQ(read_idx(dir.file("f32")).at<float>({0, 0}), 1.5f);
  write_gzip(dir.file("f64.gz"), idx_bytes(0x0E, {1}, std::string("\xbf\xd0\0\0\0\0\0\0", 8)));
  EXPECT_EQ(read_idx(dir.file("f64.gz")).data<double>()[0], -0.25);
}

// A corrupt file: how to make it, and what the error must say.
struct BadFile {
  const char* name;
  std::function<void(const std::string& path)> make;
  std::vector<std::string> expected;
};

void write_raw(const std::string& path, const std::string& bytes) { test::write_bytes(path, bytes); }

// A valid gzip'd IDX file with one of its bytes changed (index from the end when negative).
void write_gzip_with_flipped_byte(const std::string& path, long index) {
  write_gzip(path, idx_bytes(0x08, {50, 20}, counting_bytes(1000)));
  std::string gz = test::read_bytes(path);
  const std::size_t at = index < 0 ? gz.size() - static_cast<std::size_t>(-index) : static_cast<std::size_t>(index);
  gz[at] = static_cast<char>(gz[at] ^ 0x55);
  test::write_bytes(path, gz);
}

std::vector<BadFile> bad_files() {
  const std::string good = idx_bytes(0x08, {4, 5}, counting_bytes(20));
  return {
      {"Empty", [](auto& p) { write_raw(p, ""); }, {"empty file; an IDX file starts with the 4-byte magic"}},
      {"ShortMagic", [](auto& p) { write_raw(p, std::string("\0\0\x08", 3)); },
       {"truncated: the file ends after 3 bytes, inside the 4-byte magic"}},
      {"BadMagic", [](auto& p) { write_raw(p, "PK\x03\x04 more"); },
       {"bad magic 50 4b 03 04; an IDX file starts with 00 00 <type> <rank>"}},
      {"UnsupportedType", [](auto& p) { write_raw(p, idx_bytes(0x09, {1}, "x")); },
       {"element type 0x09 is not supported; expected one of 0x08 (u8), 0x0c (i32), 0x0d (f32), 0x0e (f64)"}},
      {"RankZero", [](auto& p) { write_raw(p, idx_bytes(0x08, {}, "")); },
       {"rank 0 (magic byte 4) is out of range; expected 1 to 8 dimensions"}},
      {"RankNine", [](auto& p) { write_raw(p, idx_bytes(0x08, std::vector<std::uint32_t>(9, 1), "x")); },
       {"rank 9 (magic byte 4) is out of range"}},
      {"TruncatedDims", [](auto& p) { write_raw(p, idx_bytes(0x08, {60000, 28, 28}, "").substr(0, 10)); },
       {"truncated: the file ends after 10 bytes, inside the 16-byte header of 3 dimensions"}},
      {"TruncatedData", [good](auto& p) { write_raw(p, good.substr(0, good.size() - 3)); },
       {"truncated: dims [4, 5] of u8 need 20 bytes of data after the 12-byte header, but the file holds only 17"}},
      {"TooLong", [good](auto& p) { write_raw(p, good + "xyz"); },
       {"too long: dims [4, 5] of u8 need 20 bytes of data after the 12-byte header, but the file holds 23 (3 bytes more than its header describes)"}},
      {"WideTypeTruncated", [](auto& p) { write_raw(p, idx_bytes(0x0C, {3}, "12345678")); },
       {"dims [3] of i32 need 12 bytes of data after the 8-byte header, but the file holds only 8"}},
      {"GzipTruncatedData", [good](auto& p) { write_gzip(p, good.substr(0, 15)); },
       {"truncated: dims [4, 5] of u8 need 20 bytes", "the decompressed file holds only 3"}},
      {"GzipTooLong", [good](auto& p) { write_gzip(p, good + "x"); },
       {"too long: dims [4, 5] of u8 need 20 bytes", "the decompressed file holds 21 (1 byte more"}},
      {"GzipStreamCut",
       [](auto& p) {
         write_gzip(p, idx_bytes(0x08, {50, 20}, counting_bytes(1000)));
         const std::string gz = test::read_bytes(p);
         write_raw(p, gz.substr(0, gz.size() / 2));
       },
       {"truncated gzip stream: the file ends after", "inside the compressed data"}},
      {"GzipBadCrc", [](auto& p) { write_gzip_with_flipped_byte(p, -8); },
       {"corrupt gzip stream near compressed byte", "incorrect data check (zlib)"}},
      {"GzipBadLength", [](auto& p) { write_gzip_with_flipped_byte(p, -2); },
       {"corrupt gzip stream", "incorrect length check (zlib)"}},
      {"GzipBadHeader", [](auto& p) { write_gzip_with_flipped_byte(p, 2); },
       {"corrupt gzip stream near compressed byte", "unknown compression method (zlib)"}},
      {"GzipTrailingGarbage",
       [good](auto& p) {
         write_gzip(p, good);
         write_raw(p, test::read_bytes(p) + "junk!");
       },
       {"corrupt gzip stream: 5 bytes after the end of the gzip data", "are not another gzip member"}},
      {"GzipClaimBeyondDeflate", [](auto& p) { write_gzip(p, idx_bytes(0x08, {100000, 100000}, "")); },
       {"truncated or corrupt: dims [100000, 100000] of u8 need 10000000000 bytes",
        "more than a gzip file of"}},
      {"HugeDims", [](auto& p) { write_raw(p, idx_bytes(0x0E, {0xffffffff, 0xffffffff, 0xffffffff}, "")); },
       {"describe more than 2^62 bytes of data; the header is corrupt"}},
  };
}

// Test names show the case's name, not the struct's bytes.
void PrintTo(const BadFile& f, std::ostream* os) { *os << f.name; }

class ReadIdxBadFile : public ::testing::TestWithParam<BadFile> {};

TEST_P(ReadIdxBadFile, ErrorNamesTheFileAndTheProblem) {
  TempDir dir;
  const std::string path = dir.file("bad-idx");
  GetParam().make(path);
  const std::string message = error_of([&] { read_idx(path); });
  EXPECT_THAT(message, HasSubstr("read_idx: \"" + path + "\": "));
  for (const std::string& part : GetParam().expected) EXPECT_THAT(message, HasSubstr(part));
  EXPECT_THROW(read_idx(path), InvalidArgumentError);
}

INSTANTIATE_TEST_SUITE_P(Cases, ReadIdxBadFile, ::testing::ValuesIn(bad_files()),
                         [](const auto& test_info) { return std::string(test_info.param.name); });

TEST(ReadIdx, MissingFileAndDirectory) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { read_idx(dir.file("nope")); }),
              AllOf(HasSubstr("read_idx: \"" + dir.file("nope") + "\": cannot open for reading"),
                    HasSubstr("No such file or directory")));
  EXPECT_THAT(error_of([&] { read_idx(dir.path().string()); }), HasSubstr("is a folder, not a regular file"));
}

// A FIFO (or a device) is refused at once: before the fix, open() waited for a writer forever.
TEST(ReadIdx, AFifoIsRefusedWithoutWaiting) {
  TempDir dir;
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  EXPECT_THAT(error_of([&] { read_idx(dir.file("fifo")); }), HasSubstr("is a FIFO, not a regular file"));
  EXPECT_THAT(error_of([&] { read_idx("/dev/zero"); }), HasSubstr("is a character device, not a regular file"));
}

}  // namespace
}  // namespace datarax::io
