// fp8exp stagnation: a recursive sum of many small terms in a low-precision accumulator
// stops growing under round-to-nearest once each term is below half an ulp of the sum;
// stochastic rounding and Kahan's compensated summation recover it.
//   Connolly, Higham and Mary, "Stochastic rounding and its probabilistic backward error
//   analysis", SIAM J. Sci. Comput. 43(1), 2021, doi:10.1137/20M1334796.
//   Zamirai, Zhang, Aberger and De Sa, "Revisiting BFloat16 training", arXiv:2010.06192.
// Every addition is fp8emu::add on codes (arith.hpp): the exact sum rounded once, with the
// random bits of stochastic rounding from random_bits(random_key(seed, stream), term).
#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/study_common.hpp"
#include "findings/findings.hpp"
#include "fp8emu/arith.hpp"
#include "fp8emu/convert.hpp"
#include "fp8emu/format.hpp"
#include "fp8emu/options.hpp"
#include "fp8emu/random.hpp"

namespace findings {
namespace {

/// The series summed.
enum class Series : std::uint8_t { harmonic, constant };
/// How the accumulator adds a term.
enum class Method : std::uint8_t { rne, sr, kahan };

}  // namespace
}  // namespace findings

template <>
struct fp8emu::option_table<findings::Series> {
  static constexpr std::string_view what = "series";
  static constexpr std::array<OptionName<findings::Series>, 2> entries = {{
      {findings::Series::harmonic, "harmonic", "1/1 + 1/2 + ... + 1/n"},
      {findings::Series::constant, "constant", "1 + n x 0.001 (1, then n terms of 0.001)"},
  }};
};

template <>
struct fp8emu::option_table<findings::Method> {
  static constexpr std::string_view what = "method";
  static constexpr std::array<OptionName<findings::Method>, 3> entries = {{
      {findings::Method::rne, "rne", "s = RNE(s + t)"},
      {findings::Method::sr, "sr", "s = SR(s + t), stochastic rounding sr-a with 32 random bits"},
      {findings::Method::kahan, "kahan",
       "Kahan's compensated sum, each of its four operations RNE in the format"},
  }};
};

