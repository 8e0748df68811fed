#include "controllers/nodeipam/cidr_set.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace skiff::controllers::nodeipam {
namespace {

TEST(Ipv4Cidr, ParsesAndMasks) {
  auto c = Ipv4Cidr::parse("10.42.3.9/16");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->to_string(), "10.42.0.0/16");
  EXPECT_EQ(c->size(), 65536u);
  for (const char* bad : {"10.42.0.0", "10.42.0.0/", "10.42.0.0/33", "10.42.0/16", "fd00::/64",
                          "10.42.0.0/16x"}) {
    auto r = Ipv4Cidr::parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kBadRequest) << bad;
    }
  }
}

TEST(CidrSet, HandsOutEveryNodeRangeOnce) {
  auto set = CidrSet::create("10.42.0.0/16", 24);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->size(), 256u);
  std::set<std::string> seen;
  for (int i = 0; i < 256; ++i) {
    auto c = set->allocate();
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->prefix, 24);
    EXPECT_TRUE(seen.insert(c->to_string()).second) << c->to_string();
  }
  EXPECT_TRUE(seen.count("10.42.0.0/24"));
  EXPECT_TRUE(seen.count("10.42.255.0/24"));
  EXPECT_FALSE(set->allocate().has_value()) << "full";
  EXPECT_EQ(set->used_count(), 256u);
}

TEST(CidrSet, ReleasedRangeComesBackAfterTheOthers) {
  auto set = CidrSet::create("10.42.0.0/22", 24);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->allocate()->to_string(), "10.42.0.0/24");
  EXPECT_EQ(set->allocate()->to_string(), "10.42.1.0/24");
  set->release(0, 0);
  EXPECT_EQ(set->allocate()->to_string(), "10.42.2.0/24");
  EXPECT_EQ(set->allocate()->to_string(), "10.42.3.0/24");
  EXPECT_EQ(set->allocate()->to_string(), "10.42.0.0/24") << "wraps around to the freed one";
  EXPECT_FALSE(set->allocate().has_value());
}

TEST(CidrSet, OccupiesRangesItDidNotHandOut) {
  auto set = CidrSet::create("10.42.0.0/22", 24);
  ASSERT_TRUE(set.ok());
  auto idx = set->indices(*Ipv4Cidr::parse("10.42.1.0/24"));
  ASSERT_TRUE(idx.has_value());
  EXPECT_EQ(*idx, std::make_pair(1u, 1u));
  EXPECT_TRUE(set->occupy(1, 1));
  EXPECT_FALSE(set->occupy(1, 1)) << "taken";
  EXPECT_EQ(set->indices(*Ipv4Cidr::parse("10.42.2.0/23")), std::make_pair(2u, 3u));
  EXPECT_EQ(set->indices(*Ipv4Cidr::parse("10.42.2.128/25")), std::make_pair(2u, 2u));
  EXPECT_FALSE(set->indices(*Ipv4Cidr::parse("10.43.0.0/24")).has_value());
  EXPECT_FALSE(set->indices(*Ipv4Cidr::parse("10.42.0.0/16")).has_value());
  EXPECT_EQ(set->allocate()->to_string(), "10.42.0.0/24");
  EXPECT_EQ(set->allocate()->to_string(), "10.42.2.0/24") << "the occupied one is skipped";
}

TEST(CidrSet, RejectsMasksThatDoNotFit) {
  EXPECT_EQ(CidrSet::create("10.42.0.0/16", 8).status().code(), StatusCode::kBadRequest);
  EXPECT_EQ(CidrSet::create("10.42.0.0/16", 33).status().code(), StatusCode::kBadRequest);
  EXPECT_EQ(CidrSet::create("10.0.0.0/8", 32).status().code(), StatusCode::kBadRequest)
      << "2^24 ranges is too many";
  EXPECT_EQ(CidrSet::create("fd00::/48", 64).status().code(), StatusCode::kBadRequest);
  EXPECT_TRUE(CidrSet::create("10.0.0.0/8", 24).ok());
}

}  // namespace
}  // namespace skiff::controllers::nodeipam
