#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "api/patch/patch.h"

namespace skiff::api {
namespace {

using nlohmann::json;
using namespace nlohmann::literals;

json patched(const json& target, const json& patch) {
  Result<json> r = apply_json_patch(target, patch);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r.value() : json();
}

Status failure(const json& target, const json& patch) {
  Result<json> r = apply_json_patch(target, patch);
  EXPECT_FALSE(r.ok()) << "unexpectedly applied: " << patch;
  return r.status();
}

TEST(JsonPatch, FollowsRfc6902AppendixA) {
  // A.1 - A.8, A.10, A.11, A.14, A.16
  EXPECT_EQ(patched(R"({"foo":"bar"})"_json, R"([{"op":"add","path":"/baz","value":"qux"}])"_json),
            R"({"baz":"qux","foo":"bar"})"_json);
  EXPECT_EQ(patched(R"({"foo":["bar","baz"]})"_json,
                    R"([{"op":"add","path":"/foo/1","value":"qux"}])"_json),
            R"({"foo":["bar","qux","baz"]})"_json);
  EXPECT_EQ(patched(R"({"baz":"qux","foo":"bar"})"_json, R"([{"op":"remove","path":"/baz"}])"_json),
            R"({"foo":"bar"})"_json);
  EXPECT_EQ(
      patched(R"({"foo":["bar","qux","baz"]})"_json, R"([{"op":"remove","path":"/foo/1"}])"_json),
      R"({"foo":["bar","baz"]})"_json);
  EXPECT_EQ(patched(R"({"baz":"qux","foo":"bar"})"_json,
                    R"([{"op":"replace","path":"/baz","value":"boo"}])"_json),
            R"({"baz":"boo","foo":"bar"})"_json);
  EXPECT_EQ(patched(R"({"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}})"_json,
                    R"([{"op":"move","from":"/foo/waldo","path":"/qux/thud"}])"_json),
            R"({"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}})"_json);
  EXPECT_EQ(patched(R"({"foo":["all","grass","cows","eat"]})"_json,
                    R"([{"op":"move","from":"/foo/1","path":"/foo/3"}])"_json),
            R"({"foo":["all","cows","eat","grass"]})"_json);
  json doc = R"({"baz":"qux","foo":["a",2,"c"]})"_json;
  EXPECT_EQ(patched(doc, R"([{"op":"test","path":"/baz","value":"qux"},
                             {"op":"test","path":"/foo/1","value":2}])"_json),
            doc);
  EXPECT_EQ(patched(R"({"foo":"bar"})"_json,
                    R"([{"op":"add","path":"/child","value":{"grandchild":{}}}])"_json),
            R"({"foo":"bar","child":{"grandchild":{}}})"_json);
  EXPECT_EQ(patched(R"({"foo":"bar"})"_json,
                    R"([{"op":"add","path":"/baz","value":"qux","xyz":123}])"_json),
            R"({"foo":"bar","baz":"qux"})"_json);
  EXPECT_EQ(patched(R"({"/":9,"~1":10})"_json, R"([{"op":"test","path":"/~01","value":10}])"_json),
            R"({"/":9,"~1":10})"_json);
  EXPECT_EQ(patched(R"({"foo":["bar"]})"_json,
                    R"([{"op":"add","path":"/foo/-","value":["abc","def"]}])"_json),
            R"({"foo":["bar",["abc","def"]]})"_json);
  EXPECT_EQ(patched(R"({"a":{"b":1}})"_json, R"([{"op":"copy","from":"/a","path":"/c"}])"_json),
            R"({"a":{"b":1},"c":{"b":1}})"_json);
}

TEST(JsonPatch, FailedTestIsInvalidAndNamesThePath) {
  // A.9
  Status s =
      failure(R"({"baz":"qux"})"_json, R"([{"op":"test","path":"/baz","value":"bar"}])"_json);
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_NE(s.message().find("testing value /baz failed"), std::string::npos) << s.message();
  // A.15: strings and numbers differ.
  s = failure(R"({"/":9,"~1":10})"_json, R"([{"op":"test","path":"/~01","value":"10"}])"_json);
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
}

TEST(JsonPatch, KubectlPatchWithFailingTestChangesNothing) {
  json deploy = R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
                    "spec":{"replicas":2}})"_json;
  json patch = R"([{"op":"replace","path":"/spec/replicas","value":3},
                   {"op":"test","path":"/spec/replicas","value":5}])"_json;
  Status s = failure(deploy, patch);
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_EQ(s.message(), "testing value /spec/replicas failed: test failed (found 3, expected 5)");
}

