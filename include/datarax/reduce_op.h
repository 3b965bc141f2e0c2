// ReduceOp: how a collective combines values from several devices.
#pragma once

#include <string_view>

namespace datarax {

enum class ReduceOp : unsigned char { sum, mean, max, min };

std::string_view to_string(ReduceOp op);  // "sum", "mean", "max", "min"

// Parses "sum", "mean", "max", "min" in any case; anything else throws InvalidArgumentError
// naming `op` (the calling operation), the value and the valid names.
ReduceOp parse_reduce_op(std::string_view name, std::string_view op = "parse_reduce_op");

}  // namespace datarax
