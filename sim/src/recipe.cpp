// Precision recipes (see include/fp8sim/recipe.hpp and docs/simulator.md).
#include "fp8sim/recipe.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fp8emu/options.hpp"

namespace fp8sim {
namespace {

using fp8emu::Format;
using fp8emu::Rounding;
using fp8emu::Saturation;

[[noreturn]] void bad(const std::string& msg) { throw RecipeError(msg); }

long parse_long(std::string_view what, std::string_view v, long lo, long hi) {
  long x = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), x);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size() || x < lo || x > hi)
    bad(std::string(what) + ": '" + std::string(v) + "' must be an integer in " + std::to_string(lo) +
        ".." + std::to_string(hi));
  return x;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (true) {
    const std::size_t next = s.find(sep, pos);
    out.push_back(s.substr(pos, next == s.npos ? s.npos : next - pos));
    if (next == s.npos) return out;
    pos = next + 1;
  }
}

// Format names of the recipe language: the catalog's, plus the usual short spellings.
Format parse_format_name(std::string_view v) {
  if (v == "fp32" || v == "f32") v = "float32";
  else if (v == "bf16") v = "bfloat16";
  else if (v == "fp16" || v == "f16") v = "float16";
  try {
    return fp8emu::parse_format(v);
  } catch (const std::exception& e) {
    bad(std::string("format '") + std::string(v) + "': " + e.what());
  }
}

OperandSpec fp8(Format f, Scaling s) { return {f, s, {Rounding::nearest_even, Saturation::finite}}; }

// Stochastic rounding as the recipe value `sr` gives it (sr-a, 32 random bits).
OperandSpec stochastic(OperandSpec o) {
  o.convert.rounding = Rounding::stochastic_a;
  o.convert.stochastic_bits = fp8emu::default_stochastic_bits_for(o.convert.rounding);
  return o;
}

Scaling delayed() {
  Scaling s;
  s.kind = ScalingKind::delayed;
  return s;
}
Scaling current(std::int64_t rows, std::int64_t k) {
  Scaling s;
  s.kind = ScalingKind::current;
  s.block_rows = rows;
  s.block_k = k;
  return s;
}
Scaling mx(bool floor = false) {
  Scaling s;
  s.kind = ScalingKind::mx;
  s.block_rows = 1;
  s.block_k = 32;
  s.mx_floor = floor;
  return s;
}
Scaling nvfp4(std::int64_t rows, std::int64_t k) {
  Scaling s;
  s.kind = ScalingKind::nvfp4;
  s.block_rows = rows;
  s.block_k = k;
  return s;
}

// The six operands: (role, a?) pairs, and the shorthands that name several.
struct Target {
  std::string_view name;
  std::array<std::pair<Role, bool>, 6> ops;
  int count;
};
const std::array<Target, 10>& targets() {
  using R = Role;
  static const std::array<Target, 10> t = {{
      {"fprop.a", {{{R::fprop, true}}}, 1},
      {"fprop.b", {{{R::fprop, false}}}, 1},
      {"dgrad.a", {{{R::dgrad, true}}}, 1},
      {"dgrad.b", {{{R::dgrad, false}}}, 1},
      {"wgrad.a", {{{R::wgrad, true}}}, 1},
      {"wgrad.b", {{{R::wgrad, false}}}, 1},
      {"input", {{{R::fprop, true}, {R::wgrad, false}}}, 2},
      {"weight", {{{R::fprop, false}, {R::dgrad, false}}}, 2},
      {"grad", {{{R::dgrad, true}, {R::wgrad, true}}}, 2},
      {"all",
       {{{R::fprop, true}, {R::fprop, false}, {R::dgrad, true}, {R::dgrad, false},
         {R::wgrad, true}, {R::wgrad, false}}},
       6},
  }};
  return t;
}

