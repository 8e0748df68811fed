// Completion-index sets of Indexed Jobs, as status.completedIndexes writes them.
#include "controllers/job/indexed_job.h"

#include <gtest/gtest.h>

namespace skiff::controllers::job {
namespace {

TEST(OrderedIntervals, ParsesAndWritesCompletedIndexes) {
  EXPECT_EQ(OrderedIntervals::parse("1,3-5,7", 10).to_string(), "1,3-5,7");
  EXPECT_EQ(OrderedIntervals::parse("1,3-5,7", 10).total(), 5);
  // Two adjacent indexes are written as a list, as Kubernetes does.
  EXPECT_EQ(OrderedIntervals::parse("3-4", 10).to_string(), "3,4");
  EXPECT_EQ(OrderedIntervals::parse("", 10).to_string(), "");
  // Indexes at or beyond completions are dropped; garbage is skipped.
  EXPECT_EQ(OrderedIntervals::parse("0-20", 5).to_string(), "0-4");
  EXPECT_EQ(OrderedIntervals::parse("x,2,a-b", 5).to_string(), "2");
}

TEST(OrderedIntervals, MergesNewIndexes) {
  OrderedIntervals s = OrderedIntervals::parse("0,4-5", 10);
  OrderedIntervals merged = s.with_ordered_indexes({1, 3, 9});
  EXPECT_EQ(merged.to_string(), "0,1,3-5,9");
  EXPECT_TRUE(merged.has(4));
  EXPECT_FALSE(merged.has(2));
  EXPECT_FALSE(merged.has(10));
  EXPECT_EQ(merged.with_ordered_indexes({2}).to_string(), "0-5,9");
}

TEST(CompletionIndex, ReadsTheAnnotation) {
  json pod = {{"metadata", {{"annotations", {{kJobCompletionIndexAnnotation, "7"}}}}}};
  EXPECT_EQ(completion_index(pod), 7);
  pod["metadata"]["annotations"][kJobCompletionIndexAnnotation] = "-1";
  EXPECT_EQ(completion_index(pod), kUnknownCompletionIndex);
  pod["metadata"]["annotations"][kJobCompletionIndexAnnotation] = "x";
  EXPECT_EQ(completion_index(pod), kUnknownCompletionIndex);
  EXPECT_EQ(completion_index(json::object()), kUnknownCompletionIndex);
}

}  // namespace
}  // namespace skiff::controllers::job
