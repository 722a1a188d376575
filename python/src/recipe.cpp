// fp8emu Python bindings: bind_recipe (bindings.hpp). The simulator's precision recipes
// (fp8sim::Recipe, read and checked by its one parser) and RecipeLinear, the three GEMMs
// of one linear layer under a recipe, as the simulator's GemmCore runs them
// (sim/src/layers.cpp): each by fp8sim::recipe_gemm with the layer's role, its six operand
// states (delayed scaling's amax history and scale, statistics) kept across calls.
// fp8emu.torch builds its autograd functions and its Linear on RecipeLinear.

#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "fp8sim/qgemm.hpp"
#include "fp8sim/recipe.hpp"

namespace fp8emu::python {
namespace {

using fp8sim::OperandState;
using fp8sim::Recipe;
using fp8sim::Role;
using fp8sim::RoleSpec;
using fp8sim::ScalingKind;

constexpr const char* kRoleNames[fp8sim::kRoles] = {"fprop", "dgrad", "wgrad"};
constexpr int kSlots = 2 * fp8sim::kRoles;  // (role, operand a / b), in checkpoint order

// The largest layer index: the random streams of a layer are keyed by it (stream_of).
constexpr std::int64_t kMaxLayerIndex = (std::int64_t(1) << 16) - 1;

Recipe checked(Recipe r) {
  fp8sim::check_recipe(r);
  return r;
}

// Returns the C-contiguous float32 matrix `a` (itself when it is one), or throws TypeError
// for another dtype and ValueError for a shape that is not 2-D.
py::array float_matrix(const py::array& a, const char* what) {
  if (!a.dtype().is(py::dtype::of<float>()))
    throw py::type_error(std::string(what) + ": expected a float32 array, got " + dtype_name(a));
  if (a.ndim() != 2)
    throw py::value_error(std::string(what) + ": expected a 2-D array, got " +
                          std::to_string(a.ndim()) + "-D");
  return c_contiguous(a);
}

const float* data_of(const py::array& a) { return static_cast<const float*>(a.data()); }

py::dict stats_dict(const fp8sim::QuantStats& s) {
  py::dict d;
  d["amax"] = s.amax;
  d["count"] = s.count;
  d["nonzero"] = s.nonzero;
  d["flushed"] = s.flushed;
  d["saturated"] = s.saturated;
  d["flushed_fraction"] = s.flushed_fraction();
  d["saturated_fraction"] = s.saturated_fraction();
  d["sqnr_db"] = s.sqnr_db();
  d["signal"] = s.signal;
  d["noise"] = s.noise;
  d["uses"] = s.uses;
  return d;
}

// One linear layer y = x W^T (W: out x in) under a recipe: the roles for its names, the
// operand states and a workspace. One call at a time: a GEMM runs without the GIL, so a
// second Python thread calling the same layer waits for it (lock_).
class RecipeLinear {
 public:
  RecipeLinear(const Recipe& recipe, std::vector<std::string> names, std::uint64_t seed,
               std::int64_t index, int threads)
      : recipe_(checked(recipe)),
        names_(std::move(names)),
        seed_(seed),
        index_(index),
        exec_(execution(threads)) {
    if (index < 0 || index > kMaxLayerIndex)
      throw py::value_error("index: expected 0.." + std::to_string(kMaxLayerIndex) + ", got " +
                            std::to_string(index));
    for (int r = 0; r < fp8sim::kRoles; ++r) roles_[r] = recipe_.role(Role(r), names_);
    for (const fp8sim::LayerOverride& o : recipe_.layers)
      for (const std::string& n : names_)
        if (!override_ && fp8sim::layer_matches(o.pattern, n)) override_ = o.recipe;
  }

  // y (n x out) = x (n x in) W^T: operand a the input, b the weight viewed as the
  // column-major in x out matrix (GemmCore::forward).
  py::array fprop(const py::array& x_in, const py::array& w_in, std::optional<std::uint64_t> step,
                  std::optional<bool> training) {
    const py::array x = float_matrix(x_in, "x"), w = float_matrix(w_in, "w");
    const std::int64_t n = x.shape(0), in = x.shape(1), out = w.shape(0);
    if (w.shape(1) != in)
      throw py::value_error(shapes("fprop: x", x, "w", w, "x.shape[1] == w.shape[1]"));
    py::array y = new_array(py::dtype::of<float>(), {n, out});
    float* yp = static_cast<float*>(y.mutable_data());
    const fp8sim::MatView a{data_of(x), n, in, Layout::row_major, 0};
    const fp8sim::MatView b{data_of(w), in, out, Layout::col_major, 0};
    run(Role::fprop, a, b, yp, out, step, training);
    return y;
  }

