#include "controllers/serviceaccount/service_account_controller.h"

#include <gtest/gtest.h>

#include <string>

#include "unit/controllers/garbagecollector/controller_harness.h"

namespace skiff::controllers::serviceaccount {
namespace {

using testing_support::ControllerHarness;
using testing_support::eventually;
using testing_support::uid_of;
namespace res = client::resources;

class ServiceAccountControllerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(h_.ok()); }

  bool has_default(const std::string& ns) {
    return eventually([&] { return h_.exists(res::kServiceAccounts.in(ns), "default"); });
  }

  ControllerHarness h_{{"serviceaccount"}};
};

TEST_F(ServiceAccountControllerTest, EveryNamespaceGetsTheDefaultServiceAccount) {
  for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    EXPECT_TRUE(has_default(ns)) << ns;
  }
  h_.create_namespace("team-a");
  EXPECT_TRUE(has_default("team-a"));
}

TEST_F(ServiceAccountControllerTest, DeletedDefaultServiceAccountIsRecreated) {
  h_.create_namespace("team-b");
  ASSERT_TRUE(has_default("team-b"));
  auto first = h_.get(res::kServiceAccounts.in("team-b"), "default");
  ASSERT_TRUE(first);
  h_.remove(res::kServiceAccounts.in("team-b"), "default");
  client::ObjectPtr again;
  ASSERT_TRUE(eventually([&] {
    again = h_.get(res::kServiceAccounts.in("team-b"), "default");
    return again && uid_of(*again) != uid_of(*first);
  }));
  // Other accounts are the users' business.
  h_.create(res::kServiceAccounts.in("team-b"), {{"apiVersion", "v1"},
                                                {"kind", "ServiceAccount"},
                                                {"metadata", {{"name", "builder"}}}});
  h_.remove(res::kServiceAccounts.in("team-b"), "builder");
  EXPECT_TRUE(h_.wait_gone(res::kServiceAccounts.in("team-b"), "builder"));
  EXPECT_FALSE(h_.exists(res::kServiceAccounts.in("team-b"), "builder"));
}

}  // namespace
}  // namespace skiff::controllers::serviceaccount
