// Hand-built TypeDefs for the patch tests: a slice of apps/v1 Deployment and core/v1 Pod with
// the patch markers Kubernetes declares on them, plus upstream's strategic-merge test type.
// Header-only so every test file of unit_api_patch can use it.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "api/schema.h"

namespace skiff::api::testing {

inline FieldDef field(std::string name, ValueKind kind, Shape shape = Shape::kScalar,
                      const TypeDef* type = nullptr) {
  FieldDef f;
  f.name = std::move(name);
  f.kind = kind;
  f.shape = shape;
  f.type = type;
  return f;
}

inline FieldDef object_field(std::string name, const TypeDef* type) {
  return field(std::move(name), ValueKind::kObject, Shape::kScalar, type);
}

// patchStrategy=merge, patchMergeKey=<key>, listType=map, listMapKey=<keys> (or none).
inline FieldDef keyed_list(std::string name, const TypeDef* type, std::string merge_key,
                           std::vector<std::string> map_keys, std::string strategy = "merge") {
  FieldDef f = field(std::move(name), ValueKind::kObject, Shape::kList, type);
  f.patch_strategy = std::move(strategy);
  f.patch_merge_key = std::move(merge_key);
  if (!map_keys.empty()) {
    f.list_type = "map";
    f.list_map_keys = std::move(map_keys);
  }
  return f;
}

class TestSchema {
 public:
  TestSchema() {
    TypeDef* meta = add("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
    TypeDef* selector = add("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector");
    TypeDef* deployment = add("io.k8s.api.apps.v1.Deployment");
    TypeDef* deployment_spec = add("io.k8s.api.apps.v1.DeploymentSpec");
    TypeDef* deployment_status = add("io.k8s.api.apps.v1.DeploymentStatus");
    TypeDef* strategy = add("io.k8s.api.apps.v1.DeploymentStrategy");
    TypeDef* rolling = add("io.k8s.api.apps.v1.RollingUpdateDeployment");
    TypeDef* pod = add("io.k8s.api.core.v1.Pod");
    TypeDef* template_spec = add("io.k8s.api.core.v1.PodTemplateSpec");
    TypeDef* pod_spec = add("io.k8s.api.core.v1.PodSpec");
    TypeDef* container = add("io.k8s.api.core.v1.Container");
    TypeDef* port = add("io.k8s.api.core.v1.ContainerPort");
    TypeDef* env = add("io.k8s.api.core.v1.EnvVar");
    TypeDef* resources = add("io.k8s.api.core.v1.ResourceRequirements");
    TypeDef* volume = add("io.k8s.api.core.v1.Volume");
    TypeDef* volume_source = add("io.k8s.api.core.v1.VolumeSource");
    TypeDef* config_map_source = add("io.k8s.api.core.v1.ConfigMapVolumeSource");
    TypeDef* empty_dir = add("io.k8s.api.core.v1.EmptyDirVolumeSource");
    TypeDef* toleration = add("io.k8s.api.core.v1.Toleration");
    TypeDef* reference = add("io.k8s.api.core.v1.LocalObjectReference");
    TypeDef* merge_item = add("mergeItem");
    TypeDef* retain_keys_map = add("retainKeysMap");

    FieldDef finalizers = field("finalizers", ValueKind::kString, Shape::kList);
    finalizers.patch_strategy = "merge";
    finalizers.list_type = "set";
    FieldDef managed_fields = field("managedFields", ValueKind::kAny, Shape::kList);
    managed_fields.list_type = "atomic";
    meta->fields = {field("name", ValueKind::kString),
                    field("namespace", ValueKind::kString),
                    field("uid", ValueKind::kString),
                    field("resourceVersion", ValueKind::kString),
                    field("generation", ValueKind::kInt64),
                    field("creationTimestamp", ValueKind::kTime),
                    field("labels", ValueKind::kString, Shape::kMap),
                    field("annotations", ValueKind::kString, Shape::kMap),
                    finalizers,
                    managed_fields};
    selector->fields = {field("matchLabels", ValueKind::kString, Shape::kMap)};

    deployment->fields = {field("apiVersion", ValueKind::kString),
                          field("kind", ValueKind::kString), object_field("metadata", meta),
                          object_field("spec", deployment_spec),
                          object_field("status", deployment_status)};
    FieldDef strategy_field = object_field("strategy", strategy);
    strategy_field.patch_strategy = "retainKeys";
    deployment_spec->fields = {field("replicas", ValueKind::kInt32),
                               object_field("selector", selector),
                               object_field("template", template_spec), strategy_field,
                               field("minReadySeconds", ValueKind::kInt32)};
    deployment_status->fields = {field("replicas", ValueKind::kInt32),
                                 field("observedGeneration", ValueKind::kInt64)};
    strategy->fields = {field("type", ValueKind::kString), object_field("rollingUpdate", rolling)};
    rolling->fields = {field("maxSurge", ValueKind::kIntOrString),
                       field("maxUnavailable", ValueKind::kIntOrString)};

    pod->fields = {field("apiVersion", ValueKind::kString), field("kind", ValueKind::kString),
                   object_field("metadata", meta), object_field("spec", pod_spec)};
    template_spec->fields = {object_field("metadata", meta), object_field("spec", pod_spec)};
    pod_spec->fields = {keyed_list("containers", container, "name", {"name"}),
                        keyed_list("initContainers", container, "name", {"name"}),
                        keyed_list("volumes", volume, "name", {"name"}, "merge,retainKeys"),
                        field("tolerations", ValueKind::kObject, Shape::kList, toleration),
                        keyed_list("imagePullSecrets", reference, "name", {}),
                        field("nodeSelector", ValueKind::kString, Shape::kMap),
                        field("serviceAccountName", ValueKind::kString)};
    container->fields = {field("name", ValueKind::kString),
                         field("image", ValueKind::kString),
                         field("imagePullPolicy", ValueKind::kString),
                         field("args", ValueKind::kString, Shape::kList),
                         keyed_list("ports", port, "containerPort", {"containerPort", "protocol"}),
                         keyed_list("env", env, "name", {"name"}),
                         object_field("resources", resources)};
    port->fields = {field("containerPort", ValueKind::kInt32),
                    field("protocol", ValueKind::kString), field("name", ValueKind::kString)};
    env->fields = {field("name", ValueKind::kString), field("value", ValueKind::kString)};
    resources->fields = {field("limits", ValueKind::kQuantity, Shape::kMap),
                         field("requests", ValueKind::kQuantity, Shape::kMap)};
    FieldDef inline_source = object_field("", volume_source);
    inline_source.inline_fields = true;
    volume->fields = {field("name", ValueKind::kString), inline_source};
    volume_source->fields = {object_field("configMap", config_map_source),
                             object_field("emptyDir", empty_dir)};
    config_map_source->fields = {field("name", ValueKind::kString)};
    empty_dir->fields = {field("medium", ValueKind::kString)};
    toleration->fields = {field("key", ValueKind::kString), field("operator", ValueKind::kString),
                          field("value", ValueKind::kString), field("effect", ValueKind::kString)};
    reference->fields = {field("name", ValueKind::kString)};

    // Upstream's strategicpatch test type (patch_test.go mergeItem), reduced.
    FieldDef merging_int_list = field("mergingIntList", ValueKind::kInt64, Shape::kList);
    merging_int_list.patch_strategy = "merge";
    FieldDef retain_map = object_field("retainKeysMap", retain_keys_map);
    retain_map.patch_strategy = "retainKeys";
    merge_item->fields = {field("name", ValueKind::kString),
                          field("value", ValueKind::kString),
                          field("other", ValueKind::kString),
                          keyed_list("mergingList", merge_item, "name", {}),
                          field("nonMergingList", ValueKind::kObject, Shape::kList, merge_item),
                          merging_int_list,
                          field("nonMergingIntList", ValueKind::kInt64, Shape::kList),
                          field("simpleMap", ValueKind::kString, Shape::kMap),
                          retain_map};
    retain_keys_map->fields = {field("name", ValueKind::kString),
                               field("value", ValueKind::kString)};

    for (const auto& t : schema_.types()) t->finalize();
    deployment_ = deployment;
    pod_ = pod;
    merge_item_ = merge_item;
  }

  const TypeDef* deployment() const { return deployment_; }
  const TypeDef* pod() const { return pod_; }
  const TypeDef* merge_item() const { return merge_item_; }

 private:
  TypeDef* add(std::string name) {
    auto t = std::make_unique<TypeDef>();
    t->name = std::move(name);
    return schema_.add(std::move(t));
  }

  Schema schema_;
  const TypeDef* deployment_ = nullptr;
  const TypeDef* pod_ = nullptr;
  const TypeDef* merge_item_ = nullptr;
};

inline const TestSchema& test_schema() {
  static const TestSchema schema;
  return schema;
}

}  // namespace skiff::api::testing
