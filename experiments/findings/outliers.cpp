// fp8exp outliers: synthetic activations with a few outlier channels (columns scaled by a
// factor), quantized with one scale per tensor, per row, per 1 x 128 block, per MX block of
// 32 and per NVFP4 block of 16, and dequantized back; the SQNR overall and on the channels
// without outliers shows which granularity keeps the small values.
//   Dettmers, Lewis, Belkada and Zettlemoyer, "LLM.int8(): 8-bit matrix multiplication for
//   transformers at scale", arXiv:2208.07339 (outlier features in a few hidden dimensions).
//   DeepSeek-AI, "DeepSeek-V3 technical report", arXiv:2412.19437, section 3.3.1
//   (fine-grained quantization: 1 x 128 tiles of activations against outliers).
// Every quantization is fp8emu::quantize_matrix (nearest-even, saturating); a code's value
// is decode(code) / s with s its block's quantization scale.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/study_common.hpp"
#include "findings/findings.hpp"
#include "fp8emu/convert.hpp"
#include "fp8emu/format.hpp"
#include "fp8emu/quantize_matrix.hpp"
#include "fp8emu/random.hpp"

namespace findings {
namespace {

using common::UsageError;

constexpr const char* kName = "outliers";

/// The scalings compared, each with its element format.
enum class Scheme { tensor, row, block128, mxfp8, tensor_fp4, mxfp4, nvfp4 };
struct SchemeEntry {
  Scheme value;
  const char* name;
  const char* format;
  fp8emu::MatrixScaling scaling;
  std::int64_t block_cols;  ///< block: the block's length along K.
  const char* description;
};
constexpr SchemeEntry kSchemes[] = {
    {Scheme::tensor, "tensor", "e4m3fn", fp8emu::MatrixScaling::tensor, 0,
     "one float32 scale per tensor (amax to the largest finite value)"},
    {Scheme::row, "row", "e4m3fn", fp8emu::MatrixScaling::row, 0, "one float32 scale per row"},
    {Scheme::block128, "block1x128", "e4m3fn", fp8emu::MatrixScaling::block, 128,
     "one float32 scale per 1 x 128 block along K"},
    {Scheme::mxfp8, "mxfp8", "e4m3fn", fp8emu::MatrixScaling::mx, 0,
     "MX blocks of 32 along K, e8m0 scales (OCP rule, floor)"},
    {Scheme::tensor_fp4, "tensor-fp4", "e2m1fn", fp8emu::MatrixScaling::tensor, 0,
     "one float32 scale per tensor"},
    {Scheme::mxfp4, "mxfp4", "e2m1fn", fp8emu::MatrixScaling::mx, 0,
     "MX blocks of 32 along K, e8m0 scales (OCP rule, floor)"},
    {Scheme::nvfp4, "nvfp4", "e2m1fn", fp8emu::MatrixScaling::nvfp4, 0,
     "blocks of 16 along K, e4m3fn block scales and a float32 tensor scale"},
};

struct Options {
  std::int64_t rows = 1024, cols = 1024;
  std::vector<std::int64_t> outliers = {1, 8, 64};
  std::vector<double> factors = {1, 4, 16, 64, 256, 1024};
  std::uint64_t seed = 1;
  std::string out = default_out(kName);
  bool plots = true;
};

Options parse(int argc, char** argv) {
  Options o;
  constexpr std::int64_t kMax = std::int64_t{1} << 16;
  OptionTable table = {
      kName,
      "Quantizes an M x K matrix of N(0, 1) values with a few outlier channels (columns\n"
      "scaled by a factor) with per-tensor, per-row, 1 x 128 block, MX-32 and NVFP4 scaling,\n"
      "and measures the SQNR overall and on the other channels, and the saturated and\n"
      "flushed fractions, against the factor and the number of outlier channels.",
      {
          {"--rows", "M", "rows (tokens) of the matrix (default 1024)",
           set_number<std::int64_t>(o.rows, 1, kMax)},
          {"--cols", "K", "columns (channels), a multiple of 128 (default 1024)",
           set_number<std::int64_t>(o.cols, 128, kMax)},
          {"--outliers", "LIST",
           "comma-separated numbers of outlier channels, each below K\n(default 1,8,64)",
           set_numbers<std::int64_t>(o.outliers, 0, kMax)},
          {"--factors", "LIST",
           "comma-separated outlier factors, each in [1, 1e6]\n(default 1,4,16,64,256,1024)",
           set_numbers(o.factors, 1.0, 1e6)},
          {"--seed", "S", "seed of the values and of the outlier channels (default 1)",
           set_number<std::uint64_t>(o.seed, 0, ~std::uint64_t{0})},
      },
      ""};
  table.add_outputs(o.out, o.plots);
  table.parse(argc, argv);
  if (o.cols % 128 != 0)
    throw UsageError("--cols: " + std::to_string(o.cols) + " is not a multiple of 128");
  if (o.rows * o.cols > std::int64_t{1} << 24)
    throw UsageError("--rows x --cols: " + std::to_string(o.rows * o.cols) +
                     " elements, more than 2^24");
  std::sort(o.outliers.begin(), o.outliers.end());
  std::sort(o.factors.begin(), o.factors.end());
  for (std::int64_t n : o.outliers)
    if (n >= o.cols)
      throw UsageError("--outliers: " + std::to_string(n) + " channels, not below --cols " +
                       std::to_string(o.cols));
  return o;
}

/// The columns in a random order (Fisher-Yates): the first n are the n outlier channels,
/// so that more outlier channels add to fewer.
std::vector<std::int64_t> channel_order(std::int64_t cols, std::uint64_t seed) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(cols));
  for (std::int64_t c = 0; c < cols; ++c) v[std::size_t(c)] = c;
  const fp8emu::RandomKey k = fp8emu::random_key(seed, 1);
  for (std::int64_t i = 0; i + 1 < cols; ++i) {
    const std::uint64_t r = (std::uint64_t(fp8emu::random_bits(k, 2 * std::uint64_t(i))) << 32) |
                            fp8emu::random_bits(k, 2 * std::uint64_t(i) + 1);
    const auto j = i + std::int64_t(r % std::uint64_t(cols - i));
    std::swap(v[std::size_t(i)], v[std::size_t(j)]);
  }
  return v;
}

