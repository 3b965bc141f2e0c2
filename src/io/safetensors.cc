#include "datarax/io/safetensors.h"
#include "datarax/io/file.h"

#include <algorithm>
#include <array>
#include <bit>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/strings.h"
#include "io/file.h"

namespace datarax::io {

// Arrays hold elements in the host's byte order and safetensors in little-endian; every host we
// build for is little-endian, so bytes go to and from the file as they are.
static_assert(std::endian::native == std::endian::little,
              "safetensors I/O writes host-order bytes and assumes a little-endian host");

namespace {

constexpr const char* kSaveOp = "save_safetensors";
constexpr const char* kLoadOp = "load_safetensors";
constexpr const char* kMetadataKey = "__metadata__";

struct DTypeName {
  DType dtype;
  const char* name;
};
constexpr DTypeName kDTypeNames[] = {{DType::f32, "F32"},  {DType::f64, "F64"}, {DType::bf16, "BF16"},
                                     {DType::f16, "F16"},  {DType::i32, "I32"}, {DType::i64, "I64"},
                                     {DType::u8, "U8"},    {DType::bool_, "BOOL"}};

const char* safetensors_name(DType dtype) {
  for (const DTypeName& d : kDTypeNames)
    if (d.dtype == dtype) return d.name;
  return "?";
}

// One tensor of a header, validated on its own (its place among the others is checked later).
struct Entry {
  std::string key;
  DType dtype;
  Shape shape;
  std::uint64_t begin;
  std::uint64_t end;
};

struct Header {
  std::map<std::string, std::string> metadata;
  std::vector<Entry> entries;
  std::uint64_t data_start = 0;  // file offset of the data section
};

std::string range(std::uint64_t begin, std::uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")";
}

Entry parse_entry(const std::string& key, const nlohmann::json& value, const detail::InputFile& file) {
  const std::string what = "tensor " + detail::quoted(key);
  auto fail = [&](const std::string& problem) {
    return detail::file_error(file.op(), file.path(), what + ": " + problem);
  };
  validate_key_path(key, file.op() + ": " + detail::quoted(file.path()));
  if (!value.is_object())
    throw fail("is " + value.dump() + "; expected an object with dtype, shape and data_offsets");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!value.contains(field)) throw fail(std::string("has no \"") + field + "\"");

  const nlohmann::json& dtype = value["dtype"];
  const DTypeName* known = nullptr;
  if (dtype.is_string())
    for (const DTypeName& d : kDTypeNames)
      if (dtype.get<std::string>() == d.name) known = &d;
  if (!known)
    throw fail("dtype " + dtype.dump() +
               " is not supported; expected one of F32, F64, BF16, F16, I32, I64, U8, BOOL");

  const nlohmann::json& shape = value["shape"];
  if (!shape.is_array()) throw fail("shape " + shape.dump() + " is not an array");
  std::vector<std::int64_t> dims;
  std::uint64_t nbytes = byte_size(known->dtype);
  bool overflow = false;
  for (const nlohmann::json& d : shape) {
    if (!d.is_number_unsigned() || d.get<std::uint64_t>() > (std::uint64_t{1} << 62))
      throw fail("shape " + shape.dump() + " holds " + d.dump() +
                 "; expected non-negative integers");
    const std::uint64_t extent = d.get<std::uint64_t>();
    overflow = overflow || __builtin_mul_overflow(nbytes, extent, &nbytes);
    dims.push_back(static_cast<std::int64_t>(extent));
  }
  if (overflow) throw fail("shape " + shape.dump() + " describes more than 2^64 bytes");

  const nlohmann::json& offsets = value["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    throw fail("data_offsets " + offsets.dump() + " is not [begin, end] with non-negative integers");
  const std::uint64_t begin = offsets[0].get<std::uint64_t>();
  const std::uint64_t end = offsets[1].get<std::uint64_t>();
  if (end < begin) throw fail("data_offsets " + offsets.dump() + " end before they begin");
  if (end - begin != nbytes)
    throw fail("data_offsets " + offsets.dump() + " span " + std::to_string(end - begin) +
               " bytes, but shape " + shape.dump() + " of " + known->name + " needs " +
               std::to_string(nbytes));
  return {key, known->dtype, Shape(std::move(dims)), begin, end};
}

Header read_header(detail::InputFile& file) {
  auto fail = [&](const std::string& problem) {
    return detail::file_error(file.op(), file.path(), problem);
  };
  const std::uint64_t size = file.size();
  if (size < 8)
    throw fail("truncated: the file has " + std::to_string(size) +
               " bytes, fewer than the 8-byte header length that starts a safetensors file");
  std::array<unsigned char, 8> prefix{};
  file.read_at(0, std::as_writable_bytes(std::span(prefix)));
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[static_cast<std::size_t>(i)];
  if (n > size - 8)
    throw fail("truncated or not a safetensors file: the header length " + std::to_string(n) +
               " exceeds the " + std::to_string(size - 8) + " bytes after the length prefix");

  std::string text(static_cast<std::size_t>(n), '\0');
  file.read_at(8, std::as_writable_bytes(std::span(text)));
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw fail("the " + std::to_string(n) + "-byte header is not valid JSON (" + e.what() + ")");
  }
  if (!json.is_object()) throw fail("the header is " + std::string(json.type_name()) + ", not a JSON object");

