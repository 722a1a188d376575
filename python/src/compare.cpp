// fp8emu Python bindings: bind_compare (bindings.hpp): compare and its report, the
// library's compare_codes / compare_values with the report `fp8emu compare` prints
// (compare_text) and writes as JSON (compare_json, read back as the report's dict).
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "fp8emu/compare.hpp"

namespace fp8emu::python {
namespace {

// Returns true when `a` holds elements of NumPy type `name` in native byte order.
bool has_dtype(const py::array& a, const char* name) {
  return py::bool_(a.dtype().attr("__eq__")(py::dtype(name)));
}

// A comparison's report with what it compared (for its text and dict).
struct Report {
  CompareSubject subject;
  CompareReport report;
};

template <class T>
std::span<const T> elements(const py::array& a) {
  return {static_cast<const T*>(a.data()), std::size_t(a.size())};
}

Report compare_py(const py::object& expected, const py::object& actual, const py::object& fmt,
                  double tolerance_ulps, long long keep) {
  const Format f = to_format(fmt);
  for (const auto& [h, what] : {std::pair{expected, "expected"}, std::pair{actual, "actual"}})
    if (!py::isinstance<py::array>(h))
      throw py::type_error(std::string("compare: ") + what + " must be a NumPy array, not " +
                           std::string(py::str(py::type::of(h).attr("__name__"))));
  py::array e = expected.cast<py::array>(), a = actual.cast<py::array>();
  Report r;
  r.subject.format = f;
  for (py::ssize_t d = 0; d < e.ndim(); ++d) r.subject.shape.push_back(std::size_t(e.shape(d)));
  std::vector<std::size_t> ashape;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) ashape.push_back(std::size_t(a.shape(d)));
  if (r.subject.shape != ashape)
    throw py::value_error("compare: shape mismatch: expected is " + shape_text(r.subject.shape) +
                          ", actual is " + shape_text(ashape));
  if (!py::bool_(e.dtype().attr("__eq__")(a.dtype())))
    throw py::type_error("compare: dtype mismatch: expected holds " + dtype_name(e) + ", actual holds " +
                         dtype_name(a));
  if (!(std::isfinite(tolerance_ulps) && tolerance_ulps >= 0))
    throw py::value_error("compare: tolerance_ulps: expected a finite number >= 0, got " +
                          std::string(py::repr(py::float_(tolerance_ulps))));
  if (keep < 0) throw py::value_error("compare: keep: expected a count >= 0, got " + std::to_string(keep));
  const bool is_float = has_dtype(e, "float32") || has_dtype(e, "float64") || has_dtype(e, "float16");
  if (!is_float) {
    const py::dtype want = code_dtype(f);
    if (total_bits(f) > 32) throw py::value_error("compare: codes of at most 32 bits, not of " + format_name(f));
    if (!py::bool_(e.dtype().attr("__eq__")(want)))
      throw py::type_error("compare: codes of " + format_name(f) + " are " + std::string(py::str(want.attr("name"))) +
                           "; the arrays hold " + dtype_name(e) + " (or give float16, float32 or float64 values)");
  }
  e = c_contiguous(e);
  a = c_contiguous(a);
  r.subject.codes = !is_float;
  r.subject.dtype = dtype_name(e);
  r.subject.value_bits = int(8 * e.itemsize());
  r.subject.tolerance_ulps = tolerance_ulps;
  CompareOptions o;
  o.tolerance_ulps = tolerance_ulps;
  o.keep = std::size_t(keep);
  const int bytes = int(e.itemsize());
  const bool f16 = has_dtype(e, "float16");
  py::gil_scoped_release release;
  if (!is_float) {
    r.report = bytes == 1   ? compare_codes(f, elements<std::uint8_t>(e), elements<std::uint8_t>(a), o)
               : bytes == 2 ? compare_codes(f, elements<std::uint16_t>(e), elements<std::uint16_t>(a), o)
                            : compare_codes(f, elements<std::uint32_t>(e), elements<std::uint32_t>(a), o);
  } else if (f16) {
    r.report = compare_float16_bits(f, elements<std::uint16_t>(e), elements<std::uint16_t>(a), o);
  } else if (bytes == 4) {
    r.report = compare_values(f, elements<float>(e), elements<float>(a), o);
  } else {
    r.report = compare_values(f, elements<double>(e), elements<double>(a), o);
  }
  return r;
}

py::dict counts_by_kind(const CompareReport& r) {
  py::dict d;
  for (std::size_t k = 0; k < kDifferenceCount; ++k)
    d[py::str(std::string(difference_name(Difference(k))))] = r.by_kind[k];
  return d;
}

}  // namespace

