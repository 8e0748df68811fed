// OpenAPI documents and strict field validation against the real built-in schema.
#include <gtest/gtest.h>

#include <cctype>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "api/openapi/crd.h"
#include "api/openapi/openapi.h"
#include "api/typecheck/typecheck.h"

#ifdef SKIFF_HAVE_BUILTIN_SCHEMA
#include "api/schema/builtin.h"
#endif

namespace skiff::api {
namespace {

using nlohmann::json;

#ifdef SKIFF_HAVE_BUILTIN_SCHEMA

// A registry of every persisted built-in kind (those with ObjectMeta), the shape the built-in
// registry gives them.
class BuiltinSchemaTest : public ::testing::Test {
 protected:
  BuiltinSchemaTest() {
    for (const BuiltinKind& k : builtin_kinds()) {
      const FieldDef* meta = k.type->field("metadata");
      if (meta == nullptr || meta->type == nullptr ||
          meta->type->name != "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta") {
        continue;
      }
      auto d = std::make_shared<ResourceDef>();
      d->group = k.group;
      d->version = k.version;
      d->kind = k.kind;
      d->list_kind = k.kind + "List";
      std::string plural;
      for (char c : k.kind)
        plural += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      d->singular = plural;
      d->resource = plural + "s";
      d->scope = k.kind == "Namespace" || k.kind == "Node" || k.kind == "PersistentVolume"
                     ? Scope::kCluster
                     : Scope::kNamespaced;
      d->type = k.type;
      d->verbs = {"create", "delete", "deletecollection", "get",
                  "list",   "patch",  "update",           "watch"};
      if (k.kind == "Deployment") {
        d->subresources.push_back(
            {"status", "apps", "v1", "Deployment", {"get", "patch", "update"}});
        d->subresources.push_back(
            {"scale", "autoscaling", "v1", "Scale", {"get", "patch", "update"}});
      }
      registry_.add(d);
    }
  }

  json doc(std::string_view group) {
    auto d = openapi_v3_document(registry_, group, "v1");
    EXPECT_TRUE(d.ok()) << d.status().to_string();
    return d.ok() ? *d : json::object();
  }