void set_operand(OperandSpec& o, std::string_view field, std::string_view v, std::string_view key) {
  if (field == "format") {
    o.format = parse_format_name(v);
    if (!fp8emu::fits_float(o.format))
      bad(std::string(key) + ": the values of " + std::string(v) + " must fit in float32");
  } else if (field == "scaling") {
    o.scaling = parse_scaling(v);
  } else if (field == "rounding") {
    auto r = v == "sr" ? std::optional<Rounding>(Rounding::stochastic_a) : fp8emu::try_parse<Rounding>(v);
    if (!r)
      bad(std::string(key) + ": unknown rounding '" + std::string(v) + "' (one of sr, " +
          fp8emu::option_names<Rounding>() + ")");
    o.convert.rounding = *r;
    if (o.convert.stochastic_bits == 0) o.convert.stochastic_bits = fp8emu::default_stochastic_bits_for(*r);
  } else if (field == "saturation") {
    auto s = fp8emu::try_parse<fp8emu::Saturation>(v);
    if (!s)
      bad(std::string(key) + ": unknown saturation '" + std::string(v) + "' (one of " +
          fp8emu::option_names<fp8emu::Saturation>() + ")");
    o.convert.saturation = *s;
  } else if (field == "sr-bits") {
    o.convert.stochastic_bits = int(parse_long(key, v, 1, 32));
  } else if (field == "hadamard") {
    if (v != "0" && v != std::to_string(kHadamardSize))
      bad(std::string(key) + ": '" + std::string(v) + "' must be 0 (none) or " + std::to_string(kHadamardSize));
    o.hadamard = v == "0" ? 0 : kHadamardSize;
  } else {
    bad("unknown recipe key '" + std::string(key) +
        "' (fields: format, scaling, rounding, saturation, sr-bits, hadamard)");
  }
}

Recipe base(std::string name, std::string description) {
  Recipe r;
  r.name = std::move(name);
  r.description = std::move(description);
  return r;
}

void set_operands(Recipe& r, std::string_view target, const OperandSpec& o) {
  for (const Target& t : targets())
    if (t.name == target)
      for (int i = 0; i < t.count; ++i) {
        RoleSpec& rs = r.roles[int(t.ops[i].first)];
        (t.ops[i].second ? rs.a : rs.b) = o;
      }
}