  // dx (n x in) = dy (n x out) W (out x in) (GemmCore::backward).
  py::array dgrad(const py::array& dy_in, const py::array& w_in, std::optional<std::uint64_t> step,
                  std::optional<bool> training) {
    const py::array dy = float_matrix(dy_in, "dy"), w = float_matrix(w_in, "w");
    const std::int64_t n = dy.shape(0), out = dy.shape(1), in = w.shape(1);
    if (w.shape(0) != out)
      throw py::value_error(shapes("dgrad: dy", dy, "w", w, "dy.shape[1] == w.shape[0]"));
    py::array dx = new_array(py::dtype::of<float>(), {n, in});
    float* p = static_cast<float*>(dx.mutable_data());
    const fp8sim::MatView a{data_of(dy), n, out, Layout::row_major, 0};
    const fp8sim::MatView b{data_of(w), out, in, Layout::row_major, 0};
    run(Role::dgrad, a, b, p, in, step, training);
    return dx;
  }

  // dW (out x in) = dy^T (out x n, dy viewed column-major) x (n x in) (GemmCore::backward).
  py::array wgrad(const py::array& dy_in, const py::array& x_in, std::optional<std::uint64_t> step,
                  std::optional<bool> training) {
    const py::array dy = float_matrix(dy_in, "dy"), x = float_matrix(x_in, "x");
    const std::int64_t n = dy.shape(0), out = dy.shape(1), in = x.shape(1);
    if (x.shape(0) != n)
      throw py::value_error(shapes("wgrad: dy", dy, "x", x, "dy.shape[0] == x.shape[0]"));
    py::array dw = new_array(py::dtype::of<float>(), {out, in});
    float* p = static_cast<float*>(dw.mutable_data());
    const fp8sim::MatView a{data_of(dy), out, n, Layout::col_major, 0};
    const fp8sim::MatView b{data_of(x), n, in, Layout::row_major, 0};
    run(Role::wgrad, a, b, p, in, step, training);
    return dw;
  }

  // db (out) = the column sums of dy, in float64 row by row, rounded once (GemmCore).
  py::array bias_grad(const py::array& dy_in) {
    const py::array dy = float_matrix(dy_in, "dy");
    const std::int64_t n = dy.shape(0), out = dy.shape(1);
    py::array db = new_array(py::dtype::of<float>(), {out});
    float* p = static_cast<float*>(db.mutable_data());
    const float* d = data_of(dy);
    py::gil_scoped_release release;
    std::vector<double> s(std::size_t(out), 0.0);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < out; ++j) s[std::size_t(j)] += d[i * out + j];
    for (std::int64_t j = 0; j < out; ++j) p[j] = float(s[std::size_t(j)]);
    return db;
  }

  // The random stream of role `r` at `step`: a function of (step, index, role, training)
  // only, so that stochastic rounding never depends on threads or call order.
  std::uint64_t stream_of(Role r, std::uint64_t step, bool training) const {
    return ((step << 16) + std::uint64_t(index_)) * 8 + std::uint64_t(r) + (training ? 0 : 4);
  }

  // The amax history length of each slot: the role's delayed history, 0 for any other
  // scaling.
  int slot_history(int slot) const {
    const RoleSpec& rs = roles_[slot / 2];
    const fp8sim::Scaling& sc = slot % 2 ? rs.b.scaling : rs.a.scaling;
    return sc.kind == ScalingKind::delayed ? sc.history : 0;
  }
  int history_length() const {
    int h = 0;
    for (int s = 0; s < kSlots; ++s) h = std::max(h, slot_history(s));
    return h;
  }

