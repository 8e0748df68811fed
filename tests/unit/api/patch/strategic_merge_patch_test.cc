#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "api/patch/patch.h"
#include "test_schema.h"

namespace skiff::api {
namespace {

using nlohmann::json;
using namespace nlohmann::literals;
using testing::test_schema;

json smp(const json& target, const json& patch, const TypeDef* type) {
  Result<json> r = apply_strategic_merge_patch(target, patch, type);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r.value() : json();
}

json deploy(const json& target, const json& patch) {
  return smp(target, patch, test_schema().deployment());
}

Status deploy_error(const json& target, const json& patch) {
  Result<json> r = apply_strategic_merge_patch(target, patch, test_schema().deployment());
  EXPECT_FALSE(r.ok()) << "unexpectedly applied " << patch << " giving "
                       << (r.ok() ? r.value().dump() : "");
  return r.status();
}

json merge_item(const json& target, const json& patch) {
  return smp(target, patch, test_schema().merge_item());
}

const json& live_deployment() {
  static const json d = R"({
    "apiVersion":"apps/v1","kind":"Deployment",
    "metadata":{"name":"web","namespace":"default","labels":{"app":"web"},
                "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"old\":1}"}},
    "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
            "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"}},
            "template":{"metadata":{"labels":{"app":"web"}},
                        "spec":{"containers":[
                                  {"name":"web","image":"nginx:1.25",
                                   "ports":[{"containerPort":80,"protocol":"TCP"}],
                                   "env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]},
                                  {"name":"sidecar","image":"busybox","args":["sleep","3600"]}],
                                "tolerations":[{"key":"a","operator":"Exists"}],
                                "volumes":[{"name":"data","configMap":{"name":"cfg"}}]}}}})"_json;
  return d;
}

json containers_of(const json& d) { return d["spec"]["template"]["spec"]["containers"]; }

TEST(StrategicMergePatch, KubectlApplyUpdatesAnImageWithSetElementOrder) {
  // What kubectl apply sends after the manifest's image changed.
  json patch =
      R"({"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"new\":1}"}},
                   "spec":{"template":{"spec":{
                     "$setElementOrder/containers":[{"name":"web"},{"name":"sidecar"}],
                     "containers":[{"image":"nginx:1.26","name":"web"}]}}}})"_json;
  json result = deploy(live_deployment(), patch);
  json expected = live_deployment();
  expected["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
      "{\"new\":1}";
  expected["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26";
  EXPECT_EQ(result, expected);
}

TEST(StrategicMergePatch, KubectlApplyAddsAndDeletesContainersInManifestOrder) {
  json patch = R"({"spec":{"template":{"spec":{
                     "$setElementOrder/containers":[{"name":"web"},{"name":"logger"}],
                     "containers":[{"image":"fluentd","name":"logger"},
                                   {"$patch":"delete","name":"sidecar"}]}}}})"_json;
  json containers = containers_of(deploy(live_deployment(), patch));
  ASSERT_EQ(containers.size(), 2u);
  EXPECT_EQ(containers[0]["name"], "web");
  EXPECT_EQ(containers[0]["ports"],
            live_deployment()["spec"]["template"]["spec"]["containers"][0]["ports"]);
  EXPECT_EQ(containers[1], R"({"name":"logger","image":"fluentd"})"_json);
}

TEST(StrategicMergePatch, SetElementOrderReordersWithoutChanges) {
  json patch = R"({"spec":{"template":{"spec":{
                     "$setElementOrder/containers":[{"name":"sidecar"},{"name":"web"}]}}}})"_json;
  json containers = containers_of(deploy(live_deployment(), patch));
  ASSERT_EQ(containers.size(), 2u);
  EXPECT_EQ(containers[0]["name"], "sidecar");
  EXPECT_EQ(containers[1]["name"], "web");
}

TEST(StrategicMergePatch, KubectlSetImageMergesByNameInPlace) {
  json patch =
      R"({"spec":{"template":{"spec":{"containers":[{"image":"nginx:2","name":"web"}]}}}})"_json;
  json containers = containers_of(deploy(live_deployment(), patch));
  ASSERT_EQ(containers.size(), 2u);
  EXPECT_EQ(containers[0]["image"], "nginx:2");
  EXPECT_EQ(containers[0]["env"].size(), 2u);
  EXPECT_EQ(containers[1]["name"], "sidecar");
}

