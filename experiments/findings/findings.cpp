#include "findings/findings.hpp"

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <system_error>

#include "common/study_common.hpp"
#include "fp8sim/dataset.hpp"

namespace findings {

namespace fs = std::filesystem;

std::string default_out(const std::string& name) { return "results/" + name; }

Outputs::Outputs(std::string dir, bool plots) : dir_(std::move(dir)), plots_(plots) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_)) throw fp8sim::DataError("cannot create the directory " + dir_);
}

void Outputs::write(const std::string& file, const std::string& text) const {
  const fs::path p = fs::path(dir_) / file;
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  common::write_file(p.string(), text);
}

std::string Outputs::plot(const std::string& script, const std::vector<std::string>& pngs) const {
  write("plots.gp", script);
  return common::run_gnuplot(dir_, plots_, pngs);
}

void Outputs::report(const Report& r) const {
  std::ostringstream s;
  s << "# " << r.title << "\n\n";
  s << "Command: `" << r.command << "`\n\n";
  s << "## Claim\n\n" << r.claim << "\n\nSource: " << r.source << "\n\n";
  s << "## What this run measured\n\n" << r.measured << "\n\n";
  s << "## Agrees?\n\n" << r.agrees << "\n";
  if (!r.notes.empty()) s << "\n## Notes\n\n" << r.notes << "\n";
  write("report.md", s.str());
}

std::string command_line(int argc, char** argv) {
  std::string s = "fp8exp";
  for (int i = 0; i < argc; ++i) s += std::string(" ") + argv[i];
  return s;
}

namespace {

// The column of the options' help in a usage text.
constexpr std::size_t kHelpColumn = 20;

// The setter of --out: a directory, not "".
OptionSetter set_directory(std::string& x) {
  return [&x](const std::string& flag, const std::string& v) {
    if (v.empty()) throw common::UsageError(flag + ": the directory is empty");
    x = v;
  };
}

}  // namespace

std::string OptionTable::usage() const {
  std::string u = "usage: fp8exp " + name + " [options]\n" + about + "\n\n";
  std::string label;
  for (const Option& o : options) {
    if (o.flag.empty()) {
      u += o.help + "\n";
      continue;
    }
    label += (label.empty() ? "  " : ", ") + o.flag + (o.arg.empty() ? "" : " " + o.arg);
    if (o.help.empty()) continue;
    u += label;
    if (label.size() < kHelpColumn)
      u += std::string(kHelpColumn - label.size(), ' ');
    else
      u += "\n" + std::string(kHelpColumn, ' ');
    for (const char c : o.help)
      u += c == '\n' ? "\n" + std::string(kHelpColumn, ' ') : std::string(1, c);
    u += "\n";
    label.clear();
  }
  return u + footer;
}

void OptionTable::add_outputs(std::string& out, bool& plots) {
  options.push_back({"--out", "DIR", "results directory (default " + default_out(name) + ")",
                     set_directory(out)});
  options.push_back({"--no-plots", "", "do not run gnuplot", set_false(plots)});
}

void OptionTable::parse(int argc, char** argv) const {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << usage();
      std::exit(0);
    }
    const Option* o = nullptr;
    for (const Option& x : options)
      if (!x.flag.empty() && x.flag == a) o = &x;
    if (!o)
      throw common::UsageError("unknown option '" + a + "' (fp8exp " + name +
                               " --help lists them)");
    o->set(a, o->arg.empty() ? std::string() : common::option_value(argc, argv, i));
  }
}

OptionSetter set_text(std::string& x) {
  return [&x](const std::string&, const std::string& v) { x = v; };
}

OptionSetter set_names(std::vector<std::string>& x) {
  return [&x](const std::string& flag, const std::string& v) { x = common::split_list(v, flag); };
}

OptionSetter set_false(bool& x) {
  return [&x](const std::string&, const std::string&) { x = false; };
}

std::string verdict(int agree, int cases) {
  return cases == 0 ? "Not tested" : agree == cases ? "Yes" : agree == 0 ? "No" : "Partly";
}

void print_summary(const std::string& name, const std::string& headline, int agree, int cases,
                   const std::string& what, const std::string& files, const std::string& dir,
                   double seconds, const std::string& plot_note) {
  std::cout << "fp8exp " << name << ": " << headline << "\nfp8exp " << name << ": agrees in " << agree
            << " of " << cases << " " << what << "; wrote " << files << (plot_note.empty() ? " and plots" : "")
            << " into " << dir << " (" << common::fixed(seconds, 1) << " s)\n";
  if (!plot_note.empty()) std::cout << "fp8exp " << name << ": " << plot_note << "\n";
}

}  // namespace findings
