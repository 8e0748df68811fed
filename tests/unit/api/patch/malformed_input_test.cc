// Every patch entry point against random and hostile input: each call returns a value or a
// Status, never throws and never crashes (the sanitizer build checks memory and UB).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "api/patch/apply.h"
#include "api/patch/patch.h"
#include "test_schema.h"

namespace skiff::api {
namespace {

using nlohmann::json;
using namespace nlohmann::literals;
using testing::test_schema;

// Random JSON biased towards the shapes and keys the patch code interprets.
class RandomJson {
 public:
  explicit RandomJson(uint32_t seed) : rng_(seed) {}

  json value(int depth) {
    switch (pick(depth <= 0 ? 5 : 8)) {
      case 0:
        return json();
      case 1:
        return pick(2) == 0;
      case 2:
        return static_cast<int>(pick(5)) - 1;
      case 3:
        return words()[pick(words().size())];
      case 4:
        return 1.5;
      case 5:
      case 6:
        return object(depth - 1);
      default:
        return array(depth - 1);
    }
  }

  json object(int depth) {
    json o = json::object();
    const size_t n = pick(5);
    for (size_t i = 0; i < n; ++i) o[keys()[pick(keys().size())]] = value(depth);
    return o;
  }

  json array(int depth) {
    json a = json::array();
    const size_t n = pick(4);
    for (size_t i = 0; i < n; ++i) a.push_back(value(depth));
    return a;
  }

  json json_patch() {
    json ops = json::array();
    const size_t n = pick(4);
    static const char* kOps[] = {"add", "remove", "replace", "move", "copy", "test", "bogus"};
    static const char* kPaths[] = {"",
                                   "/",
                                   "/spec",
                                   "/spec/replicas",
                                   "/a/0",
                                   "/a/-",
                                   "/a/-1",
                                   "/metadata/labels/x",
                                   "/~",
                                   "/~2",
                                   "x",
                                   "/spec/template/spec/containers/0/name",
                                   "/a/99999999999999999999",
                                   "/a/-0"};
    for (size_t i = 0; i < n; ++i) {
      json op = json::object();
      if (pick(8) != 0) op["op"] = kOps[pick(7)];
      if (pick(8) != 0) op["path"] = kPaths[pick(14)];
      if (pick(2) == 0) op["from"] = kPaths[pick(14)];
      if (pick(3) != 0) op["value"] = value(2);
      if (pick(10) == 0) op = value(1);
      ops.push_back(op);
    }
    return ops;
  }

  size_t pick(size_t n) {
    return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(rng_);
  }

 private:
  static const std::vector<std::string>& keys() {
    static const std::vector<std::string> k = {"$patch",
                                               "$retainKeys",
                                               "$setElementOrder/containers",
                                               "$setElementOrder/finalizers",
                                               "$deleteFromPrimitiveList/finalizers",
                                               "$setElementOrder/",
                                               "$deleteFromPrimitiveList/",
                                               "apiVersion",
                                               "kind",
                                               "metadata",
                                               "name",
                                               "labels",
                                               "annotations",
                                               "finalizers",
                                               "managedFields",
                                               "spec",
                                               "replicas",
                                               "template",
                                               "containers",
                                               "image",
                                               "ports",
                                               "containerPort",
                                               "protocol",
                                               "env",
                                               "value",
                                               "volumes",
                                               "emptyDir",
                                               "configMap",
                                               "strategy",
                                               "rollingUpdate",
                                               "type",
                                               "selector",
                                               "matchLabels",
                                               "tolerations",
                                               "args",
                                               "status",
                                               "resources",
                                               "limits",
                                               "manager",
                                               "operation",
                                               "fieldsType",
                                               "fieldsV1",
                                               "f:spec",
                                               "k:{\"name\":\"web\"}",
                                               "v:1",
                                               "i:0",
                                               ".",
                                               "k:[",
                                               "q:x"};
    return k;
  }
  static const std::vector<std::string>& words() {
    static const std::vector<std::string> w = {
        "replace",  "delete", "merge",      "web", "name",     "Apply", "Update",
        "FieldsV1", "TCP",    "containers", "",    "\xff\xfe", "$patch"};
    return w;
  }

  std::mt19937 rng_;
};

const json& base_deployment() {
  static const json d = R"({
    "apiVersion":"apps/v1","kind":"Deployment",
    "metadata":{"name":"web","labels":{"app":"web"},"finalizers":["a"],
                "managedFields":[{"manager":"m","operation":"Update","apiVersion":"apps/v1",
                                  "fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:replicas":{}}}}]},
    "spec":{"replicas":2,"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}},
            "template":{"spec":{"containers":[{"name":"web","image":"a","ports":[{"containerPort":80}]},
                                              {"name":"side"}],
                                "volumes":[{"name":"v","emptyDir":{}}]}}}})"_json;
  return d;
}

