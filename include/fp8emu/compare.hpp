// fp8emu: element-wise comparison of an expected array (an emulation) with an actual one
// (a kernel's output), in units of last place of a format.
//
// The distance between two values is measured on the format's grid: `ulp_coordinate`
// maps a value to its magnitude code (the code with the sign bit cleared; for every
// format the non-negative values increase strictly with it, format.hpp), signed, and
// interpolates linearly between neighbouring codes for values off the grid. Two codes
// of the same format are therefore |ord(a) - ord(e)| ulps apart, with +0 and -0 both at
// 0, so the distance from -min_positive to +min_positive is 2. This is the measure of
// "ulp distance" of Goldberg (1991) and of the IEEE 754 nextUp chain; docs/
// validating-kernels.md shows how to read it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fp8emu/format.hpp"

namespace fp8emu {

/// Says how a mismatching pair differs; every mismatch has exactly one kind, the first
/// that applies in this order.
enum class Difference : std::uint8_t {
  nan_vs_number,      ///< One side is NaN, the other is not.
  nan_bits,           ///< Both are NaN with different codes (sign or payload).
  inf_vs_finite,      ///< One side is infinite, the other a finite number.
  sign,               ///< Opposite signs: -0 vs +0, -inf vs +inf, or finite x vs -y.
  zero_vs_subnormal,  ///< One side is zero, the other subnormal in the format.
  zero_vs_normal,     ///< One side is zero, the other normal in the format.
  magnitude,          ///< Same sign, both nonzero and finite, different values.
};
inline constexpr std::size_t kDifferenceCount = 7;

/// Returns the name of `d` as reports print it ("nan_vs_number", ...).
std::string_view difference_name(Difference d);

/// The buckets of the ulp-distance histogram of the mismatches: bucket 0 holds distance
/// 0 (the bits differ, the values do not: +0 vs -0, NaN vs NaN), bucket 1 the distances
/// in (0, 1], bucket b in 2..31 those in (2^(b-2), 2^(b-1)] ((1, 2], (2, 4], ... up to
/// 2^30), fractional distances of values off the grid included; bucket 32 larger finite
/// distances, bucket 33 the pairs without a finite distance (NaN vs number, infinity vs
/// anything else).
inline constexpr std::size_t kUlpBuckets = 34;
/// Returns the label of histogram bucket `b`: the interval it holds ("0", "(0, 1]",
/// "(1, 2]", "(2, 4]", ..., "(524288, 1048576]", "(2^20, 2^21]", ..., "> 2^30"), or
/// "not comparable".
std::string ulp_bucket_label(std::size_t b);
/// Returns the histogram bucket of a distance (infinity for pairs without a distance).
std::size_t ulp_bucket(double ulps);

/// Describes a comparison.
struct CompareOptions {
  /// A mismatch is tolerated when tolerance_ulps > 0 and its distance is at most
  /// tolerance_ulps; with 0 (the default) only bit-identical elements pass.
  double tolerance_ulps = 0;
  std::size_t keep = 10;          ///< How many mismatches to record, first by index.
  std::uint64_t first_index = 0;  ///< The index of element 0 (for arrays compared in parts).
};

/// One recorded mismatch. `expected_bits` and `actual_bits` are the codes (codes mode)
/// or the bits of the float or double values (values mode).
struct MismatchRecord {
  std::uint64_t index = 0;
  std::uint64_t expected_bits = 0, actual_bits = 0;
  double expected = 0, actual = 0;
  double ulps = 0;  ///< Infinity when the pair has no finite distance.
  Difference kind = Difference::magnitude;
  bool tolerated = false;
};

/// The result of comparing two arrays element by element.
struct CompareReport {
  std::uint64_t total = 0;      ///< Elements compared.
  std::uint64_t exact = 0;      ///< Bit-identical (values mode: also NaN vs NaN).
  std::uint64_t tolerated = 0;  ///< Mismatches within the tolerance.
  std::uint64_t failed = 0;     ///< Mismatches beyond it; total = exact + tolerated + failed.
  std::array<std::uint64_t, kDifferenceCount> by_kind{};  ///< Mismatches by Difference.
  std::array<std::uint64_t, kUlpBuckets> histogram{};     ///< Mismatches by distance.
  /// The largest finite ulp distance, absolute error |a - e| and relative error
  /// |a - e| / |e| (over pairs of finite values; relative only where e != 0), each with
  /// the index where it first occurs (meaningful when the value is > 0).
  double max_ulps = 0, max_abs_error = 0, max_rel_error = 0;
  std::uint64_t max_ulps_index = 0, max_abs_index = 0, max_rel_index = 0;
  /// Values mode: elements that are not values of the format (distances are fractional).
  std::uint64_t off_grid_expected = 0, off_grid_actual = 0;
  std::vector<MismatchRecord> first;  ///< The first `keep` mismatches by index.