namespace findings {
namespace {

using common::UsageError;

constexpr const char* kName = "stagnation";

std::string method_name(Method m) { return std::string(fp8emu::to_string(m)); }
std::string series_name(Series s) { return std::string(fp8emu::to_string(s)); }

struct Options {
  std::int64_t terms = 100000;
  int seeds = 5;
  std::uint64_t first_seed = 1;
  std::vector<std::string> formats = {"float16", "bfloat16", "e4m3fn", "e5m2"};
  std::vector<Series> series = {Series::harmonic, Series::constant};
  std::string out = default_out(kName);
  bool plots = true;
};

Options parse(int argc, char** argv) {
  Options o;
  OptionTable table = {
      kName,
      "Sums the harmonic series and 1 + n x 0.001 in low-precision accumulators under\n"
      "round-to-nearest-even, stochastic rounding (several seeds) and Kahan summation, and\n"
      "compares each partial sum with the float64 sum of the same terms.",
      {
          {"--terms", "N", "terms of each series (default 100000)",
           set_number<std::int64_t>(o.terms, 1, std::int64_t{1} << 32)},
          {"--seeds", "K", "seeds of stochastic rounding (default 5), seeds S..S+K-1",
           set_number(o.seeds, 1, 1000)},
          {"--first-seed", "S", "first seed (default 1)",
           set_number<std::uint64_t>(o.first_seed, 0, ~std::uint64_t{0} - 1000)},
          {"--formats", "LIST",
           "comma-separated accumulator formats (default\nfloat16,bfloat16,e4m3fn,e5m2)",
           set_names(o.formats)},
          {"--series", "LIST", "harmonic, constant or both (default harmonic,constant)",
           set_choices(o.series)},
      },
      ""};
  table.add_outputs(o.out, o.plots);
  table.parse(argc, argv);
  std::set<std::string> seen;
  for (const std::string& f : o.formats) {
    fp8emu::Format fmt;
    try {
      fmt = fp8emu::parse_format(f);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--formats: ") + e.what());
    }
    if (!fmt.is_signed)
      throw UsageError("--formats: " + f + " is unsigned (Kahan's compensation needs a sign)");
    if (!seen.insert(f).second) throw UsageError("--formats: '" + f + "' given twice");
  }
  return o;
}

/// The spacing of `f`'s values at |x| (its ulp there).
double ulp_at(const fp8emu::Format& f, double x) {
  const int e = x == 0 ? fp8emu::quantum_min(f) : std::ilogb(x) - f.mantissa_bits;
  return std::ldexp(1.0, std::max(e, fp8emu::quantum_min(f)));
}

/// The points n (1..terms) at which partial sums are recorded: ten a decade, and the last.
std::vector<std::int64_t> sample_points(std::int64_t terms) {
  std::vector<std::int64_t> v;
  for (int k = 0;; ++k) {
    const auto n = std::int64_t(std::llround(std::pow(10.0, k / 10.0)));
    if (n >= terms) break;
    if (v.empty() || n != v.back()) v.push_back(n);
  }
  v.push_back(terms);
  return v;
}

/// One accumulator's partial sums at the sample points.
struct Curve {
  Method method = Method::rne;
  std::uint64_t seed = 0;  ///< SR only.
  std::vector<double> sums;
  double final_sum = 0;
  std::int64_t last_change = 0;  ///< The last term that changed the sum (0: none did).
};

/// The sums of one series in one format.
struct Result {
  Series series = Series::harmonic;
  std::string format;
  double start = 0;                 ///< The accumulator's start (0, or 1 for constant).
  std::vector<double> reference;    ///< float64 sum of the stored terms, at the sample points.
  double exact_final = 0;           ///< float64 sum of the terms before rounding them.
  std::int64_t zero_terms = 0;      ///< Terms that round to zero in the format.
  std::int64_t predicted_stop = 0;  ///< First n whose term < ulp(reference partial sum)/2.
  double kahan_compensation = 0;    ///< Kahan's compensation after the last term.
  std::vector<Curve> curves;
};

double term_value(Series s, std::int64_t i) {
  return s == Series::harmonic ? 1.0 / double(i) : 0.001;
}

Result run_one(Series series, const std::string& format, const Options& o,
               const std::vector<std::int64_t>& points, std::uint64_t stream) {
  const fp8emu::Format f = fp8emu::parse_format(format);
  const fp8emu::ConvertOptions rne{};
  fp8emu::ConvertOptions sr{};
  sr.rounding = fp8emu::Rounding::stochastic_a;
  sr.stochastic_bits = fp8emu::default_stochastic_bits;
  Result r;
  r.series = series;
  r.format = format;
  r.start = series == Series::constant ? 1.0 : 0.0;
  const std::uint32_t start = fp8emu::encode(f, r.start, rne);
  // The accumulators: RNE, SR per seed, Kahan (sum and compensation).
  std::vector<std::uint32_t> acc(2 + std::size_t(o.seeds), start);
  std::vector<fp8emu::RandomKey> keys;
  for (int k = 0; k < o.seeds; ++k)
    keys.push_back(fp8emu::random_key(o.first_seed + std::uint64_t(k), stream));
  std::uint32_t kahan_c = fp8emu::encode(f, 0.0, rne);
  std::vector<std::int64_t> last(acc.size(), 0);
  std::vector<std::vector<double>> sums(acc.size());
  double ref = r.start, exact = r.start;
  bool predicted = false;
  std::size_t next = 0;
  const std::size_t kahan = acc.size() - 1;
  for (std::int64_t i = 1; i <= o.terms; ++i) {
    const double tv = term_value(series, i);
    const std::uint32_t t = fp8emu::encode(f, tv, rne);
    const double stored = fp8emu::decode(f, t);
    if (stored == 0) ++r.zero_terms;
    // The prediction: the sum stops changing once the term is below half an ulp of it
    // (the terms never grow, so it stays stopped).
    if (!predicted && stored < ulp_at(f, ref) / 2) {
      r.predicted_stop = i;
      predicted = true;
    }
    ref += stored;
    exact += tv;
    std::uint32_t s = fp8emu::add(f, acc[0], t, rne);
    if (s != acc[0]) last[0] = i;
    acc[0] = s;
    for (int k = 0; k < o.seeds; ++k) {
      std::uint32_t& a = acc[1 + std::size_t(k)];
      s = fp8emu::add(f, a, t, sr, fp8emu::random_bits(keys[std::size_t(k)], std::uint64_t(i)));
      if (s != a) last[1 + std::size_t(k)] = i;
      a = s;
    }
    {  // Kahan: y = t - c; u = s + y; c = (u - s) - y; s = u.
      std::uint32_t& a = acc[kahan];
      const std::uint32_t y = fp8emu::sub(f, t, kahan_c, rne);
      const std::uint32_t u = fp8emu::add(f, a, y, rne);
      kahan_c = fp8emu::sub(f, fp8emu::sub(f, u, a, rne), y, rne);
      if (u != a) last[kahan] = i;
      a = u;
    }
    if (next < points.size() && points[next] == i) {
      r.reference.push_back(ref);
      for (std::size_t m = 0; m < acc.size(); ++m) sums[m].push_back(fp8emu::decode(f, acc[m]));
      ++next;
    }
  }
  if (!predicted) r.predicted_stop = 0;
  r.kahan_compensation = fp8emu::decode(f, kahan_c);
  r.exact_final = exact;
  for (std::size_t m = 0; m < acc.size(); ++m) {
    Curve c;
    c.method = m == 0 ? Method::rne : m == kahan ? Method::kahan : Method::sr;
    if (c.method == Method::sr) c.seed = o.first_seed + (m - 1);
    c.sums = std::move(sums[m]);
    c.final_sum = fp8emu::decode(f, acc[m]);
    c.last_change = last[m];
    r.curves.push_back(std::move(c));
  }
  return r;
}

double rel_error(double s, double ref) {
  return ref == 0 ? std::abs(s) : std::abs(s - ref) / std::abs(ref);
}

/// Final relative errors of one method (one per SR seed).
std::vector<double> final_errors(const Result& r, Method m) {
  std::vector<double> v;
  for (const Curve& c : r.curves)
    if (c.method == m) v.push_back(rel_error(c.final_sum, r.reference.back()));
  return v;
}

std::string sci(double v) {
  std::ostringstream s;
  s.precision(2);
  s << std::scientific << v;
  return s.str();
}

/// `v` with 9 significant digits.
std::string sig9(double v) {
  std::ostringstream s;
  s.precision(9);
  s << v;
  return s.str();
}

/// The shortest text that reads back as `v`.
std::string num(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<std::int64_t> points = sample_points(o.terms);
  const Outputs out(o.out, o.plots);
  const common::DirectoryLock lock(o.out, "fp8exp");
  std::vector<Result> results;
  std::uint64_t stream = 0;
  for (Series s : o.series)
    for (const std::string& f : o.formats) results.push_back(run_one(s, f, o, points, stream++));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // CSV: every partial sum at the sample points.
  std::ostringstream csv;
  csv << "series,format,method,seed,n,partial_sum,reference_sum,relative_error\n";
  for (const Result& r : results)
    for (const Curve& c : r.curves)
      for (std::size_t k = 0; k < points.size(); ++k)
        csv << series_name(r.series) << ',' << r.format << ',' << method_name(c.method) << ','
            << (c.method == Method::sr ? std::to_string(c.seed) : "") << ',' << points[k] << ','
            << num(c.sums[k]) << ',' << num(r.reference[k]) << ','
            << num(rel_error(c.sums[k], r.reference[k])) << '\n';
  out.write("stagnation.csv", csv.str());

  // Plot data: relative error against n per series, format and method (SR: the mean over
  // the seeds); points with no error are left out of the log axes.
  std::vector<std::string> pngs;
  std::ostringstream gp;
  gp << "set terminal pngcairo size 1000,800 noenhanced\nset logscale xy\nset grid\n"
        "set format y '%.0e'\nset key bottom right\n";
  for (Series s : o.series) {
    const std::string png = std::string("stagnation-") + series_name(s) + ".png";
    pngs.push_back(png);
    const int cols = o.formats.size() > 1 ? 2 : 1;
    const int rows = int((o.formats.size() + 1) / std::size_t(cols));
    gp << "set output '" << png << ".tmp'\nset multiplot layout " << rows << "," << cols
       << " title '" << series_name(s)
       << " series: relative error of the partial sum against the float64 sum of the same terms'\n";
    for (const Result& r : results) {
      if (r.series != s) continue;
      gp << "set title '" << r.format << "'\nset xlabel 'n'\nset ylabel 'relative error'\nplot";
      bool first = true;
      for (const auto& m : fp8emu::enum_names<Method>()) {
        std::ostringstream dat;
        dat << "# n relative_error (" << m.name
            << (m.value == Method::sr ? ", mean over the seeds" : "") << ")\n";
        for (std::size_t k = 0; k < points.size(); ++k) {
          std::vector<double> e;
          for (const Curve& c : r.curves)
            if (c.method == m.value) e.push_back(rel_error(c.sums[k], r.reference[k]));
          const double v = common::mean(e);
          if (v > 0) dat << points[k] << ' ' << num(v) << '\n';
        }
        const std::string file =
            "plot-data/" + series_name(s) + "-" + r.format + "-" + std::string(m.name) + ".dat";
        out.write(file, dat.str());
        gp << (first ? " " : ", ") << "'" << file << "' using 1:2 with linespoints title '"
           << m.name << (m.value == Method::sr ? " (mean)" : "") << "'";
        first = false;
      }
      gp << "\n";
    }
    gp << "unset multiplot\nunset output\n";
  }
  const std::string plot_note = out.plot(gp.str(), pngs);

  // The report.
  std::ostringstream table;
  table << "| series | format | RNE stagnates at term n (its sum) | predicted n | term / ulp of "
           "the RNE sum there | "
           "RNE final rel. error | SR final rel. error, mean (sd, max) over "
        << o.seeds
        << " seeds | Kahan final rel. error | float64 sum of the stored terms |\n"
           "|---|---|---|---|---|---|---|---|---|\n";
  int agree = 0, cases = 0, n_match = 0;
  std::ostringstream disagreements, zero_notes;
  for (const Result& r : results) {
    const Curve& rn = r.curves.front();
    const Curve& kh = r.curves.back();
    const double e_rne = final_errors(r, Method::rne)[0];
    const std::vector<double> e_sr = final_errors(r, Method::sr);
    const double e_kahan = final_errors(r, Method::kahan)[0];
    const bool stopped = rn.last_change < o.terms;
    const std::int64_t stop = rn.last_change + 1;
    std::string ratio = "-";
    if (stopped) {
      const fp8emu::Format f = fp8emu::parse_format(r.format);
      const double t = fp8emu::decode(f, fp8emu::encode(f, term_value(r.series, stop)));
      ratio = common::fixed(t / ulp_at(f, rn.final_sum), 3);
    }
    table << "| " << series_name(r.series) << " | " << r.format << " | "
          << (stopped ? std::to_string(stop) + " (" + num(rn.final_sum) + ")" : "did not stagnate")
          << " | " << (r.predicted_stop > 0 ? std::to_string(r.predicted_stop) : "-") << " | "
          << ratio << " | " << sci(e_rne) << " | " << sci(common::mean(e_sr)) << " ("
          << sci(common::stdev(e_sr)) << ", " << sci(*std::max_element(e_sr.begin(), e_sr.end()))
          << ") | " << sci(e_kahan) << " | " << sig9(r.reference.back()) << " |\n";
    // The claim, as checked: RNE stagnated before the last term, and SR (mean) and Kahan
    // each end with a smaller relative error than RNE.
    ++cases;
    if (stopped && stop == r.predicted_stop) ++n_match;
    const bool sr_better = common::mean(e_sr) < e_rne, kahan_better = e_kahan < e_rne;
    if (stopped && sr_better && kahan_better) {
      ++agree;
    } else {
      disagreements << "- " << series_name(r.series) << " in " << r.format << ":"
                    << (stopped ? "" : " RNE did not stagnate.")
                    << (sr_better ? "" : " SR ended no better than RNE.");
      if (!kahan_better)
        disagreements << " Kahan ended no better than RNE: its sum last changed at term "
                      << kh.last_change << " (sum " << num(kh.final_sum)
                      << "), its compensation ended at " << num(r.kahan_compensation) << ".";
      disagreements << "\n";
    }
    if (r.zero_terms > 0)
      zero_notes << "- " << series_name(r.series) << " in " << r.format << ": " << r.zero_terms
                 << " terms round to zero in the format; the float64 sum of the unrounded terms is "
                 << sig9(r.exact_final) << ".\n";
  }
  // The headline: the first series in the first format (by default harmonic, float16).
  std::string headline;
  {
    const Result& r = results.front();
    const auto e_sr = final_errors(r, Method::sr);
    const Curve& rn = r.curves.front();
    const std::string what = "RNE " + r.format;
    const std::string series = std::string(" the ") + series_name(r.series) + " series";
    headline =
        (rn.last_change < o.terms
             ? what + " stagnates at term n = " + std::to_string(rn.last_change + 1) + " of" +
                   series + ", at " + num(rn.final_sum)
             : what + " does not stagnate on" + series) +
        " (predicted n = " + (r.predicted_stop > 0 ? std::to_string(r.predicted_stop) : "none") +
        "); after " + std::to_string(o.terms) + " terms its relative error is " +
        sci(final_errors(r, Method::rne)[0]) + ", SR's " + sci(common::mean(e_sr)) + " (mean of " +
        std::to_string(o.seeds) + " seeds, sd " + sci(common::stdev(e_sr)) + "), Kahan's " +
        sci(final_errors(r, Method::kahan)[0]) + ".";
  }

  Report rep;
  rep.title = "Stagnation of low-precision sums, and its cures";
  rep.command = command_line(argc, argv);
  rep.claim =
      "A recursive sum s = fl(s + t) of many small terms under round-to-nearest stagnates: once "
      "a term is below half an ulp of the sum, adding it changes nothing, so the harmonic series "
      "stops growing and 1 + n x 0.001 stalls. Stochastic rounding, being unbiased, does not "
      "stagnate, and its error bound grows like sqrt(n) u rather than n u with high probability; "
      "compensated (Kahan) summation recovers the lost low-order parts. In bfloat16 training, "
      "nearest rounding of the weight update loses small updates, and stochastic rounding or "
      "Kahan summation of the update recovers float32 accuracy.";
  rep.source =
      "M. P. Connolly, N. J. Higham, T. Mary, \"Stochastic rounding and its probabilistic backward "
      "error analysis\", SIAM J. Sci. Comput. 43(1), 2021, doi:10.1137/20M1334796 (the harmonic "
      "series in binary16 as the example of stagnation); P. Zamirai, J. Zhang, C. R. Aberger, "
      "C. De Sa, \"Revisiting BFloat16 training\", arXiv:2010.06192 (stochastic rounding and Kahan "
      "summation for bfloat16 weight updates).";
  rep.measured =
      headline + "\n\nEach series has " + std::to_string(o.terms) +
      " terms, each rounded once (RNE) to the accumulator's format; every addition is the exact "
      "sum of "
      "two codes rounded once (fp8emu::add). The reference is the float64 sum of the same stored "
      "terms, so the errors are those of the accumulation alone. RNE stagnates at term n "
      "when no term from n on changes its sum (the sum after n - 1 terms is the one shown); the "
      "predicted n is the first term below half an ulp of the float64 partial sum before it (the "
      "terms never grow). The term / ulp column is the stored term n over the ulp of the RNE sum: "
      "below 0.5 it cannot move the sum, at 0.5 a tie goes to the even neighbour. SR is sr-a with "
      "32 random bits, seeds " +
      std::to_string(o.first_seed) + ".." +
      std::to_string(o.first_seed + std::uint64_t(o.seeds) - 1) + ". Wall time " +
      common::fixed(seconds, 1) + " s.\n\n" + table.str() +
      (zero_notes.str().empty() ? "" : "\n" + zero_notes.str()) +
      "\nPlots: relative error against n, log axes, one panel per format (" +
      [&] {
        std::string s;
        for (const auto& p : pngs) s += (s.empty() ? "" : ", ") + p;
        return s;
      }() +
      "); every partial sum at the sample points is in stagnation.csv.";
  rep.agrees = verdict(agree, cases) +
               ": in " + std::to_string(agree) + " of " + std::to_string(cases) +
               " series and formats, RNE stagnated before the last term and both SR (mean over the "
               "seeds) and "
               "Kahan ended with a smaller relative error than RNE (the test fixed before the run, "
               "not tuned to agree). The measured n of stagnation equals the predicted n in " +
               std::to_string(n_match) + " of " + std::to_string(cases) + "." +
               (disagreements.str().empty() ? "" : " Where not:\n\n" + disagreements.str());
  rep.notes = plot_note;
  out.report(rep);

  print_summary("stagnation", headline, agree, cases, "cases", "report.md, stagnation.csv", o.out, seconds,
                plot_note);
  return 0;
}

}  // namespace

int run_stagnation(int argc, char** argv) { return run(argc, argv); }

}  // namespace findings
