// ReduceOp: how a collective combines values from several devices.
#pragma once

#include <initializer_list>
#include <string_view>

namespace datarax {

enum class ReduceOp : unsigned char { sum, mean, max, min };

std::string_view to_string(ReduceOp op);  // "sum", "mean", "max", "min"

// Parses a reduce op's name in any case ("mean", "SUM"), accepting the ops in `valid`; any other
// name throws InvalidArgumentError naming `op` (the calling operation), the value and the valid
// names: `all_reduce_gradients: unknown reduce op "max"; valid: mean, sum`. Allocates nothing
// unless it throws.
ReduceOp parse_reduce_op(std::string_view name, std::string_view op = "parse_reduce_op",
                         std::initializer_list<ReduceOp> valid = {ReduceOp::mean, ReduceOp::sum,
                                                                  ReduceOp::max, ReduceOp::min});

}  // namespace datarax
