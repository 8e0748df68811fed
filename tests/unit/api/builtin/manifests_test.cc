// Everyday manifests of every built-in kind pass defaulting and validation, on create and as an
// unchanged update: validation must never stand in the way of what Kubernetes accepts.
#include <gtest/gtest.h>

#include "test_util.h"

namespace skiff::api {
namespace {

using nlohmann::json;
using testing::defaulted;
using testing::validate;

struct Manifest {
  std::string group;
  std::string resource;
  const char* text;
};

const Manifest kManifests[] = {
    {"", "namespaces", R"({"metadata": {"name": "dev"}})"},
    {"", "pods", R"({"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
      "spec": {"initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
               "containers": [{"name": "web", "image": "nginx:1.27",
                               "ports": [{"name": "http", "containerPort": 80}],
                               "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                               "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                               "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                               "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}}}],
               "volumes": [{"name": "data", "emptyDir": {}}],
               "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                "effect": "NoExecute", "tolerationSeconds": 300}],
               "nodeSelector": {"kubernetes.io/os": "linux"}}})"},
    {"", "services", R"({"metadata": {"name": "web", "namespace": "default"},
      "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                                                      {"name": "https", "port": 443}]}})"},
    {"", "services", R"({"metadata": {"name": "np", "namespace": "default"},
      "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "nodePort": 30080}]}})"},
    {"", "services", R"({"metadata": {"name": "db", "namespace": "default"},
      "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}})"},
    {"", "services", R"({"metadata": {"name": "ext", "namespace": "default"},
      "spec": {"type": "ExternalName", "externalName": "db.example.com."}})"},
    {"", "configmaps",
     R"({"metadata": {"name": "cfg", "namespace": "default"}, "data": {"a.conf": "x"},
      "binaryData": {"b.bin": "AAE="}})"},
    {"", "secrets",
     R"({"metadata": {"name": "tls", "namespace": "default"}, "type": "kubernetes.io/tls",
      "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}})"},
    {"", "secrets",
     R"({"metadata": {"name": "pw", "namespace": "default"}, "stringData": {"password": "x"}})"},
    {"", "serviceaccounts", R"({"metadata": {"name": "default", "namespace": "default"}})"},
    {"", "nodes",
     R"({"metadata": {"name": "node-a", "labels": {"kubernetes.io/hostname": "node-a"}},
      "spec": {"podCIDR": "10.42.0.0/24", "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]},
      "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}})"},
    {"", "events", R"({"metadata": {"name": "web.17c3", "namespace": "default"},
      "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web"},
      "reason": "Scheduled", "message": "ok", "type": "Normal", "count": 1})"},
    {"", "endpoints", R"({"metadata": {"name": "web", "namespace": "default"},
      "subsets": [{"addresses": [{"ip": "10.42.0.5"}], "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}]})"},
    {"", "persistentvolumes", R"({"metadata": {"name": "pv-1"},
      "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/srv/pv-1"},
               "storageClassName": "local-path"}})"},
    {"", "persistentvolumeclaims", R"({"metadata": {"name": "data", "namespace": "default"},
      "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
               "storageClassName": "local-path"}})"},
    {"", "limitranges", R"({"metadata": {"name": "lr", "namespace": "default"},
      "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}}]}})"},
    {"", "resourcequotas", R"({"metadata": {"name": "rq", "namespace": "default"},
      "spec": {"hard": {"pods": "10", "requests.cpu": "4"}}})"},
    {"", "bindings", R"({"metadata": {"name": "web", "namespace": "default"},
      "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}})"},
    {"apps", "deployments", R"({"metadata": {"name": "web", "namespace": "default"},
      "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
               "template": {"metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})"},
    {"apps", "replicasets", R"({"metadata": {"name": "web-5d4f", "namespace": "default"},
      "spec": {"replicas": 2, "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
               "template": {"metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})"},
    {"apps", "daemonsets", R"({"metadata": {"name": "agent", "namespace": "kube-system"},
      "spec": {"selector": {"matchLabels": {"app": "agent"}},
               "template": {"metadata": {"labels": {"app": "agent"}},
                            "spec": {"containers": [{"name": "agent", "image": "busybox"}]}}}})"},
    {"apps", "statefulsets", R"({"metadata": {"name": "db", "namespace": "default"},
      "spec": {"serviceName": "db", "replicas": 3, "selector": {"matchLabels": {"app": "db"}},
               "template": {"metadata": {"labels": {"app": "db"}},
                            "spec": {"containers": [{"name": "db", "image": "postgres"}]}},
               "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})"},
    {"apps", "controllerrevisions", R"({"metadata": {"name": "db-7c9", "namespace": "default"},
      "data": {"spec": {}}, "revision": 1})"},
    {"batch", "jobs", R"({"metadata": {"name": "pi", "namespace": "default", "uid": "3f1e"},
      "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}}})"},
    {"batch", "jobs", R"({"metadata": {"name": "indexed", "namespace": "default", "uid": "3f1f"},
      "spec": {"completionMode": "Indexed", "completions": 3, "parallelism": 3,
               "template": {"spec": {"containers": [{"name": "w", "image": "busybox"}], "restartPolicy": "OnFailure"}}}})"},
    {"batch", "cronjobs", R"({"metadata": {"name": "hello", "namespace": "default"},
      "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC",
               "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}],
                                                              "restartPolicy": "OnFailure"}}}}}})"},
    {"coordination.k8s.io", "leases",
     R"({"metadata": {"name": "node-a", "namespace": "kube-node-lease"},
      "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 40, "renewTime": "2024-05-01T12:00:00.000000Z"}})"},
    {"discovery.k8s.io", "endpointslices",
     R"({"metadata": {"name": "web-abc", "namespace": "default"},
      "addressType": "IPv4", "endpoints": [{"addresses": ["10.42.0.5"], "conditions": {"ready": true}}],
      "ports": [{"name": "http", "port": 80}]})"},
    {"rbac.authorization.k8s.io", "roles",
     R"({"metadata": {"name": "reader", "namespace": "default"},
      "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]})"},
    {"rbac.authorization.k8s.io", "clusterroles", R"({"metadata": {"name": "system:metrics"},
      "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]})"},
    {"rbac.authorization.k8s.io", "clusterroles", R"({"metadata": {"name": "aggregate"},
      "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate": "true"}}]}})"},
    {"rbac.authorization.k8s.io", "rolebindings",
     R"({"metadata": {"name": "read", "namespace": "default"},
      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
      "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}]})"},
    {"rbac.authorization.k8s.io", "clusterrolebindings", R"({"metadata": {"name": "admins"},
      "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
      "subjects": [{"kind": "Group", "name": "system:masters"}, {"kind": "ServiceAccount", "name": "ci", "namespace": "ci"}]})"},
    {"authorization.k8s.io", "subjectaccessreviews", R"({"spec": {"user": "alice",
      "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "default"}}})"},
    {"authorization.k8s.io", "selfsubjectrulesreviews", R"({"spec": {"namespace": "default"}})"},
    {"authentication.k8s.io", "tokenreviews", R"({"spec": {"token": "abc"}})"},
    {"authentication.k8s.io", "selfsubjectreviews", R"({})"},
    {"autoscaling", "horizontalpodautoscalers",
     R"({"metadata": {"name": "web", "namespace": "default"},
      "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
               "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70}})"},
    {"policy", "poddisruptionbudgets", R"({"metadata": {"name": "web", "namespace": "default"},
      "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}})"},
    {"networking.k8s.io", "ingresses", R"({"metadata": {"name": "web", "namespace": "default"},
      "spec": {"ingressClassName": "traefik", "tls": [{"hosts": ["web.example.com"], "secretName": "tls"}],
               "rules": [{"host": "web.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})"},
    {"networking.k8s.io", "ingressclasses", R"({"metadata": {"name": "traefik"},
      "spec": {"controller": "traefik.io/ingress-controller"}})"},
    {"networking.k8s.io", "networkpolicies",
     R"({"metadata": {"name": "deny", "namespace": "default"},
      "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                                               "ports": [{"port": 80}]}]}})"},
    {"storage.k8s.io", "storageclasses", R"({"metadata": {"name": "local-path",
      "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
      "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"})"},
    {"apiextensions.k8s.io", "customresourcedefinitions",
     R"({"metadata": {"name": "widgets.example.com"},
      "spec": {"group": "example.com", "scope": "Namespaced",
               "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
               "versions": [{"name": "v1", "served": true, "storage": true,
                             "schema": {"openAPIV3Schema": {"type": "object"}}}]}})"},
};