const std::vector<Recipe>& named() {
  static const std::vector<Recipe> v = [] {
    using namespace fp8emu::formats;
    std::vector<Recipe> out;
    out.push_back(base("fp32", "float32 everywhere (the baseline)"));
    {
      Recipe r = base("bf16", "bfloat16 GEMM operands (nearest-even), float32 accumulation and master weights");
      set_operands(r, "all", {fp8emu::Format(bfloat16{}), {}, {Rounding::nearest_even, Saturation::finite}});
      out.push_back(r);
    }
    {
      Recipe r = base("fp8-hybrid-delayed",
                      "e4m3fn forward, e5m2 gradients, per-tensor delayed scaling (Transformer Engine "
                      "defaults: history 1024, max, margin 0)");
      set_operands(r, "all", fp8(e4m3fn{}, delayed()));
      set_operands(r, "grad", fp8(e5m2{}, delayed()));
      out.push_back(r);
    }
    {
      Recipe r = base("fp8-hybrid-current", "e4m3fn forward, e5m2 gradients, per-tensor current scaling");
      set_operands(r, "all", fp8(e4m3fn{}, current(0, 0)));
      set_operands(r, "grad", fp8(e5m2{}, current(0, 0)));
      out.push_back(r);
    }
    {
      // DeepSeek-V3 promotes the tensor cores' partial sums to float32 every 128 products;
      // float32 accumulation stands for that here. The tensor-core truncation inside each
      // 128 is `--set accumulate=nvidia-h100-fp8,promote=128` (docs/simulator.md).
      Recipe r = base("fp8-e4m3-blockwise",
                      "DeepSeek-V3: e4m3fn everywhere, 1x128 activation and gradient blocks, 128x128 "
                      "weight blocks, float32 accumulation, bf16 AdamW moments, the head in bf16");
      set_operands(r, "all", fp8(e4m3fn{}, current(1, 128)));
      set_operands(r, "weight", fp8(e4m3fn{}, current(128, 128)));
      r.moment1 = r.moment2 = parse_storage("bf16");
      out.push_back(r);
    }
    {
      Recipe r = base("mxfp8", "OCP MX: e4m3fn elements, blocks of 32 along K with e8m0 scales rounded up (NVIDIA)");
      set_operands(r, "all", fp8(e4m3fn{}, mx()));
      out.push_back(r);
    }
    {
      Recipe r = base("fp8-unscaled", "e4m3fn forward, e5m2 gradients, plain saturating casts (no scaling)");
      set_operands(r, "all", fp8(e4m3fn{}, {}));
      set_operands(r, "grad", fp8(e5m2{}, {}));
      out.push_back(r);
    }
    {
      // Current rather than delayed scaling: each scale is a function of its tensor alone,
      // so the comparison with fp8-hybrid-current differs in the forward format only.
      Recipe r = base("fp8-e5m2",
                      "e5m2 for every operand, per-tensor current scaling: the FP8 paper's contrast to the "
                      "hybrid (Micikevicius et al. 2022)");
      set_operands(r, "all", fp8(e5m2{}, current(0, 0)));
      out.push_back(r);
    }
    {
      Recipe r = base("nvfp4",
                      "NVIDIA's NVFP4 pre-training: e2m1fn, 1x16 blocks with e4m3fn scales and a float32 tensor "
                      "scale, 16x16 weight blocks, stochastic rounding of gradients, a 16-point random Hadamard "
                      "transform of both wgrad inputs, the last block and the head in bf16 (arXiv 2509.25149)");
      set_operands(r, "all", fp8(e2m1fn{}, nvfp4(1, 16)));
      set_operands(r, "weight", fp8(e2m1fn{}, nvfp4(16, 16)));
      set_operands(r, "grad", stochastic(fp8(e2m1fn{}, nvfp4(1, 16))));
      r.roles[int(Role::wgrad)].a.hadamard = r.roles[int(Role::wgrad)].b.hadamard = kHadamardSize;
      out.push_back(r);
    }
    {
      Recipe r = base("mxfp6",
                      "OCP MX: e3m2fn for weights, activations and gradients, blocks of 32 along K with e8m0 "
                      "scales by OCP's rule (the MX paper's MXFP6 training, arXiv 2310.10537)");
      set_operands(r, "all", fp8(e3m2fn{}, mx(true)));
      out.push_back(r);
    }
    {
      Recipe r = base("mxfp4",
                      "OCP MX: e2m1fn weights, e3m2fn activations and gradients, blocks of 32 along K with e8m0 "
                      "scales by OCP's rule (the MX paper's MXFP4 training, arXiv 2310.10537)");
      set_operands(r, "all", fp8(e3m2fn{}, mx(true)));
      set_operands(r, "weight", fp8(e2m1fn{}, mx(true)));
      out.push_back(r);
    }
    {
      // The scale maps amax to 1.75 (margin 8 for e4m3fn, 15 for e5m2), not to the format's
      // max: a product of two full-range e4m3fn values (448^2) is above float16's max 65504,
      // while sums of up to 20000 products of magnitude at most 1.75^2 stay below it.
      Recipe r = base("fp16-accumulate",
                      "e4m3fn forward, e5m2 gradients, per-tensor current scaling to amax 1.75, products summed "
                      "in float16 (nearest-even, in order): 16-bit accumulation without chunks (arXiv 1812.08011)");
      Scaling e4 = current(0, 0), e5 = current(0, 0);
      e4.margin = 8;
      e5.margin = 15;
      set_operands(r, "all", fp8(e4m3fn{}, e4));
      set_operands(r, "grad", fp8(e5m2{}, e5));
      for (RoleSpec& rs : r.roles) rs.accumulation = fp8emu::parse_accumulation("fp16");
      out.push_back(r);
    }
    // Layers in bf16. DeepSeek-V3 keeps the output head in higher precision (3.3.1);
    // NVFP4 keeps about 15% of the linear layers, most of them at the end of the network,
    // and the head: here the last block and the head.
    const Recipe bf16 = *std::find_if(out.begin(), out.end(), [](const Recipe& r) { return r.name == "bf16"; });
    const auto keep_bf16 = [&](std::string_view name, std::initializer_list<const char*> patterns) {
      for (Recipe& r : out)
        if (r.name == name)
          for (const char* p : patterns) {
            LayerOverride o{p, bf16.name, {}};
            std::copy(std::begin(bf16.roles), std::end(bf16.roles), o.roles);
            r.layers.push_back(o);
          }
    };
    keep_bf16("fp8-e4m3-blockwise", {"head"});
    keep_bf16("nvfp4", {"h-1.*", "head"});
    return out;
  }();
  return v;
}

