// fp8hw cuBLASLt: FP8 GEMMs (e4m3 x e4m3, float32 accumulation type) with per-tensor
// scales, float32 and bfloat16 outputs, with and without CUBLASLT_MATMUL_DESC_FAST_ACCUM,
// against fp8emu's models with and without promotion. cuBLASLt's accumulation is not
// documented, so no configuration gates the run: the report gives, per cuBLASLt
// configuration, each model's bit-exact rate and error statistics, and names the best.
//
// Layout: cuBLASLt's FP8 GEMMs take A transposed (the "TN" form): A is stored K x M
// column-major (our M x K row-major), B K x N column-major (our B^T, N x K row-major), D
// M x N column-major. Scales are powers of two, so the order in which cuBLASLt and
// fp8emu multiply alpha and the two scales cannot change a bit.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <cublasLt.h>

#include "fp8emu/array.hpp"
#include "fp8emu/convert.hpp"
#include "fp8emu/gemm.hpp"
#include "fp8emu/random.hpp"
#include "harness.hpp"

namespace fp8hw {

namespace {

using namespace fp8emu;

void check_cublas(cublasStatus_t s, const char* what, const char* where) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw HarnessError(std::string(where) + ": " + what + " failed: " + cublasLtGetStatusString(s));
}
#define CUBLAS_CHECK(call) check_cublas((call), #call, __FILE__ ":" FP8HW_STR(__LINE__))

// RAII for the cuBLASLt objects of one call.
struct LtCall {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtCall() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

struct Shape {
  int m, n, k;
};

// Runs D = scale_a * scale_b * A B on the device; returns D as float32 row-major M x N
// (bfloat16 outputs widened, exactly) and the algorithm's id.
std::vector<float> lt_gemm(cublasLtHandle_t lt, const Shape& s, const std::vector<std::uint8_t>& a,
                           const std::vector<std::uint8_t>& bt, float scale_a, float scale_b, bool fast, bool bf16,
                           int& algo_id) {
  DeviceBuffer<std::uint8_t> da(a.size()), db(bt.size());
  DeviceBuffer<float> dsa(1), dsb(1);
  DeviceBuffer<std::uint8_t> dd(std::size_t(s.m) * s.n * (bf16 ? 2 : 4));
  const std::size_t workspace_bytes = 32u << 20;
  DeviceBuffer<std::uint8_t> ws(workspace_bytes);
  da.upload(a);
  db.upload(bt);
  dsa.upload({scale_a});
  dsb.upload({scale_b});
  LtCall c;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&c.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  const std::int8_t fast_accum = fast ? 1 : 0;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast_accum, sizeof fast_accum));
  const float* psa = dsa.get();
  const float* psb = dsb.get();
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &psa, sizeof psa));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(c.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &psb, sizeof psb));
  const cudaDataType_t out_type = bf16 ? CUDA_R_16BF : CUDA_R_32F;
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&c.la, CUDA_R_8F_E4M3, std::uint64_t(s.k), std::uint64_t(s.m), s.k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&c.lb, CUDA_R_8F_E4M3, std::uint64_t(s.k), std::uint64_t(s.n), s.k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&c.lc, out_type, std::uint64_t(s.m), std::uint64_t(s.n), s.m));
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&c.pref));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(c.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &workspace_bytes, sizeof workspace_bytes));
  cublasLtMatmulHeuristicResult_t heur{};
  int found = 0;
  CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(lt, c.op, c.la, c.lb, c.lc, c.lc, c.pref, 1, &heur, &found));
  if (found == 0) throw HarnessError("cuBLASLt found no FP8 algorithm for this configuration");
  std::size_t written = 0;
  algo_id = -1;
  CUBLAS_CHECK(cublasLtMatmulAlgoConfigGetAttribute(&heur.algo, CUBLASLT_ALGO_CONFIG_ID, &algo_id, sizeof algo_id, &written));
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(lt, c.op, &alpha, da.get(), c.la, db.get(), c.lb, &beta, dd.get(), c.lc, dd.get(), c.lc,
                              &heur.algo, ws.get(), workspace_bytes, nullptr));
  sync_checked("cublasLtMatmul");
  std::vector<std::uint8_t> raw;
  dd.download(raw);
  // Column-major M x N to row-major, widening bfloat16 exactly.
  std::vector<float> d(std::size_t(s.m) * s.n);
  for (int j = 0; j < s.n; ++j)
    for (int i = 0; i < s.m; ++i) {
      const std::size_t src = std::size_t(j) * s.m + i;
      float v;
      if (bf16) {
        std::uint16_t h;
        std::memcpy(&h, raw.data() + 2 * src, 2);
        const std::uint32_t w = std::uint32_t(h) << 16;
        std::memcpy(&v, &w, 4);
      } else {
        std::memcpy(&v, raw.data() + 4 * src, 4);
      }
      d[std::size_t(i) * s.n + j] = v;
    }
  return d;
}


