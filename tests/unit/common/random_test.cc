#include "common/random.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace skiff {
namespace {

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

TEST(RandomTest, UuidIsVersion4) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string u = new_uuid();
    ASSERT_EQ(u.size(), 36u);
    for (size_t j = 0; j < u.size(); ++j) {
      if (j == 8 || j == 13 || j == 18 || j == 23) {
        EXPECT_EQ(u[j], '-');
      } else {
        EXPECT_TRUE(is_lower_hex(u[j])) << u;
      }
    }
    EXPECT_EQ(u[14], '4') << u;
    EXPECT_NE(std::string("89ab").find(u[19]), std::string::npos) << u;
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(RandomTest, GenerateNameUsesKubernetesAlphabet) {
  for (int i = 0; i < 200; ++i) {
    const std::string s = generate_name_suffix();
    ASSERT_EQ(s.size(), 5u);
    for (const char c : s) EXPECT_NE(kNameSuffixAlphabet.find(c), std::string_view::npos) << s;
  }
  const std::string name = generate_name("web-");
  EXPECT_EQ(name.size(), 9u);
  EXPECT_EQ(name.rfind("web-", 0), 0u);
  const std::string long_name = generate_name(std::string(80, 'a'));
  EXPECT_EQ(long_name.size(), 63u);
  EXPECT_EQ(long_name.substr(0, 58), std::string(58, 'a'));
}

TEST(RandomTest, StringsAndBytes) {
  EXPECT_EQ(random_bytes(0).size(), 0u);
  EXPECT_EQ(random_bytes(1000).size(), 1000u);
  const std::string hex = random_hex(16);
  ASSERT_EQ(hex.size(), 32u);
  for (const char c : hex) EXPECT_TRUE(is_lower_hex(c));
  EXPECT_NE(random_hex(16), random_hex(16));
  EXPECT_EQ(random_string(10, "x"), "xxxxxxxxxx");
  EXPECT_EQ(random_string(10, ""), "");
  EXPECT_EQ(random_below(1), 0u);
  EXPECT_EQ(random_below(0), 0u);
}

TEST(RandomTest, RoughlyUniform) {
  std::map<char, int> counts;
  const std::string s = random_string(27000, kNameSuffixAlphabet);
  for (const char c : s) ++counts[c];
  ASSERT_EQ(counts.size(), kNameSuffixAlphabet.size());
  for (const auto& [c, n] : counts) {
    EXPECT_GT(n, 700) << c;
    EXPECT_LT(n, 1300) << c;
  }
}

TEST(RandomTest, IsThreadSafe) {
  std::vector<std::thread> threads;
  std::vector<std::vector<std::string>> out(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&out, t] {
      for (int i = 0; i < 200; ++i) out[t].push_back(new_uuid());
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& v : out) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 1600u);
}

}  // namespace
}  // namespace skiff
