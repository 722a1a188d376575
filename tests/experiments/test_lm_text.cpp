// The UTF-8 text reader of the language-model study: multi-byte characters as single
// tokens, every kind of invalid sequence refused with its byte offset, the vocabulary and
// ids, the 90/10 split, empty and short files, a missing file.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "lm/text.hpp"

using fp8sim::DataError;

namespace {

std::string temp_file(const std::string& name, const std::string& bytes) {
  static const std::string d = [] {
    std::string t = (std::filesystem::temp_directory_path() / "fp8lm-text-XXXXXX").string();
    return std::string(mkdtemp(t.data()));
  }();
  const std::string path = d + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// The message of the DataError that tokenize throws, or "" when it throws none.
std::string error_of(const std::string& bytes) {
  try {
    lm::tokenize(bytes, "t.txt");
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

std::string repeat(const std::string& s, int n) {
  std::string r;
  for (int i = 0; i < n; ++i) r += s;
  return r;
}

}  // namespace

TEST_CASE("lm text: UTF-8 of 1 to 4 bytes decodes to code points and back", "[lm][text]") {
  // a (1 byte), é U+00E9 (2), € U+20AC (3), 𝄞 U+1D11E (4), and the edges of each length.
  const std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9D\x84\x9E\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF"
                        "\xF0\x90\x80\x80\xF4\x8F\xBF\xBF";
  const std::vector<char32_t> want = {0x61, 0xE9, 0x20AC, 0x1D11E, 0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000, 0x10FFFF};
  const std::vector<char32_t> got = lm::decode_utf8(s, "t");
  CHECK(got == want);
  std::string back;
  for (char32_t c : got) back += lm::encode_utf8(c);
  CHECK(back == s);
}

TEST_CASE("lm text: invalid UTF-8 is refused with the byte offset of the first bad sequence", "[lm][text]") {
  struct Case {
    std::string bytes, offset, why;
  };
  const std::vector<Case> cases = {
      {"ab\x80", "byte 2", "continuation byte without a lead byte"},
      {"abc\xC0\xAF", "byte 3", "never occurs"},          // C0, C1: always overlong
      {"\xC1\xBF", "byte 0", "never occurs"},
      {"x\xE0\x80\xAF", "byte 1", "overlong"},            // U+002F in 3 bytes
      {"\xF0\x80\x80\xAF", "byte 0", "overlong"},         // in 4 bytes
      {"ok \xED\xA0\x80", "byte 3", "surrogate"},         // U+D800
      {"\xF4\x90\x80\x80", "byte 0", "above U+10FFFF"},   // U+110000
      {"\xF5\x80\x80\x80", "byte 0", "never occurs"},
      {"\xFF", "byte 0", "never occurs"},
      {"ab\xE2\x82", "byte 2", "not a continuation byte"},
      {"\xE2\x41\x41", "byte 0", "not a continuation byte"},
      {"\xC3\xA9\xC3", "byte 2", "not a continuation byte"},  // offsets count bytes, not characters
  };
  for (const Case& c : cases) {
    const std::string e = error_of(c.bytes + repeat("x", 200));
    INFO(e);
    CHECK(e.find("t.txt: invalid UTF-8 at " + c.offset + " ") != std::string::npos);
    CHECK(e.find(c.why) != std::string::npos);
  }
  CHECK(cases.size() == 12);
  // A sequence cut short by the end of the text.
  const std::string e = error_of(repeat("x", 200) + "\xF0\x9D\x84");
  CHECK(e.find("t.txt: invalid UTF-8 at byte 200 (a sequence cut short by the end of the file") != std::string::npos);
}

TEST_CASE("lm text: the vocabulary is the sorted distinct code points, ids index it", "[lm][text]") {
  // 100 characters: "ba€é" 25 times; vocabulary a < b < é < € (code-point order).
  const lm::Text t = lm::tokenize(repeat("ba\xE2\x82\xAC\xC3\xA9", 25), "t.txt");
  CHECK(t.bytes == 25 * 7);
  CHECK(t.chars() == 100);
  CHECK(t.vocab == std::vector<char32_t>{U'a', U'b', 0xE9, 0x20AC});
  CHECK(t.split.vocab == 4);
  REQUIRE(t.split.train.size() >= 4);
  CHECK(t.split.train[0] == 1);  // b
  CHECK(t.split.train[1] == 0);  // a
  CHECK(t.split.train[2] == 3);  // €
  CHECK(t.split.train[3] == 2);  // é
}

TEST_CASE("lm text: the first 90% of the characters train, the last 10% validate", "[lm][text]") {
  for (int n : {100, 101, 109, 110, 1234}) {
    std::string s;
    for (int i = 0; i < n; ++i) s += char('a' + i % 26);
    const lm::Text t = lm::tokenize(s, "t.txt");
    const std::size_t val = std::size_t(n) / 10;
    CHECK(t.split.val.size() == val);
    CHECK(t.split.train.size() == std::size_t(n) - val);
    // The validation part is the text's end, in order.
    CHECK(t.split.val.back() == (n - 1) % 26);
    CHECK(t.split.train.front() == 0);
    CHECK(t.split.val.front() == int(std::size_t(n) - val) % 26);
  }
}

TEST_CASE("lm text: an empty, a too short and a one-character file are refused", "[lm][text]") {
  CHECK(error_of("").find("t.txt: 0 characters (an empty file)") != std::string::npos);
  // 99 characters in 198 bytes: the limit counts characters.
  CHECK(error_of(repeat("\xC3\xA9", 99)).find("t.txt: 99 characters; a text needs at least 100") != std::string::npos);
  CHECK(error_of(repeat("\xC3\xA9", 50) + repeat("e", 50)).empty());
  CHECK(error_of(repeat("z", 500)).find("one distinct character") != std::string::npos);
}

TEST_CASE("lm text: load reads a file, and the message for a missing file names the prepare command", "[lm][text]") {
  const std::string text = repeat("In the beginning \xE2\x80\x94 ", 10);
  const lm::Text t = lm::load(temp_file("ok.txt", text));
  CHECK(t.bytes == std::int64_t(text.size()));
  CHECK(t.chars() == 190);
  CHECK(lm::describe(t).find("190 characters") != std::string::npos);
  try {
    lm::load("/nonexistent/bible.txt");
    FAIL("no error for a missing file");
  } catch (const DataError& e) {
    CHECK(std::string(e.what()).find("/nonexistent/bible.txt: no such file") != std::string::npos);
    CHECK(std::string(e.what()).find("bash tools/run.sh main") != std::string::npos);
  }
  CHECK_THROWS_AS(lm::load(temp_file("", "")), DataError);  // the directory itself
  const std::string bad = temp_file("bad.txt", repeat("abc", 40) + "\xFE");
  CHECK_THROWS_WITH(lm::load(bad), Catch::Contains(bad + ": invalid UTF-8 at byte 120"));
}
