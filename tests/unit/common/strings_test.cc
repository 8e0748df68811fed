#include "common/strings.h"

#include <gtest/gtest.h>

#include <string>

namespace skiff {
namespace {

TEST(GoQuoteTest, MatchesStrconvQuote) {
  EXPECT_EQ(go_quote(""), "\"\"");
  EXPECT_EQ(go_quote("abc"), "\"abc\"");
  EXPECT_EQ(go_quote("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(go_quote("\n\t\r\a\b\f\v"), R"("\n\t\r\a\b\f\v")");
  EXPECT_EQ(go_quote(std::string("\x00\x1f\x7f", 3)), R"("\x00\x1f\x7f")");
  EXPECT_EQ(go_quote("h\xC3\xA9llo \xE4\xB8\x96"), "\"h\xC3\xA9llo \xE4\xB8\x96\"");
  EXPECT_EQ(go_quote("\xFF"), R"("\xff")");
  EXPECT_EQ(go_quote("\xC2\x80"), R"("\u0080")");
  EXPECT_EQ(go_quote("\xE2\x80\x8B"), R"("\u200b")");
  EXPECT_EQ(go_quote("\xF3\xA0\x80\x81"), R"("\U000e0001")");
}

TEST(Utf8Test, ValidationAndRepair) {
  EXPECT_EQ(find_invalid_utf8("plain \xC3\xA9"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("ab\xC3"), 2u);
  EXPECT_EQ(find_invalid_utf8("\xC0\x80"), 0u) << "overlong";
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\x80"), 0u) << "surrogate";
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u) << "above U+10FFFF";
  EXPECT_EQ(replace_invalid_utf8("a\xFF\xFE"
                                 "b"),
            "a\xEF\xBF\xBD\xEF\xBF\xBD"
            "b");
  size_t len = 0;
  EXPECT_EQ(decode_utf8("\xE4\xB8\x96", &len), 0x4E16);
  EXPECT_EQ(len, 3u);
  std::string out;
  append_utf8(out, 0x1F600);
  EXPECT_EQ(out, "\xF0\x9F\x98\x80");
}

TEST(GoQuoteTest, EscapesAsStrconvQuote) {
  EXPECT_EQ(go_quote("plain"), "\"plain\"");
  EXPECT_EQ(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(go_quote("tab\tnl\n"), "\"tab\\tnl\\n\"");
  EXPECT_EQ(go_quote(std::string("\x01", 1)), "\"\\x01\"");
  EXPECT_EQ(go_quote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(go_quote("\xff"), "\"\\xff\"");
  EXPECT_EQ(go_quote("\xc2\xa0"), "\"\\u00a0\"");
  EXPECT_EQ(go_quote("\xe1\x9a\x80"), "\"\\u1680\"") << "a space other than U+0020";
  EXPECT_EQ(go_quote("\xef\xbf\xbd"), "\"\xef\xbf\xbd\"") << "U+FFFD is printable";
}

TEST(Utf8Test, InvalidSequencesBecomeReplacementCharacters) {
  EXPECT_EQ(replace_invalid_utf8("plain"), "plain");
  EXPECT_EQ(replace_invalid_utf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(replace_invalid_utf8("a\xFF"
                                 "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(replace_invalid_utf8("\xC3"), "\xEF\xBF\xBD");
  EXPECT_EQ(replace_invalid_utf8("\xED\xA0\x80"),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");                        // surrogate
  EXPECT_EQ(replace_invalid_utf8("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
}

TEST(AsciiTest, LowerAndTrimSpace) {
  EXPECT_EQ(ascii_lower("CronTab-List_2 \xC3\x89"), "crontab-list_2 \xC3\x89");
  EXPECT_EQ(trim_space(" \t\n\v\f\rx y\r\n"), "x y");
  EXPECT_EQ(trim_space(" \t "), "");
  EXPECT_EQ(trim_space(""), "");
}

}  // namespace
}  // namespace skiff
