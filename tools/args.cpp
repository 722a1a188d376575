// fp8emu CLI: the shared argument and report helpers (see args.hpp).
#include "args.hpp"

#include "fp8emu/quantize_matrix.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>

#include "fp8emu/explain.hpp"
#include "fp8emu/quantize_matrix.hpp"

namespace fp8emu::cli {

double parse_value(const std::string& s) {
  try {
    return fp8emu::parse_value(s);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
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
                             std::uint64_t min) {
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
const char* const kVariantHelp =
    "\ne4m3 and e2m1 are the IEEE-like variants (with infinities; max 240 and 3). The OCP\n"
    "FP8 / MX formats that papers and hardware mean are e4m3fn (max 448) and e2m1fn (max 6).\n";

// Parses a format argument; with `note`, prints variant_note to stderr.
Format format_arg(const std::string& s, bool note) {
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

std::string stochastic_names() {
  std::string s;
  for (const auto& e : enum_names<Rounding>())
    if (e.stochastic) s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

// The conversion options shared by explain and quantize.
ConvertOptions convert_options(Args& a) {
  ConvertOptions o;
  if (a.opt.count("--rounding")) o.rounding = option_arg<Rounding>(a.opt["--rounding"]);
  if (a.opt.count("--saturation")) o.saturation = option_arg<Saturation>(a.opt["--saturation"]);
  if (a.opt.count("--nan")) o.nan = option_arg<NanEncoding>(a.opt["--nan"]);
  o.flush_inputs = a.opt.count("--daz") > 0;
  o.flush_outputs = a.opt.count("--ftz") > 0;
  o.stochastic_bits = default_stochastic_bits_for(o.rounding);
  if (a.opt.count("--sr-bits") && !is_stochastic(o.rounding))
    throw UsageError("--sr-bits needs a stochastic --rounding (" + stochastic_names() + "); " +
                     std::string(to_string(o.rounding)) + " uses no random bits");
  if (a.opt.count("--sr-bits")) o.stochastic_bits = int(parse_unsigned(a.opt["--sr-bits"], "--sr-bits", 32, 1));
  return o;
}

float scale_arg(const std::string& s, const std::string& opt, const std::string& others) {
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

float auto_scale_arg(double amax, double limit) {
  if (std::isnan(amax)) throw UsageError("--scale auto: the input contains NaN");
  if (std::isinf(amax)) throw UsageError("--scale auto: the input contains an infinity");
  return auto_scale(limit, amax);
}

// Says which random bits a conversion used: "seed 9, 8 random bits" or "no random bits".
std::string random_text(const ConvertOptions& c, std::uint64_t seed) {
  if (!is_stochastic(c.rounding)) return "no random bits";
  return "seed " + std::to_string(seed) + ", " + std::to_string(c.stochastic_bits) + " random bits";
}

// Returns codes of a format of `bits` <= 16 bits as a uint8 or uint16 array of `shape`.
std::vector<std::uint32_t> codes_of(const npy::Array& in, const std::string& path,
                                    const std::string& command, const std::string& context) {
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
        if (c < 0)
          throw UsageError(context + "negative code " + std::to_string(c) + " at index " +
                           std::to_string(i) + " of " + path);
        codes[i] = std::uint32_t(c);
      }
      break;
    default:
      throw UsageError(context + path + " holds " + npy::dtype_name(in.dtype) + "; " + command +
                       " reads codes as uint8, uint16 or int32");
  }
  return codes;
}

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

}  // namespace fp8emu::cli
