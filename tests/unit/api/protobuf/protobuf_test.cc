#include "api/protobuf/protobuf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace skiff::api {
namespace {

using nlohmann::json;

// A minimal protobuf writer for building request bodies by hand.
class Pb {
 public:
  static std::string varint(uint64_t v) {
    std::string out;
    while (v >= 0x80) {
      out += static_cast<char>((v & 0x7F) | 0x80);
      v >>= 7;
    }
    out += static_cast<char>(v);
    return out;
  }
  Pb& tag(int number, int wire) {
    buf_ += varint((static_cast<uint64_t>(number) << 3) | static_cast<uint64_t>(wire));
    return *this;
  }
  Pb& u(int number, uint64_t v) {
    tag(number, 0);
    buf_ += varint(v);
    return *this;
  }
  Pb& i(int number, int64_t v) { return u(number, static_cast<uint64_t>(v)); }
  Pb& s(int number, std::string_view v) {
    tag(number, 2);
    buf_ += varint(v.size());
    buf_ += v;
    return *this;
  }
  Pb& m(int number, const Pb& msg) { return s(number, msg.str()); }
  Pb& d(int number, double v) {
    tag(number, 1);
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    for (int k = 0; k < 8; k++) buf_ += static_cast<char>(bits >> (8 * k));
    return *this;
  }
  Pb& fixed32(int number, uint32_t v) {
    tag(number, 5);
    for (int k = 0; k < 4; k++) buf_ += static_cast<char>(v >> (8 * k));
    return *this;
  }
  Pb& entry(int number, std::string_view key, std::string_view value) {
    return m(number, Pb().s(1, key).s(2, value));
  }
  Pb& raw(std::string_view bytes) {
    buf_ += bytes;
    return *this;
  }
  const std::string& str() const { return buf_; }

