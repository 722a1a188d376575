// fp8emu: element-wise comparison in ulps of a format (compare.hpp).
#include "fp8emu/compare.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>

#include "fp8emu/array.hpp"
#include "fp8emu/convert.hpp"
#include "fp8emu/explain.hpp"
#include "fp8emu/json.hpp"

namespace fp8emu {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// What the comparison needs of one element: its value, its bits, where it lies on the
// grid, and its class in the format.
struct Element {
  double value = 0;
  std::uint64_t bits = 0;
  double coord = 0;  // ulp_coordinate (NaN for NaN, +-inf for infinities)
  bool nan = false, inf = false, zero = false, tiny = false;  // tiny: 0 < |x| < min normal
};

Element element_of_code(const Format& f, std::uint32_t code) {
  Element e;
  e.bits = code;
  const ValueClass c = classify(f, code);
  e.value = decode(f, code);
  e.nan = c == ValueClass::nan;
  e.inf = c == ValueClass::infinite;
  e.zero = c == ValueClass::zero;
  e.tiny = c == ValueClass::subnormal;
  if (e.nan) {
    e.coord = std::numeric_limits<double>::quiet_NaN();
  } else if (e.inf) {
    e.coord = e.value;
  } else {
    // The magnitude code is the position on the grid (format.hpp: values increase with it).
    const double mag = double(code & magnitude_mask(f));
    e.coord = (code & sign_mask(f)) ? -mag : mag;
  }
  return e;
}

template <class T>
Element element_of_value(const Format& f, T x) {
  Element e;
  e.value = double(x);
  if constexpr (sizeof(T) == 4) e.bits = std::bit_cast<std::uint32_t>(x);
  else e.bits = std::bit_cast<std::uint64_t>(x);
  e.nan = std::isnan(e.value);
  e.inf = std::isinf(e.value);
  e.zero = e.value == 0;
  e.tiny = !e.zero && std::fabs(e.value) < min_normal(f);
  e.coord = ulp_coordinate(f, e.value);
  return e;
}

// Returns true when x is a value of f (NaN and infinities where f has them).
bool on_grid(const Format& f, double x, double coord) {
  if (std::isnan(x)) return has_nan(f);
  if (std::isinf(x)) return has_inf(f) && (x > 0 || f.is_signed);
  if (x < 0 && !f.is_signed) return false;
  if (x == 0) return has_zero(f);
  return std::fabs(x) <= max_finite(f) && coord == std::trunc(coord) &&
         std::fabs(x) >= min_positive(f);
}

// Records one mismatch of the pair (e, a) at `index` in `r`.
void record_mismatch(CompareReport& r, const CompareOptions& o, std::uint64_t index,
                     const Element& e, const Element& a) {
  // 1. The kind: the first of the Difference list that applies.
  Difference kind;
  double ulps;
  if (e.nan != a.nan) {
    kind = Difference::nan_vs_number, ulps = kInf;
  } else if (e.nan) {
    kind = Difference::nan_bits, ulps = 0;
  } else if (e.inf != a.inf) {
    kind = Difference::inf_vs_finite, ulps = kInf;
  } else {
    ulps = (e.inf || a.inf) ? (e.value == a.value ? 0 : kInf) : std::fabs(a.coord - e.coord);
    if (std::signbit(e.value) != std::signbit(a.value)) kind = Difference::sign;
    else if ((e.zero && a.tiny) || (a.zero && e.tiny)) kind = Difference::zero_vs_subnormal;
    else if (e.zero || a.zero) kind = Difference::zero_vs_normal;
    else kind = Difference::magnitude;
  }
  // 2. Tolerance: only a positive tolerance admits anything that is not bit-identical.
  const bool tolerated = o.tolerance_ulps > 0 && ulps <= o.tolerance_ulps;
  (tolerated ? r.tolerated : r.failed) += 1;
  r.by_kind[std::size_t(kind)] += 1;
  r.histogram[ulp_bucket(ulps)] += 1;
  // 3. Extremes over pairs of finite values, first index on ties.
  if (!e.nan && !a.nan && !e.inf && !a.inf) {
    if (ulps > r.max_ulps) r.max_ulps = ulps, r.max_ulps_index = index;
    const double abs_err = std::fabs(a.value - e.value);
    if (abs_err > r.max_abs_error) r.max_abs_error = abs_err, r.max_abs_index = index;
    if (e.value != 0) {
      const double rel = abs_err / std::fabs(e.value);
      if (rel > r.max_rel_error) r.max_rel_error = rel, r.max_rel_index = index;
    }
  }
  if (r.first.size() < o.keep)
    r.first.push_back({index, e.bits, a.bits, e.value, a.value, ulps, kind, tolerated});
}

void check_lengths(std::size_t expected, std::size_t actual) {
  if (expected != actual)
    throw std::invalid_argument("compare: " + std::to_string(expected) + " expected and " +
                                std::to_string(actual) + " actual elements");
}

template <class T>
CompareReport compare_codes_impl(const Format& f, std::span<const T> expected,
                                 std::span<const T> actual, const CompareOptions& o) {
  check_lengths(expected.size(), actual.size());
  const int bits = total_bits(f);
  const std::uint64_t limit = bits >= 32 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1;
  CompareReport r;
  r.total = expected.size();
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const std::uint64_t ce = expected[i], ca = actual[i];
    if (ce > limit || ca > limit)
      throw std::invalid_argument("compare: element " + std::to_string(o.first_index + i) + ": code " +
                                  std::to_string(ce > limit ? ce : ca) + " of the " +
                                  (ce > limit ? "expected" : "actual") + " array does not fit in the " +
                                  std::to_string(bits) + " bits of " + format_name(f));
    if (ce == ca) {
      ++r.exact;
      continue;
    }
    record_mismatch(r, o, o.first_index + i, element_of_code(f, std::uint32_t(ce)),
                    element_of_code(f, std::uint32_t(ca)));
  }
  return r;
}

