#include "common/json.h"

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

namespace skiff {
namespace {

using nlohmann::json;

std::string error_of(const Result<json>& r) {
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

TEST(ParseJsonTest, ParsesObjectsAndKeepsIntegersAsInt64) {
  auto r = parse_json(R"({"a":1,"b":[true,null,"x"],"c":1.5,"d":-7,"e":18446744073709551615})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const json& v = *r;
  EXPECT_TRUE(v["a"].is_number_integer());
  EXPECT_FALSE(v["a"].is_number_unsigned());
  EXPECT_EQ(v["a"].get<int64_t>(), 1);
  EXPECT_EQ(v["d"].get<int64_t>(), -7);
  EXPECT_TRUE(v["c"].is_number_float());
  EXPECT_TRUE(v["e"].is_number_float()) << "beyond int64 becomes a double, as in Kubernetes";
  EXPECT_EQ(v["b"][2], "x");
}

TEST(ParseJsonTest, ScalarsAtTopLevel) {
  EXPECT_EQ(*parse_json("  42 "), json(42));
  EXPECT_EQ(*parse_json("\"s\""), json("s"));
  EXPECT_EQ(*parse_json("null"), json(nullptr));
}

TEST(ParseJsonTest, SyntaxErrorsReadLikeGo) {
  EXPECT_EQ(error_of(parse_json("x")),
            "invalid character 'x' looking for "
            "beginning of value (at byte offset 0)");
  EXPECT_EQ(error_of(parse_json(R"({"a" 1})")),
            "invalid character '1' after object key (at byte offset 5)");
  EXPECT_EQ(error_of(parse_json(R"({"a":1 "b":2})")),
            "invalid character '\"' after object key:value pair (at byte offset 7)");
  EXPECT_EQ(error_of(parse_json("[1 2]")),
            "invalid character '2' after array element (at byte offset 3)");
  EXPECT_EQ(error_of(parse_json("{1:2}")),
            "invalid character '1' looking for beginning of object key string "
            "(at byte offset 1)");
  EXPECT_EQ(error_of(parse_json("{} x")),
            "invalid character 'x' after top-level value (at byte offset 3)");
  EXPECT_EQ(error_of(parse_json(R"({"a":)")), "unexpected end of JSON input (at byte offset 5)");
  EXPECT_EQ(error_of(parse_json("")), "unexpected end of JSON input (at byte offset 0)");
  EXPECT_EQ(error_of(parse_json("tru")),
            "invalid character ' ' in literal true (expecting 'e') (at byte "
            "offset 3)");
  EXPECT_EQ(error_of(parse_json("nul!")),
            "invalid character '!' in literal null (expecting 'l') (at byte "
            "offset 3)");
  EXPECT_EQ(error_of(parse_json("-x")),
            "invalid character 'x' in numeric literal (at byte offset 1)");
  EXPECT_EQ(error_of(parse_json("1.e")),
            "invalid character 'e' after decimal point in numeric literal (at "
            "byte offset 2)");
  EXPECT_EQ(error_of(parse_json("\"a\nb\"")),
            "invalid character '\\n' in string literal (at byte offset 2)");
  EXPECT_EQ(error_of(parse_json(R"("\q")")),
            "invalid character 'q' in string escape code (at byte offset 2)");
  EXPECT_EQ(error_of(parse_json("'a'")),
            "invalid character '\\'' looking for beginning of value (at byte "
            "offset 0)");
  EXPECT_EQ(parse_json("x").status().code(), StatusCode::kBadRequest);
}

TEST(ParseJsonTest, ByteOrderMarkIsRejectedAsGoDoes) {
  EXPECT_EQ(error_of(parse_json("\xEF\xBB\xBF{}")),
            "invalid character '\xC3\xAF' looking for beginning of value (at "
            "byte offset 0)");
}

TEST(ParseJsonTest, MalformedUtf8InStringsBecomesReplacementCharacter) {
  auto r = parse_json(
      "\"a\xFF"
      "b\"");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->get<std::string>(),
            "a\xEF\xBF\xBD"
            "b");
}

TEST(ParseJsonTest, NumberBeyondDoubleIsRejected) {
  EXPECT_EQ(error_of(parse_json("[1e400]")),
            "json: cannot unmarshal number 1e400 into Go value of type float64");
}

TEST(ParseJsonTest, DepthLimitIsEnforced) {
  std::string ok(100, '[');
  ok += std::string(100, ']');
  EXPECT_TRUE(parse_json(ok).ok());
  std::string deep(101, '[');
  deep += std::string(101, ']');
  auto r = parse_json(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kBadRequest);
  EXPECT_NE(r.status().message().find("nesting too deep"), std::string::npos);
  ParseOptions two;
  two.max_depth = 2;
  EXPECT_TRUE(parse_json(R"({"a":[1]})", two).ok());
  EXPECT_FALSE(parse_json(R"({"a":[{}]})", two).ok());
}

TEST(ParseJsonTest, HundredThousandOpenBracketsAreRejectedFast) {
  const std::string bomb(100000, '[');
  const auto start = std::chrono::steady_clock::now();
  auto r = parse_json(bomb);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nesting too deep"), std::string::npos);
  EXPECT_LT(elapsed, std::chrono::seconds(1));
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  EXPECT_NE(parse_json(objects).status().message().find("nesting too deep"), std::string::npos);
}

TEST(ParseJsonTest, DuplicateKeysKeepLastUnlessRejected) {
  auto lax = parse_json(R"({"a":1,"a":2})");
  ASSERT_TRUE(lax.ok());
  EXPECT_EQ((*lax)["a"], 2);
  ParseOptions strict;
  strict.reject_duplicate_keys = true;
  EXPECT_EQ(error_of(parse_json(R"({"a":1,"b":{"x":1,"x":2}})", strict)),
            "json: duplicate field \"x\"");
  EXPECT_TRUE(parse_json(R"({"a":{"x":1},"b":{"x":2}})", strict).ok());
}

// Valid documents read the same as nlohmann's own parser reads them (integers aside, which
// parse_json keeps as int64 where they fit): escapes, surrogate pairs, whitespace, numbers at
// the edges of int64/uint64, repeated keys.
TEST(ParseJsonTest, ValidDocumentsReadAsNlohmannReadsThem) {
  for (const char* text : {
           R"({"a":"\"\\\/\b\f\n\r\t\u0000\u00e9\ud83d\ude00","b":[],"c":{},"d":[[],{}]})",
           " \t\r\n{ \"a\" : [ 1 , -2 , 3.25e2 , -0 , 0.0 , 1E-3 ] , \"b\" : null } \n",
           R"({"max":9223372036854775807,"min":-9223372036854775808,"u":18446744073709551615,
               "big":18446744073709551616,"neg":-9223372036854775809})",
           R"({"z":1,"a":2,"m":{"y":true,"b":false}})",
           R"("just a string")",
           "12345",
       }) {
    auto r = parse_json(text);
    ASSERT_TRUE(r.ok()) << text << ": " << r.status().message();
    EXPECT_EQ(*r, json::parse(text)) << text;
  }
  auto r = parse_json(R"({"k":1,"k":{"x":2},"j":3,"k":[4]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->dump(), R"({"j":3,"k":[4]})");
  EXPECT_TRUE((*parse_json(R"({"n":-0})"))["n"].is_number_integer());
  EXPECT_TRUE((*parse_json(R"({"n":18446744073709551615})"))["n"].is_number_float());
}

