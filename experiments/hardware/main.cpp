// fp8hw: checks fp8emu's conversion and matrix-unit models against an NVIDIA Hopper GPU
// (sm_90a), comparing on the spot (docs/hardware-validation.md).
//
//   fp8hw [--checks LIST] [--instructions N] [--seed S] [--quick] [--out DIR]
//
// Exit status: 0 when every gating check is bit-exact, 1 when one differs, 2 on bad
// usage or a failed CUDA call, 3 when no suitable GPU is present (with a message).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <ctime>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "fp8emu/explain.hpp"
#include "fp8emu/file.hpp"
#include "fp8emu/program.hpp"
#include "harness.hpp"

namespace {

using namespace fp8hw;

constexpr const char* kHelp =
    "usage: fp8hw [--checks LIST] [--instructions N] [--seed S] [--quick] [--out DIR]\n"
    "\n"
    "Runs PTX conversions, mma.sync / wgmma FP8 instructions and cuBLASLt FP8 GEMMs on\n"
    "this machine's GPU (Hopper, sm_90a) and compares each result with fp8emu, bit for bit.\n"
    "\n"
    "  --checks LIST      comma-separated: conversions, mma, wgmma, cublaslt (default all)\n"
    "  --instructions N   random mma.sync instructions (default 1048576; wgmma runs the\n"
    "                     same GEMMs: a quarter as many instructions of four times the size)\n"
    "  --seed S           seed of the random operands (default 1)\n"
    "  --quick            a short run: every 64th chunk of float32 patterns, 3 GEMMs\n"
    "  --out DIR          where results.md goes (default results/hardware)\n"
    "  --cases            print each discriminating case under every emulator model (no\n"
    "                     GPU needed) and exit\n"
    "  --version          print the version and exit\n"
    "\n"
    "Exit status: 0 every gating check bit-exact, 1 some differ, 2 bad usage or a failed\n"
    "CUDA call, 3 no suitable GPU.\n";

std::string markdown(const std::string& device, const std::vector<CheckResult>& results) {
  std::ostringstream s;
  s << "# fp8hw results\n\n" << device << "\n\n";
  s << "| group | check | compared with | cases | bit-exact | differ | max ulps | gating |\n";
  s << "|---|---|---|---|---|---|---|---|\n";
  for (const auto& c : results)
    s << "| " << c.group << " | " << c.name << " | " << c.model << " | " << c.report.total << " | " << c.report.exact
      << " | " << (c.report.total - c.report.exact) << " | " << fp8emu::shortest(c.report.max_ulps) << " | "
      << (c.gating ? "yes" : "no") << " |\n";
  s << "\n";
  for (const auto& c : results) {
    if (c.note.empty() && c.report.first.empty()) continue;
    s << "## " << c.group << ": " << c.name << " vs " << c.model << "\n\n";
    if (!c.note.empty()) s << c.note << "\n\n";
    for (const auto& m : c.report.first)
      s << "- index " << m.index << ": expected " << fp8emu::shortest(m.expected) << ", hardware "
        << fp8emu::shortest(m.actual) << ", " << fp8emu::shortest(m.ulps) << " ulps, "
        << fp8emu::difference_name(m.kind) << "\n";
    s << "\n";
  }
  return s.str();
}

int run(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument("option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") return std::cout << kHelp, 0;
    if (a == "--version") return std::cout << "fp8hw " FP8EMU_VERSION "\n", 0;
    if (a == "--cases") return print_case_table();
    if (a == "--quick") {
      o.quick = true;
    } else if (a == "--checks") {
      std::stringstream ss(value());
      for (std::string c; std::getline(ss, c, ',');) {
        if (c != "conversions" && c != "mma" && c != "wgmma" && c != "cublaslt")
          throw std::invalid_argument("unknown check '" + c + "' (conversions, mma, wgmma, cublaslt)");
        o.checks.push_back(c);
      }
    } else if (a == "--instructions" || a == "--seed") {
      const std::string v = value();
      char* end = nullptr;
      const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end || v[0] == '-' || (a == "--instructions" && (x == 0 || x > (1ull << 32))))
        throw std::invalid_argument("invalid " + a + " '" + v + "'");
      (a == "--seed" ? o.seed : o.instructions) = x;
    } else if (a == "--out") {
      o.out = value();
    } else {
      throw std::invalid_argument("unknown argument '" + a + "' (see --help)");
    }
  }
  // The device: a Hopper GPU, since the kernels are built for sm_90a only.
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::cerr << "fp8hw: no CUDA device: " << (e != cudaSuccess ? cudaGetErrorString(e) : "none found") << "\n";
    return 3;
  }
  cudaDeviceProp p{};
  CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
  if (p.major != 9 || p.minor != 0) {
    std::cerr << "fp8hw: the kernels are built for sm_90a (Hopper); device 0 is " << p.name << ", sm_" << p.major
              << p.minor << "\n";
    return 3;
  }
  int driver = 0, runtime = 0;
  CUDA_CHECK(cudaDriverGetVersion(&driver));
  CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  std::ostringstream dev;
  dev << "Device: " << p.name << " (sm_" << p.major << p.minor << ", " << p.multiProcessorCount << " SMs, "
      << (p.totalGlobalMem >> 20) << " MiB); driver API " << driver / 1000 << "." << (driver % 1000) / 10
      << ", runtime " << runtime / 1000 << "." << (runtime % 1000) / 10 << ", cuBLASLt " << cublasLtGetVersion()
      << "; seed " << o.seed << (o.quick ? "; quick run" : "");
  std::cout << dev.str() << "\n";
  std::vector<CheckResult> results;
  if (o.wants("conversions")) run_conversions(o, results);
  if (o.wants("mma") || o.wants("wgmma")) run_matrix_units(o, true, results);
  if (o.wants("cublaslt")) run_cublaslt(o, results);
  std::uint64_t failed = 0;
  for (const auto& c : results)
    if (c.gating && c.report.exact != c.report.total) ++failed;
  const std::string md = markdown(dev.str(), results);
  std::filesystem::create_directories(o.out);
  fp8emu::write_file(o.out + "/results.md", md);
  std::cout << (failed ? "FAIL: " : "PASS: ") << failed << " gating checks differ; " << o.out << "/results.md\n";
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  fp8emu::wait_passively(argv);
  try {
    return run(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::cerr << "fp8hw: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "fp8hw: error: " << e.what() << "\n";
    return 2;
  }
}