/// Sums of one quantization over a set of elements.
struct Stats {
  double signal = 0, noise = 0;
  std::int64_t count = 0, nonzero = 0, flushed = 0, saturated = 0;
  double sqnr_db() const {
    if (signal == 0) return std::numeric_limits<double>::quiet_NaN();
    return noise == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(signal / noise);
  }
  double flushed_fraction() const { return nonzero ? double(flushed) / double(nonzero) : 0.0; }
  double saturated_fraction() const { return count ? double(saturated) / double(count) : 0.0; }
};

/// One scheme at one number of outlier channels and one factor.
struct Point {
  Scheme scheme = Scheme::tensor;
  std::int64_t outliers = 0;
  double factor = 1;
  Stats all, normal, outlier;  ///< All elements; the other channels; the outlier channels.
};

/// Quantizes x (rows x cols, row-major) by scheme `e` and adds each element's error to
/// the statistics of its channel's class.
Point measure(const SchemeEntry& e, const std::vector<float>& x, const Options& o,
              const std::vector<char>& is_outlier, fp8emu::QuantizedMatrix& q) {
  const fp8emu::Format f = fp8emu::parse_format(e.format);
  fp8emu::MatrixQuantizeOptions mo;
  mo.scaling = e.scaling;
  mo.operand = fp8emu::Operand::a;
  if (e.scaling == fp8emu::MatrixScaling::block) {
    mo.block_rows = 1;
    mo.block_cols = e.block_cols;
  }
  fp8emu::quantize_matrix({x.data(), o.rows, o.cols}, f, mo, q);
  if (fp8emu::code_bytes(f) != 1) throw std::logic_error("outliers: codes wider than a byte");
  const auto* codes = reinterpret_cast<const std::uint8_t*>(q.storage.data());
  const int ncodes = 1 << fp8emu::total_bits(f);
  double value[256] = {};
  for (int c = 0; c < ncodes; ++c) value[c] = fp8emu::decode(f, std::uint32_t(c));
  const double fmax = fp8emu::max_finite(f);
  // Saturated: |x s| past the midpoint between the largest finite value and the next step
  // above it, where rounding to nearest would leave the finite range.
  const double clip = fmax + std::ldexp(1.0, std::ilogb(fmax) - f.mantissa_bits - 1);
  const std::int64_t br = q.block_rows ? q.block_rows : o.rows;
  const std::int64_t bc = q.block_cols ? q.block_cols : o.cols;
  const std::int64_t grid_cols = (o.cols + bc - 1) / bc;
  Point p;
  p.scheme = e.value;
  for (std::int64_t r = 0; r < o.rows; ++r)
    for (std::int64_t c = 0; c < o.cols; ++c) {
      const std::size_t i = std::size_t(r * o.cols + c);
      const double s = q.quant_scales[std::size_t(r / br * grid_cols + c / bc)];
      const double xi = x[i], v = double(float(value[codes[i] & (ncodes - 1)] / s));
      Stats& st = is_outlier[std::size_t(c)] ? p.outlier : p.normal;
      st.signal += xi * xi;
      st.noise += (xi - v) * (xi - v);
      ++st.count;
      st.nonzero += xi != 0;
      st.flushed += xi != 0 && v == 0;
      st.saturated += std::fabs(xi) * s > clip;
    }
  for (const Stats* s : {&p.normal, &p.outlier}) {
    p.all.signal += s->signal;
    p.all.noise += s->noise;
    p.all.count += s->count;
    p.all.nonzero += s->nonzero;
    p.all.flushed += s->flushed;
    p.all.saturated += s->saturated;
  }
  return p;
}

