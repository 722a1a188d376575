// GEMM benchmarks (Google Benchmark) against OpenBLAS sgemm and fp8emu's float32
// accumulation on the same shapes in the same run: n x n x n for n = 256, 1024 and 2048,
// on 1 thread and on all threads. Each fp8emu benchmark reports GFLOP/s (2 n^3 per call),
// `vs_sgemm` (its GFLOP/s over sgemm's, measured first in its group) and `vs_fp32` (over
// fp8emu's float32 accumulation of e4m3fn operands, measured second), and fails with
// "no fast path" where its configuration would take the scalar reference (OpenBLAS is a
// benchmark-only dependency: Debian libopenblas-dev). Operands are e4m3fn codes (float16
// for the fp16 matrix-unit presets, e2m1fn for NVFP4); sgemm's are e4m3fn values as float.
//   build/tests/bench/fp8emu_bench_gemm [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "fp8emu/convert.hpp"
#include "fp8emu/gemm.hpp"

extern "C" {
#include <cblas.h>
void openblas_set_num_threads(int);
}

using namespace fp8emu;

namespace {

// Operand codes of one format, from normal samples (scaled so that e2m1fn keeps most of
// them), and their float values.
struct Operands {
  std::vector<std::uint16_t> a16, b16;
  std::vector<std::uint8_t> a, b;
  std::vector<float> af, bf, c;
  Operands(const Format& f, std::int64_t n) : a16(n * n), b16(n * n), a(n * n), b(n * n),
                                               af(n * n), bf(n * n), c(n * n) {
    std::mt19937 gen(1);
    std::normal_distribution<float> nd;
    for (std::int64_t i = 0; i < n * n; ++i) {
      a16[i] = std::uint16_t(encode(f, nd(gen)));
      b16[i] = std::uint16_t(encode(f, nd(gen)));
      a[i] = std::uint8_t(a16[i]);
      b[i] = std::uint8_t(b16[i]);
      af[i] = float(decode(f, a16[i]));
      bf[i] = float(decode(f, b16[i]));
    }
  }
  const void* data(const Format& f, bool is_a) const {
    if (code_bytes(f) == 1) return is_a ? static_cast<const void*>(a.data()) : b.data();
    return is_a ? static_cast<const void*>(a16.data()) : b16.data();
  }
};

Operands& operands(const Format& f, std::int64_t n) {
  static std::map<std::pair<std::string, std::int64_t>, Operands> all;
  const auto key = std::make_pair(format_name(f), n);
  auto it = all.find(key);
  if (it == all.end()) it = all.emplace(key, Operands(f, n)).first;
  return it->second;
}

int threads_of(const benchmark::State& st) {
  return st.range(1) == 0 ? omp_get_max_threads() : int(st.range(1));
}

std::map<std::pair<std::int64_t, int>, double> sgemm_rate, fp32_rate;

enum class Scaling { none, mx, nvfp4 };

struct Case {
  const char* name;
  const char* spec;
  Format format;
  Scaling scaling = Scaling::none;
};

// The fp32 case comes first: the others report vs_fp32 against it.
const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"fp32", "fp32", formats::e4m3fn{}},
      {"fp16", "fp16", formats::e4m3fn{}},
      {"bf16", "bf16", formats::e4m3fn{}},
      {"fp16_sr", "fp16,rounding=sr-a,sr-bits=32,seed=1", formats::e4m3fn{}},
      {"bf16_sr", "bf16,rounding=sr-a,sr-bits=32,seed=1", formats::e4m3fn{}},
      {"fp16_pairwise", "fp16,order=pairwise", formats::e4m3fn{}},
      {"fp16_blocked", "fp16,order=blocked,chunk=32", formats::e4m3fn{}},
      {"fp16_kahan", "fp16,kahan=1", formats::e4m3fn{}},
      {"bf16_kahan", "bf16,kahan=1", formats::e4m3fn{}},
      {"fp16_promote128", "fp16,promote=128", formats::e4m3fn{}},
      {"fp32_mx32", "fp32", formats::e4m3fn{}, Scaling::mx},
      {"fp32_nvfp4", "fp32", formats::e2m1fn{}, Scaling::nvfp4},
      {"h100_fp8", "nvidia-h100-fp8", formats::e4m3fn{}},
      {"h100_fp8_promote128", "nvidia-h100-fp8,promote=128", formats::e4m3fn{}},
      {"ada_fp8", "nvidia-ada-fp8", formats::e4m3fn{}},
      {"b200_fp8", "nvidia-b200-fp8", formats::e4m3fn{}},
      {"v100_fp16", "nvidia-v100-fp16", formats::float16{}},
      {"a100_fp16", "nvidia-a100-fp16", formats::float16{}},
      {"h100_fp16", "nvidia-h100-fp16", formats::float16{}},
      {"mi300_fp8", "amd-mi300-fp8", formats::e4m3fn{}},
      {"mi300_fp16", "amd-mi300-fp16", formats::float16{}},
  };
  return c;
}

