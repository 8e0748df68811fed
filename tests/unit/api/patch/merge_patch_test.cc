#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/patch/patch.h"

namespace skiff::api {
namespace {

using nlohmann::json;
using namespace nlohmann::literals;

json merged(const json& target, const json& patch) {
  Result<json> r = apply_merge_patch(target, patch);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r.value() : json();
}

TEST(MergePatch, FollowsRfc7386AppendixA) {
  EXPECT_EQ(merged(R"({"a":"b"})"_json, R"({"a":"c"})"_json), R"({"a":"c"})"_json);
  EXPECT_EQ(merged(R"({"a":"b"})"_json, R"({"b":"c"})"_json), R"({"a":"b","b":"c"})"_json);
  EXPECT_EQ(merged(R"({"a":"b"})"_json, R"({"a":null})"_json), R"({})"_json);
  EXPECT_EQ(merged(R"({"a":"b","b":"c"})"_json, R"({"a":null})"_json), R"({"b":"c"})"_json);
  EXPECT_EQ(merged(R"({"a":["b"]})"_json, R"({"a":"c"})"_json), R"({"a":"c"})"_json);
  EXPECT_EQ(merged(R"({"a":"c"})"_json, R"({"a":["b"]})"_json), R"({"a":["b"]})"_json);
  EXPECT_EQ(merged(R"({"a":{"b":"c"}})"_json, R"({"a":{"b":"d","c":null}})"_json),
            R"({"a":{"b":"d"}})"_json);
  EXPECT_EQ(merged(R"({"a":[{"b":"c"}]})"_json, R"({"a":[1]})"_json), R"({"a":[1]})"_json);
  EXPECT_EQ(merged(R"({"e":null})"_json, R"({"a":1})"_json), R"({"e":null,"a":1})"_json);
  EXPECT_EQ(merged(R"([1,2])"_json, R"({"a":"b","c":null})"_json), R"({"a":"b"})"_json);
  EXPECT_EQ(merged(R"({})"_json, R"({"a":{"bb":{"ccc":null}}})"_json), R"({"a":{"bb":{}}})"_json);
}

TEST(MergePatch, KubectlLabelAddsOneLabelAndKeepsTheRest) {
  json pod = R"({"apiVersion":"v1","kind":"Pod",
                 "metadata":{"name":"web","labels":{"app":"web","tier":"fe"}},
                 "spec":{"containers":[{"name":"web","image":"nginx"}]}})"_json;
  json result = merged(pod, R"({"metadata":{"labels":{"a":"b"}}})"_json);
  EXPECT_EQ(result["metadata"]["labels"], R"({"a":"b","app":"web","tier":"fe"})"_json);
  EXPECT_EQ(result["spec"], pod["spec"]);
}

TEST(MergePatch, KubectlLabelRemovalSendsNull) {
  json pod = R"({"metadata":{"name":"web","labels":{"app":"web","a":"b"}}})"_json;
  EXPECT_EQ(merged(pod, R"({"metadata":{"labels":{"a":null}}})"_json)["metadata"]["labels"],
            R"({"app":"web"})"_json);
}

TEST(MergePatch, KubectlScaleSetsReplicas) {
  json scale = R"({"apiVersion":"autoscaling/v1","kind":"Scale",
                   "metadata":{"name":"web","namespace":"default"},
                   "spec":{"replicas":1},"status":{"replicas":1,"selector":"app=web"}})"_json;
  json result = merged(scale, R"({"spec":{"replicas":3}})"_json);
  EXPECT_EQ(result["spec"]["replicas"], 3);
  EXPECT_EQ(result["status"], scale["status"]);
}

TEST(MergePatch, ReplacesListsWholeAsCrdPatchesDo) {
  json svc = R"({"spec":{"template":{"spec":{"containers":[{"name":"a"},{"name":"b"}]}}}})"_json;
  json result = merged(svc, R"({"spec":{"template":{"spec":{"containers":[{"name":"c"}]}}}})"_json);
  EXPECT_EQ(result["spec"]["template"]["spec"]["containers"], R"([{"name":"c"}])"_json);
}

TEST(MergePatch, RejectsPatchesThatAreNotObjects) {
  for (const json& patch : {R"(["c"])"_json, json(), json("bar"), json(3), json(true)}) {
    Result<json> r = apply_merge_patch(R"({"a":"b"})"_json, patch);
    ASSERT_FALSE(r.ok()) << patch;
    EXPECT_EQ(r.status().code(), StatusCode::kBadRequest);
    EXPECT_NE(r.status().message().find("must be a JSON object"), std::string::npos);
  }
}

TEST(MergePatch, RejectsTooDeepPatchesWithoutCrashing) {
  json patch = json::object();
  for (int i = 0; i < 5000; ++i) {
    json outer = json::object();
    outer["a"] = std::move(patch);
    patch = std::move(outer);
  }
  Result<json> r = apply_merge_patch(json::object(), patch);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kBadRequest);
}

}  // namespace
}  // namespace skiff::api
