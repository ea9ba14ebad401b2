// SPDX-License-Identifier: LGPL-2.1-or-later
// Tests for emi::parse_literal: Python literal and JSON input, error offsets, and a randomized
// round trip through Python-repr-style and JSON printing.
#include "document/literal_parser.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <string_view>

namespace {

using emi::LiteralParseError;
using emi::parse_literal;
using nlohmann::json;

constexpr std::size_t kNoError = std::numeric_limits<std::size_t>::max();

// Offset reported for text that must not parse; kNoError (and a test failure) if it parsed.
std::size_t error_offset(std::string_view text) {
  try {
    const json value = parse_literal(text);
    ADD_FAILURE() << "expected an error for <" << text << ">, got " << value.dump();
  } catch (const LiteralParseError& error) {
    EXPECT_STRNE(error.what(), "");
    return error.offset();
  }
  return kNoError;
}

// Structural equality that tells floats from integers, treats NaN as equal to NaN and keeps -0.0.
bool same(const json& a, const json& b) {
  if (a.is_number_float() != b.is_number_float()) return false;
  if (a.is_number_float()) {
    const double x = a.get<double>();
    const double y = b.get<double>();
    if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
    return x == y && std::signbit(x) == std::signbit(y);
  }
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!same(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_object() && b.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      const auto other = b.find(it.key());
      if (other == b.end() || !same(it.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

#define EXPECT_SAME(actual, expected) \
  EXPECT_PRED2(same, actual, expected) << (actual).dump() << " vs " << (expected).dump()

// ---------------------------------------------------------------------------------------------
// Seed-style output

TEST(LiteralParser, SeedStylePythonStr) {
  const json expected = json::array({{{"predicted_class", "black swan"}, {"probability", 97.1}}});
  EXPECT_SAME(parse_literal("[{'predicted_class': 'black swan', 'probability': 97.1}]"), expected);
  EXPECT_SAME(parse_literal(R"([{"predicted_class": "black swan", "probability": 97.1}])"), expected);
}

TEST(LiteralParser, SeedStyleProbabilityIsFloatEvenWhenWhole) {
  const json value = parse_literal("[{'predicted_class': 'marching', 'probability': 63.0}]");
  EXPECT_TRUE(value[0]["probability"].is_number_float());
  EXPECT_EQ(value[0]["probability"].get<double>(), 63.0);
}

// ---------------------------------------------------------------------------------------------
// Scalars

TEST(LiteralParser, Constants) {
  EXPECT_SAME(parse_literal("True"), json(true));
  EXPECT_SAME(parse_literal("False"), json(false));
  EXPECT_SAME(parse_literal("None"), json(nullptr));
  EXPECT_SAME(parse_literal("true"), json(true));
  EXPECT_SAME(parse_literal("false"), json(false));
  EXPECT_SAME(parse_literal("null"), json(nullptr));
}

TEST(LiteralParser, Integers) {
  EXPECT_SAME(parse_literal("0"), json(0));
  EXPECT_SAME(parse_literal("42"), json(42));
  EXPECT_SAME(parse_literal("-5"), json(-5));
  EXPECT_SAME(parse_literal("+7"), json(7));
  EXPECT_SAME(parse_literal("-0"), json(0));
  EXPECT_TRUE(parse_literal("42").is_number_integer());
  EXPECT_FALSE(parse_literal("42").is_number_float());
}

TEST(LiteralParser, LargeIntegers) {
  const json int64_max = parse_literal("9223372036854775807");
  EXPECT_EQ(int64_max.get<std::int64_t>(), std::numeric_limits<std::int64_t>::max());

  const json int64_min = parse_literal("-9223372036854775808");
  ASSERT_TRUE(int64_min.is_number_integer());
  EXPECT_EQ(int64_min.get<std::int64_t>(), std::numeric_limits<std::int64_t>::min());

  const json just_above_int64 = parse_literal("9223372036854775808");
  ASSERT_TRUE(just_above_int64.is_number_unsigned());
  EXPECT_EQ(just_above_int64.get<std::uint64_t>(), 9223372036854775808ULL);

  const json uint64_max = parse_literal("18446744073709551615");
  ASSERT_TRUE(uint64_max.is_number_unsigned());
  EXPECT_EQ(uint64_max.get<std::uint64_t>(), std::numeric_limits<std::uint64_t>::max());

  EXPECT_SAME(parse_literal("18446744073709551616"), json(18446744073709551616.0));
  EXPECT_SAME(parse_literal("-9223372036854775809"), json(-9223372036854775809.0));
  EXPECT_SAME(parse_literal("123456789012345678901234567890"), json(1.2345678901234568e29));
  EXPECT_SAME(parse_literal(std::string(400, '9')), json(std::numeric_limits<double>::infinity()));
  EXPECT_SAME(parse_literal("-" + std::string(400, '9')), json(-std::numeric_limits<double>::infinity()));
}

TEST(LiteralParser, Floats) {
  EXPECT_SAME(parse_literal("1.5"), json(1.5));
  EXPECT_SAME(parse_literal(".5"), json(0.5));
  EXPECT_SAME(parse_literal("5."), json(5.0));
  EXPECT_SAME(parse_literal("1e-5"), json(1e-5));
  EXPECT_SAME(parse_literal("1.5E+3"), json(1500.0));
  EXPECT_SAME(parse_literal("2e3"), json(2000.0));
  EXPECT_SAME(parse_literal("0.1"), json(0.1));
  EXPECT_SAME(parse_literal("-2.5e-3"), json(-2.5e-3));
  EXPECT_SAME(parse_literal("+.25"), json(0.25));
  EXPECT_SAME(parse_literal("1.7976931348623157e+308"), json(1.7976931348623157e308));
  EXPECT_SAME(parse_literal("5e-324"), json(5e-324));

  const json negative_zero = parse_literal("-0.0");
  ASSERT_TRUE(negative_zero.is_number_float());
  EXPECT_EQ(negative_zero.get<double>(), 0.0);
  EXPECT_TRUE(std::signbit(negative_zero.get<double>()));
}

TEST(LiteralParser, FloatsOutOfRangeBehaveLikePython) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_SAME(parse_literal("1e400"), json(inf));
  EXPECT_SAME(parse_literal("-1e400"), json(-inf));
  EXPECT_SAME(parse_literal("1e99999999999999999999999"), json(inf));
  EXPECT_SAME(parse_literal("1e-400"), json(0.0));
  EXPECT_SAME(parse_literal("-1e-400"), json(-0.0));
  EXPECT_SAME(parse_literal("0.0000001e-400"), json(0.0));
  EXPECT_SAME(parse_literal("0.0000001e+310"), json(1e303));
  EXPECT_SAME(parse_literal("1" + std::string(500, '0') + "e-400"), json(1e100));
  EXPECT_SAME(parse_literal("1" + std::string(500, '0') + "e-100"), json(inf));
  EXPECT_SAME(parse_literal("0." + std::string(500, '0') + "1e100"), json(0.0));
  EXPECT_SAME(parse_literal("0e400"), json(0.0));
}

TEST(LiteralParser, NanAndInfinity) {
  for (const char* text : {"nan", "NaN", "-nan", "+NaN", "np.float64(nan)"}) {
    const json value = parse_literal(text);
    ASSERT_TRUE(value.is_number_float()) << text;
    EXPECT_TRUE(std::isnan(value.get<double>())) << text;
  }
  for (const char* text : {"inf", "Infinity", "+inf", "np.float32(inf)"}) {
    const json value = parse_literal(text);
    ASSERT_TRUE(value.is_number_float()) << text;
    EXPECT_TRUE(std::isinf(value.get<double>()) && value.get<double>() > 0) << text;
  }
  for (const char* text : {"-inf", "-Infinity", "np.float64(-inf)"}) {
    const json value = parse_literal(text);
    ASSERT_TRUE(value.is_number_float()) << text;
    EXPECT_TRUE(std::isinf(value.get<double>()) && value.get<double>() < 0) << text;
  }
  const json list = parse_literal("[nan, inf, -inf]");
  EXPECT_TRUE(std::isnan(list[0].get<double>()));
  EXPECT_TRUE(std::isinf(list[1].get<double>()));
  EXPECT_TRUE(std::isinf(list[2].get<double>()));
  // Non-finite values still dump (as null), so downstream JSON output keeps working.
  EXPECT_EQ(list.dump(), "[null,null,null]");
}

// ---------------------------------------------------------------------------------------------
// Strings

TEST(LiteralParser, QuotesBothKinds) {
  EXPECT_SAME(parse_literal("'abc'"), json("abc"));
  EXPECT_SAME(parse_literal("\"abc\""), json("abc"));
  EXPECT_SAME(parse_literal("''"), json(""));
  EXPECT_SAME(parse_literal("\"\""), json(""));
  EXPECT_SAME(parse_literal(R"("it's")"), json("it's"));
  EXPECT_SAME(parse_literal(R"('say "hi"')"), json("say \"hi\""));
  // Python's repr of a str holding both quote kinds.
  EXPECT_SAME(parse_literal(R"('it\'s "x"')"), json("it's \"x\""));
  EXPECT_SAME(parse_literal(R"("it's \"x\"")"), json("it's \"x\""));
}

TEST(LiteralParser, SimpleEscapes) {
  EXPECT_SAME(parse_literal(R"('a\\b')"), json("a\\b"));
  EXPECT_SAME(parse_literal(R"('\n\r\t')"), json("\n\r\t"));
  EXPECT_SAME(parse_literal(R"('\b\f\v\a')"), json("\b\f\v\a"));
  EXPECT_SAME(parse_literal(R"("\/")"), json("/"));
  EXPECT_SAME(parse_literal(R"('\0')"), json(std::string(1, '\0')));
  EXPECT_SAME(parse_literal(R"('x\0y')"), json(std::string("x\0y", 3)));
}

TEST(LiteralParser, OctalEscapes) {
  EXPECT_SAME(parse_literal(R"('\101')"), json("A"));
  EXPECT_SAME(parse_literal(R"('\7')"), json("\a"));
  EXPECT_SAME(parse_literal(R"('\1018')"), json("A8"));
  EXPECT_SAME(parse_literal(R"('\377')"), json("\u00ff"));
  EXPECT_SAME(parse_literal(R"('\777')"), json("\u01ff"));
}

TEST(LiteralParser, HexAndUnicodeEscapes) {
  EXPECT_SAME(parse_literal(R"('\x41')"), json("A"));
  EXPECT_SAME(parse_literal(R"('caf\xe9')"), json("caf\u00e9"));
  EXPECT_SAME(parse_literal(R"('\u2603')"), json("\u2603"));
  EXPECT_SAME(parse_literal(R"('\U0001f600')"), json("\U0001f600"));
  EXPECT_SAME(parse_literal(R"("\u00e9\u00E9")"), json("\u00e9\u00e9"));
}

TEST(LiteralParser, JsonSurrogatePairs) {
  EXPECT_SAME(parse_literal(R"("\ud83d\ude00")"), json("\U0001f600"));
  EXPECT_SAME(parse_literal(R"("\uD83D\uDE00!")"), json("\U0001f600!"));
}

TEST(LiteralParser, LoneSurrogatesBecomeReplacementCharacter) {
  EXPECT_SAME(parse_literal(R"('\ud800')"), json("\ufffd"));
  EXPECT_SAME(parse_literal(R"('\udc00x')"), json("\ufffdx"));
  EXPECT_SAME(parse_literal(R"('\ud83dA')"), json("\ufffdA"));
  EXPECT_SAME(parse_literal(R"('\ud83d\u0041')"), json("\ufffdA"));
  EXPECT_SAME(parse_literal(R"('\U0000d800')"), json("\ufffd"));
  // Whatever the escapes, the result is valid UTF-8 and dumps strictly.
  EXPECT_NO_THROW(parse_literal(R"('\ud800\udbff\udfff')").dump());
}

TEST(LiteralParser, RawUtf8) {
  EXPECT_SAME(parse_literal("'caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80'"), json("caf\u00e9 \u2603 \U0001f600"));
  EXPECT_SAME(parse_literal("['\xe4\xb8\xad\xe6\x96\x87']"), json::array({"\u4e2d\u6587"}));
}

TEST(LiteralParser, LineContinuationAndUnknownEscapes) {
  EXPECT_SAME(parse_literal("'ab\\\ncd'"), json("abcd"));
  EXPECT_SAME(parse_literal("'ab\\\r\ncd'"), json("abcd"));
  // Python keeps unknown escapes verbatim.
  EXPECT_SAME(parse_literal(R"('C:\dir\q')"), json("C:\\dir\\q"));
  EXPECT_SAME(parse_literal("'\\\xc3\xa9'"), json("\\\u00e9"));
}

TEST(LiteralParser, StringErrors) {
  EXPECT_EQ(error_offset("\"abc"), 0u);
  EXPECT_EQ(error_offset("['abc"), 1u);
  EXPECT_EQ(error_offset("'abc\\"), 0u);
  EXPECT_EQ(error_offset("'ab\ncd'"), 0u);
  EXPECT_EQ(error_offset(R"('\x4')"), 1u);
  EXPECT_EQ(error_offset(R"('ab\xZZ')"), 3u);
  EXPECT_EQ(error_offset(R"('\u12')"), 1u);
  EXPECT_EQ(error_offset(R"('\U0011ffff')"), 1u);
  EXPECT_EQ(error_offset(R"('\U1234')"), 1u);
  EXPECT_EQ(error_offset(R"('\N{SNOWMAN}')"), 1u);
  EXPECT_EQ(error_offset("b'bytes'"), 0u);
  EXPECT_EQ(error_offset("f'x'"), 0u);
}

TEST(LiteralParser, InvalidUtf8IsRejected) {
  EXPECT_EQ(error_offset("'ab\xff'"), 3u);
  EXPECT_EQ(error_offset("'\xc0\x80'"), 1u);          // overlong NUL
  EXPECT_EQ(error_offset("'\xe0\x80\x80'"), 1u);      // overlong 3-byte
  EXPECT_EQ(error_offset("'\xed\xa0\x80'"), 1u);      // encoded surrogate
  EXPECT_EQ(error_offset("'\xf4\x90\x80\x80'"), 1u);  // beyond U+10FFFF
  EXPECT_EQ(error_offset("'\xe2\x98'"), 1u);          // truncated sequence
  EXPECT_EQ(error_offset("'\xe2\x98"), 1u);           // truncated at end of input
  EXPECT_EQ(error_offset("'\x80'"), 1u);              // stray continuation byte
  EXPECT_EQ(error_offset("\xc3\xa9"), 0u);            // non-ASCII outside a string
}

// ---------------------------------------------------------------------------------------------
// Containers

TEST(LiteralParser, ListsAndTuples) {
  EXPECT_SAME(parse_literal("[]"), json::array());
  EXPECT_SAME(parse_literal("[1, 2, 3]"), json::array({1, 2, 3}));
  EXPECT_SAME(parse_literal("()"), json::array());
  EXPECT_SAME(parse_literal("( )"), json::array());
  EXPECT_SAME(parse_literal("(1,)"), json::array({1}));
  EXPECT_SAME(parse_literal("(1, 'a', None)"), json::array({1, "a", nullptr}));
  EXPECT_SAME(parse_literal("([1], (2,), ())"), json::array({json::array({1}), json::array({2}), json::array()}));
  // A parenthesised value without a comma is the value itself, as in Python.
  EXPECT_SAME(parse_literal("(1)"), json(1));
  EXPECT_SAME(parse_literal("((('x')))"), json("x"));
}

TEST(LiteralParser, TrailingCommas) {
  EXPECT_SAME(parse_literal("[1, 2,]"), json::array({1, 2}));
  EXPECT_SAME(parse_literal("[1, 2 , ]"), json::array({1, 2}));
  EXPECT_SAME(parse_literal("(1, 2,)"), json::array({1, 2}));
  EXPECT_SAME(parse_literal("{'a': 1,}"), json({{"a", 1}}));
  EXPECT_SAME(parse_literal("{1, 2,}"), json::array({1, 2}));
}

TEST(LiteralParser, Whitespace) {
  EXPECT_SAME(parse_literal(" \n[\n  1 ,\n\t2\r\n]\n "), json::array({1, 2}));
  EXPECT_SAME(parse_literal("{ 'a' :\n 1 }"), json({{"a", 1}}));
  EXPECT_SAME(parse_literal("\f 7 \t"), json(7));
}

TEST(LiteralParser, Dicts) {
  EXPECT_SAME(parse_literal("{}"), json::object());
  EXPECT_SAME(parse_literal("{'a': 1, \"b\": [True, None]}"), json({{"a", 1}, {"b", {true, nullptr}}}));
  EXPECT_SAME(parse_literal("{'outer': {'inner': (1, 2)}}"), json({{"outer", {{"inner", {1, 2}}}}}));
  // Python keeps the last value for a repeated key.
  EXPECT_SAME(parse_literal("{'a': 1, 'a': 2}"), json({{"a", 2}}));
}

TEST(LiteralParser, DictKeysTakePythonStrText) {
  const json value = parse_literal(
      "{1: 'a', -2: 'b', 1.5: 'c', True: 'd', False: 'e', None: 'f', 1e16: 'g', 1.0: 'h',"
      " 1e-05: 'i', 0.0001: 'j', np.int64(3): 'k', 18446744073709551615: 'l', -0.0: 'm',"
      " nan: 'n', -inf: 'o', 123456.789: 'p', 1e15: 'q', 2.5e-07: 'r', 1.5e+300: 's'}");
  const json expected = {{"1", "a"},      {"-2", "b"},
                         {"1.5", "c"},    {"True", "d"},
                         {"False", "e"},  {"None", "f"},
                         {"1e+16", "g"},  {"1.0", "h"},
                         {"1e-05", "i"},  {"0.0001", "j"},
                         {"3", "k"},      {"18446744073709551615", "l"},
                         {"-0.0", "m"},   {"nan", "n"},
                         {"-inf", "o"},   {"123456.789", "p"},
                         {"1000000000000000.0", "q"}, {"2.5e-07", "r"},
                         {"1.5e+300", "s"}};
  EXPECT_SAME(value, expected);
}

TEST(LiteralParser, UnhashableDictKeysAreErrors) {
  EXPECT_EQ(error_offset("{'a': 1, (1, 2): 'b'}"), 9u);
  EXPECT_EQ(error_offset("{[1]: 'a'}"), 1u);
  EXPECT_EQ(error_offset("{{}: 'a'}"), 1u);
}

TEST(LiteralParser, Sets) {
  EXPECT_SAME(parse_literal("{1, 2}"), json::array({1, 2}));
  EXPECT_SAME(parse_literal("{'x'}"), json::array({"x"}));
  EXPECT_SAME(parse_literal("set()"), json::array());
  EXPECT_SAME(parse_literal("frozenset()"), json::array());
  EXPECT_SAME(parse_literal("frozenset({1, 2})"), json::array({1, 2}));
  EXPECT_SAME(parse_literal("set([3])"), json::array({3}));
  EXPECT_EQ(error_offset("set(3)"), 4u);
  EXPECT_EQ(error_offset("set"), 0u);
}

// ---------------------------------------------------------------------------------------------
// NumPy scalars

TEST(LiteralParser, NumpyScalars) {
  EXPECT_SAME(parse_literal("np.float32(0.5)"), json(0.5));
  EXPECT_SAME(parse_literal("np.int64(3)"), json(3));
  EXPECT_SAME(parse_literal("np.int8(-3)"), json(-3));
  EXPECT_SAME(parse_literal("np.str_('x')"), json("x"));
  EXPECT_SAME(parse_literal("np.True_"), json(true));
  EXPECT_SAME(parse_literal("np.False_"), json(false));
  EXPECT_SAME(parse_literal("numpy.True_"), json(true));
  EXPECT_SAME(parse_literal("numpy.False_"), json(false));
  EXPECT_SAME(parse_literal("numpy.float64(1.0)"), json(1.0));
  EXPECT_SAME(parse_literal("np.float64( 2.5 )"), json(2.5));
  EXPECT_SAME(parse_literal("[{'label': np.str_('cat'), 'score': np.float32(0.75), 'ok': np.True_}]"),
              json::array({{{"label", "cat"}, {"score", 0.75}, {"ok", true}}}));
}

TEST(LiteralParser, OtherNamesAreErrors) {
  EXPECT_EQ(error_offset("tensor(0.5)"), 0u);
  EXPECT_EQ(error_offset("[1, foo]"), 4u);
  EXPECT_EQ(error_offset("np.float64"), 0u);
  EXPECT_EQ(error_offset("np.float64(1"), 12u);
  EXPECT_EQ(error_offset("np.float64(1, 2)"), 12u);
  EXPECT_EQ(error_offset("np.float64()"), 11u);
  EXPECT_EQ(error_offset("os.system('ls')"), 0u);
  EXPECT_EQ(error_offset("TRUE"), 0u);
  EXPECT_EQ(error_offset("np.True_(1)"), 8u);
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST(LiteralParser, Garbage) {
  EXPECT_EQ(error_offset("<object at 0x7f>"), 0u);
  EXPECT_EQ(error_offset("[<Foo object at 0x7f3a>]"), 1u);
  EXPECT_EQ(error_offset("[1, 2"), 5u);
  EXPECT_EQ(error_offset("{'a' 1}"), 5u);
  EXPECT_EQ(error_offset("[1] x"), 4u);
  EXPECT_EQ(error_offset(""), 0u);
  EXPECT_EQ(error_offset("   "), 3u);
  EXPECT_EQ(error_offset("[1 2]"), 3u);
  EXPECT_EQ(error_offset("(1 2)"), 3u);
  EXPECT_EQ(error_offset("[1,,2]"), 3u);
  EXPECT_EQ(error_offset("[,]"), 1u);
  EXPECT_EQ(error_offset("{'a': }"), 6u);
  EXPECT_EQ(error_offset("{:1}"), 1u);
  EXPECT_EQ(error_offset("{'a': 1 'b': 2}"), 8u);
  EXPECT_EQ(error_offset("{'a': 1, 'b' 2}"), 13u);
  EXPECT_EQ(error_offset("{1, 'a': 2}"), 7u);
  EXPECT_EQ(error_offset("]"), 0u);
  EXPECT_EQ(error_offset("[1]]"), 3u);
  EXPECT_EQ(error_offset(std::string("[1,\0 2]", 7)), 3u);
  EXPECT_EQ(error_offset("1 2"), 2u);
}

TEST(LiteralParser, MalformedNumbers) {
  EXPECT_EQ(error_offset("1j"), 1u);
  EXPECT_EQ(error_offset("0x1f"), 1u);
  EXPECT_EQ(error_offset("1_000"), 1u);
  EXPECT_EQ(error_offset("--1"), 0u);
  EXPECT_EQ(error_offset("-"), 0u);
  EXPECT_EQ(error_offset("."), 0u);
  EXPECT_EQ(error_offset("-."), 0u);
  EXPECT_EQ(error_offset("1e"), 1u);
  EXPECT_EQ(error_offset("1e+"), 1u);
  EXPECT_EQ(error_offset("1.2.3"), 3u);
  EXPECT_EQ(error_offset("-foo"), 0u);
  EXPECT_EQ(error_offset("[-True]"), 1u);
}

TEST(LiteralParser, ErrorIsARuntimeError) {
  EXPECT_THROW(parse_literal("[1, 2"), std::runtime_error);
  EXPECT_THROW(parse_literal("[1, 2"), LiteralParseError);
}

// ---------------------------------------------------------------------------------------------
// Nesting

std::string nested_lists(int depth) {
  return std::string(static_cast<std::size_t>(depth), '[') + "1" + std::string(static_cast<std::size_t>(depth), ']');
}

TEST(LiteralParser, NestingWithinLimit) {
  json value = parse_literal(nested_lists(50));
  for (int level = 0; level < 50; ++level) {
    ASSERT_TRUE(value.is_array());
    json inner = std::move(value[0]);
    value = std::move(inner);
  }
  EXPECT_SAME(value, json(1));
  EXPECT_NO_THROW(parse_literal(nested_lists(256)));
}

TEST(LiteralParser, NestingBeyondLimit) {
  EXPECT_EQ(error_offset(nested_lists(257)), 256u);
  EXPECT_EQ(error_offset(nested_lists(300)), 256u);
  EXPECT_EQ(error_offset(std::string(1000000, '[')), 256u);
  EXPECT_EQ(error_offset(std::string(1000000, '(')), 256u);
  EXPECT_EQ(error_offset(std::string(1000000, '{')), 256u);

  std::string dicts;
  for (int level = 0; level < 300; ++level) dicts += "{'k': ";
  EXPECT_NE(error_offset(dicts + "1" + std::string(300, '}')), kNoError);

  std::string wrappers;
  for (int level = 0; level < 300; ++level) wrappers += "np.float64(";
  EXPECT_NE(error_offset(wrappers + "1" + std::string(300, ')')), kNoError);
}

// ---------------------------------------------------------------------------------------------
// Randomized round trip: print random values as Python repr and as JSON, parse both back.

void append_utf8(std::string& out, char32_t cp) {
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

std::string hex_escape(char kind, char32_t cp, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text = {'\\', kind};
  for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4) text += kHex[(cp >> shift) & 0xF];
  return text;
}

// A value together with how Python's repr() would print it (within the grammar's reach).
struct Sample {
  json value;
  std::string python;
};

class RandomLiteralGenerator {
 public:
  explicit RandomLiteralGenerator(std::uint32_t seed) : rng_(seed) {}

  Sample value(int depth_left) {
    const int kind = pick(0, depth_left > 0 ? 9 : 5);
    switch (kind) {
      case 0: return constant();
      case 1: return integer();
      case 2: return floating();
      case 3:
      case 4: {
        const std::u32string text = random_text();
        return {json(utf8(text)), python_string(text)};
      }
      case 5: return numpy_scalar();
      case 6: return sequence(depth_left, "[", "]");
      case 7: return sequence(depth_left, "(", ")");
      default: return dict(depth_left);
    }
  }

 private:
  int pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng_); }
  bool chance(int percent) { return pick(0, 99) < percent; }

  Sample constant() {
    switch (pick(0, 2)) {
      case 0: return {json(true), "True"};
      case 1: return {json(false), "False"};
      default: return {json(nullptr), "None"};
    }
  }

  Sample integer() {
    if (chance(20)) {
      const std::uint64_t big = std::uniform_int_distribution<std::uint64_t>(
          static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1,
          std::numeric_limits<std::uint64_t>::max())(rng_);
      return {json(big), std::to_string(big)};
    }
    const std::int64_t limit = chance(50) ? 1000 : std::numeric_limits<std::int64_t>::max();
    std::int64_t number = std::uniform_int_distribution<std::int64_t>(-limit, limit)(rng_);
    if (chance(5)) number = std::numeric_limits<std::int64_t>::min();
    return {json(number), std::to_string(number)};
  }

  Sample floating() {
    double number = 0.0;
    switch (pick(0, 4)) {
      case 0:
        do {
          const std::uint64_t bits = std::uniform_int_distribution<std::uint64_t>()(rng_);
          std::memcpy(&number, &bits, sizeof number);
        } while (!std::isfinite(number));
        break;
      case 1: number = std::uniform_real_distribution<double>(-100.0, 100.0)(rng_); break;
      case 2: number = pick(-5, 5); break;  // whole values must still print as floats
      case 3: number = chance(50) ? 0.0 : -0.0; break;
      default: {
        const double specials[] = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                                   -std::numeric_limits<double>::infinity()};
        number = specials[pick(0, 2)];
      }
    }
    return {json(number), python_float(number)};
  }

  static std::string python_float(double number) {
    if (std::isnan(number)) return "nan";
    if (std::isinf(number)) return number > 0 ? "inf" : "-inf";
    char buffer[32];
    const auto printed = std::to_chars(std::begin(buffer), std::end(buffer), number);
    std::string text(buffer, printed.ptr);
    if (text.find_first_of(".e") == std::string::npos) text += ".0";
    return text;
  }

  Sample numpy_scalar() {
    switch (pick(0, 3)) {
      case 0: {
        Sample inner = floating();
        return {inner.value, "np.float64(" + inner.python + ")"};
      }
      case 1: {
        Sample inner = integer();
        return {inner.value, "np.int64(" + inner.python + ")"};
      }
      case 2: {
        const std::u32string text = random_text();
        return {json(utf8(text)), "np.str_(" + python_string(text) + ")"};
      }
      default: return chance(50) ? Sample{json(true), "np.True_"} : Sample{json(false), "np.False_"};
    }
  }

  std::string separator() {
    switch (pick(0, 5)) {
      case 0: return ",\n ";
      case 1: return " , ";
      default: return ", ";
    }
  }

  Sample sequence(int depth_left, const char* open, const char* close) {
    Sample result{json::array(), open};
    const int count = pick(0, 4);
    for (int i = 0; i < count; ++i) {
      Sample item = value(depth_left - 1);
      if (i > 0) result.python += separator();
      result.python += item.python;
      result.value.push_back(std::move(item.value));
    }
    const bool is_tuple = open[0] == '(';
    if ((is_tuple && count == 1) || (count > 0 && chance(10))) result.python += ",";
    result.python += close;
    return result;
  }

  Sample dict(int depth_left) {
    Sample result{json::object(), "{"};
    const int count = pick(0, 4);
    for (int i = 0; i < count; ++i) {
      Sample key = dict_key();
      Sample item = value(depth_left - 1);
      if (i > 0) result.python += separator();
      result.python += key.python + ": " + item.python;
      result.value[key.value.get<std::string>()] = std::move(item.value);
    }
    if (count > 0 && chance(10)) result.python += ",";
    result.python += "}";
    return result;
  }

  // value holds the expected JSON key text.
  Sample dict_key() {
    switch (pick(0, 9)) {
      case 0: {
        Sample number = integer();
        return {json(number.python), number.python};
      }
      case 1: {
        Sample flag = constant();
        return {json(flag.python), flag.python};
      }
      default: {
        const std::u32string text = random_text();
        return {json(utf8(text)), python_string(text)};
      }
    }
  }

  char32_t random_code_point() {
    switch (pick(0, 9)) {
      case 0: return U"'\"\\"[pick(0, 2)];
      case 1: return static_cast<char32_t>(chance(90) ? pick(0, 0x1F) : 0x7F);
      case 2: return static_cast<char32_t>(pick(0x80, 0xFF));
      case 3: {
        const int cp = pick(0x100, 0xFFFD - 0x800);  // skip the surrogate block
        return static_cast<char32_t>(cp < 0xD800 ? cp : cp + 0x800);
      }
      case 4: return static_cast<char32_t>(pick(0x10000, 0x10FFFF));
      default: return static_cast<char32_t>(pick(0x20, 0x7E));
    }
  }

  std::u32string random_text() {
    std::u32string text;
    const int length = pick(0, 12);
    for (int i = 0; i < length; ++i) text += random_code_point();
    return text;
  }

  static std::string utf8(const std::u32string& text) {
    std::string out;
    for (char32_t cp : text) append_utf8(out, cp);
    return out;
  }

  // Python repr() style; non-ASCII is sometimes escaped, as repr() does for unprintable characters.
  std::string python_string(const std::u32string& text) {
    const bool has_single = text.find(U'\'') != std::u32string::npos;
    const bool has_double = text.find(U'"') != std::u32string::npos;
    const char quote = has_single && !has_double ? '"' : '\'';
    const bool escape_non_ascii = chance(30);
    std::string out(1, quote);
    for (char32_t cp : text) {
      if (cp == '\\') {
        out += "\\\\";
      } else if (cp == static_cast<char32_t>(quote)) {
        out += '\\';
        out += quote;
      } else if (cp == '\n') {
        out += "\\n";
      } else if (cp == '\r') {
        out += "\\r";
      } else if (cp == '\t') {
        out += "\\t";
      } else if (cp < 0x20 || cp == 0x7F || (escape_non_ascii && cp >= 0x80 && cp < 0x100)) {
        out += hex_escape('x', cp, 2);
      } else if (escape_non_ascii && cp >= 0x100) {
        out += cp < 0x10000 ? hex_escape('u', cp, 4) : hex_escape('U', cp, 8);
      } else {
        append_utf8(out, cp);
      }
    }
    out += quote;
    return out;
  }

  std::mt19937 rng_;
};

// JSON has no NaN or infinity; nlohmann prints them as null.
json with_nonfinite_as_null(const json& value) {
  if (value.is_number_float() && !std::isfinite(value.get<double>())) return nullptr;
  if (value.is_structured()) {
    json copy = value;
    for (auto& item : copy) item = with_nonfinite_as_null(item);
    return copy;
  }
  return value;
}

TEST(LiteralParser, RandomRoundTrip) {
  RandomLiteralGenerator generator(20240611);
  std::mt19937 dump_style(7);
  for (int iteration = 0; iteration < 4000; ++iteration) {
    const Sample sample = generator.value(4);

    json from_python;
    ASSERT_NO_THROW(from_python = parse_literal(sample.python)) << sample.python;
    ASSERT_PRED2(same, from_python, sample.value) << sample.python;

    const int indent = dump_style() % 2 ? -1 : 2;
    const bool ensure_ascii = dump_style() % 2;
    const std::string json_text = sample.value.dump(indent, ' ', ensure_ascii);
    json from_json;
    ASSERT_NO_THROW(from_json = parse_literal(json_text)) << json_text;
    ASSERT_PRED2(same, from_json, with_nonfinite_as_null(sample.value)) << json_text;
  }
}

}  // namespace
