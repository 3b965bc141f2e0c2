// IDX: the file format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/).
//
// An IDX file is a 4-byte magic `00 00 <type> <rank>`, then `rank` big-endian u32 dimensions,
// then the elements, row-major and big-endian. The files are usually distributed gzip-compressed
// (`train-images-idx3-ubyte.gz`); read_idx takes either form and tells them apart by content
// (gzip's 1f 8b magic), not by file name.
#pragma once

#include <string>

#include "datarax/array.h"

namespace datarax::io {

// The largest rank read_idx accepts. MNIST uses 1 (labels) and 3 (images).
inline constexpr int kMaxIdxRank = 8;

// Reads an IDX file, raw or gzip-compressed, into a new Array (on cpu:0) with the file's
// dimensions. Element types: 0x08 unsigned byte → u8 (MNIST's), 0x0C int32 → i32, 0x0D float32
// → f32, 0x0E float64 → f64; 0x09 (i8) and 0x0B (i16) have no datarax dtype and are rejected.
//
// The file must be exactly a header plus dims × element size bytes of data: a file that is
// truncated (in the header or the data), longer than its header says, corrupt as gzip, or with a
// bad magic, unknown type or a rank outside 1..kMaxIdxRank throws InvalidArgumentError naming
// read_idx, the file and what is wrong (with the sizes involved).
Array read_idx(const std::string& path);

}  // namespace datarax::io