TEST(StrategicMergePatch, KubectlPatchAddingAContainerPutsItFirstAsUpstream) {
  // kubectl patch docs: the new container comes before the existing ones.
  json patch =
      R"({"spec":{"template":{"spec":{"containers":[{"name":"redis","image":"redis"}]}}}})"_json;
  json containers = containers_of(deploy(live_deployment(), patch));
  ASSERT_EQ(containers.size(), 3u);
  EXPECT_EQ(containers[0], R"({"name":"redis","image":"redis"})"_json);
  EXPECT_EQ(containers[1]["name"], "web");
  EXPECT_EQ(containers[2]["name"], "sidecar");
}

TEST(StrategicMergePatch, KubectlRolloutRestartAddsATemplateAnnotation) {
  json patch = R"({"spec":{"template":{"metadata":{"annotations":{
                     "kubectl.kubernetes.io/restartedAt":"2024-05-01T12:00:00Z"}}}}})"_json;
  json result = deploy(live_deployment(), patch);
  EXPECT_EQ(result["spec"]["template"]["metadata"],
            R"({"labels":{"app":"web"},
                "annotations":{"kubectl.kubernetes.io/restartedAt":"2024-05-01T12:00:00Z"}})"_json);
}

TEST(StrategicMergePatch, NestedListsMergeByTheirOwnKeys) {
  json patch = R"({"spec":{"template":{"spec":{"containers":[{"name":"web",
                     "ports":[{"containerPort":443}],
                     "$setElementOrder/env":[{"name":"A"},{"name":"C"},{"name":"B"}],
                     "env":[{"name":"A","value":"one"},{"name":"C","value":"3"}]}]}}}})"_json;
  json web = containers_of(deploy(live_deployment(), patch))[0];
  EXPECT_EQ(web["ports"], R"([{"containerPort":443},{"containerPort":80,"protocol":"TCP"}])"_json);
  EXPECT_EQ(
      web["env"],
      R"([{"name":"A","value":"one"},{"name":"C","value":"3"},{"name":"B","value":"2"}])"_json);
}

TEST(StrategicMergePatch, NullRemovesAField) {
  json result =
      deploy(live_deployment(), R"({"spec":{"replicas":null,"minReadySeconds":null}})"_json);
  EXPECT_FALSE(result["spec"].contains("replicas"));
  EXPECT_FALSE(result["spec"].contains("minReadySeconds"));
}

TEST(StrategicMergePatch, FieldsWithoutStrategyAreReplaced) {
  json patch = R"({"spec":{"template":{"spec":{
                     "tolerations":[{"key":"b","operator":"Exists"}],
                     "containers":[{"name":"sidecar","args":["sleep","1"]}]}}}})"_json;
  json result = deploy(live_deployment(), patch);
  EXPECT_EQ(result["spec"]["template"]["spec"]["tolerations"],
            R"([{"key":"b","operator":"Exists"}])"_json);
  EXPECT_EQ(containers_of(result)[1]["args"], R"(["sleep","1"])"_json);
}

TEST(StrategicMergePatch, PatchReplaceInAListMakesItExactlyThePatch) {
  json patch = R"({"spec":{"template":{"spec":{"containers":[
                     {"$patch":"replace"},{"name":"only","image":"x"}]}}}})"_json;
  EXPECT_EQ(containers_of(deploy(live_deployment(), patch)),
            R"([{"name":"only","image":"x"}])"_json);
}

TEST(StrategicMergePatch, PatchReplaceOnAMapReplacesIt) {
  json patch = R"({"spec":{"selector":{"$patch":"replace","matchLabels":{"tier":"fe"}}}})"_json;
  EXPECT_EQ(deploy(live_deployment(), patch)["spec"]["selector"],
            R"({"matchLabels":{"tier":"fe"}})"_json);
}

TEST(StrategicMergePatch, PatchDeleteOnAMapLeavesItEmptyAsUpstream) {
  json patch = R"({"spec":{"template":{"metadata":{"labels":{"$patch":"delete"}}}}})"_json;
  EXPECT_EQ(deploy(live_deployment(), patch)["spec"]["template"]["metadata"]["labels"],
            json::object());
  // Nothing to delete: nothing is created.
  json result =
      deploy(live_deployment(),
             R"({"spec":{"template":{"metadata":{"annotations":{"$patch":"delete"}}}}})"_json);
  EXPECT_FALSE(result["spec"]["template"]["metadata"].contains("annotations"));
  // At the top level the whole object goes.
  EXPECT_EQ(deploy(live_deployment(), R"({"$patch":"delete"})"_json), json::object());
}

