// Padding of a sliding window (conv2d, max_pool, avg_pool), with TensorFlow's and Flax's rules.
//
//   valid: no padding; out = floor((in - k) / stride) + 1, which needs k <= in.
//   same:  out = ceil(in / stride); pad_total = max((out - 1) · stride + k - in, 0), of which
//          pad_total / 2 goes before and the rest (one more when it is odd) after.
#pragma once

#include <string_view>

namespace datarax::nn {

enum class Padding : unsigned char { same, valid };

std::string_view to_string(Padding padding);

}  // namespace datarax::nn
