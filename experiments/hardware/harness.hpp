// fp8hw: the hardware harness's host side (options, checked CUDA calls, device buffers,
// check results). Everything here is ordinary C++20 compiled by the host compiler; the
// kernels are behind kernels.hpp.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "fp8emu/compare.hpp"
#include "fp8emu/random.hpp"

namespace fp8hw {

/// Thrown for every failed CUDA or cuBLASLt call, with the call and where it was made.
struct HarnessError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Throws HarnessError naming `what` and `where` when `err` is not cudaSuccess.
void check_cuda(int err, const char* what, const char* where);
#define FP8HW_STR2(x) #x
#define FP8HW_STR(x) FP8HW_STR2(x)
/// Checks a CUDA runtime call or a kernel launcher's result.
#define CUDA_CHECK(call) ::fp8hw::check_cuda(int(call), #call, __FILE__ ":" FP8HW_STR(__LINE__))

/// Waits for the device and checks for errors raised while kernels ran.
void sync_checked(const char* where);

/// Device memory for n elements of T, freed on destruction.
template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t n) : n_(n) {
    void* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, n * sizeof(T) + (n == 0)));
    p_ = static_cast<T*>(p);
  }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return p_; }
  void upload(const std::vector<T>& h) {
    CUDA_CHECK(cudaMemcpy(p_, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  void download(std::vector<T>& h) const {
    h.resize(n_);
    CUDA_CHECK(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
  }

 private:
  T* p_ = nullptr;
  std::size_t n_;
};

/// What to run and how much of it.
struct Options {
  std::vector<std::string> checks;     ///< conversions, mma, wgmma, cublaslt (empty: all)
  std::uint64_t seed = 1;              ///< Random operands: a function of (seed, stream, index).
  std::uint64_t instructions = 1 << 20;  ///< Random mma.sync instructions (wgmma: a quarter).
  bool quick = false;                  ///< A short run: sampled float32 patterns, fewer blocks.
  std::string out = "results/hardware";
  bool wants(const std::string& c) const;
};

/// One check: what was compared with what, how many cases, how many differ.
struct CheckResult {
  std::string group;   ///< conversions, mma.sync, wgmma, cublaslt
  std::string name;    ///< the instruction or configuration
  std::string model;   ///< the fp8emu configuration it is compared with
  std::string format;  ///< the format of the compared elements (ulps)
  bool gating = true;  ///< A mismatch makes the run fail (false: informational).
  fp8emu::CompareReport report;
  std::string note;
};

/// Returns a gating check with its description and an empty report.
inline CheckResult new_check(std::string group, std::string name, std::string model, std::string format) {
  CheckResult c;
  c.group = std::move(group);
  c.name = std::move(name);
  c.model = std::move(model);
  c.format = std::move(format);
  return c;
}

/// Prints a check's line and its first mismatches to stdout.
void print_check(const CheckResult& c);

void run_conversions(const Options& o, std::vector<CheckResult>& out);
void run_matrix_units(const Options& o, bool wgmma_too, std::vector<CheckResult>& out);
void run_cublaslt(const Options& o, std::vector<CheckResult>& out);

/// Returns fp8emu's M x N float32 product of e4m3fn codes A (M x K, row-major) and B given
/// as B^T (N x K, row-major), under accumulation `spec` and per-tensor scales.
std::vector<float> emulate_e4m3_gemm(int m, int n, int k, const std::vector<std::uint8_t>& a,
                                     const std::vector<std::uint8_t>& bt, const std::string& spec,
                                     float scale_a = 1.0f, float scale_b = 1.0f);

/// Prints, without a GPU, what each emulator configuration gives for each discriminating
/// case; returns 1 when some case does not tell nvidia-h100-fp8 from every other model.
int print_case_table();

/// Returns the float16 bits of e4m3 / e5m2 code c decoded and re-encoded by fp8emu.
std::uint16_t expected_f16_of_code(bool e5m2, std::uint32_t c);

}  // namespace fp8hw
