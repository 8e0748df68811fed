#include "common/labels.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace skiff {
namespace {

using nlohmann::json;

LabelSelector parse_ok(std::string_view s) {
  auto r = LabelSelector::parse(s);
  EXPECT_TRUE(r.ok()) << s << ": " << r.status().to_string();
  return r.ok() ? *r : LabelSelector::nothing();
}

std::string parse_error(std::string_view s) {
  auto r = LabelSelector::parse(s);
  EXPECT_FALSE(r.ok()) << s;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kBadRequest);
  return r.status().message();
}

TEST(LabelSelectorParseTest, CanonicalFormSortsByKeyAndValues) {
  EXPECT_EQ(parse_ok("x=a,y=b").to_string(), "x=a,y=b");
  EXPECT_EQ(parse_ok("y=b,x=a").to_string(), "x=a,y=b");
  EXPECT_EQ(parse_ok("x==a").to_string(), "x==a");
  EXPECT_EQ(parse_ok("x!=a").to_string(), "x!=a");
  EXPECT_EQ(parse_ok("x in (c,a,b,a)").to_string(), "x in (a,b,c)");
  EXPECT_EQ(parse_ok("x notin (a)").to_string(), "x notin (a)");
  EXPECT_EQ(parse_ok("x").to_string(), "x");
  EXPECT_EQ(parse_ok("!x").to_string(), "!x");
  EXPECT_EQ(parse_ok("x>1").to_string(), "x>1");
  EXPECT_EQ(parse_ok("x<1").to_string(), "x<1");
  EXPECT_EQ(parse_ok("  x = a ,  y  ").to_string(), "x=a,y");
  EXPECT_EQ(parse_ok("x\tin\t(a , b)").to_string(), "x in (a,b)");
  EXPECT_EQ(parse_ok("x=").to_string(), "x=");
  EXPECT_EQ(parse_ok("x in ()").to_string(), "x in ()");
  EXPECT_EQ(parse_ok("x in (,a)").to_string(), "x in (,a)");
  EXPECT_EQ(parse_ok("in in (in,notin)").to_string(), "in in (in,notin)");
  EXPECT_EQ(parse_ok("example.com/app=web").to_string(), "example.com/app=web");
}

TEST(LabelSelectorParseTest, EmptyStringSelectsEverything) {
  EXPECT_TRUE(parse_ok("").empty());
  EXPECT_TRUE(parse_ok("   ").empty());
  EXPECT_TRUE(parse_ok("").matches({{"a", "b"}}));
}

