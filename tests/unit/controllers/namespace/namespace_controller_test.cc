#include "controllers/namespace/namespace_controller.h"

#include <gtest/gtest.h>

#include <string>

#include "unit/controllers/garbagecollector/controller_harness.h"

namespace skiff::controllers::namespaces {
namespace {

using client::ResourceRef;
using testing_support::config_map;
using testing_support::ControllerHarness;
using testing_support::eventually;
using testing_support::str;
namespace res = client::resources;

constexpr char kHold[] = "skiff.test/hold";

const json* condition(const json& ns, const std::string& type) {
  const json* conditions = testing_support::member(ns, {"status", "conditions"});
  if (conditions == nullptr || !conditions->is_array()) return nullptr;
  for (const json& c : *conditions) {
    if (c.value("type", "") == type) return &c;
  }
  return nullptr;
}

// --- the conditions ----------------------------------------------------------------------------

TEST(NamespaceConditionsTest, AllDoneSetsTheFiveConditionsFalse) {
  json status = {{"phase", "Terminating"}};
  DeletionReport report;
  TimePoint t0 = std::chrono::system_clock::from_time_t(1700000000);
  EXPECT_TRUE(update_deletion_conditions(status, report, t0));
  ASSERT_EQ(status["conditions"].size(), 5u);
  json ns = {{"status", status}};
  const json* content = condition(ns, "NamespaceContentRemaining");
  ASSERT_NE(content, nullptr);
  EXPECT_EQ(*content, json({{"type", "NamespaceContentRemaining"},
                            {"status", "False"},
                            {"lastTransitionTime", "2023-11-14T22:13:20Z"},
                            {"reason", "ContentRemoved"},
                            {"message", "All content successfully removed"}}));
  EXPECT_EQ((*condition(ns, "NamespaceDeletionContentFailure"))["reason"], "ContentDeleted");
  EXPECT_EQ((*condition(ns, "NamespaceDeletionDiscoveryFailure"))["reason"],
            "ResourcesDiscovered");
  EXPECT_FALSE(update_deletion_conditions(status, report, t0 + std::chrono::hours(1)))
      << "nothing changed";
}

TEST(NamespaceConditionsTest, RemainingContentAndFinalizersAreCounted) {
  json status = json::object();
  TimePoint t0 = std::chrono::system_clock::from_time_t(1700000000);
  update_deletion_conditions(status, DeletionReport(), t0);
  DeletionReport report;
  report.remaining = {{"pods.", 2}, {"widgets.example.com", 1}};
  report.finalizers = {{"example.com/x", 1}, {"kubernetes.io/pvc-protection", 2}};
  report.content_errors = {"b failed", "a failed"};
  TimePoint t1 = t0 + std::chrono::minutes(1);
  EXPECT_TRUE(update_deletion_conditions(status, report, t1));
  json ns = {{"status", status}};
  const json* content = condition(ns, "NamespaceContentRemaining");
  EXPECT_EQ((*content)["status"], "True");
  EXPECT_EQ((*content)["reason"], "SomeResourcesRemain");
  EXPECT_EQ((*content)["message"],
            "Some resources are remaining: pods. has 2 resource instances, widgets.example.com "
            "has 1 resource instances");
  EXPECT_EQ((*content)["lastTransitionTime"], "2023-11-14T22:14:20Z");
  const json* fin = condition(ns, "NamespaceFinalizersRemaining");
  EXPECT_EQ((*fin)["reason"], "SomeFinalizerRemain");
  EXPECT_EQ((*fin)["message"],
            "Some finalizers are remaining: example.com/x in 1 resource instances, "
            "kubernetes.io/pvc-protection in 2 resource instances");
  const json* failure = condition(ns, "NamespaceDeletionContentFailure");
  EXPECT_EQ((*failure)["reason"], "ContentDeletionFailed");
  EXPECT_EQ((*failure)["message"],
            "Failed to delete all resource types, 2 remaining: a failed, b failed");
  EXPECT_EQ((*condition(ns, "NamespaceDeletionDiscoveryFailure"))["lastTransitionTime"],
            "2023-11-14T22:13:20Z")
      << "an unchanged condition keeps its time";
}

// --- against a server --------------------------------------------------------------------------

class NamespaceControllerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(h_.ok()); }

  bool namespace_gone(const std::string& ns) {
    return h_.wait_gone(res::kNamespaces, ns, std::chrono::seconds(40));
  }

  ControllerHarness h_{{"namespace"}};
};

