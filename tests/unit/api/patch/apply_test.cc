#include "api/patch/apply.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "test_schema.h"

namespace skiff::api {
namespace {

using nlohmann::json;
using namespace nlohmann::literals;
using testing::test_schema;

const TypeDef* deployment_type() { return test_schema().deployment(); }

json manifest(int replicas = 2, const std::string& image = "nginx:1.25") {
  json m = R"({"apiVersion":"apps/v1","kind":"Deployment",
               "metadata":{"name":"web","namespace":"default","labels":{"app":"web"}},
               "spec":{"selector":{"matchLabels":{"app":"web"}},
                       "template":{"metadata":{"labels":{"app":"web"}},
                                   "spec":{"containers":[{"name":"web","ports":[{"containerPort":80}]}]}}}})"_json;
  m["spec"]["replicas"] = replicas;
  m["spec"]["template"]["spec"]["containers"][0]["image"] = image;
  return m;
}

ApplyOptions as(const std::string& manager, const std::string& now, bool force = false) {
  ApplyOptions o;
  o.manager = manager;
  o.force = force;
  o.api_version = "apps/v1";
  o.now_rfc3339 = now;
  return o;
}

json apply(const json* live, const json& config, const ApplyOptions& options) {
  Result<json> r = server_side_apply(live, config, deployment_type(), options);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r.value() : json();
}

Status apply_error(const json* live, const json& config, const ApplyOptions& options) {
  Result<json> r = server_side_apply(live, config, deployment_type(), options);
  EXPECT_FALSE(r.ok()) << "unexpectedly applied: " << (r.ok() ? r.value().dump() : "");
  return r.status();
}

json update(const json* old_obj, const json& new_obj, const std::string& manager,
            const std::string& now, const std::string& api_version = "apps/v1",
            const std::string& subresource = "") {
  Result<json> r = update_managed_fields(old_obj, new_obj, deployment_type(), manager, "Update",
                                         api_version, now, subresource);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r.value() : json();
}

json fields_of(const json& obj) {
  Result<json> r = fieldset_of(obj, deployment_type());
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r.value() : json();
}

// The managedFields entry of `manager`, or null.
json entry_of(const json& obj, const std::string& manager, const std::string& operation) {
  for (const json& e : obj["metadata"]["managedFields"]) {
    if (e["manager"] == manager && e["operation"] == operation) return e;
  }
  return json();
}

json without_managed_fields(json obj) {
  obj["metadata"].erase("managedFields");
  return obj;
}

TEST(FieldsetOf, IsTheFieldsV1FormKubernetesWrites) {
  EXPECT_EQ(fields_of(manifest()), R"({
    "f:metadata":{"f:labels":{"f:app":{}}},
    "f:spec":{"f:replicas":{},"f:selector":{"f:matchLabels":{"f:app":{}}},
      "f:template":{"f:metadata":{"f:labels":{"f:app":{}}},
        "f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:name":{},
          "f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}})"_json);
}

TEST(FieldsetOf, TracksSetsAtomicListsMapsAndEmptyStructs) {
  json pod = R"({"apiVersion":"v1","kind":"Pod",
                 "metadata":{"name":"p","uid":"u","resourceVersion":"7","generation":1,
                             "creationTimestamp":"2024-01-01T00:00:00Z","finalizers":["a/b"],
                             "annotations":{"x":"y"},"managedFields":[{"manager":"m"}]},
                 "spec":{"containers":[{"name":"c","args":["sleep","1"],
                                        "resources":{"limits":{"cpu":"1"}}}],
                         "tolerations":[{"key":"k"}],
                         "imagePullSecrets":[{"name":"reg"}],
                         "volumes":[{"name":"v","emptyDir":{}}]}})"_json;
  Result<json> r = fieldset_of(pod, test_schema().pod());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r.value(), R"({
    "f:metadata":{"f:annotations":{"f:x":{}},"f:finalizers":{"v:\"a/b\"":{}}},
    "f:spec":{"f:containers":{"k:{\"name\":\"c\"}":{".":{},"f:args":{},"f:name":{},
                                                  "f:resources":{"f:limits":{"f:cpu":{}}}}},
              "f:imagePullSecrets":{"k:{\"name\":\"reg\"}":{".":{},"f:name":{}}},
              "f:tolerations":{},
              "f:volumes":{"k:{\"name\":\"v\"}":{".":{},"f:emptyDir":{},"f:name":{}}}}})"_json);
}

