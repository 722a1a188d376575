// fp8emu CLI: fp8emu plot, pictures of number formats drawn by gnuplot: the positive
// values on a log2 axis (numberline), the relative spacing of neighbouring values
// (spacing) and the rounding error of one format under several rounding modes (error).
// Every value comes from the library's conversion (decode, encode, explain); the tool
// writes the data, a gnuplot script, and lets fp8emu::run_gnuplot draw the picture.
#include "commands.hpp"

#include <stdlib.h>  // mkdtemp

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "args.hpp"
#include "fp8emu/convert.hpp"
#include "fp8emu/explain.hpp"
#include "fp8emu/file.hpp"

namespace fp8emu::cli {
namespace {

namespace fs = std::filesystem;

// Formats with more positive values than this are drawn per binade, not value by value.
constexpr std::uint64_t kMaxEnumerated = 4096;
constexpr std::size_t kMaxFormats = 4;
constexpr std::uint64_t kDefaultSamples = 2001, kMaxSamples = 100000;

constexpr const char* kUsage = "usage: fp8emu plot KIND FORMAT... -o OUT.png|OUT.svg [options]";

std::string plot_help() {
  std::string deterministic;
  for (const auto& e : enum_names<Rounding>())
    if (!e.stochastic) deterministic += (deterministic.empty() ? "" : ", ") + std::string(e.name);
  return std::string(kUsage) +
         "\n"
         "\n"
         "Draws a picture of number formats with gnuplot (Debian: gnuplot-nox) into OUT: a\n"
         "PNG (pngcairo terminal) or an SVG file, by the extension. Every value comes from\n"
         "the library's own conversion. OUT is written whole or not at all, and the same\n"
         "command draws the same bytes.\n"
         "\n"
         "kinds:\n"
         "  numberline  FORMAT... (1 to 4): the positive finite values of each format on a\n"
         "              log2 axis, one row per format, the binades in alternating colours,\n"
         "              the subnormals in a third. A format with more than " +
         std::to_string(kMaxEnumerated) +
         " positive\n"
         "              values is drawn as its number of values per binade (bar height:\n"
         "              log2 of the count, relative to the largest).\n"
         "  spacing     FORMAT... (1 to 4): the relative spacing (next value - x) / x of\n"
         "              every positive finite x below the largest, on log2 axes. Formats\n"
         "              with more than " +
         std::to_string(kMaxEnumerated) +
         " positive values: the first and last value of\n"
         "              each binade (the gap is the same within a binade, so on log axes\n"
         "              the curve between them is a straight line).\n"
         "  error       FORMAT (one): the rounding error of each x sampled over --range,\n"
         "              under each --rounding mode.\n"
         "\n"
         "options:\n"
         "  -o OUT, --output OUT  the picture, OUT.png or OUT.svg (required)\n"
         "  --title TEXT          the picture's title (default: from the kind and formats)\n"
         "  --data DIR            also keep the gnuplot script plot.gp, its data files\n"
         "                        (values-I.dat or binades-I.dat, spacing-I.dat for the\n"
         "                        I-th format; error.dat) and the picture plot.png or\n"
         "                        plot.svg in DIR (made if missing); gnuplot plot.gp in DIR\n"
         "                        draws plot.svg.tmp (or .png.tmp) again\n"
         "options of error:\n"
         "  --range LO:HI         the inputs, LO < HI within the finite range of FORMAT\n"
         "                        (default 0:max, e.g. 0:448 for e4m3fn)\n"
         "  --rounding R,...      the rounding modes, one curve each (default rne):\n"
         "                        " +
         deterministic +
         "; the stochastic\n"
         "                        modes (" +
         stochastic_names() +
         ") are random, not a function of x\n"
         "  --units relative|ulp  relative (default): (result - x) / x, x = 0 left out;\n"
         "                        ulp: (result - x) / ulp, ulp as fp8emu explain prints it\n"
         "                        (the gap between the neighbours of x)\n"
         "  --samples N           the number of inputs, 2.." +
         std::to_string(kMaxSamples) + " (default " + std::to_string(kDefaultSamples) +
         "), evenly\n"
         "                        spaced\n"
         "  --log                 evenly spaced on a log axis instead (needs LO > 0)\n"
         "\n"
         "Exit status: 0 when OUT is written, 2 on bad usage or bad input, 1 when gnuplot is\n"
         "missing or fails (with the reason); OUT is then as it was.\n";
}

// A string as a gnuplot single-quoted literal (no escapes; '' is a quote).
std::string quoted(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

// A power of two as gnuplot reads it.
std::string pow2(int k) { return shortest(std::ldexp(1.0, k)); }

// The ticks of a log2 axis from 2^lo to 2^hi: labelled "2^k" at multiples of a step that
// keeps at most 16 labels, and a minor tick (with its grid line) at every binade, or at
// every few when there are more than 64.
std::string log2_tics(const char* axis, int lo, int hi) {
  int step = 1, minor = 1;
  while ((hi - lo) / step > 16) step *= 2;
  while ((hi - lo) / minor > 64) minor *= 2;
  std::string s = std::string("set ") + axis + "tics (";
  bool first = true;
  for (int k = lo; k <= hi; ++k) {
    const bool major = k % step == 0, grid = k % minor == 0;
    if (!major && !grid) continue;
    s += std::string(first ? "" : ", ") +
         (major ? "'2^{" + std::to_string(k) + "}' " + pow2(k) : "'' " + pow2(k) + " 1");
    first = false;
  }
  return s + ")\n";
}

// The extension of OUT, ".png" or ".svg"; throws UsageError for another one.
std::string picture_type(const std::string& out) {
  const std::string e = fs::path(out).extension().string();
  if (e != ".png" && e != ".svg")
    throw UsageError("-o " + out + ": the picture must be a .png or .svg file (by its extension)");
  return e;
}

// The gnuplot terminal of a picture of type `ext` (picture_type).
std::string terminal(const std::string& ext, int width, int height) {
  const std::string size = " size " + std::to_string(width) + "," + std::to_string(height);
  if (ext == ".png") return "set terminal pngcairo" + size + " enhanced font 'Sans,10'\n";
  return "set terminal svg" + size + " enhanced font 'Sans,10' background '#ffffff'\n";
}

// The positive finite magnitude codes of `f`, smallest value first: 0..max, less zero.
std::uint64_t positive_count(const Format& f) {
  return std::uint64_t{max_magnitude_code(f)} + 1 - (has_zero(f) ? 1 : 0);
}

// The colour of a value's mark: subnormals red, normal binades alternating blues.
constexpr const char* kColour =
    "(int($3) == 1 ? 0xd62728 : (int($2) % 2 == 0 ? 0x1f77b4 : 0x17becf))";

// What a kind writes into the data directory: files by name, and the script.
struct Drawing {
  std::vector<std::pair<std::string, std::string>> files;
  std::string script;  // everything after the terminal and output lines
  int height = 540;
};

Drawing numberline(const std::vector<Format>& formats, const std::string& title) {
  Drawing d;
  const int n = int(formats.size());
  d.height = 170 + 70 * n;
  int lo = 0, hi = 0;
  double densest = 1;  // the largest count of a binade drawn as a bar
  for (std::size_t i = 0; i < formats.size(); ++i) {
    const Format& f = formats[i];
    lo = std::min(i == 0 ? 1 << 30 : lo, std::ilogb(min_positive(f)) - 1);
    hi = std::max(i == 0 ? -(1 << 30) : hi, emax(f) + 2);
    if (positive_count(f) > kMaxEnumerated)
      for (const Binade& b : binades(f)) densest = std::max(densest, double(b.count));
  }
  std::ostringstream p;
  p << "set title " << quoted(title) << " noenhanced\n"
    << "set logscale x 2\n"
    << "set xrange [" << pow2(lo) << ":" << pow2(hi) << "]\n"
    << "set yrange [-0.6:" << n - 0.4 << "]\n"
    << log2_tics("x", lo, hi) << "set ytics (";
  for (int i = 0; i < n; ++i) {
    // A row drawn per binade says so, on a second line (a double-quoted string reads \n).
    const Format& f = formats[std::size_t(i)];
    std::string label = format_name(f);
    std::replace(label.begin(), label.end(), '"', '\'');
    if (positive_count(f) > kMaxEnumerated) label += "\\n(count per binade)";
    p << (i ? ", " : "") << '"' << label << "\" " << n - 1 - i;
  }
  p << ") noenhanced\n"
    << "set grid xtics mxtics lc rgb '#c8c8c8'\n"
    << "set xlabel 'x (log_2 axis; a grid line at each binade 2^k, or every few)'\n"
    << "set key below horizontal\n"
    << "plot keyentry with lines lw 3 lc rgb '#d62728' title 'subnormal', \\\n"
    << "     keyentry with lines lw 3 lc rgb '#1f77b4' title 'normal, even binade', \\\n"
    << "     keyentry with lines lw 3 lc rgb '#17becf' title 'normal, odd binade'";
  for (int i = 0; i < n; ++i) {
    const Format& f = formats[std::size_t(i)];
    const int y = n - 1 - i;
    const std::string name = format_name(f);
    std::ostringstream data;
    if (positive_count(f) <= kMaxEnumerated) {
      data << "# " << name << ": its " << positive_count(f)
           << " positive finite values, smallest first\n# value binade subnormal\n";
      for (std::uint32_t m = 0; m <= max_magnitude_code(f); ++m) {
        const double v = decode(f, m);
        if (!(v > 0)) continue;
        data << shortest(v) << " " << std::ilogb(v) << " "
             << (classify(f, m) == ValueClass::subnormal ? 1 : 0) << "\n";
      }
      const std::string file = "values-" + std::to_string(i + 1) + ".dat";
      p << ", \\\n     " << quoted(file) << " using 1:(" << y << " - 0.3):(0):(0.6):" << kColour
        << " with vectors nohead lw 1 lc rgb variable notitle";
      d.files.emplace_back(file, data.str());
    } else {
      data << "# " << name << ": its " << positive_count(f)
           << " positive finite values by binade [lo, hi), the last up to the largest value\n"
           << "# lo hi binade subnormal count\n";
      for (const Binade& b : binades(f)) {
        const double top = std::min(std::ldexp(1.0, b.exponent + 1), max_finite(f));
        data << shortest(std::ldexp(1.0, b.exponent)) << " " << shortest(top) << " " << b.exponent << " "
             << (b.subnormal ? 1 : 0) << " " << b.count << "\n";
      }
      const std::string file = "binades-" + std::to_string(i + 1) + ".dat";
      // The binade [lo, hi) as a bar over the row's baseline, its height log2 of the count.
      const std::string h = "(0.6 * (log($5) / log(2) + 1) / " + shortest(std::log2(densest) + 1) + ")";
      p << ", \\\n     " << quoted(file) << " using (sqrt($1 * $2)):(" << y << "):1:2:(" << y
        << " - 0.3):(" << y << " - 0.3 + " << h
        << "):(int($4) == 1 ? 0xd62728 : (int($3) % 2 == 0 ? 0x1f77b4 : 0x17becf))"
        << " with boxxyerror fill solid 0.8 noborder lc rgb variable notitle";
      d.files.emplace_back(file, data.str());
    }
  }
  p << "\n";
  d.script = p.str();
  return d;
}

Drawing spacing(const std::vector<Format>& formats, const std::string& title) {
  Drawing d;
  int lo = 0, hi = 0, ylo = 0;
  for (std::size_t i = 0; i < formats.size(); ++i) {
    const Format& f = formats[i];
    lo = std::min(i == 0 ? 1 << 30 : lo, std::ilogb(min_positive(f)) - 1);
    hi = std::max(i == 0 ? -(1 << 30) : hi, emax(f) + 2);
    ylo = std::min(ylo, -f.mantissa_bits - 2);
  }
  std::ostringstream p;
  p << "set title " << quoted(title) << " noenhanced\n"
    << "set logscale xy 2\n"
    << "set xrange [" << pow2(lo) << ":" << pow2(hi) << "]\n"
    << "set yrange [" << pow2(ylo) << ":2]\n"
    << log2_tics("x", lo, hi) << log2_tics("y", ylo, 1) << "set grid xtics ytics lc rgb '#c8c8c8'\n"
    << "set xlabel 'x (log_2 axis)'\n"
    << "set ylabel '(next value - x) / x (log_2 axis)'\n"
    << "set key below horizontal noenhanced\n"
    << "plot ";
  for (std::size_t i = 0; i < formats.size(); ++i) {
    const Format& f = formats[i];
    const bool every = positive_count(f) <= kMaxEnumerated;
    std::ostringstream data;
    data << "# " << format_name(f) << ": the relative spacing (next value - x) / x of "
         << (every ? "every positive finite value x below the largest"
                   : "the first and last value x of each binade")
         << "\n# x spacing\n";
    auto point = [&](std::uint32_t m) {
      const double x = decode(f, m), next = decode(f, m + 1);
      data << shortest(x) << " " << shortest((next - x) / x) << "\n";
    };
    if (every) {
      for (std::uint32_t m = 0; m < max_magnitude_code(f); ++m)
        if (decode(f, m) > 0) point(m);
    } else {
      for (const Binade& b : binades(f)) {
        const std::uint32_t last = std::uint32_t(b.first + b.count - 1);
        if (b.first < max_magnitude_code(f)) point(b.first);
        if (last != b.first && last < max_magnitude_code(f)) point(last);
      }
    }
    const std::string file = "spacing-" + std::to_string(i + 1) + ".dat";
    p << (i ? ", \\\n     " : "") << quoted(file) << " using 1:2 with "
      << (every ? "linespoints pt 7 ps 0.4" : "lines") << " lw 1.5 title " << quoted(format_name(f));
    d.files.emplace_back(file, data.str());
  }
  p << "\n";
  d.script = p.str();
  return d;
}

// The settings of plot error.
struct ErrorSettings {
  double lo = 0, hi = 0;
  std::vector<Rounding> modes;
  bool ulps = false, log = false;
  std::uint64_t samples = kDefaultSamples;
};

Drawing error_plot(const Format& f, const ErrorSettings& s, const std::string& title) {
  Drawing d;
  std::ostringstream data;
  data << "# " << format_name(f) << ": the rounding error "
       << (s.ulps ? "(result - x) / ulp" : "(result - x) / x") << " of x, one column per mode\n# x";
  for (Rounding r : s.modes) data << " " << to_string(r);
  data << "\n";
  const double n1 = double(s.samples - 1);
  for (std::uint64_t i = 0; i < s.samples; ++i) {
    double x = s.log ? std::exp2(std::log2(s.lo) + (std::log2(s.hi) - std::log2(s.lo)) * double(i) / n1)
                     : s.lo + (s.hi - s.lo) * double(i) / n1;
    if (i == 0) x = s.lo;
    if (i + 1 == s.samples) x = s.hi;
    if (!s.ulps && x == 0) continue;  // no relative error at 0
    data << shortest(x);
    for (Rounding r : s.modes) {
      ConvertOptions o;
      o.rounding = r;
      const Explanation e = explain(f, x, o);
      data << " " << shortest(s.ulps ? e.error / e.ulp : e.error / x);
    }
    data << "\n";
  }
  d.files.emplace_back("error.dat", data.str());
  std::ostringstream p;
  p << "set title " << quoted(title) << " noenhanced\n";
  if (s.log) {
    const int lo = int(std::floor(std::log2(s.lo))), hi = int(std::ceil(std::log2(s.hi)));
    p << "set logscale x 2\n" << log2_tics("x", lo, hi) << "set xlabel 'x (log_2 axis)'\n";
  } else {
    p << "set xlabel 'x'\n";
  }
  p << "set xrange [" << shortest(s.lo) << ":" << shortest(s.hi) << "]\n"
    << "set grid lc rgb '#c8c8c8'\n"
    << "set ylabel " << quoted(s.ulps ? "(result - x) / ulp" : "(result - x) / x") << "\n"
    << "set key below horizontal noenhanced\n"
    << "plot ";
  for (std::size_t j = 0; j < s.modes.size(); ++j)
    p << (j ? ", \\\n     " : "") << "'error.dat' using 1:" << j + 2 << " with lines lw 1.5 title "
      << quoted(std::string(to_string(s.modes[j])) + " (" +
                std::string(option_entry(s.modes[j]).description) + ")");
  p << "\n";
  d.script = p.str();
  return d;
}

ErrorSettings error_settings(Args& a, const Format& f) {
  ErrorSettings s;
  const double max = max_finite(f);
  s.lo = 0;
  s.hi = max;
  if (a.opt.count("--range")) {
    const std::string r = a.opt["--range"];
    const std::size_t colon = r.find(':');
    const std::string rule = "LO:HI with finite numbers LO < HI, such as 1:16";
    if (colon == std::string::npos) throw UsageError("invalid --range '" + r + "': expected " + rule);
    s.lo = parse_finite(r.substr(0, colon), "--range", rule);
    s.hi = parse_finite(r.substr(colon + 1), "--range", rule);
    if (!(s.lo < s.hi)) throw UsageError("invalid --range '" + r + "': LO must be below HI");
    const double min = f.is_signed ? -max : 0;
    if (s.lo < min || s.hi > max)
      throw UsageError("invalid --range '" + r + "': " + format_name(f) + "'s finite values lie in " +
                       shortest(min) + ":" + shortest(max) +
                       (f.is_signed ? "" : " (an unsigned format has no negative values)"));
  }
  if (a.opt.count("--rounding")) {
    std::string list = a.opt["--rounding"];
    std::size_t start = 0;
    while (true) {
      const std::size_t comma = list.find(',', start);
      const std::string name = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      const Rounding r = option_arg<Rounding>(name);
      if (is_stochastic(r))
        throw UsageError("--rounding " + name + ": a stochastic mode's error is random, not a function of x; "
                         "plot error draws the deterministic modes");
      if (std::find(s.modes.begin(), s.modes.end(), r) != s.modes.end())
        throw UsageError("--rounding: " + name + " given twice");
      s.modes.push_back(r);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  } else {
    s.modes = {Rounding::nearest_even};
  }
  if (a.opt.count("--units")) {
    const std::string u = a.opt["--units"];
    if (u != "relative" && u != "ulp") throw UsageError("unknown --units '" + u + "' (relative, ulp)");
    s.ulps = u == "ulp";
  }
  if (a.opt.count("--samples")) s.samples = parse_unsigned(a.opt["--samples"], "--samples", kMaxSamples, 2);
  s.log = a.opt.count("--log") > 0;
  if (s.log && !(s.lo > 0))
    throw UsageError("--log needs --range LO:HI with LO > 0 (the range starts at " + shortest(s.lo) + ")");
  return s;
}

// A directory removed with what it holds when the command ends.
struct TemporaryDirectory {
  std::string path;
  TemporaryDirectory() {
    std::string t = (fs::temp_directory_path() / "fp8emu-plot-XXXXXX").string();
    if (!::mkdtemp(t.data())) throw FileError("cannot make a temporary directory " + t);
    path = t;
  }
  ~TemporaryDirectory() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
};

}  // namespace

int cmd_plot(int argc, char** argv) {
  // -o is the one short option of the tool: spelled --output for the shared parser.
  std::vector<std::string> words(argv, argv + argc);
  for (std::string& w : words)
    if (w == "-o") w = "--output";
  std::vector<char*> ptrs;
  for (std::string& w : words) ptrs.push_back(w.data());
  Args a = parse_args(int(ptrs.size()), ptrs.data(),
                      {"--output", "--title", "--data", "--range", "--rounding", "--units", "--samples"},
                      {"--help", "--log"});
  if (a.opt.count("--help")) return std::cout << plot_help() << kVariantHelp, 0;
  if (a.pos.empty()) throw UsageError(kUsage);
  const std::string kind = a.pos[0];
  if (kind != "numberline" && kind != "spacing" && kind != "error")
    throw UsageError("unknown plot kind '" + kind + "' (numberline, spacing, error)");
  const std::vector<std::string> names(a.pos.begin() + 1, a.pos.end());
  if (names.empty()) throw UsageError("plot " + kind + " needs a FORMAT; " + kUsage);
  if (kind == "error" && names.size() != 1)
    throw UsageError("plot error draws one FORMAT, not " + std::to_string(names.size()));
  if (names.size() > kMaxFormats)
    throw UsageError("plot " + kind + " draws 1 to " + std::to_string(kMaxFormats) + " formats, not " +
                     std::to_string(names.size()));
  if (kind != "error")
    for (const char* o : {"--range", "--rounding", "--units", "--samples", "--log"})
      if (a.opt.count(o)) throw UsageError(std::string(o) + " is an option of plot error, not of plot " + kind);
  if (!a.opt.count("--output")) throw UsageError("plot needs -o OUT.png or -o OUT.svg");
  const std::string out = a.opt["--output"];
  const std::string ext = picture_type(out);
  std::vector<Format> formats;
  for (const std::string& n : names) formats.push_back(format_arg(n));
  constexpr int kWidth = 960;
  std::string title;
  if (a.opt.count("--title")) title = a.opt["--title"];
  auto list = [&] {
    std::string s;
    for (const Format& f : formats) s += (s.empty() ? "" : ", ") + format_name(f);
    return s;
  };
  Drawing d;
  if (kind == "numberline") {
    d = numberline(formats, title.empty() ? "The positive finite values of " + list() : title);
  } else if (kind == "spacing") {
    d = spacing(formats, title.empty() ? "The relative spacing of " + list() : title);
  } else {
    const ErrorSettings s = error_settings(a, formats[0]);
    std::string modes;
    for (Rounding r : s.modes) modes += (modes.empty() ? "" : ", ") + std::string(to_string(r));
    d = error_plot(formats[0], s,
                   title.empty() ? "The rounding error of " + list() + " (" + modes + ")" : title);
  }
  // The data directory: --data DIR, kept, or a temporary one.
  std::optional<TemporaryDirectory> temporary;
  std::string dir;
  if (a.opt.count("--data")) {
    dir = a.opt["--data"];
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (!fs::is_directory(dir)) throw UsageError("--data " + dir + ": cannot make the directory");
  } else {
    dir = temporary.emplace().path;
  }
  const std::string picture = "plot" + ext;
  for (const auto& [name, text] : d.files) write_file((fs::path(dir) / name).string(), text);
  write_file((fs::path(dir) / "plot.gp").string(),
             "# fp8emu plot " + kind + ": gnuplot plot.gp draws " + picture + ".tmp\n" +
                 terminal(ext, kWidth, d.height) +
                 "set output " + quoted(picture + ".tmp") + "\n" + d.script);
  const std::string why = run_gnuplot(dir, "plot.gp", {picture});
  if (!why.empty()) {
    std::cerr << "fp8emu: error: " << why << "\n";
    return 1;
  }
  // The picture reaches OUT whole, through the one writer.
  const std::string drawn = (fs::path(dir) / picture).string();
  std::ifstream in(drawn, std::ios::binary);
  if (!in) throw FileError("cannot read the picture " + drawn);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw FileError("cannot read the picture " + drawn);
  write_file(out, bytes);
  return 0;
}

}  // namespace fp8emu::cli