TEST(BuiltinManifests, EverydayManifestsAreValid) {
  for (const Manifest& m : kManifests) {
    json obj = defaulted(m.group, m.resource, json::parse(m.text));
    SCOPED_TRACE(m.group + "/" + m.resource + " " +
                 obj.value("metadata", json::object()).value("name", ""));
    Status created = validate(m.group, m.resource, obj);
    EXPECT_TRUE(created.ok()) << created.to_string();
    json stored = obj;
    stored["metadata"]["resourceVersion"] = "7";
    json again = defaulted(m.group, m.resource, stored);
    EXPECT_EQ(again, stored) << "defaulting is not idempotent";
    Status updated = validate(m.group, m.resource, again, &stored);
    EXPECT_TRUE(updated.ok()) << updated.to_string();
  }
}

TEST(BuiltinManifests, NamespaceFinalizersAreDefaultedOnlyOnCreate) {
  json ns = defaulted("", "namespaces", {{"metadata", {{"name", "dev"}}}});
  EXPECT_EQ(ns["spec"]["finalizers"], json::array({"kubernetes"}));
  // The namespace controller finalizes by writing a spec without the finalizer.
  json finalized = {{"metadata", {{"name", "dev"}, {"resourceVersion", "9"}}},
                    {"spec", json::object()}};
  EXPECT_FALSE(defaulted("", "namespaces", finalized)["spec"].contains("finalizers"));
}

}  // namespace
}  // namespace skiff::api
