// fp8emu: the command-line tool.
//
//   fp8emu formats [--csv]
//   fp8emu explain FORMAT VALUE [options]     fp8emu explain FORMAT --code CODE
//   fp8emu table FORMAT
//   fp8emu quantize --format F [options] IN.npy OUT.npy
//   fp8emu dequantize --format F [--scale X] [--dtype T] IN.npy OUT.npy
//   fp8emu gemm --a A.npy --b B.npy [options] OUT.npy
//   fp8emu compare --format F --expected E.npy --actual A.npy [options]
//   fp8emu --version
//
// Exit status: 0 on success, 2 on bad usage or bad input (with a message on stderr);
// compare exits 1 when some element differs beyond the tolerance.
#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "fp8emu/array.hpp"
#include "fp8emu/compare.hpp"
#include "fp8emu/explain.hpp"
#include "fp8emu/program.hpp"
#include "fp8emu/file.hpp"
#include "fp8emu/gemm.hpp"
#include "fp8emu/npy.hpp"

#ifndef FP8EMU_VERSION
#error "FP8EMU_VERSION (the project version) is defined by the build"
#endif

namespace {

using namespace fp8emu;

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr const char* kMainHelp =
    "fp8emu: bit-exact emulation of FP8 and other low-precision float formats.\n"
    "\n"
    "usage: fp8emu COMMAND [ARGS]   (fp8emu COMMAND --help for details)\n"
    "       fp8emu --version\n"
    "\n"
    "commands:\n"
    "  formats   list the format catalog with derived properties\n"
    "  explain   show how a value is encoded in a format, field by field\n"
    "  table     print every code of a format and its value as CSV\n"
    "  quantize    round a .npy array of floats to a format (codes or values)\n"
    "  dequantize  decode a .npy array of codes to float32 or float64\n"
    "  gemm        multiply two .npy matrices in emulated precision (accumulation presets)\n"
    "  compare     compare a kernel's output with the expected one, in ulps of a format\n";

constexpr const char* kFormatsHelp =
    "usage: fp8emu formats [--csv]\n"
    "\n"
    "Lists every catalog format: bits, exponent and mantissa widths, bias, policy,\n"
    "largest finite value, smallest normal and smallest positive value, epsilon,\n"
    "emin/emax, the number of finite codes, and the codes of NaN and infinities.\n"
    "Other formats are spelled binary{K}p{P}{s|u}{e|f} or e{E}m{M}[:bias=B][:policy=P][:unsigned].\n"
    "\n"
    "  --csv    machine-readable output\n";

constexpr const char* kExplainHelp =
    "usage: fp8emu explain FORMAT VALUE [options]\n"
    "       fp8emu explain FORMAT --code CODE\n"
    "\n"
    "Encodes VALUE (a decimal or hex float such as 3.3, -1e-3, 0x1.8p-7, inf, nan)\n"
    "in FORMAT and shows the sign, exponent and mantissa fields, the decoded value,\n"
    "the two neighbouring values of the format, the error in ulps, and whether the\n"
    "result overflowed (saturated) or underflowed. With --code, shows one code.\n"
    "\n"
    "options:\n"
    "  --rounding MODE     rne (default), rna, rz, ru, rd, ro, sr-a, sr-b, sr-c\n"
    "  --saturation S      finite (default: overflow and inf clamp to +-max),\n"
    "                      propagate (finite overflow clamps, inf stays inf),\n"
    "                      none (overflow gives inf, or NaN without inf)\n"
    "  --sr-bits N         random bits of stochastic rounding, 1..32 (default 8)\n"
    "  --random R          the random value R, 0 <= R < 2^N (default 0)\n"
    "  --nan MODE          canonical (default) or nvidia (every NaN -> 0x7F)\n"
    "  --daz, --ftz        flush subnormal inputs / results to zero\n"
    "  --code CODE         explain a code (decimal or 0x hex) instead of a value\n";

constexpr const char* kTableHelp =
    "usage: fp8emu table FORMAT\n"
    "\n"
    "Prints every code of FORMAT (at most 16 bits) as CSV: code, hex, bits, class, value.\n";

double parse_value(const std::string& s) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size())
    throw UsageError("invalid value '" + s + "': expected a number such as 3.3, 0x1p-7, inf or nan");
  return v;  // Overflow to inf and underflow to 0 are the double's own rounding.
}

// Returns the number `s` for an option that takes only finite values; `rule` names the
// accepted values in the message ("a finite number > 0").
double parse_finite(const std::string& s, const std::string& what, const std::string& rule) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v))
    throw UsageError("invalid " + what + " '" + s + "': expected " + rule);
  return v;
}

// Returns the integer `s` of option `what`, which must lie in min..max (the message says so).
std::uint64_t parse_unsigned(const std::string& s, const std::string& what, std::uint64_t max,
                             std::uint64_t min = 0) {
  const std::string range = " (expected " + std::to_string(min) + ".." + std::to_string(max) + ")";
  if (s.empty() || s[0] == '-' || s[0] == '+') throw UsageError("invalid " + what + " '" + s + "'" + range);
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (end != s.c_str() + s.size() || errno == ERANGE || v > max || v < min)
    throw UsageError("invalid " + what + " '" + s + "'" + range);
  return v;
}

// Printed after the help of every command that takes a format, and by formats.
constexpr const char* kVariantHelp =
    "\ne4m3 and e2m1 are the IEEE-like variants (with infinities; max 240 and 3). The OCP\n"
    "FP8 / MX formats that papers and hardware mean are e4m3fn (max 448) and e2m1fn (max 6).\n";

// Returns a note when `f` is the IEEE-like variant eXmY of a catalog format eXmYfn (the
// OCP one that papers mean), e.g. e4m3 (max 240) beside e4m3fn (max 448); else "".
std::string variant_note(const Format& f) {
  if (f.policy != Policy::ieee || !f.is_signed) return "";
  const std::string base =
      "e" + std::to_string(f.exponent_bits) + "m" + std::to_string(f.mantissa_bits);
  for (const auto& e : catalog())
    if (e.name == base + "fn" && e.format.bias == f.bias)
      return "note: " + base + " is the IEEE-like variant (max " + shortest(max_finite(f)) +
             ", with infinities); the OCP format is " + base + "fn (max " +
             shortest(max_finite(e.format)) + ")";
  return "";
}

