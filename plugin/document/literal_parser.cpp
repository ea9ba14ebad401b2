// SPDX-License-Identifier: LGPL-2.1-or-later
// Recursive-descent parser for Python literals (str()/repr() output) and JSON.
//
// Accepted grammar, in short:
//   value   := string | number | name | list | tuple | dict | set | numpy-scalar
//   string  := '...' or "..." with Python/JSON escapes; no prefixes (b'', r'', f'' are rejected,
//              because bytes have no faithful UTF-8 text form and repr() never prints the others)
//   number  := [+-] digits [. digits] [e [+-] digits], or [+-] nan|inf|NaN|Infinity; integers
//              beyond 64 bits become doubles, and out-of-range floats become inf or 0 as in Python
//   name    := True False None true false null
//   list    := '[' values ']'   tuple := '(' values ')'   set := '{' values '}'
//              | set(x) | frozenset(x), x empty or a list, tuple or set
//   dict    := '{' key ':' value, ... '}'   (trailing commas allowed everywhere Python allows them);
//              non-string keys become their Python str() text: 1 -> "1", True -> "True", None -> "None"
//   numpy-scalar := np.X(value) | numpy.X(value) | np.True_ | np.False_ (and numpy.*)
//
// Containers and numpy wrappers nest at most 256 deep, so hostile input cannot exhaust the stack.
// The result is always valid UTF-8: raw bytes in strings are validated, and escapes naming a lone
// UTF-16 surrogate (which Python allows in str but UTF-8 cannot carry) become U+FFFD.
// Unknown escapes such as '\d' are kept verbatim, as Python does.
#include "document/literal_parser.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <utility>

