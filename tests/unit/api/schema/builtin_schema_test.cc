#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/schema.h"
#include "api/schema/builtin.h"

namespace skiff::api {
namespace {

// The first test to run parses the schema; it reports how long that took.
class BuiltinSchemaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto start = std::chrono::steady_clock::now();
    const Schema& s = builtin_schema();
    auto elapsed = std::chrono::steady_clock::now() - start;
    size_t fields = 0;
    for (const auto& t : s.types()) fields += t->fields.size();
    std::printf("builtin schema: %zu types, %zu fields, %zu kinds, parsed in %.2f ms\n",
                s.types().size(), fields, builtin_kinds().size(),
                std::chrono::duration<double, std::milli>(elapsed).count());
  }

  static const TypeDef& type(std::string_view name) {
    const TypeDef* t = builtin_type(name);
    EXPECT_NE(t, nullptr) << name;
    static const TypeDef kEmpty;
    return t ? *t : kEmpty;
  }

  static const FieldDef& field(const TypeDef& t, std::string_view name) {
    const FieldDef* f = t.field(name);
    EXPECT_NE(f, nullptr) << t.name << "." << name;
    static const FieldDef kEmpty;
    return f ? *f : kEmpty;
  }
};

TEST_F(BuiltinSchemaTest, ParsesAllDataFiles) {
  EXPECT_GT(builtin_schema().types().size(), 400u);
  EXPECT_NE(builtin_type("io.k8s.api.core.v1.PodSpec"), nullptr);
  EXPECT_NE(builtin_type("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"), nullptr);
  EXPECT_NE(builtin_type("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
                         "CustomResourceDefinition"),
            nullptr);
  EXPECT_EQ(builtin_type("io.k8s.api.core.v1.NoSuchType"), nullptr);
}

TEST_F(BuiltinSchemaTest, PodContainersMergeByName) {
  const TypeDef* pod = builtin_kind_type("", "v1", "Pod");
  ASSERT_NE(pod, nullptr);
  const FieldDef& spec = field(*pod, "spec");
  ASSERT_EQ(spec.kind, ValueKind::kObject);
  ASSERT_NE(spec.type, nullptr);
  EXPECT_EQ(spec.type->name, "io.k8s.api.core.v1.PodSpec");
  const FieldDef& containers = field(*spec.type, "containers");
  EXPECT_EQ(containers.shape, Shape::kList);
  EXPECT_EQ(containers.kind, ValueKind::kObject);
  ASSERT_NE(containers.type, nullptr);
  EXPECT_EQ(containers.type->name, "io.k8s.api.core.v1.Container");
  EXPECT_EQ(containers.patch_merge_key, "name");
  EXPECT_EQ(containers.patch_strategy, "merge");
  EXPECT_EQ(containers.list_type, "map");
  EXPECT_EQ(containers.list_map_keys, std::vector<std::string>{"name"});
  EXPECT_EQ(containers.number, 2);
  EXPECT_FALSE(containers.optional);  // no +optional: Kubernetes lists it as required

  const FieldDef& volumes = field(*spec.type, "volumes");
  EXPECT_EQ(volumes.patch_strategy, "merge,retainKeys");
}

TEST_F(BuiltinSchemaTest, ContainerPortsMergeByContainerPort) {
  const FieldDef& ports = field(type("io.k8s.api.core.v1.Container"), "ports");
  EXPECT_EQ(ports.patch_merge_key, "containerPort");
  EXPECT_EQ(ports.patch_strategy, "merge");
  EXPECT_EQ(ports.list_type, "map");
  EXPECT_EQ(ports.list_map_keys, (std::vector<std::string>{"containerPort", "protocol"}));
}