TEST(ParseJsonTest, LoneSurrogatesAndRawControlCharactersAreSyntaxErrors) {
  EXPECT_FALSE(parse_json(R"(["\ud800"])").ok());
  EXPECT_FALSE(parse_json(R"(["\udc00"])").ok());
  EXPECT_FALSE(parse_json(R"(["\ud800\u0041"])").ok());
  EXPECT_FALSE(parse_json("[\"a\x01\"]").ok());
  EXPECT_FALSE(parse_json(R"(["\x"])").ok());
  EXPECT_EQ(error_of(parse_json("{\"a\":1}x")),
            "invalid character 'x' after top-level value (at byte offset 7)");
}

TEST(ToJsonTest, IsCompact) {
  auto r = parse_json(R"({ "b" : [1, 2], "a" : "x" })");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(to_json(*r), R"({"a":"x","b":[1,2]})");
}

TEST(ToJsonTest, NeverThrowsOnInvalidUtf8) {
  json v = std::string("a\xFF");
  EXPECT_EQ(to_json(v), "\"a\xEF\xBF\xBD\"");
}

// ---------------------------------------------------------------------------------------------

TEST(ParseYamlTest, ParsesManifest) {
  auto r = parse_yaml(R"(
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  labels: {app: web}
data:
  key: value
  multi: |
    line1
    line2
)");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)["metadata"]["name"], "demo");
  EXPECT_EQ((*r)["metadata"]["labels"]["app"], "web");
  EXPECT_EQ((*r)["data"]["multi"], "line1\nline2\n");
}

