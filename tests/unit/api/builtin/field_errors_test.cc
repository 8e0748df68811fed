// Go renderings of values and the Invalid status built from field errors.
#include "api/builtin/field_errors.h"

#include <gtest/gtest.h>

namespace skiff::api::builtin {
namespace {

TEST(FieldErrors, GoMapAndSliceRenderings) {
  json labels = {{"b", "2"}, {"a", "1"}};
  EXPECT_EQ(go_string_map(&labels), "map[string]string{\"a\":\"1\", \"b\":\"2\"}");
  EXPECT_EQ(go_string_map(nullptr), "map[string]string(nil)");
  json empty = json::object();
  EXPECT_EQ(go_string_map(&empty), "map[string]string{}");
  json list = {"x", "y"};
  EXPECT_EQ(go_string_slice(&list), "[]string{\"x\", \"y\"}");
  json selector = {
      {"matchExpressions", {{{"key", "tier"}, {"operator", "In"}, {"values", {"a"}}}}}};
  EXPECT_EQ(
      go_label_selector(&selector),
      "v1.LabelSelector{MatchLabels:map[string]string(nil), "
      "MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"tier\", "
      "Operator:\"In\", Values:[]string{\"a\"}}}}");
}

TEST(FieldErrors, StatusMessageListsDistinctErrors) {
  FieldErrors errs;
  errs.required(Path("spec").child("a"));
  errs.required(Path("spec").child("a"));
  errs.invalid(Path("data").key("k"), go_quote("k"), "bad");
  Status s = errs.to_status("Thing", "example.com", "x");
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_EQ(s.message(),
            "Thing.example.com \"x\" is invalid: [spec.a: Required value, data[k]: Invalid value: "
            "\"k\": bad]");
  ASSERT_EQ(s.causes().size(), 3u);
  EXPECT_EQ(s.causes()[2].field, "data[k]");
  EXPECT_EQ(s.causes()[2].message, "Invalid value: \"k\": bad");
  EXPECT_TRUE(FieldErrors().to_status("Thing", "", "x").ok());
}

TEST(FieldErrors, ErrorBodies) {
  FieldErrors errs;
  errs.not_supported(Path("p"), go_quote("x"), {"a", "b"});
  errs.forbidden(Path("p"), "nope");
  errs.too_long(Path("p"), 10);
  errs.too_many(Path("p"), 5, 4);
  errs.duplicate(Path("p"), go_int(3));
  errs.not_found(Path("p"), go_quote("v"));
  const auto& l = errs.list();
  EXPECT_EQ(l[0].body(), "Unsupported value: \"x\": supported values: \"a\", \"b\"");
  EXPECT_EQ(l[1].body(), "Forbidden: nope");
  EXPECT_EQ(l[2].body(), "Too long: must have at most 10 bytes");
  EXPECT_EQ(l[3].body(), "Too many: 5: must have at most 4 items");
  EXPECT_EQ(l[4].body(), "Duplicate value: 3");
  EXPECT_EQ(l[5].body(), "Not found: \"v\"");
  EXPECT_EQ(l[0].reason(), "FieldValueNotSupported");
  EXPECT_EQ(l[3].reason(), "FieldValueTooMany");
}

}  // namespace
}  // namespace skiff::api::builtin
