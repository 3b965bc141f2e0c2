// IDX files for tests, built byte by byte as the format defines them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace datarax::test {

// 00 00 type rank, big-endian u32 dims, then the payload.
inline std::string idx_bytes(std::uint8_t type, const std::vector<std::uint32_t>& dims,
                             const std::string& payload) {
  std::string out{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int shift : {24, 16, 8, 0}) out += static_cast<char>((d >> shift) & 0xff);
  return out + payload;
}

}  // namespace datarax::test