TEST(FieldsetOf, WithoutSchemaTracksLeavesAndTreatsListsAsAtomic) {
  Result<json> r = fieldset_of(R"({"apiVersion":"x/v1","kind":"K","metadata":{"name":"n"},
                                   "spec":{"a":{"b":1},"list":[{"name":"x"}],"e":{}}})"_json,
                               nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), R"({"f:spec":{"f:a":{"f:b":{}},"f:e":{},"f:list":{}}})"_json);
}

TEST(FieldsetOf, RejectsDuplicateAndMissingKeys) {
  json m = manifest();
  m["spec"]["template"]["spec"]["containers"].push_back(R"({"name":"web"})"_json);
  Result<json> r = fieldset_of(m, deployment_type());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalid);
  EXPECT_EQ(r.status().message(),
            ".spec.template.spec.containers: duplicate entries for key [name=\"web\"]");

  m = manifest();
  m["spec"]["template"]["spec"]["containers"][0].erase("name");
  r = fieldset_of(m, deployment_type());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalid);
  EXPECT_EQ(r.status().message(),
            ".spec.template.spec.containers: element 0: associative list with keys has an element "
            "that omits key field \"name\" (and doesn't have default value)");

  EXPECT_EQ(fieldset_of(json::array(), deployment_type()).status().code(), StatusCode::kBadRequest);
}

TEST(ServerSideApply, CreateRecordsTheApplierAsOwnerOfItsConfiguration) {
  json created = apply(nullptr, manifest(), as("kubectl", "2024-05-01T10:00:00Z"));
  json expected = manifest();
  expected["metadata"]["managedFields"] = json::array({json{{"apiVersion", "apps/v1"},
                                                            {"fieldsType", "FieldsV1"},
                                                            {"fieldsV1", fields_of(manifest())},
                                                            {"manager", "kubectl"},
                                                            {"operation", "Apply"},
                                                            {"time", "2024-05-01T10:00:00Z"}}});
  EXPECT_EQ(created, expected);
}

TEST(ServerSideApply, ReapplyWithoutAFieldRemovesIt) {
  json live = apply(nullptr, manifest(), as("kubectl", "2024-05-01T10:00:00Z"));
  json config = manifest();
  config["spec"].erase("replicas");
  json result = apply(&live, config, as("kubectl", "2024-05-01T11:00:00Z"));
  EXPECT_FALSE(result["spec"].contains("replicas"));
  json entry = entry_of(result, "kubectl", "Apply");
  EXPECT_EQ(entry["fieldsV1"], fields_of(config));
  EXPECT_EQ(entry["time"], "2024-05-01T11:00:00Z");
}

TEST(ServerSideApply, ReapplyWithoutAContainerRemovesOnlyThatElement) {
  json config = manifest();
  config["spec"]["template"]["spec"]["containers"].push_back(
      R"({"name":"sidecar","image":"busybox"})"_json);
  json live = apply(nullptr, config, as("kubectl", "2024-05-01T10:00:00Z"));
  json result = apply(&live, manifest(), as("kubectl", "2024-05-01T11:00:00Z"));
  EXPECT_EQ(without_managed_fields(result), manifest());
}

TEST(ServerSideApply, OmittedFieldStaysWhenAnotherManagerOwnsIt) {
  json live = apply(nullptr, manifest(), as("kubectl", "2024-05-01T10:00:00Z"));
  // An autoscaler writes replicas through an update: it takes that field.
  json scaled = live;
  scaled["spec"]["replicas"] = 5;
  scaled = update(&live, scaled, "hpa", "2024-05-01T10:30:00Z");
  EXPECT_EQ(entry_of(scaled, "hpa", "Update")["fieldsV1"], R"({"f:spec":{"f:replicas":{}}})"_json);
  EXPECT_FALSE(entry_of(scaled, "kubectl", "Apply")["fieldsV1"]["f:spec"].contains("f:replicas"));

  json config = manifest();
  config["spec"].erase("replicas");
  json result = apply(&scaled, config, as("kubectl", "2024-05-01T11:00:00Z"));
  EXPECT_EQ(result["spec"]["replicas"], 5);
}