  /// Returns true when every element is bit-identical or within the tolerance.
  bool passed() const { return failed == 0; }
  /// Adds the report of a later part (its indices above this one's); keeps `keep` records.
  void merge(const CompareReport& later, std::size_t keep);
};

/// Returns the signed position of `x` on the grid of `f`: the magnitude code of |x|
/// when x is a value of `f`, linear between neighbouring values otherwise, beyond the
/// largest finite value continued with the quantum of the top binade, negated for
/// negative x (both zeros give 0). NaN gives NaN, infinities +-infinity.
double ulp_coordinate(const Format& f, double x);

/// Compares codes of `f` element by element; throws std::invalid_argument when the
/// lengths differ or a code does not fit in the format's bits (naming the index).
CompareReport compare_codes(const Format& f, std::span<const std::uint8_t> expected,
                            std::span<const std::uint8_t> actual, const CompareOptions& o = {});
CompareReport compare_codes(const Format& f, std::span<const std::uint16_t> expected,
                            std::span<const std::uint16_t> actual, const CompareOptions& o = {});
CompareReport compare_codes(const Format& f, std::span<const std::uint32_t> expected,
                            std::span<const std::uint32_t> actual, const CompareOptions& o = {});

/// Compares values, measuring distances on the grid of `f`. A pair is exact when its
/// bits are identical or both are NaN (payloads of float values carry nothing of `f`).
/// Throws std::invalid_argument when the lengths differ.
CompareReport compare_values(const Format& f, std::span<const float> expected,
                             std::span<const float> actual, const CompareOptions& o = {});
CompareReport compare_values(const Format& f, std::span<const double> expected,
                             std::span<const double> actual, const CompareOptions& o = {});
/// Compares float16 values given as their bits, widened to float (exactly) and compared
/// as compare_values does; the records carry the float16 bits.
CompareReport compare_float16_bits(const Format& f, std::span<const std::uint16_t> expected,
                                   std::span<const std::uint16_t> actual,
                                   const CompareOptions& o = {});

/// What the report of a comparison says of the arrays compared.
struct CompareSubject {
  Format format = formats::e4m3fn{};
  bool codes = true;               ///< Codes of `format`, or values measured on its grid.
  std::string dtype;               ///< The arrays' element type, as NumPy names it ("uint8").
  int value_bits = 32;             ///< Values: the bits of one element (16, 32 or 64).
  std::vector<std::size_t> shape;  ///< The arrays' shape (none: a scalar).
  double tolerance_ulps = 0;
  std::optional<std::string> expected, actual;  ///< Where the arrays came from (files).
};

/// Returns the report `fp8emu compare` prints: the counts, the histogram of the ulp
/// distances and the classes of the mismatches, the largest errors, the first mismatches
/// (decoded and in hex: the codes, or the bits of the values), and a PASS or FAIL line.
std::string compare_text(const CompareSubject& s, const CompareReport& r);

/// Returns the report as the JSON that `fp8emu compare --json` writes (json.hpp: numbers
/// that are not finite as strings; "expected" and "actual" null when not given).
std::string compare_json(const CompareSubject& s, const CompareReport& r);

/// Returns a flat index into an array of `shape` as its multi-index: "[1, 2]".
std::string multi_index(const std::vector<std::size_t>& shape, std::uint64_t flat);

/// Returns a shape as the reports print it: "3x4" ("scalar" for no dimensions).
std::string shape_text(const std::vector<std::size_t>& shape);

}  // namespace fp8emu
