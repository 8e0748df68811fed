#include "common/executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace skiff {
namespace {

using namespace std::chrono_literals;

// Waits (up to 10 s) until pred holds.
template <typename Pred>
bool eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return pred();
}

TEST(ExecutorTest, RunsPostedTasks) {
  Executor ex;
  std::atomic<int> n{0};
  for (int i = 0; i < 100; ++i) ex.post([&] { ++n; });
  EXPECT_TRUE(eventually([&] { return n == 100; }));
}

TEST(ExecutorTest, BlockedTasksGetTheirOwnThreadsUpToTheLimit) {
  Executor ex({.max_threads = 3, .idle_timeout = 10s});
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> started{0};
  for (int i = 0; i < 5; ++i) {
    ex.post([&] {
      ++started;
      std::unique_lock<std::mutex> l(mu);
      cv.wait(l, [&] { return release; });
    });
  }
  EXPECT_TRUE(eventually([&] { return started == 3; }));
  EXPECT_EQ(ex.threads(), 3u);
  EXPECT_EQ(ex.busy(), 3u);
  {
    std::lock_guard<std::mutex> l(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(eventually([&] { return started == 5 && ex.busy() == 0; }));
}

TEST(ExecutorTest, IdleThreadsEnd) {
  Executor ex({.max_threads = 8, .idle_timeout = 50ms});
  std::atomic<int> n{0};
  for (int i = 0; i < 8; ++i) {
    ex.post([&] {
      ++n;
      std::this_thread::sleep_for(20ms);
    });
  }
  EXPECT_TRUE(eventually([&] { return n == 8; }));
  EXPECT_TRUE(eventually([&] { return ex.threads() == 0; }));
  // It starts again on demand.
  ex.post([&] { ++n; });
  EXPECT_TRUE(eventually([&] { return n == 9; }));
}

TEST(ExecutorTest, TimersFireInOrderAndNotBeforeTheirTime) {
  Executor ex;
  std::mutex mu;
  std::vector<int> order;
  auto start = Executor::Clock::now();
  std::vector<Executor::Clock::time_point> fired(3);
  for (int i : {2, 0, 1}) {
    ex.post_at(start + std::chrono::milliseconds(30 * (i + 1)), [&, i] {
      std::lock_guard<std::mutex> l(mu);
      order.push_back(i);
      fired[i] = Executor::Clock::now();
    });
  }
  EXPECT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> l(mu);
    return order.size() == 3;
  }));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  for (int i = 0; i < 3; ++i) EXPECT_GE(fired[i], start + std::chrono::milliseconds(30 * (i + 1)));
}

TEST(ExecutorTest, ACancelledTimerDoesNotFire) {
  Executor ex;
  std::atomic<int> a{0}, b{0};
  auto now = Executor::Clock::now();
  uint64_t id = ex.post_at(now + 50ms, [&] { ++a; });
  ex.post_at(now + 100ms, [&] { ++b; });
  EXPECT_TRUE(ex.cancel(id));
  EXPECT_FALSE(ex.cancel(id));
  EXPECT_TRUE(eventually([&] { return b == 1; }));
  EXPECT_EQ(a, 0);
  EXPECT_FALSE(ex.cancel(987654));
}

TEST(ExecutorTest, AnEarlierTimerIsNotHeldUpByALaterOne) {
  Executor ex;
  std::atomic<int> early{0};
  ex.post_at(Executor::Clock::now() + 1h, [] {});
  ex.post_at(Executor::Clock::now() + 10ms, [&] { ++early; });
  EXPECT_TRUE(eventually([&] { return early == 1; }));
}

TEST(ExecutorTest, TasksMayPostMoreWork) {
  Executor ex({.max_threads = 2, .idle_timeout = 1s});
  std::atomic<int> n{0};
  std::function<void()> step = [&] {
    if (++n < 50) ex.post_at(Executor::Clock::now(), step);
  };
  ex.post(step);
  EXPECT_TRUE(eventually([&] { return n == 50; }));
}

TEST(ExecutorTest, StopWaitsForRunningTasksAndDropsTheRest) {
  std::atomic<int> done{0}, late{0};
  auto ex = std::make_unique<Executor>(ExecutorOptions{.max_threads = 1});
  std::atomic<bool> running{false};
  ex->post([&] {
    running = true;
    std::this_thread::sleep_for(50ms);
    ++done;
  });
  ex->post([&] { ++late; });
  ex->post_at(Executor::Clock::now() + 10ms, [&] { ++late; });
  ASSERT_TRUE(eventually([&] { return running.load(); }));
  ex->stop();
  EXPECT_EQ(done, 1);
  EXPECT_EQ(late, 0);
  EXPECT_EQ(ex->threads(), 0u);
  ex->post([&] { ++late; });
  EXPECT_EQ(ex->post_at(Executor::Clock::now(), [&] { ++late; }), 0u);
  ex.reset();
  EXPECT_EQ(late, 0);
}

TEST(ExecutorTest, AThrowingTaskDoesNotEndThePool) {
  Executor ex({.max_threads = 1});
  std::atomic<int> n{0};
  ex.post([] { throw std::runtime_error("boom"); });
  ex.post([&] { ++n; });
  EXPECT_TRUE(eventually([&] { return n == 1; }));
}

}  // namespace
}  // namespace skiff
