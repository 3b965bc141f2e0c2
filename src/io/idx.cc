#include "datarax/io/idx.h"

#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <vector>

#include "io/content_reader.h"
#include "io/file.h"

namespace datarax::io {

namespace {

constexpr const char* kOp = "read_idx";

struct IdxType {
  std::uint8_t code;
  DType dtype;
};
// IDX's element types that have a datarax dtype. 0x09 (i8) and 0x0B (i16) have none.
constexpr IdxType kIdxTypes[] = {
    {0x08, DType::u8}, {0x0C, DType::i32}, {0x0D, DType::f32}, {0x0E, DType::f64}};

// Deflate cannot expand data more than ~1032×; a header claiming more than this from a gzip file
// of a given size is corrupt, and is rejected before allocating its claim.
constexpr std::uint64_t kMaxDeflateRatio = 1100;
constexpr std::uint64_t kMaxPayloadBytes = std::uint64_t{1} << 62;

std::string hex(std::uint8_t b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  return {kDigits[b >> 4], kDigits[b & 15]};
}

std::string n_bytes(std::uint64_t n) { return std::to_string(n) + (n == 1 ? " byte" : " bytes"); }

std::string supported_types() {
  std::string out;
  for (const IdxType& t : kIdxTypes) {
    if (!out.empty()) out += ", ";
    out += "0x" + hex(t.code) + " (" + std::string(to_string(t.dtype)) + ")";
  }
  return out;
}

// "dims [2, 28, 28] of u8 need 1568 bytes of data after the 16-byte header".
std::string claim(const Shape& shape, DType dtype, std::uint64_t payload, std::uint64_t header) {
  return "dims " + shape.to_string() + " of " + std::string(to_string(dtype)) + " need " +
         std::to_string(payload) + " bytes of data after the " + std::to_string(header) +
         "-byte header";
}

// IDX stores elements big-endian; Arrays hold them in the host's order.
void big_endian_to_host(Array& a) {
  if constexpr (std::endian::native == std::endian::big) return;
  std::byte* p = static_cast<std::byte*>(a.raw());
  const std::size_t n = static_cast<std::size_t>(a.numel());
  if (a.itemsize() == 4) {
    for (std::size_t i = 0; i < n; ++i, p += 4) {
      std::uint32_t v;
      std::memcpy(&v, p, 4);
      v = __builtin_bswap32(v);
      std::memcpy(p, &v, 4);
    }
  } else if (a.itemsize() == 8) {
    for (std::size_t i = 0; i < n; ++i, p += 8) {
      std::uint64_t v;
      std::memcpy(&v, p, 8);
      v = __builtin_bswap64(v);
      std::memcpy(p, &v, 8);
    }
  }
}

}  // namespace

Array read_idx(const std::string& path) {
  detail::ContentReader in(path, kOp);
  auto fail = [&](const std::string& problem) { return detail::file_error(kOp, path, problem); };
  const std::string held = in.is_gzip() ? "the decompressed file holds" : "the file holds";

  std::array<std::uint8_t, 4> magic{};
  const std::size_t got_magic = in.read(std::as_writable_bytes(std::span(magic)));
  if (got_magic == 0)
    throw fail("empty file; an IDX file starts with the 4-byte magic 00 00 <type> <rank>");
  if (got_magic < 4)
    throw fail("truncated: the file ends after " + std::to_string(got_magic) +
               " bytes, inside the 4-byte magic 00 00 <type> <rank>");
  if (magic[0] != 0 || magic[1] != 0)
    throw fail("bad magic " + hex(magic[0]) + " " + hex(magic[1]) + " " + hex(magic[2]) + " " +
               hex(magic[3]) + "; an IDX file starts with 00 00 <type> <rank> (is it an IDX file?)");
  const IdxType* type = nullptr;
  for (const IdxType& t : kIdxTypes)
    if (t.code == magic[2]) type = &t;
  if (!type)
    throw fail("element type 0x" + hex(magic[2]) + " is not supported; expected one of " +
               supported_types());
  const int rank = magic[3];
  if (rank < 1 || rank > kMaxIdxRank)
    throw fail("rank " + std::to_string(rank) + " (magic byte 4) is out of range; expected 1 to " +
               std::to_string(kMaxIdxRank) + " dimensions");

  const std::uint64_t header_bytes = 4 + 4 * static_cast<std::uint64_t>(rank);
  std::vector<std::uint8_t> dim_bytes(4 * static_cast<std::size_t>(rank));
  const std::size_t got_dims = in.read(std::as_writable_bytes(std::span(dim_bytes)));
  if (got_dims < dim_bytes.size())
    throw fail("truncated: the file ends after " + std::to_string(4 + got_dims) +
               " bytes, inside the " + std::to_string(header_bytes) + "-byte header of " +
               std::to_string(rank) + " dimensions");
  std::vector<std::int64_t> dims(static_cast<std::size_t>(rank));
  std::uint64_t numel = 1;
  bool too_big = false;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    const std::uint8_t* b = &dim_bytes[4 * i];
    const std::uint64_t d = (std::uint64_t{b[0]} << 24) | (std::uint64_t{b[1]} << 16) |
                            (std::uint64_t{b[2]} << 8) | std::uint64_t{b[3]};
    dims[i] = static_cast<std::int64_t>(d);
    if (d != 0 && numel > kMaxPayloadBytes / d) too_big = true;
    numel *= d;
  }
  const Shape shape(dims);
  const DType dtype = type->dtype;
  if (too_big || numel > kMaxPayloadBytes / byte_size(dtype))
    throw fail("dims " + shape.to_string() + " of " + std::string(to_string(dtype)) +
               " describe more than 2^62 bytes of data; the header is corrupt");
  const std::uint64_t payload = numel * byte_size(dtype);

  // Size checks that need no reading: exact for a raw file, a bound for a gzip one.
  if (!in.is_gzip()) {
    const std::uint64_t holds = in.file_size() - header_bytes;
    if (holds < payload)
      throw fail("truncated: " + claim(shape, dtype, payload, header_bytes) + ", but " + held +
                 " only " + std::to_string(holds));
    if (holds > payload)
      throw fail("too long: " + claim(shape, dtype, payload, header_bytes) + ", but " + held + " " +
                 std::to_string(holds) + " (" + n_bytes(holds - payload) +
                 " more than its header describes)");
  } else if (payload > kMaxDeflateRatio * in.file_size()) {
    throw fail("truncated or corrupt: " + claim(shape, dtype, payload, header_bytes) +
               ", more than a gzip file of " + std::to_string(in.file_size()) + " bytes can hold");
  }

  Array out = Array::empty(shape, dtype);
  const std::uint64_t got = in.read(out.bytes());
  if (got < payload)
    throw fail("truncated: " + claim(shape, dtype, payload, header_bytes) + ", but " + held +
               " only " + std::to_string(got));
  // Reading on to the end also makes zlib check the gzip trailer (CRC-32 and length).
  const std::uint64_t extra = in.skip_to_end();
  if (extra > 0)
    throw fail("too long: " + claim(shape, dtype, payload, header_bytes) + ", but " + held + " " +
               std::to_string(payload + extra) + " (" + n_bytes(extra) +
               " more than its header describes)");
  big_endian_to_host(out);
  return out;
}

}  // namespace datarax::io