TEST(StrategicMergePatch, PatchMergeIsTheDefault) {
  json patch = R"({"spec":{"$patch":"merge","replicas":4,"template":{"spec":{"containers":[
                     {"$patch":"merge","name":"web","image":"nginx:3"}]}}}})"_json;
  json result = deploy(live_deployment(), patch);
  EXPECT_EQ(result["spec"]["replicas"], 4);
  EXPECT_EQ(containers_of(result)[0]["image"], "nginx:3");
  EXPECT_EQ(containers_of(result).size(), 2u);
  EXPECT_FALSE(result["spec"].contains("$patch"));
  EXPECT_FALSE(containers_of(result)[0].contains("$patch"));
}

TEST(StrategicMergePatch, RetainKeysClearsUnlistedFields) {
  // kubectl apply switching the strategy to Recreate.
  json patch = R"({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}})"_json;
  EXPECT_EQ(deploy(live_deployment(), patch)["spec"]["strategy"], R"({"type":"Recreate"})"_json);
}

TEST(StrategicMergePatch, RetainKeysOnAVolumeSwitchesItsInlineSource) {
  json patch = R"({"spec":{"template":{"spec":{
                     "$setElementOrder/volumes":[{"name":"data"}],
                     "volumes":[{"$retainKeys":["emptyDir","name"],"emptyDir":{},"name":"data"}]}}}})"_json;
  EXPECT_EQ(deploy(live_deployment(), patch)["spec"]["template"]["spec"]["volumes"],
            R"([{"name":"data","emptyDir":{}}])"_json);
}

TEST(StrategicMergePatch, InlineFieldsAreTypedThroughTheirParent) {
  // configMap is declared on the inline VolumeSource, so its type is known: a string is wrong.
  Status s = deploy_error(
      live_deployment(),
      R"({"spec":{"template":{"spec":{"volumes":[{"name":"data","configMap":"x"}]}}}})"_json);
  EXPECT_EQ(s.code(), StatusCode::kBadRequest);
  EXPECT_NE(s.message().find("configMap: expected an object"), std::string::npos) << s.message();
}

TEST(StrategicMergePatch, PrimitiveMergeListsAreOrderedSets) {
  json pod = R"({"metadata":{"name":"p","finalizers":["a","b"]}})"_json;
  const TypeDef* type = test_schema().pod();
  EXPECT_EQ(
      smp(pod, R"({"metadata":{"finalizers":["b","c"]}})"_json, type)["metadata"]["finalizers"],
      R"(["a","b","c"])"_json);
  EXPECT_EQ(smp(pod, R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}})"_json,
                type)["metadata"]["finalizers"],
            R"(["b"])"_json);
  // Deleting from a list that does not exist creates nothing.
  EXPECT_FALSE(smp(R"({"metadata":{"name":"p"}})"_json,
                   R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}})"_json,
                   type)["metadata"]
                   .contains("finalizers"));
}