TEST_F(BuiltinSchemaTest, VolumeExposesInlineVolumeSourceFields) {
  const TypeDef& volume = type("io.k8s.api.core.v1.Volume");
  const FieldDef* config_map = volume.field("configMap");
  ASSERT_NE(config_map, nullptr);
  ASSERT_NE(config_map->type, nullptr);
  EXPECT_EQ(config_map->type->name, "io.k8s.api.core.v1.ConfigMapVolumeSource");
  ASSERT_NE(volume.field("emptyDir"), nullptr);
  EXPECT_EQ(volume.field("volumeSource"), nullptr);  // not a JSON name
  const FieldDef* source = volume.field_by_number(2);
  ASSERT_NE(source, nullptr);
  EXPECT_TRUE(source->inline_fields);
  EXPECT_EQ(source->type->name, "io.k8s.api.core.v1.VolumeSource");
  // ConfigMapVolumeSource itself inlines LocalObjectReference: "name" is one of its fields.
  EXPECT_NE(config_map->type->field("name"), nullptr);
}

TEST_F(BuiltinSchemaTest, ProbeExposesInlineHandlerFields) {
  const TypeDef& probe = type("io.k8s.api.core.v1.Probe");
  EXPECT_NE(probe.field("httpGet"), nullptr);
  EXPECT_NE(probe.field("exec"), nullptr);
  EXPECT_NE(probe.field("tcpSocket"), nullptr);
  EXPECT_NE(probe.field("grpc"), nullptr);
  EXPECT_EQ(field(probe, "periodSeconds").kind, ValueKind::kInt32);
  EXPECT_EQ(field(type("io.k8s.api.core.v1.HTTPGetAction"), "port").kind,
            ValueKind::kIntOrString);
}

TEST_F(BuiltinSchemaTest, OtherInlineStructsAreFlattened) {
  EXPECT_NE(type("io.k8s.api.core.v1.PersistentVolumeSpec").field("hostPath"), nullptr);
  EXPECT_NE(type("io.k8s.api.core.v1.SecretKeySelector").field("name"), nullptr);
  EXPECT_NE(type("io.k8s.api.core.v1.EphemeralContainer").field("image"), nullptr);
  EXPECT_NE(type("io.k8s.api.networking.v1.IngressRule").field("http"), nullptr);
}

TEST_F(BuiltinSchemaTest, SecretAndConfigMapData) {
  const FieldDef& secret_data = field(type("io.k8s.api.core.v1.Secret"), "data");
  EXPECT_EQ(secret_data.shape, Shape::kMap);
  EXPECT_EQ(secret_data.kind, ValueKind::kBytes);
  const FieldDef& cm_data = field(type("io.k8s.api.core.v1.ConfigMap"), "data");
  EXPECT_EQ(cm_data.shape, Shape::kMap);
  EXPECT_EQ(cm_data.kind, ValueKind::kString);
  EXPECT_EQ(field(type("io.k8s.api.core.v1.ConfigMap"), "binaryData").kind, ValueKind::kBytes);
}

TEST_F(BuiltinSchemaTest, DeploymentReplicas) {
  const TypeDef* deployment = builtin_kind_type("apps", "v1", "Deployment");
  ASSERT_NE(deployment, nullptr);
  EXPECT_FALSE(deployment->description.empty());
  EXPECT_EQ(deployment->description,
            "Deployment enables declarative updates for Pods and ReplicaSets.");
  const FieldDef& spec = field(*deployment, "spec");
  ASSERT_NE(spec.type, nullptr);
  const FieldDef& replicas = field(*spec.type, "replicas");
  EXPECT_EQ(replicas.kind, ValueKind::kInt32);
  EXPECT_EQ(replicas.shape, Shape::kScalar);
  EXPECT_EQ(replicas.number, 1);
  EXPECT_TRUE(replicas.optional);
  EXPECT_EQ(replicas.description,
            "Number of desired pods. This is a pointer to distinguish between explicit zero and "
            "not specified. Defaults to 1.");
  EXPECT_FALSE(field(*spec.type, "selector").optional);
  EXPECT_EQ(field(*spec.type, "strategy").patch_strategy, "retainKeys");
}

