// fp8emu CLI: one operand of fp8emu gemm, read from .npy and quantized when it holds
// floats (tensor, block, MX and NVFP4 scales; docs/gemm.md, "Command line").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "args.hpp"
#include "fp8emu/gemm.hpp"
#include "fp8emu/npy.hpp"
#include "fp8emu/quantize_matrix.hpp"

namespace fp8emu::cli {

// One operand of gemm: its codes (as a CodeMatrix over owned storage: `q` for float
// inputs, `codes` for code inputs), its scales, and a line that says which scales were used.
struct GemmOperand {
  QuantizedMatrix q;
  npy::Array codes;
  std::vector<float> fscales;
  std::vector<std::uint8_t> cscales;
  Scales scales;
  CodeMatrix m;
  std::string summary;
};

/// Reads operand `name` ("a" or "b") of the gemm command line: --NAME, --NAME-format,
/// --NAME-scale, --NAME-block, --NAME-scale-codes. Throws UsageError for bad input.
GemmOperand gemm_operand(Args& a, const std::string& name);

}  // namespace fp8emu::cli