template <class T>
CompareReport compare_values_impl(const Format& f, std::span<const T> expected,
                                  std::span<const T> actual, const CompareOptions& o) {
  check_lengths(expected.size(), actual.size());
  CompareReport r;
  r.total = expected.size();
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const Element e = element_of_value(f, expected[i]), a = element_of_value(f, actual[i]);
    r.off_grid_expected += !on_grid(f, e.value, e.coord);
    r.off_grid_actual += !on_grid(f, a.value, a.coord);
    if (e.bits == a.bits || (e.nan && a.nan)) {
      ++r.exact;
      continue;
    }
    record_mismatch(r, o, o.first_index + i, e, a);
  }
  return r;
}

}  // namespace

std::string_view difference_name(Difference d) {
  switch (d) {
    case Difference::nan_vs_number: return "nan_vs_number";
    case Difference::nan_bits: return "nan_bits";
    case Difference::inf_vs_finite: return "inf_vs_finite";
    case Difference::sign: return "sign";
    case Difference::zero_vs_subnormal: return "zero_vs_subnormal";
    case Difference::zero_vs_normal: return "zero_vs_normal";
    case Difference::magnitude: return "magnitude";
  }
  return "?";
}

std::size_t ulp_bucket(double ulps) {
  if (!(ulps < kInf)) return kUlpBuckets - 1;
  if (ulps == 0) return 0;
  // Bucket b >= 1 holds (2^(b-2), 2^(b-1)] ((0, 1] for b = 1): 1.47 -> 2, 2.5 -> 3, ...
  int b = 1;
  double top = 1;
  while (ulps > top && b < int(kUlpBuckets) - 2) ++b, top *= 2;
  return std::size_t(b);
}

std::string ulp_bucket_label(std::size_t b) {
  if (b == 0) return "0";
  if (b == kUlpBuckets - 1) return "not comparable";
  if (b == kUlpBuckets - 2) return "> 2^30";
  // (lo, hi] with hi = 2^(b-1): decimal up to 2^20, powers of two above.
  const int k = int(b) - 1;
  if (k > 20) return "(2^" + std::to_string(k - 1) + ", 2^" + std::to_string(k) + "]";
  const std::uint64_t hi = std::uint64_t{1} << k;
  return "(" + std::to_string(hi / 2 * (b > 1)) + ", " + std::to_string(hi) + "]";
}

