#include "api/openapi/openapi.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "api/openapi/crd.h"

namespace skiff::api {
namespace {

using nlohmann::json;

FieldDef field(std::string name, ValueKind kind, Shape shape = Shape::kScalar,
               const TypeDef* type = nullptr, std::string_view description = "") {
  FieldDef f;
  f.name = std::move(name);
  f.kind = kind;
  f.shape = shape;
  f.type = type;
  f.description = description;
  return f;
}

const std::vector<std::string> kAllVerbs = {"create", "delete", "deletecollection", "get",
                                            "list",   "patch",  "update",           "watch"};

// A hand-built registry shaped like the built-in one: core/v1 ConfigMap and Namespace,
// apps/v1 Deployment (status and scale subresources), authorization.k8s.io/v1
// SelfSubjectAccessReview (create only).
class OpenApiTest : public ::testing::Test {
 protected:
  OpenApiTest() { build(registry_, schema_, /*extra_field=*/false); }

  static void build(Registry& registry, Schema& schema, bool extra_field) {
    auto add = [&](std::string name, std::vector<FieldDef> fields,
                   std::string_view description = "") {
      auto t = std::make_unique<TypeDef>();
      t->name = std::move(name);
      t->description = description;
      t->fields = std::move(fields);
      t->finalize();
      return schema.add(std::move(t));
    };
    auto* meta =
        add("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            {field("name", ValueKind::kString, Shape::kScalar, nullptr, "Name must be unique."),
             field("labels", ValueKind::kString, Shape::kMap, nullptr,
                   "Map of string keys and values that can be used to organize objects."),
             field("creationTimestamp", ValueKind::kTime, Shape::kScalar, nullptr,
                   "CreationTimestamp is a timestamp.")},
            "ObjectMeta is metadata that all persisted resources must have.");
    auto* cm = add(
        "io.k8s.api.core.v1.ConfigMap",
        {field("metadata", ValueKind::kObject, Shape::kScalar, meta, "Standard object's metadata."),
         field("data", ValueKind::kString, Shape::kMap, nullptr,
               "Data contains the configuration data."),
         field("binaryData", ValueKind::kBytes, Shape::kMap)},
        "ConfigMap holds configuration data for pods to consume.");
    auto* ns = add("io.k8s.api.core.v1.Namespace",
                   {field("metadata", ValueKind::kObject, Shape::kScalar, meta)},
                   "Namespace provides a scope for Names.");
    auto* resources = add("io.k8s.api.core.v1.ResourceRequirements",
                          {field("limits", ValueKind::kQuantity, Shape::kMap, nullptr,
                                 "Limits describes the maximum amount.")});
    FieldDef name =
        field("name", ValueKind::kString, Shape::kScalar, nullptr, "Name of the container.");
    name.optional = false;
    auto* container = add("io.k8s.api.core.v1.Container",
                          {name, field("image", ValueKind::kString),
                           field("resources", ValueKind::kObject, Shape::kScalar, resources),
                           field("imagePullPolicy", ValueKind::kString)},
                          "A single application container.");
    container->fields[3].enum_values = {"Always", "IfNotPresent", "Never"};
    FieldDef containers = field("containers", ValueKind::kObject, Shape::kList, container,
                                "List of containers belonging to the pod.");
    containers.patch_merge_key = "name";
    containers.patch_strategy = "merge";
    containers.list_type = "map";
    containers.list_map_keys = {"name"};
    auto* pod_spec =
        add("io.k8s.api.core.v1.PodSpec", {containers}, "PodSpec is a description of a pod.");
    auto* tmpl = add("io.k8s.api.core.v1.PodTemplateSpec",
                     {field("metadata", ValueKind::kObject, Shape::kScalar, meta),
                      field("spec", ValueKind::kObject, Shape::kScalar, pod_spec)});
    auto* rolling = add("io.k8s.api.apps.v1.RollingUpdateDeployment",
                        {field("maxSurge", ValueKind::kIntOrString, Shape::kScalar, nullptr,
                               "The maximum number of pods.")});
    std::vector<FieldDef> spec_fields = {
        field("replicas", ValueKind::kInt32, Shape::kScalar, nullptr, "Number of desired pods."),
        field("template", ValueKind::kObject, Shape::kScalar, tmpl, "Template describes the pods."),
        field("rollingUpdate", ValueKind::kObject, Shape::kScalar, rolling),
        field("progressDeadline", ValueKind::kDuration)};
    if (extra_field) spec_fields.push_back(field("paused", ValueKind::kBool));
    auto* spec =
        add("io.k8s.api.apps.v1.DeploymentSpec", spec_fields,
            "DeploymentSpec is the specification of the desired behavior of the Deployment.");
    auto* deployment = add(
        "io.k8s.api.apps.v1.Deployment",
        {field("metadata", ValueKind::kObject, Shape::kScalar, meta, "Standard object's metadata."),
         field("spec", ValueKind::kObject, Shape::kScalar, spec,
               "Specification of the desired behavior of the Deployment."),
         field("raw", ValueKind::kRawExtension)},
        "Deployment enables declarative updates for Pods and ReplicaSets.");
    auto* ssar = add("io.k8s.api.authorization.v1.SelfSubjectAccessReview",
                     {field("metadata", ValueKind::kObject, Shape::kScalar, meta)});