// Parses a format argument; with `note`, prints variant_note to stderr.
Format format_arg(const std::string& s, bool note = true) {
  Format f;
  try {
    f = parse_format(s);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (const std::string n = variant_note(f); note && !n.empty())
    std::cerr << "fp8emu: " << n << "\n";
  return f;
}

// Splits arguments into positionals and --options; flags listed in `flags` take no value.
struct Args {
  std::vector<std::string> pos;
  std::map<std::string, std::string> opt;
};

Args parse_args(int argc, char** argv, const std::vector<std::string>& with_value,
                const std::vector<std::string>& flags) {
  Args a;
  for (int i = 0; i < argc; ++i) {
    std::string s = argv[i];
    if (s.size() > 2 && s.rfind("--", 0) == 0) {
      std::string value;
      const auto eq = s.find('=');
      if (eq != std::string::npos) {
        value = s.substr(eq + 1);
        s = s.substr(0, eq);
      }
      if (a.opt.count(s)) throw UsageError("option " + s + " given twice");
      bool known = false;
      for (const auto& f : flags)
        if (f == s) {
          if (eq != std::string::npos) throw UsageError("option " + s + " takes no value");
          a.opt[s] = "1";
          known = true;
        }
      for (const auto& w : with_value)
        if (w == s) {
          if (eq == std::string::npos) {
            if (i + 1 >= argc) throw UsageError("option " + s + " needs a value");
            value = argv[++i];
          }
          a.opt[s] = value;
          known = true;
        }
      if (!known) throw UsageError("unknown option '" + s + "'");
    } else {
      a.pos.push_back(s);
    }
  }
  return a;
}

int cmd_formats(int argc, char** argv) {
  Args a = parse_args(argc, argv, {}, {"--csv", "--help"});
  if (a.opt.count("--help")) return std::cout << kFormatsHelp, 0;
  if (!a.pos.empty()) throw UsageError("formats takes no arguments");
  const bool csv = a.opt.count("--csv") > 0;
  if (csv)
    std::cout << "name,bits,exponent_bits,mantissa_bits,bias,signed,policy,max_finite,min_normal,"
                 "min_positive,epsilon,emin,emax,finite_codes,nan_code,pos_inf_code,neg_inf_code,source\n";
  else
    std::printf("%-16s %4s %2s %2s %4s %-15s %-13s %-13s %-13s %-10s %5s %4s %8s %6s %6s\n", "name",
                "bits", "E", "M", "bias", "policy", "max", "min_normal", "min_positive", "epsilon",
                "emin", "emax", "finite", "nan", "+inf");
  for (const auto& e : catalog()) {
    const Format& f = e.format;
    const int b = total_bits(f);
    auto opt = [&](std::optional<std::uint32_t> c) { return c ? hex_code(*c, b) : std::string("-"); };
    if (csv) {
      std::cout << e.name << ',' << b << ',' << f.exponent_bits << ',' << f.mantissa_bits << ','
                << f.bias << ',' << (f.is_signed ? 1 : 0) << ',' << policy_name(f.policy) << ','
                << shortest(max_finite(f)) << ',' << shortest(min_normal(f)) << ','
                << shortest(min_positive(f)) << ',' << shortest(epsilon(f)) << ',' << emin(f) << ','
                << emax(f) << ',' << finite_code_count(f) << ',' << opt(nan_code(f)) << ','
                << opt(positive_inf_code(f)) << ',' << opt(negative_inf_code(f)) << ",\""
                << e.source << "\"\n";
    } else {
      std::printf("%-16s %4d %2d %2d %4d %-15s %-13.6g %-13.6g %-13.6g %-10.4g %5d %4d %8llu %6s %6s\n",
                  std::string(e.name).c_str(), b, f.exponent_bits, f.mantissa_bits, f.bias,
                  std::string(policy_name(f.policy)).c_str(), max_finite(f), min_normal(f),
                  min_positive(f), epsilon(f), emin(f), emax(f),
                  (unsigned long long)finite_code_count(f), opt(nan_code(f)).c_str(),
                  opt(positive_inf_code(f)).c_str());
    }
  }
  if (!csv) std::cout << kVariantHelp;
  return 0;
}

// The conversion options shared by explain and quantize.
ConvertOptions convert_options(Args& a) {
  ConvertOptions o;
  if (a.opt.count("--rounding")) {
    auto r = parse_rounding(a.opt["--rounding"]);
    if (!r) throw UsageError("unknown rounding '" + a.opt["--rounding"] + "' (rne rna rz ru rd ro sr-a sr-b sr-c)");
    o.rounding = *r;
  }
  if (a.opt.count("--saturation")) {
    auto s = parse_saturation(a.opt["--saturation"]);
    if (!s) throw UsageError("unknown saturation '" + a.opt["--saturation"] + "' (finite propagate none)");
    o.saturation = *s;
  }
  if (a.opt.count("--nan")) {
    const std::string& n = a.opt["--nan"];
    if (n == "canonical") o.nan = NanEncoding::canonical;
    else if (n == "nvidia") o.nan = NanEncoding::nvidia;
    else throw UsageError("unknown NaN mode '" + n + "' (canonical nvidia)");
  }
  o.flush_inputs = a.opt.count("--daz") > 0;
  o.flush_outputs = a.opt.count("--ftz") > 0;
  o.stochastic_bits = is_stochastic(o.rounding) ? 8 : 0;
  if (a.opt.count("--sr-bits") && !is_stochastic(o.rounding))
    throw UsageError("--sr-bits needs a stochastic --rounding (sr-a, sr-b, sr-c); " +
                     std::string(rounding_name(o.rounding)) + " uses no random bits");
  if (a.opt.count("--sr-bits")) o.stochastic_bits = int(parse_unsigned(a.opt["--sr-bits"], "--sr-bits", 32, 1));
  return o;
}

int cmd_explain(int argc, char** argv) {
  Args a = parse_args(argc, argv,
                      {"--rounding", "--saturation", "--sr-bits", "--random", "--nan", "--code"},
                      {"--daz", "--ftz", "--help"});
  if (a.opt.count("--help")) return std::cout << kExplainHelp << kVariantHelp, 0;
  const bool by_code = a.opt.count("--code") > 0;
  if (a.pos.size() != (by_code ? 1u : 2u))
    throw UsageError(by_code ? "usage: fp8emu explain FORMAT --code CODE"
                             : "usage: fp8emu explain FORMAT VALUE [options]");
  const Format f = format_arg(a.pos[0], false);
  const std::string note = variant_note(f);
  if (by_code) {
    const int b = total_bits(f);
    const std::uint64_t max = b >= 32 ? 0xFFFFFFFFull : (1ull << b) - 1;
    const auto code = std::uint32_t(parse_unsigned(a.opt["--code"], "code", max));
    const CodeFields c = fields(f, code);
    std::cout << "format      " << format_name(f) << "\n"
              << "code        " << hex_code(code, b) << " = " << field_bits(f, code) << "  ("
              << class_name(c.value_class) << ")\n"
              << "value       " << shortest(c.value) << "\n"
              << (note.empty() ? "" : note + "\n");
    return 0;
  }
  const ConvertOptions o = convert_options(a);
  std::uint32_t random = 0;
  if (a.opt.count("--random")) {
    if (!is_stochastic(o.rounding)) throw UsageError("--random needs a stochastic --rounding (sr-a, sr-b, sr-c)");
    const std::uint64_t max = (std::uint64_t{1} << o.stochastic_bits) - 1;
    random = std::uint32_t(parse_unsigned(a.opt["--random"], "--random", max));
  }
  const double x = parse_value(a.pos[1]);
  std::cout << to_text(explain(f, x, o, random)) << (note.empty() ? "" : note + "\n");
  return 0;
}

int cmd_table(int argc, char** argv) {
  Args a = parse_args(argc, argv, {}, {"--help"});
  if (a.opt.count("--help")) return std::cout << kTableHelp << kVariantHelp, 0;
  if (a.pos.size() != 1) throw UsageError("usage: fp8emu table FORMAT");
  const Format f = format_arg(a.pos[0]);
  const int b = total_bits(f);
  if (b > 16) throw UsageError("table prints formats of at most 16 bits; " + a.pos[0] + " has " + std::to_string(b));
  std::string out = "code,hex,bits,class,value\n";
  for (std::uint32_t c = 0; c < (1u << b); ++c) {
    const CodeFields fl = fields(f, c);
    out += std::to_string(c) + "," + hex_code(c, b) + "," + field_bits(f, c) + "," +
           std::string(class_name(fl.value_class)) + "," + shortest(fl.value) + "\n";
  }
  std::cout << out;
  return 0;
}

constexpr const char* kQuantizeHelp =
    "usage: fp8emu quantize --format F [options] IN.npy OUT.npy\n"
    "\n"
    "Rounds every element of IN (float16, float32 or float64, any shape, C order) times\n"
    "the scale to the format F, once from the exact product, and writes OUT with the\n"
    "same shape. OUT is written whole to a temporary file and renamed, so a failed run\n"
    "leaves no partial file; an OUT that exists and is not a regular file (a directory,\n"
    "FIFO or device) is refused, and a symbolic link is written through.\n"
    "\n"
    "options:\n"
    "  --format F          target format (see fp8emu formats)\n"
    "  --rounding R        rne (default), rna, rz, ru, rd, ro, sr-a, sr-b, sr-c\n"
    "  --saturation S      finite (default), propagate, none (as in fp8emu explain)\n"
    "  --sr-bits K         random bits of stochastic rounding, 1..32 (default 8)\n"
    "  --seed N            seed of the random bits (default 0): element i uses\n"
    "                      random_bits(seed, stream 0, i), whatever the thread count\n"
    "  --scale X|auto      multiply by X (rounded to float32, finite, > 0) before\n"
    "                      rounding; auto maps the largest magnitude of IN to the\n"
    "                      format's largest finite value and prints the scale\n"
    "  --output codes      write the codes: uint8 (formats of <= 8 bits) or uint16 (default)\n"
    "  --output values     write float32 values: the rounded value divided by the scale\n"
    "  --nan MODE          canonical (default) or nvidia\n"
    "  --daz, --ftz        flush subnormal inputs (in IN's own type) / results to zero\n"
    "  --threads T         OpenMP threads (default: all); results do not depend on it\n";

constexpr const char* kDequantizeHelp =
    "usage: fp8emu dequantize --format F [--scale X] [--dtype float32|float64|float16] IN.npy "
    "OUT.npy\n"
    "\n"
    "Decodes the codes in IN (uint8, uint16 or int32, any shape) of format F and writes\n"
    "their values divided by the scale (default 1), rounded once (nearest-even; overflow\n"
    "gives inf), as float32 (default), float64 or float16, with IN's shape.\n"
    "A code that does not fit in F is an error naming its index.\n";

constexpr const char* kGemmHelp =
    "usage: fp8emu gemm --a A.npy --b B.npy [options] OUT.npy\n"
    "\n"
    "Computes OUT = alpha * A B (+ beta * C) for A (M x K) and B (K x N), 2-D .npy arrays.\n"
    "Code arrays (uint8, uint16) are codes of --a-format / --b-format; float arrays\n"
    "(float16, float32, float64) are first quantized to that format (nearest-even,\n"
    "saturating), with their scale when one is given. OUT is float32 (M x N), or codes of\n"
    "--out-format (nearest-even, saturating). Prints the accumulation, its random bits,\n"
    "and for each operand the scales used (block scales: count, min, max, blocks of amax 0).\n"
    "\n"
    "options:\n"
    "  --a-format F, --b-format F   operand formats (default e4m3fn; e2m1fn with nvfp4)\n"
    "  --a-scale S, --b-scale S     the operand's scale:\n"
    "    X             a number: float inputs are quantized as x / X; X dequantizes\n"
    "    auto          float inputs: x * s quantized, s the largest float32 with\n"
    "                  amax * s <= the format's max (1 for amax 0); 1/s dequantizes\n"
    "    FILE.npy      code inputs: block scales (float32, float64, or uint8 codes:\n"
    "                  e8m0 unless --X-scale-codes e4m3), with --X-block RxC\n"
    "    block:RxC     float inputs: one float32 scale per R x C block of the operand\n"
    "                  as stored (DeepSeek-V3: A block:1x128, B block:128x128), by the\n"
    "                  rule of auto applied to the block\n"
    "    mx            float inputs: blocks of 32 along K (A 1x32, B 32x1), e8m0 scale\n"
    "                  2^(floor(log2 amax) - emax) (OCP MX v1.0); elements above max\n"
    "                  times the scale saturate; 2^-127 for amax 0\n"
    "    nvfp4         float inputs: blocks of 16 along K, e4m3fn block scales and a\n"
    "                  float32 tensor scale (docs/gemm.md gives the rule)\n"
    "                The last block along each dimension is shorter when the block does\n"
    "                not divide it; a block that spans K scales whole rows / columns. A\n"
    "                block of amax 0 quantizes to zeros. Block scales need float32 or\n"
    "                float16 inputs without NaN or infinity, and A and B blocks along K\n"
    "                of one size when both split K.\n"
    "  --a-block RxC, --b-block RxC block shape of a scale file, e.g. 1x128, 128x128, 1x32\n"
    "  --a-scale-codes E, --b-scale-codes E   e8m0 (default) or e4m3 for uint8 scale files\n"
    "  --accumulate SPEC            PRESET[,key=value...] (default fp32); presets: fp32, fp16,\n"
    "                               bf16, nvidia-h100-fp8, nvidia-ada-fp8, nvidia-b200-fp8,\n"
    "                               nvidia-v100-fp16, nvidia-a100-fp16, nvidia-h100-fp16,\n"
    "                               amd-mi300-fp8, amd-mi300-fp16; keys in docs/gemm.md\n"
    "                               (each at most once)\n"
    "  --alpha X, --beta X          (default 1 and 0); --c C.npy is read when beta != 0\n"
    "  --out-format F               write codes of F instead of float32 values\n"
    "  --threads N                  OpenMP threads (default: all)\n";

float scale_arg(const std::string& s, const std::string& opt, const std::string& others = "") {
  const std::string rule =
      "a number > 0 that is finite as a float32, such as 2, 0.125 or 0x1p-7" + others;
  const float f = float(parse_finite(s, opt, rule));
  if (!(f > 0.0f && std::isfinite(f)))
    throw UsageError("invalid " + opt + " '" + s + "': expected " + rule);
  return f;
}

int threads_arg(Args& a) {
  if (!a.opt.count("--threads")) return 0;
  const auto t = parse_unsigned(a.opt["--threads"], "--threads", 1024, 1);
  return int(t);
}

// Returns the largest float s with amax * s <= limit (exactly), for --scale auto.
float auto_scale(double amax, double limit) {
  if (std::isnan(amax)) throw UsageError("--scale auto: the input contains NaN");
  if (std::isinf(amax)) throw UsageError("--scale auto: the input contains an infinity");
  if (amax == 0) return 1.0f;
  float s = float(limit / amax);
  if (!std::isfinite(s)) s = std::numeric_limits<float>::max();
  while (double(s) * amax > limit) s = std::nextafter(s, 0.0f);
  if (!(s > 0.0f)) throw UsageError("--scale auto: the input's largest magnitude is too large");
  return s;
}

// Says which random bits a conversion used: "seed 9, 8 random bits" or "no random bits".
std::string random_text(const ConvertOptions& c, std::uint64_t seed) {
  if (!is_stochastic(c.rounding)) return "no random bits";
  return "seed " + std::to_string(seed) + ", " + std::to_string(c.stochastic_bits) + " random bits";
}

template <class T>
std::span<const T> view(const npy::Array& a) {
  return {reinterpret_cast<const T*>(a.data.data()), a.size()};
}

// Returns codes of a format of `bits` <= 16 bits as a uint8 or uint16 array of `shape`.
npy::Array code_array(const std::vector<std::uint32_t>& codes, int bits,
                      const std::vector<std::size_t>& shape) {
  npy::Array out;
  out.shape = shape;
  out.dtype = bits <= 8 ? npy::DType::uint8 : npy::DType::uint16;
  out.data.resize(codes.size() * npy::item_size(out.dtype));
  for (std::size_t i = 0; i < codes.size(); ++i) {
    if (bits <= 8) {
      out.data[i] = std::uint8_t(codes[i]);
    } else {
      const auto c = std::uint16_t(codes[i]);
      std::memcpy(out.data.data() + 2 * i, &c, 2);
    }
  }
  return out;
}

int cmd_quantize(int argc, char** argv) {
  Args a = parse_args(argc, argv,
                      {"--format", "--rounding", "--saturation", "--sr-bits", "--seed", "--scale",
                       "--output", "--nan", "--threads"},
                      {"--daz", "--ftz", "--help"});
  if (a.opt.count("--help")) return std::cout << kQuantizeHelp << kVariantHelp, 0;
  if (a.pos.size() != 2 || !a.opt.count("--format"))
    throw UsageError("usage: fp8emu quantize --format F [options] IN.npy OUT.npy");
  const Format f = format_arg(a.opt["--format"]);
  ArrayOptions o;
  o.convert = convert_options(a);
  o.exec.threads = threads_arg(a);
  if (a.opt.count("--seed")) o.seed = parse_unsigned(a.opt["--seed"], "--seed", ~0ull);
  const std::string output = a.opt.count("--output") ? a.opt["--output"] : "codes";
  if (output != "codes" && output != "values")
    throw UsageError("unknown --output '" + output + "' (codes values)");
  const int bits = total_bits(f);
  if (output == "codes" && bits > 16)
    throw UsageError("codes of " + format_name(f) + " need " + std::to_string(bits) +
                     " bits; use --output values");
  if (output == "values" && !fits_float(f))
    throw UsageError("the values of " + format_name(f) + " do not fit in float32");
  const bool automatic = a.opt.count("--scale") && a.opt["--scale"] == "auto";
  if (a.opt.count("--scale") && !automatic)
    o.scale = scale_arg(a.opt["--scale"], "--scale", ", or auto");
  const npy::Array in = npy::read(a.pos[0]);
  if (in.dtype != npy::DType::float16 && in.dtype != npy::DType::float32 &&
      in.dtype != npy::DType::float64)
    throw UsageError(a.pos[0] + " holds " + npy::dtype_name(in.dtype) +
                     "; quantize reads float16, float32 or float64 (dequantize reads codes)");
  const std::size_t n = in.size();
  // Quantize into 32-bit codes, then narrow or decode them.
  std::vector<std::uint32_t> codes(n);
  auto run = [&](const ArrayOptions& opts) {
    switch (in.dtype) {
      case npy::DType::float16:
        return quantize_float16_bits(f, view<std::uint16_t>(in), codes, opts);
      case npy::DType::float32:
        return quantize(f, view<float>(in), codes, opts);
      default:
        return quantize(f, view<double>(in), codes, opts);
    }
  };
  ArrayStats st;
  if (automatic) {
    ArrayOptions probe = o;
    probe.convert = {};  // only amax is wanted from this pass
    const double amax = run(probe).amax;
    o.scale = auto_scale(amax, max_finite(f));
  }
  st = run(o);
  npy::Array out;
  out.shape = in.shape;
  if (output == "codes") {
    out = code_array(codes, bits, in.shape);
  } else {
    out.dtype = npy::DType::float32;
    out.data.resize(n * 4);
    dequantize(f, codes, std::span<float>(reinterpret_cast<float*>(out.data.data()), n), o);
  }
  npy::write(a.pos[1], out);
  std::cout << "quantized " << n << " " << npy::dtype_name(in.dtype) << " values to "
            << format_name(f) << " (" << rounding_name(o.convert.rounding) << ", "
            << saturation_name(o.convert.saturation) << "); amax " << shortest(st.amax)
            << "; scale " << shortest(o.scale)
            << (automatic                ? " (auto)"
                : a.opt.count("--scale") ? ""
                                         : " (default)")
            << "; " << random_text(o.convert, o.seed) << "\n";
  return 0;
}

int cmd_dequantize(int argc, char** argv) {
  Args a = parse_args(argc, argv, {"--format", "--scale", "--dtype", "--threads"}, {"--help"});
  if (a.opt.count("--help")) return std::cout << kDequantizeHelp << kVariantHelp, 0;
  if (a.pos.size() != 2 || !a.opt.count("--format"))
    throw UsageError("usage: fp8emu dequantize --format F [--scale X] [--dtype T] IN.npy OUT.npy");
  const Format f = format_arg(a.opt["--format"]);
  ArrayOptions o;
  o.exec.threads = threads_arg(a);
  if (a.opt.count("--scale")) o.scale = scale_arg(a.opt["--scale"], "--scale");
  const std::string dtype = a.opt.count("--dtype") ? a.opt["--dtype"] : "float32";
  if (dtype != "float32" && dtype != "float64" && dtype != "float16")
    throw UsageError("unknown --dtype '" + dtype + "' (float32 float64 float16)");
  if (dtype != "float64" && !fits_float(f))
    throw UsageError("the values of " + format_name(f) + " do not fit in float32; use --dtype float64");
  const npy::Array in = npy::read(a.pos[0]);
  const std::size_t n = in.size();
  std::vector<std::uint32_t> codes(n);
  switch (in.dtype) {
    case npy::DType::uint8:
      for (std::size_t i = 0; i < n; ++i) codes[i] = in.data[i];
      break;
    case npy::DType::uint16:
      for (std::size_t i = 0; i < n; ++i) codes[i] = view<std::uint16_t>(in)[i];
      break;
    case npy::DType::int32:
      for (std::size_t i = 0; i < n; ++i) {
        const std::int32_t c = view<std::int32_t>(in)[i];
        if (c < 0) throw UsageError("negative code " + std::to_string(c) + " at index " + std::to_string(i));
        codes[i] = std::uint32_t(c);
      }
      break;
    default:
      throw UsageError(a.pos[0] + " holds " + npy::dtype_name(in.dtype) +
                       "; dequantize reads codes as uint8, uint16 or int32");
  }
  npy::Array out;
  out.shape = in.shape;
  out.dtype = dtype == "float32"   ? npy::DType::float32
              : dtype == "float64" ? npy::DType::float64
                                   : npy::DType::float16;
  out.data.resize(n * npy::item_size(out.dtype));
  if (dtype == "float32") {
    dequantize(f, codes, std::span<float>(reinterpret_cast<float*>(out.data.data()), n), o);
  } else if (dtype == "float64") {
    dequantize(f, codes, std::span<double>(reinterpret_cast<double*>(out.data.data()), n), o);
  } else {
    // The exact values (they fit in float), divided by the scale rounded to odd in double
    // (53 >= 11 + 2 bits: the nearest-even float16 of that is the one of the exact quotient),
    // then rounded to float16 by the library.
    std::vector<double> v(n);
    ArrayOptions exact = o;
    exact.scale = 1.0f;
    dequantize(f, codes, std::span<double>(v), exact);
    if (o.scale != 1.0f)
      for (double& x : v) {
        const double q = x / double(o.scale);
        const double r = std::fma(q, double(o.scale), -x);  // q * scale - x, exact
        const bool even = (std::bit_cast<std::uint64_t>(q) & 1) == 0;
        x = r != 0 && std::isfinite(q) && even ? std::nextafter(q, r < 0 ? HUGE_VAL : -HUGE_VAL)
                                               : q;
      }
    ArrayOptions to16 = o;
    to16.scale = 1.0f;
    to16.convert = ConvertOptions{Rounding::nearest_even, Saturation::none};
    std::vector<std::uint16_t> h(n);
    quantize(formats::float16{}, std::span<const double>(v), std::span<std::uint16_t>(h), to16);
    if (n) std::memcpy(out.data.data(), h.data(), 2 * n);
  }
  npy::write(a.pos[1], out);
  std::cout << "dequantized " << n << " codes of " << format_name(f) << " to " << dtype << "\n";
  return 0;
}

}  // namespace