TEST_F(BuiltinSchemaTest, ObjectMetaWellKnownTypes) {
  const TypeDef& meta = type("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
  const FieldDef& created = field(meta, "creationTimestamp");
  EXPECT_EQ(created.kind, ValueKind::kTime);
  EXPECT_EQ(created.type, nullptr);
  EXPECT_EQ(created.number, 8);
  const FieldDef& managed = field(meta, "managedFields");
  EXPECT_EQ(managed.shape, Shape::kList);
  EXPECT_EQ(managed.list_type, "atomic");
  EXPECT_EQ(field(*managed.type, "fieldsV1").kind, ValueKind::kAny);
  EXPECT_EQ(field(meta, "labels").shape, Shape::kMap);
  EXPECT_EQ(field(meta, "ownerReferences").list_map_keys, std::vector<std::string>{"uid"});
  EXPECT_EQ(field(meta, "finalizers").list_type, "set");
  EXPECT_EQ(field(type("io.k8s.api.coordination.v1.LeaseSpec"), "renewTime").kind,
            ValueKind::kMicroTime);
  EXPECT_EQ(field(type("io.k8s.api.core.v1.ResourceRequirements"), "limits").kind,
            ValueKind::kQuantity);
  EXPECT_EQ(field(type("io.k8s.api.apps.v1.ControllerRevision"), "data").kind,
            ValueKind::kRawExtension);
}

TEST_F(BuiltinSchemaTest, ServicePortsListMapKeys) {
  const FieldDef& ports = field(type("io.k8s.api.core.v1.ServiceSpec"), "ports");
  EXPECT_EQ(ports.list_type, "map");
  EXPECT_EQ(ports.list_map_keys, (std::vector<std::string>{"port", "protocol"}));
  EXPECT_EQ(ports.patch_merge_key, "port");
}

TEST_F(BuiltinSchemaTest, KindsCarryApiVersionAndKind) {
  const TypeDef* pod = builtin_kind_type("", "v1", "Pod");
  ASSERT_NE(pod, nullptr);
  const FieldDef* kind = pod->field("kind");
  const FieldDef* api_version = pod->field("apiVersion");
  ASSERT_NE(kind, nullptr);
  ASSERT_NE(api_version, nullptr);
  EXPECT_EQ(kind->kind, ValueKind::kString);
  EXPECT_FALSE(api_version->description.empty());
  EXPECT_EQ(pod->fields.front().name, "typeMeta");
  EXPECT_EQ(pod->fields.front().number, 0);
  EXPECT_EQ(pod->field_by_number(1)->name, "metadata");
  // Templates embed no TypeMeta.
  EXPECT_EQ(type("io.k8s.api.core.v1.PodTemplateSpec").field("kind"), nullptr);
}

TEST_F(BuiltinSchemaTest, JsonNamesDifferingFromProtoNames) {
  EXPECT_NE(type("io.k8s.api.authentication.v1.BoundObjectReference").field("uid"), nullptr);
  EXPECT_EQ(type("io.k8s.api.authentication.v1.BoundObjectReference").field("uID"), nullptr);
  EXPECT_NE(type("io.k8s.api.networking.v1.IngressClassParametersReference").field("apiGroup"),
            nullptr);
  const TypeDef& props =
      type("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps");
  EXPECT_NE(props.field("$ref"), nullptr);
  EXPECT_NE(props.field("x-kubernetes-preserve-unknown-fields"), nullptr);
  EXPECT_EQ(field(props, "items").kind, ValueKind::kAny);
  EXPECT_EQ(field(props, "properties").shape, Shape::kMap);
  EXPECT_EQ(field(props, "properties").type, &props);
}

TEST_F(BuiltinSchemaTest, ListWrappers) {
  const FieldDef& verbs =
      field(type("io.k8s.apimachinery.pkg.apis.meta.v1.APIResource"), "verbs");
  EXPECT_TRUE(verbs.list_wrapper);
  EXPECT_EQ(verbs.shape, Shape::kList);
  EXPECT_EQ(verbs.kind, ValueKind::kString);
  EXPECT_EQ(verbs.number, 4);
  const FieldDef& extra =
      field(type("io.k8s.api.authorization.v1.SubjectAccessReviewSpec"), "extra");
  EXPECT_TRUE(extra.list_wrapper);
  EXPECT_EQ(extra.shape, Shape::kMap);
  EXPECT_EQ(extra.kind, ValueKind::kAny);
  EXPECT_TRUE(field(type("io.k8s.api.authentication.v1.UserInfo"), "extra").list_wrapper);
}

TEST_F(BuiltinSchemaTest, EveryObjectFieldResolves) {
  for (const auto& t : builtin_schema().types()) {
    for (const FieldDef& f : t->fields) {
      if (f.kind == ValueKind::kObject) {
        ASSERT_NE(f.type, nullptr) << t->name << "." << f.name;
        EXPECT_EQ(builtin_type(f.type->name), f.type) << t->name << "." << f.name;
      } else {
        EXPECT_EQ(f.type, nullptr) << t->name << "." << f.name;
      }
      EXPECT_FALSE(f.name.empty()) << t->name;
      if (f.inline_fields) {
        EXPECT_NE(f.type, nullptr) << t->name << "." << f.name;
      }
    }
  }
}

TEST_F(BuiltinSchemaTest, ProtobufNumbersAreUniquePerType) {
  for (const auto& t : builtin_schema().types()) {
    std::set<int> numbers;
    std::set<std::string> names;
    for (const FieldDef& f : t->fields) {
      if (f.number != 0) {
        EXPECT_TRUE(numbers.insert(f.number).second) << t->name << "." << f.name;
      }
      EXPECT_TRUE(names.insert(f.name).second) << t->name << "." << f.name;
    }
  }
}

TEST_F(BuiltinSchemaTest, DescriptionsHaveNoCommentSyntax) {
  for (const auto& t : builtin_schema().types()) {
    for (const FieldDef& f : t->fields) {
      EXPECT_EQ(f.description.find("// "), std::string_view::npos) << t->name << "." << f.name;
      EXPECT_EQ(f.description.find("\n+"), std::string_view::npos) << t->name << "." << f.name;
    }
  }
  // A "---" line ends the description; TODO lines are dropped.
  const TypeDef& condition = type("io.k8s.apimachinery.pkg.apis.meta.v1.Condition");
  EXPECT_EQ(condition.description,
            "Condition contains details for one aspect of the current state of this API "
            "Resource.");
  EXPECT_EQ(field(type("io.k8s.api.core.v1.AWSElasticBlockStoreVolumeSource"), "fsType")
                .description,
            "fsType is the filesystem type of the volume that you want to mount. Tip: Ensure "
            "that the filesystem type is supported by the host operating system. Examples: "
            "\"ext4\", \"xfs\", \"ntfs\". Implicitly inferred to be \"ext4\" if unspecified. "
            "More info: https://kubernetes.io/docs/concepts/storage/volumes#awselasticblockstore");
  // An empty comment line starts a paragraph.
  EXPECT_NE(field(type("io.k8s.api.core.v1.ContainerStatus"), "ready")
                .description.find("(see Started field).\n\nThe value is typically"),
            std::string_view::npos);
}

TEST_F(BuiltinSchemaTest, IssueKindsExist) {
  struct Kind {
    std::string group, version, kind;
    bool persisted;  // stored objects have metadata and a List kind; request kinds may not
  };
  const std::vector<Kind> kinds = {
      {"", "v1", "Namespace", true},
      {"", "v1", "Pod", true},
      {"", "v1", "Service", true},
      {"", "v1", "Endpoints", true},
      {"", "v1", "ConfigMap", true},
      {"", "v1", "Secret", true},
      {"", "v1", "ServiceAccount", true},
      {"", "v1", "Node", true},
      {"", "v1", "Event", true},
      {"", "v1", "PersistentVolume", true},
      {"", "v1", "PersistentVolumeClaim", true},
      {"apps", "v1", "Deployment", true},
      {"apps", "v1", "ReplicaSet", true},
      {"apps", "v1", "DaemonSet", true},
      {"apps", "v1", "StatefulSet", true},
      {"apps", "v1", "ControllerRevision", true},
      {"batch", "v1", "Job", true},
      {"batch", "v1", "CronJob", true},
      {"coordination.k8s.io", "v1", "Lease", true},
      {"discovery.k8s.io", "v1", "EndpointSlice", true},
      {"rbac.authorization.k8s.io", "v1", "Role", true},
      {"rbac.authorization.k8s.io", "v1", "ClusterRole", true},
      {"rbac.authorization.k8s.io", "v1", "RoleBinding", true},
      {"rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", true},
      {"autoscaling", "v1", "HorizontalPodAutoscaler", true},
      {"policy", "v1", "PodDisruptionBudget", true},
      {"networking.k8s.io", "v1", "Ingress", true},
      {"networking.k8s.io", "v1", "IngressClass", true},
      {"networking.k8s.io", "v1", "NetworkPolicy", true},
      {"storage.k8s.io", "v1", "StorageClass", true},
      {"apiextensions.k8s.io", "v1", "CustomResourceDefinition", true},
      {"authorization.k8s.io", "v1", "SelfSubjectAccessReview", false},
      {"authorization.k8s.io", "v1", "SelfSubjectRulesReview", false},
      {"authorization.k8s.io", "v1", "SubjectAccessReview", false},
      {"authentication.k8s.io", "v1", "TokenRequest", false},
      {"authentication.k8s.io", "v1", "TokenReview", false},
      {"autoscaling", "v1", "Scale", false},
      {"policy", "v1", "Eviction", false},
      {"meta.k8s.io", "v1", "DeleteOptions", false},
      {"meta.k8s.io", "v1", "Status", false},
      {"meta.k8s.io", "v1", "PartialObjectMetadata", false},
  };
  for (const Kind& k : kinds) {
    const TypeDef* t = builtin_kind_type(k.group, k.version, k.kind);
    ASSERT_NE(t, nullptr) << k.group << "/" << k.version << " " << k.kind;
    EXPECT_NE(t->field("kind"), nullptr) << k.kind;
    EXPECT_NE(t->field("apiVersion"), nullptr) << k.kind;
    EXPECT_FALSE(t->description.empty()) << k.kind;
    if (k.persisted) {
      EXPECT_NE(t->field("metadata"), nullptr) << k.kind;
      EXPECT_NE(builtin_kind_type(k.group, k.version, k.kind + "List"), nullptr) << k.kind;
    }
  }
}

TEST_F(BuiltinSchemaTest, MetaKindsResolveInEveryGroup) {
  const TypeDef* core_status = builtin_kind_type("", "v1", "Status");
  ASSERT_NE(core_status, nullptr);
  EXPECT_EQ(core_status->name, "io.k8s.apimachinery.pkg.apis.meta.v1.Status");
  EXPECT_EQ(builtin_kind_type("apps", "v1", "DeleteOptions"),
            builtin_kind_type("meta.k8s.io", "v1", "DeleteOptions"));
  EXPECT_EQ(builtin_kind_type("apps", "v1", "Pod"), nullptr);
  EXPECT_EQ(builtin_kind_type("", "v1", "PodSpec"), nullptr);  // not a kind
  EXPECT_EQ(builtin_kind_type("", "v2", "Pod"), nullptr);
}

TEST_F(BuiltinSchemaTest, ConcurrentCallersSeeOneSchema) {
  std::vector<std::thread> threads;
  std::vector<const Schema*> seen(8);
  for (size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&seen, i] { seen[i] = &builtin_schema(); });
  }
  for (auto& t : threads) t.join();
  for (const Schema* s : seen) EXPECT_EQ(s, &builtin_schema());
}

}  // namespace
}  // namespace skiff::api
