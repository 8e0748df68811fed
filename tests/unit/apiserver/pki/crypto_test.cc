#include "apiserver/pki/crypto.h"

#include <gtest/gtest.h>

#include <regex>

namespace skiff::apiserver::pki {
namespace {

TEST(EncodingTest, Base64MatchesRfc4648Vectors) {
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
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_EQ(base64_decode(encoded), plain);
    std::string url = encoded;
    url.erase(url.find_last_not_of('=') + 1);
    EXPECT_EQ(base64url_encode(plain), url);
    EXPECT_EQ(base64url_decode(url), plain);
  }
  EXPECT_EQ(base64_encode("\xfb\xff"), "+/8=");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
}

TEST(EncodingTest, DecodersAreStrict) {
  for (const char* bad : {"Zg", "Zg=", "Z===", "Zh==", "Zm9v\n", "Zm 9v", "-_8=", "=Zg="}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
  for (const char* bad : {"Zg==", "Z", "Zh", "+/8", "Zm9v!"}) {
    EXPECT_FALSE(base64url_decode(bad).has_value()) << bad;
  }
  EXPECT_EQ(hex_decode("00fF"), std::string("\x00\xff", 2));
  EXPECT_FALSE(hex_decode("0").has_value());
  EXPECT_FALSE(hex_decode("0g").has_value());
  EXPECT_EQ(hex_encode(std::string("\x00\xab", 2)), "00ab");
}

TEST(EncodingTest, RandomUuidIsVersion4) {
  std::regex shape("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(std::regex_match(random_uuid(), shape));
  EXPECT_NE(random_uuid(), random_uuid());
}

TEST(EncodingTest, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal("", "a"));
}

TEST(EncodingTest, Sha256KnownAnswer) {
  EXPECT_EQ(hex_encode(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace skiff::apiserver::pki