namespace emi {
namespace {

using nlohmann::json;

constexpr int kMaxNesting = 256;
constexpr char32_t kReplacementCharacter = 0xFFFD;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_high_surrogate(char32_t cp) { return cp >= 0xD800 && cp <= 0xDBFF; }
bool is_low_surrogate(char32_t cp) { return cp >= 0xDC00 && cp <= 0xDFFF; }

void append_utf8(std::string& out, char32_t cp) {
  if (cp >= 0xD800 && cp <= 0xDFFF) cp = kReplacementCharacter;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Bytes that end the plain-character fast path inside a string literal.
constexpr std::array<bool, 256> make_string_stop_table() {
  std::array<bool, 256> table{};
  table['\''] = table['"'] = table['\\'] = table['\n'] = table['\r'] = true;
  for (int byte = 0x80; byte < 0x100; ++byte) table[byte] = true;
  return table;
}
constexpr std::array<bool, 256> kStringStop = make_string_stop_table();

// Python's repr() of a float: shortest round-trip digits, exponent form outside 1e-4 <= |x| < 1e16.
std::string python_float_text(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";

  char scientific[32];
  const auto printed = std::to_chars(std::begin(scientific), std::end(scientific), value,
                                     std::chars_format::scientific);
  const std::string_view sci(scientific, static_cast<std::size_t>(printed.ptr - scientific));
  // sci looks like "-1.2345e+02": split into sign, digits and exponent.
  const std::size_t e_pos = sci.find('e');
  const bool negative = sci.front() == '-';
  std::string digits;
  for (char c : sci.substr(negative ? 1 : 0, e_pos - (negative ? 1 : 0))) {
    if (c != '.') digits += c;
  }
  int exponent = 0;
  const std::string_view exponent_text = sci.substr(e_pos + (sci[e_pos + 1] == '+' ? 2 : 1));
  std::from_chars(exponent_text.data(), exponent_text.data() + exponent_text.size(), exponent);

  std::string text = negative ? "-" : "";
  const int point = exponent + 1;  // digits are 0.DDDD * 10^point
  const int digit_count = static_cast<int>(digits.size());
  if (point <= -4 || point > 16) {
    text += digits[0];
    if (digit_count > 1) text.append(".").append(digits, 1, std::string::npos);
    text += exponent < 0 ? "e-" : "e+";
    const int magnitude = std::abs(exponent);
    if (magnitude < 10) text += '0';
    text += std::to_string(magnitude);
  } else if (point <= 0) {
    text.append("0.").append(static_cast<std::size_t>(-point), '0').append(digits);
  } else if (point >= digit_count) {
    text.append(digits).append(static_cast<std::size_t>(point - digit_count), '0').append(".0");
  } else {
    text.append(digits, 0, static_cast<std::size_t>(point))
        .append(".")
        .append(digits, static_cast<std::size_t>(point), std::string::npos);
  }
  return text;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  json parse_document() {
    json value = parse_value();
    skip_whitespace();
    if (!at_end()) fail("unexpected " + describe_current() + " after the value", pos_);
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& message, std::size_t offset) const {
    throw LiteralParseError(message, offset);
  }
  // Names go into error messages, which should stay short whatever the input holds.
  static std::string quoted_name(std::string_view name) {
    constexpr std::size_t kMaxShown = 40;
    if (name.size() <= kMaxShown) return "'" + std::string(name) + "'";
    return "'" + std::string(name.substr(0, kMaxShown)) + "...'";
  }

  [[noreturn]] void fail_expected(const char* expected) const {
    fail(std::string("expected ") + expected + ", found " + describe_current(), pos_);
  }

  std::string describe_current() const {
    if (at_end()) return "end of input";
    const auto byte = static_cast<unsigned char>(text_[pos_]);
    if (byte >= 0x20 && byte < 0x7F) return std::string("character '") + text_[pos_] + "'";
    static constexpr char kHex[] = "0123456789abcdef";
    return std::string("byte 0x") + kHex[byte >> 4] + kHex[byte & 0xF];
  }

  bool at_end() const { return pos_ >= text_.size(); }
  // '\0' doubles as the end-of-input marker; a real NUL byte is rejected wherever it matters.
  char peek(std::size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }

  void skip_whitespace() {
    while (!at_end()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\n' && c != '\t' && c != '\r' && c != '\f') return;
      ++pos_;
    }
  }

  void enter_nesting() {
    if (++depth_ > kMaxNesting) fail("nesting deeper than " + std::to_string(kMaxNesting), pos_);
  }
  void leave_nesting() { --depth_; }

  json parse_value() {
    skip_whitespace();
    const char c = peek();
    if (c == '\'' || c == '"') return parse_string();
    if (is_digit(c) || c == '-' || c == '+' || c == '.') return parse_number();
    if (c == '[') return parse_sequence(']');
    if (c == '(') return parse_sequence(')');
    if (c == '{') return parse_braces();
    if (is_name_start(c)) return parse_name();
    if (at_end()) fail("unexpected end of input", pos_);
    fail("unexpected " + describe_current(), pos_);
  }

  // Lists and tuples. A parenthesised value without a comma is just that value, as in Python.
  json parse_sequence(char closer) {
    enter_nesting();
    ++pos_;
    json items = json::array();
    bool saw_comma = false;
    skip_whitespace();
    while (peek() != closer) {
      items.push_back(parse_value());
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        saw_comma = true;
        skip_whitespace();
      } else if (peek() != closer) {
        fail_expected(closer == ']' ? "',' or ']'" : "',' or ')'");
      }
    }
    ++pos_;
    leave_nesting();
    if (closer == ')' && !saw_comma && items.size() == 1) return std::move(items[0]);
    return items;
  }

  // '{' starts a dict or a set; the first element tells which.
  json parse_braces() {
    enter_nesting();
    ++pos_;
    skip_whitespace();
    if (peek() == '}') {
      ++pos_;
      leave_nesting();
      return json::object();
    }
    const std::size_t first_offset = pos_;
    json first = parse_value();
    skip_whitespace();
    json result = peek() == ':' ? parse_dict_rest(std::move(first), first_offset)
                                : parse_set_rest(std::move(first));
    leave_nesting();
    return result;
  }

  json parse_dict_rest(json first_key, std::size_t first_key_offset) {
    json dict = json::object();
    auto& members = dict.get_ref<json::object_t&>();
    std::string key = dict_key_text(std::move(first_key), first_key_offset);
    while (true) {
      skip_whitespace();
      if (peek() != ':') fail_expected("':'");
      ++pos_;
      members.insert_or_assign(std::move(key), parse_value());
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        skip_whitespace();
      } else if (peek() != '}') {
        fail_expected("',' or '}'");
      }
      if (peek() == '}') break;
      const std::size_t key_offset = pos_;
      key = dict_key_text(parse_value(), key_offset);
    }
    ++pos_;
    return dict;
  }

