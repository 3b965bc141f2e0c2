// Cnn (models/cnn.h).
#include "datarax/nn/models/cnn.h"

#include <string>

#include "datarax/error.h"
#include "datarax/nn/ops/elementwise.h"
#include "datarax/nn/ops/reshape.h"

namespace datarax::nn {

namespace {

// The checked config, and the flattened size: each 2x2 stride-2 VALID pool halves, rounding down.
const CnnConfig& checked(const CnnConfig& c) {
  const auto bad = [](const char* name, std::int64_t v, const char* range) {
    throw InvalidArgumentError("Cnn: " + std::string(name) + " = " + std::to_string(v) + "; " + range);
  };
  if (c.height < 4) bad("height", c.height, "must be >= 4 (two 2x2 pools)");
  if (c.width < 4) bad("width", c.width, "must be >= 4 (two 2x2 pools)");
  if (c.channels < 1) bad("channels", c.channels, "must be >= 1");
  if (c.conv_0_features < 1) bad("conv_0_features", c.conv_0_features, "must be >= 1");
  if (c.conv_1_features < 1) bad("conv_1_features", c.conv_1_features, "must be >= 1");
  if (c.hidden < 1) bad("hidden", c.hidden, "must be >= 1");
  if (c.classes < 1) bad("classes", c.classes, "must be >= 1");
  return c;
}

}  // namespace

Cnn::Cnn(CnnConfig config)
    : config_(checked(config)),
      flat_((config.height / 2 / 2) * (config.width / 2 / 2) * config.conv_1_features),
      conv_0_(*this, "conv_0", config.channels, config.conv_0_features, {3, 3}, {.relu = true, .max_pool = {2, 2}}),
      conv_1_(*this, "conv_1", config.conv_0_features, config.conv_1_features, {3, 3}, {.relu = true, .max_pool = {2, 2}}),
      dense_0_(*this, "dense_0", flat_, config.hidden, column_parallel()),
      dense_1_(*this, "dense_1", config.hidden, config.classes, row_parallel()) {}

// Each convolution applies its ReLU and its 2x2 max pool itself (fused: the same values and
// gradients as max_pool(relu(conv(x)), {2, 2}, {2, 2}), without the unpooled activations, the
// largest of the step, ever reaching memory).
Var Cnn::operator()(const VarTree& p, Var images) const {
  Var x = conv_1_(p, conv_0_(p, images));
  return dense_1_(p, relu(dense_0_(p, flatten(x))));
}

}  // namespace datarax::nn