std::string operand_text(const std::string& prefix, const OperandSpec& o) {
  std::string s = prefix + ".format = " + std::string(fp8emu::format_name(o.format)) + "\n";
  s += prefix + ".scaling = " + scaling_spec(o.scaling) + "\n";
  s += prefix + ".rounding = " + std::string(fp8emu::to_string(o.convert.rounding)) + "\n";
  s += prefix + ".saturation = " + std::string(fp8emu::to_string(o.convert.saturation)) + "\n";
  if (fp8emu::is_stochastic(o.convert.rounding))
    s += prefix + ".sr-bits = " + std::to_string(o.convert.stochastic_bits) + "\n";
  if (o.hadamard) s += prefix + ".hadamard = " + std::to_string(o.hadamard) + "\n";
  return s;
}

}  // namespace

std::span<const std::string_view> recipe_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> n;
    for (const Recipe& r : named()) n.push_back(r.name);
    return n;
  }();
  return names;
}

Recipe named_recipe(std::string_view name) {
  for (const Recipe& r : named())
    if (r.name == name) return r;
  std::string list;
  for (auto n : recipe_names()) list += (list.empty() ? "" : ", ") + std::string(n);
  bad("unknown recipe '" + std::string(name) + "' (named recipes: " + list +
      "; or a file ending in .recipe)");
}

Scaling parse_scaling(std::string_view spec) {
  const auto parts = split(spec, ':');
  const std::string_view head = parts[0];
  Scaling s;
  const auto what = [&](std::string_view p) { return "scaling '" + std::string(spec) + "': " + std::string(p); };
  std::size_t i = 1;
  if (head == "none") {
  } else if (head == "tensor" || head == "row") {
    s = current(0, 0);
    if (head == "row") s.block_rows = 1;
  } else if (head == "block") {
    if (parts.size() < 2) bad(what("block needs a size, as block:1x128"));
    const auto dims = split(parts[1], 'x');
    if (dims.size() != 2) bad(what("block size must be RxK, as 1x128"));
    s = current(parse_long(what("block rows"), dims[0], 0, 1 << 20), parse_long(what("block K"), dims[1], 0, 1 << 20));
    i = 2;
  } else if (head == "delayed") {
    s = delayed();
  } else if (head == "mx") {
    s = mx();
  } else if (head == "nvfp4") {
    s = nvfp4(1, 16);
    if (parts.size() >= 2 && parts[1].find('x') != parts[1].npos) {
      const auto dims = split(parts[1], 'x');
      if (dims.size() != 2) bad(what("block size must be RxK, as 16x16"));
      s = nvfp4(parse_long(what("block rows"), dims[0], 1, 1 << 20), parse_long(what("block K"), dims[1], 1, 1 << 20));
      i = 2;
    }
  } else {
    bad(what("unknown kind (none, tensor, row, block:RxK, delayed, mx, nvfp4[:RxK])"));
  }
  for (; i < parts.size(); ++i) {
    const std::string_view p = parts[i];
    const std::size_t eq = p.find('=');
    const std::string_view k = p.substr(0, eq), v = eq == p.npos ? "" : p.substr(eq + 1);
    if (k == "pow2" && eq == p.npos && (s.kind == ScalingKind::current || s.kind == ScalingKind::delayed)) {
      s.pow2 = true;
    } else if (k == "floor" && eq == p.npos && s.kind == ScalingKind::mx) {
      s.mx_floor = true;
    } else if (k == "margin" && eq != p.npos &&
               (s.kind == ScalingKind::current || s.kind == ScalingKind::delayed)) {
      s.margin = int(parse_long(what("margin"), v, -64, 64));
    } else if (k == "history" && eq != p.npos && s.kind == ScalingKind::delayed) {
      s.history = int(parse_long(what("history"), v, 1, 1 << 20));
    } else if (k == "algo" && eq != p.npos && s.kind == ScalingKind::delayed) {
      if (v == "max") s.algo = AmaxAlgo::max;
      else if (v == "most_recent") s.algo = AmaxAlgo::most_recent;
      else bad(what("algo must be max or most_recent"));
    } else {
      bad(what("option '" + std::string(p) + "' does not apply"));
    }
  }
  return s;
}

