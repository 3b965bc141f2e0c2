// Safetensors: a Tree in a file, in the format of Hugging Face's safetensors
// (https://github.com/huggingface/safetensors), readable by its Python and Rust libraries.
//
// Layout: an 8-byte little-endian header length N; N bytes of JSON
//   {"__metadata__": {"k": "v", ...},
//    "<key>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// padded with spaces to a multiple of 8; then the data: each tensor's elements row-major and
// little-endian, at bytes [begin, end) of the data section. Keys are the Tree's key paths
// ("params/dense_0/kernel"). dtypes: F32 F64 BF16 F16 I32 I64 U8 BOOL (datarax's eight).
#pragma once

#include <map>
#include <string>

#include "datarax/tree.h"

namespace datarax::io {

// Writes `tree` (and `metadata`, string to string) to `path`, atomically: the data goes to a
// temporary file in the same directory, which is fsynced and renamed over `path`, so `path` holds
// either its old content or the complete new file, never a part. On failure (an unwritable
// directory, a full disk) it throws InvalidArgumentError naming save_safetensors, the file and
// the OS's reason; `path` is left as it was and the temporary file is removed. Tensors are written
// in key order, one after another. Every leaf must be on a cpu device; the key "__metadata__" is
// reserved.
void save_safetensors(const std::string& path, const Tree& tree,
                      const std::map<std::string, std::string>& metadata = {});

// Reads a safetensors file into a new Tree (on cpu:0). Validates everything before trusting it:
// the header length lies within the file, the header is a JSON object, every entry has a known
// dtype, a shape of non-negative integers and data_offsets [begin, end] with
// end - begin == shape × dtype size, the tensors tile the data section exactly (no overlap, no
// gap, nothing after the last one), keys are valid key paths, BOOL bytes are 0 or 1. Any
// violation — a truncated or corrupt file — throws InvalidArgumentError naming load_safetensors,
// the file and the problem.
Tree load_safetensors(const std::string& path);

// The "__metadata__" of a safetensors file (empty if it has none), reading only the header; the
// header is validated as by load_safetensors.
std::map<std::string, std::string> load_safetensors_metadata(const std::string& path);

}  // namespace datarax::io
