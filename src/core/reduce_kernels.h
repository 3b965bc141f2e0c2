// Element-wise reduction of several equally long source buffers, in source order.
//
// The loops are written so the compiler vectorizes them (restrict pointers, a fixed-size
// accumulator that lives in L1). 16-bit floats accumulate in f32 and round once at the end, so
// the result does not depend on how the work was split.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "datarax/dtype.h"
#include "datarax/reduce_op.h"

namespace datarax::detail {

template <class T>
using accumulator_t =
    std::conditional_t<std::is_same_v<T, bfloat16> || std::is_same_v<T, float16>, float, T>;

inline constexpr std::int64_t kReduceChunk = 2048;  // elements per pass: 8 KiB of f32 accumulator

template <class A>
inline void combine(A* __restrict acc, const A* __restrict src, std::int64_t n, ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
    case ReduceOp::mean:
      for (std::int64_t i = 0; i < n; ++i) acc[i] += src[i];
      break;
    case ReduceOp::max:
      for (std::int64_t i = 0; i < n; ++i) acc[i] = acc[i] < src[i] ? src[i] : acc[i];
      break;
    case ReduceOp::min:
      for (std::int64_t i = 0; i < n; ++i) acc[i] = src[i] < acc[i] ? src[i] : acc[i];
      break;
  }
}

// For every chunk of [begin, end): acc = srcs[0] op srcs[1] op ... (in that order), then
// (for mean) acc /= nsrc, then emit(offset, acc, length) to write the result wherever it goes.
// T is the element type; bool reduces as u8 (sum saturates to true, i.e. logical or).
template <class T, class Emit>
void reduce_range(const T* const* srcs, int nsrc, std::int64_t begin, std::int64_t end, ReduceOp op,
                  Emit&& emit) {
  using A = accumulator_t<T>;
  alignas(64) A acc[kReduceChunk];
  alignas(64) A tmp[kReduceChunk];
  for (std::int64_t off = begin; off < end; off += kReduceChunk) {
    const std::int64_t n = std::min(kReduceChunk, end - off);
    if constexpr (std::is_same_v<A, T>) {
      std::copy_n(srcs[0] + off, n, acc);
      for (int k = 1; k < nsrc; ++k) combine(acc, srcs[k] + off, n, op);
    } else {
      for (std::int64_t i = 0; i < n; ++i) acc[i] = static_cast<A>(srcs[0][off + i]);
      for (int k = 1; k < nsrc; ++k) {
        for (std::int64_t i = 0; i < n; ++i) tmp[i] = static_cast<A>(srcs[k][off + i]);
        combine(acc, tmp, n, op);
      }
    }
    if (op == ReduceOp::mean) {
      if constexpr (std::is_floating_point_v<A>) {
        const A d = static_cast<A>(nsrc);
        for (std::int64_t i = 0; i < n; ++i) acc[i] /= d;
      }
    }
    emit(off, static_cast<const A*>(acc), n);
  }
}

// Writes n accumulated values to dst (converting 16-bit floats back).
template <class T, class A>
inline void store(T* __restrict dst, const A* __restrict acc, std::int64_t n) {
  if constexpr (std::is_same_v<A, T>)
    std::copy_n(acc, n, dst);
  else
    for (std::int64_t i = 0; i < n; ++i) dst[i] = T(acc[i]);
}

}  // namespace datarax::detail