 private:
  std::string buf_;
};

std::string envelope(std::string_view api_version, std::string_view kind, const Pb& object) {
  Pb unknown;
  unknown.m(1, Pb().s(1, api_version).s(2, kind)).s(2, object.str()).s(3, "").s(4, "");
  return std::string("k8s\0", 4) + unknown.str();
}

constexpr int64_t kZeroTime = -62135596800;

// ObjectMeta as gogo writes it for an object built by kubectl: every non-pointer field present.
Pb object_meta(std::string_view name) {
  return Pb().s(1, name).s(2, "").s(3, "").s(4, "").s(5, "").s(6, "").i(7, 0).m(
      8, Pb().i(1, kZeroTime).i(2, 0));
}

FieldDef field(std::string name, int number, ValueKind kind, Shape shape = Shape::kScalar,
               const TypeDef* type = nullptr) {
  FieldDef f;
  f.name = std::move(name);
  f.number = number;
  f.kind = kind;
  f.shape = shape;
  f.type = type;
  return f;
}

class ProtobufTest : public ::testing::Test {
 protected:
  ProtobufTest() {
    auto* fields_v1 = add("io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1", {});
    auto* managed =
        add("io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry",
            {field("manager", 1, ValueKind::kString), field("time", 4, ValueKind::kTime),
             field("fieldsV1", 7, ValueKind::kObject, Shape::kScalar, fields_v1)});
    meta_ = add(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        {field("name", 1, ValueKind::kString), field("generateName", 2, ValueKind::kString),
         field("namespace", 3, ValueKind::kString), field("selfLink", 4, ValueKind::kString),
         field("uid", 5, ValueKind::kString), field("resourceVersion", 6, ValueKind::kString),
         field("generation", 7, ValueKind::kInt64), field("creationTimestamp", 8, ValueKind::kTime),
         field("deletionGracePeriodSeconds", 10, ValueKind::kInt64),
         field("labels", 11, ValueKind::kString, Shape::kMap),
         field("annotations", 12, ValueKind::kString, Shape::kMap),
         field("finalizers", 14, ValueKind::kString, Shape::kList),
         field("managedFields", 17, ValueKind::kObject, Shape::kList, managed)});
    config_map_ = add("io.k8s.api.core.v1.ConfigMap",
                      {field("metadata", 1, ValueKind::kObject, Shape::kScalar, meta_),
                       field("data", 2, ValueKind::kString, Shape::kMap),
                       field("binaryData", 3, ValueKind::kBytes, Shape::kMap),
                       field("immutable", 4, ValueKind::kBool)});
    secret_ =
        add("io.k8s.api.core.v1.Secret",
            {field("metadata", 1, ValueKind::kObject, Shape::kScalar, meta_),
             field("data", 2, ValueKind::kBytes, Shape::kMap), field("type", 3, ValueKind::kString),
             field("stringData", 4, ValueKind::kString, Shape::kMap),
             field("immutable", 5, ValueKind::kBool)});
    auto* ns_spec = add("io.k8s.api.core.v1.NamespaceSpec",
                        {field("finalizers", 1, ValueKind::kString, Shape::kList)});
    auto* ns_status =
        add("io.k8s.api.core.v1.NamespaceStatus", {field("phase", 1, ValueKind::kString)});
    namespace_ = add("io.k8s.api.core.v1.Namespace",
                     {field("metadata", 1, ValueKind::kObject, Shape::kScalar, meta_),
                      field("spec", 2, ValueKind::kObject, Shape::kScalar, ns_spec),
                      field("status", 3, ValueKind::kObject, Shape::kScalar, ns_status)});
    auto* attrs =
        add("io.k8s.api.authorization.v1.ResourceAttributes",
            {field("namespace", 1, ValueKind::kString), field("verb", 2, ValueKind::kString),
             field("group", 3, ValueKind::kString), field("version", 4, ValueKind::kString),
             field("resource", 5, ValueKind::kString), field("subresource", 6, ValueKind::kString),
             field("name", 7, ValueKind::kString)});
    auto* non_resource =
        add("io.k8s.api.authorization.v1.NonResourceAttributes",
            {field("path", 1, ValueKind::kString), field("verb", 2, ValueKind::kString)});
    auto* ssar_spec =
        add("io.k8s.api.authorization.v1.SelfSubjectAccessReviewSpec",
            {field("resourceAttributes", 1, ValueKind::kObject, Shape::kScalar, attrs),
             field("nonResourceAttributes", 2, ValueKind::kObject, Shape::kScalar, non_resource)});
    FieldDef allowed = field("allowed", 1, ValueKind::kBool);
    allowed.optional = false;
    auto* sar_status = add(
        "io.k8s.api.authorization.v1.SubjectAccessReviewStatus",
        {allowed, field("reason", 2, ValueKind::kString),
         field("evaluationError", 3, ValueKind::kString), field("denied", 4, ValueKind::kBool)});
    ssar_ = add("io.k8s.api.authorization.v1.SelfSubjectAccessReview",
                {field("metadata", 1, ValueKind::kObject, Shape::kScalar, meta_),
                 field("spec", 2, ValueKind::kObject, Shape::kScalar, ssar_spec),
                 field("status", 3, ValueKind::kObject, Shape::kScalar, sar_status)});

    auto* port =
        add("io.k8s.api.core.v1.ContainerPort", {field("containerPort", 3, ValueKind::kInt32)});
    auto* resources = add("io.k8s.api.core.v1.ResourceRequirements",
                          {field("limits", 1, ValueKind::kQuantity, Shape::kMap)});
    auto* container =
        add("io.k8s.api.core.v1.Container",
            {field("name", 1, ValueKind::kString), field("image", 2, ValueKind::kString),
             field("ports", 6, ValueKind::kObject, Shape::kList, port),
             field("resources", 8, ValueKind::kObject, Shape::kScalar, resources)});
    auto* empty_dir = add("io.k8s.api.core.v1.EmptyDirVolumeSource",
                          {field("sizeLimit", 2, ValueKind::kQuantity)});
    auto* volume_source =
        add("io.k8s.api.core.v1.VolumeSource",
            {field("emptyDir", 2, ValueKind::kObject, Shape::kScalar, empty_dir)});
    FieldDef source = field("volumeSource", 2, ValueKind::kObject, Shape::kScalar, volume_source);
    source.inline_fields = true;
    auto* volume = add("io.k8s.api.core.v1.Volume", {field("name", 1, ValueKind::kString), source});
    auto* pod_spec = add("io.k8s.api.core.v1.PodSpec",
                         {field("volumes", 1, ValueKind::kObject, Shape::kList, volume),
                          field("containers", 2, ValueKind::kObject, Shape::kList, container)});
    auto* pod_template = add("io.k8s.api.core.v1.PodTemplateSpec",
                             {field("metadata", 1, ValueKind::kObject, Shape::kScalar, meta_),
                              field("spec", 2, ValueKind::kObject, Shape::kScalar, pod_spec)});
    auto* selector = add("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
                         {field("matchLabels", 1, ValueKind::kString, Shape::kMap)});
    auto* rolling = add("io.k8s.api.apps.v1.RollingUpdateDeployment",
                        {field("maxUnavailable", 1, ValueKind::kIntOrString),
                         field("maxSurge", 2, ValueKind::kIntOrString)});
    auto* strategy = add("io.k8s.api.apps.v1.DeploymentStrategy",
                         {field("type", 1, ValueKind::kString),
                          field("rollingUpdate", 2, ValueKind::kObject, Shape::kScalar, rolling)});
    auto* spec = add(
        "io.k8s.api.apps.v1.DeploymentSpec",
        {field("replicas", 1, ValueKind::kInt32),
         field("selector", 2, ValueKind::kObject, Shape::kScalar, selector),
         field("template", 3, ValueKind::kObject, Shape::kScalar, pod_template),
         field("strategy", 4, ValueKind::kObject, Shape::kScalar, strategy),
         field("minReadySeconds", 5, ValueKind::kInt32),
         field("revisionHistoryLimit", 6, ValueKind::kInt32), field("paused", 7, ValueKind::kBool),
         field("progressDeadlineSeconds", 9, ValueKind::kInt32)});
    auto* status = add("io.k8s.api.apps.v1.DeploymentStatus",
                       {field("observedGeneration", 1, ValueKind::kInt64)});
    deployment_ = add("io.k8s.api.apps.v1.Deployment",
                      {field("metadata", 1, ValueKind::kObject, Shape::kScalar, meta_),
                       field("spec", 2, ValueKind::kObject, Shape::kScalar, spec),
                       field("status", 3, ValueKind::kObject, Shape::kScalar, status)});
    // Fields of every other kind, for the well-known types and encodings.
    misc_ = add(
        "io.k8s.example.v1.Misc",
        {field("ints", 1, ValueKind::kInt32, Shape::kList),
         field("bigs", 2, ValueKind::kInt64, Shape::kList), field("ratio", 3, ValueKind::kDouble),
         field("micro", 4, ValueKind::kMicroTime), field("timeout", 5, ValueKind::kDuration),
         field("raw", 6, ValueKind::kRawExtension), field("any", 7, ValueKind::kAny),
         field("flags", 8, ValueKind::kBool, Shape::kList), field("blob", 9, ValueKind::kBytes),
         field("ratios", 10, ValueKind::kDouble, Shape::kList), field("when", 11, ValueKind::kTime),
         field("items", 12, ValueKind::kObject, Shape::kMap, port)});
    auto* nested = add("io.k8s.example.v1.Nested", {});
    nested->fields.push_back(field("child", 1, ValueKind::kObject, Shape::kScalar, nested));
    nested->finalize();
    nested_ = nested;

    registry_.add(resource("", "v1", "ConfigMap", config_map_));
    registry_.add(resource("", "v1", "Secret", secret_));
    registry_.add(resource("", "v1", "Namespace", namespace_));
    registry_.add(resource("authorization.k8s.io", "v1", "SelfSubjectAccessReview", ssar_));
    registry_.add(resource("apps", "v1", "Deployment", deployment_));
    registry_.add(resource("example.com", "v1", "Misc", misc_));
    registry_.add(resource("example.com", "v1", "Nested", nested_));
  }

