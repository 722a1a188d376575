// The fast paths of float accumulators other than float32 nearest-even sequential
// (GemmPath::accumulator and ::accumulator_wide). None is implemented yet: every such
// call takes the reference.
#include "gemm_internal.hpp"

#include <stdexcept>

namespace fp8emu::detail {

GemmPath accumulator_fast_path(const CodeMatrix&, const CodeMatrix&, const GemmOptions&) {
  return GemmPath::reference;
}

void accumulator_fast(const CodeMatrix&, const CodeMatrix&, float*, std::int64_t,
                      const GemmOptions&, GemmPath) {
  throw std::logic_error("accumulator_fast: no accumulator fast path");
}

}  // namespace fp8emu::detail
