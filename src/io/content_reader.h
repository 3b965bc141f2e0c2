// Internal: reads a file's content front to back, decompressing it on the fly when it is gzip.
//
// A file is gzip when it starts with the gzip magic 1f 8b; anything else is read as it is. Gzip
// data goes through zlib's inflate in 256 KiB chunks, so the compressed file is never held in
// memory whole; concatenated gzip members (what `cat a.gz b.gz` makes) read as one stream, as
// gunzip reads them. zlib's errors become datarax errors naming the operation and the file:
// a corrupt stream (bad header, bad block, CRC or length mismatch), a file that ends inside the
// compressed data, and bytes after the last member that are not another member.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace datarax::detail {

class ContentReader {
 public:
  // Opens `path`; errors name `op` (the public operation, e.g. "read_idx") and the path.
  ContentReader(std::string path, std::string op);
  ~ContentReader();
  ContentReader(const ContentReader&) = delete;
  ContentReader& operator=(const ContentReader&) = delete;

  bool is_gzip() const;
  // Bytes of the file on disk (compressed, for a gzip file).
  std::uint64_t file_size() const;

  // Reads up to out.size() bytes of content; fewer only at the end of the content (0 there).
  std::size_t read(std::span<std::byte> out);
  // Reads the rest of the content and returns how many bytes it had (for "N bytes too many").
  std::uint64_t skip_to_end();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace datarax::detail
