#include "agent/runtime/cri_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

namespace skiff::agent::runtime {
namespace {

using namespace std::chrono_literals;

TimePoint at(int64_t seconds) { return TimePoint(std::chrono::seconds(seconds)); }

TEST(CriLogLineTest, ParsesWhatConmonWrites) {
  auto e = parse_cri_log_line("2024-01-02T03:04:05.123456789+00:00 stdout F hello world");
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_EQ(e->stream, LogStream::kStdout);
  EXPECT_FALSE(e->partial);
  EXPECT_EQ(e->content, "hello world");
  EXPECT_EQ(e->timestamp, "2024-01-02T03:04:05.123456789+00:00");
  EXPECT_EQ(
      std::chrono::duration_cast<std::chrono::nanoseconds>(e->time.time_since_epoch()).count(),
      1704164645123456789);

  e = parse_cri_log_line("2024-01-02T05:04:05.5+02:00 stderr P part");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->stream, LogStream::kStderr);
  EXPECT_TRUE(e->partial);
  EXPECT_EQ(e->time, parse_rfc3339("2024-01-02T03:04:05.5Z").value());

  e = parse_cri_log_line("2024-01-02T03:04:05Z stdout F ");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->content, "");
  e = parse_cri_log_line("2024-01-02T03:04:05Z stdout F");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->content, "");
  e = parse_cri_log_line("2024-01-02T03:04:05Z stdout F:x  two  spaces ");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->content, " two  spaces ");

  for (const char* bad : {"", "garbage", "2024-01-02T03:04:05Z stdin F x", "yesterday stdout F x",
                          "2024-01-02T03:04:05Z stdout X x"}) {
    EXPECT_EQ(parse_cri_log_line(bad).status().code(), StatusCode::kBadRequest) << bad;
  }
}

TEST(CriLogLineTest, FormatRoundTrips) {
  TimePoint t = at(1704164645) + std::chrono::nanoseconds(120000000);
  std::string line = format_cri_log_line(t, LogStream::kStderr, true, "abc");
  EXPECT_EQ(line, "2024-01-02T03:04:05.12Z stderr P abc\n");
  auto e = parse_cri_log_line(std::string_view(line).substr(0, line.size() - 1));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->time, t);
  EXPECT_EQ(e->content, "abc");
}

class CriLogReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/skiff-log-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/c.log";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void append(const std::string& path, int64_t second, LogStream s, bool partial,
              const std::string& text) {
    std::ofstream(path, std::ios::app) << format_cri_log_line(at(second), s, partial, text);
  }

  std::string read(const LogOptions& o) {
    std::string out;
    Status s = read_container_log(path_, o, [&](std::string_view t) {
      out.append(t);
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.to_string();
    return out;
  }

  std::string dir_, path_;
};

TEST_F(CriLogReadTest, JoinsPartialLinesAndInterleavesStreams) {
  append(path_, 100, LogStream::kStdout, true, "hel");
  append(path_, 101, LogStream::kStderr, false, "err line");
  append(path_, 102, LogStream::kStdout, false, "lo");
  std::ofstream(path_, std::ios::app) << "not a log line\n";
  append(path_, 103, LogStream::kStdout, false, "");
  EXPECT_EQ(read({}), "err line\nhello\n\n");
}

TEST_F(CriLogReadTest, TailSinceTimestampsAndLimit) {
  for (int i = 0; i < 5; ++i)
    append(path_, 100 + i, LogStream::kStdout, false, "l" + std::to_string(i));
  LogOptions tail;
  tail.tail_lines = 2;
  EXPECT_EQ(read(tail), "l3\nl4\n");
  tail.tail_lines = 0;
  EXPECT_EQ(read(tail), "");
  tail.tail_lines = 99;
  EXPECT_EQ(read(tail), "l0\nl1\nl2\nl3\nl4\n");

  LogOptions since;
  since.since = at(103);
  EXPECT_EQ(read(since), "l3\nl4\n");

  LogOptions ts;
  ts.tail_lines = 1;
  ts.timestamps = true;
  EXPECT_EQ(read(ts), "1970-01-01T00:01:44Z l4\n");

  LogOptions limit;
  limit.limit_bytes = 7;
  EXPECT_EQ(read(limit), "l0\nl1\nl");
}

TEST_F(CriLogReadTest, ReadsTheRotatedFileFirst) {
  append(path_ + ".1", 100, LogStream::kStdout, false, "old");
  append(path_, 101, LogStream::kStdout, false, "new");
  EXPECT_EQ(read({}), "old\nnew\n");
  LogOptions tail;
  tail.tail_lines = 1;
  EXPECT_EQ(read(tail), "new\n");
}

TEST_F(CriLogReadTest, MissingLogIsNotFound) {
  Status s = read_container_log(dir_ + "/none.log", {}, [](std::string_view) { return true; });
  EXPECT_TRUE(s.is_not_found());
}

TEST_F(CriLogReadTest, SinkCanStopTheRead) {
  for (int i = 0; i < 3; ++i) append(path_, 100 + i, LogStream::kStdout, false, "x");
  int calls = 0;
  Status s = read_container_log(path_, {}, [&](std::string_view) { return ++calls < 2; });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(calls, 2);
}

TEST_F(CriLogReadTest, FollowSeesAppendsAndRotationUntilTheWriterIsDone) {
  append(path_, 100, LogStream::kStdout, false, "before");
  std::atomic<bool> done{false};
  std::string out;
  std::thread reader([&] {
    LogOptions o;
    o.follow = true;
    o.poll_interval = 50ms;
    o.keep_following = [&] { return !done.load(); };
    Status s = read_container_log(path_, o, [&](std::string_view t) {
      out.append(t);
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.to_string();
  });
  append(path_, 101, LogStream::kStdout, true, "split ");
  append(path_, 102, LogStream::kStdout, false, "line");
  std::filesystem::rename(path_, path_ + ".1");
  append(path_, 103, LogStream::kStdout, false, "after rotation");
  done = true;
  reader.join();
  EXPECT_EQ(out, "before\nsplit line\nafter rotation\n");
}

}  // namespace
}  // namespace skiff::agent::runtime
