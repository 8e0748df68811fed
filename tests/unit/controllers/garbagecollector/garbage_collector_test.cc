#include "controllers/garbagecollector/garbage_collector.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "unit/controllers/garbagecollector/controller_harness.h"

namespace skiff::controllers::garbagecollector {
namespace {

using client::ResourceRef;
using testing_support::config_map;
using testing_support::ControllerHarness;
using testing_support::eventually;
using testing_support::finalizers_of;
using testing_support::owner_ref;
using testing_support::pod;
using testing_support::str;
using testing_support::uid_of;
namespace res = client::resources;

constexpr char kNs[] = "gc-test";
constexpr char kHold[] = "skiff.test/hold";

const ResourceRef kConfigMaps = res::kConfigMaps.in(kNs);

class GarbageCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(h_.ok());
    h_.create_namespace(kNs);
  }

  json owner_refs_of(const std::string& name) {
    auto obj = h_.get(kConfigMaps, name);
    if (!obj) return nullptr;
    const json* refs = testing_support::member(*obj, {"metadata", "ownerReferences"});
    return refs != nullptr ? *refs : json::array();
  }

  // Removes the test's hold finalizer so that the object can go.
  void release(const ResourceRef& r, const std::string& name) {
    h_.merge_patch(r, name, {{"metadata", {{"finalizers", nullptr}}}});
  }

  ControllerHarness h_{{"garbagecollector"}};
};

// --- the patches -------------------------------------------------------------------------------

TEST(GarbageCollectorPatchTest, RemovesOneReferenceGuardedByTests) {
  json obj = {{"metadata",
               {{"uid", "u-dep"},
                {"ownerReferences", json::array({{{"uid", "a"}}, {{"uid", "b"}}, {{"uid", "c"}}})}}}};
  auto patch = remove_owner_references_patch(obj, {"a", "c"});
  ASSERT_TRUE(patch.has_value());
  json p = json::parse(*patch);
  EXPECT_EQ(p, json::parse(R"([
    {"op":"test","path":"/metadata/uid","value":"u-dep"},
    {"op":"test","path":"/metadata/ownerReferences/2/uid","value":"c"},
    {"op":"remove","path":"/metadata/ownerReferences/2"},
    {"op":"test","path":"/metadata/ownerReferences/0/uid","value":"a"},
    {"op":"remove","path":"/metadata/ownerReferences/0"}])"));
  EXPECT_FALSE(remove_owner_references_patch(obj, {"x"}).has_value());
}

TEST(GarbageCollectorPatchTest, RemovingTheLastReferenceRemovesTheField) {
  json obj = {{"metadata", {{"uid", "u"}, {"ownerReferences", json::array({{{"uid", "a"}}})}}}};
  json p = json::parse(*remove_owner_references_patch(obj, {"a"}));
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[1]["op"], "test");
  EXPECT_EQ(p[1]["path"], "/metadata/ownerReferences");
  EXPECT_EQ(p[2], json({{"op", "remove"}, {"path", "/metadata/ownerReferences"}}));
}

TEST(GarbageCollectorPatchTest, RemovesAFinalizer) {
  json obj = {{"metadata", {{"uid", "u"}, {"finalizers", {"x", "foregroundDeletion"}}}}};
  json p = json::parse(*remove_finalizer_patch(obj, kForegroundFinalizer));
  EXPECT_EQ(p, json::parse(R"([
    {"op":"test","path":"/metadata/uid","value":"u"},
    {"op":"test","path":"/metadata/finalizers/1","value":"foregroundDeletion"},
    {"op":"remove","path":"/metadata/finalizers/1"}])"));
  EXPECT_FALSE(remove_finalizer_patch(obj, kOrphanFinalizer).has_value());
}