TEST(ParseYamlTest, ScalarsResolveAsGoYamlV2) {
  auto r = parse_yaml(R"(
t: true
yes_word: yes
off_word: Off
tilde: ~
e:
i: 42
neg: -7
hex: 0x1F
oct: 0o17
legacy_oct: 010
bin: 0b101
under: 1_000
f: 1.5
dot: .5
whole: 2.0
exp: 1e3
s: "42"
sq: 'true'
tagged: !!str 12
plain: hello world
date: 2024-01-02
big: 99999999999999999999
bighex: 0xFFFFFFFFFFFFFFFFFF
negbighex: -0xFFFFFFFFFFFFFFFFFF
ver: 1.2.3
)");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const json& v = *r;
  EXPECT_EQ(v["t"], true);
  EXPECT_EQ(v["yes_word"], true);
  EXPECT_EQ(v["off_word"], false);
  EXPECT_TRUE(v["tilde"].is_null());
  EXPECT_TRUE(v["e"].is_null());
  EXPECT_EQ(v["i"], 42);
  EXPECT_TRUE(v["i"].is_number_integer());
  EXPECT_EQ(v["neg"], -7);
  EXPECT_EQ(v["hex"], 31);
  EXPECT_EQ(v["oct"], 15);
  EXPECT_EQ(v["legacy_oct"], 8);
  EXPECT_EQ(v["bin"], 5);
  EXPECT_EQ(v["under"], 1000);
  EXPECT_EQ(v["f"], 1.5);
  EXPECT_EQ(v["dot"], 0.5);
  EXPECT_TRUE(v["whole"].is_number_integer());
  EXPECT_EQ(v["whole"], 2);
  EXPECT_EQ(v["exp"], 1000);
  EXPECT_EQ(v["s"], "42");
  EXPECT_EQ(v["sq"], "true");
  EXPECT_EQ(v["tagged"], "12");
  EXPECT_EQ(v["plain"], "hello world");
  EXPECT_EQ(v["date"], "2024-01-02");
  EXPECT_TRUE(v["big"].is_number_float());
  EXPECT_TRUE(v["bighex"].is_number_float());
  EXPECT_EQ(v["negbighex"], "-0xFFFFFFFFFFFFFFFFFF");
  EXPECT_EQ(v["ver"], "1.2.3");
}

TEST(ParseYamlTest, NonStringKeysBecomeStrings) {
  auto r = parse_yaml("1: a\ntrue: b\n1.5: c\n1e6: d\n0x10: e\non: f\n");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(to_json(*r), R"({"1":"a","1.5":"c","16":"e","1e+06":"d","true":"f"})");
}

TEST(ParseYamlTest, InvalidKeysAreRejected) {
  EXPECT_FALSE(parse_yaml("? [a, b]\n: c\n").ok());
  EXPECT_FALSE(parse_yaml("~: a\n").ok());
}

