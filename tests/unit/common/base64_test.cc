#include "common/base64.h"

#include <gtest/gtest.h>

#include <string>

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

}  // namespace
}  // namespace skiff
