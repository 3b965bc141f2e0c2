// window_2d (window.h) and to_string(Padding) (ops/padding.h).
#include "nn/ops/window.h"

#include <algorithm>
#include <string>

#include "nn/ops/dispatch.h"

namespace datarax::nn {

std::string_view to_string(Padding padding) {
  switch (padding) {
    case Padding::same: return "SAME";
    case Padding::valid: return "VALID";
  }
  return "unknown";
}

namespace detail {

namespace {
std::string pair(std::array<std::int64_t, 2> v) {
  return "(" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + ")";
}
}  // namespace

Window2d window_2d(std::string_view what, std::string_view window_name, const Shape& x,
                   std::array<std::int64_t, 2> window, std::array<std::int64_t, 2> strides, Padding padding) {
  if (x.rank() != 4)
    fail(what, "the input has shape " + x.to_string() + "; it needs 4 dimensions [N, H, W, C] (NHWC)");
  if (x[1] < 1 || x[2] < 1 || x[3] < 1)
    fail(what, "the input has shape " + x.to_string() + "; H, W and C must be >= 1");
  if (window[0] < 1 || window[1] < 1)
    fail(what, std::string(window_name) + " size " + pair(window) + "; each extent must be >= 1");
  if (strides[0] < 1 || strides[1] < 1) fail(what, "strides " + pair(strides) + "; each stride must be >= 1");
  if (padding != Padding::same && padding != Padding::valid)
    fail(what, "padding " + std::to_string(static_cast<int>(padding)) + "; valid: SAME, VALID");
  Window2d g{.N = x[0], .H = x[1], .W = x[2], .C = x[3], .KH = window[0], .KW = window[1], .SH = strides[0],
             .SW = strides[1], .OH = 0, .OW = 0, .pad_top = 0, .pad_left = 0};
  if (padding == Padding::valid) {
    if (g.KH > g.H || g.KW > g.W)
      fail(what, "VALID padding with a " + std::string(window_name) + " of " + pair(window) + " on an input of " +
                     pair({g.H, g.W}) + " (H, W): the " + std::string(window_name) +
                     " must fit, each extent <= the input's");
    g.OH = (g.H - g.KH) / g.SH + 1;
    g.OW = (g.W - g.KW) / g.SW + 1;
  } else {
    g.OH = (g.H + g.SH - 1) / g.SH;
    g.OW = (g.W + g.SW - 1) / g.SW;
    g.pad_top = std::max<std::int64_t>((g.OH - 1) * g.SH + g.KH - g.H, 0) / 2;
    g.pad_left = std::max<std::int64_t>((g.OW - 1) * g.SW + g.KW - g.W, 0) / 2;
  }
  return g;
}

}  // namespace detail
}  // namespace datarax::nn
