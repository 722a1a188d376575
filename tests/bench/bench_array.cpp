// Array-path benchmarks (Google Benchmark): quantize, dequantize and fake-quantize at an
// L2-resident size (64K elements) and a memory-resident size (64M elements), on one
// thread and on all threads. Every (size, threads) group starts with a plain memcpy of
// the kernel's input bytes, and each kernel reports `vs_memcpy`: its bytes per second
// (bytes read + bytes written) over memcpy's (2 x bytes copied), measured in the same run.
// `vs_scalar` compares with the scalar reference loop of the same call.
//   build/tests/bench/fp8emu_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "fp8emu/array.hpp"

using namespace fp8emu;

namespace {

constexpr std::size_t kSmall = std::size_t{1} << 16, kLarge = std::size_t{1} << 26;

struct Buffers {
  std::vector<float> x, y;
  std::vector<std::uint8_t> codes;
  explicit Buffers(std::size_t n) : x(n), y(n), codes(n) {
    // Values spread over e4m3fn's range and beyond (some saturate, some are subnormal).
    std::uint64_t s = 12345;
    for (auto& v : x) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      v = float(std::int32_t(s >> 32)) * 0x1p-24f;
    }
    for (std::size_t i = 0; i < n; ++i) codes[i] = std::uint8_t(s >> (i % 56));
  }
};

Buffers& buffers(std::size_t n) {
  static std::map<std::size_t, Buffers> all;
  auto it = all.find(n);
  if (it == all.end()) it = all.emplace(n, Buffers(n)).first;
  return it->second;
}

std::map<std::pair<std::size_t, int>, double> memcpy_rate, scalar_rate;

int threads_of(const benchmark::State& st) {
  return st.range(1) == 0 ? omp_get_max_threads() : int(st.range(1));
}

void finish(benchmark::State& st, std::size_t n, std::size_t bytes_per_elem) {
  const std::int64_t iters = st.iterations();
  st.SetItemsProcessed(iters * std::int64_t(n));
  st.SetBytesProcessed(iters * std::int64_t(n * bytes_per_elem));
}

void BM_memcpy(benchmark::State& st) {
  const std::size_t n = std::size_t(st.range(0));
  const int threads = threads_of(st);
  Buffers& b = buffers(n);
  const std::size_t bytes = n * sizeof(float);
  auto* src = reinterpret_cast<const char*>(b.x.data());
  auto* dst = reinterpret_cast<char*>(b.y.data());
  double seconds = 0;
  for (auto _ : st) {
    const auto t0 = std::chrono::steady_clock::now();
    if (threads == 1) {
      std::memcpy(dst, src, bytes);
    } else {
#pragma omp parallel num_threads(threads)
      {
        const std::size_t part = bytes / std::size_t(omp_get_num_threads());
        const std::size_t begin = part * std::size_t(omp_get_thread_num());
        const std::size_t len = omp_get_thread_num() == omp_get_num_threads() - 1 ? bytes - begin : part;
        std::memcpy(dst + begin, src + begin, len);
      }
    }
    benchmark::ClobberMemory();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  memcpy_rate[{n, threads}] = 2.0 * double(bytes) * double(st.iterations()) / seconds;
  finish(st, n, 2 * sizeof(float));
}

enum class Kernel { quantize, dequantize, fake_quantize };

template <Kernel K>
void BM_kernel(benchmark::State& st, const char* fmt, Rounding r, bool simd) {
  const std::size_t n = std::size_t(st.range(0));
  const int threads = threads_of(st);
  Buffers& b = buffers(n);
  const Format f = parse_format(fmt);
  ArrayOptions o{.convert = {.rounding = r, .stochastic_bits = is_stochastic(r) ? 8 : 0},
                 .seed = 1,
                 .exec = {.threads = threads, .simd = simd}};
  const std::size_t bytes = K == Kernel::quantize ? 5 : K == Kernel::dequantize ? 5 : 8;
  double seconds = 0;
  for (auto _ : st) {
    const auto t0 = std::chrono::steady_clock::now();
    if constexpr (K == Kernel::quantize)
      benchmark::DoNotOptimize(quantize(f, b.x, b.codes, o));
    else if constexpr (K == Kernel::dequantize)
      dequantize(f, b.codes, b.y, o);
    else
      benchmark::DoNotOptimize(fake_quantize(f, b.x, b.y, o));
    benchmark::ClobberMemory();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double rate = double(n * bytes) * double(st.iterations()) / seconds;
  finish(st, n, bytes);
  const auto key = std::make_pair(n, threads);
  if (memcpy_rate.count(key)) st.counters["vs_memcpy"] = rate / memcpy_rate[key];
  if (K == Kernel::quantize && !simd && r == Rounding::nearest_even) scalar_rate[key] = rate;
  if (K == Kernel::quantize && simd && r == Rounding::nearest_even && scalar_rate.count(key))
    st.counters["vs_scalar"] = rate / scalar_rate[key];
  st.counters["elem_per_s"] = benchmark::Counter(double(n) * double(st.iterations()) / seconds);
}

void register_all() {
  for (std::int64_t n : {std::int64_t(kSmall), std::int64_t(kLarge)}) {
    for (std::int64_t t : {1, 0}) {
      const std::string tag = std::string(n == std::int64_t(kSmall) ? "64K" : "64M") + "/" +
                              (t == 1 ? "1thread" : "allthreads");
      auto reg = [&](const std::string& name, auto fn) {
        benchmark::RegisterBenchmark((name + "/" + tag).c_str(), fn)
            ->Args({n, t})
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      };
      reg("memcpy", BM_memcpy);
      reg("quantize_scalar_reference/e4m3fn/rne", [](benchmark::State& s) {
        BM_kernel<Kernel::quantize>(s, "e4m3fn", Rounding::nearest_even, false);
      });
      for (const char* fmt : {"e4m3fn", "e5m2", "e2m1fn"}) {
        reg(std::string("quantize/") + fmt + "/rne", [fmt](benchmark::State& s) {
          BM_kernel<Kernel::quantize>(s, fmt, Rounding::nearest_even, true);
        });
        reg(std::string("quantize/") + fmt + "/sr-a8", [fmt](benchmark::State& s) {
          BM_kernel<Kernel::quantize>(s, fmt, Rounding::stochastic_a, true);
        });
      }
      for (const char* fmt : {"e4m3fn", "e5m2"}) {
        reg(std::string("dequantize/") + fmt, [fmt](benchmark::State& s) {
          BM_kernel<Kernel::dequantize>(s, fmt, Rounding::nearest_even, true);
        });
        reg(std::string("fake_quantize/") + fmt + "/rne", [fmt](benchmark::State& s) {
          BM_kernel<Kernel::fake_quantize>(s, fmt, Rounding::nearest_even, true);
        });
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::string compiled;
  for (std::string_view t : simd_targets()) compiled += " " + std::string(t);
  std::printf("fp8emu kernels: simd target %s (%s; compiled:%s); %d OpenMP threads\n",
              std::string(simd_target()).c_str(), simd_arch_name(), compiled.c_str(),
              omp_get_max_threads());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