  TypeDef* add(std::string name, std::vector<FieldDef> fields) {
    auto t = std::make_unique<TypeDef>();
    t->name = std::move(name);
    t->fields = std::move(fields);
    t->finalize();
    return schema_.add(std::move(t));
  }

  static std::shared_ptr<const ResourceDef> resource(std::string group, std::string version,
                                                     std::string kind, const TypeDef* type) {
    auto d = std::make_shared<ResourceDef>();
    d->group = std::move(group);
    d->version = std::move(version);
    d->kind = kind;
    d->resource = kind + "s";
    d->type = type;
    return d;
  }

  Result<json> decode(const std::string& body) { return decode_protobuf_object(body, registry_); }

  Schema schema_;
  Registry registry_;
  TypeDef* meta_ = nullptr;
  TypeDef* config_map_ = nullptr;
  TypeDef* secret_ = nullptr;
  TypeDef* namespace_ = nullptr;
  TypeDef* ssar_ = nullptr;
  TypeDef* deployment_ = nullptr;
  TypeDef* misc_ = nullptr;
  TypeDef* nested_ = nullptr;
};

TEST_F(ProtobufTest, ConfigMapFromKubectlCreate) {
  // kubectl create configmap demo --from-literal=a=1 --from-literal=empty=
  Pb cm;
  cm.m(1, object_meta("demo")).entry(2, "a", "1").entry(2, "empty", "").u(4, 0);
  auto got = decode(envelope("v1", "ConfigMap", cm));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, json::parse(R"({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "demo", "generation": 0},
                                  "data": {"a": "1", "empty": ""}})"));
}