/// The shortest text that reads back as `v`.
std::string num(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string db(double v) { return common::fixed(v, 1); }

std::string pct(double v) {
  std::ostringstream s;
  s.precision(3);
  s << v * 100 << "%";
  return s.str();
}

const SchemeEntry& entry(Scheme s) {
  for (const auto& e : kSchemes)
    if (e.value == s) return e;
  return kSchemes[0];
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const auto t0 = std::chrono::steady_clock::now();
  const Outputs out(o.out, o.plots);
  const common::DirectoryLock lock(o.out, "fp8exp");

  // The base values, the same for every factor and count.
  std::vector<float> base(std::size_t(o.rows * o.cols));
  const fp8emu::RandomKey key = fp8emu::random_key(o.seed, 0);
  for (std::size_t i = 0; i < base.size(); ++i)
    base[i] = float(fp8emu::random_normal(key, i));
  const std::vector<std::int64_t> order = channel_order(o.cols, o.seed);

  std::vector<Point> points;
  std::vector<float> x(base.size());
  fp8emu::QuantizedMatrix q;
  for (std::int64_t n : o.outliers) {
    std::vector<char> is_outlier(std::size_t(o.cols), 0);
    for (std::int64_t k = 0; k < n; ++k) is_outlier[std::size_t(order[std::size_t(k)])] = 1;
    for (double factor : o.factors) {
      for (std::int64_t r = 0; r < o.rows; ++r)
        for (std::int64_t c = 0; c < o.cols; ++c) {
          const std::size_t i = std::size_t(r * o.cols + c);
          x[i] = is_outlier[std::size_t(c)] ? float(double(base[i]) * factor) : base[i];
        }
      for (const SchemeEntry& e : kSchemes) {
        Point p = measure(e, x, o, is_outlier, q);
        p.outliers = n;
        p.factor = factor;
        points.push_back(p);
      }
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // CSV: one row per scheme, number of outlier channels and factor.
  std::ostringstream csv;
  csv << "scaling,format,outlier_channels,factor,sqnr_db,sqnr_normal_db,sqnr_outlier_db,"
         "saturated_fraction,flushed_fraction,flushed_fraction_normal\n";
  for (const Point& p : points) {
    const SchemeEntry& e = entry(p.scheme);
    csv << e.name << ',' << e.format << ',' << p.outliers << ',' << num(p.factor) << ','
        << num(p.all.sqnr_db()) << ',' << num(p.normal.sqnr_db()) << ','
        << (p.outlier.count ? num(p.outlier.sqnr_db()) : "") << ','
        << num(p.all.saturated_fraction()) << ',' << num(p.all.flushed_fraction()) << ','
        << num(p.normal.flushed_fraction()) << '\n';
  }
  out.write("outliers.csv", csv.str());

  // Plot: SQNR against the factor, one line per scheme; a row of panels per number of
  // outlier channels (all elements; the other channels).
  const std::string png = "outliers.png";
  std::ostringstream gp;
  gp << "set terminal pngcairo size 1200," << 350 * o.outliers.size()
     << " noenhanced\nset logscale x 2\nset grid\nset key outside right\n"
        "set output '"
     << png << ".tmp'\nset multiplot layout " << o.outliers.size()
     << ",2 title 'SQNR against the outlier factor (" << o.rows << " x " << o.cols
     << ", N(0,1) with outlier channels)'\n";
  for (std::int64_t n : o.outliers)
    for (int part = 0; part < 2; ++part) {
      gp << "set title '" << n << " outlier channel" << (n == 1 ? "" : "s") << ": "
         << (part == 0 ? "all elements" : "the other channels")
         << "'\nset xlabel 'outlier factor'\nset ylabel 'SQNR (dB)'\nplot";
      bool first = true;
      for (const SchemeEntry& e : kSchemes) {
        std::ostringstream dat;
        dat << "# factor sqnr_db (" << e.name << ", " << e.format << ", " << n
            << " outlier channels, " << (part == 0 ? "all elements" : "the other channels")
            << ")\n";
        for (const Point& p : points)
          if (p.scheme == e.value && p.outliers == n) {
            const double v = part == 0 ? p.all.sqnr_db() : p.normal.sqnr_db();
            if (std::isfinite(v)) dat << num(p.factor) << ' ' << num(v) << '\n';
          }
        const std::string file = "plot-data/" + std::to_string(n) + "-" + e.name +
                                 (part == 0 ? "-all" : "-normal") + ".dat";
        out.write(file, dat.str());
        gp << (first ? " " : ", ") << "'" << file << "' using 1:2 with linespoints title '"
           << e.name << " (" << e.format << ")'";
        first = false;
      }
      gp << "\n";
    }
  gp << "unset multiplot\nunset output\n";
  const std::string plot_note = out.plot(gp.str(), {png});

  // The report: a table per number of outlier channels.
  const double fmin = o.factors.front(), fmax = o.factors.back();
  const auto find = [&](Scheme s, std::int64_t n, double factor) -> const Point& {
    for (const Point& p : points)
      if (p.scheme == s && p.outliers == n && p.factor == factor) return p;
    return points.front();
  };
  std::ostringstream tables;
  for (std::int64_t n : o.outliers) {
    tables << "\n"
           << n << " outlier channel" << (n == 1 ? "" : "s") << " of " << o.cols
           << ": SQNR in dB on all elements / on the other channels; at factor " << num(fmax)
           << " also the saturated and flushed fractions (of all elements; of the other "
              "channels' nonzero elements)\n\n| scaling | format |";
    for (double f : o.factors) tables << " factor " << num(f) << " |";
    tables << " saturated at " << num(fmax) << " | flushed at " << num(fmax)
           << " | flushed, other channels |\n|---|---|";
    for (std::size_t k = 0; k < o.factors.size() + 3; ++k) tables << "---|";
    tables << "\n";
    for (const SchemeEntry& e : kSchemes) {
      tables << "| " << e.name << " | " << e.format << " |";
      for (double f : o.factors) {
        const Point& p = find(e.value, n, f);
        tables << ' ' << db(p.all.sqnr_db()) << " / " << db(p.normal.sqnr_db()) << " |";
      }
      const Point& p = find(e.value, n, fmax);
      tables << ' ' << pct(p.all.saturated_fraction()) << " | " << pct(p.all.flushed_fraction())
             << " | " << pct(p.normal.flushed_fraction()) << " |\n";
    }
  }

  // The test, fixed before the run: per-tensor scaling loses the other channels when the
  // outliers set the scale (their SQNR at the largest factor is at least 1 dB below that
  // at the smallest), and each block scaling keeps more of them than per-tensor scaling
  // of the same element format at the largest factor.
  const std::int64_t n_head = o.outliers.back();
  int agree = 0, cases = 0;
  std::ostringstream checks;
  for (std::int64_t n : o.outliers) {
    if (n == 0 || fmax == fmin) continue;
    for (const auto& [tensor, blocks] :
         {std::pair{Scheme::tensor, std::vector{Scheme::block128, Scheme::mxfp8}},
          std::pair{Scheme::tensor_fp4, std::vector{Scheme::mxfp4, Scheme::nvfp4}}}) {
      const double lo = find(tensor, n, fmin).normal.sqnr_db();
      const double hi = find(tensor, n, fmax).normal.sqnr_db();
      ++cases;
      const bool loses = hi < lo - 1.0;
      agree += loses;
      checks << "- " << n << " outlier channel" << (n == 1 ? ", " : "s, ") << entry(tensor).name
             << ": the other channels' SQNR " << db(lo) << " dB at factor " << num(fmin) << ", "
             << db(hi) << " dB at " << num(fmax)
             << (loses ? " (loses them)" : " (does not lose them)") << "\n";
      for (Scheme b : blocks) {
        const double v = find(b, n, fmax).normal.sqnr_db();
        ++cases;
        const bool keeps = v > hi;
        agree += keeps;
        checks << "- " << n << " outlier channel" << (n == 1 ? "" : "s") << ", factor " << num(fmax)
               << ": " << entry(b).name << " " << common::fixed(v, 2) << " dB against "
               << entry(tensor).name << " " << common::fixed(hi, 2) << " dB"
               << (keeps ? "" : " (not better)") << "\n";
      }
    }
  }

  std::ostringstream headline;
  headline << "at factor " << num(fmax) << " with " << n_head << " outlier channels of " << o.cols
           << ", SQNR on the other channels:";
  for (const SchemeEntry& e : kSchemes)
    headline << ' ' << e.name << ' ' << db(find(e.value, n_head, fmax).normal.sqnr_db()) << " dB"
             << (&e == &kSchemes[std::size(kSchemes) - 1] ? "" : ",");
  headline << " (at factor " << num(fmin) << ": tensor "
           << db(find(Scheme::tensor, n_head, fmin).normal.sqnr_db()) << " dB, tensor-fp4 "
           << db(find(Scheme::tensor_fp4, n_head, fmin).normal.sqnr_db()) << " dB)";

  Report rep;
  rep.title = "Scaling granularity under outliers";
  rep.command = command_line(argc, argv);
  rep.claim =
      "LLM activations have outlier features: a few hidden dimensions (channels) whose values "
      "are much larger than the rest, in every token. When one scale per tensor maps the "
      "largest magnitude to the format's largest value, the outliers set that scale and the "
      "other channels' small values are pushed into the subnormals or flushed to zero, so "
      "their quantization error grows with the outliers' size. Scaling at a finer "
      "granularity along K (1 x 128 tiles per token, MX blocks of 32, NVFP4 blocks of 16) "
      "confines each outlier's effect to its own block and keeps the small values of the "
      "others.";
  rep.source =
      "T. Dettmers, M. Lewis, Y. Belkada, L. Zettlemoyer, \"LLM.int8(): 8-bit matrix "
      "multiplication for transformers at scale\", arXiv:2208.07339 (emergent outlier "
      "features in a few hidden dimensions, which break per-tensor and per-token 8-bit "
      "quantization); DeepSeek-AI, \"DeepSeek-V3 technical report\", arXiv:2412.19437, "
      "section 3.3.1 (per-tensor FP8 scaling is sensitive to activation outliers; "
      "fine-grained scaling of 1 x 128 activation tiles and 128 x 128 weight blocks).";
  rep.measured =
      "Headline: " + headline.str() + ".\n\nThe matrix is " + std::to_string(o.rows) + " x " +
      std::to_string(o.cols) + " N(0, 1) float32 values (seed " + std::to_string(o.seed) +
      "); the outlier channels are columns chosen at random (more channels add to fewer), "
      "their values multiplied by the factor. Each scaling is fp8emu::quantize_matrix "
      "(nearest-even, saturating; scales from the amax: tensor, row and 1 x 128 blocks by "
      "Transformer Engine's rule, MX by the OCP floor rule, NVFP4 with e4m3fn block scales) "
      "and each code is dequantized as decode(code) / s, s its block's quantization scale. "
      "SQNR is 10 log10(sum x^2 / sum (x - dequantized)^2). Saturated: |x s| past the "
      "midpoint above the largest finite value; flushed: x nonzero, dequantized zero. Wall "
      "time " +
      common::fixed(seconds, 1) + " s.\n" + tables.str() + "\nPlot: " + png +
      " (SQNR against the factor, one line per scaling); every value is in "
      "outliers.csv.";
  rep.agrees =
      std::string(cases == 0 ? "Not tested (one factor, or no outlier channels)" : verdict(agree, cases)) +
      ": " + std::to_string(agree) + " of " + std::to_string(cases) +
      " checks hold (fixed before the run, not tuned to agree): per-tensor scaling loses the "
      "other channels when their SQNR at the largest factor is more than 1 dB below that at "
      "the smallest, and a block scaling keeps them when its SQNR on the other channels at "
      "the largest factor is above per-tensor scaling's in the same element format.\n\n" +
      checks.str() +
      "\nPer-row scaling is no cure for outlier channels: every row holds them, so its scale "
      "is set by them as the tensor's is (its SQNR is in the tables). A block that holds an "
      "outlier channel loses its other values as the tensor does; the finer the blocks, the "
      "fewer of them hold one. LLM.int8()'s finding is for int8, whose values are evenly "
      "spaced: a floating-point format keeps the same relative precision over its normal "
      "range (e4m3fn: 2^-6 to 448, e2m1fn: 1 to 6), so the other channels lose accuracy only "
      "once the scale pushes them below that range.";
  rep.notes = (plot_note.empty() ? std::string() : plot_note + "\n\n") +
              "Their effect on the language model's training, and whether its activations have "
              "outlier channels, is measured by fp8exp outliers-lm.";
  out.report(rep);

  std::cout << "fp8exp outliers: " << headline.str() << "\nfp8exp outliers: " << agree << " of "
            << cases << " checks agree; wrote report.md, outliers.csv"
            << (plot_note.empty() ? " and outliers.png" : "") << " into " << o.out << " ("
            << common::fixed(seconds, 1) << " s)\n";
  if (!plot_note.empty()) std::cout << "fp8exp outliers: " << plot_note << "\n";
  return 0;
}

}  // namespace

int run_outliers(int argc, char** argv) { return run(argc, argv); }

}  // namespace findings
