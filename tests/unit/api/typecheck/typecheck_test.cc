#include "api/typecheck/typecheck.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace skiff::api {
namespace {

using nlohmann::json;

FieldDef field(std::string name, ValueKind kind, Shape shape = Shape::kScalar,
               const TypeDef* type = nullptr) {
  FieldDef f;
  f.name = std::move(name);
  f.kind = kind;
  f.shape = shape;
  f.type = type;
  return f;
}

// A hand-built slice of apps/v1 Deployment and core/v1 Secret, shaped as the built-in schema.
class TypeCheckTest : public ::testing::Test {
 protected:
  TypeCheckTest() {
    meta_ =
        add("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            {field("name", ValueKind::kString), field("namespace", ValueKind::kString),
             field("labels", ValueKind::kString, Shape::kMap),
             field("annotations", ValueKind::kString, Shape::kMap),
             field("creationTimestamp", ValueKind::kTime), field("generation", ValueKind::kInt64)});
    auto* port = add("io.k8s.api.core.v1.ContainerPort", {field("containerPort", ValueKind::kInt32),
                                                          field("name", ValueKind::kString)});
    auto* resources = add("io.k8s.api.core.v1.ResourceRequirements",
                          {field("limits", ValueKind::kQuantity, Shape::kMap),
                           field("requests", ValueKind::kQuantity, Shape::kMap)});
    auto* container = add("io.k8s.api.core.v1.Container",
                          {field("name", ValueKind::kString), field("image", ValueKind::kString),
                           field("args", ValueKind::kString, Shape::kList),
                           field("ports", ValueKind::kObject, Shape::kList, port),
                           field("resources", ValueKind::kObject, Shape::kScalar, resources)});
    auto* config_map_source =
        add("io.k8s.api.core.v1.ConfigMapVolumeSource", {field("name", ValueKind::kString)});
    auto* volume_source =
        add("io.k8s.api.core.v1.VolumeSource",
            {field("configMap", ValueKind::kObject, Shape::kScalar, config_map_source)});
    FieldDef inline_source =
        field("volumeSource", ValueKind::kObject, Shape::kScalar, volume_source);
    inline_source.inline_fields = true;
    auto* volume =
        add("io.k8s.api.core.v1.Volume", {field("name", ValueKind::kString), inline_source});
    auto* pod_spec = add("io.k8s.api.core.v1.PodSpec",
                         {field("containers", ValueKind::kObject, Shape::kList, container),
                          field("volumes", ValueKind::kObject, Shape::kList, volume),
                          field("terminationGracePeriodSeconds", ValueKind::kInt64),
                          field("activeDeadline", ValueKind::kDuration)});
    auto* template_spec = add("io.k8s.api.core.v1.PodTemplateSpec",
                              {field("metadata", ValueKind::kObject, Shape::kScalar, meta_),
                               field("spec", ValueKind::kObject, Shape::kScalar, pod_spec)});
    auto* rolling = add("io.k8s.api.apps.v1.RollingUpdateDeployment",
                        {field("maxSurge", ValueKind::kIntOrString),
                         field("maxUnavailable", ValueKind::kIntOrString)});
    auto* strategy = add("io.k8s.api.apps.v1.DeploymentStrategy",
                         {field("type", ValueKind::kString),
                          field("rollingUpdate", ValueKind::kObject, Shape::kScalar, rolling)});
    auto* spec = add("io.k8s.api.apps.v1.DeploymentSpec",
                     {field("replicas", ValueKind::kInt32), field("paused", ValueKind::kBool),
                      field("template", ValueKind::kObject, Shape::kScalar, template_spec),
                      field("strategy", ValueKind::kObject, Shape::kScalar, strategy),
                      field("progress", ValueKind::kDouble)});
    auto* extra = add("io.k8s.example.v1.Extra", {field("known", ValueKind::kString)});
    extra->preserve_unknown_fields = true;
    extra->finalize();
    deployment_ =
        add("io.k8s.api.apps.v1.Deployment",
            {field("metadata", ValueKind::kObject, Shape::kScalar, meta_),
             field("spec", ValueKind::kObject, Shape::kScalar, spec),
             field("extra", ValueKind::kObject, Shape::kScalar, extra),
             field("raw", ValueKind::kRawExtension), field("micro", ValueKind::kMicroTime)});
    secret_ = add("io.k8s.api.core.v1.Secret",
                  {field("metadata", ValueKind::kObject, Shape::kScalar, meta_),
                   field("data", ValueKind::kBytes, Shape::kMap),
                   field("stringData", ValueKind::kString, Shape::kMap)});
    FieldDef child = field("child", ValueKind::kObject);
    nested_ = add("io.k8s.example.v1.Nested", {});
    child.type = nested_;
    nested_->fields.push_back(child);
    nested_->finalize();
  }