TEST(ServerSideApply, SameValueIsSharedOwnershipNotAConflict) {
  json live = apply(nullptr, manifest(2), as("alice", "2024-05-01T10:00:00Z"));
  json bob_config = R"({"apiVersion":"apps/v1","kind":"Deployment",
                        "metadata":{"name":"web"},"spec":{"replicas":2}})"_json;
  live = apply(&live, bob_config, as("bob", "2024-05-01T10:05:00Z"));
  EXPECT_EQ(entry_of(live, "bob", "Apply")["fieldsV1"], R"({"f:spec":{"f:replicas":{}}})"_json);
  // Bob applied no change, so his entry has no time.
  EXPECT_FALSE(entry_of(live, "bob", "Apply").contains("time"));

  json alice_config = manifest();
  alice_config["spec"].erase("replicas");
  live = apply(&live, alice_config, as("alice", "2024-05-01T10:10:00Z"));
  EXPECT_EQ(live["spec"]["replicas"], 2);  // still bob's

  json bob_gives_up =
      R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"}})"_json;
  live = apply(&live, bob_gives_up, as("bob", "2024-05-01T10:15:00Z"));
  EXPECT_FALSE(live["spec"].contains("replicas"));
  EXPECT_TRUE(entry_of(live, "bob", "Apply").is_null());  // empty entries are dropped
}

TEST(ServerSideApply, ConflictWithClientSideApplyNamesTheManagerAndField) {
  // kubectl apply (client side) created the object: an Update by kubectl-client-side-apply.
  json live = update(nullptr, manifest(2), "kubectl-client-side-apply", "2024-05-01T09:00:00Z");
  Status s = apply_error(&live, manifest(3), as("kubectl", "2024-05-01T10:00:00Z"));
  EXPECT_EQ(s.code(), StatusCode::kConflict);
  EXPECT_EQ(s.message(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using "
            "apps/v1: .spec.replicas");
  ASSERT_EQ(s.causes().size(), 1u);
  EXPECT_EQ(s.causes()[0].reason, "FieldManagerConflict");
  EXPECT_EQ(s.causes()[0].message, "conflict with \"kubectl-client-side-apply\" using apps/v1");
  EXPECT_EQ(s.causes()[0].field, ".spec.replicas");
}

TEST(ServerSideApply, ForceTakesOwnershipOfConflictingFields) {
  json live = update(nullptr, manifest(2), "kubectl-client-side-apply", "2024-05-01T09:00:00Z");
  json result = apply(&live, manifest(3), as("kubectl", "2024-05-01T10:00:00Z", /*force=*/true));
  EXPECT_EQ(result["spec"]["replicas"], 3);
  const json& entries = result["metadata"]["managedFields"];
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0]["manager"], "kubectl");  // Apply sorts before Update
  EXPECT_EQ(entries[0]["operation"], "Apply");
  EXPECT_EQ(entries[0]["fieldsV1"], fields_of(manifest(3)));
  EXPECT_EQ(entries[1]["manager"], "kubectl-client-side-apply");
  EXPECT_EQ(entries[1]["time"], "2024-05-01T09:00:00Z");
  EXPECT_FALSE(entries[1]["fieldsV1"]["f:spec"].contains("f:replicas"));
  EXPECT_TRUE(entries[1]["fieldsV1"]["f:spec"].contains("f:template"));
}

TEST(ServerSideApply, SeveralConflictsAreListedPerManager) {
  json live = apply(nullptr, manifest(2, "nginx:1"), as("alice", "2024-05-01T10:00:00Z"));
  Status s = apply_error(&live, manifest(3, "nginx:2"), as("bob", "2024-05-01T10:05:00Z"));
  EXPECT_EQ(s.code(), StatusCode::kConflict);
  EXPECT_EQ(s.message(),
            "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .spec.replicas\n- "
            ".spec.template.spec.containers[name=\"web\"].image");
  ASSERT_EQ(s.causes().size(), 2u);
  EXPECT_EQ(s.causes()[0].message, "conflict with \"alice\"");
  EXPECT_EQ(s.causes()[1].field, ".spec.template.spec.containers[name=\"web\"].image");
}

