// The activations a built-in model can be configured with, by name (the ops are
// nn/ops/elementwise.h's relu and gelu).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace datarax::nn {

enum class Activation : std::uint8_t { relu, gelu };

std::string_view to_string(Activation activation);  // "relu", "gelu"
// Parses the names to_string gives; anything else throws InvalidArgumentError listing them.
Activation parse_activation(std::string_view name);

}  // namespace datarax::nn