  json parse_set_rest(json first) {
    json items = json::array();
    items.push_back(std::move(first));
    while (true) {
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        skip_whitespace();
      } else if (peek() != '}') {
        fail_expected("',' or '}'");
      }
      if (peek() == '}') break;
      items.push_back(parse_value());
    }
    ++pos_;
    return items;
  }

  // JSON object keys must be strings; other hashable scalars take the text Python's str() gives.
  std::string dict_key_text(json key, std::size_t offset) const {
    switch (key.type()) {
      case json::value_t::string:
        return std::move(key.get_ref<std::string&>());
      case json::value_t::boolean:
        return key.get<bool>() ? "True" : "False";
      case json::value_t::null:
        return "None";
      case json::value_t::number_integer:
        return std::to_string(key.get<std::int64_t>());
      case json::value_t::number_unsigned:
        return std::to_string(key.get<std::uint64_t>());
      case json::value_t::number_float:
        return python_float_text(key.get<double>());
      default:
        fail("dict key must be a string, number, bool or None", offset);
    }
  }

  std::string_view read_dotted_name() {
    const std::size_t start = pos_;
    while (true) {
      while (is_name_char(peek())) ++pos_;
      if (peek() != '.' || !is_name_start(peek(1))) break;
      ++pos_;
    }
    return text_.substr(start, pos_ - start);
  }

