// Protobuf bodies as kubectl's typed clients send them, decoded against the real built-in
// schema (field numbers from Kubernetes' generated.proto) and then strictly type-checked.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "api/protobuf/protobuf.h"
#include "api/typecheck/typecheck.h"

#ifdef SKIFF_HAVE_BUILTIN_SCHEMA
#include "api/schema/builtin.h"
#endif

namespace skiff::api {
namespace {

using nlohmann::json;

#ifdef SKIFF_HAVE_BUILTIN_SCHEMA

constexpr int64_t kZeroTime = -62135596800;

std::string varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
  return out;
}

// Writes a message of a known TypeDef, numbering fields by their JSON names as the schema
// does, so the bodies follow Kubernetes' generated.proto.
class Msg {
 public:
  explicit Msg(const TypeDef* type) : type_(type) {}

  Msg& str(std::string_view name, std::string_view v) { return bytes(number(name), v); }
  Msg& num(std::string_view name, int64_t v) {
    buf_ += varint(static_cast<uint64_t>(number(name)) << 3);
    buf_ += varint(static_cast<uint64_t>(v));
    return *this;
  }
  Msg& msg(std::string_view name, const Msg& m) { return bytes(number(name), m.buf_); }
  Msg& entry(std::string_view name, std::string_view key, std::string_view value) {
    std::string e;
    e += '\x0a' + varint(key.size()) + std::string(key);
    e += '\x12' + varint(value.size()) + std::string(value);
    return bytes(number(name), e);
  }
  Msg& time(std::string_view name, int64_t seconds) {
    std::string t = '\x08' + varint(static_cast<uint64_t>(seconds)) + '\x10' + varint(0);
    return bytes(number(name), t);
  }
  const TypeDef* sub(std::string_view name) const { return type_->field(name)->type; }
  const std::string& str() const { return buf_; }

 private:
  int number(std::string_view name) const {
    const FieldDef* f = type_->field(name);
    EXPECT_NE(f, nullptr) << type_->name << "." << name;
    return f == nullptr ? 999 : f->number;
  }
  Msg& bytes(int n, std::string_view v) {
    buf_ += varint((static_cast<uint64_t>(n) << 3) | 2);
    buf_ += varint(v.size());
    buf_ += v;
    return *this;
  }

  const TypeDef* type_;
  std::string buf_;
};

std::string envelope(std::string_view api_version, std::string_view kind, const Msg& object) {
  std::string type_meta = '\x0a' + varint(api_version.size()) + std::string(api_version) + '\x12' +
                          varint(kind.size()) + std::string(kind);
  std::string unknown = '\x0a' + varint(type_meta.size()) + type_meta;
  unknown += '\x12' + varint(object.str().size()) + object.str();
  unknown += std::string("\x1a\x00\x22\x00", 4);
  return std::string("k8s\0", 4) + unknown;
}

// ObjectMeta with every non-pointer field, as gogo writes it for a freshly built object.
Msg object_meta(const TypeDef* meta, std::string_view name) {
  Msg m(meta);
  m.str("name", name)
      .str("generateName", "")
      .str("namespace", "")
      .str("selfLink", "")
      .str("uid", "")
      .str("resourceVersion", "")
      .num("generation", 0)
      .time("creationTimestamp", kZeroTime);
  return m;
}

Result<json> decode(const std::string& body) {
  TypeResolver resolve = [](std::string_view g, std::string_view v, std::string_view k) {
    return builtin_kind_type(g, v, k);
  };
  return decode_protobuf_object(body, resolve);
}

TEST(BuiltinProtobuf, KubectlCreateConfigMap) {
  const TypeDef* cm = builtin_kind_type("", "v1", "ConfigMap");
  ASSERT_NE(cm, nullptr);
  Msg body(cm);
  body.msg("metadata", object_meta(body.sub("metadata"), "demo"))
      .entry("data", "a", "1")
      .entry("binaryData", "b", std::string("\x00\x01", 2));
  auto got = decode(envelope("v1", "ConfigMap", body));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, json::parse(R"({"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "demo", "generation": 0}, "data": {"a": "1"}, "binaryData": {"b": "AAE="}})"));
  EXPECT_TRUE(check_fields(*got, *cm, FieldValidation::kStrict, nullptr).ok());
}

TEST(BuiltinProtobuf, KubectlCreateSecretAndNamespace) {
  const TypeDef* secret = builtin_kind_type("", "v1", "Secret");
  ASSERT_NE(secret, nullptr);
  Msg s(secret);
  s.msg("metadata", object_meta(s.sub("metadata"), "creds"))
      .entry("data", "password", "hunter2")
      .str("type", "Opaque");
  auto got = decode(envelope("v1", "Secret", s));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ((*got)["data"]["password"], "aHVudGVyMg==");
  EXPECT_EQ((*got)["type"], "Opaque");
  EXPECT_TRUE(check_fields(*got, *secret, FieldValidation::kStrict, nullptr).ok());

  const TypeDef* ns = builtin_kind_type("", "v1", "Namespace");
  ASSERT_NE(ns, nullptr);
  Msg n(ns);
  n.msg("metadata", object_meta(n.sub("metadata"), "dev"))
      .msg("spec", Msg(n.sub("spec")))
      .msg("status", Msg(n.sub("status")).str("phase", ""));
  got = decode(envelope("v1", "Namespace", n));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, json::parse(R"({"apiVersion": "v1", "kind": "Namespace",
      "metadata": {"name": "dev", "generation": 0}, "spec": {}, "status": {}})"));
  EXPECT_TRUE(check_fields(*got, *ns, FieldValidation::kStrict, nullptr).ok());
}