TEST(ServerSideApply, KeyedListsMergePerElementBetweenAppliers) {
  json live = apply(nullptr, manifest(), as("alice", "2024-05-01T10:00:00Z"));
  json bob = R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
                 "spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}})"_json;
  live = apply(&live, bob, as("bob", "2024-05-01T10:05:00Z"));
  json containers = live["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(containers.size(), 2u);
  EXPECT_EQ(containers[0]["name"], "web");
  EXPECT_EQ(containers[1], R"({"name":"sidecar","image":"busybox"})"_json);

  // Alice renames her container: hers is replaced, Bob's stays.
  json alice = manifest();
  alice["spec"]["template"]["spec"]["containers"][0]["name"] = "web2";
  live = apply(&live, alice, as("alice", "2024-05-01T10:10:00Z"));
  containers = live["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(containers.size(), 2u);
  EXPECT_EQ(containers[0]["name"], "sidecar");
  EXPECT_EQ(containers[1]["name"], "web2");
}

TEST(ServerSideApply, SetsMergePerValueBetweenAppliers) {
  json alice = R"({"apiVersion":"apps/v1","kind":"Deployment",
                   "metadata":{"name":"web","finalizers":["example.com/a"]}})"_json;
  json bob = R"({"apiVersion":"apps/v1","kind":"Deployment",
                 "metadata":{"name":"web","finalizers":["example.com/b"]}})"_json;
  json live = apply(nullptr, alice, as("alice", "2024-05-01T10:00:00Z"));
  live = apply(&live, bob, as("bob", "2024-05-01T10:05:00Z"));
  EXPECT_EQ(live["metadata"]["finalizers"], R"(["example.com/a","example.com/b"])"_json);
  EXPECT_EQ(entry_of(live, "bob", "Apply")["fieldsV1"],
            R"({"f:metadata":{"f:finalizers":{"v:\"example.com/b\"":{}}}})"_json);

  alice["metadata"]["finalizers"] = json::array();
  live = apply(&live, alice, as("alice", "2024-05-01T10:10:00Z"));
  EXPECT_EQ(live["metadata"]["finalizers"], R"(["example.com/b"])"_json);
}

