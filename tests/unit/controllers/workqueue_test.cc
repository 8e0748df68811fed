#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "controllers/framework.h"
#include "testing/test_server.h"

namespace skiff::controllers {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

std::string get_key(WorkQueue& q) {
  std::string key;
  EXPECT_TRUE(q.get(&key));
  return key;
}

TEST(WorkQueueTest, KeyAddedTwiceBeforeGetIsProcessedOnce) {
  WorkQueue q("test");
  q.add("a");
  q.add("b");
  q.add("a");
  q.add("a");
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(get_key(q), "a");
  EXPECT_EQ(get_key(q), "b");
  EXPECT_EQ(q.size(), 0u);
  q.done("a");
  q.done("b");
  EXPECT_EQ(q.size(), 0u);
}

TEST(WorkQueueTest, KeyBeingProcessedIsNotHandedOutAgain) {
  WorkQueue q("test");
  q.add("a");
  ASSERT_EQ(get_key(q), "a");
  q.add("a");
  q.add("b");
  // "a" is marked for another round but not handed to a second worker meanwhile.
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(get_key(q), "b");
  q.done("b");
  EXPECT_EQ(q.size(), 0u);
  q.done("a");
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(get_key(q), "a");
  q.done("a");
  EXPECT_EQ(q.size(), 0u);
}

TEST(WorkQueueTest, DoneWithoutReAddLeavesQueueEmpty) {
  WorkQueue q("test");
  q.add("a");
  ASSERT_EQ(get_key(q), "a");
  q.done("a");
  EXPECT_EQ(q.size(), 0u);
  q.add("a");
  EXPECT_EQ(q.size(), 1u);
}

TEST(WorkQueueTest, ConcurrentWorkersNeverHoldTheSameKey) {
  WorkQueue q("test");
  constexpr int kKeys = 5;
  constexpr int kAdds = 3000;
  std::vector<std::atomic<int>> holders(kKeys);
  std::atomic<int> overlaps{0};
  std::atomic<int> processed{0};
  std::atomic<int> busy{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      std::string key;
      while (q.get(&key)) {
        ++busy;
        int k = key[1] - '0';
        if (holders[k].fetch_add(1) != 0) ++overlaps;
        std::this_thread::yield();
        holders[k].fetch_sub(1);
        ++processed;
        --busy;
        q.done(key);
      }
    });
  }
  for (int i = 0; i < kAdds; ++i) q.add("k" + std::to_string(i % kKeys));
  EXPECT_TRUE(testing::eventually([&] { return q.size() == 0 && busy.load() == 0; }));
  q.shutdown();
  for (auto& t : workers) t.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_GE(processed.load(), kKeys);
  EXPECT_LE(processed.load(), kAdds);
}

TEST(WorkQueueTest, KeyReAddedWhileProcessingIsProcessedAgainAfterDone) {
  WorkQueue q("test");
  std::atomic<int> rounds{0};
  std::thread worker([&] {
    std::string key;
    while (q.get(&key)) {
      if (rounds.fetch_add(1) == 0) q.add(key);  // a change seen while reconciling
      q.done(key);
    }
  });
  q.add("a");
  EXPECT_TRUE(testing::eventually([&] { return rounds.load() == 2 && q.size() == 0; }));
  q.shutdown();
  worker.join();
  EXPECT_EQ(rounds.load(), 2);
}

TEST(WorkQueueTest, AddAfterDeliversInOrderOfDueTime) {
  WorkQueue q("test");
  SteadyClock::time_point start = SteadyClock::now();
  q.add_after("c", milliseconds(90));
  q.add_after("a", milliseconds(30));
  q.add_after("b", milliseconds(60));
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(get_key(q), "a");
  EXPECT_GE(SteadyClock::now() - start, milliseconds(30));
  EXPECT_EQ(get_key(q), "b");
  EXPECT_GE(SteadyClock::now() - start, milliseconds(60));
  EXPECT_EQ(get_key(q), "c");
  EXPECT_GE(SteadyClock::now() - start, milliseconds(90));
}

