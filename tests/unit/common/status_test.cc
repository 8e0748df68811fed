#include "common/status.h"

#include <gtest/gtest.h>

namespace skiff {
namespace {

TEST(StatusTest, CodesMapOntoKubernetesReasonsAndHttpCodes) {
  EXPECT_STREQ(reason(StatusCode::kNotFound), "NotFound");
  EXPECT_EQ(http_code(StatusCode::kNotFound), 404);
  EXPECT_STREQ(reason(StatusCode::kGone), "Expired");
  EXPECT_EQ(http_code(StatusCode::kGone), 410);
  EXPECT_STREQ(reason(StatusCode::kInvalid), "Invalid");
  EXPECT_EQ(http_code(StatusCode::kInvalid), 422);
  EXPECT_EQ(http_code(StatusCode::kTooLarge), 413);
}

TEST(StatusTest, ResultCarriesValueOrStatus) {
  Result<int> good(7);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad(Status::Conflict("stale"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kConflict);
  EXPECT_EQ(bad.status().to_string(), "Conflict: stale");
}

}  // namespace
}  // namespace skiff