TEST(ServerSideApply, PortsWithoutProtocolMatchTheDefaultedLiveElement) {
  json created = manifest();
  created["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP";
  json live = update(nullptr, created, "kubectl-create", "2024-05-01T09:00:00Z");
  json result = apply(&live, manifest(), as("kubectl", "2024-05-01T10:00:00Z"));
  EXPECT_EQ(result["spec"]["template"]["spec"]["containers"][0]["ports"],
            R"([{"containerPort":80,"protocol":"TCP"}])"_json);
}

TEST(ServerSideApply, AtomicListsAreReplaced) {
  json config = manifest();
  config["spec"]["template"]["spec"]["containers"][0]["args"] = {"a", "b"};
  json live = apply(nullptr, config, as("kubectl", "2024-05-01T10:00:00Z"));
  config["spec"]["template"]["spec"]["containers"][0]["args"] = {"c"};
  json result = apply(&live, config, as("kubectl", "2024-05-01T11:00:00Z"));
  EXPECT_EQ(result["spec"]["template"]["spec"]["containers"][0]["args"], R"(["c"])"_json);
}

TEST(ServerSideApply, NullRemovesTheFieldAndKeepsOwnership) {
  json live = apply(nullptr, manifest(), as("kubectl", "2024-05-01T10:00:00Z"));
  json config = manifest();
  config["spec"]["replicas"] = nullptr;
  json result = apply(&live, config, as("kubectl", "2024-05-01T11:00:00Z"));
  EXPECT_FALSE(result["spec"].contains("replicas"));
  EXPECT_TRUE(entry_of(result, "kubectl", "Apply")["fieldsV1"]["f:spec"].contains("f:replicas"));

  // Removing a field someone else owns is a conflict like any change.
  json other = update(nullptr, manifest(), "kubectl-create", "2024-05-01T09:00:00Z");
  Status s = apply_error(&other, config, as("kubectl", "2024-05-01T11:00:00Z"));
  EXPECT_EQ(s.code(), StatusCode::kConflict);
}

TEST(ServerSideApply, ApplyThatChangesNothingKeepsTheTime) {
  json live = apply(nullptr, manifest(), as("kubectl", "2024-05-01T10:00:00Z"));
  json again = apply(&live, manifest(), as("kubectl", "2024-05-01T11:00:00Z"));
  EXPECT_EQ(again, live);
}

TEST(ServerSideApply, UndecodableLiveManagedFieldsAreReset) {
  json live = manifest();
  live["metadata"]["managedFields"] = "garbage";
  json result = apply(&live, manifest(3), as("kubectl", "2024-05-01T10:00:00Z"));
  EXPECT_EQ(result["spec"]["replicas"], 3);
  ASSERT_EQ(result["metadata"]["managedFields"].size(), 1u);
}

TEST(ServerSideApply, RejectsBadRequests) {
  Status s = apply_error(nullptr, manifest(), as("", "t"));
  EXPECT_EQ(s.code(), StatusCode::kBadRequest);
  EXPECT_EQ(s.message(), "fieldManager is required for apply requests");

  json config = manifest();
  config["metadata"]["managedFields"] = json::array();
  s = apply_error(nullptr, config, as("kubectl", "t"));
  EXPECT_EQ(s.code(), StatusCode::kBadRequest);
  EXPECT_EQ(s.message(), "metadata.managedFields must be nil");

  config = manifest();
  config["apiVersion"] = "apps/v1beta1";
  s = apply_error(nullptr, config, as("kubectl", "t"));
  EXPECT_EQ(s.code(), StatusCode::kBadRequest);
  EXPECT_EQ(s.message(),
            "Incorrect version specified in apply patch. Specified patch version: apps/v1beta1, "
            "expected: apps/v1");

  EXPECT_EQ(apply_error(nullptr, json::array(), as("kubectl", "t")).code(),
            StatusCode::kBadRequest);
  config = manifest();
  config["metadata"] = "x";
  EXPECT_EQ(apply_error(nullptr, config, as("kubectl", "t")).code(), StatusCode::kBadRequest);

  config = manifest();
  config["spec"]["template"]["spec"]["containers"].push_back(R"({"name":"web"})"_json);
  s = apply_error(nullptr, config, as("kubectl", "t"));
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  ASSERT_EQ(s.causes().size(), 1u);
  EXPECT_EQ(s.causes()[0].field, "spec.template.spec.containers");

  json not_an_object = json::array();
  EXPECT_EQ(apply_error(&not_an_object, manifest(), as("kubectl", "t")).code(),
            StatusCode::kInternal);
}

TEST(ServerSideApply, WorksWithoutSchema) {
  json config =
      R"({"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"hello"},
                    "spec":{"template":{"spec":{"containers":[{"image":"a"}]}},"traffic":[{"percent":100}]}})"_json;
  ApplyOptions options = as("kubectl", "t1");
  options.api_version = "serving.knative.dev/v1";
  Result<json> r = server_side_apply(nullptr, config, nullptr, options);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  json live = r.value();
  EXPECT_EQ(live["metadata"]["managedFields"][0]["fieldsV1"],
            R"({"f:spec":{"f:template":{"f:spec":{"f:containers":{}}},"f:traffic":{}}})"_json);
  config["spec"].erase("traffic");
  config["spec"]["template"]["spec"]["containers"][0]["image"] = "b";
  options.now_rfc3339 = "t2";
  r = server_side_apply(&live, config, nullptr, options);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FALSE(r.value()["spec"].contains("traffic"));
  EXPECT_EQ(r.value()["spec"]["template"]["spec"]["containers"], R"([{"image":"b"}])"_json);
}

TEST(UpdateManagedFields, CreateGivesTheCreatorEveryField) {
  json obj = R"({"apiVersion":"apps/v1","kind":"Deployment",
                 "metadata":{"name":"web","namespace":"default","labels":{"app":"web"}},
                 "spec":{"replicas":2,"template":{"spec":{"containers":[{"name":"web","image":"nginx"}]}}}})"_json;
  json result = update(nullptr, obj, "kubectl-create", "2024-05-01T09:00:00Z");
  json expected = obj;
  expected["metadata"]["managedFields"] = R"([{
    "apiVersion":"apps/v1","fieldsType":"FieldsV1","manager":"kubectl-create","operation":"Update",
    "time":"2024-05-01T09:00:00Z",
    "fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},
                "f:spec":{"f:replicas":{},
                          "f:template":{"f:spec":{"f:containers":{".":{},
                              "k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:name":{}}}}}}}}])"_json;
  EXPECT_EQ(result, expected);
}

