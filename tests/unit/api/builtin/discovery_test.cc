// Discovery facts of the built-in registry, as Kubernetes 1.32 serves them.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "api/builtin/builtin.h"
#include "api/schema.h"
#include "test_util.h"

namespace skiff::api {
namespace {

using testing::builtin_registry;
using testing::def;
using Strings = std::vector<std::string>;

const Strings kAll = {"create", "delete", "deletecollection", "get",
                      "list",   "patch",  "update",           "watch"};

TEST(BuiltinDiscovery, DeploymentsHaveShortNameCategoryAndScaleAndStatus) {
  const ResourceDef& d = def("apps", "deployments");
  EXPECT_EQ(d.kind, "Deployment");
  EXPECT_EQ(d.list_kind, "DeploymentList");
  EXPECT_EQ(d.singular, "deployment");
  EXPECT_EQ(d.short_names, Strings{"deploy"});
  EXPECT_EQ(d.categories, Strings{"all"});
  EXPECT_EQ(d.verbs, kAll);
  EXPECT_TRUE(d.namespaced());
  EXPECT_TRUE(d.has_status_subresource);
  const SubresourceDef* scale = d.subresource("scale");
  ASSERT_NE(scale, nullptr);
  EXPECT_EQ(scale->group, "autoscaling");
  EXPECT_EQ(scale->version, "v1");
  EXPECT_EQ(scale->kind, "Scale");
  EXPECT_EQ(scale->verbs, (Strings{"get", "patch", "update"}));
  const SubresourceDef* status = d.subresource("status");
  ASSERT_NE(status, nullptr);
  EXPECT_EQ(status->group, "apps");
  EXPECT_EQ(status->kind, "Deployment");
}

TEST(BuiltinDiscovery, PodsAreNamespacedWithTheirSubresources) {
  const ResourceDef& d = def("", "pods");
  EXPECT_EQ(d.scope, Scope::kNamespaced);
  EXPECT_EQ(d.short_names, Strings{"po"});
  EXPECT_EQ(d.categories, Strings{"all"});
  Strings names;
  for (const auto& s : d.subresources) names.push_back(s.name);
  EXPECT_EQ(names, (Strings{"attach", "binding", "ephemeralcontainers", "eviction", "exec", "log",
                            "portforward", "status"}));
  EXPECT_EQ(d.subresource("eviction")->group, "policy");
  EXPECT_EQ(d.subresource("eviction")->kind, "Eviction");
  EXPECT_EQ(d.subresource("exec")->kind, "PodExecOptions");
  EXPECT_EQ(d.subresource("exec")->verbs, (Strings{"create", "get"}));
  EXPECT_EQ(d.subresource("log")->kind, "Pod");
  EXPECT_EQ(d.subresource("log")->verbs, Strings{"get"});
  EXPECT_EQ(d.subresource("binding")->verbs, Strings{"create"});
  EXPECT_EQ(d.subresource("ephemeralcontainers")->verbs, (Strings{"get", "patch", "update"}));
}

TEST(BuiltinDiscovery, ClusterScopedKinds) {
  for (const auto& [group, resource] : std::vector<std::pair<std::string, std::string>>{
           {"", "nodes"},
           {"", "namespaces"},
           {"", "persistentvolumes"},
           {"rbac.authorization.k8s.io", "clusterroles"},
           {"rbac.authorization.k8s.io", "clusterrolebindings"},
           {"storage.k8s.io", "storageclasses"},
           {"networking.k8s.io", "ingressclasses"},
           {"apiextensions.k8s.io", "customresourcedefinitions"},
           {"authorization.k8s.io", "selfsubjectaccessreviews"},
           {"authentication.k8s.io", "tokenreviews"}}) {
    EXPECT_EQ(def(group, resource).scope, Scope::kCluster) << group << "/" << resource;
  }
  EXPECT_EQ(def("", "nodes").short_names, Strings{"no"});
}

TEST(BuiltinDiscovery, NamespacesCannotBeDeletedAsACollection) {
  const ResourceDef& d = def("", "namespaces");
  EXPECT_EQ(d.verbs, (Strings{"create", "delete", "get", "list", "patch", "update", "watch"}));
  ASSERT_NE(d.subresource("finalize"), nullptr);
  EXPECT_EQ(d.subresource("finalize")->verbs, Strings{"update"});
  ASSERT_NE(d.subresource("status"), nullptr);
}

TEST(BuiltinDiscovery, ServiceAccountTokenReturnsTokenRequest) {
  const SubresourceDef* token = def("", "serviceaccounts").subresource("token");
  ASSERT_NE(token, nullptr);
  EXPECT_EQ(token->group, "authentication.k8s.io");
  EXPECT_EQ(token->version, "v1");
  EXPECT_EQ(token->kind, "TokenRequest");
  EXPECT_EQ(token->verbs, Strings{"create"});
}

TEST(BuiltinDiscovery, ReviewKindsAreCreateOnlyAndNotStored) {
  for (const auto& [group, resource] : std::vector<std::pair<std::string, std::string>>{
           {"authorization.k8s.io", "selfsubjectaccessreviews"},
           {"authorization.k8s.io", "selfsubjectrulesreviews"},
           {"authorization.k8s.io", "subjectaccessreviews"},
           {"authentication.k8s.io", "tokenreviews"},
           {"authentication.k8s.io", "selfsubjectreviews"}}) {
    const ResourceDef& d = def(group, resource);
    EXPECT_EQ(d.verbs, Strings{"create"}) << resource;
    EXPECT_FALSE(d.stored) << resource;
  }
  EXPECT_EQ(def("", "bindings").verbs, Strings{"create"});
}

TEST(BuiltinDiscovery, ShortNames) {
  std::map<std::string, Strings> expected = {{"namespaces", {"ns"}},
                                             {"services", {"svc"}},
                                             {"endpoints", {"ep"}},
                                             {"configmaps", {"cm"}},
                                             {"serviceaccounts", {"sa"}},
                                             {"events", {"ev"}},
                                             {"persistentvolumes", {"pv"}},
                                             {"persistentvolumeclaims", {"pvc"}},
                                             {"resourcequotas", {"quota"}},
                                             {"limitranges", {"limits"}},
                                             {"secrets", {}},
                                             {"bindings", {}}};
  for (const auto& [resource, names] : expected) {
    EXPECT_EQ(def("", resource).short_names, names) << resource;
  }
  EXPECT_EQ(def("apps", "replicasets").short_names, Strings{"rs"});
  EXPECT_EQ(def("apps", "daemonsets").short_names, Strings{"ds"});
  EXPECT_EQ(def("apps", "statefulsets").short_names, Strings{"sts"});
  EXPECT_EQ(def("apps", "controllerrevisions").short_names, Strings{});
  EXPECT_EQ(def("batch", "cronjobs").short_names, Strings{"cj"});
  EXPECT_EQ(def("batch", "jobs").short_names, Strings{});
  EXPECT_EQ(def("autoscaling", "horizontalpodautoscalers").short_names, Strings{"hpa"});
  EXPECT_EQ(def("policy", "poddisruptionbudgets").short_names, Strings{"pdb"});
  EXPECT_EQ(def("networking.k8s.io", "ingresses").short_names, Strings{"ing"});
  EXPECT_EQ(def("networking.k8s.io", "networkpolicies").short_names, Strings{"netpol"});
  EXPECT_EQ(def("storage.k8s.io", "storageclasses").short_names, Strings{"sc"});
  const ResourceDef& crd = def("apiextensions.k8s.io", "customresourcedefinitions");
  EXPECT_EQ(crd.short_names, (Strings{"crd", "crds"}));
  EXPECT_EQ(crd.categories, Strings{"api-extensions"});
}

TEST(BuiltinDiscovery, CategoryAllIsWhereKubernetesPutsIt) {
  std::set<std::string> in_all;
  for (const auto& d : builtin_registry().all()) {
    if (std::find(d->categories.begin(), d->categories.end(), "all") != d->categories.end()) {
      in_all.insert(d->group + "/" + d->resource);
    }
  }
  EXPECT_EQ(in_all,
            (std::set<std::string>{"/pods", "/services", "apps/deployments", "apps/replicasets",
                                   "apps/statefulsets", "apps/daemonsets", "batch/jobs",
                                   "batch/cronjobs", "autoscaling/horizontalpodautoscalers"}));
}

TEST(BuiltinDiscovery, EveryResourceIsCompleteAndFindableByKind) {
  for (const auto& d : builtin_registry().all()) {
    SCOPED_TRACE(d->group + "/" + d->resource);
    EXPECT_EQ(d->version, "v1");
    EXPECT_FALSE(d->kind.empty());
    EXPECT_EQ(d->list_kind, d->kind + "List");
    EXPECT_FALSE(d->singular.empty());
    EXPECT_FALSE(d->verbs.empty());
    ASSERT_FALSE(d->columns.empty());
    EXPECT_TRUE(static_cast<bool>(d->row));
    EXPECT_TRUE(static_cast<bool>(d->validate));
    EXPECT_EQ(builtin_registry().find_kind(d->group, d->version, d->kind), d);
    for (const auto& s : d->subresources) {
      EXPECT_FALSE(s.kind.empty()) << s.name;
      EXPECT_FALSE(s.verbs.empty()) << s.name;
    }
  }
  EXPECT_EQ(def("", "endpoints").singular, "endpoints");
}

TEST(BuiltinDiscovery, GroupsAreListedCoreFirst) {
  std::vector<GroupVersion> gvs = builtin_registry().group_versions();
  ASSERT_FALSE(gvs.empty());
  EXPECT_EQ(gvs[0].group, "");
  std::set<std::string> groups;
  for (const auto& gv : gvs) groups.insert(gv.group);
  EXPECT_EQ(groups,
            (std::set<std::string>{
                "", "apps", "authentication.k8s.io", "authorization.k8s.io", "autoscaling", "batch",
                "networking.k8s.io", "policy", "rbac.authorization.k8s.io", "storage.k8s.io",
                "apiextensions.k8s.io", "coordination.k8s.io", "discovery.k8s.io"}));
}

// A kind's TypeDef is the built-in schema's "<package>.<Kind>". Groups' schema files arrive
// one by one; a kind whose type the schema lacks has a null type until its file lands.
TEST(BuiltinDiscovery, TypesResolveFromTheBuiltinSchema) {
  const std::map<std::string, std::string> packages = {
      {"", "io.k8s.api.core.v1"},
      {"apps", "io.k8s.api.apps.v1"},
      {"authentication.k8s.io", "io.k8s.api.authentication.v1"},
      {"authorization.k8s.io", "io.k8s.api.authorization.v1"},
      {"autoscaling", "io.k8s.api.autoscaling.v1"},
      {"batch", "io.k8s.api.batch.v1"},
      {"networking.k8s.io", "io.k8s.api.networking.v1"},
      {"policy", "io.k8s.api.policy.v1"},
      {"rbac.authorization.k8s.io", "io.k8s.api.rbac.v1"},
      {"storage.k8s.io", "io.k8s.api.storage.v1"},
      {"apiextensions.k8s.io", "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1"},
      {"coordination.k8s.io", "io.k8s.api.coordination.v1"},
      {"discovery.k8s.io", "io.k8s.api.discovery.v1"},
  };
  const Schema& schema = builtin_schema();
  for (const auto& d : builtin_registry().all()) {
    SCOPED_TRACE(d->group + "/" + d->resource);
    auto it = packages.find(d->group);
    ASSERT_NE(it, packages.end());
    EXPECT_EQ(d->type, schema.type(it->second + "." + d->kind));
    // The core group's schema is complete: every core kind resolves.
    if (d->group.empty()) {
      EXPECT_NE(d->type, nullptr);
    }
  }
  EXPECT_NE(def("", "pods").type, nullptr);
  EXPECT_NE(def("coordination.k8s.io", "leases").type, nullptr);
}

// Without a schema every kind is still served; only types and field-doc descriptions are empty.
TEST(BuiltinDiscovery, RegistryBuildsWithoutASchema) {
  std::unique_ptr<Registry> r = builtin::build_builtin_registry(nullptr);
  auto pods = r->find("", "v1", "pods");
  ASSERT_NE(pods, nullptr);
  EXPECT_EQ(pods->type, nullptr);
  EXPECT_EQ(pods->columns.size(), 9u);
  EXPECT_EQ(r->all().size(), builtin_registry().all().size());
}

}  // namespace
}  // namespace skiff::api
