// The study's networks (see models.hpp).
#include "fashion_mnist/models.hpp"

#include <memory>
#include <stdexcept>

namespace fashion_mnist {

using fp8sim::Layer;

std::vector<std::string> model_kinds() { return {"mlp", "mlp-ln", "cnn"}; }

fp8sim::Model make_model(const std::string& kind, const fp8sim::Dataset& data, std::uint64_t seed) {
  if (data.rows < 1 || data.cols < 1 || data.classes < 1)
    throw std::invalid_argument("the data set gives no example shape or classes");
  const std::int64_t features = data.features(), classes = data.classes;
  std::vector<std::unique_ptr<Layer>> layers;
  if (kind == "mlp" || kind == "mlp-ln") {
    const bool ln = kind == "mlp-ln";
    layers.push_back(std::make_unique<fp8sim::Linear>(0, features, 256));
    if (ln) layers.push_back(std::make_unique<fp8sim::LayerNorm>(256));
    layers.push_back(ln ? std::unique_ptr<Layer>(std::make_unique<fp8sim::GELU>())
                        : std::make_unique<fp8sim::ReLU>());
    layers.push_back(std::make_unique<fp8sim::Linear>(1, 256, 256));
    if (ln) layers.push_back(std::make_unique<fp8sim::LayerNorm>(256));
    layers.push_back(ln ? std::unique_ptr<Layer>(std::make_unique<fp8sim::GELU>())
                        : std::make_unique<fp8sim::ReLU>());
    layers.push_back(std::make_unique<fp8sim::Linear>(2, 256, classes));
    return fp8sim::Model(std::move(layers), {features}, seed);
  }
  if (kind == "cnn") {
    // Two 3 x 3 convolutions of padding 1 keep the size; each max-pool halves it (floor).
    const std::int64_t h = data.rows / 2 / 2, w = data.cols / 2 / 2;
    if (h < 1 || w < 1) throw std::invalid_argument("the cnn needs images of at least 4 x 4");
    layers.push_back(std::make_unique<fp8sim::Conv2d>(0, 1, 16, 3, 1, 1));
    layers.push_back(std::make_unique<fp8sim::ReLU>());
    layers.push_back(std::make_unique<fp8sim::MaxPool2d>(2));
    layers.push_back(std::make_unique<fp8sim::Conv2d>(1, 16, 32, 3, 1, 1));
    layers.push_back(std::make_unique<fp8sim::ReLU>());
    layers.push_back(std::make_unique<fp8sim::MaxPool2d>(2));
    layers.push_back(std::make_unique<fp8sim::Flatten>());
    layers.push_back(std::make_unique<fp8sim::Linear>(2, 32 * h * w, classes));
    return fp8sim::Model(std::move(layers), {1, data.rows, data.cols}, seed);
  }
  throw std::invalid_argument("unknown model '" + kind + "' (mlp, mlp-ln, cnn)");
}

}  // namespace fashion_mnist