    auto def = [](std::string group, std::string kind, std::string resource, Scope scope,
                  const TypeDef* type, std::vector<std::string> verbs) {
      auto d = std::make_shared<ResourceDef>();
      d->group = std::move(group);
      d->version = "v1";
      d->kind = kind;
      d->list_kind = kind + "List";
      d->resource = std::move(resource);
      d->scope = scope;
      d->type = type;
      d->verbs = std::move(verbs);
      return d;
    };
    registry.add(def("", "ConfigMap", "configmaps", Scope::kNamespaced, cm, kAllVerbs));
    registry.add(def("", "Namespace", "namespaces", Scope::kCluster, ns, kAllVerbs));
    auto d = def("apps", "Deployment", "deployments", Scope::kNamespaced, deployment, kAllVerbs);
    d->subresources.push_back({"status", "apps", "v1", "Deployment", {"get", "patch", "update"}});
    d->subresources.push_back({"scale", "autoscaling", "v1", "Scale", {"get", "patch", "update"}});
    d->subresources.push_back({"log", "", "", "", {"get"}});
    registry.add(d);
    registry.add(def("authorization.k8s.io", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
                     Scope::kCluster, ssar, {"create"}));
  }

  json doc(std::string_view group, std::string_view version = "v1") {
    auto d = openapi_v3_document(registry_, group, version);
    EXPECT_TRUE(d.ok()) << d.status().to_string();
    return d.ok() ? *d : json();
  }

  Schema schema_;
  Registry registry_;
};

const json* resolve(const json& document, const json& schema) {
  if (!schema.contains("$ref")) return &schema;
  std::string ref = schema["$ref"].get<std::string>();
  const std::string prefix = "#/components/schemas/";
  if (ref.rfind(prefix, 0) != 0) return nullptr;
  auto& schemas = document["components"]["schemas"];
  auto it = schemas.find(ref.substr(prefix.size()));
  return it == schemas.end() ? nullptr : &*it;
}

// Follows a field path the way kubectl explain's template does: properties, then items,
// additionalProperties, $ref and allOf.
const json* explain(const json& document, const json& gvk, const std::vector<std::string>& path) {
  const json* cur = nullptr;
  for (const auto& [name, schema] : document["components"]["schemas"].items()) {
    if (!schema.contains("x-kubernetes-group-version-kind")) continue;
    for (const json& g : schema["x-kubernetes-group-version-kind"]) {
      if (g == gvk) cur = &schema;
    }
  }
  if (cur == nullptr) return nullptr;
  for (const std::string& step : path) {
    for (int hops = 0; hops < 10 && cur != nullptr; hops++) {
      cur = resolve(document, *cur);
      if (cur == nullptr) return nullptr;
      if (cur->contains("properties") && (*cur)["properties"].contains(step)) break;
      if (cur->contains("items")) {
        cur = &(*cur)["items"];
      } else if (cur->contains("additionalProperties") &&
                 (*cur)["additionalProperties"].is_object()) {
        cur = &(*cur)["additionalProperties"];
      } else if (cur->contains("allOf")) {
        cur = &(*cur)["allOf"][0];
      } else {
        return nullptr;
      }
    }
    if (cur == nullptr || !cur->contains("properties")) return nullptr;
    cur = &(*cur)["properties"][step];
  }
  return cur;
}

// What cli-runtime's query_param_verifier_v3 concludes for a GVK and a query parameter.
bool verifier_supports(const json& document, const json& gvk, const std::string& param) {
  for (const auto& [path, item] : document["paths"].items()) {
    if (!item.contains("patch")) continue;
    const json& op = item["patch"];
    if (op.value("x-kubernetes-group-version-kind", json()) != gvk) continue;
    for (const json& p : op.value("parameters", json::array())) {
      if (p.value("name", "") == param) return true;
    }
    return false;
  }
  return false;
}

void collect_refs(const json& j, std::set<std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (k == "$ref" && v.is_string()) out.insert(v.get<std::string>());
      collect_refs(v, out);
    }
  } else if (j.is_array()) {
    for (const json& v : j) collect_refs(v, out);
  }
}