TEST(LabelSelectorParseTest, ErrorsUseKubernetesWording) {
  EXPECT_EQ(parse_error("x=a,"), "found '', expected: identifier after ','");
  EXPECT_EQ(parse_error(",x"), "found ',', expected: !, identifier, or 'end of string'");
  EXPECT_EQ(parse_error("x y"),
            "unable to parse requirement: found 'y', "
            "expected: in, notin, =, ==, !=, gt, lt");
  EXPECT_EQ(parse_error("x in a"), "unable to parse requirement: found 'a' expected: '('");
  EXPECT_EQ(parse_error("x in (a"), "unable to parse requirement: found '', expected: ',' or ')'");
  EXPECT_EQ(parse_error("x in (a b)"),
            "unable to parse requirement: found 'b', expected: ',' or ')'");
  EXPECT_EQ(parse_error("x in (=)"),
            "unable to parse requirement: found '=', "
            "expected: ',', ')' or identifier");
  EXPECT_EQ(parse_error("x=>1"), "unable to parse requirement: found '>', expected: identifier");
  EXPECT_EQ(parse_error("!x=a"), "found '=', expected: ',' or 'end of string'");
  EXPECT_EQ(parse_error("!"), "unable to parse requirement: found '', expected: identifier");
  EXPECT_EQ(parse_error("x=a b"), "found 'b', expected: ',' or 'end of string'");
  EXPECT_EQ(parse_error("x>a"),
            "unable to parse requirement: values[0]: "
            "Invalid value: \"a\": for 'Gt', 'Lt' "
            "operators, the value must be an integer");
  EXPECT_EQ(parse_error("a@b=c"),
            "unable to parse requirement: <nil>: Invalid value: \"a@b\": name "
            "part must consist of "
            "alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric "
            "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
            "used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
  EXPECT_EQ(parse_error("a=-b"),
            "unable to parse requirement: values[0][a]: Invalid value: \"-b\": "
            "a valid label must "
            "be an empty string or consist of alphanumeric characters, '-', "
            "'_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyValue',  or "
            "'my_value',  or "
            "'12345', regex used for validation is "
            "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
}

TEST(LabelSelectorMatchTest, Operators) {
  const Labels l = {{"app", "web"}, {"tier", "front"}, {"replicas", "3"}};
  EXPECT_TRUE(parse_ok("app=web").matches(l));
  EXPECT_TRUE(parse_ok("app==web").matches(l));
  EXPECT_FALSE(parse_ok("app=db").matches(l));
  EXPECT_TRUE(parse_ok("app!=db").matches(l));
  EXPECT_TRUE(parse_ok("missing!=x").matches(l)) << "!= matches an absent key";
  EXPECT_TRUE(parse_ok("app in (db,web)").matches(l));
  EXPECT_FALSE(parse_ok("missing in (x)").matches(l));
  EXPECT_TRUE(parse_ok("missing notin (x)").matches(l));
  EXPECT_FALSE(parse_ok("app notin (web)").matches(l));
  EXPECT_TRUE(parse_ok("app").matches(l));
  EXPECT_FALSE(parse_ok("!app").matches(l));
  EXPECT_TRUE(parse_ok("!missing").matches(l));
  EXPECT_TRUE(parse_ok("replicas>2").matches(l));
  EXPECT_FALSE(parse_ok("replicas>3").matches(l));
  EXPECT_TRUE(parse_ok("replicas<4").matches(l));
  EXPECT_FALSE(parse_ok("app>1").matches(l)) << "non-integer label values never match gt/lt";
  EXPECT_TRUE(parse_ok("app=web,tier=front").matches(l));
  EXPECT_FALSE(parse_ok("app=web,tier=back").matches(l));
  EXPECT_TRUE(parse_ok("x=").matches({{"x", ""}}));
}

TEST(LabelSelectorMatchTest, JsonLabelsAndLookup) {
  const json labels = {{"app", "web"}, {"n", 3}};
  EXPECT_TRUE(parse_ok("app=web").matches_json(labels));
  EXPECT_FALSE(parse_ok("n").matches_json(labels)) << "non-string values count as absent";
  EXPECT_FALSE(parse_ok("app").matches_json(json()));
  EXPECT_TRUE(parse_ok("!app").matches_json(json()));
  EXPECT_TRUE(
      parse_ok("a=b").matches_lookup([](std::string_view k) -> std::optional<std::string_view> {
        if (k == "a") return "b";
        return std::nullopt;
      }));
}

TEST(LabelSelectorTest, NullSelectsNothingEmptySelectsEverything) {
  auto null_sel = LabelSelector::from_json(json());
  ASSERT_TRUE(null_sel.ok());
  EXPECT_TRUE(null_sel->matches_nothing());
  EXPECT_FALSE(null_sel->empty());
  EXPECT_FALSE(null_sel->matches({}));
  EXPECT_FALSE(null_sel->matches({{"a", "b"}}));
  auto empty_sel = LabelSelector::from_json(json::object());
  ASSERT_TRUE(empty_sel.ok());
  EXPECT_TRUE(empty_sel->empty());
  EXPECT_FALSE(empty_sel->matches_nothing());
  EXPECT_TRUE(empty_sel->matches({}));
  EXPECT_TRUE(empty_sel->matches({{"a", "b"}}));
  EXPECT_TRUE(LabelSelector().matches({{"a", "b"}}));
  EXPECT_FALSE(LabelSelector::nothing().matches({}));
}

TEST(LabelSelectorTest, FromJson) {
  auto s = LabelSelector::from_json(json::parse(R"({
    "matchLabels": {"app": "web"},
    "matchExpressions": [
      {"key": "tier", "operator": "In", "values": ["front", "edge"]},
      {"key": "canary", "operator": "DoesNotExist"},
      {"key": "env", "operator": "NotIn", "values": ["dev"]},
      {"key": "zone", "operator": "Exists"}
    ]})"));
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->to_string(), "app=web,!canary,env notin (dev),tier in (edge,front),zone");
  EXPECT_TRUE(s->matches({{"app", "web"}, {"tier", "edge"}, {"zone", "a"}}));
  EXPECT_FALSE(s->matches({{"app", "web"}, {"tier", "edge"}, {"zone", "a"}, {"canary", "1"}}));
  EXPECT_FALSE(s->matches({{"app", "web"}, {"tier", "edge"}, {"zone", "a"}, {"env", "dev"}}));
  EXPECT_EQ(s->requires_exact_match("app"), "web");
  EXPECT_EQ(s->requires_exact_match("tier"), std::nullopt);
}

TEST(LabelSelectorTest, FromJsonErrors) {
  auto bad_op = LabelSelector::from_json(
      json::parse(R"({"matchExpressions": [{"key": "a", "operator": "Foo"}]})"));
  EXPECT_EQ(bad_op.status().message(), "\"Foo\" is not a valid label selector operator");
  auto no_values = LabelSelector::from_json(
      json::parse(R"({"matchExpressions": [{"key": "a", "operator": "In"}]})"));
  EXPECT_EQ(no_values.status().message(),
            "values: Invalid value: []string(nil): for 'in', 'notin' "
            "operators, values set can't "
            "be empty");
  auto with_values = LabelSelector::from_json(json::parse(
      R"({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})"));
  EXPECT_EQ(with_values.status().message(),
            "values: Invalid value: []string{\"x\"}: values set must be empty "
            "for exists and does "
            "not exist");
  auto bad_key = LabelSelector::from_json(json::parse(R"({"matchLabels": {"a b": "c"}})"));
  EXPECT_EQ(bad_key.status().message().rfind("key: Invalid value: \"a b\": name part", 0), 0u);
  EXPECT_FALSE(LabelSelector::from_json(json::parse(R"({"matchLabels": {"a": 1}})")).ok());
  EXPECT_FALSE(LabelSelector::from_json(json::parse(R"([1])")).ok());
}

TEST(LabelSelectorTest, FromSetAndRequiresExactMatch) {
  const LabelSelector s = LabelSelector::from_set({{"b", "2"}, {"a", "1"}});
  EXPECT_EQ(s.to_string(), "a=1,b=2");
  EXPECT_TRUE(s.matches({{"a", "1"}, {"b", "2"}, {"c", "3"}}));
  EXPECT_EQ(s.requires_exact_match("b"), "2");
  EXPECT_TRUE(LabelSelector::from_set({}).empty());
  EXPECT_EQ(parse_ok("a in (x)").requires_exact_match("a"), "x");
  EXPECT_EQ(parse_ok("a!=x").requires_exact_match("a"), std::nullopt);
}

TEST(ValidateLabelSelectorTest, ReportsFieldCauses) {
  const json sel = json::parse(R"({
    "matchLabels": {"ok": "v", "bad key": "v"},
    "matchExpressions": [
      {"key": "a", "operator": "In"},
      {"key": "b", "operator": "Exists", "values": ["x"]},
      {"key": "c", "operator": "Near"},
      {"key": "d", "operator": "In", "values": ["-bad"]}
    ]})");
  const auto causes = validate_label_selector(sel, "spec.selector");
  ASSERT_EQ(causes.size(), 5u);
  EXPECT_EQ(causes[0].field, "spec.selector.matchLabels");
  EXPECT_EQ(causes[0].reason, "FieldValueInvalid");
  EXPECT_EQ(causes[0].message.rfind("Invalid value: \"bad key\": name part must consist", 0), 0u);
  EXPECT_EQ(causes[1].field, "spec.selector.matchExpressions[0].values");
  EXPECT_EQ(causes[1].reason, "FieldValueRequired");
  EXPECT_EQ(causes[1].message,
            "Required value: must be specified when `operator` is 'In' or 'NotIn'");
  EXPECT_EQ(causes[2].reason, "FieldValueForbidden");
  EXPECT_EQ(causes[2].message,
            "Forbidden: may not be specified when "
            "`operator` is 'Exists' or 'DoesNotExist'");
  EXPECT_EQ(causes[3].field, "spec.selector.matchExpressions[2].operator");
  EXPECT_EQ(causes[3].message, "Invalid value: \"Near\": not a valid selector operator");
  EXPECT_EQ(causes[4].field, "spec.selector.matchExpressions[3].values[0]");
  EXPECT_TRUE(validate_label_selector(json(), "spec.selector").empty());
  EXPECT_TRUE(validate_label_selector(json::object(), "spec.selector").empty());
}

TEST(ValidateLabelsTest, KeysAndValues) {
  EXPECT_TRUE(validate_labels(json({{"app", "web"}}), "metadata.labels").empty());
  const auto causes = validate_labels(json({{"app", "-x"}}), "metadata.labels");
  ASSERT_EQ(causes.size(), 1u);
  EXPECT_EQ(causes[0].field, "metadata.labels");
  EXPECT_EQ(causes[0].message.rfind("Invalid value: \"-x\": a valid label must be", 0), 0u);
  EXPECT_EQ(validate_labels(json({{"a", std::string(64, 'v')}}), "metadata.labels")[0].message,
            "Invalid value: \"" + std::string(64, 'v') + "\": must be no more than 63 characters");
}

}  // namespace
}  // namespace skiff