  // The delayed-scaling state: amax histories (6 x history_length, a slot's ring buffer in
  // its first entries, zeros before its first amax and after its length), amax values
  // recorded (6) and scales (6), the slots in the order (fprop, dgrad, wgrad) x (a, b).
  py::dict state() const {
    const std::lock_guard<std::mutex> hold(lock_.m);
    const int h = history_length();
    py::array_t<float> hist({py::ssize_t(kSlots), py::ssize_t(h)});
    py::array_t<std::int64_t> rec(kSlots);
    py::array_t<float> scale(kSlots);
    float* hp = hist.mutable_data();
    std::fill(hp, hp + kSlots * h, 0.0f);
    for (int s = 0; s < kSlots; ++s) {
      const OperandState& st = states_[s];
      std::copy(st.history.begin(), st.history.end(), hp + s * h);
      rec.mutable_data()[s] = st.recorded;
      scale.mutable_data()[s] = st.scale;
    }
    py::dict d;
    d["amax_history"] = hist;
    d["amax_recorded"] = rec;
    d["scale"] = scale;
    return d;
  }

  // Replaces the delayed-scaling state by arrays as state() returns them, checked whole
  // first (the rules of the simulator's checkpoints): ValueError naming the slot.
  void set_state(const py::array& hist_in, const py::array& rec_in, const py::array& scale_in) {
    const int h = history_length();
    if (!hist_in.dtype().is(py::dtype::of<float>()) ||
        !scale_in.dtype().is(py::dtype::of<float>()) ||
        !rec_in.dtype().is(py::dtype::of<std::int64_t>()))
      throw py::type_error(
          "set_state: expected amax_history and scale float32, amax_recorded int64");
    const py::array hist = c_contiguous(hist_in), rec = c_contiguous(rec_in),
                    scale = c_contiguous(scale_in);
    if (hist.ndim() != 2 || hist.shape(0) != kSlots || hist.shape(1) != h || rec.ndim() != 1 ||
        rec.shape(0) != kSlots || scale.ndim() != 1 || scale.shape(0) != kSlots)
      throw py::value_error("set_state: expected amax_history of shape (6, " + std::to_string(h) +
                            "), amax_recorded and scale of shape (6,)");
    const float* hp = data_of(hist);
    const auto* rp = static_cast<const std::int64_t*>(rec.data());
    const float* sp = data_of(scale);
    OperandState next[kSlots];
    for (int s = 0; s < kSlots; ++s) {
      const std::string slot = std::string(kRoleNames[s / 2]) + (s % 2 ? ".b" : ".a");
      const int len = slot_history(s);
      const float* row = hp + s * h;
      auto bad = [&](const std::string& why) {
        throw py::value_error("set_state: slot " + slot + ": " + why);
      };
      if (rp[s] < 0) bad("amax_recorded is negative");
      if (!(sp[s] > 0) || std::isinf(sp[s])) bad("scale is not finite and positive");
      if (len == 0 && (rp[s] != 0 || sp[s] != 1.0f))
        bad("no delayed scaling: amax_recorded must be 0 and scale 1");
      for (int i = 0; i < h; ++i) {
        if (!(row[i] >= 0) || std::isinf(row[i]))
          bad("an amax history entry is not finite and >= 0");
        if ((i >= len || rp[s] == 0) && row[i] != 0)
          bad("an amax history entry past what was recorded is not 0");
      }
      next[s].recorded = rp[s];
      next[s].scale = sp[s];
      if (rp[s] > 0) next[s].history.assign(row, row + len);
    }
    const std::lock_guard<std::mutex> hold(lock_.m);
    for (int s = 0; s < kSlots; ++s) {
      next[s].stats = std::move(states_[s].stats);
      states_[s] = std::move(next[s]);
    }
  }

  // {role: {"a": stats, "b": stats}} since the last reset_statistics().
  py::dict statistics() const {
    const std::lock_guard<std::mutex> hold(lock_.m);
    py::dict d;
    for (int r = 0; r < fp8sim::kRoles; ++r) {
      py::dict role;
      role["a"] = stats_dict(states_[2 * r].stats);
      role["b"] = stats_dict(states_[2 * r + 1].stats);
      d[kRoleNames[r]] = role;
    }
    return d;
  }
  void reset_statistics() {
    const std::lock_guard<std::mutex> hold(lock_.m);
    for (OperandState& s : states_) s.stats = {};
  }

  RecipeLinear copy() const {
    const std::lock_guard<std::mutex> hold(lock_.m);
    return *this;
  }
  const Recipe& recipe() const { return recipe_; }
  const std::vector<std::string>& names() const { return names_; }
  const std::optional<std::string>& override_recipe() const { return override_; }
  std::uint64_t seed() const { return seed_; }
  std::int64_t index() const { return index_; }
  std::uint64_t step = 0;
  bool training = true;
  bool stats = true;