TEST(GarbageCollectorPatchTest, UnblocksOnlyBlockingReferences) {
  json obj = {{"metadata",
               {{"uid", "u"},
                {"ownerReferences", json::array({{{"uid", "a"}, {"blockOwnerDeletion", true}},
                                                 {{"uid", "b"}}})}}}};
  json p = json::parse(*unblock_owner_references_patch(obj));
  EXPECT_EQ(p, json::parse(R"([
    {"op":"test","path":"/metadata/uid","value":"u"},
    {"op":"test","path":"/metadata/ownerReferences/0/uid","value":"a"},
    {"op":"replace","path":"/metadata/ownerReferences/0/blockOwnerDeletion","value":false}])"));
  obj["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] = false;
  EXPECT_FALSE(unblock_owner_references_patch(obj).has_value());
}

// --- against a server --------------------------------------------------------------------------

TEST_F(GarbageCollectorTest, BackgroundDeletionRemovesDependentsAfterTheOwner) {
  json owner = h_.create(kConfigMaps, config_map(kNs, "owner"));
  h_.create(kConfigMaps, config_map(kNs, "dep-1", {owner_ref(owner)}));
  h_.create(kConfigMaps, config_map(kNs, "dep-2", {owner_ref(owner, true, true)}));
  h_.create(kConfigMaps, config_map(kNs, "unrelated"));

  h_.remove(kConfigMaps, "owner");  // Background, as kubectl deletes by default
  EXPECT_FALSE(h_.exists(kConfigMaps, "owner")) << "the owner goes first, at once";
  EXPECT_TRUE(h_.wait_gone(kConfigMaps, "dep-1"));
  EXPECT_TRUE(h_.wait_gone(kConfigMaps, "dep-2"));
  EXPECT_TRUE(h_.exists(kConfigMaps, "unrelated"));
}

TEST_F(GarbageCollectorTest, DependentOfAnOwnerThatNeverExistedIsCollected) {
  json ghost = {{"apiVersion", "v1"},
                {"kind", "ConfigMap"},
                {"metadata", {{"name", "ghost"}, {"uid", "3f0f8b8e-0000-4000-8000-000000000001"}}}};
  h_.create(kConfigMaps, config_map(kNs, "orphaned", {owner_ref(ghost)}));
  EXPECT_TRUE(h_.wait_gone(kConfigMaps, "orphaned"));
}

TEST_F(GarbageCollectorTest, ReferenceToARecreatedOwnerIsDangling) {
  json first = h_.create(kConfigMaps, config_map(kNs, "owner"));
  h_.remove(kConfigMaps, "owner");
  h_.create(kConfigMaps, config_map(kNs, "owner"));  // same name, new uid
  h_.create(kConfigMaps, config_map(kNs, "dep", {owner_ref(first)}));
  EXPECT_TRUE(h_.wait_gone(kConfigMaps, "dep"));
  EXPECT_TRUE(h_.exists(kConfigMaps, "owner"));
}

TEST_F(GarbageCollectorTest, DependentWithALiveOwnerLosesOnlyTheDanglingReference) {
  json a = h_.create(kConfigMaps, config_map(kNs, "owner-a"));
  json b = h_.create(kConfigMaps, config_map(kNs, "owner-b"));
  h_.create(kConfigMaps, config_map(kNs, "dep", {owner_ref(a), owner_ref(b)}));
  h_.remove(kConfigMaps, "owner-a");
  ASSERT_TRUE(eventually([&] {
    json refs = owner_refs_of("dep");
    return refs.is_array() && refs.size() == 1 && refs[0].value("uid", "") == uid_of(b);
  })) << owner_refs_of("dep").dump();
  EXPECT_TRUE(h_.exists(kConfigMaps, "dep"));
}

TEST_F(GarbageCollectorTest, ForegroundDeletionRemovesBlockingDependentsFirst) {
  json owner = h_.create(kConfigMaps, config_map(kNs, "owner"));
  // Held by a finalizer of the test, so that the owner's wait can be observed.
  h_.create(kConfigMaps, config_map(kNs, "blocking", {owner_ref(owner, true)}, {kHold}));
  h_.create(kConfigMaps, config_map(kNs, "non-blocking", {owner_ref(owner)}));

  h_.remove(kConfigMaps, "owner", "Foreground");
  ASSERT_TRUE(eventually([&] {
    auto b = h_.get(kConfigMaps, "blocking");
    return b && testing_support::being_deleted(*b);
  })) << "the blocking dependent is deleted while its owner waits";
  EXPECT_TRUE(h_.wait_gone(kConfigMaps, "non-blocking"));
  auto waiting = h_.get(kConfigMaps, "owner");
  ASSERT_TRUE(waiting) << "the owner waits for its blocking dependent";
  EXPECT_TRUE(testing_support::being_deleted(*waiting));
  EXPECT_EQ(finalizers_of(*waiting), std::vector<std::string>{"foregroundDeletion"});

  release(kConfigMaps, "blocking");
  EXPECT_TRUE(h_.wait_gone(kConfigMaps, "blocking"));
  EXPECT_TRUE(h_.wait_gone(kConfigMaps, "owner")) << "the finalizer goes with the last blocker";
}

TEST_F(GarbageCollectorTest, ForegroundDeletionOfAnOwnerWithoutDependentsFinishes) {
  h_.create(kConfigMaps, config_map(kNs, "alone"));
  h_.remove(kConfigMaps, "alone", "Foreground");
  EXPECT_TRUE(h_.wait_gone(kConfigMaps, "alone"));
}

TEST_F(GarbageCollectorTest, OrphanDeletionKeepsDependentsWithoutTheReference) {
  json owner = h_.create(kConfigMaps, config_map(kNs, "owner"));
  json other = h_.create(kConfigMaps, config_map(kNs, "other-owner"));
  h_.create(kConfigMaps, config_map(kNs, "dep-1", {owner_ref(owner, true, true)}));
  h_.create(kConfigMaps, config_map(kNs, "dep-2", {owner_ref(owner), owner_ref(other)}));

  h_.remove(kConfigMaps, "owner", "Orphan");
  EXPECT_TRUE(h_.wait_gone(kConfigMaps, "owner"));
  EXPECT_TRUE(h_.exists(kConfigMaps, "dep-1"));
  EXPECT_EQ(owner_refs_of("dep-1"), json::array());
  json refs = owner_refs_of("dep-2");
  ASSERT_EQ(refs.size(), 1u) << refs.dump();
  EXPECT_EQ(refs[0].value("uid", ""), uid_of(other));
}

TEST_F(GarbageCollectorTest, CascadesThroughWorkloadKindsAsKubectlDeleteDoes) {
  const ResourceRef deployments = res::kDeployments.in(kNs);
  const ResourceRef replica_sets = res::kReplicaSets.in(kNs);
  const ResourceRef pods = res::kPods.in(kNs);
  json labels = {{"app", "web"}};
  json tmpl = {{"metadata", {{"labels", labels}}},
               {"spec", {{"containers", json::array({{{"name", "app"}, {"image", "busybox"}}})}}}};
  auto make_chain = [&](const std::string& name) {
    json deploy = h_.create(deployments, {{"apiVersion", "apps/v1"},
                                          {"kind", "Deployment"},
                                          {"metadata", {{"name", name}, {"namespace", kNs}}},
                                          {"spec",
                                           {{"replicas", 2},
                                            {"selector", {{"matchLabels", labels}}},
                                            {"template", tmpl}}}});
    json rs = h_.create(replica_sets, {{"apiVersion", "apps/v1"},
                                       {"kind", "ReplicaSet"},
                                       {"metadata",
                                        {{"name", name + "-rs"},
                                         {"namespace", kNs},
                                         {"ownerReferences", {owner_ref(deploy, true, true)}}}},
                                       {"spec",
                                        {{"replicas", 2},
                                         {"selector", {{"matchLabels", labels}}},
                                         {"template", tmpl}}}});
    for (const char* suffix : {"-a", "-b"}) {
      h_.create(pods, pod(kNs, name + suffix, labels, {owner_ref(rs, true, true)}));
    }
  };

  // kubectl delete deploy/web
  make_chain("web");
  h_.remove(deployments, "web", "Background");
  EXPECT_TRUE(h_.wait_gone(replica_sets, "web-rs"));
  EXPECT_TRUE(h_.wait_gone(pods, "web-a"));
  EXPECT_TRUE(h_.wait_gone(pods, "web-b"));

  // kubectl delete deploy/fg --cascade=foreground: the pods, then the ReplicaSet, then the
  // Deployment. One pod is held so that the order can be seen.
  make_chain("fg");
  h_.merge_patch(pods, "fg-a", {{"metadata", {{"finalizers", {kHold}}}}});
  h_.remove(deployments, "fg", "Foreground");
  ASSERT_TRUE(eventually([&] {
    auto p = h_.get(pods, "fg-a");
    return p && testing_support::being_deleted(*p);
  }));
  EXPECT_TRUE(h_.wait_gone(pods, "fg-b"));
  auto rs = h_.get(replica_sets, "fg-rs");
  ASSERT_TRUE(rs) << "the ReplicaSet waits for its pods";
  EXPECT_EQ(finalizers_of(*rs), std::vector<std::string>{"foregroundDeletion"});
  EXPECT_TRUE(h_.exists(deployments, "fg")) << "the Deployment waits for its ReplicaSet";
  release(pods, "fg-a");
  EXPECT_TRUE(h_.wait_gone(pods, "fg-a"));
  EXPECT_TRUE(h_.wait_gone(replica_sets, "fg-rs"));
  EXPECT_TRUE(h_.wait_gone(deployments, "fg"));

  // kubectl delete deploy/keep --cascade=orphan: the ReplicaSet stays, and its pods with it.
  make_chain("keep");
  h_.remove(deployments, "keep", "Orphan");
  EXPECT_TRUE(h_.wait_gone(deployments, "keep"));
  auto kept = h_.get(replica_sets, "keep-rs");
  ASSERT_TRUE(kept);
  EXPECT_EQ(testing_support::member(*kept, {"metadata", "ownerReferences"}), nullptr)
      << kept->dump();
  EXPECT_TRUE(h_.exists(pods, "keep-a"));
  EXPECT_TRUE(h_.exists(pods, "keep-b"));
}

TEST_F(GarbageCollectorTest, ClusterScopedOwnerOfNamespacedDependents) {
  json node = h_.create(res::kNodes, {{"apiVersion", "v1"},
                                      {"kind", "Node"},
                                      {"metadata", {{"name", "gc-node"}}}});
  h_.create(kConfigMaps, config_map(kNs, "node-data", {owner_ref(node)}));
  h_.remove(res::kNodes, "gc-node");
  EXPECT_TRUE(h_.wait_gone(kConfigMaps, "node-data"));
}

TEST_F(GarbageCollectorTest, CustomResourceOwnersAndDependents) {
  json crd = {
      {"apiVersion", "apiextensions.k8s.io/v1"},
      {"kind", "CustomResourceDefinition"},
      {"metadata", {{"name", "widgets.example.com"}}},
      {"spec",
       {{"group", "example.com"},
        {"scope", "Namespaced"},
        {"names",
         {{"plural", "widgets"}, {"singular", "widget"}, {"kind", "Widget"},
          {"listKind", "WidgetList"}}},
        {"versions",
         json::array({{{"name", "v1"},
                       {"served", true},
                       {"storage", true},
                       {"schema",
                        {{"openAPIV3Schema",
                          {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}}}}}}})}}}};
  h_.create(ResourceRef{"apiextensions.k8s.io", "v1", "customresourcedefinitions", ""}, crd);
  const ResourceRef widgets{"example.com", "v1", "widgets", kNs};
  ASSERT_TRUE(eventually([&] { return h_.client().list(widgets).ok(); }));
  auto widget = [&](const std::string& name, json refs) {
    json w = {{"apiVersion", "example.com/v1"},
              {"kind", "Widget"},
              {"metadata", {{"name", name}, {"namespace", kNs}}},
              {"spec", {{"size", 1}}}};
    if (!refs.empty()) w["metadata"]["ownerReferences"] = std::move(refs);
    return h_.create(widgets, w);
  };

  // A custom resource owning a ConfigMap.
  json owner = widget("owner", json::array());
  h_.create(kConfigMaps, config_map(kNs, "widget-data", {owner_ref(owner, true)}));
  h_.remove(widgets, "owner");
  EXPECT_TRUE(h_.wait_gone(kConfigMaps, "widget-data"));

  // A custom resource owned by a ConfigMap: the collector watches the new resource.
  json cm = h_.create(kConfigMaps, config_map(kNs, "widget-owner"));
  widget("owned", {owner_ref(cm)});
  h_.remove(kConfigMaps, "widget-owner");
  EXPECT_TRUE(h_.wait_gone(widgets, "owned"));

  // Foreground deletion of a custom resource waits for its blocking dependents.
  json fg = widget("fg-owner", json::array());
  h_.create(kConfigMaps, config_map(kNs, "fg-dep", {owner_ref(fg, true)}, {kHold}));
  h_.remove(widgets, "fg-owner", "Foreground");
  ASSERT_TRUE(eventually([&] {
    auto d = h_.get(kConfigMaps, "fg-dep");
    return d && testing_support::being_deleted(*d);
  }));
  EXPECT_TRUE(h_.exists(widgets, "fg-owner"));
  release(kConfigMaps, "fg-dep");
  EXPECT_TRUE(h_.wait_gone(widgets, "fg-owner"));
}

}  // namespace
}  // namespace skiff::controllers::garbagecollector