double ulp_coordinate(const Format& f, double x) {
  if (std::isnan(x) || std::isinf(x)) return x;
  const double m = std::fabs(x);
  double c;
  if (m == 0) {
    c = 0;
  } else if (m < std::ldexp(1.0, emin(f))) {
    // Below the smallest normal: multiples of the smallest quantum (subnormal codes); in a
    // format without subnormals the single step from 0 to the smallest normal.
    c = has_subnormals(f) ? std::ldexp(m, -quantum_min(f)) : std::ldexp(m, -emin(f));
  } else {
    // A normal binade [2^e, 2^(e+1)) holds 2^M codes from (e - emin + 1) 2^M; without a
    // zero, exponent field 0 is the smallest normal binade, so the codes start there.
    const int e = std::ilogb(m);
    const double steps = std::ldexp(1.0, f.mantissa_bits);
    const double first = double(e - emin(f) + (has_zero(f) ? 1 : 0)) * steps;
    c = first + (std::ldexp(m, -e) - 1) * steps;
  }
  if (!has_zero(f) && m < std::ldexp(1.0, emin(f))) c -= 1;  // below code 0
  return std::signbit(x) ? -c : c;
}

void CompareReport::merge(const CompareReport& later, std::size_t keep) {
  total += later.total;
  exact += later.exact;
  tolerated += later.tolerated;
  failed += later.failed;
  for (std::size_t k = 0; k < kDifferenceCount; ++k) by_kind[k] += later.by_kind[k];
  for (std::size_t b = 0; b < kUlpBuckets; ++b) histogram[b] += later.histogram[b];
  if (later.max_ulps > max_ulps) max_ulps = later.max_ulps, max_ulps_index = later.max_ulps_index;
  if (later.max_abs_error > max_abs_error)
    max_abs_error = later.max_abs_error, max_abs_index = later.max_abs_index;
  if (later.max_rel_error > max_rel_error)
    max_rel_error = later.max_rel_error, max_rel_index = later.max_rel_index;
  off_grid_expected += later.off_grid_expected;
  off_grid_actual += later.off_grid_actual;
  for (const MismatchRecord& m : later.first)
    if (first.size() < keep) first.push_back(m);
}

CompareReport compare_codes(const Format& f, std::span<const std::uint8_t> expected,
                            std::span<const std::uint8_t> actual, const CompareOptions& o) {
  return compare_codes_impl(f, expected, actual, o);
}
CompareReport compare_codes(const Format& f, std::span<const std::uint16_t> expected,
                            std::span<const std::uint16_t> actual, const CompareOptions& o) {
  return compare_codes_impl(f, expected, actual, o);
}
CompareReport compare_codes(const Format& f, std::span<const std::uint32_t> expected,
                            std::span<const std::uint32_t> actual, const CompareOptions& o) {
  return compare_codes_impl(f, expected, actual, o);
}
CompareReport compare_values(const Format& f, std::span<const float> expected,
                             std::span<const float> actual, const CompareOptions& o) {
  return compare_values_impl(f, expected, actual, o);
}
CompareReport compare_values(const Format& f, std::span<const double> expected,
                             std::span<const double> actual, const CompareOptions& o) {
  return compare_values_impl(f, expected, actual, o);
}