TEST(UpdateManagedFields, AnUpdateTakesTheFieldsItChanges) {
  json live = update(nullptr, manifest(2), "kubectl-create", "2024-05-01T09:00:00Z");
  json scaled = live;
  scaled["spec"]["replicas"] = 5;
  json result = update(&live, scaled, "hpa", "2024-05-01T10:00:00Z");
  const json& entries = result["metadata"]["managedFields"];
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0]["manager"], "kubectl-create");  // older first
  EXPECT_FALSE(entries[0]["fieldsV1"]["f:spec"].contains("f:replicas"));
  EXPECT_EQ(entries[1]["manager"], "hpa");
  EXPECT_EQ(entries[1]["fieldsV1"], R"({"f:spec":{"f:replicas":{}}})"_json);
  EXPECT_EQ(entries[1]["time"], "2024-05-01T10:00:00Z");
}

TEST(UpdateManagedFields, EntriesLeftEmptyAreDropped) {
  json obj =
      R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"},"spec":{"replicas":1}})"_json;
  json live = update(nullptr, obj, "a", "2024-05-01T09:00:00Z");
  json changed = live;
  changed["spec"]["replicas"] = 2;
  json result = update(&live, changed, "b", "2024-05-01T10:00:00Z");
  ASSERT_EQ(result["metadata"]["managedFields"].size(), 1u);
  EXPECT_EQ(result["metadata"]["managedFields"][0]["manager"], "b");
}

TEST(UpdateManagedFields, RemovedFieldsLeaveEveryEntry) {
  json live = update(nullptr, manifest(), "kubectl-create", "2024-05-01T09:00:00Z");
  json changed = live;
  changed["metadata"].erase("labels");
  json result = update(&live, changed, "kubectl-edit", "2024-05-01T10:00:00Z");
  const json& entries = result["metadata"]["managedFields"];
  ASSERT_EQ(entries.size(), 1u);  // a removal alone gives the editor nothing
  EXPECT_FALSE(entries[0]["fieldsV1"].contains("f:metadata"));
}

TEST(UpdateManagedFields, EntriesAreKeyedByApiVersionForUpdates) {
  json live = update(nullptr, manifest(2), "ctl", "2024-05-01T09:00:00Z", "apps/v1");
  json changed = live;
  changed["spec"]["minReadySeconds"] = 5;
  json result = update(&live, changed, "ctl", "2024-05-01T10:00:00Z", "apps/v1beta2");
  const json& entries = result["metadata"]["managedFields"];
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1]["apiVersion"], "apps/v1beta2");
  EXPECT_EQ(entries[1]["fieldsV1"], R"({"f:spec":{"f:minReadySeconds":{}}})"_json);

  // The same identity again merges into its entry.
  json again = result;
  again["spec"]["minReadySeconds"] = 6;
  again["spec"]["replicas"] = 3;
  json merged = update(&result, again, "ctl", "2024-05-01T11:00:00Z", "apps/v1beta2");
  ASSERT_EQ(merged["metadata"]["managedFields"].size(), 2u);
  EXPECT_EQ(entry_of(merged, "ctl", "Update").is_null(), false);
  const json& last = merged["metadata"]["managedFields"][1];
  EXPECT_EQ(last["fieldsV1"], R"({"f:spec":{"f:minReadySeconds":{},"f:replicas":{}}})"_json);
  EXPECT_EQ(last["time"], "2024-05-01T11:00:00Z");
}

TEST(UpdateManagedFields, AWriteThatChangesNothingLeavesEntriesAlone) {
  json live = update(nullptr, manifest(), "kubectl-create", "2024-05-01T09:00:00Z");
  json same = live;
  same["metadata"]["resourceVersion"] = "42";  // never tracked
  json result = update(&live, same, "someone", "2024-05-01T10:00:00Z");
  EXPECT_EQ(result["metadata"]["managedFields"], live["metadata"]["managedFields"]);
}

