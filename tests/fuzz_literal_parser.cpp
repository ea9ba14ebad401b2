// SPDX-License-Identifier: LGPL-2.1-or-later
// libFuzzer target for emi::parse_literal. Rejections must be LiteralParseError; any other
// exception, crash or sanitizer report is a finding. Accepted input must yield printable JSON
// that the parser reads back the same way nlohmann's own parser does.
#include "document/literal_parser.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json value;
  try {
    value = emi::parse_literal(text);
  } catch (const emi::LiteralParseError&) {
    return 0;
  }

  (void)value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // The parser promises valid UTF-8, so the strict dump must not throw either.
  const std::string dumped = value.dump();
  // Its own JSON output must parse again, agreeing with nlohmann (NaN/inf already became null).
  if (emi::parse_literal(dumped) != nlohmann::json::parse(dumped)) std::abort();
  return 0;
}