TEST(JsonPatch, KubectlPatchReplacesAContainerImage) {
  json deploy =
      R"({"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1"}]}}}})"_json;
  json result = patched(
      deploy, R"([{"op":"test","path":"/spec/template/spec/containers/0/name","value":"web"},
      {"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:2"}])"_json);
  EXPECT_EQ(result["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
}

TEST(JsonPatch, PathsThatDoNotExistAreInvalid) {
  // A.12
  Status s =
      failure(R"({"foo":"bar"})"_json, R"([{"op":"add","path":"/baz/bat","value":"qux"}])"_json);
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_NE(s.message().find("doc is missing path: \"/baz/bat\""), std::string::npos)
      << s.message();
  EXPECT_EQ(failure(R"({"a":1})"_json, R"([{"op":"remove","path":"/b"}])"_json).code(),
            StatusCode::kInvalid);
  EXPECT_EQ(failure(R"({"a":1})"_json, R"([{"op":"replace","path":"/b","value":1}])"_json).code(),
            StatusCode::kInvalid);
  EXPECT_EQ(failure(R"({"a":[1]})"_json, R"([{"op":"add","path":"/a/5","value":1}])"_json).code(),
            StatusCode::kInvalid);
  EXPECT_EQ(failure(R"({"a":[1]})"_json, R"([{"op":"remove","path":"/a/x"}])"_json).code(),
            StatusCode::kInvalid);
  EXPECT_EQ(failure(R"({"a":"s"})"_json, R"([{"op":"add","path":"/a/b","value":1}])"_json).code(),
            StatusCode::kInvalid);
  EXPECT_EQ(failure(R"({"a":{"b":1}})"_json, R"([{"op":"move","from":"/a","path":"/a/b/c"}])"_json)
                .code(),
            StatusCode::kInvalid);
  EXPECT_EQ(failure(R"({"a":1})"_json, R"([{"op":"copy","from":"/x","path":"/y"}])"_json).code(),
            StatusCode::kInvalid);
  EXPECT_EQ(failure(R"({"a":1})"_json, R"([{"op":"remove","path":""}])"_json).code(),
            StatusCode::kInvalid);
}

TEST(JsonPatch, NegativeIndicesCountFromTheEndAsInKubernetes) {
  EXPECT_EQ(patched(R"({"a":[1,2,3]})"_json, R"([{"op":"remove","path":"/a/-1"}])"_json),
            R"({"a":[1,2]})"_json);
  EXPECT_EQ(patched(R"({"a":[1,2,3]})"_json, R"([{"op":"replace","path":"/a/-3","value":0}])"_json),
            R"({"a":[0,2,3]})"_json);
  EXPECT_EQ(failure(R"({"a":[1]})"_json, R"([{"op":"remove","path":"/a/-2"}])"_json).code(),
            StatusCode::kInvalid);
}

TEST(JsonPatch, TestOfNullAgainstAMissingMemberSucceedsAsInKubernetes) {
  EXPECT_EQ(patched(R"({"a":1})"_json, R"([{"op":"test","path":"/b","value":null}])"_json),
            R"({"a":1})"_json);
}

TEST(JsonPatch, RootPathReplacesTheDocument) {
  EXPECT_EQ(patched(R"({"a":1})"_json, R"([{"op":"replace","path":"","value":{"b":2}}])"_json),
            R"({"b":2})"_json);
}

TEST(JsonPatch, MalformedPatchesAreBadRequests) {
  const json target = R"({"a":1})"_json;
  const char* cases[] = {
      R"({"op":"add","path":"/a","value":1})",  // not an array
      R"("add")",
      R"([1])",
      R"([{"path":"/a","value":1}])",
      R"([{"op":5,"path":"/a"}])",
      R"([{"op":"frobnicate","path":"/a"}])",
      R"([{"op":"add","value":1}])",
      R"([{"op":"add","path":3,"value":1}])",
      R"([{"op":"add","path":"a","value":1}])",
      R"([{"op":"add","path":"/a~2","value":1}])",
      R"([{"op":"add","path":"/a"}])",
      R"([{"op":"replace","path":"/a"}])",
      R"([{"op":"test","path":"/a"}])",
      R"([{"op":"move","path":"/a"}])",
      R"([{"op":"copy","from":7,"path":"/a"}])",
      R"([{"op":"move","from":"x","path":"/a"}])",
  };
  for (const char* text : cases) {
    Result<json> r = apply_json_patch(target, json::parse(text));
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), StatusCode::kBadRequest) << text << ": " << r.status().message();
    EXPECT_FALSE(r.status().message().empty());
  }
}

TEST(JsonPatch, TooManyOperationsIsTooLarge) {
  json patch = json::array();
  for (size_t i = 0; i <= kMaxJsonPatchOperations; ++i) {
    patch.push_back(R"({"op":"test","path":"/a","value":1})"_json);
  }
  Status s = failure(R"({"a":1})"_json, patch);
  EXPECT_EQ(s.code(), StatusCode::kTooLarge);
  EXPECT_EQ(s.message(),
            "Request entity too large: The allowed maximum operations in a JSON patch is 10000, "
            "got 10001");
}

}  // namespace
}  // namespace skiff::api