std::string scaling_spec(const Scaling& s) {
  std::string out;
  switch (s.kind) {
    case ScalingKind::none: return "none";
    case ScalingKind::mx: return s.mx_floor ? "mx:floor" : "mx";
    case ScalingKind::nvfp4:
      if (s.block_rows == 1 && s.block_k == 16) return "nvfp4";
      return "nvfp4:" + std::to_string(s.block_rows) + "x" + std::to_string(s.block_k);
    case ScalingKind::current:
      if (s.block_rows == 0 && s.block_k == 0) out = "tensor";
      else if (s.block_rows == 1 && s.block_k == 0) out = "row";
      else out = "block:" + std::to_string(s.block_rows) + "x" + std::to_string(s.block_k);
      break;
    case ScalingKind::delayed:
      out = "delayed:history=" + std::to_string(s.history) +
            ":algo=" + (s.algo == AmaxAlgo::max ? "max" : "most_recent");
      break;
  }
  if (s.margin) out += ":margin=" + std::to_string(s.margin);
  if (s.pow2) out += ":pow2";
  return out;
}

Storage parse_storage(std::string_view spec) {
  const auto parts = split(spec, ':');
  Storage s;
  s.format = parse_format_name(parts[0]);
  if (!fp8emu::fits_float(s.format))
    bad("storage '" + std::string(spec) + "': the format's values must fit in float32");
  for (std::size_t i = 1; i < parts.size(); ++i) {
    if (parts[i] == "sr") s.rounding = Rounding::stochastic_a;
    else if (parts[i] == "scaled") s.scaled = true;
    else bad("storage '" + std::string(spec) + "': unknown option '" + std::string(parts[i]) + "' (sr, scaled)");
  }
  if (s.exact() && (s.scaled || s.rounding != Rounding::nearest_even))
    bad("storage '" + std::string(spec) + "': float32 storage takes no options");
  return s;
}

