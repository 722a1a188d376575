// The UTF-8 text reader (see text.hpp).
#include "lm/text.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <sys/stat.h>

namespace lm {

std::vector<char32_t> decode_utf8(const std::string& bytes, const std::string& name) {
  std::vector<char32_t> out;
  out.reserve(bytes.size());
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  const auto fail = [&](const char* why) {
    char b[16];
    std::snprintf(b, sizeof b, "0x%02X", unsigned(p[i]));
    throw DataError(name + ": invalid UTF-8 at byte " + std::to_string(i) + " (" + why + ", first byte " + b +
                    "); the reader takes UTF-8 text only");
  };
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) {
      out.push_back(char32_t(c));
      ++i;
      continue;
    }
    int len = 0;
    char32_t cp = 0, min = 0;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07, min = 0x10000;
    else if (c >= 0x80 && c <= 0xBF) fail("a continuation byte without a lead byte");
    else fail("a byte that never occurs in UTF-8");
    if (i + std::size_t(len) > n) fail("a sequence cut short by the end of the file");
    for (int k = 1; k < len; ++k) {
      const unsigned d = p[i + std::size_t(k)];
      if ((d & 0xC0) != 0x80) fail("a sequence cut short by a byte that is not a continuation byte");
      cp = (cp << 6) | (d & 0x3F);
    }
    if (cp < min) fail("an overlong encoding");
    if (cp >= 0xD800 && cp <= 0xDFFF) fail("a UTF-16 surrogate");
    if (cp > 0x10FFFF) fail("a code point above U+10FFFF");
    out.push_back(cp);
    i += std::size_t(len);
  }
  return out;
}

std::string encode_utf8(char32_t c) {
  std::string s;
  if (c < 0x80) {
    s += char(c);
  } else if (c < 0x800) {
    s += char(0xC0 | (c >> 6));
    s += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += char(0xE0 | (c >> 12));
    s += char(0x80 | ((c >> 6) & 0x3F));
    s += char(0x80 | (c & 0x3F));
  } else {
    s += char(0xF0 | (c >> 18));
    s += char(0x80 | ((c >> 12) & 0x3F));
    s += char(0x80 | ((c >> 6) & 0x3F));
    s += char(0x80 | (c & 0x3F));
  }
  return s;
}

Text tokenize(const std::string& bytes, const std::string& name) {
  Text t;
  t.path = name;
  t.bytes = std::int64_t(bytes.size());
  const std::vector<char32_t> cps = decode_utf8(bytes, name);
  if (std::int64_t(cps.size()) < kMinChars)
    throw DataError(name + ": " + std::to_string(cps.size()) + " characters" +
                    (cps.empty() ? " (an empty file)" : "") + "; a text needs at least " +
                    std::to_string(kMinChars) + " for its training and validation parts");
  t.vocab = cps;
  std::sort(t.vocab.begin(), t.vocab.end());
  t.vocab.erase(std::unique(t.vocab.begin(), t.vocab.end()), t.vocab.end());
  if (t.vocab.size() < 2) throw DataError(name + ": one distinct character; a language model needs at least 2");
  const std::size_t train = cps.size() - cps.size() * std::size_t(kValTenths) / 10;
  t.split.vocab = std::int64_t(t.vocab.size());
  t.split.train.reserve(train);
  t.split.val.reserve(cps.size() - train);
  for (std::size_t i = 0; i < cps.size(); ++i) {
    const auto id = std::int32_t(std::lower_bound(t.vocab.begin(), t.vocab.end(), cps[i]) - t.vocab.begin());
    (i < train ? t.split.train : t.split.val).push_back(id);
  }
  return t;
}

Text load(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    if (e == ENOENT)
      throw DataError(path + ": no such file; prepare the King James Bible with " + std::string(kPrepareCommand) +
                      ", or give another UTF-8 text with --data FILE");
    throw DataError(path + ": " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) throw DataError(path + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot open: " + std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw DataError(path + ": read error");
  return tokenize(bytes, path);
}

std::string describe(const Text& t) {
  std::ostringstream s;
  s << t.path << ": " << t.bytes << " bytes, " << t.chars() << " characters, " << t.vocab.size()
    << " distinct (train " << t.split.train.size() << ", validation " << t.split.val.size() << ")";
  return s.str();
}

}  // namespace lm