// Cases from upstream's strategicpatch patch_test.go.
TEST(StrategicMergePatch, MatchesUpstreamOrderingCases) {
  EXPECT_EQ(merge_item(R"({"mergingIntList":[1,2]})"_json, R"({"mergingIntList":[2,3]})"_json),
            R"({"mergingIntList":[1,2,3]})"_json);
  EXPECT_EQ(merge_item(R"({"mergingIntList":[1,2,3]})"_json, R"({"mergingIntList":[3,1,2]})"_json),
            R"({"mergingIntList":[3,1,2]})"_json);
  EXPECT_EQ(merge_item(R"({"mergingIntList":[1,2,3]})"_json, R"({"mergingIntList":[3,1]})"_json),
            R"({"mergingIntList":[2,3,1]})"_json);
  EXPECT_EQ(
      merge_item(R"({"mergingList":[{"name":"1"},{"name":"2","value":"b"},{"name":"3"}]})"_json,
                 R"({"mergingList":[{"name":"3","value":"c"},{"name":"1","value":"a"},
                                          {"name":"2","other":"x"}]})"_json),
      R"({"mergingList":[{"name":"3","value":"c"},{"name":"1","value":"a"},
                               {"name":"2","value":"b","other":"x"}]})"_json);
  EXPECT_EQ(
      merge_item(R"({"mergingList":[{"name":"1"},{"name":"2","value":"b"},{"name":"3"}]})"_json,
                 R"({"mergingList":[{"name":"3","value":"c"},{"name":"1","value":"a"}]})"_json),
      R"({"mergingList":[{"name":"2","value":"b"},{"name":"3","value":"c"},
                               {"name":"1","value":"a"}]})"_json);
  EXPECT_EQ(merge_item(R"({"mergingList":[{"name":"1"},{"name":"3"}]})"_json,
                       R"({"$setElementOrder/mergingList":[{"name":"3"},{"name":"2"},{"name":"1"}],
                           "mergingList":[{"name":"3","value":"3"},{"name":"1","value":"1"}]})"_json),
            R"({"mergingList":[{"name":"3","value":"3"},{"name":"1","value":"1"}]})"_json);
  EXPECT_EQ(merge_item(R"({"mergingIntList":[1,3]})"_json,
                       R"({"$setElementOrder/mergingIntList":[3,2,1]})"_json),
            R"({"mergingIntList":[3,1]})"_json);
  EXPECT_EQ(merge_item(R"({"mergingIntList":[1,2,3,4]})"_json,
                       R"({"$setElementOrder/mergingIntList":[1,2],
                           "$deleteFromPrimitiveList/mergingIntList":[3]})"_json),
            R"({"mergingIntList":[1,2,4]})"_json);
  EXPECT_EQ(merge_item(R"({"mergingList":[{"name":"1"},{"name":"1"},{"name":"2","value":"a"},
                                          {"name":"3"},{"name":"3"}]})"_json,
                       R"({"mergingList":[{"name":"1","$patch":"delete"},
                                          {"name":"3","$patch":"delete"}]})"_json),
            R"({"mergingList":[{"name":"2","value":"a"}]})"_json);
  EXPECT_EQ(merge_item(R"({"mergingList":[{"name":"1"},{"name":"2"}]})"_json,
                       R"({"mergingList":[{"$patch":"replace"}]})"_json),
            R"({"mergingList":[]})"_json);
  EXPECT_EQ(merge_item(R"({"simpleMap":{"key1":"1","key2":"1"}})"_json,
                       R"({"simpleMap":{"$patch":"delete"}})"_json),
            R"({"simpleMap":{}})"_json);
  EXPECT_EQ(merge_item(R"({"name":"1","value":"1"})"_json, R"({"$patch":"replace"})"_json),
            json::object());
  EXPECT_EQ(
      merge_item(R"({"nonMergingIntList":[1,2]})"_json, R"({"nonMergingIntList":[2,3]})"_json),
      R"({"nonMergingIntList":[2,3]})"_json);
  EXPECT_EQ(merge_item(R"({"retainKeysMap":{"name":"foo","value":"a"}})"_json,
                       R"({"retainKeysMap":{"value":null}})"_json),
            R"({"retainKeysMap":{"name":"foo"}})"_json);
}

TEST(StrategicMergePatch, SetElementOrderContradictingThePatchIsBadRequest) {
  Result<json> r = apply_strategic_merge_patch(
      R"({"mergingList":[{"name":"1"},{"name":"3"},{"name":"2"}]})"_json,
      R"({"$setElementOrder/mergingList":[{"name":"1"},{"name":"2"},{"name":"3"}],
          "mergingList":[{"name":"3","value":"3"},{"name":"1","value":"1"}]})"_json,
      test_schema().merge_item());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kBadRequest);
  EXPECT_NE(r.status().message().find("doesn't match"), std::string::npos);
}

TEST(StrategicMergePatch, UnknownTypeFallsBackToMergePatch) {
  json svc = R"({"apiVersion":"serving.knative.dev/v1","kind":"Service",
                 "metadata":{"name":"hello","labels":{"a":"1"}},
                 "spec":{"template":{"spec":{"containers":[{"name":"a","image":"x"},{"name":"b"}]}}}})"_json;
  json patch = R"({"metadata":{"labels":{"b":"2"}},
                   "spec":{"template":{"spec":{"containers":[{"image":"y"}]}}}})"_json;
  json result = smp(svc, patch, nullptr);
  EXPECT_EQ(result["metadata"]["labels"], R"({"a":"1","b":"2"})"_json);
  EXPECT_EQ(result["spec"]["template"]["spec"]["containers"], R"([{"image":"y"}])"_json);
  // Map directives still apply and are stripped.
  result = smp(svc, R"({"metadata":{"$retainKeys":["name"],"name":"hello"},
                        "spec":{"$patch":"replace","x":1}})"_json,
               nullptr);
  EXPECT_EQ(result["metadata"], R"({"name":"hello"})"_json);
  EXPECT_EQ(result["spec"], R"({"x":1})"_json);
}

TEST(StrategicMergePatch, UnknownFieldsOfKnownTypesFollowMergePatch) {
  json result = deploy(live_deployment(),
                       R"({"spec":{"template":{"spec":{"fancy":{"list":[1],"keep":null}}}}})"_json);
  EXPECT_EQ(result["spec"]["template"]["spec"]["fancy"], R"({"list":[1]})"_json);
  result =
      deploy(result, R"({"spec":{"template":{"spec":{"fancy":{"list":[2],"more":true}}}}})"_json);
  EXPECT_EQ(result["spec"]["template"]["spec"]["fancy"], R"({"list":[2],"more":true})"_json);
}