std::string storage_spec(const Storage& s) {
  std::string out(fp8emu::format_name(s.format));
  if (s.rounding != Rounding::nearest_even) out += ":sr";
  if (s.scaled) out += ":scaled";
  return out;
}

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool valid_recipe_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxRecipeNameLength || name.front() == '.') return false;
  for (const char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

namespace {

void check_name(std::string_view name) {
  if (!valid_recipe_name(name))
    bad("recipe name '" + std::string(name) + "': use 1 to " + std::to_string(kMaxRecipeNameLength) +
        " of the characters A-Z a-z 0-9 . _ - , not starting with '.' (the name becomes part of file names)");
}

}  // namespace

void set_recipe_key(Recipe& r, std::string_view key, std::string_view value) {
  key = trim_blanks(key);
  value = trim_blanks(value);
  if (value.empty()) bad("recipe key '" + std::string(key) + "' has no value");
  if (key == "name") {
    check_name(value);
    r.name = value;
    return;
  }
  if (key == "description") {
    r.description = value;
    return;
  }
  if (key == "master") {
    r.master = parse_storage(value);
    return;
  }
  if (key == "comm") {
    r.comm = parse_comm(value);
    return;
  }
  if (key == "moment1" || key == "moment2" || key == "moments") {
    const Storage s = parse_storage(value);
    if (key != "moment2") r.moment1 = s;
    if (key != "moment1") r.moment2 = s;
    return;
  }
  if (key.substr(0, 6) == "layer.") {
    const std::string_view pattern = key.substr(6);
    if (!valid_layer_pattern(pattern))
      bad("recipe key '" + std::string(key) + "': the layer pattern must be 1 to " +
          std::to_string(kMaxRecipeNameLength) + " of the characters A-Z a-z 0-9 . _ - *");
    Recipe named;
    try {
      named = named_recipe(value);
    } catch (const RecipeError& e) {
      bad("recipe key '" + std::string(key) + "': " + e.what());
    }
    LayerOverride o{std::string(pattern), named.name, {}};
    std::copy(std::begin(named.roles), std::end(named.roles), o.roles);
    // A pattern set again keeps its place in the order.
    for (LayerOverride& old : r.layers)
      if (old.pattern == pattern) {
        old = o;
        return;
      }
    r.layers.push_back(o);
    return;
  }
  const std::size_t dot = key.rfind('.');
  const std::string_view target = dot == key.npos ? "" : key.substr(0, dot);
  const std::string_view field = dot == key.npos ? key : key.substr(dot + 1);
  if (field == "accumulate" && (target.empty() || target == "fprop" || target == "dgrad" || target == "wgrad")) {
    fp8emu::Accumulation a;
    try {
      a = fp8emu::parse_accumulation(value);
    } catch (const std::invalid_argument& e) {
      bad(std::string(key) + ": " + e.what());
    }
    for (int i = 0; i < kRoles; ++i)
      if (target.empty() || target == std::array{"fprop", "dgrad", "wgrad"}[i]) r.roles[i].accumulation = a;
    return;
  }
  for (const Target& t : targets())
    if (t.name == target) {
      for (int i = 0; i < t.count; ++i) {
        RoleSpec& rs = r.roles[int(t.ops[i].first)];
        set_operand(t.ops[i].second ? rs.a : rs.b, field, value, key);
      }
      return;
    }
  bad("unknown recipe key '" + std::string(key) +
      "' (keys: name, description, master, moment1, moment2, moments, comm, [fprop.|dgrad.|wgrad.]accumulate, "
      "OPERAND.{format,scaling,rounding,saturation,sr-bits,hadamard} with OPERAND one of fprop.a, fprop.b, "
      "dgrad.a, dgrad.b, wgrad.a, wgrad.b, input, weight, grad, all; layer.PATTERN = RECIPE)");
}

Recipe load_recipe_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) bad(path + ": cannot open the recipe file");
  Recipe r = named_recipe("fp32");
  r.name = std::filesystem::path(path).stem().string();
  r.description = "from " + path;
  std::string line;
  int n = 0;
  bool any = false, named = false;
  std::vector<std::pair<std::string, int>> seen;  // key, line
  while (std::getline(in, line)) {
    ++n;
    std::string_view l = line;
    if (const auto h = l.find('#'); h != l.npos) l = l.substr(0, h);
    l = trim_blanks(l);
    if (l.empty()) continue;
    const std::size_t eq = l.find('=');
    if (eq == l.npos) bad(path + ":" + std::to_string(n) + ": expected key = value");
    const std::string_view k = trim_blanks(l.substr(0, eq)), v = trim_blanks(l.substr(eq + 1));
    try {
      for (const auto& [key, at] : seen)
        if (key == k)
          bad(k == "base" ? "base is already set on line " + std::to_string(at) + " (one base per file)"
                          : "key '" + key + "' is already set on line " + std::to_string(at));
      seen.emplace_back(k, n);
      named |= k == "name";
      if (k == "base") {
        if (any) bad("base must come before every other key");
        const std::string name = r.name, description = r.description;
        r = named_recipe(v);
        r.name = name;
        r.description = "based on " + std::string(v) + ", from " + path;
      } else {
        set_recipe_key(r, k, v);
      }
    } catch (const RecipeError& e) {
      bad(path + ":" + std::to_string(n) + ": " + e.what());
    }
    any = true;
  }
  if (in.bad()) bad(path + ": read error");
  if (!named) {
    try {
      check_name(r.name);
    } catch (const RecipeError& e) {
      bad(path + ": " + e.what() + "; the file name gives it: add a line name = ...");
    }
  }
  return r;
}