// One operand of gemm: its codes (as a CodeMatrix over owned storage), its scales, and a
// line that says which scales were used.
struct GemmOperand {
  npy::Array codes;
  std::vector<float> fscales;
  std::vector<std::uint8_t> cscales;
  Scales scales;
  CodeMatrix m;
  std::string summary;
};

// The block scalings of float operands (--a-scale / --b-scale): one scale per block of the
// operand, computed from the block's largest magnitude (docs/gemm.md, "Command line").
enum class BlockKind : std::uint8_t {
  block,  ///< DeepSeek-V3: blocks of R x C, float32 scales.
  mx,     ///< OCP MX v1.0: blocks of 32 along K, e8m0 scales.
  nvfp4,  ///< NVFP4: blocks of 16 along K, e4m3fn scales and a float32 tensor scale.
};

struct BlockRule {
  BlockKind kind;
  std::string_view name;    ///< Its --X-scale spelling.
  std::int64_t k_block;     ///< Elements per block along K; 0: given as block:RxC.
  ScaleEncoding encoding;   ///< How gemm receives the scales.
  std::string_view format;  ///< The operand's default format.
};

constexpr BlockRule kBlockRules[] = {
    {BlockKind::block, "block:RxC", 0, ScaleEncoding::float32, "e4m3fn"},
    {BlockKind::mx, "mx", 32, ScaleEncoding::e8m0, "e4m3fn"},
    {BlockKind::nvfp4, "nvfp4", 16, ScaleEncoding::e4m3, "e2m1fn"},
};

