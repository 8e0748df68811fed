#include "common/log.h"

#include <gtest/gtest.h>

#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace skiff {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    set_log_level(LogLevel::kInfo);
    set_log_sink([this](LogLevel, std::string_view line) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.emplace_back(line);
    });
  }
  void TearDown() override {
    set_log_sink(nullptr);
    set_log_level(LogLevel::kInfo);
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

  std::mutex mu_;
  std::vector<std::string> lines_;
};

TEST_F(LogTest, WritesKlogStyleLines) {
  SKIFF_LOG(Info) << "hello " << 42;
  SKIFF_LOGF(Warn, "retry %s in %d ms", "key", 250);
  SKIFF_LOG(Error) << "boom\n";
  const auto got = lines();
  ASSERT_EQ(got.size(), 3u);
  const std::regex header(R"(^[IWE]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ log_test\.cc:\d+\] .*\n$)");
  for (const auto& l : got) EXPECT_TRUE(std::regex_match(l, header)) << l;
  EXPECT_EQ(got[0][0], 'I');
  EXPECT_NE(got[0].find("] hello 42\n"), std::string::npos);
  EXPECT_EQ(got[1][0], 'W');
  EXPECT_NE(got[1].find("] retry key in 250 ms\n"), std::string::npos);
  EXPECT_EQ(got[2].find("boom\n\n"), std::string::npos) << "no doubled newline";
}

TEST_F(LogTest, LevelFiltersAndSkipsArgumentEvaluation) {
  int evaluated = 0;
  auto side_effect = [&] {
    ++evaluated;
    return "x";
  };
  SKIFF_LOG(Debug) << side_effect();
  SKIFF_LOGF(Debug, "%s", side_effect());
  EXPECT_EQ(evaluated, 0);
  EXPECT_TRUE(lines().empty());
  set_log_level(LogLevel::kDebug);
  SKIFF_LOG(Debug) << side_effect();
  EXPECT_EQ(evaluated, 1);
  EXPECT_EQ(lines().size(), 1u);
  set_log_level(LogLevel::kError);
  SKIFF_LOG(Warn) << "dropped";
  EXPECT_EQ(lines().size(), 1u);
  EXPECT_FALSE(log_enabled(LogLevel::kWarn));
  EXPECT_TRUE(log_enabled(LogLevel::kError));
}

TEST_F(LogTest, LongPrintfMessagesAreComplete) {
  const std::string big(5000, 'z');
  SKIFF_LOGF(Info, "%s|", big.c_str());
  ASSERT_EQ(lines().size(), 1u);
  EXPECT_NE(lines()[0].find(big + "|\n"), std::string::npos);
}

TEST_F(LogTest, ConcurrentLinesDoNotInterleave) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 100; ++i) SKIFF_LOG(Info) << "thread " << t << " line " << i;
    });
  }
  for (auto& th : threads) th.join();
  const auto got = lines();
  ASSERT_EQ(got.size(), 400u);
  for (const auto& l : got) {
    EXPECT_EQ(std::count(l.begin(), l.end(), '\n'), 1) << l;
  }
}

TEST_F(LogTest, UsableInIfElseWithoutBraces) {
  const bool flag = false;
  if (flag)
    SKIFF_LOG(Info) << "then";
  else
    SKIFF_LOG(Info) << "else";
  ASSERT_EQ(lines().size(), 1u);
  EXPECT_NE(lines()[0].find("] else"), std::string::npos);
}

TEST(LogLevelTest, ParseAndName) {
  EXPECT_EQ(*parse_log_level("DEBUG"), LogLevel::kDebug);
  EXPECT_EQ(*parse_log_level("warning"), LogLevel::kWarn);
  EXPECT_EQ(*parse_log_level("error"), LogLevel::kError);
  EXPECT_FALSE(parse_log_level("loud").ok());
  EXPECT_STREQ(log_level_name(LogLevel::kInfo), "info");
}

}  // namespace
}  // namespace skiff
