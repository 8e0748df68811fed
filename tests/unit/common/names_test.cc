#include "common/names.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace skiff {
namespace {

using Errors = std::vector<std::string>;

constexpr char kSubdomainMsg[] =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
    "characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. "
    "'example.com', regex used "
    "for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
constexpr char kLabelMsg[] =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric "
    "characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or "
    "'123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
constexpr char kQualifiedNamePart[] =
    "name part must consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
    "'123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

TEST(NamesTest, Dns1123Subdomain) {
  EXPECT_TRUE(is_dns1123_subdomain("example.com").empty());
  EXPECT_TRUE(is_dns1123_subdomain("a").empty());
  EXPECT_TRUE(is_dns1123_subdomain("my-app.v1").empty());
  EXPECT_EQ(is_dns1123_subdomain("Foo"), Errors{kSubdomainMsg});
  EXPECT_EQ(is_dns1123_subdomain(""), Errors{kSubdomainMsg});
  EXPECT_EQ(is_dns1123_subdomain("a..b"), Errors{kSubdomainMsg});
  EXPECT_EQ(is_dns1123_subdomain("-a"), Errors{kSubdomainMsg});
  EXPECT_EQ(is_dns1123_subdomain("a."), Errors{kSubdomainMsg});
  EXPECT_TRUE(is_dns1123_subdomain(std::string(253, 'a')).empty());
  EXPECT_EQ(is_dns1123_subdomain(std::string(254, 'a')),
            Errors{"must be no more than 253 characters"});
}

TEST(NamesTest, Dns1123Label) {
  EXPECT_TRUE(is_dns1123_label("default").empty());
  EXPECT_TRUE(is_dns1123_label("0abc").empty());
  EXPECT_EQ(is_dns1123_label("a.b"), Errors{"must not contain dots"});
  EXPECT_EQ(is_dns1123_label("A"), Errors{kLabelMsg});
  EXPECT_EQ(is_dns1123_label(std::string(64, 'a')), Errors{"must be no more than 63 characters"});
}

TEST(NamesTest, Dns1035Label) {
  EXPECT_TRUE(is_dns1035_label("web").empty());
  const Errors e = is_dns1035_label("1web");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0],
            "a DNS-1035 label must consist of lower case alphanumeric "
            "characters or '-', start "
            "with an alphabetic character, and end with an alphanumeric "
            "character (e.g. "
            "'my-name',  or 'abc-123', regex used for validation is "
            "'[a-z]([-a-z0-9]*[a-z0-9])?')");
}

TEST(NamesTest, QualifiedName) {
  EXPECT_TRUE(is_qualified_name("app").empty());
  EXPECT_TRUE(is_qualified_name("app.kubernetes.io/name").empty());
  EXPECT_TRUE(is_qualified_name("My_Key.1").empty());
  const std::string name_part = kQualifiedNamePart;
  EXPECT_EQ(is_qualified_name("a@b"), Errors{name_part});
  EXPECT_EQ(is_qualified_name(""), (Errors{"name part must be non-empty", name_part}));
  EXPECT_EQ(is_qualified_name("/a"), Errors{"prefix part must be non-empty"});
  EXPECT_EQ(is_qualified_name("Example.com/a"),
            Errors{std::string("prefix part ") + kSubdomainMsg});
  EXPECT_EQ(is_qualified_name(std::string(64, 'a')),
            Errors{"name part must be no more than 63 characters"});
  const Errors three = is_qualified_name("a/b/c");
  ASSERT_EQ(three.size(), 1u);
  EXPECT_EQ(three[0].rfind("a qualified name must consist of", 0), 0u);
  EXPECT_NE(three[0].find("with an optional DNS subdomain prefix and '/' (e.g. "
                          "'example.com/MyName')"),
            std::string::npos);
}

TEST(NamesTest, LabelValue) {
  EXPECT_TRUE(is_valid_label_value("").empty());
  EXPECT_TRUE(is_valid_label_value("v1.2_3-x").empty());
  const Errors e = is_valid_label_value("-x");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0],
            "a valid label must be an empty string or consist of "
            "alphanumeric characters, '-', "
            "'_' or '.', and must start and end with an alphanumeric "
            "character (e.g. 'MyValue',  "
            "or 'my_value',  or '12345', regex used for validation is "
            "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
  EXPECT_EQ(is_valid_label_value(std::string(64, 'a')),
            Errors{"must be no more than 63 characters"});
}

TEST(NamesTest, ConfigMapKeyEnvVarAndPorts) {
  EXPECT_TRUE(is_config_map_key("app.properties").empty());
  EXPECT_EQ(is_config_map_key("..a"), Errors{"must not start with '..'"});
  EXPECT_EQ(is_config_map_key("a/b").size(), 1u);
  EXPECT_TRUE(is_env_var_name("MY_VAR").empty());
  EXPECT_EQ(is_env_var_name("1VAR").size(), 1u);
  EXPECT_TRUE(is_valid_port_name("http").empty());
  EXPECT_EQ(is_valid_port_name("80"), Errors{"must contain at least one letter (a-z)"});
  EXPECT_EQ(is_valid_port_name("a--b"), Errors{"must not contain consecutive hyphens"});
  EXPECT_TRUE(is_valid_port_num(443).empty());
  EXPECT_EQ(is_valid_port_num(0), Errors{"must be between 1 and 65535, inclusive"});
}

}  // namespace
}  // namespace skiff
