// Small networks for the simulator's tests, built from fp8sim's layer list.
#pragma once

#include <memory>
#include <vector>

#include "fp8sim/train.hpp"

namespace test_models {

// The study's MLP: features-256-256-classes with ReLU.
inline fp8sim::Model mlp(const fp8sim::Dataset& d, std::uint64_t seed) {
  std::vector<std::unique_ptr<fp8sim::Layer>> l;
  l.push_back(std::make_unique<fp8sim::Linear>(0, d.features(), 256));
  l.push_back(std::make_unique<fp8sim::ReLU>());
  l.push_back(std::make_unique<fp8sim::Linear>(1, 256, 256));
  l.push_back(std::make_unique<fp8sim::ReLU>());
  l.push_back(std::make_unique<fp8sim::Linear>(2, 256, d.classes));
  return fp8sim::Model(std::move(l), {d.features()}, seed);
}

// The study's CNN: conv 1->16 k3 p1, ReLU, max-pool 2, conv 16->32 k3 p1, ReLU, max-pool 2,
// flatten, linear to the classes.
inline fp8sim::Model cnn(const fp8sim::Dataset& d, std::uint64_t seed) {
  std::vector<std::unique_ptr<fp8sim::Layer>> l;
  l.push_back(std::make_unique<fp8sim::Conv2d>(0, 1, 16, 3, 1, 1));
  l.push_back(std::make_unique<fp8sim::ReLU>());
  l.push_back(std::make_unique<fp8sim::MaxPool2d>(2));
  l.push_back(std::make_unique<fp8sim::Conv2d>(1, 16, 32, 3, 1, 1));
  l.push_back(std::make_unique<fp8sim::ReLU>());
  l.push_back(std::make_unique<fp8sim::MaxPool2d>(2));
  l.push_back(std::make_unique<fp8sim::Flatten>());
  l.push_back(std::make_unique<fp8sim::Linear>(2, 32 * (d.rows / 4) * (d.cols / 4), d.classes));
  return fp8sim::Model(std::move(l), {1, d.rows, d.cols}, seed);
}

}  // namespace test_models
