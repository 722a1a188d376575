// fp8emu: the command-line tool.
//
//   fp8emu formats [--csv]
//   fp8emu explain FORMAT VALUE [options]     fp8emu explain FORMAT --code CODE
//   fp8emu table FORMAT
//   fp8emu quantize --format F [options] IN.npy OUT.npy
//   fp8emu dequantize --format F [--scale X] [--dtype T] IN.npy OUT.npy
//   fp8emu gemm --a A.npy --b B.npy [options] OUT.npy
//   fp8emu compare --format F --expected E.npy --actual A.npy [options]
//
// Exit status: 0 on success, 2 on bad usage or bad input (with a message on stderr);
// compare exits 1 when some element differs beyond the tolerance.
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "fp8emu/array.hpp"
#include "fp8emu/compare.hpp"
#include "fp8emu/explain.hpp"
#include "fp8emu/file.hpp"
#include "fp8emu/gemm.hpp"
#include "fp8emu/npy.hpp"

namespace {

using namespace fp8emu;

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr const char* kMainHelp =
    "fp8emu: bit-exact emulation of FP8 and other low-precision float formats.\n"
    "\n"
    "usage: fp8emu COMMAND [ARGS]   (fp8emu COMMAND --help for details)\n"
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

std::uint64_t parse_unsigned(const std::string& s, const std::string& what, std::uint64_t max) {
  if (s.empty() || s[0] == '-' || s[0] == '+') throw UsageError("invalid " + what + " '" + s + "'");
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (end != s.c_str() + s.size() || errno == ERANGE || v > max)
    throw UsageError("invalid " + what + " '" + s + "' (expected 0.." + std::to_string(max) + ")");
  return v;
}

Format format_arg(const std::string& s) {
  try {
    return parse_format(s);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
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
  if (a.opt.count("--sr-bits")) o.stochastic_bits = int(parse_unsigned(a.opt["--sr-bits"], "--sr-bits", 32));
  if (is_stochastic(o.rounding) && o.stochastic_bits < 1) throw UsageError("--sr-bits must be 1..32");
  return o;
}

int cmd_explain(int argc, char** argv) {
  Args a = parse_args(argc, argv,
                      {"--rounding", "--saturation", "--sr-bits", "--random", "--nan", "--code"},
                      {"--daz", "--ftz", "--help"});
  if (a.opt.count("--help")) return std::cout << kExplainHelp, 0;
  const bool by_code = a.opt.count("--code") > 0;
  if (a.pos.size() != (by_code ? 1u : 2u))
    throw UsageError(by_code ? "usage: fp8emu explain FORMAT --code CODE"
                             : "usage: fp8emu explain FORMAT VALUE [options]");
  const Format f = format_arg(a.pos[0]);
  if (by_code) {
    const int b = total_bits(f);
    const std::uint64_t max = b >= 32 ? 0xFFFFFFFFull : (1ull << b) - 1;
    const auto code = std::uint32_t(parse_unsigned(a.opt["--code"], "code", max));
    const CodeFields c = fields(f, code);
    std::cout << "format      " << format_name(f) << "\n"
              << "code        " << hex_code(code, b) << " = " << field_bits(f, code) << "  ("
              << class_name(c.value_class) << ")\n"
              << "value       " << shortest(c.value) << "\n";
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
  std::cout << to_text(explain(f, x, o, random));
  return 0;
}

int cmd_table(int argc, char** argv) {
  Args a = parse_args(argc, argv, {}, {"--help"});
  if (a.opt.count("--help")) return std::cout << kTableHelp, 0;
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
    "same shape. OUT is written to a temporary file and renamed, so a failed run leaves\n"
    "no partial file.\n"
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
    "usage: fp8emu dequantize --format F [--scale X] [--dtype float32|float64] IN.npy OUT.npy\n"
    "\n"
    "Decodes the codes in IN (uint8, uint16 or int32) of format F and writes their values\n"
    "divided by the scale (default 1), rounded once, as float32 (default) or float64.\n"
    "A code that does not fit in F is an error naming its index.\n";

constexpr const char* kGemmHelp =
    "usage: fp8emu gemm --a A.npy --b B.npy [options] OUT.npy\n"
    "\n"
    "Computes OUT = alpha * A B (+ beta * C) for A (M x K) and B (K x N), 2-D .npy arrays.\n"
    "Code arrays (uint8, uint16) are codes of --a-format / --b-format; float arrays\n"
    "(float16, float32, float64) are first quantized to that format (nearest-even,\n"
    "saturating), with their scale when one is given. OUT is float32 (M x N), or codes of\n"
    "--out-format (nearest-even, saturating).\n"
    "\n"
    "options:\n"
    "  --a-format F, --b-format F   operand formats (default e4m3fn)\n"
    "  --a-scale S, --b-scale S     dequantization scale of the operand: a number; auto\n"
    "                               (float inputs: quantize x * s with amax * s = the format's\n"
    "                               max, and use 1/s); or FILE.npy of block scales (float32,\n"
    "                               float64, or uint8 codes: e8m0 unless --X-scale-codes e4m3)\n"
    "  --a-block RxC, --b-block RxC block shape of a scale file, e.g. 1x128, 128x128, 1x32\n"
    "  --a-scale-codes E, --b-scale-codes E   e8m0 (default) or e4m3 for uint8 scale files\n"
    "  --accumulate SPEC            PRESET[,key=value...] (default fp32); presets: fp32, fp16,\n"
    "                               bf16, nvidia-h100-fp8, nvidia-ada-fp8, nvidia-b200-fp8,\n"
    "                               nvidia-v100-fp16, nvidia-a100-fp16, nvidia-h100-fp16,\n"
    "                               amd-mi300-fp8, amd-mi300-fp16; keys in docs/gemm.md\n"
    "  --alpha X, --beta X          (default 1 and 0); --c C.npy is read when beta != 0\n"
    "  --out-format F               write codes of F instead of float32 values\n"
    "  --threads N                  OpenMP threads (default: all)\n";

float scale_arg(const std::string& s) {
  const double v = parse_value(s);
  const float f = float(v);
  if (!(f > 0.0f && std::isfinite(f)))
    throw UsageError("invalid --scale '" + s + "': the scale must be finite and > 0 as a float32");
  return f;
}

int threads_arg(Args& a) {
  if (!a.opt.count("--threads")) return 0;
  const auto t = parse_unsigned(a.opt["--threads"], "--threads", 1024);
  if (t == 0) throw UsageError("--threads must be at least 1");
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
  if (a.opt.count("--help")) return std::cout << kQuantizeHelp, 0;
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
  if (a.opt.count("--scale") && a.opt["--scale"] == "auto") {
    ArrayOptions probe = o;
    probe.convert = {};  // only amax is wanted from this pass
    const double amax = run(probe).amax;
    o.scale = auto_scale(amax, max_finite(f));
  } else if (a.opt.count("--scale")) {
    o.scale = scale_arg(a.opt["--scale"]);
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
            << "; scale " << shortest(o.scale) << "\n";
  return 0;
}

int cmd_dequantize(int argc, char** argv) {
  Args a = parse_args(argc, argv, {"--format", "--scale", "--dtype", "--threads"}, {"--help"});
  if (a.opt.count("--help")) return std::cout << kDequantizeHelp, 0;
  if (a.pos.size() != 2 || !a.opt.count("--format"))
    throw UsageError("usage: fp8emu dequantize --format F [--scale X] [--dtype T] IN.npy OUT.npy");
  const Format f = format_arg(a.opt["--format"]);
  ArrayOptions o;
  o.exec.threads = threads_arg(a);
  if (a.opt.count("--scale")) o.scale = scale_arg(a.opt["--scale"]);
  const std::string dtype = a.opt.count("--dtype") ? a.opt["--dtype"] : "float32";
  if (dtype != "float32" && dtype != "float64")
    throw UsageError("unknown --dtype '" + dtype + "' (float32 float64)");
  if (dtype == "float32" && !fits_float(f))
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
  out.dtype = dtype == "float32" ? npy::DType::float32 : npy::DType::float64;
  out.data.resize(n * npy::item_size(out.dtype));
  if (dtype == "float32")
    dequantize(f, codes, std::span<float>(reinterpret_cast<float*>(out.data.data()), n), o);
  else
    dequantize(f, codes, std::span<double>(reinterpret_cast<double*>(out.data.data()), n), o);
  npy::write(a.pos[1], out);
  std::cout << "dequantized " << n << " codes of " << format_name(f) << " to " << dtype << "\n";
  return 0;
}

}  // namespace

// One operand of gemm: its codes (as a CodeMatrix over owned storage) and its scales.
struct GemmOperand {
  npy::Array codes;
  std::vector<float> fscales;
  std::vector<std::uint8_t> cscales;
  Scales scales;
  CodeMatrix m;
};

std::pair<std::int64_t, std::int64_t> block_arg(const std::string& s, const std::string& opt) {
  const auto x = s.find('x');
  if (x == std::string::npos) throw UsageError("invalid " + opt + " '" + s + "' (expected RxC, e.g. 1x128)");
  const auto r = parse_unsigned(s.substr(0, x), opt, 1u << 30), c = parse_unsigned(s.substr(x + 1), opt, 1u << 30);
  if (r == 0 || c == 0) throw UsageError(opt + " sizes must be at least 1");
  return {std::int64_t(r), std::int64_t(c)};
}

GemmOperand gemm_operand(Args& a, const std::string& name) {
  const std::string path = a.opt["--" + name];
  const Format f = format_arg(a.opt.count("--" + name + "-format") ? a.opt["--" + name + "-format"] : "e4m3fn");
  if (total_bits(f) > 16) throw UsageError("--" + name + "-format: codes of at most 16 bits");
  if (!fits_float(f)) throw UsageError("--" + name + "-format: the values must fit in float32");
  GemmOperand op;
  npy::Array in = npy::read(path);
  if (in.shape.size() != 2)
    throw UsageError(path + ": expected a 2-D array, got " + std::to_string(in.shape.size()) + " dimensions");
  const std::int64_t rows = std::int64_t(in.shape[0]), cols = std::int64_t(in.shape[1]);
  const std::string sopt = "--" + name + "-scale";
  const std::string sarg = a.opt.count(sopt) ? a.opt[sopt] : "";
  const bool is_float = in.dtype == npy::DType::float16 || in.dtype == npy::DType::float32 ||
                        in.dtype == npy::DType::float64;
  const npy::DType code_type = total_bits(f) <= 8 ? npy::DType::uint8 : npy::DType::uint16;
  const std::size_t n = in.size();
  op.scales.tensor = 1.0f;
  float quant_scale = 1.0f;  // x * quant_scale is quantized; 1 / quant_scale dequantizes
  if (sarg == "auto") {
    if (!is_float) throw UsageError(sopt + " auto needs float input (" + path + " holds codes)");
  } else if (!sarg.empty() && sarg.size() > 4 && sarg.substr(sarg.size() - 4) == ".npy") {
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
  } else if (!sarg.empty()) {
    op.scales.tensor = scale_arg(sarg);
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
      quant_scale = auto_scale(run(qo).amax, max_finite(f));
      op.scales.tensor = 1.0f / quant_scale;
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
  if (a.opt.count("--help")) return std::cout << kGemmHelp, 0;
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
    std::memcpy(c.data(), ca.data.data(), c.size() * 4);
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
    std::memcpy(out.data.data(), c.data(), c.size() * 4);
  }
  npy::write(a.pos[0], out);
  std::cout << "gemm " << M << "x" << A.m.cols << " (" << format_name(A.m.format) << ") by " << B.m.rows << "x"
            << N << " (" << format_name(B.m.format) << "), accumulation " << accumulation_spec(o.accumulation)
            << (gemm_fast_path(A.m, B.m, o) ? "" : " (reference path)") << "\n";
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
    "  --json REPORT        also write the report as JSON (to a temporary file, renamed)\n"
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
  if (a.opt.count("--help")) return std::cout << kCompareHelp, 0;
  if (!a.pos.empty() || !a.opt.count("--format") || !a.opt.count("--expected") || !a.opt.count("--actual"))
    throw UsageError("usage: fp8emu compare --format F --expected E.npy --actual A.npy [options]");
  CompareInput in;
  in.f = format_arg(a.opt["--format"]);
  double tolerance = 0;
  if (a.opt.count("--tolerance-ulps")) {
    tolerance = parse_value(a.opt["--tolerance-ulps"]);
    if (!(tolerance >= 0) || std::isinf(tolerance))
      throw UsageError("invalid --tolerance-ulps '" + a.opt["--tolerance-ulps"] + "' (a finite number >= 0)");
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
  try {
    if (argc < 2) {
      std::cerr << kMainHelp;
      return 2;
    }
    const std::string cmd = argv[1];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") return std::cout << kMainHelp, 0;
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
