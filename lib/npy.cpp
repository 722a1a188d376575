// fp8emu: .npy reading and writing (see npy.hpp for the format and its sources).
//
// The header is a Python dict literal written by numpy.lib.format; the parser accepts
// exactly that grammar: keys 'descr', 'fortran_order' and 'shape' (each once, any order,
// single or double quotes), a shape tuple of non-negative integers, optional trailing
// commas, and spaces or a newline as padding. Every length is checked before it is used.
#include "fp8emu/npy.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <string_view>

#include "fp8emu/file.hpp"

namespace fp8emu::npy {
namespace {

constexpr std::uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

struct DTypeInfo {
  DType type;
  char kind;
  std::size_t size;
  const char* name;
};
constexpr DTypeInfo kTypes[] = {
    {DType::float16, 'f', 2, "float16"}, {DType::float32, 'f', 4, "float32"},
    {DType::float64, 'f', 8, "float64"}, {DType::uint8, 'u', 1, "uint8"},
    {DType::uint16, 'u', 2, "uint16"},   {DType::int32, 'i', 4, "int32"}};

const DTypeInfo& info(DType t) {
  for (const auto& i : kTypes)
    if (i.type == t) return i;
  throw Error("unknown dtype");
}

// A cursor over the header text.
class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n')) ++i_;
  }
  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[i_]; }
  void expect(char c) {
    skip_ws();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  bool accept(char c) {
    skip_ws();
    if (peek() != c) return false;
    ++i_;
    return true;
  }
  std::string string() {
    skip_ws();
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    const std::size_t end = s_.find(q, i_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string r(s_.substr(i_ + 1, end - i_ - 1));
    i_ = end + 1;
    return r;
  }
  bool boolean() {
    skip_ws();
    if (s_.substr(i_, 4) == "True") return i_ += 4, true;
    if (s_.substr(i_, 5) == "False") return i_ += 5, false;
    fail("expected True or False");
  }
  std::size_t integer() {
    skip_ws();
    if (at_end() || peek() < '0' || peek() > '9') fail("expected a non-negative integer");
    std::size_t v = 0;
    while (!at_end() && peek() >= '0' && peek() <= '9') {
      const std::size_t d = std::size_t(peek() - '0');
      if (v > (std::numeric_limits<std::size_t>::max() - d) / 10) fail("dimension too large");
      v = v * 10 + d;
      ++i_;
    }
    if (!at_end() && peek() == 'L') ++i_;  // Python 2 long suffix, as numpy still accepts
    return v;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("malformed .npy header: " + what + " at offset " + std::to_string(i_) +
                " of \"" + std::string(s_) + "\"");
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

DType parse_descr(const std::string& d) {
  if (d.size() < 3) throw Error("unsupported dtype '" + d + "'");
  const char order = d[0];
  const std::string code = d.substr(1);
  for (const auto& t : kTypes) {
    if (code != std::string(1, t.kind) + std::to_string(t.size)) continue;
    if (order == '>' && t.size > 1)
      throw Error("big-endian data ('" + d + "') is not supported; convert it with "
                  "numpy's astype('<" + code + "')");
    if (order == '<' || order == '|' || (order == '>' && t.size == 1)) return t.type;
  }
  throw Error("unsupported dtype '" + d +
              "'; fp8emu reads float16, float32, float64, uint8, uint16 and int32");
}

std::string shape_text(const std::vector<std::size_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += std::to_string(shape[i]) + ", ";
  if (shape.size() > 1) s.resize(s.size() - 2);
  if (shape.size() == 1) s.resize(s.size() - 1);
  return s + ")";
}

// Returns the product of `shape` times `item`, or nothing on overflow.
std::optional<std::size_t> byte_count(const std::vector<std::size_t>& shape, std::size_t item) {
  std::size_t n = item;
  for (std::size_t d : shape) {
    if (d != 0 && n > std::numeric_limits<std::size_t>::max() / d) return std::nullopt;
    n *= d;
  }
  return n;
}

}  // namespace

std::size_t item_size(DType t) { return info(t).size; }
const char* dtype_name(DType t) { return info(t).name; }

std::size_t Array::size() const {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  return n;
}

Array parse(std::span<const std::uint8_t> bytes) {
  // 1. Magic string and version.
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kMagic, 6) != 0)
    throw Error("not a .npy file (the magic string \\x93NUMPY is missing)");
  const int major = bytes[6], minor = bytes[7];
  if ((major != 1 && major != 2) || minor != 0)
    throw Error("unsupported .npy version " + std::to_string(major) + "." +
                std::to_string(minor) + " (fp8emu reads 1.0 and 2.0)");
  // 2. Header length: 2 bytes in version 1, 4 in version 2, little-endian.
  const std::size_t pre = major == 1 ? 10 : 12;
  if (bytes.size() < pre) throw Error("truncated .npy file: the header length is missing");
  std::size_t hlen = std::size_t(bytes[8]) | std::size_t(bytes[9]) << 8;
  if (major == 2) hlen |= std::size_t(bytes[10]) << 16 | std::size_t(bytes[11]) << 24;
  if (bytes.size() - pre < hlen)
    throw Error("truncated .npy file: the header needs " + std::to_string(hlen) +
                " bytes, the file has " + std::to_string(bytes.size() - pre));
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + pre), hlen);
  for (char c : text)
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t')
      throw Error("malformed .npy header: a control character");
  // 3. The dictionary.
  Parser p(text);
  std::optional<std::string> descr;
  std::optional<bool> fortran;
  std::optional<std::vector<std::size_t>> shape;
  p.expect('{');
  while (!p.accept('}')) {
    const std::string key = p.string();
    p.expect(':');
    if (key == "descr" && !descr) {
      descr = p.string();
    } else if (key == "fortran_order" && !fortran) {
      fortran = p.boolean();
    } else if (key == "shape" && !shape) {
      shape.emplace();
      p.expect('(');
      while (!p.accept(')')) {
        shape->push_back(p.integer());
        if (shape->size() > 64) p.fail("more than 64 dimensions");
        if (!p.accept(',')) {
          p.expect(')');
          break;
        }
      }
    } else {
      p.fail("unexpected or repeated key '" + key + "'");
    }
    if (!p.accept(',')) {
      p.expect('}');
      break;
    }
  }
  p.skip_ws();
  if (!p.at_end()) p.fail("text after the dictionary");
  if (!descr || !fortran || !shape) p.fail("'descr', 'fortran_order' and 'shape' are required");
  // 4. Type, order, size.
  Array a;
  a.dtype = parse_descr(*descr);
  if (*fortran) {
    std::size_t big = 0;
    for (std::size_t d : *shape) big += d > 1;
    if (big > 1)
      throw Error("Fortran-order arrays are not supported; save a C-order copy "
                  "(numpy.ascontiguousarray)");
  }
  a.shape = std::move(*shape);
  const std::size_t body = bytes.size() - pre - hlen;
  const auto need = byte_count(a.shape, item_size(a.dtype));
  if (!need || *need != body)
    throw Error("shape " + shape_text(a.shape) + " of " + dtype_name(a.dtype) + " needs " +
                (need ? std::to_string(*need) : std::string("more than 2^64")) +
                " bytes of data, the file has " + std::to_string(body));
  a.data.assign(bytes.begin() + std::ptrdiff_t(pre + hlen), bytes.end());
  return a;
}

