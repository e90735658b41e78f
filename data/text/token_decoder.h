// The "decoder" of tokenizer.json: turns the token strings of some ids back into text.
// Supported: ByteLevel, Sequence, Replace, Fuse, Strip, ByteFallback, BPEDecoder. Each step
// rewrites the list of token strings (the reference's decode_chain); decode() joins the result.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/text/json_node.h"

namespace distillery::text {

class TokenDecoder {
 public:
  virtual ~TokenDecoder() = default;

  static std::unique_ptr<TokenDecoder> parse(const JsonNode& node);

  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

}  // namespace distillery::text