TEST(UpdateManagedFields, ClientsMayEditOrResetManagedFields) {
  json live = update(nullptr, manifest(), "kubectl-create", "2024-05-01T09:00:00Z");
  json edited = live;
  edited["metadata"]["managedFields"] =
      R"([{"manager":"x","operation":"Update","apiVersion":"apps/v1",
      "fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:replicas":{}}}}])"_json;
  json result = update(&live, edited, "kubectl-edit", "2024-05-01T10:00:00Z");
  EXPECT_EQ(result["metadata"]["managedFields"], edited["metadata"]["managedFields"]);

  json reset = live;
  reset["metadata"]["managedFields"] = R"([{}])"_json;
  result = update(&live, reset, "kubectl-edit", "2024-05-01T10:00:00Z");
  EXPECT_FALSE(result["metadata"].contains("managedFields"));

  // An empty list is not a reset: the live entries are kept.
  json emptied = live;
  emptied["metadata"]["managedFields"] = json::array();
  result = update(&live, emptied, "kubectl-edit", "2024-05-01T10:00:00Z");
  EXPECT_EQ(result["metadata"]["managedFields"], live["metadata"]["managedFields"]);
}

TEST(UpdateManagedFields, UndecodableManagedFieldsAreDiscarded) {
  for (const json& bad : {json("garbage"), R"([{"manager":"x","fieldsType":"FieldsV2"}])"_json,
                          R"([{"manager":"x","fieldsType":"FieldsV1","fieldsV1":{"q:x":{}}}])"_json,
                          R"([{"manager":"x","fieldsType":"FieldsV1","fieldsV1":{"f:x":[]}}])"_json,
                          R"([{"manager":"x","operation":"Update","fieldsType":"FieldsV1"},
                              {"manager":"x","operation":"Update","fieldsType":"FieldsV1"}])"_json,
                          R"([{"manager":7,"fieldsType":"FieldsV1"}])"_json}) {
    json live = manifest();
    live["metadata"]["managedFields"] = bad;
    json changed = live;
    changed["spec"]["replicas"] = 9;
    json result = update(&live, changed, "m", "2024-05-01T10:00:00Z");
    ASSERT_EQ(result["metadata"]["managedFields"].size(), 1u) << bad;
    EXPECT_EQ(result["metadata"]["managedFields"][0]["manager"], "m");
  }
}

TEST(UpdateManagedFields, SubresourceWritesHaveTheirOwnEntries) {
  json live = update(nullptr, manifest(), "kubectl-create", "2024-05-01T09:00:00Z");
  json with_status = live;
  with_status["status"] = R"({"replicas":2,"observedGeneration":1})"_json;
  // A status write cannot change managedFields through the request body.
  with_status["metadata"]["managedFields"] = R"([{}])"_json;
  json result = update(&live, with_status, "kube-controller-manager", "2024-05-01T10:00:00Z",
                       "apps/v1", "status");
  json entry = entry_of(result, "kube-controller-manager", "Update");
  EXPECT_EQ(entry["subresource"], "status");
  EXPECT_EQ(entry["fieldsV1"], R"({"f:status":{"f:observedGeneration":{},"f:replicas":{}}})"_json);
  EXPECT_FALSE(entry_of(result, "kubectl-create", "Update").is_null());
}

TEST(UpdateManagedFields, RejectsBadArguments) {
  const TypeDef* type = deployment_type();
  EXPECT_EQ(
      update_managed_fields(nullptr, json::array(), type, "m", "Update", "v1", "t").status().code(),
      StatusCode::kBadRequest);
  EXPECT_EQ(
      update_managed_fields(nullptr, manifest(), type, "", "Update", "v1", "t").status().code(),
      StatusCode::kBadRequest);
  EXPECT_EQ(
      update_managed_fields(nullptr, manifest(), type, "m", "Patch", "v1", "t").status().code(),
      StatusCode::kBadRequest);
  json not_an_object = 3;
  EXPECT_EQ(update_managed_fields(&not_an_object, manifest(), type, "m", "Update", "v1", "t")
                .status()
                .code(),
            StatusCode::kInternal);
  // No metadata: returned as is.
  Result<json> r =
      update_managed_fields(nullptr, R"({"a":1})"_json, type, "m", "Update", "v1", "t");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), R"({"a":1})"_json);
}

}  // namespace
}  // namespace skiff::api
