// Naive references for the convolution and pooling tests: plain loops in double over NHWC arrays,
// with the SAME/VALID arithmetic written out here from TensorFlow's rule (not taken from the code
// under test).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace datarax::nn::test {

// Output extent and padding before, for one spatial dimension.
struct Dim {
  std::int64_t out, pad_before;
};
inline Dim same_or_valid(bool same, std::int64_t in, std::int64_t k, std::int64_t stride) {
  if (!same) return {(in - k) / stride + 1, 0};
  const std::int64_t out = (in + stride - 1) / stride;
  const std::int64_t total = std::max<std::int64_t>((out - 1) * stride + k - in, 0);
  return {out, total / 2};
}

struct ConvCase {
  std::int64_t N, H, W, C, KH, KW, O, SH, SW;
  bool same;
};

// y[n, oh, ow, o] = bias[o] + Σ x[n, oh·sh − pt + kh, ow·sw − pl + kw, c] · k[kh, kw, c, o]
inline std::vector<double> naive_conv2d(const ConvCase& t, const std::vector<double>& x, const std::vector<double>& k,
                                        const std::vector<double>& bias) {
  const Dim h = same_or_valid(t.same, t.H, t.KH, t.SH), w = same_or_valid(t.same, t.W, t.KW, t.SW);
  std::vector<double> y(static_cast<std::size_t>(t.N * h.out * w.out * t.O));
  for (std::int64_t n = 0; n < t.N; ++n)
    for (std::int64_t oh = 0; oh < h.out; ++oh)
      for (std::int64_t ow = 0; ow < w.out; ++ow)
        for (std::int64_t o = 0; o < t.O; ++o) {
          double s = bias.empty() ? 0.0 : bias[static_cast<std::size_t>(o)];
          for (std::int64_t kh = 0; kh < t.KH; ++kh)
            for (std::int64_t kw = 0; kw < t.KW; ++kw)
              for (std::int64_t c = 0; c < t.C; ++c) {
                const std::int64_t ih = oh * t.SH - h.pad_before + kh, iw = ow * t.SW - w.pad_before + kw;
                if (ih < 0 || ih >= t.H || iw < 0 || iw >= t.W) continue;
                s += x[static_cast<std::size_t>(((n * t.H + ih) * t.W + iw) * t.C + c)] *
                     k[static_cast<std::size_t>(((kh * t.KW + kw) * t.C + c) * t.O + o)];
              }
          y[static_cast<std::size_t>(((n * h.out + oh) * w.out + ow) * t.O + o)] = s;
        }
  return y;
}

struct PoolCase {
  std::int64_t N, H, W, C, KH, KW, SH, SW;
  bool same;
};

// "N2 H5 W7 C3 window 3x3 s1,2 SAME" (and " O4" for a convolution), for SCOPED_TRACE.
inline std::string describe(std::int64_t N, std::int64_t H, std::int64_t W, std::int64_t C, std::int64_t KH,
                            std::int64_t KW, std::int64_t SH, std::int64_t SW, bool same) {
  const auto s = [](std::int64_t v) { return std::to_string(v); };
  return "N" + s(N) + " H" + s(H) + " W" + s(W) + " C" + s(C) + " window " + s(KH) + "x" + s(KW) + " s" + s(SH) +
         "," + s(SW) + (same ? " SAME" : " VALID");
}
inline std::string describe(const ConvCase& t) {
  return describe(t.N, t.H, t.W, t.C, t.KH, t.KW, t.SH, t.SW, t.same) + " O" + std::to_string(t.O);
}
inline std::string describe(const PoolCase& t) { return describe(t.N, t.H, t.W, t.C, t.KH, t.KW, t.SH, t.SW, t.same); }

// Max over the window's real elements (padding is -inf), or their sum divided by the window size
// (count_include_pad) or by their number.
inline std::vector<double> naive_pool(const PoolCase& t, const std::vector<double>& x, bool max,
                                      bool count_include_pad = true) {
  const Dim h = same_or_valid(t.same, t.H, t.KH, t.SH), w = same_or_valid(t.same, t.W, t.KW, t.SW);
  std::vector<double> y(static_cast<std::size_t>(t.N * h.out * w.out * t.C));
  for (std::int64_t n = 0; n < t.N; ++n)
    for (std::int64_t oh = 0; oh < h.out; ++oh)
      for (std::int64_t ow = 0; ow < w.out; ++ow)
        for (std::int64_t c = 0; c < t.C; ++c) {
          double best = -std::numeric_limits<double>::infinity(), sum = 0;
          int count = 0;
          for (std::int64_t kh = 0; kh < t.KH; ++kh)
            for (std::int64_t kw = 0; kw < t.KW; ++kw) {
              const std::int64_t ih = oh * t.SH - h.pad_before + kh, iw = ow * t.SW - w.pad_before + kw;
              if (ih < 0 || ih >= t.H || iw < 0 || iw >= t.W) continue;
              const double v = x[static_cast<std::size_t>(((n * t.H + ih) * t.W + iw) * t.C + c)];
              best = std::max(best, v);
              sum += v;
              ++count;
            }
          y[static_cast<std::size_t>(((n * h.out + oh) * w.out + ow) * t.C + c)] =
              max ? best : sum / (count_include_pad ? static_cast<double>(t.KH * t.KW) : count);
        }
  return y;
}

}  // namespace datarax::nn::test