namespace {

// Checks the three roles of recipe `name`; `where` prefixes the messages ("" or "layer P: ").
void check_roles(const std::string& name, const std::string& where, const RoleSpec (&roles)[kRoles]) {
  static constexpr std::array<const char*, kRoles> names = {"fprop", "dgrad", "wgrad"};
  const auto k_block = [](const Scaling& s) -> std::int64_t {
    return s.kind == ScalingKind::mx || s.kind == ScalingKind::current || s.kind == ScalingKind::nvfp4 ? s.block_k
                                                                                                      : 0;
  };
  for (int i = 0; i < kRoles; ++i) {
    const RoleSpec& rs = roles[i];
    const std::string at = "recipe " + name + ": " + where + names[i];
    const std::int64_t ka = k_block(rs.a.scaling), kb = k_block(rs.b.scaling);
    if (ka && kb && ka != kb)
      bad(at + " splits K into blocks of " + std::to_string(ka) + " (operand a) and " + std::to_string(kb) +
          " (operand b); the lengths must agree");
    if (rs.a.hadamard != rs.b.hadamard)
      bad(at + ": the Hadamard transform must apply to both operands or to neither (a: " +
          std::to_string(rs.a.hadamard) + ", b: " + std::to_string(rs.b.hadamard) + ")");
    for (const OperandSpec* o : {&rs.a, &rs.b}) {
      try {
        fp8emu::validate(o->convert);
      } catch (const std::invalid_argument& e) {
        bad(at + ": " + e.what());
      }
      if (o->hadamard != 0 && o->hadamard != kHadamardSize)
        bad(at + ": the Hadamard transform has length 0 or " + std::to_string(kHadamardSize));
      if (o->scaling.kind == ScalingKind::mx && fp8emu::total_bits(o->format) > 8)
        bad(at + ": MX scaling needs an element format of at most 8 bits");
      if (o->scaling.kind == ScalingKind::nvfp4 && fp8emu::total_bits(o->format) > 8)
        bad(at + ": NVFP4 scaling needs an element format of at most 8 bits");
      if (o->scaling.kind == ScalingKind::nvfp4 && (o->scaling.block_rows < 1 || o->scaling.block_k < 1))
        bad(at + ": NVFP4 blocks need at least one row and one element of K");
    }
  }
}

}  // namespace

void check_recipe(const Recipe& r) {
  check_name(r.name);
  if (r.comm.format == CommFormat::fp32 && r.comm.scaling != CommScaling::none)
    bad("recipe " + r.name + ": comm: fp32 communication takes no scaling");
  check_roles(r.name, "", r.roles);
  for (const LayerOverride& o : r.layers) {
    if (!valid_layer_pattern(o.pattern))
      bad("recipe " + r.name + ": layer pattern '" + o.pattern + "': use 1 to " +
          std::to_string(kMaxRecipeNameLength) + " of the characters A-Z a-z 0-9 . _ - *");
    check_roles(r.name, "layer " + o.pattern + " (" + o.recipe + "): ", o.roles);
  }
}

Recipe resolve_recipe(std::string_view spec) {
  if (spec.size() > 7 && spec.substr(spec.size() - 7) == ".recipe") return load_recipe_file(std::string(spec));
  return named_recipe(spec);
}

std::string recipe_text(const Recipe& r) {
  std::string s = "name = " + r.name + "\ndescription = " + r.description + "\n";
  static constexpr std::array<const char*, kRoles> roles = {"fprop", "dgrad", "wgrad"};
  for (int i = 0; i < kRoles; ++i) {
    s += operand_text(std::string(roles[i]) + ".a", r.roles[i].a);
    s += operand_text(std::string(roles[i]) + ".b", r.roles[i].b);
    s += std::string(roles[i]) + ".accumulate = " + fp8emu::accumulation_spec(r.roles[i].accumulation) + "\n";
  }
  s += "master = " + storage_spec(r.master) + "\n";
  s += "moment1 = " + storage_spec(r.moment1) + "\n";
  s += "moment2 = " + storage_spec(r.moment2) + "\n";
  // Written only where it is not the default, so that recipes without data-parallel
  // training keep their text (and the fingerprints of their runs).
  if (r.comm != GradComm{}) s += "comm = " + comm_spec(r.comm) + "\n";
  for (const LayerOverride& o : r.layers) s += "layer." + o.pattern + " = " + o.recipe + "\n";
  return s;
}