// Returns the rule of a --X-scale spelling, or nullptr when it names no block scaling.
const BlockRule* block_rule(const std::string& s) {
  for (const BlockRule& r : kBlockRules) {
    if (r.k_block ? s == r.name : s.starts_with(r.name.substr(0, r.name.find(':') + 1))) return &r;
  }
  return nullptr;
}

// The scales of one block: inputs are quantized as x * quant; gemm multiplies the decoded
// codes by `value` (given to it as `code` for e8m0 and e4m3 scales).
struct BlockScale {
  float quant = 1.0f, value = 1.0f;
  std::uint8_t code = 0;
};

// Returns the scales of a block whose largest magnitude is `amax` (finite), for elements
// of format f; `encode` is NVFP4's tensor encode scale.
BlockScale block_scale(BlockKind kind, double amax, const Format& f, float encode) {
  const double fmax = max_finite(f);
  switch (kind) {
    case BlockKind::block: {
      const float q = auto_scale(amax, fmax);  // amax * q <= fmax; 1 when amax = 0
      return {q, 1.0f / q, 0};
    }
    case BlockKind::mx: {
      // X = 2^(floor(log2 amax) - emax), emax the exponent of f's largest value, within
      // e8m0's 2^-127..2^127; 2^-127 for amax = 0 (OCP MX v1.0, section 6.3).
      const int e = amax > 0 ? std::clamp(std::ilogb(amax) - std::ilogb(fmax), -127, 127) : -127;
      return {std::ldexp(1.0f, -e), std::ldexp(1.0f, e), std::uint8_t(e + 127)};
    }
    case BlockKind::nvfp4: {
      // In float32, as Transformer Engine's reference quantizer: the block's scale is the
      // e4m3fn code nearest amax (encode (1 / fmax)) (saturating at 448); the inputs are
      // quantized times 1 / (scale tensor), tensor = 1 / encode. A block whose scale is 0
      // decodes to zeros, whatever its codes.
      constexpr float big = std::numeric_limits<float>::max();
      const float tensor = 1.0f / encode;
      const float v = std::min(float(amax) * (encode * (1.0f / float(fmax))), big);
      const auto c = std::uint8_t(fp8emu::encode(formats::e4m3fn{}, v));
      const float d = float(decode(formats::e4m3fn{}, c));
      if (d == 0) return {1.0f, 0.0f, c};
      return {std::min(1.0f / (d * tensor), big), d, c};
    }
  }
  return {};
}