TEST(ParseYamlTest, JsonIsValidYaml) {
  auto r = parse_yaml(R"({"a": [1, 2.5, "x", null, false]})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(to_json(*r), R"({"a":[1,2.5,"x",null,false]})");
}

TEST(ParseYamlTest, EmptyInputIsNull) {
  EXPECT_TRUE(parse_yaml("")->is_null());
  EXPECT_TRUE(parse_yaml("# only a comment\n")->is_null());
}

TEST(ParseYamlTest, AnchorsAliasesAndMergeKeys) {
  auto r = parse_yaml(R"(
base: &base
  a: 1
  b: 2
list: &l [x, z]
copy: *base
again: *l
merged:
  <<: *base
  b: 3
name: &n value
ref: *n
)");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const json& v = *r;
  EXPECT_EQ(v["copy"], v["base"]);
  EXPECT_EQ(v["again"], json({"x", "z"}));
  EXPECT_EQ(v["merged"]["a"], 1);
  EXPECT_EQ(v["merged"]["b"], 3);
  EXPECT_EQ(v["ref"], "value");
}

TEST(ParseYamlTest, MergeRequiresMaps) {
  auto r = parse_yaml("a:\n  <<: 1\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("map merge requires map"), std::string::npos);
}

TEST(ParseYamlTest, RecursiveAliasIsRejected) { EXPECT_FALSE(parse_yaml("a: &x [1, *x]\n").ok()); }

TEST(ParseYamlTest, BillionLaughsIsRejectedQuickly) {
  std::string doc =
      "a: &a "
      "[\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\","
      "\"lol\",\"lol\"]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    const char prev = static_cast<char>(c - 1);
    doc += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 9; ++i) doc += std::string(i ? "," : "") + "*" + prev;
    doc += "]\n";
  }
  const auto start = std::chrono::steady_clock::now();
  auto r = parse_yaml(doc);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kBadRequest);
  EXPECT_NE(r.status().message().find("aliases are expanded"), std::string::npos)
      << r.status().message();
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

TEST(ParseYamlTest, DepthLimitIsEnforced) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(parse_yaml(std::string(100000, '[')).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  std::string flow;
  for (int i = 0; i < 150; ++i) flow += "{a: ";
  flow += "1" + std::string(150, '}');
  auto r = parse_yaml(flow);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nesting too deep"), std::string::npos)
      << r.status().message();
  std::string block;
  for (int i = 0; i < 5000; ++i) block += "- ";
  block += "x\n";
  r = parse_yaml(block);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nesting too deep"), std::string::npos);
  std::string ok(100, '[');
  ok += std::string(100, ']');
  EXPECT_TRUE(parse_yaml(ok).ok());
}

TEST(ParseYamlTest, AliasesCannotExceedTheDepthLimit) {
  std::string inner(60, '[');
  inner += std::string(60, ']');
  std::string doc =
      "a: &a " + inner + "\nb: " + std::string(50, '[') + "*a" + std::string(50, ']') + "\n";
  auto r = parse_yaml(doc);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nesting too deep"), std::string::npos);
}