  TypeDef* add(std::string name, std::vector<FieldDef> fields) {
    auto t = std::make_unique<TypeDef>();
    t->name = std::move(name);
    t->fields = std::move(fields);
    t->finalize();
    return schema_.add(std::move(t));
  }

  Status check(json& obj, FieldValidation mode = FieldValidation::kStrict,
               std::vector<std::string>* warnings = nullptr) {
    return check_fields(obj, *deployment_, mode, warnings);
  }

  Schema schema_;
  TypeDef* meta_ = nullptr;
  TypeDef* deployment_ = nullptr;
  TypeDef* secret_ = nullptr;
  TypeDef* nested_ = nullptr;
};

json deployment_with_typos() {
  return json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labelz": {"a": "b"}},
    "spec": {"replica": 3, "replicas": 2,
             "template": {"spec": {"containers": [
                 {"name": "web", "image": "nginx"},
                 {"name": "side", "imagePullPolicyy": "Always", "ports": [{"containerPort": 80, "hostPortt": 1}]}]}}}
  })");
}

TEST_F(TypeCheckTest, ValidObjectPassesUnchanged) {
  json obj = json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}, "creationTimestamp": "2024-05-01T10:00:00Z"},
    "spec": {"replicas": 3, "paused": false, "progress": 0.5,
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx", "args": ["-v"],
                                                   "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
                                                   "ports": [{"containerPort": 80}]}],
                                   "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}],
                                   "activeDeadline": "1h30m"}}},
    "raw": {"anything": [1, {"goes": null}]},
    "micro": "2024-05-01T10:00:00.123456Z"
  })");
  json before = obj;
  ASSERT_TRUE(check(obj).ok());
  EXPECT_EQ(obj, before);
}

TEST_F(TypeCheckTest, StrictListsEveryUnknownFieldWithItsPath) {
  json obj = deployment_with_typos();
  Status s = check(obj);
  EXPECT_EQ(s.code(), StatusCode::kBadRequest);
  EXPECT_EQ(
      s.message(),
      "strict decoding error: unknown field \"metadata.labelz\", unknown field "
      "\"spec.replica\", unknown field \"spec.template.spec.containers[1].imagePullPolicyy\", "
      "unknown field \"spec.template.spec.containers[1].ports[0].hostPortt\"");
}

TEST_F(TypeCheckTest, DecodeErrorAddsKubernetesPrefix) {
  json obj = json::parse(R"({"spec": {"replica": 3}})");
  Status s = decode_error(check(obj), "Deployment", "v1");
  EXPECT_EQ(s.code(), StatusCode::kBadRequest);
  EXPECT_EQ(s.message(),
            "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding "
            "error: unknown field \"spec.replica\"");
  EXPECT_TRUE(decode_error(Status::Ok(), "Deployment", "v1").ok());
}

TEST_F(TypeCheckTest, WarnReportsAndDropsUnknownFields) {
  json obj = deployment_with_typos();
  std::vector<std::string> warnings;
  ASSERT_TRUE(check(obj, FieldValidation::kWarn, &warnings).ok());
  EXPECT_EQ(warnings,
            (std::vector<std::string>{
                "unknown field \"metadata.labelz\"", "unknown field \"spec.replica\"",
                "unknown field \"spec.template.spec.containers[1].imagePullPolicyy\"",
                "unknown field \"spec.template.spec.containers[1].ports[0].hostPortt\""}));
  EXPECT_FALSE(obj["spec"].contains("replica"));
  EXPECT_EQ(obj["spec"]["replicas"], 2);
}

TEST_F(TypeCheckTest, IgnorePrunesUnknownFieldsSilently) {
  json obj = deployment_with_typos();
  std::vector<std::string> warnings;
  ASSERT_TRUE(check(obj, FieldValidation::kIgnore, &warnings).ok());
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(obj, json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"replicas": 2, "template": {"spec": {"containers": [
        {"name": "web", "image": "nginx"}, {"name": "side", "ports": [{"containerPort": 80}]}]}}}
  })"));
}

TEST_F(TypeCheckTest, WrongTypeIsAnErrorInEveryMode) {
  for (FieldValidation mode :
       {FieldValidation::kStrict, FieldValidation::kWarn, FieldValidation::kIgnore}) {
    json obj = json::parse(R"({"spec": {"replicas": "3", "unknown": 1}})");
    Status s = check(obj, mode);
    EXPECT_EQ(s.code(), StatusCode::kBadRequest);
    EXPECT_EQ(s.message(),
              "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas "
              "of type int32");
  }
}

