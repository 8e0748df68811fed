#include "apiserver/pki/crypto.h"

#include <gtest/gtest.h>

namespace skiff::apiserver::pki {
namespace {

TEST(EncodingTest, HexDecoderIsStrict) {
  EXPECT_EQ(hex_decode("00fF"), std::string("\x00\xff", 2));
  EXPECT_FALSE(hex_decode("0").has_value());
  EXPECT_FALSE(hex_decode("0g").has_value());
  EXPECT_EQ(hex_encode(std::string("\x00\xab", 2)), "00ab");
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