TEST(BuiltinProtobuf, KubectlCreateDeployment) {
  // kubectl create deployment web --image=nginx --replicas=0 --port=80
  const TypeDef* dep = builtin_kind_type("apps", "v1", "Deployment");
  ASSERT_NE(dep, nullptr);
  Msg d(dep);
  Msg spec(d.sub("spec"));
  Msg tmpl(spec.sub("template"));
  Msg pod(tmpl.sub("spec"));
  Msg container(builtin_type("io.k8s.api.core.v1.Container"));
  container.str("name", "nginx")
      .str("image", "nginx")
      .msg("ports", Msg(builtin_type("io.k8s.api.core.v1.ContainerPort"))
                        .str("name", "")
                        .num("hostPort", 0)
                        .num("containerPort", 80)
                        .str("protocol", "")
                        .str("hostIP", ""))
      .msg("resources", Msg(builtin_type("io.k8s.api.core.v1.ResourceRequirements")))
      .str("terminationMessagePath", "")
      .str("imagePullPolicy", "")
      .num("stdin", 0)
      .num("tty", 0);
  pod.msg("containers", container)
      .str("restartPolicy", "")
      .str("dnsPolicy", "")
      .num("hostNetwork", 0);
  tmpl.msg("metadata", object_meta(tmpl.sub("metadata"), "").entry("labels", "app", "web"))
      .msg("spec", pod);
  spec.num("replicas", 0)
      .msg("selector", Msg(spec.sub("selector")).entry("matchLabels", "app", "web"))
      .msg("template", tmpl)
      .msg("strategy", Msg(spec.sub("strategy")).str("type", ""))
      .num("minReadySeconds", 0)
      .num("paused", 0);
  d.msg("metadata", object_meta(d.sub("metadata"), "web").entry("labels", "app", "web"))
      .msg("spec", spec)
      .msg("status", Msg(d.sub("status")).num("observedGeneration", 0).num("replicas", 0));
  auto got = decode(envelope("apps/v1", "Deployment", d));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "generation": 0, "labels": {"app": "web"}},
    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"generation": 0, "labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                   "ports": [{"hostPort": 0, "containerPort": 80}],
                                                   "resources": {}}]}},
             "strategy": {}, "minReadySeconds": 0},
    "status": {"observedGeneration": 0, "replicas": 0}})"));
  EXPECT_TRUE(check_fields(*got, *dep, FieldValidation::kStrict, nullptr).ok());
}

TEST(BuiltinProtobuf, KindsOutsideTheRegistryResolveThroughTheSchema) {
  Registry empty;
  const TypeDef* options = builtin_kind_type("", "v1", "DeleteOptions");
  ASSERT_NE(options, nullptr);
  Msg m(options);
  m.num("gracePeriodSeconds", 30).str("propagationPolicy", "Background");
  auto got = decode_protobuf_object(envelope("v1", "DeleteOptions", m), empty);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, json::parse(R"({"apiVersion": "v1", "kind": "DeleteOptions",
      "gracePeriodSeconds": 30, "propagationPolicy": "Background"})"));
  EXPECT_FALSE(decode_protobuf_object(envelope("v1", "NoSuchKind", m), empty).ok());
}

TEST(BuiltinProtobuf, ListWrappersDecodeAsBareLists) {
  // Find any built-in field that is a Go named slice and check its shape round-trips.
  const FieldDef* wrapped = nullptr;
  const TypeDef* owner = nullptr;
  for (const BuiltinKind& k : builtin_kinds()) {
    std::vector<const TypeDef*> stack = {k.type};
    std::set<const TypeDef*> seen;
    while (!stack.empty() && wrapped == nullptr) {
      const TypeDef* t = stack.back();
      stack.pop_back();
      if (!seen.insert(t).second) continue;
      for (const FieldDef& f : t->fields) {
        if (f.list_wrapper && f.shape == Shape::kList && f.kind == ValueKind::kString &&
            f.number > 0) {
          wrapped = &f;
          owner = t;
          break;
        }
        if (f.type != nullptr) stack.push_back(f.type);
      }
    }
    if (wrapped != nullptr) break;
  }
  if (wrapped == nullptr) GTEST_SKIP() << "no list wrapper in the built-in schema yet";
  std::string items = std::string(
      "\x0a\x01"
      "a\x0a\x01"
      "b",
      6);
  std::string body =
      varint((static_cast<uint64_t>(wrapped->number) << 3) | 2) + varint(items.size()) + items;
  auto got = decode_protobuf_message(body, *owner);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ((*got)[wrapped->name], json({"a", "b"}));
}

#else

TEST(BuiltinProtobuf, NeedsTheBuiltinSchema) { GTEST_SKIP() << "built-in schema not linked"; }

#endif

}  // namespace
}  // namespace skiff::api