TEST_F(ProtobufTest, NamespaceFromKubectlCreate) {
  Pb ns;
  ns.m(1, object_meta("dev")).m(2, Pb()).m(3, Pb().s(1, ""));
  auto got = decode(envelope("v1", "Namespace", ns));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, json::parse(R"({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": "dev", "generation": 0},
                                  "spec": {}, "status": {}})"));
}

TEST_F(ProtobufTest, SelfSubjectAccessReviewFromAuthCanI) {
  // kubectl auth can-i create pods
  Pb attrs;
  attrs.s(1, "default").s(2, "create").s(3, "").s(4, "").s(5, "pods").s(6, "").s(7, "");
  Pb review;
  review.m(1, object_meta("")).m(2, Pb().m(1, attrs)).m(3, Pb().u(1, 0).s(2, "").s(3, "").u(4, 0));
  auto got = decode(envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", review));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, json::parse(R"({"apiVersion": "authorization.k8s.io/v1",
                                  "kind": "SelfSubjectAccessReview",
                                  "metadata": {"generation": 0},
                                  "spec": {"resourceAttributes": {"namespace": "default",
                                                                  "verb": "create",
                                                                  "resource": "pods"}},
                                  "status": {"allowed": false}})"));
}

TEST_F(ProtobufTest, SecretDataIsBase64) {
  Pb secret;
  secret.m(1, object_meta("s"))
      .entry(2, "user", "admin")
      .entry(2, "bin", std::string("\0\xff\x01", 3))
      .s(3, "Opaque");
  auto got = decode(envelope("v1", "Secret", secret));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ((*got)["data"], json::parse(R"({"user": "YWRtaW4=", "bin": "AP8B"})"));
  EXPECT_EQ((*got)["type"], "Opaque");
}

TEST_F(ProtobufTest, DeploymentFromKubectlCreate) {
  // kubectl create deployment web --image=nginx --replicas=0 --port=80
  Pb container;
  container.s(1, "nginx")
      .s(2, "nginx")
      .m(6, Pb().u(3, 80))
      .m(8, Pb().entry(1, "cpu", Pb().s(1, "500m").str()));
  Pb template_spec;
  template_spec.m(1, object_meta("").entry(11, "app", "web")).m(2, Pb().m(2, container));
  Pb rolling;
  rolling.m(1, Pb().u(1, 0).u(2, 1).s(3, "")).m(2, Pb().u(1, 1).u(2, 0).s(3, "25%"));
  Pb spec;
  spec.u(1, 0)
      .m(2, Pb().entry(1, "app", "web"))
      .m(3, template_spec)
      .m(4, Pb().s(1, "").m(2, rolling))
      .u(5, 0)
      .i(6, -1)
      .u(7, 0);
  Pb deployment;
  deployment.m(1, object_meta("web").entry(11, "app", "web")).m(2, spec).m(3, Pb().i(1, 0));
  auto got = decode(envelope("apps/v1", "Deployment", deployment));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "generation": 0, "labels": {"app": "web"}},
    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"generation": 0, "labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                   "ports": [{"containerPort": 80}],
                                                   "resources": {"limits": {"cpu": "500m"}}}]}},
             "strategy": {"rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}},
             "minReadySeconds": 0, "revisionHistoryLimit": -1},
    "status": {"observedGeneration": 0}})"));
}

