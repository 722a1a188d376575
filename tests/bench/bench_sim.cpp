// One training step of the simulator per named recipe (Google Benchmark).
//
// BM_step: the MLP 784-256-256-10 (and the CNN) on a batch of 128 synthetic images, one
// thread, with the quantization statistics gathered on every step (stats/) or not
// (nostats/; the simulator's --stats-every 0). Each recipe reports `vs_fp32`, its time per
// step over the fp32 recipe's measured earlier in the same run (the fp32 benchmark is
// registered first). The target for FP8 recipes is at most 2.
//
// BM_lm_step/<recipe>/threads:T: one step of the language-model run (LmRun) of the default
// GPT (4 layers, 4 heads, 128 wide, context 64, batch 12, a vocabulary of 73 tokens, the
// King James Bible's character count) on synthetic tokens, on T threads: the batch, the
// forward and backward pass, the gradient norm and clipping, the AdamW update and the
// quantization statistics (gathered every step, LmConfig's default). Each benchmark
// iteration is one train_until_eval of one step, timed up to its progress callback (the
// evaluation that follows is not timed). `vs_fp32` is over the fp32 step at the same
// thread count. tests/bench/lm_step_compare.sh runs these beside PyTorch's float32 step of
// the same model (tests/bench/torch_gpt_step.py).
//   build/tests/bench/fp8sim_bench [--benchmark_filter=...] [--benchmark_repetitions=5]
#include <benchmark/benchmark.h>

#include <chrono>
#include <map>
#include <string>

#include "fp8emu/random.hpp"
#include "fashion_mnist/models.hpp"
#include "fp8sim/lm.hpp"
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

// Synthetic text for the language model: tokens 0 .. vocab - 1 drawn uniformly.
fp8sim::TokenSplit synthetic_tokens(std::int64_t vocab, std::int64_t train, std::int64_t val) {
  fp8sim::TokenSplit d;
  d.vocab = vocab;
  const fp8emu::RandomKey k = fp8emu::random_key(7, 1);
  for (std::int64_t i = 0; i < train + val; ++i)
    (i < train ? d.train : d.val).push_back(std::int32_t(fp8emu::random_bits(k, std::uint64_t(i)) % vocab));
  return d;
}

std::map<int, double> lm_seconds_per_step;  // the fp32 step per thread count

void BM_lm_step(benchmark::State& st, std::string recipe, int threads) {
  static const fp8sim::TokenSplit data = synthetic_tokens(73, 1 << 16, 1 << 12);
  fp8sim::LmConfig c;
  c.recipe = fp8sim::named_recipe(recipe);
  c.iterations = std::int64_t(1) << 30;
  c.eval_every = 1;   // train_until_eval: one step, then an evaluation (untimed)
  c.eval_batches = 1;
  c.exec.threads = threads;
  fp8sim::LmRun run(c, data);
  for (int i = 0; i < 2; ++i) run.train_until_eval();  // warm-up: buffers, value tables
  double total = 0;
  std::int64_t steps = 0;
  for (auto _ : st) {
    std::chrono::steady_clock::time_point t1;
    const auto t0 = std::chrono::steady_clock::now();
    run.train_until_eval([&](std::int64_t) { t1 = std::chrono::steady_clock::now(); });
    const double s = std::chrono::duration<double>(t1 - t0).count();
    st.SetIterationTime(s);
    total += s;
    ++steps;
  }
  const double per_step = total / double(steps);
  st.counters["ms_per_step"] = per_step * 1e3;
  if (recipe == "fp32") lm_seconds_per_step[threads] = per_step;
  else if (lm_seconds_per_step.count(threads)) st.counters["vs_fp32"] = per_step / lm_seconds_per_step[threads];
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
  // fp32 first at each thread count (recipe_names() starts with it).
  for (int threads : {1, 2})
    for (auto name : fp8sim::recipe_names())
      benchmark::RegisterBenchmark(("BM_lm_step/" + std::string(name) + "/threads:" + std::to_string(threads)).c_str(),
                                   BM_lm_step, std::string(name), threads)
          ->Unit(benchmark::kMillisecond)
          ->UseManualTime();
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
