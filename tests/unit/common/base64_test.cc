#include "common/base64.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace skiff {
namespace {

std::string error_of(std::string_view text) {
  auto r = base64_decode(text);
  EXPECT_FALSE(r.ok()) << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kBadRequest);
  return r.status().message();
}

TEST(Base64Test, EncodesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xFB\xFF", 2)), "+/8=");
}

TEST(Base64Test, DecodesAndRoundTripsBinary) {
  EXPECT_EQ(*base64_decode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(*base64_decode("Zg=="), "f");
  EXPECT_EQ(*base64_decode(""), "");
  EXPECT_EQ(*base64_decode("Zm9v\r\nYmFy\n"), "foobar") << "newlines are ignored, as in Go";
  EXPECT_EQ(*base64_decode("Zh=="), "f") << "non-zero trailing bits are accepted, as in Go";
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  EXPECT_EQ(*base64_decode(base64_encode(all)), all);
}

TEST(Base64Test, ErrorsReportGoOffsets) {
  EXPECT_EQ(error_of("Zm9v!"), "illegal base64 data at input byte 4");
  EXPECT_EQ(error_of("Zg"), "illegal base64 data at input byte 0");
  EXPECT_EQ(error_of("Zm9"), "illegal base64 data at input byte 0");
  EXPECT_EQ(error_of("Z"), "illegal base64 data at input byte 0");
  EXPECT_EQ(error_of("Zg="), "illegal base64 data at input byte 3");
  EXPECT_EQ(error_of("Zg==Zg=="), "illegal base64 data at input byte 4");
  EXPECT_EQ(error_of("=Zg="), "illegal base64 data at input byte 0");
  EXPECT_EQ(error_of("Zm9v-_"), "illegal base64 data at input byte 4");
  EXPECT_EQ(error_of("Zg=x"), "illegal base64 data at input byte 2");
}

TEST(Base64Test, UrlVariantHasNoPadding) {
  EXPECT_EQ(base64url_encode(std::string("\xFB\xFF", 2)), "-_8");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(*base64url_decode("-_8"), std::string("\xFB\xFF", 2));
  EXPECT_EQ(*base64url_decode("Zm9vYmFy"), "foobar");
  EXPECT_FALSE(base64url_decode("Zg==").ok());
  EXPECT_FALSE(base64url_decode("Z").ok());
}

TEST(Base64Test, DecodesWhatItEncodes) {
  EXPECT_EQ(*base64_decode("aGVsbG8="), "hello");
  EXPECT_EQ(*base64_decode("aGVsbG8h"), "hello!");
  EXPECT_EQ(*base64_decode("aGk="), "hi");
  EXPECT_EQ(*base64_decode("aA=="), "h");
  EXPECT_EQ(*base64_decode("aG\nVs\r\nbG8="), "hello");
  EXPECT_EQ(error_of("aGVsbG8"), "illegal base64 data at input byte 4");
  EXPECT_EQ(error_of("a==="), "illegal base64 data at input byte 1");
  EXPECT_EQ(error_of("aGk=aGk="), "illegal base64 data at input byte 4");
  EXPECT_EQ(error_of("aG-k"), "illegal base64 data at input byte 2");
  for (const std::string& s :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    EXPECT_EQ(*base64_decode(base64_encode(s)), s);
  }
  EXPECT_EQ(base64_encode("hello"), "aGVsbG8=");
}

TEST(Base64Test, StrictDecodersAcceptOneEncodingOnly) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(*base64_decode_strict(encoded), plain);
    std::string url = encoded;
    url.erase(url.find_last_not_of('=') + 1);
    EXPECT_EQ(base64url_encode(plain), url);
    EXPECT_EQ(*base64url_decode_strict(url), plain);
  }
  for (const char* bad : {"Zg", "Zg=", "Z===", "Zh==", "Zm9v\n", "Zm 9v", "-_8=", "=Zg="}) {
    EXPECT_FALSE(base64_decode_strict(bad).ok()) << bad;
  }
  for (const char* bad : {"Zg==", "Z", "Zh", "+/8", "Zm9v!"}) {
    EXPECT_FALSE(base64url_decode_strict(bad).ok()) << bad;
  }
  EXPECT_EQ(base64_decode_strict("Zh==").status().message(), "illegal base64 data at input byte 2");
}

}  // namespace
}  // namespace skiff