  Header header;
  header.data_start = 8 + n;
  for (const auto& [key, value] : json.items()) {
    if (key != kMetadataKey) {
      header.entries.push_back(parse_entry(key, value, file));
      continue;
    }
    if (!value.is_object())
      throw fail("\"__metadata__\" is " + std::string(value.type_name()) +
                 "; expected an object mapping strings to strings");
    for (const auto& [k, v] : value.items()) {
      if (!v.is_string())
        throw fail("\"__metadata__\" maps " + detail::quoted(k) + " to " + v.dump() +
                   "; metadata values must be strings");
      header.metadata.emplace(k, v.get<std::string>());
    }
  }

  // The tensors must tile the data section: sorted by offset, each begins where the last ended,
  // and the last ends where the file does.
  const std::uint64_t data_size = size - header.data_start;
  std::vector<const Entry*> sorted;
  for (const Entry& e : header.entries) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  std::uint64_t expected = 0;
  const Entry* previous = nullptr;
  for (const Entry* e : sorted) {
    const std::string name = "tensor " + detail::quoted(e->key) + " (data bytes " + range(e->begin, e->end) + ")";
    if (e->begin < expected)
      throw fail(name + " overlaps tensor " + detail::quoted(previous->key) + " (data bytes " +
                 range(previous->begin, previous->end) + ")");
    if (e->begin > expected)
      throw fail("data bytes " + range(expected, e->begin) +
                 " belong to no tensor; tensors must be contiguous");
    if (e->end > data_size)
      throw fail("truncated: " + name + " ends past the data section's " +
                 std::to_string(data_size) + " bytes");
    expected = e->end;
    previous = e;
  }
  if (expected < data_size)
    throw fail(std::to_string(data_size - expected) + " bytes of trailing data after the last tensor, which ends at data byte " +
               std::to_string(expected));
  return header;
}

}  // namespace

void save_safetensors(const std::string& path, const Tree& tree,
                      const std::map<std::string, std::string>& metadata) {
  auto fail = [&](const std::string& problem) { return detail::file_error(kSaveOp, path, problem); };
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::uint64_t offset = 0;
  for (const auto& [key, leaf] : tree) {
    if (key == kMetadataKey) throw fail("the key \"__metadata__\" is reserved for the metadata");
    if (leaf.device().kind != DeviceKind::cpu)
      throw fail("leaf " + detail::quoted(key) + " is on " + leaf.device().to_string() +
                 "; copy it to a cpu device first");
    header[key] = {{"dtype", safetensors_name(leaf.dtype())},
                   {"shape", leaf.shape().dims()},
                   {"data_offsets", {offset, offset + leaf.nbytes()}}};
    offset += leaf.nbytes();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {  // a key or metadata that is not UTF-8
    throw fail(std::string("cannot write the header as JSON (") + e.what() + ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  write_file_atomically(path, kSaveOp, [&](AtomicFile& out) {
    std::array<unsigned char, 8> prefix{};
    for (std::size_t i = 0; i < 8; ++i) prefix[i] = static_cast<unsigned char>(text.size() >> (8 * i));
    out.write(std::as_bytes(std::span(prefix)));
    out.write(std::as_bytes(std::span(text)));
    for (const auto& [key, leaf] : tree) out.write(leaf.bytes());
  });
}

Tree load_safetensors(const std::string& path) {
  detail::InputFile file(path, kLoadOp);
  const Header header = read_header(file);
  Tree tree;
  for (const Entry& e : header.entries) {
    Array a = Array::empty(e.shape, e.dtype);
    file.read_at(header.data_start + e.begin, a.bytes());
    if (e.dtype == DType::bool_) {
      const auto bytes = a.bytes();
      for (std::size_t i = 0; i < bytes.size(); ++i)
        if (bytes[i] != std::byte{0} && bytes[i] != std::byte{1})
          throw detail::file_error(kLoadOp, path,
                                   "tensor " + detail::quoted(e.key) + " (BOOL) holds byte " +
                                       std::to_string(static_cast<int>(bytes[i])) + " at element " +
                                       std::to_string(i) + "; BOOL elements must be 0 or 1");
    }
    tree.set(e.key, std::move(a));
  }
  return tree;
}

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  detail::InputFile file(path, "load_safetensors_metadata");
  return read_header(file).metadata;
}

}  // namespace datarax::io