// Returns NVFP4's tensor encode scale for an operand of largest magnitude amax (a float):
// 448 fmax / amax in float32 (448 = e4m3fn's largest value), at most the largest float;
// 1 for amax = 0. Its reciprocal (float32) is the tensor scale gemm multiplies by.
float nvfp4_encode_scale(double amax, const Format& f) {
  if (!(amax > 0)) return 1.0f;
  const float e = float(max_finite(formats::e4m3fn{}) * max_finite(f)) / float(amax);
  return std::min(e, std::numeric_limits<float>::max());
}

// Returns "N blocks, min X, max Y" over the scale values of the non-empty grid.
std::string scale_range(const std::vector<float>& values) {
  if (values.empty()) return "0 blocks";
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  return std::to_string(values.size()) + " blocks, min " + shortest(*lo) + ", max " + shortest(*hi);
}

std::pair<std::int64_t, std::int64_t> block_arg(const std::string& s, const std::string& opt) {
  const auto x = s.find('x');
  if (x == std::string::npos) throw UsageError("invalid " + opt + " '" + s + "' (expected RxC, e.g. 1x128)");
  const auto r = parse_unsigned(s.substr(0, x), opt, 1u << 30, 1);
  const auto c = parse_unsigned(s.substr(x + 1), opt, 1u << 30, 1);
  return {std::int64_t(r), std::int64_t(c)};
}

// Quantizes a float operand with one scale per block of br x bc by the rule `r`
// (quantize_blocks), and sets op's codes, scales and summary.
void quantize_blocked(GemmOperand& op, const npy::Array& in, const Format& f, const BlockRule& r,
                      std::int64_t br, std::int64_t bc, const std::string& what) {
  const std::int64_t rows = std::int64_t(in.shape[0]), cols = std::int64_t(in.shape[1]);
  std::vector<float> x(in.size());
  if (in.dtype == npy::DType::float32) {
    if (!x.empty()) std::memcpy(x.data(), in.data.data(), 4 * x.size());
  } else if (in.dtype == npy::DType::float16) {
    dequantize(formats::float16{}, view<std::uint16_t>(in), std::span<float>(x));  // exact
  } else {
    throw UsageError(what + " quantizes float32 or float16 values; the input holds " +
                     npy::dtype_name(in.dtype));
  }
  const std::int64_t gr = (rows + br - 1) / br, gc = (cols + bc - 1) / bc;
  std::vector<double> amax(std::size_t(gr * gc), 0.0);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      const float v = x[std::size_t(i * cols + j)];
      if (!std::isfinite(v))
        throw UsageError(what + ": element (" + std::to_string(i) + ", " + std::to_string(j) +
                         ") is " + shortest(v) + "; block scales need finite inputs");
      double& m = amax[std::size_t(i / br * gc + j / bc)];
      m = std::max(m, double(std::fabs(v)));
    }
  const double tensor_amax = amax.empty() ? 0.0 : *std::max_element(amax.begin(), amax.end());
  const float encode = r.kind == BlockKind::nvfp4 ? nvfp4_encode_scale(tensor_amax, f) : 1.0f;
  const float tensor = 1.0f / encode;
  std::vector<float> quant(amax.size()), values(amax.size());
  std::size_t zero = 0;
  for (std::size_t b = 0; b < amax.size(); ++b) {
    const BlockScale s = block_scale(r.kind, amax[b], f, encode);
    quant[b] = s.quant;
    values[b] = s.value;
    zero += amax[b] == 0;
    if (r.encoding == ScaleEncoding::float32)
      op.fscales.push_back(s.value);
    else
      op.cscales.push_back(s.code);
  }
  std::vector<std::uint32_t> codes(x.size());
  try {
    quantize_blocks(f, x, BlockScales{rows, cols, br, bc, quant}, std::span<std::uint32_t>(codes));
  } catch (const std::invalid_argument& e) {
    throw UsageError(what + ": " + e.what());
  }
  op.codes = code_array(codes, total_bits(f), in.shape);
  op.scales.data = r.encoding == ScaleEncoding::float32
                       ? static_cast<const void*>(op.fscales.data())
                       : static_cast<const void*>(op.cscales.data());
  op.scales.encoding = r.encoding;
  op.scales.block_rows = br;
  op.scales.block_cols = bc;
  op.scales.tensor = tensor;
  const char* enc = r.encoding == ScaleEncoding::float32 ? "float32"
                    : r.encoding == ScaleEncoding::e8m0  ? "e8m0"
                                                         : "e4m3fn";
  op.summary = std::string(r.kind == BlockKind::block ? "block" : r.name) + " scales of " +
               std::to_string(br) + "x" + std::to_string(bc) + " blocks (" + enc +
               "): " + scale_range(values) + "; " + std::to_string(zero) + " with amax 0" +
               (r.kind == BlockKind::nvfp4
                    ? "; tensor scale " + shortest(tensor) + " (amax " + shortest(tensor_amax) + ")"
                    : "");
}