void report(benchmark::State& st, std::int64_t n, double seconds_per_call, const char* name) {
  const double gflops = 2.0 * double(n) * double(n) * double(n) / seconds_per_call * 1e-9;
  st.counters["GFLOPs"] = gflops;
  const auto key = std::make_pair(n, threads_of(st));
  const std::string_view nm = name;
  if (nm == "sgemm") {
    sgemm_rate[key] = gflops;
    return;
  }
  if (sgemm_rate.count(key)) st.counters["vs_sgemm"] = gflops / sgemm_rate[key];
  if (nm == "fp32") fp32_rate[key] = gflops;
  else if (fp32_rate.count(key)) st.counters["vs_fp32"] = gflops / fp32_rate[key];
}

void BM_sgemm(benchmark::State& st) {
  const std::int64_t n = st.range(0);
  Operands& op = operands(formats::e4m3fn{}, n);
  openblas_set_num_threads(threads_of(st));
  double total = 0;
  for (auto _ : st) {
    const auto t0 = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n), int(n), int(n), 1.0f,
                op.af.data(), int(n), op.bf.data(), int(n), 0.0f, op.c.data(), int(n));
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  report(st, n, total / double(st.iterations()), "sgemm");
}

void BM_gemm(benchmark::State& st, const Case& cs) {
  const std::int64_t n = st.range(0);
  Operands& op = operands(cs.format, n);
  GemmOptions o;
  o.accumulation = parse_accumulation(cs.spec);
  o.exec.threads = threads_of(st);
  const CodeMatrix a{cs.format, op.data(cs.format, true), n, n};
  const CodeMatrix b{cs.format, op.data(cs.format, false), n, n};
  // Block scales along K: MX-32 (e8m0 codes near 2^0) or NVFP4 (e4m3fn codes, blocks of 16,
  // and a float32 tensor scale).
  const std::int64_t bk = cs.scaling == Scaling::mx ? 32 : 16, kb = (n + bk - 1) / bk;
  std::vector<std::uint8_t> sa(std::size_t(n * kb)), sb(std::size_t(kb * n));
  std::mt19937 gen(2);
  for (auto* v : {&sa, &sb})
    for (auto& x : *v) x = std::uint8_t(cs.scaling == Scaling::mx ? 124 + gen() % 7 : 0x30 + gen() % 32);
  if (cs.scaling != Scaling::none) {
    const ScaleEncoding enc = cs.scaling == Scaling::mx ? ScaleEncoding::e8m0 : ScaleEncoding::e4m3;
    o.a_scales = {sa.data(), enc, 1, bk, cs.scaling == Scaling::nvfp4 ? 0.375f : 1.0f};
    o.b_scales = {sb.data(), enc, bk, 1, 1.0f};
  }
  st.SetLabel(std::string(gemm_fast_path(a, b, o)));
  if (!gemm_has_fast_path(a, b, o)) {
    st.SkipWithError("no fast path");
    return;
  }
  double total = 0;
  for (auto _ : st) {
    const auto t0 = std::chrono::steady_clock::now();
    gemm(a, b, op.c.data(), n, o);
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  report(st, n, total / double(st.iterations()), cs.name);
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "threads"})->UseRealTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

// For each (n, threads): sgemm first, then fp32, then the others.
int main(int argc, char** argv) {
  for (const auto& [n, t] : std::vector<std::pair<int, int>>{{256, 1}, {1024, 1}, {1024, 0}, {2048, 1}, {2048, 0}}) {
    benchmark::RegisterBenchmark("BM_sgemm", BM_sgemm)->Args({n, t})->Apply(shapes);
    for (const Case& c : cases())
      benchmark::RegisterBenchmark(("BM_gemm_" + std::string(c.name)).c_str(), BM_gemm, c)
          ->Args({n, t})
          ->Apply(shapes);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
