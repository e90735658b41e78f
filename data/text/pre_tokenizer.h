// The "pre_tokenizer" of tokenizer.json: splits normalized text into the pieces ("words") the
// model encodes one by one. Supported: Split, ByteLevel, Digits, Sequence.
//
// Pieces are views of the text. ByteLevel does not rewrite bytes into its alphabet; it marks
// pieces as byte-level and the BPE model reads their bytes through the alphabet, which is the
// same thing without the copy. Only when something must look at the rewritten characters (a
// pre-tokenizer after ByteLevel) are they materialized.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/text/json_node.h"

namespace distillery::text {

struct Piece {
  std::string_view text;
  bool byte_level = false;  // the model sees text through the byte-level alphabet
};

// Buffers one thread reuses across encode() calls, so pre-tokenization does not allocate.
struct PreTokenizeScratch {
  std::vector<Piece> pieces;
  std::vector<Piece> next;
  std::vector<std::pair<size_t, size_t>> matches;
  struct Span {
    size_t begin, end;
    bool is_match;
  };
  std::vector<Span> spans;
  std::deque<std::string> owned;  // text made during pre-tokenization (stable addresses)

  // The text of `piece` as characters: byte-level pieces are rewritten into `owned`.
  std::string_view materialize(const Piece& piece);
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;

  // Builds the pre-tokenizer described at `node`; unknown types fail naming the JSON path.
  static std::unique_ptr<PreTokenizer> parse(const JsonNode& node);

  // Splits scratch.pieces in place (empty pieces are dropped, as the reference drops them).
  virtual void pre_tokenize(PreTokenizeScratch& scratch) const = 0;
};

}  // namespace distillery::text
