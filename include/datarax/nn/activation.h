// Elementwise activations: ReLU and GELU, forward and backward side by side (llm.c style).
//
// Spans of N elements (any shape, flattened). Forward overwrites out; out may alias inp.
// Backward OVERWRITES dinp with dout · f'(inp); dinp may alias dout (in place), which is how the
// MLP keeps one gradient buffer per layer boundary. inp is forward's input (the pre-activation).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace datarax::nn {

enum class Activation : std::uint8_t { relu, gelu };

std::string_view to_string(Activation activation);  // "relu", "gelu"
// Parses the names to_string gives; anything else throws InvalidArgumentError listing them.
Activation parse_activation(std::string_view name);

// ReLU: out = max(inp, 0). The derivative at 0 is taken as 0.
void relu_forward(std::span<float> out, std::span<const float> inp);
void relu_forward(std::span<double> out, std::span<const double> inp);
// dinp = dout · [inp > 0]
void relu_backward(std::span<float> dinp, std::span<const float> dout, std::span<const float> inp);
void relu_backward(std::span<double> dinp, std::span<const double> dout,
                   std::span<const double> inp);

// GELU, the tanh approximation (Hendrycks & Gimpel; GPT-2's and jax.nn.gelu(approximate=True)'s):
//   out = 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
void gelu_forward(std::span<float> out, std::span<const float> inp);
void gelu_forward(std::span<double> out, std::span<const double> inp);
// dinp = dout · d/dx of the approximation above (not of the exact erf GELU)
void gelu_backward(std::span<float> dinp, std::span<const float> dout, std::span<const float> inp);
void gelu_backward(std::span<double> dinp, std::span<const double> dout,
                   std::span<const double> inp);

// The forward / backward of `activation`: one switch, written once.
void activation_forward(Activation activation, std::span<float> out, std::span<const float> inp);
void activation_forward(Activation activation, std::span<double> out,
                        std::span<const double> inp);
void activation_backward(Activation activation, std::span<float> dinp, std::span<const float> dout,
                         std::span<const float> inp);
void activation_backward(Activation activation, std::span<double> dinp,
                         std::span<const double> dout, std::span<const double> inp);

}  // namespace datarax::nn
