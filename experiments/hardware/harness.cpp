// fp8hw: host helpers shared by the checks (harness.hpp).
#include <cmath>
#include <cstdio>

#include <cuda_runtime_api.h>

#include "fp8emu/explain.hpp"
#include "fp8emu/gemm.hpp"
#include "fp8emu/random.hpp"
#include "harness.hpp"

namespace fp8hw {

void check_cuda(int err, const char* what, const char* where) {
  if (err != int(cudaSuccess))
    throw HarnessError(std::string(where) + ": " + what + " failed: " + cudaGetErrorName(cudaError_t(err)) + " (" +
                       cudaGetErrorString(cudaError_t(err)) + ")");
}

void sync_checked(const char* where) {
  check_cuda(int(cudaGetLastError()), "kernel launch", where);
  check_cuda(int(cudaDeviceSynchronize()), "cudaDeviceSynchronize", where);
}

bool Options::wants(const std::string& c) const {
  if (checks.empty()) return true;
  for (const auto& x : checks)
    if (x == c) return true;
  return false;
}

void print_check(const CheckResult& c) {
  const auto& r = c.report;
  std::printf("%-10s %-62s %12llu cases %10llu differ%s\n", c.group.c_str(), c.name.c_str(),
              (unsigned long long)r.total, (unsigned long long)(r.total - r.exact),
              c.gating ? "" : " (informational)");
  for (const auto& m : r.first)
    std::printf("    index %llu: expected %s (0x%llX), hardware %s (0x%llX), %s ulps, %s\n",
                (unsigned long long)m.index, fp8emu::shortest(m.expected).c_str(),
                (unsigned long long)m.expected_bits, fp8emu::shortest(m.actual).c_str(),
                (unsigned long long)m.actual_bits, fp8emu::shortest(m.ulps).c_str(),
                std::string(fp8emu::difference_name(m.kind)).c_str());
  std::fflush(stdout);
}

std::vector<float> emulate_e4m3_gemm(int m, int n, int k, const std::vector<std::uint8_t>& a,
                                     const std::vector<std::uint8_t>& bt, const std::string& spec, float scale_a,
                                     float scale_b) {
  const fp8emu::Format e4 = fp8emu::formats::e4m3fn{};
  fp8emu::GemmOptions o;
  o.accumulation = fp8emu::parse_accumulation(spec);
  o.a_scales.tensor = scale_a;
  o.b_scales.tensor = scale_b;
  const fp8emu::CodeMatrix A{e4, a.data(), m, k, fp8emu::Layout::row_major, 0};
  const fp8emu::CodeMatrix B{e4, bt.data(), k, n, fp8emu::Layout::col_major, k};
  std::vector<float> c(std::size_t(m) * n, 0.0f);
  fp8emu::gemm(A, B, c.data(), n, o);
  return c;
}

}  // namespace fp8hw

