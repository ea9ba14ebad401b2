// SPDX-License-Identifier: LGPL-2.1-or-later
// A parser for what a user script returns: Python literals (as printed by str()/repr()) and JSON,
// turned into nlohmann::json without ever evaluating code.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace emi {

class LiteralParseError : public std::runtime_error {
 public:
  LiteralParseError(const std::string& what, std::size_t offset)
      : std::runtime_error(what), offset_(offset) {}
  // Byte offset in the input where parsing failed.
  std::size_t offset() const noexcept { return offset_; }

 private:
  std::size_t offset_;
};

// Parses one value (surrounding whitespace allowed, nothing else after it).
// Throws LiteralParseError on anything that is not a literal.
nlohmann::json parse_literal(std::string_view text);

}  // namespace emi