GemmOperand gemm_operand(Args& a, const std::string& name) {
  const std::string path = a.opt["--" + name];
  const std::string sopt = "--" + name + "-scale";
  const std::string sarg = a.opt.count(sopt) ? a.opt[sopt] : "";
  const BlockRule* rule = block_rule(sarg);
  const std::string fopt = "--" + name + "-format";
  const Format f =
      format_arg(a.opt.count(fopt) ? a.opt[fopt] : std::string(rule ? rule->format : "e4m3fn"));
  if (total_bits(f) > 16) throw UsageError("--" + name + "-format: codes of at most 16 bits");
  if (!fits_float(f)) throw UsageError("--" + name + "-format: the values must fit in float32");
  GemmOperand op;
  npy::Array in = npy::read(path);
  if (in.shape.size() != 2)
    throw UsageError(path + ": expected a 2-D array, got " + std::to_string(in.shape.size()) + " dimensions");
  const std::int64_t rows = std::int64_t(in.shape[0]), cols = std::int64_t(in.shape[1]);
  const bool is_float = in.dtype == npy::DType::float16 || in.dtype == npy::DType::float32 ||
                        in.dtype == npy::DType::float64;
  const npy::DType code_type = total_bits(f) <= 8 ? npy::DType::uint8 : npy::DType::uint16;
  const std::size_t n = in.size();
  op.scales.tensor = 1.0f;
  float quant_scale = 1.0f;  // x * quant_scale is quantized; 1 / quant_scale dequantizes
  op.summary = is_float ? format_name(f) + " from " + npy::dtype_name(in.dtype) + ", no scale"
                        : format_name(f) + " codes, no scale";
  const bool file = sarg.size() > 4 && sarg.ends_with(".npy");
  for (const std::string o : {"-block", "-scale-codes"})
    if (!file && a.opt.count("--" + name + o))
      throw UsageError("--" + name + o + " applies to " + sopt +
                       " FILE.npy (block scales of code inputs)");
  if (rule) {
    if (!is_float)
      throw UsageError(sopt + " " + sarg + " needs float input (" + path + " holds codes)");
    std::int64_t br = 1, bc = 1;
    if (rule->k_block)
      (name == "a" ? bc : br) = rule->k_block;
    else
      std::tie(br, bc) = block_arg(sarg.substr(sarg.find(':') + 1), sopt + " block:");
    quantize_blocked(op, in, f, *rule, br, bc, sopt + " " + sarg);
    op.summary = format_name(f) + " from " + npy::dtype_name(in.dtype) + ", " + op.summary;
    op.m = CodeMatrix{f, op.codes.data.data(), rows, cols, Layout::row_major, 0};
    return op;
  }
  if (sarg == "auto") {
    if (!is_float) throw UsageError(sopt + " auto needs float input (" + path + " holds codes)");
  } else if (file) {
    // Block scales from a file.
    const std::string bopt = "--" + name + "-block";
    if (!a.opt.count(bopt)) throw UsageError(sopt + " FILE.npy needs " + bopt + " RxC");
    const auto [br, bc] = block_arg(a.opt[bopt], bopt);
    const npy::Array sc = npy::read(sarg);
    const std::size_t want = std::size_t((rows + br - 1) / br * ((cols + bc - 1) / bc));
    if (sc.size() != want)
      throw UsageError(sarg + ": " + std::to_string(sc.size()) + " scales for " + std::to_string(want) +
                       " blocks of " + std::to_string(br) + "x" + std::to_string(bc));
    op.scales.block_rows = br;
    op.scales.block_cols = bc;
    if (sc.dtype == npy::DType::uint8) {
      const std::string copt = "--" + name + "-scale-codes";
      const std::string enc = a.opt.count(copt) ? a.opt[copt] : "e8m0";
      if (enc != "e8m0" && enc != "e4m3") throw UsageError(copt + " must be e8m0 or e4m3");
      op.cscales.assign(sc.data.begin(), sc.data.end());
      op.scales.data = op.cscales.data();
      op.scales.encoding = enc == "e8m0" ? ScaleEncoding::e8m0 : ScaleEncoding::e4m3;
    } else if (sc.dtype == npy::DType::float32 || sc.dtype == npy::DType::float64) {
      op.fscales.resize(sc.size());
      for (std::size_t i = 0; i < sc.size(); ++i)
        op.fscales[i] = sc.dtype == npy::DType::float32 ? view<float>(sc)[i] : float(view<double>(sc)[i]);
      op.scales.data = op.fscales.data();
    } else {
      throw UsageError(sarg + ": scales must be float32, float64 or uint8 codes");
    }
    if (is_float) throw UsageError(sopt + " FILE.npy applies to code inputs; quantize float inputs first");
    op.summary = format_name(f) + " codes, " + std::to_string(sc.size()) + " scales of " +
                 std::to_string(br) + "x" + std::to_string(bc) + " blocks from " + sarg;
  } else if (!sarg.empty()) {
    op.scales.tensor = scale_arg(sarg, sopt, ", or auto, FILE.npy, block:RxC, mx, nvfp4");
    op.summary = (is_float ? format_name(f) + " from " + npy::dtype_name(in.dtype)
                           : format_name(f) + " codes") +
                 ", tensor scale " + shortest(op.scales.tensor);
    if (is_float) {
      quant_scale = 1.0f / op.scales.tensor;
      if (!(quant_scale > 0.0f && std::isfinite(quant_scale))) throw UsageError(sopt + ": 1/scale is not a finite float");
    }
  }
  if (is_float) {
    std::vector<std::uint32_t> codes(n);
    ArrayOptions qo;
    const auto run = [&](const ArrayOptions& o) {
      switch (in.dtype) {
        case npy::DType::float16: return quantize_float16_bits(f, view<std::uint16_t>(in), codes, o);
        case npy::DType::float32: return quantize(f, view<float>(in), codes, o);
        default: return quantize(f, view<double>(in), codes, o);
      }
    };
    if (sarg == "auto") {
      const double amax = run(qo).amax;
      quant_scale = auto_scale(amax, max_finite(f));
      op.scales.tensor = 1.0f / quant_scale;
      op.summary = format_name(f) + " from " + npy::dtype_name(in.dtype) + ", tensor scale " +
                   shortest(op.scales.tensor) + " (auto: amax " + shortest(amax) + ")";
    }
    qo.scale = quant_scale;
    run(qo);
    op.codes = code_array(codes, total_bits(f), in.shape);
  } else if (in.dtype == code_type) {
    op.codes = std::move(in);
    // Every code must belong to the format.
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint32_t c = code_type == npy::DType::uint8 ? op.codes.data[i] : view<std::uint16_t>(op.codes)[i];
      if (total_bits(f) < 32 && (c >> total_bits(f)) != 0)
        throw UsageError(path + ": element " + std::to_string(i) + " (code " + std::to_string(c) +
                         ") does not fit in " + format_name(f));
    }
  } else {
    throw UsageError(path + " holds " + npy::dtype_name(in.dtype) + "; codes of " + format_name(f) +
                     " are " + npy::dtype_name(code_type) + " (or give float16/32/64 values)");
  }
  op.m = CodeMatrix{f, op.codes.data.data(), rows, cols, Layout::row_major, 0};
  return op;
}

int cmd_gemm(int argc, char** argv) {
  Args a = parse_args(argc, argv,
                      {"--a", "--b", "--c", "--a-format", "--b-format", "--a-scale", "--b-scale",
                       "--a-block", "--b-block", "--a-scale-codes", "--b-scale-codes", "--accumulate",
                       "--alpha", "--beta", "--out-format", "--threads"},
                      {"--help"});
  if (a.opt.count("--help")) return std::cout << kGemmHelp << kVariantHelp, 0;
  if (a.pos.size() != 1 || !a.opt.count("--a") || !a.opt.count("--b"))
    throw UsageError("usage: fp8emu gemm --a A.npy --b B.npy [options] OUT.npy");
  GemmOptions o;
  try {
    o.accumulation = parse_accumulation(a.opt.count("--accumulate") ? a.opt["--accumulate"] : "fp32");
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--accumulate: ") + e.what());
  }
  o.exec.threads = threads_arg(a);
  if (a.opt.count("--alpha")) o.alpha = float(parse_value(a.opt["--alpha"]));
  if (a.opt.count("--beta")) o.beta = float(parse_value(a.opt["--beta"]));
  std::optional<Format> out_format;
  if (a.opt.count("--out-format")) {
    out_format = format_arg(a.opt["--out-format"]);
    if (total_bits(*out_format) > 16) throw UsageError("--out-format: codes of at most 16 bits");
  }
  const GemmOperand A = gemm_operand(a, "a"), B = gemm_operand(a, "b");
  if (A.m.cols != B.m.rows)
    throw UsageError("shape mismatch: A is " + std::to_string(A.m.rows) + "x" + std::to_string(A.m.cols) +
                     " and B is " + std::to_string(B.m.rows) + "x" + std::to_string(B.m.cols));
  o.a_scales = A.scales;
  o.b_scales = B.scales;
  const std::int64_t M = A.m.rows, N = B.m.cols;
  std::vector<float> c(std::size_t(M * N), 0.0f);
  if (o.beta != 0.0f) {
    if (!a.opt.count("--c")) throw UsageError("--beta needs --c C.npy");
    const npy::Array ca = npy::read(a.opt["--c"]);
    if (ca.dtype != npy::DType::float32 || ca.shape != std::vector<std::size_t>{std::size_t(M), std::size_t(N)})
      throw UsageError(a.opt["--c"] + ": C must be float32 of shape " + std::to_string(M) + "x" + std::to_string(N));
    if (!c.empty()) std::memcpy(c.data(), ca.data.data(), c.size() * 4);
  }
  try {
    gemm(A.m, B.m, c.data(), N, o);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  npy::Array out;
  out.shape = {std::size_t(M), std::size_t(N)};
  if (out_format) {
    std::vector<std::uint32_t> codes(c.size());
    quantize(*out_format, std::span<const float>(c), codes, ArrayOptions{});
    out = code_array(codes, total_bits(*out_format), out.shape);
  } else {
    out.dtype = npy::DType::float32;
    out.data.resize(c.size() * 4);
    if (!c.empty()) std::memcpy(out.data.data(), c.data(), c.size() * 4);
  }
  npy::write(a.pos[0], out);
  std::cout << "gemm " << M << "x" << A.m.cols << " (" << format_name(A.m.format) << ") by "
            << B.m.rows << "x" << N << " (" << format_name(B.m.format) << "), accumulation "
            << accumulation_spec(o.accumulation)
            << (gemm_fast_path(A.m, B.m, o) ? "" : " (reference path)") << "; "
            << random_text(o.accumulation.convert, o.accumulation.seed) << "\n"
            << "  A: " << A.summary << "\n"
            << "  B: " << B.summary << "\n";
  return 0;
}

namespace {

constexpr const char* kCompareHelp =
    "usage: fp8emu compare --format F --expected E.npy --actual A.npy [options]\n"
    "\n"
    "Compares a kernel's output (A) with the expected output (E) element by element,\n"
    "in ulps of format F, and prints the bit-exact matches, a histogram of the ulp\n"
    "distances of the mismatches, the largest absolute and relative errors, the\n"
    "mismatches by class (nan_vs_number, nan_bits, inf_vs_finite, sign,\n"
    "zero_vs_subnormal, zero_vs_normal, magnitude) and the first mismatches with their\n"
    "index and both values, decoded and in hex. E and A must have the same shape and\n"
    "dtype.\n"
    "\n"
    "options:\n"
    "  --as codes|values    codes: uint8 / uint16 / int32 arrays of F's codes, NaN codes\n"
    "                       compared bit for bit; values: float16 / float32 / float64\n"
    "                       arrays, distances measured on F's grid (fractional off it),\n"
    "                       any NaN equal to any NaN (default: from the dtype)\n"
    "  --tolerance-ulps N   accept mismatches of at most N ulps (N >= 0, may be\n"
    "                       fractional); NaN vs number and infinity vs anything else\n"
    "                       are never accepted. Default 0: bit-exact only\n"
    "  --show N             list the first N mismatches (default 10)\n"
    "  --json REPORT        also write the report as JSON (written whole, as OUT of quantize)\n"
    "\n"
    "Exit status: 0 when every element is bit-identical or within the tolerance, 1\n"
    "otherwise, 2 on bad input (shape or dtype mismatch, unreadable file, a code that\n"
    "does not fit F, bad option) with a message.\n";

// The two arrays of a comparison and how to print their elements.
struct CompareInput {
  Format f;
  bool codes = true;
  npy::Array e, a;
};

// Returns element i as its bits (the dtype's width).
std::uint64_t raw_bits(const npy::Array& x, std::size_t i) {
  const std::size_t w = npy::item_size(x.dtype);
  std::uint64_t b = 0;
  std::memcpy(&b, x.data.data() + i * w, w);
  return b;
}

// Returns element i decoded, in its shortest round-trip form, with its hex bits.
std::string shown(const CompareInput& in, const npy::Array& x, std::size_t i, double value) {
  const std::uint64_t b = raw_bits(x, i);
  if (in.codes) return shortest(value) + " (" + hex_code(b, total_bits(in.f)) + ")";
  const int bits = int(8 * npy::item_size(x.dtype));
  const std::string v = x.dtype == npy::DType::float64 ? shortest(value) : shortest(float(value));
  return v + " (" + hex_code(b, bits) + ")";
}

std::string multi_index(const std::vector<std::size_t>& shape, std::uint64_t flat) {
  if (shape.empty()) return "[]";
  std::vector<std::uint64_t> idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::string s = "[";
  for (std::size_t d = 0; d < idx.size(); ++d) s += (d ? ", " : "") + std::to_string(idx[d]);
  return s + "]";
}

std::string shape_text(const std::vector<std::size_t>& shape) {
  if (shape.empty()) return "scalar";
  std::string s;
  for (std::size_t d = 0; d < shape.size(); ++d) s += (d ? "x" : "") + std::to_string(shape[d]);
  return s;
}

std::string percent(std::uint64_t n, std::uint64_t total) {
  if (total == 0) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f%%", 100.0 * double(n) / double(total));
  return buf;
}

// JSON has no NaN or infinity: such numbers are written as strings ("nan", "-inf").
std::string json_number(double x) {
  if (!std::isfinite(x)) return "\"" + shortest(x) + "\"";
  return shortest(x);
}

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (static_cast<unsigned char>(c) < 0x20) o += ' ';
    else o += c;
  }
  return o + "\"";
}

