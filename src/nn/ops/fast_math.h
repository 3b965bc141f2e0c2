// exp and erfc in f32 as straight-line arithmetic, so that a loop calling them vectorizes (libm's
// expf and erff are one call per element); inline, for the DATARAX_CLONES loops of the ops that
// use them (attention's softmax, GELU; always inlined: GCC does not vectorize a clone's loop
// around a call it declined to inline). f64 code keeps std::exp and std::erf: the checking
// precision.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>

namespace datarax::nn::detail {

// exp(a) for a <= 88: Cephes' expf — range reduction by ln 2 in two parts, a degree-5
// polynomial, 2^n from the exponent bits; within 1 ulp of exp (0.99 at worst over 2^24 points of
// [−87, 0]). Below −87 (exp < 2^−126, outside f32's normal range) it gives exp(−87).
[[gnu::always_inline]] inline float exp_f32(float a) {
  a = std::max(a, -87.0f);
  const float t = a * 1.44269504088896341f + 12582912.0f;  // 1.5 · 2^23: round to an integer
  const float k = t - 12582912.0f;
  const float r = (a - k * 0.693359375f) + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const std::int32_t e = (std::bit_cast<std::int32_t>(t) - 0x4B400000 + 127) << 23;
  return p * std::bit_cast<float>(e);
}

// erfc(z) for z >= 0: t · exp(−z² + P(t)) with t = 1 / (1 + z/2), P a degree-9 polynomial fitted
// here (Chebyshev least squares, 400 nodes) to ln(erfc(z)) + z² − ln(t) over z in [0, 10]: within
// 4.8e-8 of it, so erfc within about 1e-7 relative, plus the f32 rounding of z² (6e-8 · z²
// relative). Where erfc(z) falls below f32's normal range (z > 9.2) the exponent is clamped at
// −87 and the result stays near 3e-39: an absolute error below 3e-39.
[[gnu::always_inline]] inline float erfc_f32(float z) {
  z = std::min(z, 10.0f);
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.14493021390727054f;
  p = p * t - 0.6808271788492064f;
  p = p * t + 1.1567337597583205f;
  p = p * t - 0.6962519025750142f;
  p = p * t - 0.08028042901950463f;
  p = p * t + 0.0012675846224486083f;
  p = p * t + 0.03460280061862702f;
  p = p * t + 0.38664041201673f;
  p = p * t + 0.9986327833540717f;
  p = p * t - 1.2654479969024615f;
  return t * exp_f32(p - z * z);
}

}  // namespace datarax::nn::detail