 private:
  static std::string shapes(const std::string& a_name, const py::array& a,
                            const std::string& b_name, const py::array& b,
                            const std::string& rule) {
    auto dims = [](const py::array& m) {
      return std::to_string(m.shape(0)) + "x" + std::to_string(m.shape(1));
    };
    return a_name + " is " + dims(a) + ", " + b_name + " is " + dims(b) + ": expected " + rule;
  }

  void run(Role r, const fp8sim::MatView& a, const fp8sim::MatView& b, float* c, std::int64_t ldc,
           std::optional<std::uint64_t> step, std::optional<bool> training) {
    const bool train = training.value_or(this->training);
    const fp8sim::GemmContext g{seed_, stream_of(r, step.value_or(this->step), train), train, stats,
                                exec_};
    const int i = int(r);
    py::gil_scoped_release release;  // then the lock: its holder never waits for the GIL
    const std::lock_guard<std::mutex> hold(lock_.m);
    fp8sim::recipe_gemm(roles_[i], a, b, c, ldc, false, states_[2 * i], states_[2 * i + 1], g, ws_);
  }

  Recipe recipe_;
  std::vector<std::string> names_;
  std::uint64_t seed_;
  std::int64_t index_;
  Execution exec_;
  RoleSpec roles_[fp8sim::kRoles];
  std::optional<std::string> override_;
  OperandState states_[kSlots];
  fp8sim::GemmWorkspace ws_;
  // A mutex that a copy of the layer does not share.
  struct Lock {
    std::mutex m;
    Lock() = default;
    Lock(const Lock&) {}
    Lock& operator=(const Lock&) { return *this; }
  };
  mutable Lock lock_;
};

}  // namespace