TEST(StrategicMergePatch, NewValuesNeverKeepDirectivesOrNulls) {
  json target = R"({"metadata":{"name":"x"}})"_json;
  json patch = R"({"spec":{"template":{"spec":{
                     "$setElementOrder/containers":[{"name":"a"}],
                     "containers":[{"name":"a","image":"x","env":[{"name":"E","value":null}]},
                                   {"name":"gone","$patch":"delete"}]}},
                   "replicas":null,"selector":{"$patch":"replace","matchLabels":{"a":"b"}}}})"_json;
  EXPECT_EQ(deploy(target, patch),
            R"({"metadata":{"name":"x"},
                "spec":{"selector":{"matchLabels":{"a":"b"}},
                        "template":{"spec":{"containers":[{"name":"a","image":"x","env":[{"name":"E"}]}]}}}})"_json);
}

TEST(StrategicMergePatch, MalformedPatchesAreBadRequests) {
  const char* cases[] = {
      R"({"spec":{"template":{"spec":{"containers":"web"}}}})",
      R"({"spec":{"template":{"spec":{"containers":{"name":"web"}}}}})",
      R"({"spec":{"template":{"spec":{"containers":[1]}}}})",
      R"({"spec":{"template":{"spec":{"containers":[null]}}}})",
      R"({"spec":{"template":{"spec":{"containers":[{"image":"no-name"}]}}}})",
      R"({"spec":{"template":{"spec":{"containers":[{"$patch":"delete"}]}}}})",
      R"({"spec":{"template":{"spec":{"containers":[{"$patch":"explode","name":"web"}]}}}})",
      R"({"spec":{"$patch":"explode"}})",
      R"({"spec":{"$patch":7}})",
      R"({"$patch":"explode"})",
      R"({"spec":{"template":{"spec":{"$setElementOrder/containers":{"name":"web"}}}}})",
      R"({"spec":{"template":{"spec":{"$setElementOrder/containers":["web"]}}}})",
      R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"image":"x"}],"containers":[{"name":"web"}]}}}})",
      R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],"containers":null}}}})",
      R"({"spec":{"template":{"spec":{"$setElementOrder/":[]}}}})",
      R"({"spec":{"strategy":{"$retainKeys":"type","type":"Recreate"}}})",
      R"({"spec":{"strategy":{"$retainKeys":[1],"type":"Recreate"}}})",
      R"({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{"maxSurge":1}}}})",
      R"({"metadata":{"$deleteFromPrimitiveList/finalizers":"a"}})",
      R"({"metadata":{"finalizers":[{"a":1}]}})",
      R"({"metadata":{"labels":"app=web"}})",
      R"({"metadata":{"labels":["app"]}})",
      R"({"spec":[]})",
      R"({"spec":"x"})",
      R"({"spec":{"template":{"metadata":7}}})",
  };
  for (const char* text : cases) {
    Result<json> r = apply_strategic_merge_patch(live_deployment(), json::parse(text),
                                                 test_schema().deployment());
    ASSERT_FALSE(r.ok()) << text << " applied: " << r.value().dump();
    EXPECT_EQ(r.status().code(), StatusCode::kBadRequest) << text << ": " << r.status().message();
    EXPECT_FALSE(r.status().message().empty());
  }
  for (const json& patch : {R"([])"_json, json("x"), json()}) {
    Result<json> r = apply_strategic_merge_patch(live_deployment(), patch, nullptr);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kBadRequest);
  }
}

TEST(StrategicMergePatch, ErrorsSayWhere) {
  Status s = deploy_error(
      live_deployment(),
      R"({"spec":{"template":{"spec":{"containers":[{"name":"web"},{"image":"x"}]}}}})"_json);
  EXPECT_EQ(s.message(),
            "spec.template.spec.containers[1]: map: {\"image\":\"x\"} does not contain declared "
            "merge key: name");
  s = deploy_error(live_deployment(), R"({"spec":{"$patch":"explode"}})"_json);
  EXPECT_EQ(s.message(), "spec: unknown patch type: \"explode\" in map: {\"$patch\":\"explode\"}");
}

TEST(StrategicMergePatch, RejectsTooDeepPatches) {
  json patch = json::object();
  for (int i = 0; i < 3000; ++i) {
    json outer = json::object();
    outer["spec"] = std::move(patch);
    patch = std::move(outer);
  }
  Result<json> r =
      apply_strategic_merge_patch(live_deployment(), patch, test_schema().deployment());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kBadRequest);
}

}  // namespace
}  // namespace skiff::api