CompareReport compare_float16_bits(const Format& f, std::span<const std::uint16_t> expected,
                                   std::span<const std::uint16_t> actual, const CompareOptions& o) {
  check_lengths(expected.size(), actual.size());
  std::vector<float> e(expected.size()), a(actual.size());
  dequantize(formats::float16{}, expected, std::span<float>(e));
  dequantize(formats::float16{}, actual, std::span<float>(a));
  CompareReport r = compare_values(f, e, a, o);
  for (MismatchRecord& m : r.first) {
    m.expected_bits = expected[m.index - o.first_index];
    m.actual_bits = actual[m.index - o.first_index];
  }
  return r;
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

namespace {

// Appends printf's output to `out`.
[[gnu::format(printf, 2, 3)]] void appendf(std::string& out, const char* fmt, ...) {
  va_list args, again;
  va_start(args, fmt);
  va_copy(again, args);
  const int n = std::vsnprintf(nullptr, 0, fmt, args);
  va_end(args);
  const std::size_t at = out.size();
  out.resize(at + std::size_t(n) + 1);
  std::vsnprintf(out.data() + at, std::size_t(n) + 1, fmt, again);
  va_end(again);
  out.resize(at + std::size_t(n));
}

// Returns n / total as a percentage with 4 decimals ("" for total 0).
std::string percent(std::uint64_t n, std::uint64_t total) {
  if (total == 0) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f%%", 100.0 * double(n) / double(total));
  return buf;
}

// The width of the hex bits the report shows: the format's for codes, the element's for values.
int shown_bits(const CompareSubject& s) { return s.codes ? total_bits(s.format) : s.value_bits; }

// Returns an element decoded, in its shortest round-trip form, with its hex bits.
std::string shown(const CompareSubject& s, std::uint64_t bits, double value) {
  const std::string v = s.codes || s.value_bits == 64 ? shortest(value) : shortest(float(value));
  return v + " (" + hex_code(bits, shown_bits(s)) + ")";
}

}  // namespace

std::string compare_text(const CompareSubject& s, const CompareReport& r) {
  std::string out;
  const double tolerance = s.tolerance_ulps;
  appendf(out, "compare: %llu elements of %s %s (%s, shape %s), tolerance %s ulps\n",
          (unsigned long long)r.total, format_name(s.format).c_str(), s.codes ? "codes" : "values",
          s.dtype.c_str(), shape_text(s.shape).c_str(), shortest(tolerance).c_str());
  appendf(out, "  %-20s %12llu  %s\n", "bit-exact", (unsigned long long)r.exact, percent(r.exact, r.total).c_str());
  appendf(out, "  %-20s %12llu  %s\n", "within tolerance", (unsigned long long)r.tolerated,
          percent(r.tolerated, r.total).c_str());
  appendf(out, "  %-20s %12llu  %s\n", "beyond tolerance", (unsigned long long)r.failed,
          percent(r.failed, r.total).c_str());
  if (!s.codes && (r.off_grid_expected || r.off_grid_actual))
    appendf(out, "  not values of %s: %llu expected, %llu actual (distances are fractional there)\n",
            format_name(s.format).c_str(), (unsigned long long)r.off_grid_expected,
            (unsigned long long)r.off_grid_actual);
  const std::uint64_t mismatches = r.tolerated + r.failed;
  if (mismatches == 0) {
    out += "PASS: every element is bit-exact\n";
    return out;
  }
  out += "ulp distance of the mismatches:\n";
  for (std::size_t b = 0; b < kUlpBuckets; ++b)
    if (r.histogram[b])
      appendf(out, "  %-20s %12llu\n", ulp_bucket_label(b).c_str(), (unsigned long long)r.histogram[b]);
  out += "mismatches by class:\n";
  for (std::size_t k = 0; k < kDifferenceCount; ++k)
    if (r.by_kind[k])
      appendf(out, "  %-20s %12llu\n", std::string(difference_name(Difference(k))).c_str(),
              (unsigned long long)r.by_kind[k]);
  if (r.max_abs_error > 0 || r.max_ulps > 0) {
    out += "largest errors (pairs of finite values):\n";
    auto line = [&](const char* what, double v, std::uint64_t i) {
      if (!(v > 0)) return;
      appendf(out, "  %-9s %-14s at %s (flat %llu)\n", what, shortest(v).c_str(),
              multi_index(s.shape, i).c_str(), (unsigned long long)i);
    };
    line("ulps", r.max_ulps, r.max_ulps_index);
    line("absolute", r.max_abs_error, r.max_abs_index);
    line("relative", r.max_rel_error, r.max_rel_index);
  }
  if (!r.first.empty()) {
    appendf(out, "first %zu mismatches:\n", r.first.size());
    appendf(out, "  %-16s %10s  %-26s %-26s %10s  %s\n", "index", "flat", "expected", "actual", "ulps",
            "class");
    for (const MismatchRecord& m : r.first)
      appendf(out, "  %-16s %10llu  %-26s %-26s %10s  %s%s\n", multi_index(s.shape, m.index).c_str(),
              (unsigned long long)m.index, shown(s, m.expected_bits, m.expected).c_str(),
              shown(s, m.actual_bits, m.actual).c_str(), shortest(m.ulps).c_str(),
              std::string(difference_name(m.kind)).c_str(), m.tolerated ? " (tolerated)" : "");
  }
  if (r.passed())
    appendf(out, "PASS: %llu mismatches, all within %s ulps\n", (unsigned long long)mismatches,
            shortest(tolerance).c_str());
  else
    appendf(out, "FAIL: %llu element%s differ%s by more than %s ulps\n", (unsigned long long)r.failed,
            r.failed == 1 ? "" : "s", r.failed == 1 ? "s" : "", shortest(tolerance).c_str());
  return out;
}

std::string compare_json(const CompareSubject& s, const CompareReport& r) {
  json::Value j = json::Value::object();
  j.set("format", format_name(s.format));
  j.set("as", s.codes ? "codes" : "values");
  j.set("expected", s.expected ? json::Value(*s.expected) : json::Value());
  j.set("actual", s.actual ? json::Value(*s.actual) : json::Value());
  j.set("dtype", s.dtype);
  json::Value shape = json::Value::array();
  for (std::size_t d : s.shape) shape.push(d);
  j.set("shape", std::move(shape));
  j.set("tolerance_ulps", s.tolerance_ulps);
  j.set("total", r.total);
  j.set("exact", r.exact);
  j.set("tolerated", r.tolerated);
  j.set("failed", r.failed);
  j.set("passed", r.passed());
  json::Value hist = json::Value::array();
  for (std::size_t b = 0; b < kUlpBuckets; ++b)
    if (r.histogram[b])
      hist.push(json::Value::object().set("ulps", ulp_bucket_label(b)).set("count", r.histogram[b]));
  j.set("ulp_histogram", std::move(hist));
  json::Value kinds = json::Value::object();
  for (std::size_t k = 0; k < kDifferenceCount; ++k)
    kinds.set(difference_name(Difference(k)), r.by_kind[k]);
  j.set("by_class", std::move(kinds));
  auto extreme = [&](double v, std::uint64_t i) {
    if (!(v > 0)) return json::Value();
    return json::Value::object().set("value", v).set("index", i).set("at", multi_index(s.shape, i));
  };
  j.set("max_ulps", extreme(r.max_ulps, r.max_ulps_index));
  j.set("max_abs_error", extreme(r.max_abs_error, r.max_abs_index));
  j.set("max_rel_error", extreme(r.max_rel_error, r.max_rel_index));
  if (!s.codes) {
    j.set("off_grid_expected", r.off_grid_expected);
    j.set("off_grid_actual", r.off_grid_actual);
  }
  json::Value list = json::Value::array();
  const int bits = shown_bits(s);
  for (const MismatchRecord& m : r.first)
    list.push(json::Value::object()
                  .set("index", m.index)
                  .set("at", multi_index(s.shape, m.index))
                  .set("expected", m.expected)
                  .set("expected_hex", hex_code(m.expected_bits, bits))
                  .set("actual", m.actual)
                  .set("actual_hex", hex_code(m.actual_bits, bits))
                  .set("ulps", m.ulps)
                  .set("class", difference_name(m.kind))
                  .set("tolerated", m.tolerated));
  j.set("first_mismatches", std::move(list));
  return j.dump();
}

}  // namespace fp8emu
