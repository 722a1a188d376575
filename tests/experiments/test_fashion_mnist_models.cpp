// The study's networks take their sizes from the data set: logits of one per class, for
// images of any size the pools can halve twice.
#include <catch2/catch.hpp>
#include <stdexcept>

#include "fashion_mnist/models.hpp"
#include "fp8sim/recipe.hpp"

namespace {

fp8sim::Dataset shaped(std::int64_t rows, std::int64_t cols, int classes) {
  fp8sim::Dataset d;
  d.count = 4;
  d.rows = rows;
  d.cols = cols;
  d.classes = classes;
  return d;
}

}  // namespace

TEST_CASE("the study's models are sized from the data set") {
  const fp8sim::Dataset d = shaped(12, 8, 3);
  for (const std::string& kind : fashion_mnist::model_kinds()) {
    INFO(kind);
    fp8sim::Model m = fashion_mnist::make_model(kind, d, 1);
    fp8sim::Tensor x;
    x.reshape({2, d.features()});
    for (std::size_t i = 0; i < x.data.size(); ++i) x.data[i] = float(i % 7) / 7.0f;
    const fp8sim::Recipe r = fp8sim::named_recipe("fp8-hybrid-current");
    fp8sim::StepContext ctx;
    ctx.recipe = &r;
    ctx.exec.threads = 1;
    const fp8sim::Tensor& y = m.forward(x, ctx);
    REQUIRE(y.shape.size() == 2);
    CHECK(y.dim(0) == 2);
    CHECK(y.dim(1) == 3);
  }
  CHECK(fashion_mnist::make_model("mlp", shaped(28, 28, 10), 1).description() ==
        "linear0 784->256, relu, linear1 256->256, relu, linear2 256->10");
  CHECK_THROWS_AS(fashion_mnist::make_model("cnn", shaped(3, 3, 2), 1), std::invalid_argument);
  CHECK_THROWS_AS(fashion_mnist::make_model("mlp", shaped(0, 0, 10), 1), std::invalid_argument);
  CHECK_THROWS_AS(fashion_mnist::make_model("rnn", d, 1), std::invalid_argument);
}