void expect_handled(const Result<json>& r) {
  if (r.ok()) return;
  EXPECT_FALSE(r.status().message().empty());
  EXPECT_NE(r.status().code(), StatusCode::kInternal) << r.status().message();
}

TEST(MalformedInput, RandomPatchesNeverCrash) {
  RandomJson random(20240501);
  const TypeDef* type = test_schema().deployment();
  for (int i = 0; i < 1500; ++i) {
    json patch = random.object(5);
    expect_handled(apply_strategic_merge_patch(base_deployment(), patch, type));
    expect_handled(apply_strategic_merge_patch(base_deployment(), patch, nullptr));
    expect_handled(apply_strategic_merge_patch(random.value(3), patch, type));
    expect_handled(apply_merge_patch(base_deployment(), patch));
    expect_handled(apply_merge_patch(random.value(3), random.value(4)));
    expect_handled(apply_json_patch(base_deployment(), random.json_patch()));
    expect_handled(apply_json_patch(random.value(3), random.value(3)));
  }
}

TEST(MalformedInput, RandomApplyAndManagedFieldsNeverCrash) {
  RandomJson random(7);
  const TypeDef* type = test_schema().deployment();
  ApplyOptions options;
  options.manager = "fuzz";
  options.api_version = "apps/v1";
  options.now_rfc3339 = "2024-05-01T00:00:00Z";
  for (int i = 0; i < 1500; ++i) {
    json config = random.object(5);
    options.force = random.pick(2) == 0;
    Result<json> applied = server_side_apply(&base_deployment(), config, type, options);
    if (!applied.ok()) {
      EXPECT_NE(applied.status().code(), StatusCode::kInternal) << applied.status().message();
    }
    expect_handled(server_side_apply(nullptr, config, nullptr, options));
    expect_handled(fieldset_of(config, type));

    json next = base_deployment();
    next["metadata"]["managedFields"] = random.value(4);
    next["spec"] = random.object(4);
    expect_handled(
        update_managed_fields(&base_deployment(), next, type, "m", "Update", "apps/v1", "t"));
    json live = base_deployment();
    live["metadata"]["managedFields"] = random.value(4);
    expect_handled(server_side_apply(&live, config, type, options));
  }
}

TEST(MalformedInput, DeepNestingIsRefusedEverywhere) {
  json deep = json::object();
  for (int i = 0; i < 4000; ++i) {
    json outer = json::object();
    outer["spec"] = std::move(deep);
    deep = std::move(outer);
  }
  const TypeDef* type = test_schema().deployment();
  ApplyOptions options;
  options.manager = "m";
  EXPECT_EQ(apply_merge_patch(json::object(), deep).status().code(), StatusCode::kBadRequest);
  EXPECT_EQ(apply_strategic_merge_patch(json::object(), deep, type).status().code(),
            StatusCode::kBadRequest);
  EXPECT_EQ(apply_strategic_merge_patch(deep, json::object(), type).status().code(),
            StatusCode::kBadRequest);
  json ops = json::array({json{{"op", "add"}, {"path", "/x"}, {"value", deep}}});
  EXPECT_EQ(apply_json_patch(json::object(), ops).status().code(), StatusCode::kBadRequest);
  EXPECT_EQ(server_side_apply(nullptr, deep, type, options).status().code(),
            StatusCode::kBadRequest);
  EXPECT_EQ(fieldset_of(deep, nullptr).status().code(), StatusCode::kBadRequest);
  EXPECT_EQ(update_managed_fields(nullptr, deep, type, "m", "Update", "v1", "t").status().code(),
            StatusCode::kBadRequest);
}

TEST(MalformedInput, HostileManagedFieldsKeysAreSafe) {
  const TypeDef* type = test_schema().deployment();
  std::string deep_key = "k:" + std::string(100000, '[');
  json live = base_deployment();
  live["metadata"]["managedFields"] = json::array(
      {json{{"manager", "x"},
            {"operation", "Update"},
            {"apiVersion", "apps/v1"},
            {"fieldsType", "FieldsV1"},
            {"fieldsV1", json{{"f:spec", json{{deep_key, json::object()},
                                              {"v:\xff", json::object()},
                                              {"i:99999999999999999999999", json::object()}}}}}}});
  json next = live;
  next["spec"]["replicas"] = 3;
  Result<json> r = update_managed_fields(&live, next, type, "m", "Update", "apps/v1", "t");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r.value()["metadata"]["managedFields"].size(), 1u);
}

}  // namespace
}  // namespace skiff::api
