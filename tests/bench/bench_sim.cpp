// One training step of the simulator per named recipe (Google Benchmark): the MLP
// 784-256-256-10 (and the CNN) on a batch of 128 synthetic images, one thread, with the
// quantization statistics gathered on every step (stats/) or not (nostats/; the
// simulator's --stats-every 0). Each recipe reports
// `vs_fp32`, its time per step over the fp32 recipe's measured earlier in the same run
// (the fp32 benchmark is registered first). The target for FP8 recipes is at most 2.
//   build/tests/bench/fp8sim_bench [--benchmark_filter=...] [--benchmark_repetitions=5]
#include <benchmark/benchmark.h>

#include <chrono>
#include <map>
#include <string>

#include "fp8emu/random.hpp"
#include "fashion_mnist/models.hpp"
#include "fp8sim/train.hpp"

namespace {

// Synthetic data shaped as Fashion-MNIST (the benchmark must not need the package).
fp8sim::Dataset synthetic(std::int64_t n) {
  fp8sim::Dataset d;
  d.count = n;
  d.rows = d.cols = 28;
  d.classes = 10;
  d.x.resize(std::size_t(n * 784));
  d.y.resize(std::size_t(n));
  const fp8emu::RandomKey k = fp8emu::random_key(7, 0);
  for (std::size_t i = 0; i < d.x.size(); ++i) d.x[i] = float(fp8emu::random_bits(k, i) >> 24) / 255.0f;
  for (std::size_t i = 0; i < d.y.size(); ++i) d.y[i] = std::uint8_t(fp8emu::random_bits(k, d.x.size() + i) % 10);
  return d;
}

std::map<std::string, double> seconds_per_step;

void BM_step(benchmark::State& st, std::string recipe, std::string model, bool stats) {
  static const fp8sim::Dataset data = synthetic(1024);
  fp8sim::RunConfig c;
  c.recipe = fp8sim::named_recipe(recipe);
  c.model = model;
  c.exec.threads = 1;
  c.stats_every = stats ? 1 : 0;
  fp8sim::Run run(c, fashion_mnist::make_model(model, data, c.seed), data, data);
  const std::int64_t B = 128;
  fp8sim::Tensor x;
  x.reshape({B, 784});
  std::int64_t batch = 0, steps = 0;
  double total = 0;
  for (auto _ : st) {
    const std::int64_t first = (batch++ % 8) * B;
    std::copy(data.x.begin() + first * 784, data.x.begin() + (first + B) * 784, x.data.begin());
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(run.train_step(x, data.y.data() + first));
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++steps;
  }
  const double per_step = total / double(steps);
  st.counters["ms_per_step"] = per_step * 1e3;
  if (recipe == "fp32") seconds_per_step[model + (stats ? "s" : "n")] = per_step;
  else if (seconds_per_step.count(model + (stats ? "s" : "n"))) st.counters["vs_fp32"] = per_step / seconds_per_step[model + (stats ? "s" : "n")];
}

const int registered = [] {
  for (const char* model : {"mlp", "cnn"})
    for (bool stats : {true, false})
      for (auto name : fp8sim::recipe_names())
        benchmark::RegisterBenchmark(
            ("BM_step/" + std::string(model) + (stats ? "/stats/" : "/nostats/") + std::string(name)).c_str(), BM_step,
            std::string(name), std::string(model), stats)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
