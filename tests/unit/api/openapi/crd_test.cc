#include "api/openapi/crd.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "api/typecheck/typecheck.h"

namespace skiff::api {
namespace {

using nlohmann::json;

// The CronTab example of the Kubernetes documentation, with printer columns, subresources and
// the schema features the converter maps.
json crontab_crd() {
  return json::parse(R"({
  "apiVersion": "apiextensions.k8s.io/v1",
  "kind": "CustomResourceDefinition",
  "metadata": {"name": "crontabs.stable.example.com"},
  "spec": {
    "group": "stable.example.com",
    "scope": "Namespaced",
    "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab",
              "shortNames": ["ct"], "categories": ["all"]},
    "versions": [
      {"name": "v1", "served": true, "storage": true,
       "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                  "statusReplicasPath": ".status.replicas"}},
       "additionalPrinterColumns": [
         {"name": "Spec", "type": "string", "description": "The cron spec defining the interval a CronJob is run", "jsonPath": ".spec.cronSpec"},
         {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
         {"name": "Ready", "type": "string", "priority": 1, "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
         {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
       "schema": {"openAPIV3Schema": {
         "type": "object",
         "description": "CronTab runs a command on a schedule.",
         "properties": {
           "apiVersion": {"type": "string"},
           "kind": {"type": "string"},
           "metadata": {"type": "object"},
           "spec": {"type": "object", "required": ["cronSpec"], "properties": {
             "cronSpec": {"type": "string", "description": "The schedule."},
             "image": {"type": "string"},
             "replicas": {"type": "integer", "format": "int32"},
             "ratio": {"type": "number"},
             "paused": {"type": "boolean"},
             "policy": {"type": "string", "enum": ["Allow", "Forbid"]},
             "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
             "labels": {"type": "object", "additionalProperties": {"type": "string"}},
             "args": {"type": "array", "items": {"type": "string"}},
             "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
             "ports": {"type": "array", "x-kubernetes-list-type": "map",
                       "x-kubernetes-list-map-keys": ["name", "protocol"],
                       "items": {"type": "object", "properties": {
                         "name": {"type": "string"}, "protocol": {"type": "string"},
                         "number": {"type": "integer"}}}},
             "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                        "properties": {"level": {"type": "integer"}}},
             "anything": {"x-kubernetes-preserve-unknown-fields": true},
             "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                          "x-kubernetes-preserve-unknown-fields": true}}},
           "status": {"type": "object", "properties": {
             "replicas": {"type": "integer"},
             "conditions": {"type": "array", "items": {"type": "object", "properties": {
               "type": {"type": "string"}, "status": {"type": "string"}}}}}}}}}},
      {"name": "v1beta1", "served": false, "storage": false,
       "schema": {"openAPIV3Schema": {"type": "object"}}},
      {"name": "v2", "served": true, "storage": false,
       "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})");
}

json crontab() {
  return json::parse(R"({
    "apiVersion": "stable.example.com/v1", "kind": "CronTab",
    "metadata": {"name": "my-cron", "namespace": "default", "creationTimestamp": "2024-05-01T10:00:00Z"},
    "spec": {"cronSpec": "* * * * */5", "image": "my-cron-image", "replicas": 3, "ratio": 0.5,
             "paused": false, "policy": "Allow", "port": "http", "labels": {"a": "b"},
             "args": ["-v"], "matrix": [[1, 2], [3]],
             "ports": [{"name": "web", "protocol": "TCP", "number": 80}],
             "config": {"level": 2, "extra": {"kept": true}},
             "anything": {"x": [1, "y"]},
             "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}}},
    "status": {"replicas": 2, "conditions": [{"type": "Synced", "status": "True"},
                                             {"type": "Ready", "status": "False"}]}
  })");
}

const ResourceDef& v1_def(const std::vector<std::shared_ptr<const ResourceDef>>& defs) {
  return *defs.at(0);
}

TEST(Crd, ServedVersionsBecomeResourceDefs) {
  auto defs = resource_defs_from_crd(crontab_crd());
  ASSERT_TRUE(defs.ok()) << defs.status().to_string();
  ASSERT_EQ(defs->size(), 2u);  // v1beta1 is not served
  const ResourceDef& d = v1_def(*defs);
  EXPECT_EQ(d.group, "stable.example.com");
  EXPECT_EQ(d.version, "v1");
  EXPECT_EQ(d.kind, "CronTab");
  EXPECT_EQ(d.list_kind, "CronTabList");
  EXPECT_EQ(d.resource, "crontabs");
  EXPECT_EQ(d.singular, "crontab");
  EXPECT_EQ(d.api_version(), "stable.example.com/v1");
  EXPECT_EQ(d.short_names, std::vector<std::string>{"ct"});
  EXPECT_EQ(d.categories, std::vector<std::string>{"all"});
  EXPECT_EQ(d.scope, Scope::kNamespaced);
  EXPECT_TRUE(d.crd);
  EXPECT_TRUE(d.stored);
  EXPECT_EQ(d.verbs, (std::vector<std::string>{"create", "delete", "deletecollection", "get",
                                               "list", "patch", "update", "watch"}));
  EXPECT_TRUE(d.has_status_subresource);
  ASSERT_NE(d.subresource("status"), nullptr);
  EXPECT_EQ(d.subresource("status")->kind, "CronTab");
  ASSERT_NE(d.subresource("scale"), nullptr);
  EXPECT_EQ(d.subresource("scale")->group, "autoscaling");
  EXPECT_EQ(d.subresource("scale")->kind, "Scale");
  ASSERT_NE(d.type, nullptr);
  EXPECT_EQ(d.type->name, "com.example.stable.v1.CronTab");
  EXPECT_EQ(d.type->description, "CronTab runs a command on a schedule.");
  ASSERT_NE(d.owned_schema, nullptr);

  const ResourceDef& v2 = *(*defs)[1];
  EXPECT_EQ(v2.version, "v2");
  EXPECT_FALSE(v2.has_status_subresource);
  EXPECT_TRUE(v2.subresources.empty());
  EXPECT_TRUE(v2.type->preserve_unknown_fields);
}

TEST(Crd, SchemaIsConvertedToTypeDefs) {
  auto defs = resource_defs_from_crd(crontab_crd());
  ASSERT_TRUE(defs.ok());
  const TypeDef& root = *v1_def(*defs).type;
  ASSERT_NE(root.field("apiVersion"), nullptr);
  EXPECT_EQ(root.field("apiVersion")->kind, ValueKind::kString);
  ASSERT_NE(root.field("metadata"), nullptr);
  const FieldDef* spec_field = root.field("spec");
  ASSERT_NE(spec_field, nullptr);
  ASSERT_EQ(spec_field->kind, ValueKind::kObject);
  const TypeDef& spec = *spec_field->type;
  EXPECT_EQ(spec.name, "com.example.stable.v1.CronTab.spec");
  EXPECT_FALSE(spec.field("cronSpec")->optional);
  EXPECT_EQ(spec.field("cronSpec")->description, "The schedule.");
  EXPECT_TRUE(spec.field("image")->optional);
  EXPECT_EQ(spec.field("replicas")->kind, ValueKind::kInt32);
  EXPECT_EQ(spec.field("ratio")->kind, ValueKind::kDouble);
  EXPECT_EQ(spec.field("paused")->kind, ValueKind::kBool);
  EXPECT_EQ(spec.field("policy")->enum_values, (std::vector<std::string>{"Allow", "Forbid"}));
  EXPECT_EQ(spec.field("port")->kind, ValueKind::kIntOrString);
  EXPECT_EQ(spec.field("labels")->shape, Shape::kMap);
  EXPECT_EQ(spec.field("labels")->kind, ValueKind::kString);
  EXPECT_EQ(spec.field("args")->shape, Shape::kList);
  EXPECT_EQ(spec.field("matrix")->shape, Shape::kList);
  EXPECT_EQ(spec.field("matrix")->kind, ValueKind::kAny);
  const FieldDef* ports = spec.field("ports");
  EXPECT_EQ(ports->list_type, "map");
  EXPECT_EQ(ports->list_map_keys, (std::vector<std::string>{"name", "protocol"}));
  EXPECT_EQ(ports->type->name, "com.example.stable.v1.CronTab.spec.ports");
  EXPECT_TRUE(spec.field("config")->type->preserve_unknown_fields);
  EXPECT_EQ(spec.field("anything")->kind, ValueKind::kAny);
  const TypeDef* tmpl = spec.field("template")->type;
  ASSERT_NE(tmpl, nullptr);
  EXPECT_NE(tmpl->field("apiVersion"), nullptr);
  EXPECT_NE(tmpl->field("metadata"), nullptr);
}

TEST(Crd, StrictValidationUsesTheConvertedSchema) {
  auto defs = resource_defs_from_crd(crontab_crd());
  ASSERT_TRUE(defs.ok());
  const TypeDef& type = *v1_def(*defs).type;

  json ok = crontab();
  const json before = ok;
  ASSERT_TRUE(check_fields(ok, type, FieldValidation::kStrict, nullptr).ok());
  EXPECT_EQ(ok, before);

  json typo = crontab();
  typo["spec"]["cronSpecc"] = "x";
  typo["spec"]["ports"][0]["nmae"] = "x";
  typo["status"]["foo"] = 1;
  typo["spec"]["config"]["free"] = "kept";    // preserved
  typo["spec"]["template"]["spec"]["y"] = 2;  // preserved embedded resource
  Status s =
      decode_error(check_fields(typo, type, FieldValidation::kStrict, nullptr), "CronTab", "v1");
  EXPECT_EQ(s.code(), StatusCode::kBadRequest);
  EXPECT_EQ(s.message(),
            "CronTab in version \"v1\" cannot be handled as a CronTab: strict decoding error: "
            "unknown field \"spec.cronSpecc\", unknown field \"spec.ports[0].nmae\", unknown "
            "field \"status.foo\"");

  json pruned = typo;
  ASSERT_TRUE(check_fields(pruned, type, FieldValidation::kIgnore, nullptr).ok());
  EXPECT_FALSE(pruned["spec"].contains("cronSpecc"));
  EXPECT_EQ(pruned["spec"]["config"]["free"], "kept");

  json wrong = crontab();
  wrong["spec"]["replicas"] = "three";
  EXPECT_EQ(check_fields(wrong, type, FieldValidation::kStrict, nullptr).code(),
            StatusCode::kBadRequest);

  // Fields without a schema are unknown below objects that do not preserve them.
  auto v2 = (*defs)[1];
  json free_form = crontab();
  EXPECT_TRUE(check_fields(free_form, *v2->type, FieldValidation::kStrict, nullptr).ok());
}

TEST(Crd, MetadataIsObjectMetaWhenTheBuiltinSchemaIsLinked) {
  auto defs = resource_defs_from_crd(crontab_crd());
  ASSERT_TRUE(defs.ok());
  const FieldDef* meta = v1_def(*defs).type->field("metadata");
  ASSERT_NE(meta, nullptr);
  json obj = crontab();
  obj["metadata"]["labelz"] = {{"a", "b"}};
  Status s = check_fields(obj, *v1_def(*defs).type, FieldValidation::kStrict, nullptr);
  if (meta->kind == ValueKind::kObject) {
    EXPECT_EQ(meta->type->name, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
    EXPECT_EQ(s.message(), "strict decoding error: unknown field \"metadata.labelz\"");
  } else {
    EXPECT_EQ(meta->kind, ValueKind::kAny);  // built-in schema not linked: metadata is free-form
    EXPECT_TRUE(s.ok());
  }
}

TEST(Crd, PrinterColumnsAndRows) {
  auto defs = resource_defs_from_crd(crontab_crd());
  ASSERT_TRUE(defs.ok());
  const ResourceDef& d = v1_def(*defs);
  std::vector<std::string> names;
  for (const ColumnDef& c : d.columns) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"Name", "Spec", "Replicas", "Ready", "Age"}));
  EXPECT_EQ(d.columns[0].format, "name");
  EXPECT_EQ(d.columns[1].description, "The cron spec defining the interval a CronJob is run");
  EXPECT_EQ(d.columns[2].type, "integer");
  EXPECT_EQ(d.columns[3].priority, 1);
  EXPECT_EQ(d.columns[4].type, "date");

  const int64_t created = 1714557600;  // 2024-05-01T10:00:00Z
  std::vector<json> row = d.row(crontab(), created + 5 * 60);
  EXPECT_EQ(json(row), json::parse(R"(["my-cron", "* * * * */5", 3, "False", "5m"])"));

  json sparse = json::parse(R"({"metadata": {"name": "x"}, "spec": {"replicas": 1.9}})");
  EXPECT_EQ(json(d.row(sparse, created)), json::parse(R"(["x", null, 1, null, null])"));

  // A version without printer columns gets Name and Age, as Kubernetes serves it.
  const ResourceDef& v2 = *(*defs)[1];
  ASSERT_EQ(v2.columns.size(), 2u);
  EXPECT_EQ(v2.columns[1].name, "Age");
  EXPECT_EQ(json(v2.row(crontab(), created + 3 * 86400 + 3600)),
            json::parse(R"(["my-cron", "3d1h"])"));
  EXPECT_EQ(json(v2.row(crontab(), created + 90)), json::parse(R"(["my-cron", "90s"])"));
  EXPECT_EQ(json(v2.row(crontab(), created + 4 * 3600 + 600)),
            json::parse(R"(["my-cron", "4h10m"])"));
  EXPECT_EQ(json(v2.row(crontab(), created + 400 * 86400)), json::parse(R"(["my-cron", "400d"])"));
  EXPECT_EQ(json(v2.row(crontab(), created - 100)), json::parse(R"(["my-cron", "<invalid>"])"));
}

TEST(Crd, StringColumnsPrintAnyValue) {
  json crd = crontab_crd();
  crd["spec"]["versions"][0]["additionalPrinterColumns"] = json::parse(R"([
      {"name": "Labels", "type": "string", "jsonPath": ".spec.labels"},
      {"name": "Ratio", "type": "string", "jsonPath": ".spec.ratio"},
      {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
      {"name": "Number", "type": "number", "jsonPath": ".spec.replicas"}])");
  auto defs = resource_defs_from_crd(crd);
  ASSERT_TRUE(defs.ok()) << defs.status().to_string();
  EXPECT_EQ(json(v1_def(*defs).row(crontab(), 0)),
            json::parse(R"(["my-cron", "{\"a\":\"b\"}", "0.5", false, 3.0])"));
}

TEST(JsonPath, EvaluatesThePrinterColumnSubset) {
  const json obj = json::parse(R"({
    "metadata": {"name": "n", "annotations": {"example.com/x.y": "dotted"}},
    "spec": {"containers": [{"name": "a", "image": "i1"}, {"name": "b", "image": "i2"}],
             "n": 5, "flag": true},
    "status": {"conditions": [{"type": "Ready", "status": "True", "gen": 2}]}})");
  auto at = [&](std::string_view path) -> json {
    const json* v = find_json_path(obj, path);
    return v == nullptr ? json("<none>") : *v;
  };
  EXPECT_EQ(at(".metadata.name"), "n");
  EXPECT_EQ(at("{.metadata.name}"), "n");
  EXPECT_EQ(at("$.metadata.name"), "n");
  EXPECT_EQ(at(".spec.containers[0].image"), "i1");
  EXPECT_EQ(at(".spec.containers[1].name"), "b");
  EXPECT_EQ(at(".spec.containers[-1].name"), "b");
  EXPECT_EQ(at(".spec.containers[*].name"), "a");
  EXPECT_EQ(at(".metadata.annotations['example.com/x.y']"), "dotted");
  EXPECT_EQ(at(".metadata.annotations[\"example.com/x.y\"]"), "dotted");
  EXPECT_EQ(at(".status.conditions[?(@.type==\"Ready\")].status"), "True");
  EXPECT_EQ(at(".status.conditions[?(@.type == 'Ready')].status"), "True");
  EXPECT_EQ(at(".status.conditions[?(@.gen==2)].type"), "Ready");
  EXPECT_EQ(at(".spec.containers[?(@.name=='b')].image"), "i2");
  EXPECT_EQ(at(".spec"), obj["spec"]);
  for (const char* missing :
       {".spec.nope", ".spec.containers[2].name", ".spec.containers[-3]", ".spec.containers.name",
        ".status.conditions[?(@.type==\"Gone\")].status", "metadata.name", ".spec..n", ".spec[",
        ".spec.containers[x]", ".spec.n.deeper", ".spec.containers[?(@.name)]"}) {
    EXPECT_EQ(at(missing), "<none>") << missing;
  }
}

struct InvalidCase {
  const char* name;
  std::function<void(json&)> mutate;
  const char* field;
  const char* message;
};

TEST(Crd, ValidationRejectsWithKubernetesCauses) {
  const std::vector<InvalidCase> cases = {
      {"name mismatch", [](json& c) { c["metadata"]["name"] = "crontabs.example.com"; },
       "metadata.name",
       "Invalid value: \"crontabs.example.com\": must be spec.names.plural+\".\"+spec.group"},
      {"group without dot",
       [](json& c) {
         c["spec"]["group"] = "example";
         c["metadata"]["name"] = "crontabs.example";
       },
       "spec.group", "Invalid value: \"example\": should be a domain with at least one dot"},
      {"uppercase plural",
       [](json& c) {
         c["spec"]["names"]["plural"] = "CronTabs";
         c["metadata"]["name"] = "CronTabs.stable.example.com";
       },
       "spec.names.plural",
       "Invalid value: \"CronTabs\": a DNS-1035 label must consist of lower case"},
      {"no plural", [](json& c) { c["spec"]["names"].erase("plural"); }, "spec.names.plural",
       "Required value"},
      {"no kind", [](json& c) { c["spec"]["names"].erase("kind"); }, "spec.names.kind",
       "Required value"},
      {"bad scope", [](json& c) { c["spec"]["scope"] = "Global"; }, "spec.scope",
       "Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\""},
      {"no versions", [](json& c) { c["spec"]["versions"] = json::array(); }, "spec.versions",
       "Required value"},
      {"two storage versions", [](json& c) { c["spec"]["versions"][2]["storage"] = true; },
       "spec.versions", "must have exactly one version marked as storage version"},
      {"no storage version", [](json& c) { c["spec"]["versions"][0]["storage"] = false; },
       "spec.versions", "must have exactly one version marked as storage version"},
      {"duplicate version", [](json& c) { c["spec"]["versions"][2]["name"] = "v1"; },
       "spec.versions[2].name", "Duplicate value: \"v1\""},
      {"no schema", [](json& c) { c["spec"]["versions"][1].erase("schema"); },
       "spec.versions[1].schema.openAPIV3Schema", "Required value: schemas are required"},
      {"root not object",
       [](json& c) { c["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["type"] = "string"; },
       "spec.versions[1].schema.openAPIV3Schema.type",
       "Invalid value: \"string\": must be object at the root"},
      {"root without type",
       [](json& c) { c["spec"]["versions"][1]["schema"]["openAPIV3Schema"].erase("type"); },
       "spec.versions[1].schema.openAPIV3Schema.type",
       "Required value: must not be empty at the root"},
      {"untyped field",
       [](json& c) {
         c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
          ["x"] = json::object();
       },
       "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[x].type",
       "Required value: must not be empty for specified object fields"},
      {"array without items",
       [](json& c) {
         c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
          ["args"]
              .erase("items");
       },
       "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[args].items",
       "Required value: must be specified"},
      {"unknown type",
       [](json& c) {
         c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
          ["image"]["type"] = "text";
       },
       "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[image].type",
       "Unsupported value: \"text\""},
      {"bad column type",
       [](json& c) { c["spec"]["versions"][0]["additionalPrinterColumns"][0]["type"] = "float"; },
       "spec.versions[0].additionalPrinterColumns[0].type", "Unsupported value: \"float\""},
      {"column without path",
       [](json& c) { c["spec"]["versions"][0]["additionalPrinterColumns"][1].erase("jsonPath"); },
       "spec.versions[0].additionalPrinterColumns[1].JSONPath", "Required value"},
      {"scale path outside spec",
       [](json& c) {
         c["spec"]["versions"][0]["subresources"]["scale"]["specReplicasPath"] = ".status.r";
       },
       "spec.versions[0].subresources.scale.specReplicasPath", "should be a json path under .spec"},
  };
  for (const InvalidCase& c : cases) {
    json crd = crontab_crd();
    c.mutate(crd);
    Status s = validate_crd(crd);
    ASSERT_EQ(s.code(), StatusCode::kInvalid) << c.name;
    bool found = false;
    for (const StatusCause& cause : s.causes()) {
      if (cause.field == c.field && cause.message.find(c.message) != std::string::npos)
        found = true;
    }
    EXPECT_TRUE(found) << c.name << ": " << s.message();
    EXPECT_EQ(resource_defs_from_crd(crd).status().code(), StatusCode::kInvalid) << c.name;
  }
}

TEST(Crd, ValidationMessageMatchesKubernetes) {
  json crd = crontab_crd();
  crd["spec"]["group"] = "example";
  crd["metadata"]["name"] = "crontabs.example";
  Status s = validate_crd(crd);
  EXPECT_EQ(s.message(),
            "CustomResourceDefinition.apiextensions.k8s.io \"crontabs.example\" is invalid: "
            "spec.group: Invalid value: \"example\": should be a domain with at least one dot");
  crd["spec"]["scope"] = "Global";
  EXPECT_EQ(validate_crd(crd).message(),
            "CustomResourceDefinition.apiextensions.k8s.io \"crontabs.example\" is invalid: "
            "[spec.group: Invalid value: \"example\": should be a domain with at least one dot, "
            "spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", "
            "\"Namespaced\"]");
  EXPECT_TRUE(validate_crd(crontab_crd()).ok());
}

TEST(Crd, MalformedInputNeverThrows) {
  for (
      const char* text :
      {"null", "[]", "{}", R"({"spec": []})", R"({"spec": {"names": 5}})",
       R"({"spec": {"versions": [1, "x", null]}})",
       R"({"spec": {"versions": [{"schema": {"openAPIV3Schema": {"type": "object", "properties": 3}}}]}})",
       R"({"spec": {"versions": [{"name": "v1", "storage": true, "served": true,
                                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"a": {"type": "array", "items": 5}}}},
                                "additionalPrinterColumns": 7}]}})"}) {
    json crd = json::parse(text);
    EXPECT_EQ(validate_crd(crd).code(), StatusCode::kInvalid) << text;
    EXPECT_FALSE(resource_defs_from_crd(crd).ok()) << text;
  }
}

}  // namespace
}  // namespace skiff::api
