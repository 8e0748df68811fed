#include "common/fields.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace skiff {
namespace {

FieldLookup lookup_in(const std::map<std::string, std::string>& fields) {
  return [fields](std::string_view f) -> std::optional<std::string> {
    const auto it = fields.find(std::string(f));
    if (it == fields.end()) return std::nullopt;
    return it->second;
  };
}

TEST(FieldSelectorTest, ParsesTermsSortedByText) {
  auto s = FieldSelector::parse("status.phase!=Running,metadata.name==web,spec.nodeName=n1");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_EQ(s->requirements().size(), 3u);
  EXPECT_EQ(s->requirements()[0].field, "metadata.name");
  EXPECT_EQ(s->requirements()[0].op, FieldRequirement::Op::kEquals);
  EXPECT_EQ(s->requirements()[2].field, "status.phase");
  EXPECT_EQ(s->requirements()[2].op, FieldRequirement::Op::kNotEquals);
  EXPECT_EQ(s->to_string(), "metadata.name=web,spec.nodeName=n1,status.phase!=Running");
}

TEST(FieldSelectorTest, EmptySelectsEverything) {
  auto s = FieldSelector::parse("");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->empty());
  EXPECT_TRUE(s->matches(lookup_in({})));
  EXPECT_TRUE(FieldSelector::parse("a=b,,")->requirements().size() == 1);
  EXPECT_TRUE(FieldSelector::parse("=")->empty());
}

TEST(FieldSelectorTest, Matching) {
  auto s = FieldSelector::parse("metadata.namespace!=kube-system,status.phase=Running");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(
      s->matches(lookup_in({{"metadata.namespace", "default"}, {"status.phase", "Running"}})));
  EXPECT_FALSE(
      s->matches(lookup_in({{"metadata.namespace", "kube-system"}, {"status.phase", "Running"}})));
  EXPECT_FALSE(s->matches(lookup_in({{"metadata.namespace", "default"}})));
  auto unscheduled = FieldSelector::parse("spec.nodeName=");
  ASSERT_TRUE(unscheduled.ok());
  EXPECT_TRUE(unscheduled->matches(lookup_in({}))) << "absent fields compare as empty";
  EXPECT_FALSE(unscheduled->matches(lookup_in({{"spec.nodeName", "n1"}})));
}

TEST(FieldSelectorTest, EscapedValues) {
  auto s = FieldSelector::parse(R"(metadata.name=a\,b\=c\\d,x=y)");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_EQ(s->requirements().size(), 2u);
  EXPECT_EQ(s->requirements()[0].value, R"(a,b=c\d)");
  EXPECT_EQ(s->to_string(), R"(metadata.name=a\,b\=c\\d,x=y)");
  EXPECT_EQ(escape_field_value(R"(a,b=c\)"), R"(a\,b\=c\\)");
  EXPECT_EQ(*unescape_field_value(R"(a\,b)"), "a,b");
}

TEST(FieldSelectorTest, ErrorsUseKubernetesWording) {
  EXPECT_EQ(FieldSelector::parse("a=b,foo").status().message(),
            "invalid selector: 'a=b,foo'; can't understand 'foo'");
  EXPECT_EQ(FieldSelector::parse("a=b=c").status().message(),
            "invalid field selector: unescaped character in value: 61");
  EXPECT_EQ(FieldSelector::parse(R"(a=b\q)").status().message(),
            "invalid field selector: invalid escape sequence: \\q");
  EXPECT_EQ(FieldSelector::parse(R"(a=b\)").status().message(),
            "invalid field selector: invalid escape sequence: \\");
  EXPECT_EQ(FieldSelector::parse("a").status().code(), StatusCode::kBadRequest);
}

TEST(FieldSelectorTest, CheckSupportedAndExactMatch) {
  auto s = FieldSelector::parse("metadata.name=x,spec.foo=y");
  ASSERT_TRUE(s.ok());
  const Status st = s->check_supported({"metadata.name", "metadata.namespace"});
  EXPECT_EQ(st.code(), StatusCode::kBadRequest);
  EXPECT_EQ(st.message(),
            "\"spec.foo\" is not a known field selector: only \"metadata.name\", "
            "\"metadata.namespace\"");
  EXPECT_TRUE(s->check_supported({"metadata.name", "spec.foo"}).ok());
  EXPECT_EQ(s->requires_exact_match("metadata.name"), "x");
  EXPECT_EQ(FieldSelector::parse("a!=x")->requires_exact_match("a"), std::nullopt);
}

}  // namespace
}  // namespace skiff