TEST_F(ProtobufTest, WellKnownTypesAndEncodings) {
  Pb misc;
  misc.i(1, -5)                                                     // unpacked int32, negative
      .s(1, Pb::varint(7) + Pb::varint(static_cast<uint64_t>(-8)))  // packed int32
      .i(2, INT64_MIN)
      .d(3, 0.25)
      .m(4, Pb().i(1, 1700000000).i(2, 123456789))
      .m(5, Pb().i(1, 5400'000'000'000))
      .m(6, Pb().s(1, R"({"apiVersion":"v1","kind":"Pod","spec":{"x":[1,2]}})"))
      .m(7, Pb().s(1, "42"))
      .u(8, 1)
      .u(8, 0)
      .s(9, "hi")
      .s(10, std::string("\0\0\0\0\0\0\xf0\x3f", 8))  // packed doubles: 1.0
      .m(11, Pb().i(1, 1700000000).i(2, 999))
      .m(12, Pb().s(1, "a").m(2, Pb().u(3, 1)))
      .m(12, Pb().s(1, "b"));
  auto got = decode(envelope("example.com/v1", "Misc", misc));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, json::parse(R"({
    "apiVersion": "example.com/v1", "kind": "Misc",
    "ints": [-5, 7, -8], "bigs": [-9223372036854775808], "ratio": 0.25,
    "micro": "2023-11-14T22:13:20.123456Z", "timeout": "1h30m0s",
    "raw": {"apiVersion": "v1", "kind": "Pod", "spec": {"x": [1, 2]}}, "any": 42,
    "flags": [true, false], "blob": "aGk=", "ratios": [1.0], "when": "2023-11-14T22:13:20Z",
    "items": {"a": {"containerPort": 1}, "b": {}}})"));
}

TEST_F(ProtobufTest, RawExtensionMayEmbedAProtobufObject) {
  Pb inner;
  inner.m(1, object_meta("nested")).entry(2, "k", "v");
  Pb misc;
  misc.m(6, Pb().s(1, envelope("v1", "ConfigMap", inner)));
  auto got = decode(envelope("example.com/v1", "Misc", misc));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ((*got)["raw"], json::parse(R"({"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "nested", "generation": 0}, "data": {"k": "v"}})"));
}

TEST_F(ProtobufTest, ManagedFieldsCarryFieldsV1AsJson) {
  Pb entry;
  entry.s(1, "kubectl").m(4, Pb().i(1, 0)).m(7, Pb().s(1, R"({"f:data":{}})"));
  Pb cm;
  cm.m(1, Pb().s(1, "x").m(17, entry));
  auto got = decode(envelope("v1", "ConfigMap", cm));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ((*got)["metadata"]["managedFields"], json::parse(R"([{"manager": "kubectl",
      "time": "1970-01-01T00:00:00Z", "fieldsV1": {"f:data": {}}}])"));
}

TEST_F(ProtobufTest, InlineFieldsAreFlattenedIntoTheParent) {
  Pb volume;
  volume.s(1, "scratch").m(2, Pb().m(2, Pb().m(2, Pb().s(1, "1Gi"))));
  Pb deployment;
  deployment.m(2, Pb().m(3, Pb().m(2, Pb().m(1, volume))));
  auto got = decode(envelope("apps/v1", "Deployment", deployment));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ((*got)["spec"]["template"]["spec"]["volumes"],
            json::parse(R"([{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}])"));
}

TEST_F(ProtobufTest, UnknownFieldNumbersAreSkipped) {
  Pb cm;
  cm.u(90, 5)
      .d(91, 1.5)
      .fixed32(92, 7)
      .s(93, "ignored")
      .tag(94, 3)
      .u(1, 1)
      .tag(95, 3)
      .tag(95, 4)
      .tag(94, 4)
      .entry(2, "a", "b");
  auto got = decode(envelope("v1", "ConfigMap", cm));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ((*got)["data"], json::parse(R"({"a": "b"})"));
}

TEST_F(ProtobufTest, InvalidUtf8BecomesReplacementCharacters) {
  Pb cm;
  cm.entry(2, "k", "bad\xff");
  auto got = decode(envelope("v1", "ConfigMap", cm));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ((*got)["data"]["k"], "bad\xEF\xBF\xBD");
  EXPECT_NO_THROW(got->dump());
}

