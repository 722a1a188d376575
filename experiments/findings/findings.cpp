#include "findings/findings.hpp"

#include <filesystem>
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

}  // namespace findings
