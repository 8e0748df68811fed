#include "common/dynamic_library.h"

#include <gtest/gtest.h>

namespace skiff {
namespace {

TEST(DynamicLibraryTest, ResolvesFunctionsThatThenWork) {
  const char* (*version)() = nullptr;
  Status s = load_library("libz.so.1", {{"zlibVersion", reinterpret_cast<void**>(&version)}});
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_NE(version, nullptr);
  EXPECT_EQ(std::string(version()).substr(0, 2), "1.");
}

TEST(DynamicLibraryTest, AMissingLibraryIsUnavailableByName) {
  void* slot = nullptr;
  Status s = load_library("libskiff-no-such-library.so.7", {{"f", &slot}});
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("cannot load libskiff-no-such-library.so.7"), std::string::npos)
      << s.message();
}

TEST(DynamicLibraryTest, AMissingFunctionIsUnavailableByName) {
  void* a = nullptr;
  void* b = nullptr;
  Status s = load_library("libz.so.1", {{"zlibVersion", &a}, {"skiff_no_such_function", &b}});
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "libz.so.1 lacks skiff_no_such_function");
}

}  // namespace
}  // namespace skiff
