#include "io/content_reader.h"

#include <zlib.h>

#include <array>
#include <limits>
#include <vector>

#include "io/file.h"

namespace datarax::detail {

namespace {

constexpr std::size_t kChunk = 256 * 1024;
constexpr int kGzipWindowBits = 15 + 16;  // 32 KiB window, gzip wrapper only (not zlib, not raw)

}  // namespace

struct ContentReader::Impl {
  InputFile file;
  bool gzip = false;
  // Gzip state. consumed counts compressed bytes handed to inflate, for error positions.
  z_stream zs{};
  bool zs_ready = false;
  std::vector<unsigned char> in;
  bool file_eof = false;
  bool member_ended = false;
  bool finished = false;
  std::uint64_t file_read = 0;

  Impl(std::string path, std::string op) : file(std::move(path), std::move(op)) {}
  ~Impl() {
    if (zs_ready) inflateEnd(&zs);
  }

  std::uint64_t compressed_position() const { return file_read - zs.avail_in; }

  [[noreturn]] void fail(const std::string& problem) const {
    throw file_error(file.op(), file.path(), problem);
  }

  void refill() {
    const std::size_t n = file.read(std::as_writable_bytes(std::span(in)));
    file_read += n;
    if (n == 0) file_eof = true;
    zs.next_in = in.data();
    zs.avail_in = static_cast<uInt>(n);
  }

  std::size_t read_gzip(std::span<std::byte> out) {
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    while (zs.avail_out > 0 && !finished) {
      if (zs.avail_in == 0 && !file_eof) refill();
      if (zs.avail_in == 0) {
        if (member_ended) {
          finished = true;
          break;
        }
        fail("truncated gzip stream: the file ends after " + std::to_string(file_read) +
             " bytes, inside the compressed data");
      }
      if (member_ended) {
        // More input after a complete member: another member, or garbage.
        if (zs.next_in[0] != 0x1f)
          fail("corrupt gzip stream: " +
               std::to_string(file.size() - compressed_position()) +
               " bytes after the end of the gzip data at byte " +
               std::to_string(compressed_position()) + " are not another gzip member");
        inflateReset(&zs);
        member_ended = false;
      }
      const int rc = inflate(&zs, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        member_ended = true;
      } else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) {
        fail("corrupt gzip stream near compressed byte " + std::to_string(compressed_position()) +
             ": " + (zs.msg ? zs.msg : "invalid data") + " (zlib)");
      } else if (rc == Z_MEM_ERROR) {
        fail("zlib ran out of memory while decompressing");
      }
      // Z_OK, or Z_BUF_ERROR (no progress: input ran dry, refilled on the next turn).
    }
    return out.size() - zs.avail_out;
  }
};

ContentReader::ContentReader(std::string path, std::string op)
    : impl_(std::make_unique<Impl>(std::move(path), std::move(op))) {
  Impl& s = *impl_;
  if (s.file.size() >= 2) {
    std::array<std::byte, 2> magic{};
    s.file.read_at(0, magic);
    s.gzip = magic[0] == std::byte{0x1f} && magic[1] == std::byte{0x8b};
  }
  if (!s.gzip) return;
  s.in.resize(kChunk);
  if (inflateInit2(&s.zs, kGzipWindowBits) != Z_OK)
    s.fail(std::string("zlib inflateInit2 failed: ") + (s.zs.msg ? s.zs.msg : "out of memory"));
  s.zs_ready = true;
}

ContentReader::~ContentReader() = default;

bool ContentReader::is_gzip() const { return impl_->gzip; }

std::uint64_t ContentReader::file_size() const { return impl_->file.size(); }

std::size_t ContentReader::read(std::span<std::byte> out) {
  if (!impl_->gzip) return impl_->file.read(out);
  // inflate counts in uInt (32 bits): feed large reads in pieces.
  std::size_t done = 0;
  while (done < out.size()) {
    const std::size_t want = std::min<std::size_t>(out.size() - done, std::numeric_limits<uInt>::max());
    const std::size_t n = impl_->read_gzip(out.subspan(done, want));
    done += n;
    if (n < want) break;
  }
  return done;
}

std::uint64_t ContentReader::skip_to_end() {
  std::vector<std::byte> scratch(kChunk);
  std::uint64_t total = 0;
  for (std::size_t n; (n = read(scratch)) > 0;) total += n;
  return total;
}

}  // namespace datarax::detail
