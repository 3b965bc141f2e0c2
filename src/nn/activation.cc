#include "datarax/nn/activation.h"

#include <string>

#include "datarax/error.h"

namespace datarax::nn {

std::string_view to_string(Activation activation) {
  switch (activation) {
    case Activation::relu: return "relu";
    case Activation::gelu: return "gelu";
  }
  return "invalid";
}

Activation parse_activation(std::string_view name) {
  for (Activation a : {Activation::relu, Activation::gelu})
    if (to_string(a) == name) return a;
  throw InvalidArgumentError("parse_activation: unknown activation \"" + std::string(name) +
                             "\"; valid: relu, gelu");
}

}  // namespace datarax::nn