std::string report_json(const CompareInput& in, const CompareReport& r, double tolerance,
                        const std::string& epath, const std::string& apath) {
  std::string j = "{\n";
  auto field = [&](const std::string& k, const std::string& v, bool last = false) {
    j += "  " + json_string(k) + ": " + v + (last ? "\n" : ",\n");
  };
  field("format", json_string(format_name(in.f)));
  field("as", json_string(in.codes ? "codes" : "values"));
  field("expected", json_string(epath));
  field("actual", json_string(apath));
  field("dtype", json_string(npy::dtype_name(in.e.dtype)));
  std::string shape = "[";
  for (std::size_t d = 0; d < in.e.shape.size(); ++d) shape += (d ? ", " : "") + std::to_string(in.e.shape[d]);
  field("shape", shape + "]");
  field("tolerance_ulps", json_number(tolerance));
  field("total", std::to_string(r.total));
  field("exact", std::to_string(r.exact));
  field("tolerated", std::to_string(r.tolerated));
  field("failed", std::to_string(r.failed));
  field("passed", r.passed() ? "true" : "false");
  std::string hist = "[";
  bool first = true;
  for (std::size_t b = 0; b < kUlpBuckets; ++b)
    if (r.histogram[b]) {
      hist += std::string(first ? "" : ", ") + "{\"ulps\": " + json_string(ulp_bucket_label(b)) +
              ", \"count\": " + std::to_string(r.histogram[b]) + "}";
      first = false;
    }
  field("ulp_histogram", hist + "]");
  std::string kinds = "{";
  for (std::size_t k = 0; k < kDifferenceCount; ++k)
    kinds += std::string(k ? ", " : "") + json_string(std::string(difference_name(Difference(k)))) +
             ": " + std::to_string(r.by_kind[k]);
  field("by_class", kinds + "}");
  auto extreme = [&](double v, std::uint64_t i) {
    if (!(v > 0)) return std::string("null");
    return "{\"value\": " + json_number(v) + ", \"index\": " + std::to_string(i) +
           ", \"at\": " + json_string(multi_index(in.e.shape, i)) + "}";
  };
  field("max_ulps", extreme(r.max_ulps, r.max_ulps_index));
  field("max_abs_error", extreme(r.max_abs_error, r.max_abs_index));
  field("max_rel_error", extreme(r.max_rel_error, r.max_rel_index));
  if (!in.codes) {
    field("off_grid_expected", std::to_string(r.off_grid_expected));
    field("off_grid_actual", std::to_string(r.off_grid_actual));
  }
  std::string list = "[";
  for (std::size_t k = 0; k < r.first.size(); ++k) {
    const MismatchRecord& m = r.first[k];
    const int bits = in.codes ? total_bits(in.f) : int(8 * npy::item_size(in.e.dtype));
    list += std::string(k ? ",\n    " : "\n    ") + "{\"index\": " + std::to_string(m.index) +
            ", \"at\": " + json_string(multi_index(in.e.shape, m.index)) +
            ", \"expected\": " + json_number(m.expected) +
            ", \"expected_hex\": " + json_string(hex_code(raw_bits(in.e, m.index), bits)) +
            ", \"actual\": " + json_number(m.actual) +
            ", \"actual_hex\": " + json_string(hex_code(raw_bits(in.a, m.index), bits)) +
            ", \"ulps\": " + json_number(m.ulps) +
            ", \"class\": " + json_string(std::string(difference_name(m.kind))) +
            ", \"tolerated\": " + (m.tolerated ? "true" : "false") + "}";
  }
  field("first_mismatches", list + (r.first.empty() ? "]" : "\n  ]"), true);
  return j + "}\n";
}

