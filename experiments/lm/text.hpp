// Character-level text for the language-model study: any UTF-8 file, read whole and
// validated (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), one
// token per Unicode code point. The vocabulary is the sorted set of distinct code points
// of the whole file (ids 0 .. V-1 in code-point order), so the training and validation
// parts share it; the first 90% of the characters are the training part, the last 10%
// the validation part (a fixed split, no shuffling).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fp8sim/dataset.hpp"
#include "fp8sim/lm.hpp"

namespace lm {

using fp8sim::DataError;

/// Where the setup command (tools/run.sh main) writes the King James Bible, relative to
/// the repository root, and the command that prepares it.
inline constexpr const char* kDefaultData = "data/bible-kjv.txt";
inline constexpr const char* kPrepareCommand =
    "bash tools/run.sh main (or: apt-get install bible-kjv && mkdir -p data && "
    "bible Genesis1:1-Revelation22:21 > data/bible-kjv.txt)";

/// The validation part's share of the characters, in tenths.
inline constexpr int kValTenths = 1;
/// The fewest characters a text may have (each part must hold some characters).
inline constexpr std::int64_t kMinChars = 100;

/// A text read as code points.
struct Text {
  std::string path;
  std::int64_t bytes = 0;
  std::vector<char32_t> vocab;  ///< Sorted distinct code points; vocab[id] is the token id's character.
  fp8sim::TokenSplit split;     ///< Token ids; split.vocab == vocab.size().
  std::int64_t chars() const { return std::int64_t(split.train.size() + split.val.size()); }
};

/// Decodes UTF-8 into code points; throws DataError "NAME: invalid UTF-8 at byte OFFSET
/// (...)" at the first invalid sequence (`name` names the source in the message).
std::vector<char32_t> decode_utf8(const std::string& bytes, const std::string& name);

/// Encodes one code point as UTF-8.
std::string encode_utf8(char32_t c);

/// Tokenizes `bytes` (the contents of `name`): vocabulary, ids, the 90/10 split; throws
/// DataError for invalid UTF-8 or fewer than kMinChars characters.
Text tokenize(const std::string& bytes, const std::string& name);

/// Reads and tokenizes a file; a missing file's message names kPrepareCommand.
Text load(const std::string& path);

/// One line: "PATH: B bytes, C characters, V distinct (train T, validation W)".
std::string describe(const Text& t);

}  // namespace lm