TEST_F(OpenApiTest, IndexListsEveryServedGroupVersion) {
  json index = openapi_v3_index(registry_);
  std::set<std::string> keys;
  for (const auto& [k, v] : index["paths"].items()) {
    keys.insert(k);
    const std::string url = v["serverRelativeURL"].get<std::string>();
    EXPECT_TRUE(std::regex_match(url, std::regex("/openapi/v3/" + k + "\\?hash=[0-9A-F]{128}")))
        << url;
  }
  EXPECT_EQ(keys,
            (std::set<std::string>{"api/v1", "apis/apps/v1", "apis/authorization.k8s.io/v1"}));
}

TEST_F(OpenApiTest, HashIsStableAndFollowsContent) {
  json first = openapi_v3_index(registry_);
  EXPECT_EQ(first, openapi_v3_index(registry_));

  Schema other_schema;
  Registry other;
  build(other, other_schema, /*extra_field=*/true);
  json changed = openapi_v3_index(other);
  EXPECT_NE(changed["paths"]["apis/apps/v1"], first["paths"]["apis/apps/v1"]);
  EXPECT_EQ(changed["paths"]["api/v1"], first["paths"]["api/v1"]);

  // The hash is the document's.
  json d = doc("apps");
  const std::string hash = openapi_v3_hash(d.dump(-1, ' ', false, json::error_handler_t::replace));
  EXPECT_EQ(first["paths"]["apis/apps/v1"]["serverRelativeURL"],
            "/openapi/v3/apis/apps/v1?hash=" + hash);
}

TEST_F(OpenApiTest, UnservedGroupVersionIsNotFound) {
  EXPECT_TRUE(openapi_v3_document(registry_, "apps", "v2").status().is_not_found());
  EXPECT_TRUE(openapi_v3_document(registry_, "batch", "v1").status().is_not_found());
}

TEST_F(OpenApiTest, PatchOperationSatisfiesKubectlVerifier) {
  json d = doc("apps");
  ASSERT_EQ(d["openapi"], "3.0.0");
  const json& patch =
      d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
  EXPECT_EQ(patch["x-kubernetes-group-version-kind"],
            json({{"group", "apps"}, {"version", "v1"}, {"kind", "Deployment"}}));
  std::set<std::string> params;
  for (const json& p : patch["parameters"]) {
    EXPECT_EQ(p["in"], "query");
    params.insert(p["name"].get<std::string>());
  }
  EXPECT_EQ(params, (std::set<std::string>{"dryRun", "fieldManager", "fieldValidation", "force"}));
  std::set<std::string> content;
  for (const auto& [k, v] : patch["requestBody"]["content"].items()) content.insert(k);
  EXPECT_EQ(content,
            (std::set<std::string>{"application/apply-patch+yaml", "application/json-patch+json",
                                   "application/merge-patch+json"}));

  const json gvk = {{"group", "apps"}, {"version", "v1"}, {"kind", "Deployment"}};
  EXPECT_TRUE(verifier_supports(d, gvk, "fieldValidation"));
  EXPECT_TRUE(verifier_supports(d, gvk, "dryRun"));
  // Every PATCH operation of the kind (the item and /status) must pass, whichever kubectl
  // meets first, and none may advertise strategic merge patch.
  int patch_ops = 0;
  for (const auto& [path, item] : d["paths"].items()) {
    if (!item.contains("patch")) continue;
    patch_ops++;
    EXPECT_FALSE(
        item["patch"]["requestBody"]["content"].contains("application/strategic-merge-patch+json"));
    bool has_fv = false;
    for (const json& p : item["patch"]["parameters"])
      has_fv = has_fv || p["name"] == "fieldValidation";
    EXPECT_TRUE(has_fv) << path;
  }
  EXPECT_EQ(patch_ops, 3);  // item, status, scale
  EXPECT_EQ(d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"]["patch"]
             ["x-kubernetes-group-version-kind"],
            gvk);
  EXPECT_EQ(d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
             ["x-kubernetes-group-version-kind"]["kind"],
            "Scale");
  EXPECT_FALSE(d["paths"].contains("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/log"));
}