TEST_F(NamespaceControllerTest, DeletingANamespaceRemovesItsContentAndTheNamespace) {
  const std::string ns = "doomed";
  h_.create_namespace(ns);
  json crd = {
      {"apiVersion", "apiextensions.k8s.io/v1"},
      {"kind", "CustomResourceDefinition"},
      {"metadata", {{"name", "gadgets.example.com"}}},
      {"spec",
       {{"group", "example.com"},
        {"scope", "Namespaced"},
        {"names", {{"plural", "gadgets"}, {"singular", "gadget"}, {"kind", "Gadget"}}},
        {"versions",
         json::array({{{"name", "v1"},
                       {"served", true},
                       {"storage", true},
                       {"schema",
                        {{"openAPIV3Schema",
                          {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}}}}}}})}}}};
  h_.create(ResourceRef{"apiextensions.k8s.io", "v1", "customresourcedefinitions", ""}, crd);
  const ResourceRef gadgets{"example.com", "v1", "gadgets", ns};
  ASSERT_TRUE(eventually([&] { return h_.client().list(gadgets).ok(); }));

  h_.create(res::kConfigMaps.in(ns), config_map(ns, "settings"));
  h_.create(res::kSecrets.in(ns), {{"apiVersion", "v1"},
                                   {"kind", "Secret"},
                                   {"metadata", {{"name", "token"}, {"namespace", ns}}},
                                   {"stringData", {{"k", "v"}}}});
  h_.create(res::kServices.in(ns), {{"apiVersion", "v1"},
                                    {"kind", "Service"},
                                    {"metadata", {{"name", "web"}, {"namespace", ns}}},
                                    {"spec",
                                     {{"selector", {{"app", "web"}}},
                                      {"ports", json::array({{{"port", 80}}})}}}});
  h_.create(res::kPods.in(ns), testing_support::pod(ns, "web-1", {{"app", "web"}}));
  h_.create(gadgets, {{"apiVersion", "example.com/v1"},
                      {"kind", "Gadget"},
                      {"metadata", {{"name", "g1"}, {"namespace", ns}}}});

  h_.remove(res::kNamespaces, ns);
  auto terminating = h_.get(res::kNamespaces, ns);
  if (terminating) {
    EXPECT_EQ(str(*terminating, {"status", "phase"}), "Terminating");
  }
  EXPECT_TRUE(namespace_gone(ns));
  for (const ResourceRef& r : {res::kConfigMaps.in(ns), res::kSecrets.in(ns),
                               res::kServices.in(ns), res::kPods.in(ns), gadgets}) {
    auto left = h_.client().list(r);
    ASSERT_TRUE(left.ok()) << left.status().to_string();
    EXPECT_TRUE(left->items.empty()) << r.resource << " remain";
  }
}

TEST_F(NamespaceControllerTest, ContentHeldByAFinalizerIsReportedUntilItGoes) {
  const std::string ns = "held";
  h_.create_namespace(ns);
  h_.create(res::kConfigMaps.in(ns), config_map(ns, "pinned", json::array(), {kHold}));
  h_.create(res::kConfigMaps.in(ns), config_map(ns, "free"));
  h_.remove(res::kNamespaces, ns);

  json seen;
  ASSERT_TRUE(eventually([&] {
    auto cur = h_.get(res::kNamespaces, ns);
    if (!cur) return false;
    seen = *cur;
    const json* fin = condition(seen, "NamespaceFinalizersRemaining");
    return fin != nullptr && (*fin)["status"] == "True";
  })) << seen.dump();
  EXPECT_EQ(str(seen, {"status", "phase"}), "Terminating");
  EXPECT_EQ((*condition(seen, "NamespaceFinalizersRemaining"))["message"],
            "Some finalizers are remaining: skiff.test/hold in 1 resource instances");
  EXPECT_EQ((*condition(seen, "NamespaceContentRemaining"))["message"],
            "Some resources are remaining: configmaps. has 1 resource instances");
  EXPECT_EQ((*condition(seen, "NamespaceDeletionContentFailure"))["status"], "False");
  EXPECT_FALSE(h_.exists(res::kConfigMaps.in(ns), "free"));
  auto pinned = h_.get(res::kConfigMaps.in(ns), "pinned");
  ASSERT_TRUE(pinned);
  EXPECT_TRUE(testing_support::being_deleted(*pinned));

  h_.merge_patch(res::kConfigMaps.in(ns), "pinned", {{"metadata", {{"finalizers", nullptr}}}});
  EXPECT_TRUE(namespace_gone(ns));
}

TEST_F(NamespaceControllerTest, NamespacesNotBeingDeletedAreLeftAlone) {
  const std::string ns = "alive";
  h_.create_namespace(ns);
  h_.create(res::kConfigMaps.in(ns), config_map(ns, "settings"));
  // Another namespace's deletion is handled meanwhile.
  h_.create_namespace("other");
  h_.remove(res::kNamespaces, "other");
  EXPECT_TRUE(namespace_gone("other"));
  EXPECT_TRUE(h_.exists(res::kConfigMaps.in(ns), "settings"));
  auto alive = h_.get(res::kNamespaces, ns);
  ASSERT_TRUE(alive);
  EXPECT_EQ(testing_support::member(*alive, {"status", "conditions"}), nullptr);
}

}  // namespace
}  // namespace skiff::controllers::namespaces