TEST_F(ProtobufTest, DecodesAMessageWithoutEnvelope) {
  auto got = decode_protobuf_message(Pb().s(1, "x").s(3, "ns").str(), *meta_);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, json::parse(R"({"name": "x", "namespace": "ns"})"));
}

TEST_F(ProtobufTest, EnvelopeIsParsed) {
  const std::string body = envelope("apps/v1", "Deployment", Pb().s(1, "x"));
  auto env = parse_protobuf_envelope(body);  // raw points into body
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->api_version, "apps/v1");
  EXPECT_EQ(env->kind, "Deployment");
  EXPECT_EQ(env->raw, Pb().s(1, "x").str());
}

TEST_F(ProtobufTest, ResolverDecodesKindsOutsideTheRegistry) {
  TypeResolver resolve = [&](std::string_view group, std::string_view version,
                             std::string_view kind) -> const TypeDef* {
    return group == "authentication.k8s.io" && version == "v1" && kind == "TokenRequest" ? meta_
                                                                                         : nullptr;
  };
  auto got = decode_protobuf_object(
      envelope("authentication.k8s.io/v1", "TokenRequest", Pb().s(1, "t")), resolve);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ((*got)["name"], "t");
}

struct BadCase {
  const char* name;
  std::string body;
  const char* message_part;
};

TEST_F(ProtobufTest, MalformedBodiesAreRejectedCleanly) {
  const std::string magic("k8s\0", 4);
  std::string deep_raw;
  {
    Pb leaf;
    std::string cur = leaf.str();
    for (int i = 0; i < 300; i++) cur = Pb().m(1, Pb().raw(cur)).str();
    deep_raw = cur;
  }
  const std::vector<BadCase> cases = {
      {"empty", "", "magic"},
      {"json body", R"({"kind":"ConfigMap"})", "magic"},
      {"magic only", magic, "Kind"},
      {"no api version", magic + Pb().m(1, Pb().s(2, "ConfigMap")).str(), "apiVersion"},
      {"unknown kind", envelope("v1", "Nope", Pb()),
       "no kind \"Nope\" is registered for version \"v1\""},
      {"unknown version", envelope("v2", "ConfigMap", Pb()), "no kind"},
      {"content encoding", magic + Pb().m(1, Pb().s(1, "v1").s(2, "ConfigMap")).s(3, "gzip").str(),
       "contentEncoding"},
      {"truncated varint", envelope("v1", "ConfigMap", Pb().raw("\x20\x80")), "truncated varint"},
      {"varint overflow",
       envelope("v1", "ConfigMap", Pb().raw("\x20" + std::string(10, '\xff') + "\x01")),
       "overflows"},
      {"length past end",
       envelope("v1", "ConfigMap",
                Pb().raw("\x0a\x05"
                         "ab")),
       "runs past the end"},
      {"envelope length past end",
       magic + "\x12\x7f"
               "abc",
       "runs past the end"},
      {"wrong wire type", envelope("v1", "ConfigMap", Pb().u(2, 1)), "wrong wireType = 0"},
      {"string as varint", envelope("v1", "ConfigMap", Pb().m(1, Pb().u(1, 3))), "field name"},
      {"bool as bytes", envelope("v1", "ConfigMap", Pb().s(4, "x")), "immutable"},
      {"illegal wire type", envelope("v1", "ConfigMap", Pb().raw("\x0e")), "illegal wire type 6"},
      {"field number zero", envelope("v1", "ConfigMap", Pb().raw("\x02\x00")),
       "invalid field number 0"},
      {"stray end group", envelope("v1", "ConfigMap", Pb().tag(9, 4)), "end of group"},
      {"unterminated group", envelope("v1", "ConfigMap", Pb().tag(9, 3).u(1, 1)),
       "unterminated group"},
      {"mismatched group", envelope("v1", "ConfigMap", Pb().tag(9, 3).tag(8, 4)), "mismatched"},
      {"bad quantity",
       envelope(
           "apps/v1", "Deployment",
           Pb().m(2,
                  Pb().m(3, Pb().m(2, Pb().m(2, Pb().m(8, Pb().entry(1, "cpu",
                                                                     Pb().s(1, "lots").str()))))))),
       "quantities must match"},
      {"time out of range", envelope("example.com/v1", "Misc", Pb().m(11, Pb().i(1, INT64_MAX))),
       "out of range"},
      {"nan", envelope("example.com/v1", "Misc", Pb().d(3, std::nan(""))), "finite"},
      {"raw not json", envelope("example.com/v1", "Misc", Pb().m(6, Pb().s(1, "{nope"))),
       "not valid JSON"},
      {"raw too deep",
       envelope("example.com/v1", "Misc", Pb().m(6, Pb().s(1, std::string(500, '[')))), "depth"},
      {"nesting too deep", envelope("example.com/v1", "Nested", Pb().raw(deep_raw)), "depth"},
      {"packed truncated", envelope("example.com/v1", "Misc", Pb().s(1, "\x80")),
       "truncated varint"},
      {"packed doubles truncated", envelope("example.com/v1", "Misc", Pb().s(10, "1234")),
       "truncated fixed64"},
  };
  for (const BadCase& c : cases) {
    auto got = decode(c.body);
    ASSERT_FALSE(got.ok()) << c.name << ": " << got->dump();
    EXPECT_EQ(got.status().code(), StatusCode::kBadRequest) << c.name;
    EXPECT_NE(got.status().message().find(c.message_part), std::string::npos)
        << c.name << ": " << got.status().message();
  }
}

