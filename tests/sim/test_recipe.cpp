// Recipes (parsing, files, checks), scale rules, and the quantized GEMM of the simulator:
// its result against a float64 product of operands quantized here with fp8emu's scalar
// encode, for every scaling kind and both storage orders of B; delayed scaling's history;
// the statistics on hand-picked values.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <vector>

#include "fp8emu/convert.hpp"
#include "fp8emu/random.hpp"
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
  REQUIRE(n == 7);
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
  REQUIRE(recipes == 7);
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