TEST_F(OpenApiTest, PathsFollowScopeAndVerbs) {
  json core = doc("");
  EXPECT_TRUE(core["paths"].contains("/api/v1/namespaces/{namespace}/configmaps"));
  EXPECT_TRUE(core["paths"].contains("/api/v1/namespaces/{namespace}/configmaps/{name}"));
  EXPECT_TRUE(core["paths"].contains("/api/v1/configmaps"));  // list across namespaces
  EXPECT_TRUE(core["paths"].contains("/api/v1/namespaces"));
  EXPECT_TRUE(core["paths"].contains("/api/v1/namespaces/{name}"));
  const json& item = core["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"];
  for (const char* method : {"get", "put", "patch", "delete"}) {
    ASSERT_TRUE(item.contains(method)) << method;
    EXPECT_EQ(item[method]["x-kubernetes-group-version-kind"]["kind"], "ConfigMap");
  }
  EXPECT_EQ(item["get"]["operationId"], "readCoreV1NamespacedConfigMap");
  EXPECT_EQ(core["paths"]["/api/v1/namespaces/{namespace}/configmaps"]["post"]["operationId"],
            "createCoreV1NamespacedConfigMap");
  EXPECT_EQ(core["paths"]["/api/v1/namespaces/{name}"]["patch"]["operationId"],
            "patchCoreV1Namespace");
  std::set<std::string> path_params;
  for (const json& p : item["parameters"]) {
    if (p["in"] == "path") {
      EXPECT_EQ(p["required"], true);
      path_params.insert(p["name"].get<std::string>());
    }
  }
  EXPECT_EQ(path_params, (std::set<std::string>{"name", "namespace"}));

  json authz = doc("authorization.k8s.io");
  const json& paths = authz["paths"];
  ASSERT_EQ(paths.size(), 1u);
  const json& coll = paths["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"];
  EXPECT_TRUE(coll.contains("post"));
  EXPECT_FALSE(coll.contains("get"));
  EXPECT_EQ(coll["post"]["operationId"], "createAuthorizationV1SelfSubjectAccessReview");
}