TEST_F(TypeCheckTest, WrongTypeMessagesNameTheGoTypes) {
  struct Case {
    const char* body;
    const char* message;
  };
  const Case cases[] = {
      {R"({"spec": {"replicas": 3000000000}})",
       "json: cannot unmarshal number 3000000000 into Go struct field DeploymentSpec.spec.replicas "
       "of type int32"},
      {R"({"spec": {"replicas": 1.5}})",
       "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of "
       "type int32"},
      {R"({"spec": {"paused": "yes"}})",
       "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type "
       "bool"},
      {R"({"spec": "x"})",
       "json: cannot unmarshal string into Go struct field Deployment.spec of type "
       "v1.DeploymentSpec"},
      {R"({"spec": {"template": {"spec": {"containers": {"name": "x"}}}}})",
       "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers "
       "of type []v1.Container"},
      {R"({"spec": {"template": {"spec": {"containers": [{"ports": [{"containerPort": "80"}]}]}}}})",
       "json: cannot unmarshal string into Go struct field "
       "ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"},
      {R"({"metadata": {"labels": ["a"]}})",
       "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type "
       "map[string]string"},
      {R"({"metadata": {"labels": {"a": 1}}})",
       "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type "
       "string"},
      {R"({"apiVersion": 1})",
       "json: cannot unmarshal number into Go struct field Deployment.apiVersion of type string"},
      {R"({"spec": {"strategy": {"rollingUpdate": {"maxSurge": true}}}})",
       "json: cannot unmarshal bool into Go struct field "
       "RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type intstr.IntOrString"},
      {R"({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1.5}}}})",
       "json: cannot unmarshal number 1.5 into Go struct field "
       "RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type intstr.IntOrString"},
      {R"({"metadata": {"creationTimestamp": "yesterday"}})",
       "parsing time \"yesterday\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"yesterday\" "
       "as RFC 3339"},
      {R"({"metadata": {"creationTimestamp": 5}})",
       "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.creationTimestamp "
       "of type v1.Time"},
      {R"({"spec": {"template": {"spec": {"activeDeadline": "5 minutes"}}}})",
       "time: invalid duration \"5 minutes\""},
      {R"({"spec": {"template": {"spec": {"containers": [{"resources": {"limits": {"cpu": "lots"}}}]}}}})",
       "quantities must match the regular expression "
       "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"},
      {R"({"spec": {"template": {"spec": {"containers": [{"resources": {"limits": {"cpu": "1K"}}}]}}}})",
       "unable to parse quantity's suffix"},
      {R"({"spec": {"template": {"spec": {"containers": [{"resources": {"limits": {"cpu": true}}}]}}}})",
       "quantities must match the regular expression "
       "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"},
      {R"([1, 2])", "json: cannot unmarshal array into Go value of type v1.Deployment"},
  };
  for (const Case& c : cases) {
    json obj = json::parse(c.body);
    Status s = check(obj, FieldValidation::kIgnore);
    EXPECT_EQ(s.code(), StatusCode::kBadRequest) << c.body;
    EXPECT_EQ(s.message(), c.message) << c.body;
  }
}

TEST_F(TypeCheckTest, TypeErrorTakesPrecedenceOverUnknownFields) {
  json obj = json::parse(R"({"aaa": 1, "spec": {"replicas": "x"}})");
  EXPECT_EQ(check(obj).message(),
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of "
            "type int32");
}

TEST_F(TypeCheckTest, QuantitiesAcceptStringsAndNumbers) {
  json obj = json::parse(R"({"spec": {"template": {"spec": {"containers": [{"resources": {
      "limits": {"cpu": 2, "memory": "1.5Gi", "a": 0.5, "b": "1e3", "c": "-1", "d": "100n", "e": ".5"},
      "requests": {"cpu": null}}}]}}}})");
  ASSERT_TRUE(check(obj).ok());
  const json& res = obj["spec"]["template"]["spec"]["containers"][0]["resources"];
  EXPECT_EQ(res["limits"]["cpu"], "2");
  EXPECT_EQ(res["limits"]["a"], "0.5");
  EXPECT_EQ(res["requests"]["cpu"], "0");
}

TEST_F(TypeCheckTest, BytesMustBeBase64) {
  json ok = json::parse(R"({"data": {"a": "aGVsbG8=", "b": "", "c": "aGk=\n"}})");
  EXPECT_TRUE(check_fields(ok, *secret_, FieldValidation::kStrict, nullptr).ok());
  json bad = json::parse(R"({"data": {"a": "hello!"}})");
  Status s = check_fields(bad, *secret_, FieldValidation::kStrict, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kBadRequest);
  EXPECT_EQ(decode_error(s, "Secret", "v1").message(),
            "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at "
            "input byte 5");
  json not_string = json::parse(R"({"data": {"a": 5}})");
  EXPECT_EQ(check_fields(not_string, *secret_, FieldValidation::kStrict, nullptr).message(),
            "json: cannot unmarshal number into Go struct field Secret.data of type []uint8");
}