  json parse_name() {
    const std::size_t start = pos_;
    const std::string_view name = read_dotted_name();

    if (name == "True" || name == "true") return true;
    if (name == "False" || name == "false") return false;
    if (name == "None" || name == "null") return nullptr;
    if (name == "nan" || name == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (name == "inf" || name == "Infinity") return std::numeric_limits<double>::infinity();
    if (name == "np.True_" || name == "numpy.True_") return true;
    if (name == "np.False_" || name == "numpy.False_") return false;

    if (peek() == '\'' || peek() == '"') {
      fail("string prefix " + quoted_name(name) + " is not supported", start);
    }
    const bool is_numpy = name.rfind("np.", 0) == 0 || name.rfind("numpy.", 0) == 0;
    const bool is_set = name == "set" || name == "frozenset";
    skip_whitespace();
    if ((!is_numpy && !is_set) || peek() != '(') {
      fail("unknown name " + quoted_name(name), start);
    }

    enter_nesting();
    ++pos_;
    skip_whitespace();
    json value;
    if (is_set && peek() == ')') {
      value = json::array();
    } else {
      const std::size_t argument_offset = pos_;
      value = parse_value();
      if (is_set && !value.is_array()) {
        fail(std::string(name) + "() needs a list, tuple or set", argument_offset);
      }
      skip_whitespace();
    }
    if (peek() != ')') fail_expected("')'");
    ++pos_;
    leave_nesting();
    return value;
  }

  json parse_number() {
    const std::size_t start = pos_;
    bool negative = false;
    if (peek() == '-' || peek() == '+') {
      negative = peek() == '-';
      ++pos_;
      if (is_name_start(peek())) return parse_signed_special_float(negative, start);
    }

    const std::size_t digits_start = pos_;
    while (is_digit(peek())) ++pos_;
    const std::size_t integer_end = pos_;
    bool is_float = false;
    if (peek() == '.') {
      is_float = true;
      ++pos_;
      while (is_digit(peek())) ++pos_;
    }
    const std::size_t mantissa_end = pos_;
    if (mantissa_end - digits_start == (is_float ? 1u : 0u)) fail("invalid number", start);

    // An exponent only counts when digits follow; "1e" is the number 1 followed by garbage.
    int exponent_sign = 1;
    std::size_t exponent_digits = 0;
    if (peek() == 'e' || peek() == 'E') {
      const std::size_t sign_length = (peek(1) == '+' || peek(1) == '-') ? 1 : 0;
      if (is_digit(peek(1 + sign_length))) {
        is_float = true;
        exponent_sign = peek(1) == '-' ? -1 : 1;
        pos_ += 1 + sign_length;
        exponent_digits = pos_;
        while (is_digit(peek())) ++pos_;
      }
    }

    const char* first = text_.data() + digits_start;
    const char* last = text_.data() + pos_;
    if (!is_float) {
      std::uint64_t magnitude = 0;
      if (std::from_chars(first, last, magnitude).ec == std::errc()) {
        constexpr auto kInt64Max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
        if (!negative && magnitude <= kInt64Max) return static_cast<std::int64_t>(magnitude);
        if (!negative) return magnitude;
        if (magnitude <= kInt64Max + 1) return static_cast<std::int64_t>(0 - magnitude);
      }
      // Too big for 64 bits: fall through to a double, the nearest JSON can hold.
    }

    double value = 0.0;
    if (std::from_chars(first, last, value).ec == std::errc::result_out_of_range) {
      const std::string_view exponent_text =
          exponent_digits ? text_.substr(exponent_digits, pos_ - exponent_digits) : std::string_view();
      value = out_of_range_value(text_.substr(digits_start, integer_end - digits_start),
                                 text_.substr(integer_end, mantissa_end - integer_end),
                                 exponent_sign, exponent_text);
    }
    return negative ? -value : value;
  }

  // std::from_chars leaves the value untouched on overflow or underflow; Python gives inf or 0.
  static double out_of_range_value(std::string_view integer_digits, std::string_view point_and_fraction,
                                   int exponent_sign, std::string_view exponent_digits) {
    // Decimal order of magnitude of the leading non-zero digit, before the exponent. Zero is never
    // out of range, so such a digit exists.
    long order = 0;
    const std::size_t leading = integer_digits.find_first_not_of('0');
    if (leading != std::string_view::npos) {
      order = static_cast<long>(integer_digits.size() - leading) - 1;
    } else {
      const std::size_t fraction_leading = point_and_fraction.find_first_not_of(".0");
      order = -static_cast<long>(fraction_leading);  // '.' sits at index 0, so this is -(zeros + 1)
    }
    // Saturate far beyond any possible input length: from there on only the exponent's sign matters.
    constexpr long kExponentCap = 100'000'000'000'000'000L;
    long exponent = 0;
    for (char digit : exponent_digits) {
      exponent = std::min(exponent * 10 + (digit - '0'), kExponentCap);
    }
    return order + exponent_sign * exponent > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  }

  json parse_signed_special_float(bool negative, std::size_t start) {
    const std::string_view name = read_dotted_name();
    if (name == "inf" || name == "Infinity") {
      return negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    }
    if (name == "nan" || name == "NaN") return std::numeric_limits<double>::quiet_NaN();
    fail("invalid number", start);
  }

  json parse_string() {
    const std::size_t open_offset = pos_;
    const char quote = text_[pos_++];
    std::string out;
    std::size_t run_start = pos_;
    while (true) {
      while (!at_end() && !kStringStop[static_cast<unsigned char>(text_[pos_])]) ++pos_;
      if (at_end()) fail("unterminated string", open_offset);
      const char c = text_[pos_];
      if (c == quote) {
        out.append(text_, run_start, pos_ - run_start);
        ++pos_;
        return out;
      }
      if (c == '\n' || c == '\r') fail("unterminated string", open_offset);
      if (c == '\\') {
        out.append(text_, run_start, pos_ - run_start);
        decode_escape(out, open_offset);
        run_start = pos_;
      } else if (static_cast<unsigned char>(c) >= 0x80) {
        skip_utf8_sequence();
      } else {
        ++pos_;  // the other quote character is ordinary text here
      }
    }
  }

  // Validates one multi-byte UTF-8 sequence in place; it is copied along with its run.
  void skip_utf8_sequence() {
    const auto byte = [this](std::size_t ahead) { return static_cast<unsigned char>(peek(ahead)); };
    const unsigned char lead = byte(0);
    std::size_t length = 0;
    unsigned char second_min = 0x80;
    unsigned char second_max = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) second_min = 0xA0;  // overlong
      if (lead == 0xED) second_max = 0x9F;  // surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) second_min = 0x90;  // overlong
      if (lead == 0xF4) second_max = 0x8F;  // beyond U+10FFFF
    } else {
      fail("invalid UTF-8 in string", pos_);
    }
    if (byte(1) < second_min || byte(1) > second_max) fail("invalid UTF-8 in string", pos_);
    for (std::size_t i = 2; i < length; ++i) {
      if (byte(i) < 0x80 || byte(i) > 0xBF) fail("invalid UTF-8 in string", pos_);
    }
    pos_ += length;
  }

  // Reads exactly `count` hex digits; the escape is invalid otherwise.
  char32_t read_hex_digits(std::size_t count, const char* invalid_message, std::size_t escape_offset) {
    char32_t value = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const int digit = hex_value(peek());
      if (digit < 0) fail(invalid_message, escape_offset);
      value = value * 16 + static_cast<char32_t>(digit);
      ++pos_;
    }
    return value;
  }

  void decode_escape(std::string& out, std::size_t open_offset) {
    const std::size_t escape_offset = pos_;
    ++pos_;  // backslash
    if (at_end()) fail("unterminated string", open_offset);
    const char c = text_[pos_++];
    switch (c) {
      case '\\': out += '\\'; return;
      case '\'': out += '\''; return;
      case '"': out += '"'; return;
      case '/': out += '/'; return;  // JSON only; Python would keep the backslash
      case 'n': out += '\n'; return;
      case 'r': out += '\r'; return;
      case 't': out += '\t'; return;
      case 'b': out += '\b'; return;
      case 'f': out += '\f'; return;
      case 'v': out += '\v'; return;
      case 'a': out += '\a'; return;
      case '\n': return;  // line continuation
      case '\r':
        if (peek() == '\n') ++pos_;
        return;
      case 'x':
        append_utf8(out, read_hex_digits(2, "invalid \\x escape", escape_offset));
        return;
      case 'U': {
        const char32_t cp = read_hex_digits(8, "invalid \\U escape", escape_offset);
        if (cp > 0x10FFFF) fail("invalid \\U escape", escape_offset);
        append_utf8(out, cp);
        return;
      }
      case 'u': {
        char32_t cp = read_hex_digits(4, "invalid \\u escape", escape_offset);
        // JSON spells characters beyond the BMP as a pair of \u escapes.
        if (is_high_surrogate(cp) && peek() == '\\' && peek(1) == 'u') {
          const std::size_t saved = pos_;
          pos_ += 2;
          const char32_t low = read_hex_digits(4, "invalid \\u escape", saved);
          if (is_low_surrogate(low)) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else {
            pos_ = saved;  // not a pair: the second escape is decoded on its own
          }
        }
        append_utf8(out, cp);
        return;
      }
      case 'N':
        fail("\\N{...} escapes are not supported", escape_offset);
      default:
        break;
    }
    if (c >= '0' && c <= '7') {
      char32_t cp = static_cast<char32_t>(c - '0');
      for (int i = 0; i < 2 && peek() >= '0' && peek() <= '7'; ++i) {
        cp = cp * 8 + static_cast<char32_t>(peek() - '0');
        ++pos_;
      }
      append_utf8(out, cp);
      return;
    }
    // Python keeps unknown escapes verbatim; the escaped character goes through the normal path.
    out += '\\';
    --pos_;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

nlohmann::json parse_literal(std::string_view text) { return Parser(text).parse_document(); }

}  // namespace emi
