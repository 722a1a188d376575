#include "findings/findings.hpp"

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
