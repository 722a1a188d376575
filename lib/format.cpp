// fp8emu: the format catalog and the format-name parser.
// Sources of each entry are listed in the entry itself (CatalogEntry::source).
#include <algorithm>
#include <array>
#include <charconv>
#include <stdexcept>
#include <string>
#include <vector>

#include "fp8emu/format.hpp"

namespace fp8emu {
namespace {

constexpr std::string_view kOcp8 = "OCP OFP8 v1.0 (arXiv:2209.05433)";
constexpr std::string_view kMx = "OCP MX v1.0 (arXiv:2310.10537)";
constexpr std::string_view kLlvm = "LLVM APFloat / ml_dtypes";
constexpr std::string_view kP3109 = "IEEE P3109 interim report";
constexpr Policy kPolicies[] = {Policy::ieee,           Policy::fn,           Policy::fnuz,
                                Policy::finite_only,    Policy::p3109_extended,
                                Policy::p3109_finite,   Policy::e8m0};

// P3109 binary{K}p{P}: signed formats have K-P exponent bits and bias 2^(K-P-1);
// unsigned formats have K-P+1 exponent bits and bias 2^(K-P).
constexpr Format p3109(int k, int p, bool is_signed, bool extended) {
  const int e = is_signed ? k - p : k - p + 1;
  const int bias = is_signed ? 1 << (k - p - 1) : 1 << (k - p);
  return Format{is_signed, e, p - 1, bias,
                extended ? Policy::p3109_extended : Policy::p3109_finite};
}

std::vector<CatalogEntry> build_catalog() {
  std::vector<CatalogEntry> c = {
      {"e4m3fn", formats::e4m3fn{}, kOcp8},
      {"e5m2", formats::e5m2{}, kOcp8},
      {"e4m3fnuz", formats::e4m3fnuz{}, kLlvm},
      {"e5m2fnuz", formats::e5m2fnuz{}, kLlvm},
      {"e4m3", formats::e4m3{}, kLlvm},
      {"e3m4", formats::e3m4{}, kLlvm},
      {"e4m3b11fnuz", formats::e4m3b11fnuz{}, kLlvm},
      {"e2m3fn", formats::e2m3fn{}, kMx},
      {"e3m2fn", formats::e3m2fn{}, kMx},
      {"e2m1fn", formats::e2m1fn{}, kMx},
      {"e8m0fnu", formats::e8m0fnu{}, kMx},
  };
  // Names must outlive the catalog: they live in a static table.
  static const std::array<std::string, 28> names = [] {
    std::array<std::string, 28> n;
    int i = 0;
    for (int p = 1; p <= 7; ++p)
      for (char s : {'s', 'u'})
        for (char d : {'e', 'f'})
          n[i++] = "binary8p" + std::to_string(p) + s + d;
    return n;
  }();
  int i = 0;
  for (int p = 1; p <= 7; ++p)
    for (bool s : {true, false})
      for (bool d : {true, false}) c.push_back({names[i++], p3109(8, p, s, d), kP3109});
  c.push_back({"float16", formats::float16{}, "IEEE 754-2019 binary16"});
  c.push_back({"bfloat16", formats::bfloat16{}, "Google bfloat16"});
  c.push_back({"tf32", formats::tf32{}, "NVIDIA TensorFloat-32"});
  c.push_back({"float32", formats::float32{}, "IEEE 754-2019 binary32"});
  return c;
}

// Parses a decimal integer (optionally signed) that spans all of `s`.
std::optional<int> parse_int(std::string_view s) {
  int v = 0;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc{} || p != end || s.empty()) return std::nullopt;
  return v;
}

[[noreturn]] void fail(std::string_view spelling, const std::string& why) {
  throw std::invalid_argument("invalid format '" + std::string(spelling) + "': " + why);
}

}  // namespace

std::span<const CatalogEntry> catalog() {
  static const std::vector<CatalogEntry> c = build_catalog();
  return c;
}

std::string_view policy_name(Policy p) {
  switch (p) {
    case Policy::ieee: return "ieee";
    case Policy::fn: return "fn";
    case Policy::fnuz: return "fnuz";
    case Policy::finite_only: return "finite";
    case Policy::p3109_extended: return "p3109-extended";
    case Policy::p3109_finite: return "p3109-finite";
    case Policy::e8m0: return "e8m0";
  }
  return "?";
}

std::optional<std::string> check(const Format& f) {
  const int E = f.exponent_bits, M = f.mantissa_bits;
  if (E < 1 || E > 8) return "exponent bits must be 1..8, got " + std::to_string(E);
  if (M < 0 || M > 23) return "mantissa bits must be 0..23, got " + std::to_string(M);
  switch (f.policy) {
    case Policy::ieee:
      if (E < 2 || M < 1) return "policy ieee needs at least 2 exponent bits and 1 mantissa bit";
      [[fallthrough]];
    case Policy::fn:
    case Policy::fnuz:
    case Policy::finite_only:
      if (!f.is_signed) return "policy " + std::string(policy_name(f.policy)) + " is signed only";
      break;
    case Policy::p3109_extended:
    case Policy::p3109_finite:
      break;
    case Policy::e8m0:
      if (f.is_signed || M != 0) return "policy e8m0 needs an unsigned format with 0 mantissa bits";
      break;
  }
  if (f.policy == Policy::fn && E + M < 2) return "policy fn needs at least 2 bits besides the sign";
  if (max_magnitude_code(f) < 1) return "the format has no positive finite value";
  // Every value must be a normal double, so that decode is exact.
  const int qmin = quantum_min(f);
  const int top = int(max_magnitude_code(f) >> M) - f.bias + 1;  // Above the largest value.
  if (qmin < -1022 || top > 1023)
    return "bias " + std::to_string(f.bias) + " puts values outside the range of double";
  return std::nullopt;
}

