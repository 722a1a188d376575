// The networks of the Fashion-MNIST study, built from fp8sim's layers and sized from the
// data set: "mlp" (features-256-256-classes with ReLU), "mlp-ln" (the same with LayerNorm
// and GELU), "cnn" (conv 1->16 k3 p1, ReLU, max-pool 2, conv 16->32 k3 p1, ReLU, max-pool
// 2, flatten, linear to the classes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fp8sim/train.hpp"

namespace fashion_mnist {

/// Returns the model names ("mlp", "mlp-ln", "cnn").
std::vector<std::string> model_kinds();

/// Returns the network `kind` for examples and classes of `data`, initialised from
/// `seed`; throws std::invalid_argument for an unknown kind or a data set without
/// examples' shape or classes.
fp8sim::Model make_model(const std::string& kind, const fp8sim::Dataset& data, std::uint64_t seed);

}  // namespace fashion_mnist
