// The geometry of a 2-D sliding window over an NHWC input, shared by conv2d and the pooling ops:
// output extents and pads after padding.h's rules, every argument checked with the op's name.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "datarax/nn/ops/padding.h"
#include "datarax/shape.h"

namespace datarax::nn::detail {

struct Window2d {
  std::int64_t N, H, W, C;  // input [N, H, W, C]
  std::int64_t KH, KW;      // window
  std::int64_t SH, SW;      // strides
  std::int64_t OH, OW;      // output [N, OH, OW, ·]
  std::int64_t pad_top, pad_left;

  // Window positions kh in [kh_lo, kh_hi) of output row oh fall inside the image (likewise kw).
  std::int64_t first_row(std::int64_t oh) const { return oh * SH - pad_top; }
  std::int64_t first_col(std::int64_t ow) const { return ow * SW - pad_left; }
};

// `what` names the op and `window_name` the window ("kernel", "window") in messages. x must be
// [N, H, W, C] with H, W, C >= 1 (N may be 0); window and strides >= 1; VALID needs the window to
// fit in the input.
Window2d window_2d(std::string_view what, std::string_view window_name, const Shape& x,
                   std::array<std::int64_t, 2> window, std::array<std::int64_t, 2> strides, Padding padding);

}  // namespace datarax::nn::detail