Array read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
  if (in.bad()) throw Error("cannot read '" + path + "'");
  try {
    return parse(bytes);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

std::vector<std::uint8_t> serialize(const Array& a) {
  const auto need = byte_count(a.shape, item_size(a.dtype));
  if (!need || *need != a.data.size())
    throw Error("shape " + shape_text(a.shape) + " of " + dtype_name(a.dtype) + " needs " +
                (need ? std::to_string(*need) : std::string("more than 2^64")) +
                " bytes, the array holds " + std::to_string(a.data.size()));
  const DTypeInfo& t = info(a.dtype);
  std::string h = std::string("{'descr': '") + (t.size == 1 ? '|' : '<') + t.kind +
                  std::to_string(t.size) + "', 'fortran_order': False, 'shape': " +
                  shape_text(a.shape) + ", }";
  // Pad with spaces and a final newline so that the data starts at a multiple of 64.
  std::size_t pre = 10;
  std::size_t total = (pre + h.size() + 1 + 63) / 64 * 64;
  if (total - pre > 0xFFFF) {
    pre = 12;
    total = (pre + h.size() + 1 + 63) / 64 * 64;
  }
  h.append(total - pre - h.size() - 1, ' ');
  h.push_back('\n');
  std::vector<std::uint8_t> out(kMagic, kMagic + 6);
  out.push_back(pre == 10 ? 1 : 2);
  out.push_back(0);
  const std::size_t hl = h.size();
  out.push_back(std::uint8_t(hl));
  out.push_back(std::uint8_t(hl >> 8));
  if (pre == 12) {
    out.push_back(std::uint8_t(hl >> 16));
    out.push_back(std::uint8_t(hl >> 24));
  }
  out.insert(out.end(), h.begin(), h.end());
  out.insert(out.end(), a.data.begin(), a.data.end());
  return out;
}

void write(const std::string& path, const Array& a) {
  const std::vector<std::uint8_t> bytes = serialize(a);
  try {
    write_file(path, bytes);
  } catch (const FileError& e) {
    throw Error(e.what());
  }
}

}  // namespace fp8emu::npy