// Every truncation and many random corruptions of valid bodies either decode or fail with
// BadRequest; none crashes (this binary runs under ASan/UBSan) and every success serializes.
TEST_F(ProtobufTest, FuzzedBodiesNeverCrash) {
  std::vector<std::string> seeds;
  seeds.push_back(envelope("v1", "ConfigMap", Pb().m(1, object_meta("demo")).entry(2, "a", "1")));
  seeds.push_back(envelope("v1", "Secret", Pb().m(1, object_meta("s")).entry(2, "k", "\xff\x00")));
  {
    Pb misc;
    misc.i(1, -5)
        .s(1, "\x07\x08")
        .d(3, 0.5)
        .m(4, Pb().i(1, 1))
        .m(5, Pb().i(1, 5))
        .m(6, Pb().s(1, "[1,{\"a\":2}]"))
        .m(11, Pb().i(1, 7))
        .m(12, Pb().s(1, "a").m(2, Pb().u(3, 1)))
        .s(10, std::string(16, '\x01'))
        .tag(30, 3)
        .u(1, 1)
        .tag(30, 4);
    seeds.push_back(envelope("example.com/v1", "Misc", misc));
  }
  {
    Pb deployment;
    deployment.m(1, object_meta("web"))
        .m(2,
           Pb().u(1, 3).m(3, Pb().m(2, Pb().m(1, Pb().s(1, "v").m(
                                                     2, Pb().m(2, Pb().m(2, Pb().s(1, "1Gi"))))))))
        .m(2, Pb().m(4, Pb().m(2, Pb().m(1, Pb().u(1, 1).s(3, "x")))));
    seeds.push_back(envelope("apps/v1", "Deployment", deployment));
  }
  int ok = 0, bad = 0;
  auto run = [&](const std::string& body) {
    auto got = decode(body);
    if (got.ok()) {
      ok++;
      EXPECT_NO_THROW(got->dump());
    } else {
      bad++;
      EXPECT_EQ(got.status().code(), StatusCode::kBadRequest);
    }
  };
  for (const std::string& seed : seeds) {
    run(seed);
    for (size_t n = 0; n < seed.size(); n++) run(seed.substr(0, n));
  }
  std::mt19937 rng(12345);
  for (int iter = 0; iter < 20000; iter++) {
    std::string body = seeds[rng() % seeds.size()];
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; k++) {
      const size_t at = 4 + rng() % (body.size() - 4);
      switch (rng() % 3) {
        case 0:
          body[at] = static_cast<char>(rng());
          break;
        case 1:
          body.erase(at, 1);
          break;
        default:
          body.insert(at, 1, static_cast<char>(rng()));
          break;
      }
    }
    run(body);
  }
  for (int iter = 0; iter < 2000; iter++) {
    std::string body("k8s\0", 4);
    const size_t len = rng() % 64;
    for (size_t k = 0; k < len; k++) body += static_cast<char>(rng());
    run(body);
  }
  EXPECT_GT(ok, 0);
  EXPECT_GT(bad, 0);
}

}  // namespace
}  // namespace skiff::api
