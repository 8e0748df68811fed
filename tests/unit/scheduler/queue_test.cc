#include "scheduler/queue.h"

#include <gtest/gtest.h>

#include "scheduler_test_util.h"

namespace skiff::scheduler {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::PodBuilder;

class SchedulingQueueTest : public ::testing::Test {
 protected:
  std::shared_ptr<const PodInfo> pod(const std::string& name, int priority = 0) {
    return parse_pod(PodBuilder(name).priority(priority), strings);
  }
  std::string pop_name() {
    auto item = q.pop(now);
    return item ? item->pod->name : "";
  }

  Interner strings;
  SchedulingQueue q;
  SchedulingQueue::TimePoint now = SchedulingQueue::Clock::now();
};

TEST_F(SchedulingQueueTest, HigherPriorityFirstThenFifo) {
  q.add_or_update(pod("a"), true, now);
  q.add_or_update(pod("b", 10), true, now);
  q.add_or_update(pod("c"), true, now);
  q.add_or_update(pod("d", 10), true, now);
  EXPECT_EQ(q.active_size(), 4u);
  EXPECT_EQ(pop_name(), "b");
  EXPECT_EQ(pop_name(), "d");
  EXPECT_EQ(pop_name(), "a");
  EXPECT_EQ(pop_name(), "c");
  EXPECT_EQ(pop_name(), "");
  EXPECT_EQ(q.size(), 0u);
}

TEST_F(SchedulingQueueTest, UpdateKeepsOneEntryAndRemoveDrops) {
  q.add_or_update(pod("a"), true, now);
  q.add_or_update(pod("a"), true, now);
  q.add_or_update(pod("b"), true, now);
  EXPECT_EQ(q.size(), 2u);
  q.remove("uid-default-b");
  EXPECT_EQ(pop_name(), "a");
  EXPECT_EQ(pop_name(), "");
  EXPECT_EQ(q.active_size(), 0u);
}

TEST_F(SchedulingQueueTest, BackoffDoublesUpToTheCap) {
  EXPECT_EQ(q.backoff_for(1), milliseconds(1000));
  EXPECT_EQ(q.backoff_for(2), milliseconds(2000));
  EXPECT_EQ(q.backoff_for(4), milliseconds(8000));
  EXPECT_EQ(q.backoff_for(5), milliseconds(10000));
  EXPECT_EQ(q.backoff_for(50), milliseconds(10000));
}

TEST_F(SchedulingQueueTest, ErrorsRetryAfterTheBackoff) {
  q.add_or_update(pod("a"), true, now);
  auto item = q.pop(now);
  ASSERT_TRUE(item);
  EXPECT_EQ(item->attempts, 1);
  q.requeue_backoff(std::move(*item), now);
  EXPECT_EQ(q.backoff_size(), 1u);
  EXPECT_EQ(q.next_ready_time(), now + seconds(1));
  EXPECT_FALSE(q.pop(now + milliseconds(999)));
  auto again = q.pop(now + seconds(1));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->attempts, 2);
}

TEST_F(SchedulingQueueTest, UnschedulablePodsWaitForAHelpfulEvent) {
  q.add_or_update(pod("fit"), true, now);
  q.add_or_update(pod("taint"), true, now);
  auto fit = q.pop(now);
  auto taint = q.pop(now);
  q.requeue_unschedulable(std::move(*fit), plugin::kNodeResourcesFit, now);
  q.requeue_unschedulable(std::move(*taint), plugin::kTaintToleration, now);
  EXPECT_EQ(q.unschedulable_size(), 2u);
  auto later = now + seconds(20);
  EXPECT_FALSE(q.pop(later));

  // A pod leaving a node frees resources: only the pod rejected for resources moves.
  q.move_on_event(plugin::kNodeResourcesFit | plugin::kNodePorts, later);
  EXPECT_EQ(q.unschedulable_size(), 1u);
  auto item = q.pop(later);
  ASSERT_TRUE(item);
  EXPECT_EQ(item->pod->name, "fit");

  // Nothing that helps: stays.
  q.move_on_event(0, later);
  EXPECT_EQ(q.unschedulable_size(), 1u);
  q.move_on_event(plugin::kAll, later);
  EXPECT_EQ(q.active_size(), 1u);
  auto taint_again = q.pop(later);
  ASSERT_TRUE(taint_again);
  EXPECT_EQ(taint_again->pod->name, "taint");
}

TEST_F(SchedulingQueueTest, WokenPodStillServesItsBackoff) {
  q.add_or_update(pod("a"), true, now);
  auto a = q.pop(now);
  q.requeue_unschedulable(std::move(*a), plugin::kNodeResourcesFit, now);
  q.move_on_event(plugin::kAll, now + milliseconds(100));
  EXPECT_EQ(q.backoff_size(), 1u);
  EXPECT_FALSE(q.pop(now + milliseconds(500)));
  EXPECT_TRUE(q.pop(now + seconds(1)));
}

TEST_F(SchedulingQueueTest, RelevantUpdateWakesAnUnschedulablePod) {
  q.add_or_update(pod("a"), true, now);
  auto a = q.pop(now);
  q.requeue_unschedulable(std::move(*a), plugin::kNodeAffinity, now);
  q.add_or_update(pod("a"), false, now + seconds(5));
  EXPECT_EQ(q.unschedulable_size(), 1u);
  q.add_or_update(pod("a"), true, now + seconds(5));
  EXPECT_EQ(q.unschedulable_size(), 0u);
  EXPECT_TRUE(q.pop(now + seconds(5)));
}

TEST_F(SchedulingQueueTest, LongWaitingUnschedulablePodsAreRetried) {
  SchedulingQueue::Options o;
  o.max_unschedulable = seconds(60);
  SchedulingQueue short_wait(o);
  short_wait.add_or_update(pod("a"), true, now);
  auto a = short_wait.pop(now);
  short_wait.requeue_unschedulable(std::move(*a), plugin::kNodeResourcesFit, now);
  EXPECT_FALSE(short_wait.pop(now + seconds(30)));
  EXPECT_TRUE(short_wait.next_ready_time().has_value());
  EXPECT_TRUE(short_wait.pop(now + seconds(61)));
}

TEST_F(SchedulingQueueTest, PodParkedWithoutReasonsWakesOnAnyEvent) {
  q.add_or_update(pod("any"), true, now);
  q.add_or_update(pod("ports"), true, now);
  auto any = q.pop(now);
  auto ports = q.pop(now);
  q.requeue_unschedulable(std::move(*any), 0, now);
  q.requeue_unschedulable(std::move(*ports), plugin::kNodePorts, now);
  auto later = now + seconds(20);
  q.move_on_event(plugin::kInterPodAffinity, later);
  EXPECT_EQ(q.unschedulable_size(), 1u);
  EXPECT_EQ(pop_name(), "any");
  q.move_on_event(plugin::kNodePorts, later);
  EXPECT_EQ(q.unschedulable_size(), 0u);
  EXPECT_EQ(pop_name(), "ports");
}

TEST_F(SchedulingQueueTest, RemovingAParkedPodForgetsIt) {
  q.add_or_update(pod("a"), true, now);
  auto a = q.pop(now);
  q.requeue_unschedulable(std::move(*a), 0, now);
  q.remove("uid-default-a");
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.unschedulable_size(), 0u);
  q.move_on_event(plugin::kAll, now + seconds(30));
  EXPECT_FALSE(q.pop(now + seconds(30)));
}

}  // namespace
}  // namespace skiff::scheduler