TEST(ParseYamlTest, MalformedYamlReportsLineAndColumn) {
  auto r = parse_yaml("a: b: c\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kBadRequest);
  EXPECT_EQ(r.status().message().rfind("error converting YAML to JSON: yaml: line 1, column", 0),
            0u)
      << r.status().message();
  EXPECT_FALSE(parse_yaml("a: [1, 2\n").ok());
  EXPECT_FALSE(parse_yaml("a:\n\t- b\n").ok());
  EXPECT_FALSE(parse_yaml("a: *missing\n").ok());
}

TEST(ParseYamlTest, MultipleDocumentsAreRejected) {
  auto r = parse_yaml("a: 1\n---\nb: 2\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("expected a single document"), std::string::npos);
  EXPECT_TRUE(parse_yaml("---\na: 1\n---\n").ok());
}

TEST(ParseYamlTest, DuplicateKeys) {
  auto lax = parse_yaml("a: 1\na: 2\n");
  ASSERT_TRUE(lax.ok());
  EXPECT_EQ((*lax)["a"], 2);
  ParseOptions strict;
  strict.reject_duplicate_keys = true;
  EXPECT_EQ(parse_yaml("a: 1\nb: 0\na: 2\n", strict).status().message(),
            "error converting YAML to JSON: yaml: unmarshal errors:\n  line 3: "
            "key \"a\" already "
            "set in map");
}

TEST(ParseYamlTest, NonFiniteNumbersAreRejected) {
  EXPECT_FALSE(parse_yaml("a: .inf\n").ok());
  EXPECT_FALSE(parse_yaml("a: .nan\n").ok());
  EXPECT_TRUE(parse_yaml("a: '.inf'\n").ok());
}

TEST(ParseYamlTest, ExplicitTagsAreChecked) {
  EXPECT_EQ((*parse_yaml("a: !!int 12"))["a"], 12);
  EXPECT_EQ((*parse_yaml("a: !!float 12"))["a"], 12);
  EXPECT_EQ(parse_yaml("a: !!int abc").status().message(),
            "error converting YAML to JSON: yaml: line 1, column 4: cannot "
            "decode !!str `abc` as "
            "a !!int");
  EXPECT_EQ((*parse_yaml("a: !!binary aGVsbG8="))["a"], "hello");
  EXPECT_EQ((*parse_yaml("a: !custom 12"))["a"], "12");
}

TEST(ParseYamlTest, InvalidUtf8IsRejected) {
  auto r = parse_yaml("a: \xFF\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("invalid UTF-8 at byte offset 3"), std::string::npos);
}

TEST(ParseYamlDocumentsTest, SplitsAStreamAndSkipsEmptyDocuments) {
  auto r = parse_yaml_documents("---\na: 1\n---\n# nothing\n---\nb: 2\n...\n---\n");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0]["a"], 1);
  EXPECT_EQ((*r)[1]["b"], 2);
  EXPECT_TRUE(parse_yaml_documents("")->empty());
  EXPECT_FALSE(parse_yaml_documents("a: 1\n---\nb: [\n").ok());
}

}  // namespace
}  // namespace skiff

namespace skiff {
namespace {

// Deterministic pseudo-random inputs: every one must produce a value or a
// BadRequest, never a crash, a hang or a sanitizer report.
TEST(ParseRobustnessTest, GarbageAndMutatedDocumentsNeverCrash) {
  const std::string seed_doc =
      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: "
      "a\n  labels: {x: \"1\", y: [1, 2]}\n"
      "spec:\n  containers:\n  - name: c\n    image: "
      "&i busybox\n    args: [*i, '--x', |\n"
      "      block]\n";
  const std::string json_doc = R"({"a":[1,2.5,{"b":"c\u00e9"}],"d":null,"e":true})";
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const std::string alphabet = "{}[]:,-&*!|>'\"\\ \n\t#?%@`0123456789abcxyz.\xC3\xA9\xFF";
  for (int i = 0; i < 3000; ++i) {
    std::string doc = (i % 2 == 0) ? seed_doc : json_doc;
    const int edits = 1 + static_cast<int>(next() % 8);
    for (int e = 0; e < edits; ++e) {
      const size_t pos = next() % (doc.size() + 1);
      const char c = alphabet[next() % alphabet.size()];
      switch (next() % 3) {
        case 0:
          doc.insert(doc.begin() + static_cast<std::ptrdiff_t>(pos), c);
          break;
        case 1:
          if (pos < doc.size()) doc.erase(pos, 1);
          break;
        default:
          if (pos < doc.size()) doc[pos] = c;
          break;
      }
    }
    for (const auto& r : {parse_json(doc), parse_yaml(doc)}) {
      if (!r.ok()) {
        EXPECT_EQ(r.status().code(), StatusCode::kBadRequest) << r.status().message();
      }
    }
    (void)parse_yaml_documents(doc);
  }
}

}  // namespace
}  // namespace skiff
