#include "common/quantity.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

namespace skiff {
namespace {

Quantity q(std::string_view s) {
  auto r = Quantity::parse(s);
  EXPECT_TRUE(r.ok()) << s << ": " << r.status().to_string();
  return r.ok() ? *r : Quantity();
}

std::string canonical(std::string_view s) { return q(s).to_string(); }

TEST(QuantityTest, CanonicalForms) {
  EXPECT_EQ(canonical("1000m"), "1");
  EXPECT_EQ(canonical("1024Mi"), "1Gi");
  EXPECT_EQ(canonical("0.5"), "500m");
  EXPECT_EQ(canonical("1.5Gi"), "1536Mi");
  EXPECT_EQ(canonical("1000M"), "1G");
  EXPECT_EQ(canonical("1.1"), "1100m");
  EXPECT_EQ(canonical("1.1M"), "1100k");
  EXPECT_EQ(canonical("0.001"), "1m");
  EXPECT_EQ(canonical("1.0"), "1");
  EXPECT_EQ(canonical(".001Ki"), "1024m");
  EXPECT_EQ(canonical(".000001Ki"), "1024u");
  EXPECT_EQ(canonical(".000000001Ki"), "1024n");
  EXPECT_EQ(canonical(".000000000001Ki"), "2n");
  EXPECT_EQ(canonical("0.5Ki"), "512");
  EXPECT_EQ(canonical("8Ki"), "8Ki");
  EXPECT_EQ(canonical("1.2e3"), "1200");
  EXPECT_EQ(canonical("1.3E+6"), "1300e3");
  EXPECT_EQ(canonical("1000E"), "1e21");
  EXPECT_EQ(canonical("-1024Mi"), "-1Gi");
  EXPECT_EQ(canonical("-0.5"), "-500m");
  EXPECT_EQ(canonical("0.00000012345"), "124n");
  EXPECT_EQ(canonical("3.001n"), "4n");
  EXPECT_EQ(canonical("0.9n"), "1n");
  EXPECT_EQ(canonical("9Ei"), "9223372036854775807");
  EXPECT_EQ(canonical("100.0350k"), "100035");
  EXPECT_EQ(canonical("12345678901234567890"), "12345678901234567890");
}

TEST(QuantityTest, CanonicalInputIsKeptVerbatim) {
  for (const char* s :
       {"0",   "1Ki",   "300Mi", "6Ki",   "1001Gi", "5",    "500m",     "1G",  "1m",
        "80m", "1080m", "1T",    "1E",    "1e21",   "5e21", "1234567M", "3k",  "1025",
        "1e9", "1e-3",  "1e-9",  "80e-3", "300e6",  "1e3",  "1n",       "80n", "1080u"}) {
    EXPECT_EQ(canonical(s), s);
  }
  EXPECT_EQ(canonical("+1"), "+1") << "Kubernetes keeps an explicit sign it considers canonical";
  EXPECT_EQ(canonical("1E3"), "1E3");
  EXPECT_EQ(canonical("01"), "01");
  // Kubernetes' test for "already canonical" looks at the digits and the scale
  // only.
  EXPECT_EQ(canonical("100.035k"), "100.035k");
  EXPECT_EQ(canonical("1."), "1.");
  EXPECT_EQ(canonical("1.G"), "1.G");
}

TEST(QuantityTest, ZeroInAnyForm) {
  for (const char* s : {"0", "0n", "0m", "0Ki", "0k", "0Gi", "-0", "+0", "0.0", "00", "-", "."}) {
    EXPECT_TRUE(q(s).is_zero()) << s;
    EXPECT_EQ(q(s).to_string(), "0") << s;
  }
  EXPECT_EQ(Quantity().to_string(), "0");
}

TEST(QuantityTest, Formats) {
  EXPECT_EQ(q("1Ki").format(), Quantity::Format::kBinarySI);
  EXPECT_EQ(q("1k").format(), Quantity::Format::kDecimalSI);
  EXPECT_EQ(q("1e3").format(), Quantity::Format::kDecimalExponent);
  EXPECT_EQ(q("1").format(), Quantity::Format::kDecimalSI);
  EXPECT_EQ(q("0.000000000001Ki").format(), Quantity::Format::kDecimalSI)
      << "binary amounts below 1 switch to decimal";
}

TEST(QuantityTest, ParseErrors) {
  const std::string format_wrong =
      "quantities must match the regular expression "
      "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
  const std::string suffix = "unable to parse quantity's suffix";
  EXPECT_EQ(Quantity::parse("").status().message(), format_wrong);
  for (const char* s : {"1.1.M", "1+1.0M", "0.1am", "aoeu", " 1", "1 ", "1x", "abc"}) {
    auto r = Quantity::parse(s);
    ASSERT_FALSE(r.ok()) << s;
    EXPECT_EQ(r.status().code(), StatusCode::kBadRequest);
    EXPECT_EQ(r.status().message(), format_wrong) << s;
  }
  for (const char* s : {"0.1mi", ".5i", "1i", "-3.01i", "-3.01e-", "1K", "1e", "1ee", "1Ki5"}) {
    auto r = Quantity::parse(s);
    ASSERT_FALSE(r.ok()) << s;
    EXPECT_EQ(r.status().message(), suffix) << s;
  }
  EXPECT_EQ(Quantity::parse(".e-20").status().message(),
            "unable to parse numeric part of quantity");
}

TEST(QuantityTest, ValuesRoundAwayFromZeroAndSaturate) {
  EXPECT_EQ(q("1.5").milli_value(), 1500);
  EXPECT_EQ(q("1.5").value(), 2);
  EXPECT_EQ(q("100m").value(), 1);
  EXPECT_EQ(q("-100m").value(), -1);
  EXPECT_EQ(q("250m").milli_value(), 250);
  EXPECT_EQ(q("1n").milli_value(), 1);
  EXPECT_EQ(q("1Gi").value(), int64_t{1} << 30);
  EXPECT_EQ(q("1Gi").milli_value(), (int64_t{1} << 30) * 1000);
  EXPECT_EQ(q("2").scaled_value(3), 1);
  EXPECT_EQ(q("1500").scaled_value(3), 2);
  EXPECT_EQ(q("9Ei").value(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(q("9Ei").milli_value(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(q("-1e30").value(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(q("1e2000000000").value(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(q("-9223372036854775808").value(), std::numeric_limits<int64_t>::min());
  EXPECT_DOUBLE_EQ(q("1.5Ki").as_approximate_double(), 1536.0);
}

TEST(QuantityTest, CompareIgnoresFormat) {
  EXPECT_EQ(q("1Ki"), q("1024"));
  EXPECT_EQ(q("1"), q("1000m"));
  EXPECT_LT(q("50m"), q("100m"));
  EXPECT_GT(q("10000T"), q("100Gi"));
  EXPECT_LT(q("-1"), q("0"));
  EXPECT_LT(q("-2"), q("-1"));
  EXPECT_EQ(q("0").compare(q("0m")), 0);
  EXPECT_EQ(q("1e3").compare(q("999")), 1);
  EXPECT_EQ(q("1e2000000000").compare(q("1e1999999999")), 1);
}

TEST(QuantityTest, Constructors) {
  EXPECT_EQ(Quantity::from_int(1000).to_string(), "1k");
  EXPECT_EQ(Quantity::from_int(1234000).to_string(), "1234k");
  EXPECT_EQ(Quantity::from_int(1024, Quantity::Format::kBinarySI).to_string(), "1Ki");
  EXPECT_EQ(Quantity::from_int(1024 * 1024, Quantity::Format::kBinarySI).to_string(), "1Mi");
  EXPECT_EQ(Quantity::from_int(1000000, Quantity::Format::kDecimalExponent).to_string(), "1e6");
  EXPECT_EQ(Quantity::from_int(-5).to_string(), "-5");
  EXPECT_EQ(Quantity::from_milli(1).to_string(), "1m");
  EXPECT_EQ(Quantity::from_milli(1000).to_string(), "1");
  EXPECT_EQ(Quantity::from_milli(1024, Quantity::Format::kBinarySI).to_string(), "1024m");
  EXPECT_EQ(Quantity::from_milli(1000000, Quantity::Format::kDecimalExponent).to_string(), "1e3");
  EXPECT_EQ(Quantity::from_int(std::numeric_limits<int64_t>::min()).value(),
            std::numeric_limits<int64_t>::min());
}

TEST(QuantityTest, FromJson) {
  using nlohmann::json;
  EXPECT_EQ(Quantity::from_json(json(" 1 "))->to_string(), "1");
  EXPECT_EQ(Quantity::from_json(json(2))->to_string(), "2");
  EXPECT_EQ(Quantity::from_json(json(-1))->to_string(), "-1");
  EXPECT_EQ(Quantity::from_json(json(0.5))->to_string(), "500m");
  EXPECT_TRUE(Quantity::from_json(json())->is_zero());
  EXPECT_FALSE(Quantity::from_json(json(true)).ok());
  EXPECT_FALSE(Quantity::from_json(json("abc")).ok());
}

TEST(QuantityTest, AcceptsEveryKubernetesForm) {
  for (const char* s : {"0", "1", "500m", "1Gi", "1.5Gi", "100Ki", "1e3", "1E-3", "2k", "-1", "+1",
                        ".5", "5.", "10n", "1u", "3P", "4Ei", "1e+20", "0.0001"}) {
    EXPECT_TRUE(Quantity::parse(s).ok()) << s;
  }
  // Go's parser reads a missing number as zero.
  EXPECT_TRUE(Quantity::parse("-").ok());
  EXPECT_TRUE(Quantity::parse("Mi").ok());
}

TEST(QuantityTest, RejectsWithKubernetesMessages) {
  const std::string format =
      "quantities must match the regular expression "
      "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
  for (const char* s : {"", "abc", "1 Gi", "1Gi ", "-abc", "1..2", "1e3e", "1KiB"}) {
    EXPECT_EQ(Quantity::parse(s).status().message(), format) << s;
  }
  for (const char* s : {"1K", "1mi", "1e", "1e99999999999"}) {
    EXPECT_EQ(Quantity::parse(s).status().message(), "unable to parse quantity's suffix") << s;
  }
}

}  // namespace
}  // namespace skiff