namespace {

// The one name table of the communication formats and scalings.
constexpr std::array<std::pair<CommFormat, std::string_view>, 4> kCommFormats = {
    {{CommFormat::fp32, "fp32"}, {CommFormat::bf16, "bf16"}, {CommFormat::e4m3fn, "e4m3fn"}, {CommFormat::e5m2, "e5m2"}}};
constexpr std::array<std::pair<CommScaling, std::string_view>, 2> kCommScalings = {
    {{CommScaling::none, "none"}, {CommScaling::automatic, "auto"}}};

// FP8 formats scale automatically unless told otherwise; fp32 and bf16 do not.
CommScaling default_comm_scaling(CommFormat f) {
  return f == CommFormat::e4m3fn || f == CommFormat::e5m2 ? CommScaling::automatic : CommScaling::none;
}

}  // namespace

fp8emu::Format GradComm::code_format() const {
  switch (format) {
    case CommFormat::bf16: return fp8emu::formats::bfloat16{};
    case CommFormat::e4m3fn: return fp8emu::formats::e4m3fn{};
    case CommFormat::e5m2: return fp8emu::formats::e5m2{};
    default: return fp8emu::formats::float32{};
  }
}

GradComm parse_comm(std::string_view spec) {
  const std::vector<std::string_view> parts = split(trim_blanks(spec), ':');
  auto names = [](const auto& table) {
    std::string s;
    for (const auto& [v, n] : table) s += (s.empty() ? "" : ", ") + std::string(n);
    return s;
  };
  GradComm c;
  const auto f = std::find_if(kCommFormats.begin(), kCommFormats.end(), [&](const auto& e) { return e.second == parts[0]; });
  if (f == kCommFormats.end())
    bad("comm: unknown format '" + std::string(parts[0]) + "' (one of " + names(kCommFormats) + ")");
  c.format = f->first;
  c.scaling = default_comm_scaling(c.format);
  if (parts.size() > 2) bad("comm: '" + std::string(spec) + "' has more than one ':' (FORMAT[:SCALING])");
  if (parts.size() == 2) {
    const auto s =
        std::find_if(kCommScalings.begin(), kCommScalings.end(), [&](const auto& e) { return e.second == parts[1]; });
    if (s == kCommScalings.end())
      bad("comm: unknown scaling '" + std::string(parts[1]) + "' (one of " + names(kCommScalings) + ")");
    c.scaling = s->first;
  }
  if (c.format == CommFormat::fp32 && c.scaling != CommScaling::none)
    bad("comm: fp32 communication sums exactly in a fixed order and takes no scaling");
  return c;
}

std::string comm_spec(const GradComm& c) {
  std::string s;
  for (const auto& [v, n] : kCommFormats)
    if (v == c.format) s = n;
  if (c.scaling != default_comm_scaling(c.format))
    for (const auto& [v, n] : kCommScalings)
      if (v == c.scaling) s += ":" + std::string(n);
  return s;
}

bool valid_layer_pattern(std::string_view pattern) {
  if (pattern.empty() || pattern.size() > kMaxRecipeNameLength) return false;
  for (const char c : pattern)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-' || c == '*'))
      return false;
  return true;
}

bool layer_matches(std::string_view pattern, std::string_view name) {
  // Iterative glob match with backtracking to the last '*'.
  std::size_t p = 0, n = 0, star = std::string_view::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

const RoleSpec& Recipe::role(Role r, std::span<const std::string> names) const {
  for (const LayerOverride& o : layers)
    for (const std::string& n : names)
      if (layer_matches(o.pattern, n)) return o.roles[int(r)];
  return role(r);
}

}  // namespace fp8sim
