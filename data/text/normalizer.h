// The "normalizer" of tokenizer.json: rewrites text before pre-tokenization.
// Supported: NFC, NFD, NFKC, NFKD, Sequence, Replace, Prepend, Strip, ByteLevel.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "data/text/json_node.h"

namespace distillery::text {

class Normalizer {
 public:
  virtual ~Normalizer() = default;

  // Builds the normalizer described at `node`; unknown types fail naming the JSON path.
  static std::unique_ptr<Normalizer> parse(const JsonNode& node);

  // Returns false when `in` is left unchanged (so callers can keep using it); otherwise writes
  // the normalized text to `out` (which must not alias `in`) and returns true.
  virtual bool normalize(std::string_view in, std::string& out) const = 0;

  // Convenience: the normalized text.
  std::string apply(std::string_view in) const;
};

}  // namespace distillery::text