TEST_F(OpenApiTest, SchemasCarryGvkAndFieldDetails) {
  json d = doc("apps");
  const json& schemas = d["components"]["schemas"];
  const json& dep = schemas["io.k8s.api.apps.v1.Deployment"];
  EXPECT_EQ(dep["x-kubernetes-group-version-kind"],
            json::parse(R"([{"group": "apps", "version": "v1", "kind": "Deployment"}])"));
  EXPECT_EQ(dep["type"], "object");
  EXPECT_EQ(dep["description"], "Deployment enables declarative updates for Pods and ReplicaSets.");
  EXPECT_EQ(dep["properties"]["apiVersion"]["type"], "string");
  EXPECT_EQ(dep["properties"]["kind"]["type"], "string");
  EXPECT_EQ(
      dep["properties"]["spec"],
      json::parse(R"({"allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}],
                            "description": "Specification of the desired behavior of the Deployment."})"));
  EXPECT_EQ(
      dep["properties"]["raw"],
      json::parse(
          R"({"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.runtime.RawExtension"})"));
  EXPECT_EQ(
      schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"],
      json::parse(
          R"({"type": "integer", "format": "int32", "description": "Number of desired pods."})"));
  EXPECT_EQ(schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["progressDeadline"]["type"],
            "string");

  const json& containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
  EXPECT_EQ(containers, json::parse(R"({
      "type": "array", "items": {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"},
      "description": "List of containers belonging to the pod.",
      "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge",
      "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})"));
  EXPECT_EQ(schemas["io.k8s.api.core.v1.Container"]["required"], json({"name"}));
  EXPECT_EQ(schemas["io.k8s.api.core.v1.Container"]["properties"]["imagePullPolicy"]["enum"],
            json({"Always", "IfNotPresent", "Never"}));
  EXPECT_EQ(
      schemas["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
             ["additionalProperties"],
      json::parse(
          R"({"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"})"));
  EXPECT_EQ(
      schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["x-kubernetes-int-or-string"],
      true);
  EXPECT_EQ(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["type"], "string");
  EXPECT_EQ(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"], "date-time");
  EXPECT_EQ(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["labels"],
            json::parse(R"({"type": "object", "additionalProperties": {"type": "string"},
                            "description": "Map of string keys and values that can be used to organize objects."})"));
  EXPECT_EQ(
      schemas["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"][0]["kind"],
      "DeploymentList");

  // Every reference resolves inside the document.
  std::set<std::string> refs;
  collect_refs(d, refs);
  EXPECT_FALSE(refs.empty());
  for (const std::string& r : refs) {
    EXPECT_TRUE(resolve(d, json{{"$ref", r}}) != nullptr) << r;
  }
  std::set<std::string> core_refs;
  json core = doc("");
  collect_refs(core, core_refs);
  for (const std::string& r : core_refs)
    EXPECT_TRUE(resolve(core, json{{"$ref", r}}) != nullptr) << r;
}

TEST_F(OpenApiTest, ExplainFindsFieldsThroughReferences) {
  json d = doc("apps");
  const json gvk = {{"group", "apps"}, {"version", "v1"}, {"kind", "Deployment"}};
  const json* replicas = explain(d, gvk, {"spec", "replicas"});
  ASSERT_NE(replicas, nullptr);
  EXPECT_EQ((*replicas)["description"], "Number of desired pods.");
  const json* labels = explain(d, gvk, {"metadata", "labels"});
  ASSERT_NE(labels, nullptr);
  EXPECT_EQ((*labels)["additionalProperties"]["type"], "string");
  const json* image = explain(d, gvk, {"spec", "template", "spec", "containers", "image"});
  ASSERT_NE(image, nullptr);
  EXPECT_EQ((*image)["type"], "string");
  EXPECT_EQ(explain(d, gvk, {"spec", "replica"}), nullptr);

  // explain finds the GVK through an operation on the resource's own paths.
  bool found = false;
  for (const char* p : {"/apis/apps/v1/namespaces/{namespace}/deployments",
                        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"}) {
    for (const char* m : {"get", "post", "put", "patch", "delete"}) {
      found = found || (d["paths"][p].contains(m) &&
                        d["paths"][p][m]["x-kubernetes-group-version-kind"] == gvk);
    }
  }
  EXPECT_TRUE(found);
}

TEST(OpenApiPaths, ParseAndFormat) {
  EXPECT_EQ(openapi_v3_path("", "v1"), "api/v1");
  EXPECT_EQ(openapi_v3_path("apps", "v1"), "apis/apps/v1");
  auto core = parse_openapi_v3_path("api/v1");
  ASSERT_TRUE(core);
  EXPECT_EQ(core->group, "");
  EXPECT_EQ(core->version, "v1");
  auto apps = parse_openapi_v3_path("/apis/apps/v1");
  ASSERT_TRUE(apps);
  EXPECT_EQ(apps->group, "apps");
  EXPECT_EQ(apps->version, "v1");
  for (const char* bad : {"", "api", "api/", "apis/apps", "apis/apps/", "apis//v1", "api/v1/x",
                          "apis/apps/v1/x", "openapi/v3"}) {
    EXPECT_FALSE(parse_openapi_v3_path(bad)) << bad;
  }
}

const char* kCronTabCrd = R"({
  "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {"name": "crontabs.stable.example.com"},
  "spec": {"group": "stable.example.com", "scope": "Namespaced",
           "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
           "versions": [{"name": "v1", "served": true, "storage": true,
                         "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                           "spec": {"type": "object", "description": "The spec.", "properties": {
                             "cronSpec": {"type": "string", "description": "When to run."},
                             "replicas": {"type": "integer"}}}}}}}]}})";