void print_report(const CompareInput& in, const CompareReport& r, double tolerance) {
  std::printf("compare: %llu elements of %s %s (%s, shape %s), tolerance %s ulps\n",
              (unsigned long long)r.total, format_name(in.f).c_str(), in.codes ? "codes" : "values",
              npy::dtype_name(in.e.dtype), shape_text(in.e.shape).c_str(), shortest(tolerance).c_str());
  std::printf("  %-20s %12llu  %s\n", "bit-exact", (unsigned long long)r.exact, percent(r.exact, r.total).c_str());
  std::printf("  %-20s %12llu  %s\n", "within tolerance", (unsigned long long)r.tolerated,
              percent(r.tolerated, r.total).c_str());
  std::printf("  %-20s %12llu  %s\n", "beyond tolerance", (unsigned long long)r.failed,
              percent(r.failed, r.total).c_str());
  if (!in.codes && (r.off_grid_expected || r.off_grid_actual))
    std::printf("  not values of %s: %llu expected, %llu actual (distances are fractional there)\n",
                format_name(in.f).c_str(), (unsigned long long)r.off_grid_expected,
                (unsigned long long)r.off_grid_actual);
  const std::uint64_t mismatches = r.tolerated + r.failed;
  if (mismatches == 0) {
    std::printf("PASS: every element is bit-exact\n");
    return;
  }
  std::printf("ulp distance of the mismatches:\n");
  for (std::size_t b = 0; b < kUlpBuckets; ++b)
    if (r.histogram[b])
      std::printf("  %-20s %12llu\n", ulp_bucket_label(b).c_str(), (unsigned long long)r.histogram[b]);
  std::printf("mismatches by class:\n");
  for (std::size_t k = 0; k < kDifferenceCount; ++k)
    if (r.by_kind[k])
      std::printf("  %-20s %12llu\n", std::string(difference_name(Difference(k))).c_str(),
                  (unsigned long long)r.by_kind[k]);
  if (r.max_abs_error > 0 || r.max_ulps > 0) {
    std::printf("largest errors (pairs of finite values):\n");
    auto line = [&](const char* what, double v, std::uint64_t i) {
      if (!(v > 0)) return;
      std::printf("  %-9s %-14s at %s (flat %llu)\n", what, shortest(v).c_str(),
                  multi_index(in.e.shape, i).c_str(), (unsigned long long)i);
    };
    line("ulps", r.max_ulps, r.max_ulps_index);
    line("absolute", r.max_abs_error, r.max_abs_index);
    line("relative", r.max_rel_error, r.max_rel_index);
  }
  if (!r.first.empty()) {
    std::printf("first %zu mismatches:\n", r.first.size());
    std::printf("  %-16s %10s  %-26s %-26s %10s  %s\n", "index", "flat", "expected", "actual", "ulps",
                "class");
    for (const MismatchRecord& m : r.first)
      std::printf("  %-16s %10llu  %-26s %-26s %10s  %s%s\n", multi_index(in.e.shape, m.index).c_str(),
                  (unsigned long long)m.index, shown(in, in.e, m.index, m.expected).c_str(),
                  shown(in, in.a, m.index, m.actual).c_str(), shortest(m.ulps).c_str(),
                  std::string(difference_name(m.kind)).c_str(), m.tolerated ? " (tolerated)" : "");
  }
  if (r.passed())
    std::printf("PASS: %llu mismatches, all within %s ulps\n", (unsigned long long)mismatches,
                shortest(tolerance).c_str());
  else
    std::printf("FAIL: %llu element%s differ%s by more than %s ulps\n", (unsigned long long)r.failed,
                r.failed == 1 ? "" : "s", r.failed == 1 ? "s" : "", shortest(tolerance).c_str());
}

int cmd_compare(int argc, char** argv) {
  Args a = parse_args(argc, argv, {"--format", "--expected", "--actual", "--as", "--tolerance-ulps", "--show", "--json"},
                      {"--help"});
  if (a.opt.count("--help")) return std::cout << kCompareHelp << kVariantHelp, 0;
  if (!a.pos.empty() || !a.opt.count("--format") || !a.opt.count("--expected") || !a.opt.count("--actual"))
    throw UsageError("usage: fp8emu compare --format F --expected E.npy --actual A.npy [options]");
  CompareInput in;
  in.f = format_arg(a.opt["--format"]);
  double tolerance = 0;
  if (a.opt.count("--tolerance-ulps")) {
    tolerance = parse_finite(a.opt["--tolerance-ulps"], "--tolerance-ulps", "a finite number >= 0");
    if (!(tolerance >= 0))
      throw UsageError("invalid --tolerance-ulps '" + a.opt["--tolerance-ulps"] +
                       "': expected a finite number >= 0");
  }
  CompareOptions o;
  o.tolerance_ulps = tolerance;
  if (a.opt.count("--show")) o.keep = parse_unsigned(a.opt["--show"], "--show", 1000000);
  const std::string epath = a.opt["--expected"], apath = a.opt["--actual"];
  auto load = [](const std::string& path, const char* which) {
    try {
      return npy::read(path);
    } catch (const npy::Error& e) {
      throw UsageError(std::string(which) + " " + e.what());
    }
  };
  in.e = load(epath, "--expected:");
  in.a = load(apath, "--actual:");
  if (in.e.shape != in.a.shape)
    throw UsageError("shape mismatch: " + epath + " is " + shape_text(in.e.shape) + ", " + apath + " is " +
                     shape_text(in.a.shape));
  if (in.e.dtype != in.a.dtype)
    throw UsageError(std::string("dtype mismatch: ") + epath + " holds " + npy::dtype_name(in.e.dtype) + ", " +
                     apath + " holds " + npy::dtype_name(in.a.dtype));
  const npy::DType dt = in.e.dtype;
  const bool float_dtype = dt == npy::DType::float16 || dt == npy::DType::float32 || dt == npy::DType::float64;
  const std::string as = a.opt.count("--as") ? a.opt["--as"] : (float_dtype ? "values" : "codes");
  if (as != "codes" && as != "values") throw UsageError("unknown --as '" + as + "' (codes values)");
  in.codes = as == "codes";
  if (in.codes && float_dtype)
    throw UsageError(std::string("--as codes needs arrays of codes (uint8, uint16 or int32); the inputs hold ") +
                     npy::dtype_name(dt));
  if (!in.codes && !float_dtype)
    throw UsageError(std::string("--as values needs float16, float32 or float64 arrays; the inputs hold ") +
                     npy::dtype_name(dt) + " (use --as codes)");
  if (in.codes && int(8 * npy::item_size(dt)) < total_bits(in.f))
    throw UsageError("codes of " + format_name(in.f) + " have " + std::to_string(total_bits(in.f)) + " bits; " +
                     npy::dtype_name(dt) + " cannot hold them");
  if (in.codes && total_bits(in.f) > 32) throw UsageError("codes mode takes formats of at most 32 bits");
  CompareReport r;
  try {
    switch (dt) {
      case npy::DType::uint8:
        r = compare_codes(in.f, view<std::uint8_t>(in.e), view<std::uint8_t>(in.a), o);
        break;
      case npy::DType::uint16:
        r = compare_codes(in.f, view<std::uint16_t>(in.e), view<std::uint16_t>(in.a), o);
        break;
      case npy::DType::int32:  // codes of up to 31 bits; a negative int32 does not fit any
        r = compare_codes(in.f, view<std::uint32_t>(in.e), view<std::uint32_t>(in.a), o);
        break;
      case npy::DType::float64:
        r = compare_values(in.f, view<double>(in.e), view<double>(in.a), o);
        break;
      case npy::DType::float32:
        r = compare_values(in.f, view<float>(in.e), view<float>(in.a), o);
        break;
      default: {
        // float16 widened to float (exact); the report shows its bits from the file.
        std::vector<float> ev(in.e.size()), av(in.a.size());
        dequantize(formats::float16{}, view<std::uint16_t>(in.e), std::span<float>(ev));
        dequantize(formats::float16{}, view<std::uint16_t>(in.a), std::span<float>(av));
        r = compare_values(in.f, ev, av, o);
      }
    }
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  print_report(in, r, tolerance);
  if (a.opt.count("--json")) {
    const std::string j = report_json(in, r, tolerance, epath, apath);
    write_file(a.opt["--json"], j);
  }
  std::fflush(stdout);
  return r.passed() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  fp8emu::wait_passively(argv);
  try {
    if (argc < 2) {
      std::cerr << kMainHelp;
      return 2;
    }
    const std::string cmd = argv[1];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") return std::cout << kMainHelp, 0;
    if (cmd == "--version") {
      if (argc > 2) throw UsageError("--version takes no arguments");
      return std::cout << "fp8emu " FP8EMU_VERSION "\n", 0;
    }
    if (cmd == "formats") return cmd_formats(argc - 2, argv + 2);
    if (cmd == "explain") return cmd_explain(argc - 2, argv + 2);
    if (cmd == "table") return cmd_table(argc - 2, argv + 2);
    if (cmd == "quantize") return cmd_quantize(argc - 2, argv + 2);
    if (cmd == "dequantize") return cmd_dequantize(argc - 2, argv + 2);
    if (cmd == "gemm") return cmd_gemm(argc - 2, argv + 2);
    if (cmd == "compare") return cmd_compare(argc - 2, argv + 2);
    throw UsageError("unknown command '" + cmd +
                     "' (formats, explain, table, quantize, dequantize, gemm, compare; see fp8emu --help)");
  } catch (const UsageError& e) {
    std::cerr << "fp8emu: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "fp8emu: error: " << e.what() << "\n";
    return 2;
  }
}
