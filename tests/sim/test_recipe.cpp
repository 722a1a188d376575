// Recipes (parsing, files, checks), scale rules, and the quantized GEMM of the simulator:
// its result against a float64 product of operands quantized here with fp8emu's scalar
// encode, for every scaling kind and both storage orders of B; delayed scaling's history;
// the statistics on hand-picked values.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <vector>

#include "fp8emu/convert.hpp"
#include "fp8emu/random.hpp"
#include "fp8sim/checkpoint.hpp"
#include "fp8sim/qgemm.hpp"
#include "fp8sim/recipe.hpp"
#include "fp8sim/train.hpp"
#include "sim/models.hpp"

using namespace fp8sim;

namespace {

std::string temp_file(const std::string& name, const std::string& text) {
  const std::string path = "fp8sim_test_" + name;
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const RecipeError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("every named recipe prints as a file that reads back the same") {
  int n = 0;
  for (auto name : recipe_names()) {
    const Recipe r = named_recipe(name);
    CHECK_FALSE(r.description.empty());
    check_recipe(r);
    const std::string text = recipe_text(r);
    const std::string path = temp_file(std::string(name) + ".recipe", text);
    const Recipe back = load_recipe_file(path);
    CHECK(recipe_text(back) == text);
    std::remove(path.c_str());
    ++n;
  }
  REQUIRE(n == 12);
  // What the sources name (Transformer Engine, DeepSeek-V3), checked on the data.
  const Recipe d = named_recipe("fp8-hybrid-delayed");
  CHECK(d.role(Role::fprop).a.format == fp8emu::Format(fp8emu::formats::e4m3fn{}));
  CHECK(d.role(Role::dgrad).a.format == fp8emu::Format(fp8emu::formats::e5m2{}));
  CHECK(d.role(Role::wgrad).b.format == fp8emu::Format(fp8emu::formats::e4m3fn{}));
  CHECK(d.role(Role::fprop).a.scaling.history == 1024);
  CHECK(d.role(Role::fprop).a.scaling.algo == AmaxAlgo::max);
  CHECK(d.role(Role::fprop).a.scaling.margin == 0);
  const Recipe b = named_recipe("fp8-e4m3-blockwise");
  CHECK(scaling_spec(b.role(Role::fprop).a.scaling) == "block:1x128");
  CHECK(scaling_spec(b.role(Role::fprop).b.scaling) == "block:128x128");
  CHECK(storage_spec(b.moment1) == "bfloat16");
  CHECK(scaling_spec(named_recipe("mxfp8").role(Role::wgrad).a.scaling) == "mx");
  CHECK(named_recipe("fp8-unscaled").role(Role::dgrad).a.scaling.kind == ScalingKind::none);
}

TEST_CASE("recipe keys, specs and files: good values apply, bad ones say what is wrong") {
  Recipe r = named_recipe("fp32");
  set_recipe_key(r, "grad.format", "e5m2");
  set_recipe_key(r, "grad.scaling", "delayed:history=16:algo=most_recent:margin=2");
  set_recipe_key(r, "weight.rounding", "sr");
  set_recipe_key(r, "wgrad.accumulate", "nvidia-h100-fp8,promote=128");
  set_recipe_key(r, "master", "bf16:sr");
  set_recipe_key(r, "moment2", "e4m3fn:scaled");
  CHECK(r.role(Role::dgrad).a.format == fp8emu::Format(fp8emu::formats::e5m2{}));
  CHECK(r.role(Role::wgrad).a.scaling.history == 16);
  CHECK(r.role(Role::wgrad).a.scaling.algo == AmaxAlgo::most_recent);
  CHECK(r.role(Role::dgrad).b.convert.rounding == fp8emu::Rounding::stochastic_a);
  CHECK(r.role(Role::dgrad).b.convert.stochastic_bits == 32);
  CHECK(r.role(Role::wgrad).accumulation.promote_interval == 128);
  CHECK(r.role(Role::fprop).accumulation.unit.model == fp8emu::UnitModel::none);
  CHECK(storage_spec(r.master) == "bfloat16:sr");
  CHECK(storage_spec(r.moment2) == "e4m3fn:scaled");
  CHECK(storage_spec(r.moment1) == "float32");
  for (const char* spec : {"none", "tensor", "row", "block:1x128", "block:128x128:pow2", "mx", "mx:floor",
                           "delayed:history=1024:algo=max", "delayed:history=4:algo=most_recent:margin=-1:pow2"})
    CHECK(scaling_spec(parse_scaling(spec)) == spec);

  CHECK(error_of([&] { set_recipe_key(r, "gradient.format", "e5m2"); }).find("unknown recipe key 'gradient.format'") !=
        std::string::npos);
  CHECK(error_of([&] { set_recipe_key(r, "input.format", "e9m9"); }).find("format 'e9m9'") != std::string::npos);
  CHECK(error_of([&] { set_recipe_key(r, "input.scaling", "block:1"); }).find("RxK") != std::string::npos);
  CHECK(error_of([&] { set_recipe_key(r, "input.scaling", "mx:margin=1"); }).find("does not apply") !=
        std::string::npos);
  CHECK(error_of([&] { set_recipe_key(r, "input.rounding", "up"); }).find("unknown rounding") != std::string::npos);
  CHECK(error_of([&] { set_recipe_key(r, "master", "bf16:fast"); }).find("unknown option 'fast'") !=
        std::string::npos);
  CHECK(error_of([&] { set_recipe_key(r, "accumulate", "tensor-core"); }).find("unknown preset") !=
        std::string::npos);
  CHECK(error_of([&] { set_recipe_key(r, "master", ""); }).find("no value") != std::string::npos);
  CHECK(error_of([] { named_recipe("fp8"); }).find("named recipes: fp32") != std::string::npos);

  // Blocks along K must agree between the operands of a role.
  Recipe m = named_recipe("mxfp8");
  set_recipe_key(m, "fprop.b.scaling", "block:1x128");
  CHECK(error_of([&] { check_recipe(m); }).find("fprop splits K into blocks of 32 (operand a) and 128") !=
        std::string::npos);

  // Files: base first, comments, line numbers in errors.
  const std::string good = temp_file("good.recipe",
                                     "# mine\nbase = fp8-hybrid-current\nname = mine\nmaster = bf16   # rounded\n");
  const Recipe f = load_recipe_file(good);
  CHECK(f.name == "mine");
  CHECK(storage_spec(f.master) == "bfloat16");
  CHECK(scaling_spec(f.role(Role::fprop).a.scaling) == "tensor");
  const std::string late = temp_file("late.recipe", "master = bf16\nbase = fp32\n");
  CHECK(error_of([&] { load_recipe_file(late); }).find("late.recipe:2: base must come before") != std::string::npos);
  const std::string noeq = temp_file("noeq.recipe", "\n\nmaster bf16\n");
  CHECK(error_of([&] { load_recipe_file(noeq); }).find("noeq.recipe:3: expected key = value") != std::string::npos);
  CHECK(error_of([] { load_recipe_file("/nonexistent/x.recipe"); }).find("cannot open") != std::string::npos);
  for (const auto& p : {good, late, noeq}) std::remove(p.c_str());
}

TEST_CASE("recipe names are safe file names, and a key or base given twice in a file is an error") {
  // Names become file names (checkpoints, plot data): [A-Za-z0-9._-], not starting with
  // '.', 1 to 64 characters.
  int good_names = 0;
  for (const char* n : {"a", "fp8-e4m3_v2.1", "A0", "x.y-z_", "0"}) {
    Recipe r = named_recipe("fp32");
    set_recipe_key(r, "name", n);
    CHECK(r.name == n);
    CHECK(valid_recipe_name(n));
    ++good_names;
  }
  REQUIRE(good_names == 5);
  int bad_names = 0;
  for (const std::string& n : std::vector<std::string>{"../../escape", "a/b", ".hidden", "..", "a b", "a\\b", "caf\xc3\xa9", "a:b",
                              std::string(65, 'x')}) {
    Recipe r = named_recipe("fp32");
    CHECK_FALSE(valid_recipe_name(n));
    CHECK(error_of([&] { set_recipe_key(r, "name", n); }).find("recipe name '" + n + "'") != std::string::npos);
    CHECK(r.name == "fp32");
    r.name = n;
    CHECK(error_of([&] { check_recipe(r); }).find("recipe name") != std::string::npos);
    ++bad_names;
  }
  REQUIRE(bad_names == 9);
  CHECK(valid_recipe_name(std::string(64, 'x')));
  CHECK_FALSE(valid_recipe_name(""));
  for (auto n : recipe_names()) CHECK(valid_recipe_name(n));

  // In a file: the line of the bad name, before any training.
  const std::string esc = temp_file("esc.recipe", "base = fp32\nname = ../../escape\n");
  CHECK(error_of([&] { load_recipe_file(esc); }).find("esc.recipe:2: recipe name '../../escape'") != std::string::npos);
  // A file whose stem is not a valid name, with no name line, is refused with its path.
  const std::string stem = temp_file("my recipe.recipe", "base = fp32\n");
  CHECK(error_of([&] { load_recipe_file(stem); }).find("my recipe.recipe: recipe name 'fp8sim_test_my recipe'") !=
        std::string::npos);
  const std::string stem_named = temp_file("my other.recipe", "name = fine\n");
  CHECK(load_recipe_file(stem_named).name == "fine");

  // A key given twice, and a second base line, name both lines.
  const std::string dup = temp_file("dup.recipe", "base = fp32\nmaster = bf16\n# comment\nmaster = fp32\n");
  CHECK(error_of([&] { load_recipe_file(dup); }).find("dup.recipe:4: key 'master' is already set on line 2") !=
        std::string::npos);
  const std::string dup_spaced = temp_file("dups.recipe", "grad.format = e5m2\n  grad.format=e4m3fn\n");
  CHECK(error_of([&] { load_recipe_file(dup_spaced); }).find("dups.recipe:2: key 'grad.format' is already set on line 1") !=
        std::string::npos);
  const std::string base2 = temp_file("base2.recipe", "base = fp32\nbase = bf16\n");
  const std::string base2_error = error_of([&] { load_recipe_file(base2); });
  CHECK(base2_error.find("base2.recipe:2: base is already set on line 1") != std::string::npos);
  CHECK(base2_error.find("must come before") == std::string::npos);
  // Different keys that overlap layer as in the named recipes: all, then grad.
  const std::string layered = temp_file("layered.recipe", "all.format = e4m3fn\ngrad.format = e5m2\n");
  const Recipe l = load_recipe_file(layered);
  CHECK(l.role(Role::fprop).a.format == fp8emu::Format(fp8emu::formats::e4m3fn{}));
  CHECK(l.role(Role::dgrad).a.format == fp8emu::Format(fp8emu::formats::e5m2{}));
  for (const auto& p : {esc, stem, stem_named, dup, dup_spaced, base2, layered}) std::remove(p.c_str());
}

TEST_CASE("scale rules: per-tensor max / amax with margin and pow2, MX exponents both ways") {
  const double e4 = 448;
  Scaling s;
  CHECK(amax_scale(s, e4, 448) == 1.0f);
  CHECK(amax_scale(s, e4, 1) == 448.0f);
  CHECK(amax_scale(s, e4, 0) == 1.0f);
  CHECK(amax_scale(s, e4, INFINITY) == 1.0f);
  CHECK(amax_scale(s, e4, NAN) == 1.0f);
  CHECK(amax_scale(s, e4, 1e-300) == 1.0f);  // the scale would overflow float
  s.margin = 1;
  CHECK(amax_scale(s, e4, 1) == 224.0f);
  s.margin = 0;
  s.pow2 = true;
  CHECK(amax_scale(s, e4, 1) == 256.0f);
  CHECK(amax_scale(s, e4, 3) == 128.0f);

  const fp8emu::Format f = fp8emu::formats::e4m3fn{};
  Scaling up, floor;
  up.kind = floor.kind = ScalingKind::mx;
  floor.mx_floor = true;
  // NVIDIA: the smallest e with amax <= 448 2^e.
  CHECK(mx_exponent(up, f, 448) == 0);
  CHECK(mx_exponent(up, f, 448.5) == 1);
  CHECK(mx_exponent(up, f, 1) == -8);
  CHECK(mx_exponent(up, f, 0.875) == -9);
  // OCP: floor(log2 amax) - 8.
  CHECK(mx_exponent(floor, f, 448) == 0);
  CHECK(mx_exponent(floor, f, 511) == 0);  // 511 / 1 saturates to 448: the clipping NVIDIA avoids
  CHECK(mx_exponent(floor, f, 512) == 1);
  CHECK(mx_exponent(floor, f, 1) == -8);
  CHECK(mx_exponent(up, f, 0) == -127);
  CHECK(mx_exponent(up, f, 1e300) == 127);
  CHECK(mx_exponent(up, f, 1e-300) == -127);
}

namespace {

// The reference of one operand element: decode(encode(x s)) / s in float64 (round to
// nearest even, saturating), with fp8emu's scalar encode.
double quantized(const fp8emu::Format& f, float x, float s) {
  const std::uint32_t c = fp8emu::encode_scaled(f, double(x), s, {fp8emu::Rounding::nearest_even, fp8emu::Saturation::finite});
  return fp8emu::decode(f, c) / double(s);
}

// Scale of element (r, k) of an R x K operand under `sc` (current or mx), computed here.
float scale_at(const Scaling& sc, const fp8emu::Format& f, const std::vector<float>& x, std::int64_t R,
               std::int64_t K, std::int64_t r, std::int64_t k, const std::function<float(std::int64_t, std::int64_t)>& at) {
  const std::int64_t br = sc.block_rows ? sc.block_rows : R, bk = sc.block_k ? sc.block_k : K;
  double amax = 0;
  for (std::int64_t i = r / br * br; i < std::min(R, (r / br + 1) * br); ++i)
    for (std::int64_t j = k / bk * bk; j < std::min(K, (k / bk + 1) * bk); ++j) amax = std::max(amax, double(std::fabs(at(i, j))));
  (void)x;
  if (sc.kind == ScalingKind::mx) return std::ldexp(1.0f, -mx_exponent(sc, f, amax));
  return amax_scale(sc, fp8emu::max_finite(f), amax);
}

}  // namespace

TEST_CASE("recipe_gemm equals the float64 product of operands quantized by the scalar encode") {
  const std::int64_t M = 5, K = 96, N = 7;
  const fp8emu::RandomKey key = fp8emu::random_key(3, 1);
  std::vector<float> a(std::size_t(M * K)), b(std::size_t(K * N));
  // Magnitudes spread over 2^-12 .. 2^6 so that blocks get different scales.
  for (std::size_t i = 0; i < a.size(); ++i)
    a[i] = std::ldexp(float(std::int32_t(fp8emu::random_bits(key, i))) * 0x1p-31f, int(i % 19) - 12);
  for (std::size_t i = 0; i < b.size(); ++i)
    b[i] = std::ldexp(float(std::int32_t(fp8emu::random_bits(key, 1000 + i))) * 0x1p-31f, int(i % 13) - 6);
  int cases = 0;
  for (const char* spec : {"none", "tensor", "row", "block:1x32", "block:2x32", "block:4x48:pow2", "mx", "mx:floor"})
    for (bool b_col_major : {false, true}) {
      OperandSpec op;
      op.format = fp8emu::formats::e4m3fn{};
      op.scaling = parse_scaling(spec);
      RoleSpec role{op, op, {}};
      role.b.format = fp8emu::formats::e5m2{};
      // B as K x N: row-major data b, or column-major (the transpose stored).
      std::vector<float> bt(b.size());
      for (std::int64_t k = 0; k < K; ++k)
        for (std::int64_t j = 0; j < N; ++j) bt[std::size_t(j * K + k)] = b[std::size_t(k * N + j)];
      const MatView va{a.data(), M, K, fp8emu::Layout::row_major, 0};
      const MatView vb = b_col_major ? MatView{bt.data(), K, N, fp8emu::Layout::col_major, 0}
                                     : MatView{b.data(), K, N, fp8emu::Layout::row_major, 0};
      std::vector<float> c(std::size_t(M * N));
      OperandState sa, sb;
      GemmContext ctx;
      GemmWorkspace ws;
      recipe_gemm(role, va, vb, c.data(), N, false, sa, sb, ctx, ws);
      const auto at_a = [&](std::int64_t r, std::int64_t k) { return a[std::size_t(r * K + k)]; };
      const auto at_b = [&](std::int64_t j, std::int64_t k) { return b[std::size_t(k * N + j)]; };  // R = N rows of K
      for (std::int64_t i = 0; i < M; ++i)
        for (std::int64_t j = 0; j < N; ++j) {
          double s = 0, bound = 0;
          for (std::int64_t k = 0; k < K; ++k) {
            const bool none = op.scaling.kind == ScalingKind::none;
            const float ssa = none ? 1.0f : scale_at(op.scaling, role.a.format, a, M, K, i, k, at_a);
            const float ssb = none ? 1.0f : scale_at(op.scaling, role.b.format, b, N, K, j, k, at_b);
            const double qa = quantized(role.a.format, at_a(i, k), ssa), qb = quantized(role.b.format, at_b(j, k), ssb);
            s += qa * qb;
            bound += std::fabs(qa * qb);
          }
          INFO("scaling " << spec << (b_col_major ? ", B column-major" : ", B row-major") << ", element " << i << ","
                          << j);
          // float32 accumulation of K products, scale factors applied in float: a few ulps of sum |q_a q_b|.
          CHECK(std::fabs(double(c[std::size_t(i * N + j)]) - s) <= 1e-5 * bound);
          ++cases;
        }
      if (op.scaling.kind != ScalingKind::none) CHECK(sa.stats.uses == 1);
    }
  REQUIRE(cases == 8 * 2 * M * N);
}

TEST_CASE("delayed scaling follows Transformer Engine's amax history") {
  for (AmaxAlgo algo : {AmaxAlgo::max, AmaxAlgo::most_recent}) {
    OperandSpec op;
    op.format = fp8emu::formats::e4m3fn{};
    op.scaling = parse_scaling(algo == AmaxAlgo::max ? "delayed:history=3" : "delayed:history=3:algo=most_recent");
    RoleSpec role{op, OperandSpec{}, {}};  // B stays float32
    OperandState sa, sb;
    GemmWorkspace ws;
    const std::vector<float> amaxes = {2, 8, 1, 1, 1};
    // The scale each step uses: 1 at first, then 448 / (max of the last 3 | the last amax).
    const std::vector<float> used_max = {1, 224, 56, 56, 56}, used_recent = {1, 224, 56, 448, 448};
    float b = 1, c = 0;
    for (std::size_t t = 0; t < amaxes.size(); ++t) {
      const float a[2] = {amaxes[t], -amaxes[t] / 4};
      CHECK(sa.scale == (algo == AmaxAlgo::max ? used_max : used_recent)[t]);
      recipe_gemm(role, MatView{a, 1, 2, fp8emu::Layout::row_major, 0}, MatView{&b, 2, 1, fp8emu::Layout::row_major, 0},
                  &c, 1, false, sa, sb, GemmContext{}, ws);
      (void)c;
    }
    CHECK(sa.recorded == 5);
    CHECK(sa.scale == (algo == AmaxAlgo::max ? 448.0f : 448.0f));
  }
  // Evaluation (update = false) leaves the history alone.
  OperandSpec op;
  op.format = fp8emu::formats::e4m3fn{};
  op.scaling = parse_scaling("delayed");
  OperandState sa, sb;
  GemmWorkspace ws;
  const float a[1] = {3}, b[1] = {1};
  float c = 0;
  GemmContext eval;
  eval.update = false;
  recipe_gemm(RoleSpec{op, OperandSpec{}, {}}, MatView{a, 1, 1}, MatView{b, 1, 1}, &c, 1, false, sa, sb, eval, ws);
  CHECK(sa.recorded == 0);
  CHECK(sa.scale == 1.0f);
}

TEST_CASE("quantization statistics count flushes, saturation and SQNR") {
  OperandSpec op;
  op.format = fp8emu::formats::e4m3fn{};  // no scaling: plain saturating casts
  // 1000 saturates (> 464, where rounding would leave the range); 460 rounds to 448
  // without saturating; 1e-6 flushes to zero (below half of 2^-9); 0 is not counted.
  const float a[6] = {1000, 460, 1e-6f, 0, 1, -2};
  const float b[6] = {1, 1, 1, 1, 1, 1};
  float c = 0;
  OperandState sa, sb;
  GemmWorkspace ws;
  recipe_gemm(RoleSpec{op, OperandSpec{}, {}}, MatView{a, 1, 6}, MatView{b, 6, 1}, &c, 1, false, sa, sb, GemmContext{}, ws);
  const QuantStats& s = sa.stats;
  CHECK(s.count == 6);
  CHECK(s.nonzero == 5);
  CHECK(s.flushed == 1);
  CHECK(s.saturated == 1);
  CHECK(s.amax == 1000);
  CHECK(c == 448 + 448 + 0 + 0 + 1 - 2);
  const double signal = 1000.0 * 1000 + 460.0 * 460 + 1e-12 + 1 + 4;
  const double noise = 552.0 * 552 + 12.0 * 12 + double(1e-6f) * double(1e-6f);
  CHECK(s.sqnr_db() == Approx(10 * std::log10(signal / noise)).epsilon(1e-6));
  CHECK(sb.stats.count == 0);  // float32 operands are used as they are
}

TEST_CASE("storage rounding of master weights and moments") {
  const fp8emu::RandomKey k = fp8emu::random_key(5, 0);
  std::vector<float> v(4096);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = float(std::int32_t(fp8emu::random_bits(k, i))) * 0x1p-33f;
  const fp8emu::Format bf16 = fp8emu::formats::bfloat16{}, e4 = fp8emu::formats::e4m3fn{};
  int n = 0;
  // Nearest-even bf16: every value is the scalar encode's.
  std::vector<float> w = v;
  store(parse_storage("bf16"), w, 1, 2);
  for (std::size_t i = 0; i < v.size(); ++i, ++n)
    CHECK(w[i] == float(fp8emu::decode(bf16, fp8emu::encode(bf16, double(v[i])))));
  // Stochastic bf16: one of the two neighbours, and unbiased on average (the sum of 4096
  // roundings of spacing <= 2^-8 |v| stays within 6 sigma of the exact sum).
  std::vector<float> s = v;
  store(parse_storage("bf16:sr"), s, 1, 2);
  double err = 0, var = 0;
  for (std::size_t i = 0; i < v.size(); ++i, ++n) {
    const float down = float(fp8emu::decode(bf16, fp8emu::encode(bf16, double(v[i]), {fp8emu::Rounding::toward_zero})));
    const double ulp = std::ldexp(1.0, std::ilogb(v[i]) - 7);
    CHECK((s[i] == down || std::fabs(double(s[i]) - double(down)) == ulp));
    err += double(s[i]) - double(v[i]);
    var += ulp * ulp / 4;
  }
  CHECK(std::fabs(err) < 6 * std::sqrt(var));
  // And not nearest: about a third of random inputs round the other way (expected 25-50%).
  std::size_t differ = 0;
  for (std::size_t i = 0; i < v.size(); ++i) differ += s[i] != w[i];
  CHECK(differ > v.size() / 8);
  // Scaled e4m3fn keeps the relative precision that unscaled e4m3fn flushes away.
  std::vector<float> small(v.size()), scaled, plain;
  for (std::size_t i = 0; i < v.size(); ++i) small[i] = v[i] * 1e-4f;
  scaled = plain = small;
  store(parse_storage("e4m3fn:scaled"), scaled, 1, 3);
  store(parse_storage("e4m3fn"), plain, 1, 3);
  std::size_t plain_zero = 0, scaled_zero = 0;
  for (std::size_t i = 0; i < v.size(); ++i, ++n) {
    plain_zero += plain[i] == 0;
    scaled_zero += scaled[i] == 0 && small[i] != 0;
    CHECK(std::fabs(scaled[i] - small[i]) <= 0.0625 * std::fabs(small[i]) + 1e-12);
  }
  CHECK(plain_zero == v.size());  // |x| < 2^-33 * 2^31 * 1e-4 < 2^-10: below e4m3fn's half-min
  CHECK(scaled_zero < 20);
  (void)e4;
  // float32 storage leaves the values alone.
  std::vector<float> f = v;
  store(parse_storage("fp32"), f, 1, 4);
  CHECK(f == v);
  REQUIRE(n == 3 * 4096);
}

TEST_CASE("a run whose loss becomes non-finite or explodes says it diverged") {
  // The rule on recorded losses: non-finite batch or test loss, or an epoch's mean
  // training loss above 10 times the first epoch's.
  Dataset none;
  none.rows = none.cols = 28;
  none.classes = 10;
  RunConfig c;
  c.recipe = named_recipe("fp32");
  Run r(c, test_models::mlp(none, c.seed), none, none);
  CHECK(r.divergence().empty());
  r.step_loss = {2.3, 2.1};
  r.epoch_rows = {{1, 2.0, 1.9, 0.5, 0}, {2, 19.9, 1.8, 0.5, 0}};
  CHECK(r.divergence().empty());
  r.epoch_rows.push_back({3, 20.5, 1.8, 0.5, 0});
  CHECK(r.divergence() == "epoch 3 training loss 20.5 above 10 times epoch 1's 2");
  r.epoch_rows.pop_back();
  r.epoch_rows.back().test_loss = std::numeric_limits<double>::infinity();
  CHECK(r.divergence() == "non-finite test loss after epoch 2");
  r.step_loss.push_back(std::nan(""));
  CHECK(r.divergence() == "non-finite loss at step 3");

  // Real training: SGD with learning rate 1000 diverges, AdamW 1e-3 does not.
  Dataset d;
  d.count = 256;
  d.rows = d.cols = 28;
  d.classes = 10;
  d.x.resize(std::size_t(d.count * d.features()));
  d.y.resize(std::size_t(d.count));
  const fp8emu::RandomKey k = fp8emu::random_key(7, 0);
  for (std::size_t i = 0; i < d.x.size(); ++i) d.x[i] = float(fp8emu::random_bits(k, i) >> 8) * 0x1p-24f;
  for (std::size_t i = 0; i < d.y.size(); ++i) d.y[i] = std::uint8_t(fp8emu::random_bits(k, d.x.size() + i) % 10);
  c.epochs = 2;
  c.batch = 64;
  c.exec.threads = 1;
  Run good(c, test_models::mlp(d, c.seed), d, d);
  while (!good.done()) good.train_epoch();
  CHECK(good.divergence().empty());
  c.optimizer.kind = OptimizerKind::sgd;
  c.optimizer.lr = 1000.0f;
  Run bad(c, test_models::mlp(d, c.seed), d, d);
  while (!bad.done()) bad.train_epoch();
  CHECK_FALSE(bad.divergence().empty());
}

TEST_CASE("recipe_gemm_fast_path says which roles take the scalar reference GEMM") {
  const auto fast = [](const std::string& name, const std::string& accumulate) {
    Recipe r = named_recipe(name);
    if (!accumulate.empty()) set_recipe_key(r, "accumulate", accumulate);
    int n = 0;
    for (int i = 0; i < kRoles; ++i) n += recipe_gemm_fast_path(r.roles[i]);
    return n;
  };
  int recipes = 0;
  for (auto name : recipe_names()) {
    CHECK(fast(std::string(name), "") == 3);  // float32 accumulation: the fast path
    ++recipes;
  }
  REQUIRE(recipes == 12);
  // nvfp4's bf16 layers too.
  for (const LayerOverride& o : named_recipe("nvfp4").layers)
    for (const RoleSpec& rs : o.roles) CHECK(recipe_gemm_fast_path(rs));
  // The matrix-unit models have fast paths for operands of at most 16 bits (bfloat16 on
  // float64 lanes), not for float32 ones.
  CHECK(fast("fp8-hybrid-delayed", "nvidia-h100-fp8,promote=128") == 3);
  CHECK(fast("fp8-e4m3-blockwise", "nvidia-h100-fp8,promote=128") == 3);
  CHECK(fast("fp32", "nvidia-h100-fp8,promote=128") == 0);
  CHECK(fast("bf16", "nvidia-h100-fp8,promote=128") == 3);
  CHECK(fast("bf16", "amd-mi300-fp16") == 3);
  // The float accumulators have fast paths (pairwise summation, bfloat16), but not
  // stochastic rounding of a float32 accumulator with 32 random bits.
  CHECK(fast("fp8-hybrid-current", "fp32,order=pairwise") == 3);
  CHECK(fast("fp8-hybrid-current", "bf16") == 3);
  CHECK(fast("fp8-hybrid-current", "fp32,rounding=sr-a") == 0);
}

namespace {

using fp8emu::Format;

Format fmt(std::string_view name) { return fp8emu::parse_format(name); }

// Every field of an operand spec, as text.
std::string op_text(const OperandSpec& o) {
  return std::string(fp8emu::format_name(o.format)) + " " + scaling_spec(o.scaling) + " " +
         std::string(fp8emu::to_string(o.convert.rounding)) + " " + std::string(fp8emu::to_string(o.convert.saturation)) +
         " " + std::to_string(o.convert.stochastic_bits) + " " + std::to_string(o.hadamard);
}

// A logical M x K (or K x N) matrix of values in (-1, 1) times 2^(e in -4..3), row-major.
std::vector<float> random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  const fp8emu::RandomKey key = fp8emu::random_key(seed, 7);
  std::vector<float> x(std::size_t(rows * cols));
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = std::ldexp(float(std::int32_t(fp8emu::random_bits(key, i))) * 0x1p-31f,
                      int(fp8emu::random_bits(key, x.size() + i) % 8) - 4);
  return x;
}

// The float64 product of row-major A (M x K) and B (K x N).
std::vector<double> product(const std::vector<float>& a, const std::vector<float>& b, std::int64_t M, std::int64_t K,
                            std::int64_t N) {
  std::vector<double> c(std::size_t(M * N), 0.0);
  for (std::int64_t i = 0; i < M; ++i)
    for (std::int64_t k = 0; k < K; ++k)
      for (std::int64_t j = 0; j < N; ++j) c[std::size_t(i * N + j)] += double(a[std::size_t(i * K + k)]) * b[std::size_t(k * N + j)];
  return c;
}

// ||c - ref|| / ||ref|| over all elements.
double relative_error(const std::vector<float>& c, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < c.size(); ++i) {
    num += (c[i] - ref[i]) * (c[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("the new named recipes are what their sources say", "[recipe]") {
  const auto spec = [](const Recipe& r, Role role, bool a) {
    const OperandSpec& o = a ? r.role(role).a : r.role(role).b;
    return std::string(fp8emu::format_name(o.format)) + " " + scaling_spec(o.scaling) + " " +
           std::string(fp8emu::to_string(o.convert.rounding)) + (o.hadamard ? " H16" : "");
  };
  // Micikevicius et al. 2022: e5m2 for every tensor, scaled per tensor.
  const Recipe e5 = named_recipe("fp8-e5m2");
  for (Role role : {Role::fprop, Role::dgrad, Role::wgrad})
    for (bool a : {true, false}) CHECK(spec(e5, role, a) == "e5m2 tensor rne");
  // NVFP4 (arXiv 2509.25149, Transformer Engine NVFP4BlockScaling): 1x16 activations and
  // gradients, 16x16 weights, stochastic rounding of gradients, Hadamard on both wgrad inputs.
  const Recipe nv = named_recipe("nvfp4");
  CHECK(spec(nv, Role::fprop, true) == "e2m1fn nvfp4 rne");
  CHECK(spec(nv, Role::fprop, false) == "e2m1fn nvfp4:16x16 rne");
  CHECK(spec(nv, Role::dgrad, true) == "e2m1fn nvfp4 sr-a");
  CHECK(spec(nv, Role::dgrad, false) == "e2m1fn nvfp4:16x16 rne");
  CHECK(spec(nv, Role::wgrad, true) == "e2m1fn nvfp4 sr-a H16");
  CHECK(spec(nv, Role::wgrad, false) == "e2m1fn nvfp4 rne H16");
  CHECK(nv.role(Role::dgrad).a.convert.stochastic_bits == 32);
  REQUIRE(nv.layers.size() == 2);
  CHECK(nv.layers[0].pattern == "h-1.*");
  CHECK(nv.layers[1].pattern == "head");
  for (const LayerOverride& o : nv.layers) {
    CHECK(o.recipe == "bf16");
    for (Role role : {Role::fprop, Role::dgrad, Role::wgrad}) CHECK(o.roles[int(role)].a.format == fmt("bfloat16"));
  }
  CHECK(nv.master.exact());
  CHECK(nv.moment1.exact());
  // The MX paper (arXiv 2310.10537): MXFP6 e3m2 everywhere; MXFP4 weights with MXFP6
  // activations and gradients; OCP's scale rule.
  const Recipe m6 = named_recipe("mxfp6"), m4 = named_recipe("mxfp4");
  for (Role role : {Role::fprop, Role::dgrad, Role::wgrad})
    for (bool a : {true, false}) CHECK(spec(m6, role, a) == "e3m2fn mx:floor rne");
  CHECK(spec(m4, Role::fprop, true) == "e3m2fn mx:floor rne");
  CHECK(spec(m4, Role::fprop, false) == "e2m1fn mx:floor rne");
  CHECK(spec(m4, Role::dgrad, true) == "e3m2fn mx:floor rne");
  CHECK(spec(m4, Role::dgrad, false) == "e2m1fn mx:floor rne");
  CHECK(spec(m4, Role::wgrad, true) == "e3m2fn mx:floor rne");
  CHECK(spec(m4, Role::wgrad, false) == "e3m2fn mx:floor rne");
  // fp8 operands, a float16 accumulator rounding each sum to nearest even.
  const Recipe f16 = named_recipe("fp16-accumulate");
  CHECK(spec(f16, Role::fprop, true) == "e4m3fn tensor:margin=8 rne");
  CHECK(spec(f16, Role::fprop, false) == "e4m3fn tensor:margin=8 rne");
  CHECK(spec(f16, Role::wgrad, true) == "e5m2 tensor:margin=15 rne");
  CHECK(spec(f16, Role::wgrad, false) == "e4m3fn tensor:margin=8 rne");
  for (const RoleSpec& rs : f16.roles) {
    CHECK(rs.accumulation.format == fmt("float16"));
    CHECK(rs.accumulation.convert.rounding == fp8emu::Rounding::nearest_even);
    CHECK(rs.accumulation.unit.model == fp8emu::UnitModel::none);
  }
  // DeepSeek-V3 keeps the output head in higher precision (3.3.1).
  const Recipe bw = named_recipe("fp8-e4m3-blockwise");
  REQUIRE(bw.layers.size() == 1);
  CHECK(bw.layers[0].pattern == "head");
  CHECK(bw.layers[0].recipe == "bf16");
  CHECK(op_text(bw.layers[0].roles[int(Role::wgrad)].a) == op_text(named_recipe("bf16").roles[int(Role::wgrad)].a));
  // Only these two have layer overrides, and only nvfp4 Hadamard transforms.
  for (auto name : recipe_names()) {
    const Recipe r = named_recipe(name);
    if (name == "nvfp4") continue;
    CHECK(r.layers.size() == (name == "fp8-e4m3-blockwise" ? 1u : 0u));
    for (const RoleSpec& rs : r.roles) CHECK((rs.a.hadamard == 0 && rs.b.hadamard == 0));
  }
}

TEST_CASE("recipe_gemm under each new recipe and role is near the float64 product", "[recipe]") {
  // K = 256: whole blocks of 16 and 32, and 16 Hadamard runs.
  const std::int64_t M = 32, K = 256, N = 32;
  // Loose bounds on the relative Frobenius error, about 1.5 times what was measured on
  // these operands (0.07 for e5m2, 0.15-0.17 for NVFP4, 0.08-0.09 for MXFP6, 0.08-0.16 for
  // MXFP4, 0.04-0.06 for the hybrid with float16 sums).
  const std::vector<std::pair<std::string, double>> recipes = {
      {"fp8-e5m2", 0.11}, {"nvfp4", 0.26}, {"mxfp6", 0.13}, {"mxfp4", 0.24}, {"fp16-accumulate", 0.09}};
  int cases = 0;
  for (const auto& [name, bound] : recipes) {
    const Recipe r = named_recipe(name);
    for (Role role : {Role::fprop, Role::dgrad, Role::wgrad}) {
      const std::vector<float> a = random_matrix(M, K, 11 + cases), b = random_matrix(K, N, 101 + cases);
      const std::vector<double> ref = product(a, b, M, K, N);
      std::vector<float> c(std::size_t(M * N));
      OperandState sa, sb;
      GemmWorkspace ws;
      GemmContext ctx;
      ctx.seed = 5;
      recipe_gemm(r.role(role), MatView{a.data(), M, K}, MatView{b.data(), K, N}, c.data(), N, false, sa, sb, ctx, ws);
      const double err = relative_error(c, ref);
      INFO(name << " role " << int(role) << ": relative error " << err);
      CHECK(err < bound);
      CHECK(err > 1e-4);  // the operands were quantized
      CHECK(sa.stats.uses == 1);
      CHECK(sb.stats.uses == 1);
      ++cases;
    }
  }
  REQUIRE(cases == 15);
  // Why fp16-accumulate scales to amax 1.75: at the full range of e4m3fn (Transformer
  // Engine's scale) the float16 sums overflow.
  Recipe full = named_recipe("fp16-accumulate");
  set_recipe_key(full, "all.scaling", "tensor");
  const std::vector<float> a = random_matrix(M, K, 1), b = random_matrix(K, N, 2);
  std::vector<float> c(std::size_t(M * N));
  OperandState sa, sb;
  GemmWorkspace ws;
  recipe_gemm(full.role(Role::fprop), MatView{a.data(), M, K}, MatView{b.data(), K, N}, c.data(), N, false, sa, sb,
              GemmContext{}, ws);
  int overflowed = 0;
  for (float x : c) overflowed += !std::isfinite(x);
  CHECK(overflowed > M * N / 2);
}

TEST_CASE("the Hadamard transform is D H / 4, orthogonal, and keeps a float32 product", "[recipe]") {
  // The transform of the 16 unit vectors gives Q's rows; Q = D H / 4 from the definition.
  std::vector<float> q(256, 0.0f);
  for (int i = 0; i < 16; ++i) q[std::size_t(i * 17)] = 1.0f;
  hadamard_transform(q.data(), 16, 16);
  int entries = 0;
  for (int i = 0; i < 16; ++i)
    for (int c = 0; c < 16; ++c, ++entries) {
      const float h = std::popcount(unsigned(i & c)) % 2 ? -1.0f : 1.0f;
      CHECK(q[std::size_t(i * 16 + c)] == kHadamardSigns[std::size_t(i)] * h * 0.25f);
    }
  REQUIRE(entries == 256);
  // Q Q^T = I exactly (sums of sixteen +-1/16).
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      double s = 0;
      for (int c = 0; c < 16; ++c) s += double(q[std::size_t(i * 16 + c)]) * q[std::size_t(j * 16 + c)];
      CHECK(s == (i == j ? 1.0 : 0.0));
    }
  // The signs are Transformer Engine's: its bit mask (bit i set for d_i = -1) is 0xD7E8.
  unsigned mask = 0;
  for (int i = 0; i < 16; ++i) mask |= unsigned(kHadamardSigns[std::size_t(i)] == -1.0f) << i;
  CHECK(mask == 0xD7E8u);
  // Applied twice, the transform is (D H)^2 / 16; undoing it with Q^T gives the input back.
  const std::vector<float> x = random_matrix(3, 40, 9);  // 2 runs and a tail of 8
  std::vector<float> y = x;
  hadamard_transform(y.data(), 3, 40);
  for (std::int64_t r = 0; r < 3; ++r) {
    for (int run = 0; run < 2; ++run)
      for (int i = 0; i < 16; ++i) {
        double back = 0;  // (y Q^T)_i = sum_c y_c Q_ic
        for (int c = 0; c < 16; ++c) back += double(y[std::size_t(r * 40 + run * 16 + c)]) * q[std::size_t(i * 16 + c)];
        CHECK(std::fabs(back - x[std::size_t(r * 40 + run * 16 + i)]) <= 1e-6 * 8);
      }
    for (int t = 32; t < 40; ++t) CHECK(y[std::size_t(r * 40 + t)] == x[std::size_t(r * 40 + t)]);  // the tail
  }

  // float32 operands: the transform on both changes the product only by rounding, for A
  // row-major and B either way, K with a tail.
  const std::int64_t M = 6, K = 40, N = 5;
  const std::vector<float> a = random_matrix(M, K, 21), b = random_matrix(K, N, 22);
  std::vector<float> bt(b.size());
  for (std::int64_t k = 0; k < K; ++k)
    for (std::int64_t j = 0; j < N; ++j) bt[std::size_t(j * K + k)] = b[std::size_t(k * N + j)];
  const std::vector<double> ref = product(a, b, M, K, N);
  int cases = 0;
  for (bool b_col_major : {false, true}) {
    RoleSpec rs;  // float32, no scaling
    rs.a.hadamard = rs.b.hadamard = kHadamardSize;
    const MatView vb = b_col_major ? MatView{bt.data(), K, N, fp8emu::Layout::col_major, 0} : MatView{b.data(), K, N};
    std::vector<float> c(std::size_t(M * N));
    OperandState sa, sb;
    GemmWorkspace ws;
    recipe_gemm(rs, MatView{a.data(), M, K}, vb, c.data(), N, false, sa, sb, GemmContext{}, ws);
    // The operands that reached the GEMM were transformed: they differ from the inputs.
    CHECK(ws.rotated[0].size() == std::size_t(M * K));
    CHECK(ws.rotated[0][0] != a[0]);
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t j = 0; j < N; ++j, ++cases) {
        double bound = 0;
        for (std::int64_t k = 0; k < K; ++k) bound += std::fabs(double(a[std::size_t(i * K + k)]) * b[std::size_t(k * N + j)]);
        CHECK(std::fabs(c[std::size_t(i * N + j)] - ref[std::size_t(i * N + j)]) <= 1e-5 * bound);
      }
    // On one operand only, the product is a different one.
    rs.b.hadamard = 0;
    recipe_gemm(rs, MatView{a.data(), M, K}, vb, c.data(), N, false, sa, sb, GemmContext{}, ws);
    CHECK(relative_error(c, ref) > 0.1);
  }
  REQUIRE(cases == 2 * M * N);
  Recipe one = named_recipe("fp32");
  set_recipe_key(one, "wgrad.a.hadamard", "16");
  CHECK(error_of([&] { check_recipe(one); }).find("wgrad: the Hadamard transform must apply to both operands") !=
        std::string::npos);
  set_recipe_key(one, "wgrad.b.hadamard", "16");
  check_recipe(one);
  CHECK(error_of([&] { set_recipe_key(one, "grad.hadamard", "8"); }).find("must be 0 (none) or 16") !=
        std::string::npos);
}

namespace {

// NVFP4 of one element, computed here in float32 as Transformer Engine's reference
// quantizer does: tensor encode E = 448 * 6 / amax, block code = e4m3fn(block amax * E / 6),
// element code = e2m1fn(x / (decoded block scale / E)); value = code * block scale / E.
double nvfp4_value(float x, double tensor_amax, double block_amax) {
  const Format e4 = fmt("e4m3fn"), e2 = fmt("e2m1fn");
  const float enc = float(448.0 * 6.0) / float(tensor_amax);
  const float sb = float(block_amax) * (enc * (1.0f / 6.0f));
  const double d = fp8emu::decode(e4, fp8emu::encode(e4, sb));
  if (d == 0) return 0;
  const float quant = 1.0f / (float(d) * (1.0f / enc));
  const double code = fp8emu::decode(e2, fp8emu::encode_scaled(e2, double(x), quant));
  return code * d * double(1.0f / enc);
}

}  // namespace

TEST_CASE("nvfp4 scaling: specs, checks, blocks of A and B, and non-finite inputs", "[recipe]") {
  for (const char* spec : {"nvfp4", "nvfp4:16x16", "nvfp4:1x32", "nvfp4:4x16"})
    CHECK(scaling_spec(parse_scaling(spec)) == spec);
  CHECK(scaling_spec(parse_scaling("nvfp4:1x16")) == "nvfp4");
  const Scaling w = parse_scaling("nvfp4:16x16");
  CHECK(w.kind == ScalingKind::nvfp4);
  CHECK(w.block_rows == 16);
  CHECK(w.block_k == 16);
  CHECK(error_of([] { parse_scaling("nvfp4:0x16"); }).find("must be an integer in 1..") != std::string::npos);
  CHECK(error_of([] { parse_scaling("nvfp4:16x"); }).find("block K") != std::string::npos);
  CHECK(error_of([] { parse_scaling("nvfp4:margin=1"); }).find("does not apply") != std::string::npos);
  CHECK(error_of([] { parse_scaling("nvfp4:16x16:pow2"); }).find("does not apply") != std::string::npos);
  Recipe r = named_recipe("fp32");
  set_recipe_key(r, "all.scaling", "nvfp4");
  set_recipe_key(r, "all.format", "bf16");
  CHECK(error_of([&] { check_recipe(r); }).find("NVFP4 scaling needs an element format of at most 8 bits") !=
        std::string::npos);
  set_recipe_key(r, "all.format", "e2m1fn");
  check_recipe(r);
  set_recipe_key(r, "fprop.b.scaling", "mx");
  CHECK(error_of([&] { check_recipe(r); }).find("fprop splits K into blocks of 16 (operand a) and 32") !=
        std::string::npos);

  // The GEMM's operands are NVFP4 values with blocks along K: 1x16 for A, 16x16 for B
  // (R = N rows of K), whatever B's storage order.
  const std::int64_t M = 4, K = 48, N = 32;
  const std::vector<float> a = random_matrix(M, K, 31), b = random_matrix(K, N, 32);
  std::vector<float> bt(b.size());
  for (std::int64_t k = 0; k < K; ++k)
    for (std::int64_t j = 0; j < N; ++j) bt[std::size_t(j * K + k)] = b[std::size_t(k * N + j)];
  double amax_a = 0, amax_b = 0;
  for (float x : a) amax_a = std::max(amax_a, double(std::fabs(x)));
  for (float x : b) amax_b = std::max(amax_b, double(std::fabs(x)));
  const auto block_amax_a = [&](std::int64_t i, std::int64_t k) {
    double m = 0;
    for (std::int64_t t = k / 16 * 16; t < k / 16 * 16 + 16; ++t) m = std::max(m, double(std::fabs(a[std::size_t(i * K + t)])));
    return m;
  };
  std::int64_t br = 16;  // B's block rows (of its N rows of K)
  const auto block_amax_b = [&](std::int64_t j, std::int64_t k) {
    double m = 0;
    for (std::int64_t jj = j / br * br; jj < j / br * br + br; ++jj)
      for (std::int64_t t = k / 16 * 16; t < k / 16 * 16 + 16; ++t)
        m = std::max(m, double(std::fabs(b[std::size_t(t * N + jj)])));
    return m;
  };
  OperandSpec oa{fmt("e2m1fn"), parse_scaling("nvfp4"), {}}, ob{fmt("e2m1fn"), parse_scaling("nvfp4:16x16"), {}};
  RoleSpec rs{oa, ob, {}};
  int cases = 0;
  for (const std::int64_t rows : {16, 1})
  for (bool b_col_major : {false, true}) {
    br = rows;
    rs.b.scaling = parse_scaling(rows == 16 ? "nvfp4:16x16" : "nvfp4");
    const MatView vb = b_col_major ? MatView{bt.data(), K, N, fp8emu::Layout::col_major, 0} : MatView{b.data(), K, N};
    std::vector<float> c(std::size_t(M * N));
    OperandState sa, sb;
    GemmWorkspace ws;
    recipe_gemm(rs, MatView{a.data(), M, K}, vb, c.data(), N, false, sa, sb, GemmContext{}, ws);
    CHECK(sa.stats.amax == amax_a);
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t j = 0; j < N; ++j, ++cases) {
        double s = 0, bound = 0;
        for (std::int64_t k = 0; k < K; ++k) {
          const double qa = nvfp4_value(a[std::size_t(i * K + k)], amax_a, block_amax_a(i, k));
          const double qb = nvfp4_value(b[std::size_t(k * N + j)], amax_b, block_amax_b(j, k));
          s += qa * qb;
          bound += std::fabs(qa * qb);
        }
        INFO("B " << (b_col_major ? "column" : "row") << "-major, blocks " << br << "x16, element " << i << "," << j);
        CHECK(std::fabs(double(c[std::size_t(i * N + j)]) - s) <= 1e-5 * bound + 1e-30);
      }
  }
  REQUIRE(cases == 4 * M * N);
  rs.b.scaling = parse_scaling("nvfp4:16x16");

  // An operand with a NaN (or infinity) has no NVFP4 tensor scale: C is all NaN, the
  // operand's amax is NaN, and nothing throws.
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    std::vector<float> bad_a = a, c(std::size_t(M * N), 1.0f);
    bad_a[5] = bad;
    OperandState sa, sb;
    GemmWorkspace ws;
    recipe_gemm(rs, MatView{bad_a.data(), M, K}, MatView{b.data(), K, N}, c.data(), N, false, sa, sb, GemmContext{}, ws);
    int nan = 0;
    for (float x : c) nan += std::isnan(x);
    CHECK(nan == M * N);
    CHECK(std::isnan(sa.stats.amax));
  }
}

TEST_CASE("layer patterns match names with '*' anywhere", "[recipe]") {
  struct Case {
    const char* pattern;
    const char* name;
    bool match;
  };
  const std::vector<Case> cases = {
      {"head", "head", true},           {"head", "heads", false},          {"head", "hea", false},
      {"h0.attn.qkv", "h0.attn.qkv", true}, {"h0.attn.qkv", "h0.attn.qk", false},
      {"*", "h3.mlp.up", true},         {"*", "", true},                   {"x", "", false},
      {"h-1.*", "h-1.mlp.up", true},    {"h-1.*", "h-10.mlp.up", false},   {"h-1.*", "h-1", false},
      {"*.mlp.*", "h2.mlp.down", true}, {"*.mlp.*", "h2.attn.proj", false}, {"*attn*", "h0.attn.mix", true},
      {"*attn*", "head", false},        {"*up", "h1.mlp.up", true},        {"*up", "h1.mlp.up2", false},
      {"h*.*.q*", "h3.attn.qkv", true}, {"a*b*c", "abcbc", true},          {"a*b*c", "abcb", false},
      {"**", "head", true},             {"h?", "h0", false},
  };
  int n = 0;
  for (const Case& c : cases) {
    INFO("pattern " << c.pattern << ", name " << c.name);
    CHECK(layer_matches(c.pattern, c.name) == c.match);
    ++n;
  }
  REQUIRE(n == 22);
  CHECK(valid_layer_pattern("h-1.*"));
  CHECK(valid_layer_pattern("*"));
  for (const char* bad : {"", "h0 attn", "h0/attn", "h?", "h0,head"}) CHECK_FALSE(valid_layer_pattern(bad));
  CHECK_FALSE(valid_layer_pattern(std::string(65, 'h')));
}

TEST_CASE("layer.PATTERN = RECIPE keys: parsing, order, round trip, errors and lookup by alias", "[recipe]") {
  Recipe r = named_recipe("fp8-hybrid-current");
  set_recipe_key(r, "layer.h-1.*", "bf16");
  set_recipe_key(r, " layer.head ", " fp8-e4m3-blockwise ");
  set_recipe_key(r, "layer.*.mlp.*", "mxfp8");
  REQUIRE(r.layers.size() == 3);
  CHECK(r.layers[0].pattern == "h-1.*");
  CHECK(r.layers[1].pattern == "head");
  CHECK(r.layers[1].recipe == "fp8-e4m3-blockwise");
  // The override has the named recipe's roles; the recipe's own roles are unchanged.
  const Recipe bw = named_recipe("fp8-e4m3-blockwise");
  for (int i = 0; i < kRoles; ++i) {
    CHECK(op_text(r.layers[1].roles[i].a) == op_text(bw.roles[i].a));
    CHECK(op_text(r.layers[1].roles[i].b) == op_text(bw.roles[i].b));
  }
  CHECK(scaling_spec(r.role(Role::fprop).a.scaling) == "tensor");
  check_recipe(r);
  // A pattern set again keeps its place.
  set_recipe_key(r, "layer.head", "bf16");
  REQUIRE(r.layers.size() == 3);
  CHECK(r.layers[1].pattern == "head");
  CHECK(r.layers[1].recipe == "bf16");

  // Lookup: the first override that matches one of the names, else the recipe's role.
  const auto format_for = [&](std::vector<std::string> names) {
    return std::string(fp8emu::format_name(r.role(Role::fprop, names).a.format));
  };
  CHECK(format_for({"h3.mlp.up", "h-1.mlp.up"}) == "bfloat16");    // by its alias: h-1.* before *.mlp.*
  CHECK(format_for({"h0.mlp.up", "h-4.mlp.up"}) == "e4m3fn");      // *.mlp.*: mxfp8
  CHECK(scaling_spec(r.role(Role::fprop, std::vector<std::string>{"h0.mlp.up"}).a.scaling) == "mx");
  CHECK(scaling_spec(r.role(Role::fprop, std::vector<std::string>{"h0.attn.qkv", "h-4.attn.qkv"}).a.scaling) ==
        "tensor");  // no override: the recipe's own
  CHECK(format_for({"head"}) == "bfloat16");
  CHECK(format_for({}) == "e4m3fn");
  CHECK(&r.role(Role::dgrad, std::vector<std::string>{"h1.attn.proj", "h-3.attn.proj"}) == &r.role(Role::dgrad));

  // Round trip: the text names each override, and reads back the same.
  const std::string text = recipe_text(r);
  CHECK(text.find("\nlayer.h-1.* = bf16\nlayer.head = bf16\nlayer.*.mlp.* = mxfp8\n") != std::string::npos);
  const std::string path = temp_file("layers.recipe", text);
  const Recipe back = load_recipe_file(path);
  CHECK(recipe_text(back) == text);
  REQUIRE(back.layers.size() == 3);
  CHECK(op_text(back.layers[2].roles[1].b) == op_text(named_recipe("mxfp8").roles[1].b));
  std::remove(path.c_str());

  // Errors name the key.
  Recipe e = named_recipe("fp32");
  CHECK(error_of([&] { set_recipe_key(e, "layer.", "bf16"); }).find("recipe key 'layer.': the layer pattern") !=
        std::string::npos);
  CHECK(error_of([&] { set_recipe_key(e, "layer.h0 attn", "bf16"); }).find("recipe key 'layer.h0 attn'") !=
        std::string::npos);
  CHECK(error_of([&] { set_recipe_key(e, "layer.h0/x", "bf16"); }).find("A-Z a-z 0-9 . _ - *") != std::string::npos);
  const std::string unknown = error_of([&] { set_recipe_key(e, "layer.head", "bf17"); });
  CHECK(unknown.find("recipe key 'layer.head': unknown recipe 'bf17'") != std::string::npos);
  CHECK(error_of([&] { set_recipe_key(e, "layer.head", ""); }).find("has no value") != std::string::npos);
  CHECK(e.layers.empty());
  // In a file: the line, and a pattern given twice.
  const std::string bad = temp_file("badlayer.recipe", "base = fp32\nlayer.head = bf16\nlayer.head = mxfp8\n");
  CHECK(error_of([&] { load_recipe_file(bad); }).find("badlayer.recipe:3: key 'layer.head' is already set on line 2") !=
        std::string::npos);
  std::remove(bad.c_str());
  // check_recipe checks each override as it checks the recipe.
  Recipe c = named_recipe("fp32");
  set_recipe_key(c, "layer.head", "mxfp8");
  c.layers[0].roles[int(Role::wgrad)].b.scaling = parse_scaling("block:1x128");
  CHECK(error_of([&] { check_recipe(c); }).find("layer head (mxfp8): wgrad splits K into blocks of 32") !=
        std::string::npos);
  c.layers[0].roles[int(Role::wgrad)].b.scaling = parse_scaling("mx");
  check_recipe(c);
  c.layers[0].pattern = "a b";
  CHECK(error_of([&] { check_recipe(c); }).find("layer pattern 'a b'") != std::string::npos);
}

TEST_CASE("a layer override's delayed scaling is saved and restored with the run", "[recipe]") {
  // fp32 everywhere but the first Linear ("fc1"), which takes fp8-hybrid-delayed: the
  // checkpoint holds amax histories for that layer's six operands only.
  Dataset d;
  d.count = 64;
  d.rows = d.cols = 28;
  d.classes = 10;
  const fp8emu::RandomKey k = fp8emu::random_key(3, 0);
  for (std::int64_t i = 0; i < d.count * d.features(); ++i) d.x.push_back(float(fp8emu::random_bits(k, std::uint64_t(i)) >> 8) * 0x1p-24f);
  for (std::int64_t i = 0; i < d.count; ++i) d.y.push_back(std::uint8_t(i % 10));
  RunConfig c;
  c.recipe = named_recipe("fp32");
  set_recipe_key(c.recipe, "layer.fc1", "fp8-hybrid-delayed");
  c.epochs = 2;
  c.batch = 32;
  c.exec.threads = 1;
  const auto make = [&] {
    fp8sim::Model m = test_models::mlp(d, c.seed);
    m.gemm_cores().front()->names = {"fc1"};
    return Run(c, std::move(m), d, d);
  };
  Run r = make();
  const CheckpointLayout l = r.checkpoint_layout();
  REQUIRE(l.history.size() == 3 * 6);
  for (std::size_t i = 0; i < l.history.size(); ++i) CHECK(l.history[i] == (i < 6 ? 1024 : 0));
  r.train_epoch();
  const std::string p = "fp8sim_test_override.ckpt";
  r.save(p);
  std::ifstream in(p, std::ios::binary);
  const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const CheckpointState st = decode_checkpoint(bytes, l, p);
  REQUIRE(st.slots.size() == 18);
  CHECK(st.slots[0].recorded == 2);  // fc1's fprop input: one amax per step
  CHECK(st.slots[0].history.size() == 1024);
  CHECK(st.slots[6].history.empty());
  Run back = make();
  back.load(p);
  CHECK(back.epochs_done() == 1);
  std::remove(p.c_str());
}