TEST_F(OpenApiTest, CrdGroupsAreServedWithInlineSchemas) {
  auto defs = resource_defs_from_crd(json::parse(kCronTabCrd));
  ASSERT_TRUE(defs.ok()) << defs.status().to_string();
  const json before = openapi_v3_index(registry_);
  registry_.put_crd("crontabs.stable.example.com", *defs);
  const json after = openapi_v3_index(registry_);
  EXPECT_TRUE(after["paths"].contains("apis/stable.example.com/v1"));
  EXPECT_EQ(after["paths"]["apis/apps/v1"], before["paths"]["apis/apps/v1"]);

  json d = doc("stable.example.com");
  const json gvk = {{"group", "stable.example.com"}, {"version", "v1"}, {"kind", "CronTab"}};
  const json& schema = d["components"]["schemas"]["com.example.stable.v1.CronTab"];
  EXPECT_EQ(schema["x-kubernetes-group-version-kind"], json::array({gvk}));
  EXPECT_EQ(schema["properties"]["spec"]["type"], "object");
  EXPECT_EQ(schema["properties"]["spec"]["description"], "The spec.");
  EXPECT_EQ(schema["properties"]["spec"]["properties"]["replicas"]["type"], "integer");
  EXPECT_FALSE(d["components"]["schemas"].contains("com.example.stable.v1.CronTab.spec"));
  EXPECT_TRUE(verifier_supports(d, gvk, "fieldValidation"));
  const json* cron = explain(d, gvk, {"spec", "cronSpec"});
  ASSERT_NE(cron, nullptr);
  EXPECT_EQ((*cron)["description"], "When to run.");
  EXPECT_TRUE(
      d["paths"].contains("/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"));

  registry_.remove_crd("crontabs.stable.example.com");
  EXPECT_EQ(openapi_v3_index(registry_), before);
}

TEST_F(OpenApiTest, CacheServesBytesPerGeneration) {
  OpenApiV3Cache cache(registry_);
  auto index = cache.index();
  EXPECT_EQ(index, cache.index());  // the same bytes, not rebuilt
  EXPECT_EQ(json::parse(*index), openapi_v3_index(registry_));

  auto apps = cache.document("apis/apps/v1");
  ASSERT_TRUE(apps.ok());
  EXPECT_EQ((*apps)->hash, openapi_v3_hash((*apps)->body));
  EXPECT_EQ(json::parse((*apps)->body), doc("apps"));
  auto same = cache.document("apps", "v1");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, *apps);
  EXPECT_TRUE(cache.document("apis/batch/v1").status().is_not_found());
  EXPECT_TRUE(cache.document("nonsense").status().is_not_found());

  auto defs = resource_defs_from_crd(json::parse(kCronTabCrd));
  ASSERT_TRUE(defs.ok());
  registry_.put_crd("crontabs.stable.example.com", *defs);
  auto index2 = cache.index();
  EXPECT_NE(index2, index);
  // Documents of unchanged group-versions are reused, not rebuilt.
  auto apps2 = cache.document("apis/apps/v1");
  ASSERT_TRUE(apps2.ok());
  EXPECT_EQ(*apps2, *apps);
  EXPECT_TRUE(json::parse(*index2)["paths"].contains("apis/stable.example.com/v1"));
  EXPECT_TRUE(cache.document("stable.example.com", "v1").ok());
  EXPECT_EQ(json::parse(*index)["paths"].size() + 1, json::parse(*index2)["paths"].size());
}

TEST_F(OpenApiTest, CacheIsSafeUnderConcurrentChanges) {
  OpenApiV3Cache cache(registry_);
  auto defs = resource_defs_from_crd(json::parse(kCronTabCrd));
  ASSERT_TRUE(defs.ok());
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; t++) {
    readers.emplace_back([&] {
      while (!stop) {
        auto idx = cache.index();
        json parsed = json::parse(*idx);
        for (const auto& [path, v] : parsed["paths"].items()) {
          auto d = cache.document(path);
          if (d.ok()) {
            EXPECT_EQ((*d)->hash, openapi_v3_hash((*d)->body));
          }
        }
      }
    });
  }
  for (int i = 0; i < 20; i++) {
    registry_.put_crd("crontabs.stable.example.com", *defs);
    registry_.remove_crd("crontabs.stable.example.com");
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_FALSE(json::parse(*cache.index())["paths"].contains("apis/stable.example.com/v1"));
}

}  // namespace
}  // namespace skiff::api