TEST(WorkQueueTest, AddAfterWithoutDelayAddsAtOnce) {
  WorkQueue q("test");
  q.add_after("a", milliseconds(0));
  q.add_after("b", milliseconds(-5));
  EXPECT_EQ(q.size(), 2u);
}

TEST(WorkQueueTest, WaitingKeyKeepsTheEarlierDueTime) {
  WorkQueue q("test");
  SteadyClock::time_point start = SteadyClock::now();
  q.add_after("a", std::chrono::seconds(60));
  q.add_after("a", milliseconds(10));
  q.add_after("a", std::chrono::seconds(30));
  EXPECT_EQ(get_key(q), "a");
  EXPECT_LT(SteadyClock::now() - start, std::chrono::seconds(20));
  q.done("a");
  EXPECT_EQ(q.size(), 0u);
}

TEST(WorkQueueTest, BackoffDoublesFromFiveMillisecondsUpToThousandSeconds) {
  EXPECT_EQ(WorkQueue::backoff_delay(0), milliseconds(5));
  EXPECT_EQ(WorkQueue::backoff_delay(1), milliseconds(10));
  EXPECT_EQ(WorkQueue::backoff_delay(2), milliseconds(20));
  EXPECT_EQ(WorkQueue::backoff_delay(10), milliseconds(5120));
  EXPECT_EQ(WorkQueue::backoff_delay(17), milliseconds(655360));
  EXPECT_EQ(WorkQueue::backoff_delay(18), std::chrono::seconds(1000));
  EXPECT_EQ(WorkQueue::backoff_delay(40), std::chrono::seconds(1000));
  EXPECT_EQ(WorkQueue::backoff_delay(1 << 30), std::chrono::seconds(1000));
}

TEST(WorkQueueTest, RateLimitedRequeuesBackOffUntilForgotten) {
  WorkQueue q("test");
  EXPECT_EQ(q.requeues("a"), 0);
  for (int i = 0; i < 4; ++i) {
    SteadyClock::time_point start = SteadyClock::now();
    q.add_rate_limited("a");
    EXPECT_EQ(q.requeues("a"), i + 1);
    EXPECT_EQ(get_key(q), "a");
    EXPECT_GE(SteadyClock::now() - start, WorkQueue::backoff_delay(i)) << "requeue " << i;
    q.done("a");
  }
  EXPECT_EQ(q.requeues("b"), 0);
  q.forget("a");
  EXPECT_EQ(q.requeues("a"), 0);
  SteadyClock::time_point start = SteadyClock::now();
  q.add_rate_limited("a");
  EXPECT_EQ(get_key(q), "a");
  EXPECT_LT(SteadyClock::now() - start, WorkQueue::backoff_delay(8));
  EXPECT_EQ(q.requeues("a"), 1);
}

TEST(WorkQueueTest, ShutdownWakesBlockedGetters) {
  WorkQueue q("test");
  std::atomic<int> returned{0};
  std::vector<std::thread> getters;
  for (int i = 0; i < 3; ++i) {
    getters.emplace_back([&] {
      std::string key;
      EXPECT_FALSE(q.get(&key));
      ++returned;
    });
  }
  q.shutdown();
  for (auto& t : getters) t.join();
  EXPECT_EQ(returned.load(), 3);
  EXPECT_TRUE(q.shutting_down());
}

TEST(WorkQueueTest, NothingIsQueuedAfterShutdown) {
  WorkQueue q("test");
  q.add_after("later", std::chrono::seconds(60));
  q.add("queued");
  q.shutdown();
  q.add("a");
  q.add_after("b", milliseconds(1));
  q.add_rate_limited("c");
  std::string key;
  EXPECT_FALSE(q.get(&key));
  EXPECT_EQ(q.requeues("c"), 0);
  q.shutdown();  // idempotent
}

TEST(WorkQueueTest, DestructorStopsPendingTimers) {
  auto q = std::make_unique<WorkQueue>("test");
  q->add_after("a", std::chrono::seconds(3600));
  SteadyClock::time_point start = SteadyClock::now();
  q.reset();
  EXPECT_LT(SteadyClock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace skiff::controllers