TEST_F(TypeCheckTest, NullsDecodeAsZeroValues) {
  json obj = json::parse(R"({"apiVersion": null, "metadata": null,
      "spec": {"replicas": null, "template": {"spec": {"containers": [null, {"args": ["a", null]}]}}},
      "raw": {"x": null}})");
  ASSERT_TRUE(check(obj).ok());
  EXPECT_EQ(obj, json::parse(
                     R"({"spec": {"template": {"spec": {"containers": [{}, {"args": ["a", ""]}]}}},
                                 "raw": {"x": null}})"));
}

TEST_F(TypeCheckTest, InlineFieldsAreKnownInTheParent) {
  json obj = json::parse(R"({"spec": {"template": {"spec": {"volumes": [
      {"name": "v", "configMap": {"name": "c", "nme": "typo"}, "secret": {}}]}}}})");
  EXPECT_EQ(check(obj).message(),
            "strict decoding error: unknown field "
            "\"spec.template.spec.volumes[0].configMap.nme\", unknown field "
            "\"spec.template.spec.volumes[0].secret\"");
}

TEST_F(TypeCheckTest, PreserveUnknownFieldsKeepsUnknownButChecksKnown) {
  json obj = json::parse(R"({"extra": {"known": "k", "free": {"form": [1, 2]}, "n": null}})");
  ASSERT_TRUE(check(obj).ok());
  EXPECT_EQ(obj["extra"]["free"]["form"], json({1, 2}));
  EXPECT_TRUE(obj["extra"].contains("n"));
  json bad = json::parse(R"({"extra": {"known": 1}})");
  EXPECT_EQ(check(bad).code(), StatusCode::kBadRequest);
}

TEST_F(TypeCheckTest, RecursionIsBounded) {
  json obj = json::object();
  json* cur = &obj;
  for (int i = 0; i < 500; i++) cur = &((*cur)["child"] = json::object());
  Status s = check_fields(obj, *nested_, FieldValidation::kStrict, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kBadRequest);
  EXPECT_NE(s.message().find("depth"), std::string::npos);

  json shallow = json::parse(R"({"child": {"child": {"child": {"bogus": 1}}}})");
  EXPECT_EQ(check_fields(shallow, *nested_, FieldValidation::kStrict, nullptr).message(),
            "strict decoding error: unknown field \"child.child.child.bogus\"");
}

TEST_F(TypeCheckTest, InvalidUtf8InUnknownFieldNamesDoesNotThrow) {
  json obj = json::object();
  obj[std::string("bad\xff")] = 1;
  Status s = check(obj);
  EXPECT_EQ(s.code(), StatusCode::kBadRequest);
}

TEST(TypeCheckListWrappers, MapOfStringListsIsChecked) {
  Schema schema;
  auto t = std::make_unique<TypeDef>();
  t->name = "io.k8s.api.authorization.v1.SubjectAccessReviewSpec";
  FieldDef extra = field("extra", ValueKind::kAny, Shape::kMap);
  extra.list_wrapper = true;
  FieldDef groups = field("groups", ValueKind::kString, Shape::kList);
  groups.list_wrapper = true;
  t->fields = {extra, groups};
  t->finalize();
  const TypeDef* spec = schema.add(std::move(t));

  json ok = json::parse(R"({"extra": {"scopes": ["a", "b"], "none": []}, "groups": ["g"]})");
  EXPECT_TRUE(check_fields(ok, *spec, FieldValidation::kStrict, nullptr).ok());
  json not_list = json::parse(R"({"extra": {"scopes": "a"}})");
  EXPECT_EQ(check_fields(not_list, *spec, FieldValidation::kStrict, nullptr).message(),
            "json: cannot unmarshal string into Go struct field SubjectAccessReviewSpec.extra of "
            "type []string");
  json not_strings = json::parse(R"({"extra": {"scopes": [1]}})");
  EXPECT_EQ(check_fields(not_strings, *spec, FieldValidation::kStrict, nullptr).code(),
            StatusCode::kBadRequest);
}

TEST(FieldValidationParam, ParsesKubernetesValues) {
  EXPECT_EQ(*parse_field_validation("Strict"), FieldValidation::kStrict);
  EXPECT_EQ(*parse_field_validation("Warn"), FieldValidation::kWarn);
  EXPECT_EQ(*parse_field_validation(""), FieldValidation::kWarn);
  EXPECT_EQ(*parse_field_validation("Ignore"), FieldValidation::kIgnore);
  auto bad = parse_field_validation("strict");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalid);
  EXPECT_EQ(bad.status().message(),
            "fieldValidation: Unsupported value: \"strict\": supported values: \"\", \"Ignore\", "
            "\"Strict\", \"Warn\"");
  ASSERT_EQ(bad.status().causes().size(), 1u);
  EXPECT_EQ(bad.status().causes()[0].field, "fieldValidation");
}

}  // namespace
}  // namespace skiff::api
