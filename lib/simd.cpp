// fp8emu: the choice of SIMD target. The targets compiled into this build are listed
// once, best first, with the CPU features each needs; the first one the CPU has is
// chosen on first use (FP8EMU_SIMD_TARGET or set_simd_target can choose another). A
// target's table is only ever touched once the CPU is known to run it.
#include <array>
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "fp8emu/array.hpp"
#include "simd.hpp"

namespace fp8emu {
namespace {

// Returns true when the CPU (and the operating system, for the AVX register state) runs
// `feature`; GCC and Clang's __builtin_cpu_supports reads CPUID and XGETBV.
#if defined(__x86_64__) || defined(__i386__)
bool cpu_has_sse2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse2");
}
bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
bool cpu_has_avx512bw() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
}
#endif

struct Target {
  std::string_view name;
  bool (*runs)();
  const detail::KernelTable& (*table)();
};

// The targets compiled in, best first.
constexpr Target kTargets[] = {
#if defined(FP8EMU_SIMD_AVX512BW)
    {"avx512bw", &cpu_has_avx512bw, &detail::kernels_avx512bw},
#endif
#if defined(FP8EMU_SIMD_AVX2)
    {"avx2", &cpu_has_avx2, &detail::kernels_avx2},
#endif
#if defined(FP8EMU_SIMD_SSE2)
    {"sse2", &cpu_has_sse2, &detail::kernels_sse2},
#endif
    {"none", nullptr, nullptr},  // no SIMD kernels: the scalar reference everywhere
};
constexpr std::size_t kCompiled = std::size(kTargets) - 1;

std::atomic<std::uint64_t> calls[std::size(kTargets)];
std::atomic<const detail::KernelTable*> tables[std::size(kTargets)];

std::string compiled_list() {
  std::string s;
  for (std::size_t i = 0; i < kCompiled; ++i) s += (i ? " " : "") + std::string(kTargets[i].name);
  return s.empty() ? "none" : s;
}

std::string runnable_list() {
  std::string s;
  for (std::size_t i = 0; i < kCompiled; ++i)
    if (kTargets[i].runs()) s += (s.empty() ? "" : " ") + std::string(kTargets[i].name);
  return s.empty() ? "none" : s;
}

// Returns the index of target `name`, or throws when it is not compiled in or this CPU
// cannot run it.
std::size_t find_runnable(std::string_view name, std::string_view what) {
  for (std::size_t i = 0; i < std::size(kTargets); ++i) {
    if (kTargets[i].name != name) continue;
    if (kTargets[i].runs && !kTargets[i].runs())
      throw std::invalid_argument(std::string(what) + std::string(name) +
                                  ": this CPU cannot run it (it runs: " +
                                  runnable_list() + ")");
    return i;
  }
  throw std::invalid_argument(std::string(what) + std::string(name) +
                              ": not a target of this build (compiled: " + compiled_list() +
                              "; or none)");
}

std::size_t best_runnable() {
  for (std::size_t i = 0; i < kCompiled; ++i)
    if (kTargets[i].runs()) return i;
  return kCompiled;
}

// The automatic choice, made once: FP8EMU_SIMD_TARGET if set, else the best target.
std::size_t automatic() {
  static const std::size_t chosen = [] {
    const char* env = std::getenv("FP8EMU_SIMD_TARGET");
    if (env && *env) return find_runnable(env, "FP8EMU_SIMD_TARGET=");
    return best_runnable();
  }();
  return chosen;
}

constexpr std::size_t kAutomatic = std::size_t(-1);
std::atomic<std::size_t> selected{kAutomatic};

std::size_t current() {
  const std::size_t s = selected.load(std::memory_order_relaxed);
  return s == kAutomatic ? automatic() : s;
}

const detail::KernelTable* table_of(std::size_t i) {
  if (!kTargets[i].table) return nullptr;
  const detail::KernelTable* t = tables[i].load(std::memory_order_acquire);
  if (!t) {
    t = &kTargets[i].table();
    tables[i].store(t, std::memory_order_release);
  }
  return t;
}

}  // namespace

std::vector<std::string_view> simd_targets() {
  std::vector<std::string_view> v;
  for (std::size_t i = 0; i < kCompiled; ++i) v.push_back(kTargets[i].name);
  return v;
}

bool simd_target_runs(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kTargets); ++i)
    if (kTargets[i].name == name) return !kTargets[i].runs || kTargets[i].runs();
  return false;
}

std::string_view simd_target() { return kTargets[current()].name; }

void set_simd_target(std::string_view name) {
  selected.store(name.empty() ? kAutomatic : find_runnable(name, "SIMD target "),
                 std::memory_order_relaxed);
}

std::uint64_t simd_calls(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kTargets); ++i)
    if (kTargets[i].name == name) return calls[i].load(std::memory_order_relaxed);
  throw std::invalid_argument("SIMD target " + std::string(name) + ": not a target of this build (compiled: " +
                              compiled_list() + "; or none)");
}

std::string simd_summary() {
  return "simd: " + std::string(simd_target()) + " (compiled: " + compiled_list() + ")";
}

const char* simd_arch_name() {
  const detail::KernelTable* t = table_of(current());
  return t ? t->arch_name : "none";
}

namespace detail {

const KernelTable* active_kernels() { return table_of(current()); }

void note_kernels_used(const KernelTable& t) {
  for (std::size_t i = 0; i < kCompiled; ++i)
    if (tables[i].load(std::memory_order_relaxed) == &t) {
      calls[i].fetch_add(1, std::memory_order_relaxed);
      return;
    }
}

}  // namespace detail
}  // namespace fp8emu