  Registry registry_;
};

const json* resolve(const json& document, const json& schema) {
  if (!schema.contains("$ref")) return &schema;
  const std::string prefix = "#/components/schemas/";
  std::string ref = schema["$ref"].get<std::string>();
  auto& schemas = document["components"]["schemas"];
  auto it = schemas.find(ref.substr(prefix.size()));
  return it == schemas.end() ? nullptr : &*it;
}

// kubectl explain's walk: the schema with the GVK, then properties through $ref, allOf, items
// and additionalProperties.
const json* explain(const json& document, const json& gvk, const std::vector<std::string>& path) {
  const json* cur = nullptr;
  for (const auto& [name, schema] : document["components"]["schemas"].items()) {
    for (const json& g : schema.value("x-kubernetes-group-version-kind", json::array())) {
      if (g == gvk) cur = &schema;
    }
  }
  for (const std::string& step : path) {
    for (int hops = 0; cur != nullptr && hops < 10; hops++) {
      cur = resolve(document, *cur);
      if (cur == nullptr || (cur->contains("properties") && (*cur)["properties"].contains(step)))
        break;
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

TEST_F(BuiltinSchemaTest, EveryDocumentIsSelfContained) {
  json index = openapi_v3_index(registry_);
  EXPECT_TRUE(index["paths"].contains("api/v1"));
  EXPECT_TRUE(index["paths"].contains("apis/apps/v1"));
  EXPECT_TRUE(index["paths"].contains("apis/batch/v1"));
  for (const GroupVersion& gv : registry_.group_versions()) {
    json d = doc(gv.group);
    std::set<std::string> refs;
    collect_refs(d, refs);
    for (const std::string& r : refs) {
      EXPECT_NE(resolve(d, json{{"$ref", r}}), nullptr) << gv.group << ": " << r;
    }
    // Every kind's schema carries its GVK.
    for (const auto& def : registry_.all()) {
      if (def->group != gv.group) continue;
      const json gvk = {{"group", def->group}, {"version", def->version}, {"kind", def->kind}};
      EXPECT_NE(explain(d, gvk, {}), nullptr) << def->kind;
      EXPECT_NE(explain(d, gvk, {"metadata", "labels"}), nullptr) << def->kind;
    }
  }
}

TEST_F(BuiltinSchemaTest, ExplainDeployment) {
  json d = doc("apps");
  const json gvk = {{"group", "apps"}, {"version", "v1"}, {"kind", "Deployment"}};
  const json* replicas = explain(d, gvk, {"spec", "replicas"});
  ASSERT_NE(replicas, nullptr);
  EXPECT_EQ((*replicas)["type"], "integer");
  EXPECT_EQ((*replicas)["format"], "int32");
  EXPECT_NE((*replicas)["description"].get<std::string>().find("desired pods"), std::string::npos);
  const json* api_version = explain(d, gvk, {"apiVersion"});
  ASSERT_NE(api_version, nullptr);
  EXPECT_EQ((*api_version)["type"], "string");
  const json* limits =
      explain(d, gvk, {"spec", "template", "spec", "containers", "resources", "limits"});
  ASSERT_NE(limits, nullptr);
  EXPECT_EQ((*limits)["additionalProperties"]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity");
  const json* surge = explain(d, gvk, {"spec", "strategy", "rollingUpdate", "maxSurge"});
  ASSERT_NE(surge, nullptr);
  const json* containers = explain(d, gvk, {"spec", "template", "spec", "containers"});
  ASSERT_NE(containers, nullptr);
  EXPECT_EQ((*containers)["x-kubernetes-patch-merge-key"], "name");
  EXPECT_EQ((*containers)["x-kubernetes-patch-strategy"], "merge");
  // Go-embedded volume sources are flattened into Volume.
  const json* empty_dir = explain(d, gvk, {"spec", "template", "spec", "volumes", "emptyDir"});
  EXPECT_NE(empty_dir, nullptr);

  const json& schemas = d["components"]["schemas"];
  EXPECT_EQ(
      schemas["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"][0]["kind"],
      "DeploymentList");
  EXPECT_TRUE(schemas["io.k8s.api.apps.v1.DeploymentList"]["properties"].contains("items"));
  EXPECT_TRUE(schemas.contains("io.k8s.apimachinery.pkg.apis.meta.v1.Status"));
  EXPECT_TRUE(schemas.contains("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"));
  EXPECT_FALSE(schemas.contains("io.k8s.apimachinery.pkg.apis.meta.v1.TypeMeta"));

  const json& patch =
      d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
  EXPECT_EQ(patch["x-kubernetes-group-version-kind"], gvk);
  bool field_validation = false;
  for (const json& p : patch["parameters"])
    field_validation = field_validation || p["name"] == "fieldValidation";
  EXPECT_TRUE(field_validation);
}

TEST_F(BuiltinSchemaTest, StrictValidationOfRealDeployment) {
  const TypeDef* dep = builtin_kind_type("apps", "v1", "Deployment");
  ASSERT_NE(dep, nullptr);
  json manifest = json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a": "b"}},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                                   "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                                   "env": [{"name": "A", "value": "1"}],
                                                   "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                                                                 "requests": {"cpu": 0.1}},
                                                   "readinessProbe": {"httpGet": {"path": "/", "port": 80},
                                                                      "periodSeconds": 5}}],
                                   "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                                               {"name": "cfg", "configMap": {"name": "cfg"}}],
                                   "terminationGracePeriodSeconds": 30}}}})");
  json copy = manifest;
  ASSERT_TRUE(check_fields(copy, *dep, FieldValidation::kStrict, nullptr).ok());
  EXPECT_EQ(copy["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "0.1");

  json typo = manifest;
  typo["spec"]["replica"] = 3;
  typo["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always";
  EXPECT_EQ(
      decode_error(check_fields(typo, *dep, FieldValidation::kStrict, nullptr), "Deployment", "v1")
          .message(),
      "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: "
      "unknown field \"spec.replica\", unknown field "
      "\"spec.template.spec.containers[0].imagePullPolicyy\"");

  json wrong = manifest;
  wrong["spec"]["replicas"] = "2";
  EXPECT_EQ(check_fields(wrong, *dep, FieldValidation::kStrict, nullptr).message(),
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of "
            "type int32");
}

TEST_F(BuiltinSchemaTest, CrdMetadataIsObjectMeta) {
  json crd = json::parse(R"({"metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "kind": "Widget"},
             "versions": [{"name": "v1", "served": true, "storage": true,
                           "schema": {"openAPIV3Schema": {"type": "object"}}}]}})");
  auto defs = resource_defs_from_crd(crd);
  ASSERT_TRUE(defs.ok()) << defs.status().to_string();
  const TypeDef& type = *(*defs)[0]->type;
  json obj = json::parse(R"({"apiVersion": "example.com/v1", "kind": "Widget",
                             "metadata": {"name": "w", "labelz": {}}})");
  EXPECT_EQ(check_fields(obj, type, FieldValidation::kStrict, nullptr).message(),
            "strict decoding error: unknown field \"metadata.labelz\"");

  registry_.put_crd("widgets.example.com", *defs);
  auto d = openapi_v3_document(registry_, "example.com", "v1");
  ASSERT_TRUE(d.ok());
  const json gvk = {{"group", "example.com"}, {"version", "v1"}, {"kind", "Widget"}};
  const json* labels = explain(*d, gvk, {"metadata", "labels"});
  ASSERT_NE(labels, nullptr);
  EXPECT_EQ((*labels)["type"], "object");
}

#else

TEST(BuiltinSchema, NeedsTheBuiltinSchema) { GTEST_SKIP() << "built-in schema not linked"; }

#endif

}  // namespace
}  // namespace skiff::api