void bind_recipe(py::module_& m) {
  m.def(
      "recipe_names",
      [] {
        std::vector<std::string> v;
        for (std::string_view n : fp8sim::recipe_names()) v.emplace_back(n);
        return v;
      },
      "Returns the names of the simulator's named recipes (docs/simulator.md).");

  py::class_<Recipe>(
      m, "Recipe",
      "A precision recipe of the simulator: how each GEMM of a linear layer (fprop, dgrad, "
      "wgrad) quantizes its operands and accumulates. Recipe(name_or_path): a named recipe "
      "(fp8emu.recipe_names()) or a recipe file ending in .recipe, read by the simulator's "
      "parser; ValueError with its message otherwise.")
      .def(py::init([](const std::string& spec) { return checked(fp8sim::resolve_recipe(spec)); }),
           py::arg("name_or_path"))
      .def_static(
          "from_file",
          [](const std::string& path) { return checked(fp8sim::load_recipe_file(path)); },
          py::arg("path"), "Reads a recipe file (key = value lines; docs/simulator.md).")
      .def(
          "set",
          [](Recipe& r, const std::string& key, const std::string& value) -> Recipe& {
            Recipe next = r;
            fp8sim::set_recipe_key(next, key, value);
            fp8sim::check_recipe(next);
            r = std::move(next);
            return r;
          },
          py::arg("key"), py::arg("value"), py::return_value_policy::reference_internal,
          "Applies one `key = value` setting of a recipe file (such as 'layer.head = bf16'), "
          "checks "
          "the recipe and returns it; on a bad key or value the recipe is unchanged (ValueError).")
      .def(
          "copy", [](const Recipe& r) { return r; }, "Returns a copy.")
      .def_property_readonly("name", [](const Recipe& r) { return r.name; })
      .def_property_readonly("description", [](const Recipe& r) { return r.description; })
      .def_property_readonly("text", &fp8sim::recipe_text,
                             "The recipe as the key = value lines Recipe.from_file reads back.")
      .def_property_readonly(
          "layers",
          [](const Recipe& r) {
            py::list l;
            for (const fp8sim::LayerOverride& o : r.layers)
              l.append(py::make_tuple(o.pattern, o.recipe));
            return l;
          },
          "The per-layer overrides (pattern, recipe name), first match wins.")
      .def("__eq__",
           [](const Recipe& a, const Recipe& b) {
             return fp8sim::recipe_text(a) == fp8sim::recipe_text(b);
           })
      .def("__str__", &fp8sim::recipe_text)
      .def("__repr__", [](const Recipe& r) { return "fp8emu.Recipe('" + r.name + "')"; });

  py::class_<RecipeLinear>(
      m, "RecipeLinear",
      "The three GEMMs of a linear layer y = x W^T (W: out x in) under a recipe, each by the "
      "simulator's recipe GEMM with the role the recipe gives the layer's names (layer.PATTERN "
      "overrides): fprop(x, w) = x W^T, dgrad(dy, w) = dy W, wgrad(dy, x) = dy^T x. Holds the six "
      "operand states (delayed scaling's amax history and scale, statistics). Arrays: 2-D float32 "
      "(C-contiguous ones used in place). Stochastic rounding draws from (seed, stream) with the "
      "stream a function of (step, index, role, training).")
      .def(py::init<const Recipe&, std::vector<std::string>, std::uint64_t, std::int64_t, int>(),
           py::arg("recipe"), py::kw_only(), py::arg("names") = std::vector<std::string>{},
           py::arg("seed") = 0, py::arg("index") = 0, py::arg("threads") = 0)
      .def("fprop", &RecipeLinear::fprop, py::arg("x"), py::arg("w"), py::kw_only(),
           py::arg("step") = py::none(), py::arg("training") = py::none(),
           "Returns y = x W^T (x: n x in, w: out x in).")
      .def("dgrad", &RecipeLinear::dgrad, py::arg("dy"), py::arg("w"), py::kw_only(),
           py::arg("step") = py::none(), py::arg("training") = py::none(),
           "Returns dx = dy W (dy: n x out, w: out x in).")
      .def("wgrad", &RecipeLinear::wgrad, py::arg("dy"), py::arg("x"), py::kw_only(),
           py::arg("step") = py::none(), py::arg("training") = py::none(),
           "Returns dW = dy^T x (dy: n x out, x: n x in).")
      .def("__copy__", [](const RecipeLinear& l) { return l.copy(); })
      .def(
          "__deepcopy__", [](const RecipeLinear& l, const py::dict&) { return l.copy(); },
          py::arg("memo"),
          "Returns a copy with its own state (copy.deepcopy of a model copies its layers' states).")
      .def("bias_grad", &RecipeLinear::bias_grad, py::arg("dy"),
           "Returns the column sums of dy (float64, row by row, rounded once to float32).")
      .def("state", &RecipeLinear::state,
           "Returns the delayed-scaling state: dict(amax_history=float32 (6, history_length), "
           "amax_recorded=int64 (6,), scale=float32 (6,)), slots (fprop, dgrad, wgrad) x (a, b).")
      .def("set_state", &RecipeLinear::set_state, py::arg("amax_history"), py::arg("amax_recorded"),
           py::arg("scale"),
           "Replaces the delayed-scaling state (arrays as state() returns them; checked).")
      .def("statistics", &RecipeLinear::statistics,
           "Returns {role: {'a': stats, 'b': stats}}: the quantization statistics since the last "
           "reset.")
      .def("reset_statistics", &RecipeLinear::reset_statistics)
      .def(
          "stream",
          [](const RecipeLinear& l, const std::string& role, std::uint64_t step, bool training) {
            for (int r = 0; r < fp8sim::kRoles; ++r)
              if (role == kRoleNames[r]) return l.stream_of(Role(r), step, training);
            throw py::value_error("role: expected fprop, dgrad or wgrad, got '" + role + "'");
          },
          py::arg("role"), py::arg("step"), py::arg("training") = true,
          "Returns the random stream of a role's GEMM (operand a draws from 2 stream, b from 2 "
          "stream + 1).")
      .def_property_readonly("history_length", &RecipeLinear::history_length)
      .def_property_readonly(
          "recipe", [](const RecipeLinear& l) { return l.recipe(); }, "The recipe (a copy).")
      .def_property_readonly("names", &RecipeLinear::names)
      .def_property_readonly("override", &RecipeLinear::override_recipe,
                             "The recipe of the layer override matching the names, or None.")
      .def_property_readonly("seed", &RecipeLinear::seed)
      .def_property_readonly("index", &RecipeLinear::index)
      .def_readwrite("step", &RecipeLinear::step, "The step of the next call (its random streams).")
      .def_readwrite("training", &RecipeLinear::training,
                     "True: delayed scaling's histories advance (training); False: evaluation.")
      .def_readwrite("stats", &RecipeLinear::stats, "Gather quantization statistics.");
}

}  // namespace fp8emu::python