void bind_compare(py::module_& m) {
  using namespace py::literals;
  py::class_<MismatchRecord>(m, "MismatchRecord", "One mismatch of a comparison (CompareReport.first).")
      .def_readonly("index", &MismatchRecord::index, "The flat index (C order).")
      .def_readonly("expected_bits", &MismatchRecord::expected_bits,
                    "The expected code, or the bits of the expected value.")
      .def_readonly("actual_bits", &MismatchRecord::actual_bits)
      .def_readonly("expected", &MismatchRecord::expected, "The expected value, decoded.")
      .def_readonly("actual", &MismatchRecord::actual)
      .def_readonly("ulps", &MismatchRecord::ulps, "The distance in ulps (inf when it has none).")
      .def_property_readonly("kind", [](const MismatchRecord& r) { return std::string(difference_name(r.kind)); },
                             "Its class: nan_vs_number, nan_bits, inf_vs_finite, sign, zero_vs_subnormal, "
                             "zero_vs_normal or magnitude.")
      .def_readonly("tolerated", &MismatchRecord::tolerated)
      .def("__repr__", [](const MismatchRecord& r) {
        return "MismatchRecord(index=" + std::to_string(r.index) + ", expected=" +
               std::string(py::repr(py::float_(r.expected))) + ", actual=" +
               std::string(py::repr(py::float_(r.actual))) + ", ulps=" + std::string(py::repr(py::float_(r.ulps))) +
               ", kind='" + std::string(difference_name(r.kind)) + "')";
      });

  py::class_<Report>(m, "CompareReport",
                     "The result of fp8emu.compare: the fields of fp8emu::CompareReport; str() is the "
                     "report `fp8emu compare` prints, to_dict() the one it writes with --json.")
      .def_property_readonly("total", [](const Report& r) { return r.report.total; })
      .def_property_readonly("exact", [](const Report& r) { return r.report.exact; })
      .def_property_readonly("tolerated", [](const Report& r) { return r.report.tolerated; })
      .def_property_readonly("failed", [](const Report& r) { return r.report.failed; })
      .def_property_readonly("passed", [](const Report& r) { return r.report.passed(); },
                             "True when every element is bit-identical or within the tolerance.")
      .def_property_readonly("by_kind", [](const Report& r) { return counts_by_kind(r.report); },
                             "The mismatches by class, a dict of every class name.")
      .def_property_readonly(
          "histogram",
          [](const Report& r) {
            py::list l;
            for (const std::uint64_t n : r.report.histogram) l.append(n);
            return l;
          },
          "The mismatches by ulp distance: a count per bucket of ulp_bucket_labels().")
      .def_property_readonly("max_ulps", [](const Report& r) { return r.report.max_ulps; })
      .def_property_readonly("max_ulps_index", [](const Report& r) { return r.report.max_ulps_index; })
      .def_property_readonly("max_abs_error", [](const Report& r) { return r.report.max_abs_error; })
      .def_property_readonly("max_abs_index", [](const Report& r) { return r.report.max_abs_index; })
      .def_property_readonly("max_rel_error", [](const Report& r) { return r.report.max_rel_error; })
      .def_property_readonly("max_rel_index", [](const Report& r) { return r.report.max_rel_index; })
      .def_property_readonly("off_grid_expected", [](const Report& r) { return r.report.off_grid_expected; })
      .def_property_readonly("off_grid_actual", [](const Report& r) { return r.report.off_grid_actual; })
      .def_property_readonly(
          "first",
          [](const Report& r) {
            py::list l;
            for (const MismatchRecord& x : r.report.first) l.append(py::cast(x));
            return l;
          },
          "The first `keep` mismatches by index (MismatchRecord).")
      .def_property_readonly("format", [](const Report& r) { return r.subject.format; })
      .def_property_readonly("tolerance_ulps", [](const Report& r) { return r.subject.tolerance_ulps; })
      .def_property_readonly("as_codes", [](const Report& r) { return r.subject.codes; },
                             "True when codes were compared, False for values.")
      .def("to_dict",
           [](const Report& r) {
             return py::module_::import("json").attr("loads")(compare_json(r.subject, r.report));
           },
           "Returns the report as `fp8emu compare --json` writes it (expected and actual: None).")
      .def("__str__", [](const Report& r) { return compare_text(r.subject, r.report); })
      .def("__repr__", [](const Report& r) {
        const CompareReport& c = r.report;
        return std::string("CompareReport(passed=") + (c.passed() ? "True" : "False") +
               ", total=" + std::to_string(c.total) + ", exact=" + std::to_string(c.exact) +
               ", tolerated=" + std::to_string(c.tolerated) + ", failed=" + std::to_string(c.failed) + ")";
      });

  m.def("compare", &compare_py, "expected"_a, "actual"_a, "fmt"_a, py::kw_only(), "tolerance_ulps"_a = 0.0,
        "keep"_a = 10,
        R"(Compares two arrays element by element in ulps of format fmt (fp8emu::compare_codes /
compare_values) and returns a CompareReport. Integer arrays are codes of fmt (its code
dtype: uint8, uint16 or uint32), NaN codes compared bit for bit; float16, float32 and
float64 arrays are values, measured on fmt's grid, any NaN equal to any NaN. Both arrays
have one shape and one dtype. A mismatch of at most tolerance_ulps (> 0) is tolerated;
keep: how many mismatches to record.)");
  m.def(
      "ulp_bucket_labels",
      [] {
        py::list l;
        for (std::size_t b = 0; b < kUlpBuckets; ++b) l.append(ulp_bucket_label(b));
        return l;
      },
      "Returns the labels of the buckets of CompareReport.histogram (\"0\", \"(0, 1]\", ...).");
}

}  // namespace fp8emu::python