Format parse_format(std::string_view spelling) {
  for (const auto& e : catalog())
    if (e.name == spelling) return e.format;
  std::string_view s = spelling;
  Format f;
  if (s.starts_with("binary")) {
    // binary{K}p{P}{s|u}{e|f}
    const auto p = s.find('p');
    if (p == std::string_view::npos || s.size() < p + 4)
      fail(spelling, "expected binary{K}p{P}{s|u}{e|f}, e.g. binary8p4se");
    const auto k = parse_int(s.substr(6, p - 6));
    const auto prec = parse_int(s.substr(p + 1, s.size() - p - 3));
    const char sc = s[s.size() - 2], dc = s.back();
    if (!k || !prec || (sc != 's' && sc != 'u') || (dc != 'e' && dc != 'f'))
      fail(spelling, "expected binary{K}p{P}{s|u}{e|f}, e.g. binary8p4se");
    if (*k < 2 || *k > 32) fail(spelling, "K must be 2..32");
    const bool is_signed = sc == 's';
    if (*prec < 1 || *prec > (is_signed ? *k - 1 : *k))
      fail(spelling, "P must be 1..K-1 (signed) or 1..K (unsigned)");
    const int e = is_signed ? *k - *prec : *k - *prec + 1;
    if (e > 8 || *prec - 1 > 23) fail(spelling, "fp8emu supports at most 8 exponent and 23 mantissa bits");
    f = p3109(*k, *prec, is_signed, dc == 'e');
  } else if (s.starts_with('e')) {
    // e{E}m{M}[:bias=B][:policy=P][:unsigned]
    const auto colon = s.find(':');
    const std::string_view head = s.substr(0, colon);
    const auto m = head.find('m');
    if (m == std::string_view::npos) fail(spelling, "expected e{E}m{M}[:bias=B][:policy=P][:unsigned]");
    const auto e = parse_int(head.substr(1, m - 1));
    const auto mm = parse_int(head.substr(m + 1));
    if (!e || !mm) fail(spelling, "expected e{E}m{M}[:bias=B][:policy=P][:unsigned]");
    f.exponent_bits = *e;
    f.mantissa_bits = *mm;
    if (*e < 1 || *e > 8) fail(spelling, "exponent bits must be 1..8");
    f.bias = (1 << (*e - 1)) - 1;
    bool bias_given = false;
    std::vector<std::string_view> keys;  // each once: a second one is an error, not an override
    std::string_view rest = colon == std::string_view::npos ? "" : s.substr(colon + 1);
    while (!rest.empty()) {
      const auto next = rest.find(':');
      const std::string_view opt = rest.substr(0, next);
      rest = next == std::string_view::npos ? "" : rest.substr(next + 1);
      const std::string_view key = opt.substr(0, opt.find('='));
      if (std::find(keys.begin(), keys.end(), key) != keys.end())
        fail(spelling, "option '" + std::string(key) + "' given twice");
      keys.push_back(key);
      if (opt.starts_with("bias=")) {
        const auto b = parse_int(opt.substr(5));
        if (!b) fail(spelling, "bias must be an integer");
        f.bias = *b;
        bias_given = true;
      } else if (opt.starts_with("policy=")) {
        const std::string_view name = opt.substr(7);
        bool found = false;
        for (Policy p : kPolicies)
          if (policy_name(p) == name) {
            f.policy = p;
            found = true;
          }
        if (!found) fail(spelling, "unknown policy '" + std::string(name) + "'");
        if (f.policy == Policy::fnuz && !bias_given) f.bias = 1 << (*e - 1);  // LLVM's convention.
        if (f.policy == Policy::e8m0) f.is_signed = false;
      } else if (opt == "unsigned") {
        f.is_signed = false;
      } else {
        fail(spelling, "unknown option '" + std::string(opt) +
                           "' (expected bias=B, policy=NAME, unsigned)");
      }
    }
  } else {
    fail(spelling, "not a catalog name (see 'fp8emu formats'), binary{K}p{P}{s|u}{e|f}, or e{E}m{M}[:...]");
  }
  if (auto why = check(f)) fail(spelling, *why);
  return f;
}

std::string format_name(const Format& f) {
  for (const auto& e : catalog())
    if (e.format == f) return std::string(e.name);
  std::string s = "e" + std::to_string(f.exponent_bits) + "m" + std::to_string(f.mantissa_bits) +
                  ":bias=" + std::to_string(f.bias) + ":policy=" + std::string(policy_name(f.policy));
  if (f.policy == Policy::p3109_extended || f.policy == Policy::p3109_finite) {
    const int k = total_bits(f), p = f.mantissa_bits + 1;
    const Format std_f = p3109(k, p, f.is_signed, f.policy == Policy::p3109_extended);
    if (std_f == f)
      return "binary" + std::to_string(k) + "p" + std::to_string(p) + (f.is_signed ? "s" : "u") +
             (f.policy == Policy::p3109_extended ? "e" : "f");
  }
  if (!f.is_signed && f.policy != Policy::e8m0) s += ":unsigned";
  return s;
}

}  // namespace fp8emu
