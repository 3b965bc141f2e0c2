// conv2d's fused max pool (Conv2dOptions::max_pool): the pooling of one pooled line of the
// convolution's output while it is in cache, and the spreading of its gradient back, in f32 (with
// AVX-512 where the CPU has it) and f64.
#pragma once

#include <cstdint>

namespace datarax::nn::detail {

// A max pool fused after a convolution: windows PH x PW with the same strides, VALID, over the
// convolution's output [N, OH, OW, O], giving [N, QH, QW, O] with QH = OH / PH and QW = OW / PW.
// The forward saves per output element the position of its window's maximum (kh · PW + kw, the
// first on ties) in one byte. PH = PW = 1 is no pool (conv2d then passes {1, 1, OH, OW}).
struct FusedPool {
  std::int64_t PH = 1, PW = 1, QH = 0, QW = 0;
  bool on() const { return PH * PW > 1; }
};

// arg buffers must have kArgSlack bytes after their last element: the AVX-512 kernels read 16
// bytes at a time whatever the channels left (AVX-512F has no masked byte load), the direct
// backward (conv_direct.cc) two such loads from a 32-channel block's start: up to 31 bytes past
// an element.
constexpr std::int64_t kArgSlack = 32;

// One pooled line: y [PH rows, OW, O] are the convolution's outputs (before bias); out [QW, O] =
// the max over each window of y + b (b may be null), then max(·, 0) when relu; arg [QW, O] the
// maximum's position. The same values as max_pool's forward on relu's output: the ReLU is
// monotonic, so it commutes with the max.
void pool_line(const FusedPool& p, std::int64_t OW, std::int64_t O, const float* y, const float* b, bool relu,
               float* out, std::uint8_t* arg);
void pool_line(const FusedPool& p, std::int64_t OW, std::int64_t O, const double* y, const double* b, bool relu,
               double* out, std::uint8_t* arg);

// Its gradient: g [PH rows, OW, O] = dout [QW, O] at each window's maximum where the pooled output
// out is > 0 when relu (the ReLU's derivative at 0 taken as 0), 0 everywhere else (written).
void unpool_line(const FusedPool& p, std::int64_t OW, std::int64_t O, const float* dout, const float* out,
                 const std::uint8_t* arg, bool relu, float* g);
void unpool_line(const FusedPool& p, std::int64_t OW, std::int64_t O, const double* dout, const double* out,
                 const std::uint8_t* arg, bool relu, double* g);

}  // namespace datarax::nn::detail