// The bfloat16 output conversion: round to nearest even, overflow to infinity.
std::vector<float> to_bfloat16(const std::vector<float>& c) {
  std::vector<float> r(c.size());
  ArrayOptions o;
  o.convert.saturation = Saturation::none;
  fake_quantize(formats::bfloat16{}, c, r, o);
  return r;
}

}  // namespace

void run_cublaslt(const Options& o, std::vector<CheckResult>& out) {
  cublasLtHandle_t lt = nullptr;
  CUBLAS_CHECK(cublasLtCreate(&lt));
  struct Handle {
    cublasLtHandle_t h;
    ~Handle() { cublasLtDestroy(h); }
  } guard{lt};
  std::vector<Shape> shapes = {{256, 256, 4096}, {256, 256, 16384}, {1024, 512, 4096}, {512, 512, 1024}};
  if (o.quick) shapes = {{128, 128, 4096}, {128, 128, 16384}};
  const std::vector<std::string> models = {"fp32",
                                           "nvidia-h100-fp8",
                                           "nvidia-h100-fp8,promote=64",
                                           "nvidia-h100-fp8,promote=128",
                                           "nvidia-h100-fp8,promote=256",
                                           "nvidia-h100-fp8,promote=512",
                                           "nvidia-h100-fp8,input=separate"};
  const float scale_a = 0.5f, scale_b = 0.125f;
  const Format e4 = formats::e4m3fn{};
  for (std::size_t si = 0; si < shapes.size(); ++si) {
    const Shape s = shapes[si];
    // N(0,1) x 16 rounded to e4m3 (amax about 80: the per-tensor recipe's range).
    std::vector<std::uint8_t> a(std::size_t(s.m) * s.k), bt(std::size_t(s.n) * s.k);
    const RandomKey ka = random_key(o.seed, 5000 + 2 * si), kb = random_key(o.seed, 5001 + 2 * si);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = std::uint8_t(encode(e4, 16 * fp8emu::random_normal(ka, i)));
    for (std::size_t i = 0; i < bt.size(); ++i) bt[i] = std::uint8_t(encode(e4, 16 * fp8emu::random_normal(kb, i)));
    // Each model once per shape (float32), rounded to bfloat16 for the bfloat16 outputs.
    std::vector<std::vector<float>> emulated, emulated_bf16;
    for (const std::string& spec : models) {
      emulated.push_back(emulate_e4m3_gemm(s.m, s.n, s.k, a, bt, spec, scale_a, scale_b));
      emulated_bf16.push_back(to_bfloat16(emulated.back()));
    }
    for (bool fast : {false, true})
      for (bool bf16 : {false, true}) {
        int algo = -1;
        const std::vector<float> got = lt_gemm(lt, s, a, bt, scale_a, scale_b, fast, bf16, algo);
        const std::string config = std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k) +
                                   (bf16 ? ", bf16 out" : ", f32 out") + (fast ? ", fast accum" : "") +
                                   " (algo " + std::to_string(algo) + ")";
        std::string best;
        double best_rate = -1;
        std::string table;
        for (std::size_t mi = 0; mi < models.size(); ++mi) {
          const std::string& spec = models[mi];
          CompareOptions co;
          co.keep = 5;
          const CompareReport r = compare_values(bf16 ? Format(formats::bfloat16{}) : Format(formats::float32{}),
                                                 bf16 ? emulated_bf16[mi] : emulated[mi], got, co);
          const double rate = double(r.exact) / double(r.total);
          char buf[256];
          std::snprintf(buf, sizeof buf, "    %-34s bit-exact %8.4f%%  max %g ulps  max rel %.3g\n", spec.c_str(),
                        100 * rate, r.max_ulps, r.max_rel_error);
          table += buf;
          if (rate > best_rate) best_rate = rate, best = spec;
          CheckResult c = new_check("cublaslt", config, spec, bf16 ? "bfloat16" : "float32");
          c.gating = false;
          c.report = r;
          out.push_back(c);
        }
        std::printf("  cublasLt %s: best %s (%.4f%% bit-exact)\n%s", config.c_str(), best.c_str(), 100 * best_rate,
                    table.c_str());
      }
  }
}

}  // namespace fp8hw
