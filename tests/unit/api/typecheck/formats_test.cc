#include "api/typecheck/formats.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace skiff::api {
namespace {

TEST(Quantity, AcceptsKubernetesForms) {
  for (const char* q : {"0", "1", "500m", "1Gi", "1.5Gi", "100Ki", "1e3", "1E-3", "2k", "-1", "+1",
                        ".5", "5.", "10n", "1u", "3P", "4Ei", "1e+20", "0.0001"}) {
    EXPECT_EQ(quantity_error(q), "") << q;
  }
}

TEST(Quantity, RejectsWithKubernetesMessages) {
  const std::string format =
      "quantities must match the regular expression "
      "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
  for (const char* q : {"", "abc", "1 Gi", "1Gi ", "-abc", "1..2", "1e3e", "1KiB"}) {
    EXPECT_EQ(quantity_error(q), format) << q;
  }
  for (const char* q : {"1K", "1mi", "1e", "1e99999999999"}) {
    EXPECT_EQ(quantity_error(q), "unable to parse quantity's suffix") << q;
  }
  // Go's parser reads a missing number as zero.
  EXPECT_EQ(quantity_error("-"), "");
  EXPECT_EQ(quantity_error("Mi"), "");
}

TEST(GoDuration, ParsesAndFormatsAsGo) {
  for (const char* d :
       {"0", "1h0m0s", "1.5s", "300ms", "-2m", "1h30m", "1us", "1\xC2\xB5s", ".5h"}) {
    EXPECT_TRUE(is_go_duration(d)) << d;
  }
  for (const char* d : {"", "1", "h", "1x", "1.s.", "1 h", "-", "9999999999999999999h"}) {
    EXPECT_FALSE(is_go_duration(d)) << d;
  }
  EXPECT_EQ(format_go_duration(0), "0s");
  EXPECT_EQ(format_go_duration(3600'000'000'000), "1h0m0s");
  EXPECT_EQ(format_go_duration(1'500'000'000), "1.5s");
  EXPECT_EQ(format_go_duration(300'000'000), "300ms");
  EXPECT_EQ(format_go_duration(1'500), "1.5\xC2\xB5s");
  EXPECT_EQ(format_go_duration(7), "7ns");
  EXPECT_EQ(format_go_duration(-90'000'000'000), "-1m30s");
  EXPECT_EQ(format_go_duration(INT64_MIN), "-2562047h47m16.854775808s");
}

TEST(Rfc3339, ParsesAndFormats) {
  auto t = parse_rfc3339("2024-02-29T23:59:59Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->seconds, 1709251199);
  EXPECT_EQ(*format_rfc3339(*t, 0), "2024-02-29T23:59:59Z");

  auto off = parse_rfc3339("2024-03-01T01:59:59.5+02:00");
  ASSERT_TRUE(off);
  EXPECT_EQ(off->seconds, 1709251199);
  EXPECT_EQ(off->nanos, 500000000);
  EXPECT_EQ(*format_rfc3339(*off, 6), "2024-02-29T23:59:59.500000Z");

  EXPECT_EQ(*format_rfc3339({0, 0}, 0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(*format_rfc3339({-1, 0}, 0), "1969-12-31T23:59:59Z");
  EXPECT_EQ(*format_rfc3339({kGoZeroTimeSeconds, 0}, 0), "0001-01-01T00:00:00Z");
  EXPECT_FALSE(format_rfc3339({INT64_MAX, 0}, 0));
  EXPECT_FALSE(format_rfc3339({INT64_MIN, 0}, 0));
  EXPECT_FALSE(format_rfc3339({0, -1}, 0));

  for (const char* bad :
       {"", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-01-01", "2024-01-01 00:00:00Z",
        "2024-01-01T24:00:00Z", "2024-01-01T00:00:60Z", "2024-01-01T00:00:00",
        "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00+0200", "2024-01-01T00:00:00Zjunk",
        "2024-13-01T00:00:00Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
}

TEST(Base64, DecodesStrictlyAndEncodes) {
  EXPECT_EQ(*base64_decode("aGVsbG8="), "hello");
  EXPECT_EQ(*base64_decode("aGVsbG8h"), "hello!");
  EXPECT_EQ(*base64_decode("aGk="), "hi");
  EXPECT_EQ(*base64_decode("aA=="), "h");
  EXPECT_EQ(*base64_decode("aG\nVs\r\nbG8="), "hello");
  EXPECT_EQ(*base64_decode(""), "");
  size_t at = 99;
  EXPECT_FALSE(base64_decode("aGVsbG8", &at));
  EXPECT_EQ(at, 4u);
  EXPECT_FALSE(base64_decode("a===", &at));
  EXPECT_EQ(at, 1u);
  EXPECT_FALSE(base64_decode("aGk=aGk=", &at));
  EXPECT_EQ(at, 4u);
  EXPECT_FALSE(base64_decode("aG-k", &at));
  EXPECT_EQ(at, 2u);
  for (const std::string& s :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    EXPECT_EQ(*base64_decode(base64_encode(s)), s);
  }
  EXPECT_EQ(base64_encode("hello"), "aGVsbG8=");
}

TEST(Utf8, InvalidSequencesBecomeReplacementCharacters) {
  EXPECT_EQ(sanitize_utf8("plain"), "plain");
  EXPECT_EQ(sanitize_utf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(sanitize_utf8("a\xFF"
                          "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(sanitize_utf8("\xC3"), "\xEF\xBF\xBD");
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(sanitize_utf8("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong
}

}  // namespace
}  // namespace skiff::api
