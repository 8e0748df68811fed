// Defaulting, compared with what a Kubernetes 1.32 API server returns for the same input
// (`kubectl ... --dry-run=server -o json`), leaving out the fields the server itself assigns
// (uid, resourceVersion, generation, creationTimestamp, managedFields).
#include <gtest/gtest.h>

#include "test_util.h"

namespace skiff::api {
namespace {

using nlohmann::json;
using testing::defaulted;

TEST(BuiltinDefaults, MinimalDeploymentMatchesKubernetes) {
  // The body `kubectl create deployment web --image=nginx` sends.
  json in = json::parse(R"({
    "kind": "Deployment", "apiVersion": "apps/v1",
    "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
    "spec": {
      "replicas": 1,
      "selector": {"matchLabels": {"app": "web"}},
      "template": {
        "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}
      },
      "strategy": {}
    },
    "status": {}
  })");
  json expected_spec = json::parse(R"({
    "replicas": 1,
    "selector": {"matchLabels": {"app": "web"}},
    "template": {
      "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
      "spec": {
        "containers": [{
          "name": "nginx", "image": "nginx", "resources": {},
          "terminationMessagePath": "/dev/termination-log",
          "terminationMessagePolicy": "File",
          "imagePullPolicy": "Always"
        }],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "securityContext": {},
        "schedulerName": "default-scheduler"
      }
    },
    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
    "revisionHistoryLimit": 10,
    "progressDeadlineSeconds": 600
  })");
  json out = defaulted("apps", "deployments", in);
  EXPECT_EQ(out["spec"], expected_spec) << out["spec"].dump(2);
  EXPECT_EQ(out["status"], json::object());
  EXPECT_EQ(out["metadata"]["labels"], (json{{"app", "web"}}));
}

TEST(BuiltinDefaults, DeploymentWithoutReplicasOrStrategyGetsThem) {
  json in = {{"metadata", {{"name", "web"}}},
             {"spec",
              {{"selector", {{"matchLabels", {{"app", "web"}}}}},
               {"template",
                {{"metadata", {{"labels", {{"app", "web"}}}}},
                 {"spec", {{"containers", {{{"name", "web"}, {"image", "nginx:1.27"}}}}}}}}}}};
  json out = defaulted("apps", "deployments", in);
  EXPECT_EQ(out["spec"]["replicas"], 1);
  EXPECT_EQ(out["spec"]["strategy"]["type"], "RollingUpdate");
  EXPECT_EQ(out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
  // A Recreate strategy gets no rollingUpdate.
  in["spec"]["strategy"] = {{"type", "Recreate"}};
  out = defaulted("apps", "deployments", in);
  EXPECT_EQ(out["spec"]["strategy"], (json{{"type", "Recreate"}}));
}

TEST(BuiltinDefaults, ImagePullPolicyFollowsTheTag) {
  auto policy = [](const std::string& image) {
    json p = {{"metadata", {{"name", "p"}}},
              {"spec", {{"containers", {{{"name", "c"}, {"image", image}}}}}}};
    return defaulted("", "pods", p)["spec"]["containers"][0]["imagePullPolicy"].get<std::string>();
  };
  EXPECT_EQ(policy("nginx"), "Always");
  EXPECT_EQ(policy("nginx:latest"), "Always");
  EXPECT_EQ(policy("nginx:1.27"), "IfNotPresent");
  EXPECT_EQ(policy("localhost:5000/team/app"), "Always");
  EXPECT_EQ(policy("localhost:5000/team/app:v2"), "IfNotPresent");
  EXPECT_EQ(policy("nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            "IfNotPresent");
  EXPECT_EQ(policy("Nginx"), "IfNotPresent");  // not a valid reference
}

TEST(BuiltinDefaults, PodGetsPodOnlyDefaultsAndPriority) {
  json p = json::parse(R"({
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx"},
    "spec": {"containers": [{"name": "nginx", "image": "nginx",
                             "ports": [{"containerPort": 80}],
                             "resources": {"limits": {"cpu": "500m"}},
                             "readinessProbe": {"httpGet": {"port": 80}}}]}
  })");
  json out = defaulted("", "pods", p);
  const json& spec = out["spec"];
  EXPECT_EQ(spec["enableServiceLinks"], true);
  EXPECT_EQ(spec["priority"], 0);
  EXPECT_EQ(spec["preemptionPolicy"], "PreemptLowerPriority");
  EXPECT_EQ(spec["restartPolicy"], "Always");
  EXPECT_EQ(spec["dnsPolicy"], "ClusterFirst");
  EXPECT_EQ(spec["schedulerName"], "default-scheduler");
  EXPECT_EQ(spec["terminationGracePeriodSeconds"], 30);
  EXPECT_EQ(spec["securityContext"], json::object());
  const json& c = spec["containers"][0];
  EXPECT_EQ(c["ports"][0]["protocol"], "TCP");
  EXPECT_EQ(c["resources"]["requests"], (json{{"cpu", "500m"}}));
  EXPECT_EQ(c["readinessProbe"],
            json::parse(R"({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
      "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})"));
  EXPECT_EQ(out["status"], json::object());
}

TEST(BuiltinDefaults, PodTemplatesDoNotGetPodOnlyDefaults) {
  json d = {
      {"spec", {{"template", {{"spec", {{"containers", {{{"name", "c"}, {"image", "i"}}}}}}}}}}};
  json out = defaulted("apps", "deployments", d);
  EXPECT_FALSE(out["spec"]["template"]["spec"].contains("enableServiceLinks"));
  EXPECT_FALSE(out["spec"]["template"]["spec"].contains("priority"));
}

TEST(BuiltinDefaults, VolumesGetTheirDefaults) {
  json p = json::parse(R"({"metadata": {"name": "p"}, "spec": {
      "containers": [{"name": "c", "image": "i"}],
      "volumes": [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "cfg"}},
                  {"name": "host", "hostPath": {"path": "/data"}},
                  {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]}})");
  json v = defaulted("", "pods", p)["spec"]["volumes"];
  EXPECT_EQ(v[0], json::parse(R"({"name": "scratch", "emptyDir": {}})"));
  EXPECT_EQ(v[1]["configMap"]["defaultMode"], 420);
  EXPECT_EQ(v[2]["hostPath"]["type"], "");
  EXPECT_EQ(v[3]["projected"]["defaultMode"], 420);
  EXPECT_EQ(v[3]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"], 3600);
}

TEST(BuiltinDefaults, Service) {
  json svc = json::parse(R"({"metadata": {"name": "web"},
      "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}, {"name": "https", "port": 443, "targetPort": "https"}]}})");
  json out = defaulted("", "services", svc);
  const json& spec = out["spec"];
  EXPECT_EQ(spec["type"], "ClusterIP");
  EXPECT_EQ(spec["sessionAffinity"], "None");
  EXPECT_EQ(spec["ipFamilyPolicy"], "SingleStack");
  EXPECT_EQ(spec["ipFamilies"], json::array({"IPv4"}));
  EXPECT_EQ(spec["internalTrafficPolicy"], "Cluster");
  EXPECT_FALSE(spec.contains("externalTrafficPolicy"));
  EXPECT_EQ(spec["ports"][0], json::parse(R"({"port": 80, "protocol": "TCP", "targetPort": 80})"));
  EXPECT_EQ(spec["ports"][1]["targetPort"], "https");
  EXPECT_EQ(out["status"], json::parse(R"({"loadBalancer": {}})"));

  json lb = {{"metadata", {{"name", "lb"}}},
             {"spec", {{"type", "LoadBalancer"}, {"ports", {{{"port", 80}}}}}}};
  out = defaulted("", "services", lb);
  EXPECT_EQ(out["spec"]["externalTrafficPolicy"], "Cluster");
  EXPECT_EQ(out["spec"]["allocateLoadBalancerNodePorts"], true);

  json ext = {{"metadata", {{"name", "db"}}},
              {"spec", {{"type", "ExternalName"}, {"externalName", "db.example.com"}}}};
  out = defaulted("", "services", ext);
  EXPECT_FALSE(out["spec"].contains("ipFamilies"));
  EXPECT_FALSE(out["spec"].contains("internalTrafficPolicy"));
}

TEST(BuiltinDefaults, NamespaceSecretAndPersistentVolumeClaim) {
  json ns = defaulted("", "namespaces", {{"metadata", {{"name", "dev"}}}});
  EXPECT_EQ(ns["metadata"]["labels"], (json{{"kubernetes.io/metadata.name", "dev"}}));
  EXPECT_EQ(ns["spec"], (json{{"finalizers", {"kubernetes"}}}));
  EXPECT_EQ(ns["status"], (json{{"phase", "Active"}}));

  json secret = defaulted("", "secrets",
                          {{"metadata", {{"name", "s"}}},
                           {"data", {{"a", "eA=="}}},
                           {"stringData", {{"password", "hunter2"}, {"a", "y"}}}});
  EXPECT_EQ(secret["type"], "Opaque");
  EXPECT_FALSE(secret.contains("stringData"));
  EXPECT_EQ(secret["data"], (json{{"a", "eQ=="}, {"password", "aHVudGVyMg=="}}));

  json pvc = defaulted("", "persistentvolumeclaims",
                       {{"metadata", {{"name", "data"}}},
                        {"spec",
                         {{"accessModes", {"ReadWriteOnce"}},
                          {"resources", {{"requests", {{"storage", "1Gi"}}}}}}}});
  EXPECT_EQ(pvc["spec"]["volumeMode"], "Filesystem");
  EXPECT_EQ(pvc["status"]["phase"], "Pending");
}

TEST(BuiltinDefaults, DaemonSetAndStatefulSet) {
  json tmpl = {{"metadata", {{"labels", {{"app", "x"}}}}},
               {"spec", {{"containers", {{{"name", "c"}, {"image", "i"}}}}}}};
  json ds = defaulted("apps", "daemonsets", {{"spec", {{"template", tmpl}}}});
  EXPECT_EQ(
      ds["spec"]["updateStrategy"],
      json::parse(
          R"({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})"));
  EXPECT_EQ(ds["spec"]["revisionHistoryLimit"], 10);
  EXPECT_EQ(ds["status"]["numberReady"], 0);

  json sts = defaulted(
      "apps", "statefulsets",
      {{"spec",
        {{"template", tmpl},
         {"volumeClaimTemplates",
          {{{"metadata", {{"name", "data"}}}, {"spec", {{"accessModes", {"ReadWriteOnce"}}}}}}}}}});
  const json& spec = sts["spec"];
  EXPECT_EQ(spec["replicas"], 1);
  EXPECT_EQ(spec["podManagementPolicy"], "OrderedReady");
  EXPECT_EQ(spec["updateStrategy"],
            json::parse(R"({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})"));
  EXPECT_EQ(spec["persistentVolumeClaimRetentionPolicy"],
            json::parse(R"({"whenDeleted": "Retain", "whenScaled": "Retain"})"));
  EXPECT_EQ(spec["revisionHistoryLimit"], 10);
  EXPECT_EQ(spec["volumeClaimTemplates"][0]["spec"]["volumeMode"], "Filesystem");
  EXPECT_EQ(spec["volumeClaimTemplates"][0]["status"]["phase"], "Pending");
}

TEST(BuiltinDefaults, JobGetsDefaultsAndAGeneratedSelector) {
  json job = json::parse(R"({"metadata": {"name": "pi", "namespace": "default", "uid": "8c1f"},
      "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}],
                                     "restartPolicy": "Never"}}}})");
  json out = defaulted("batch", "jobs", job);
  const json& spec = out["spec"];
  EXPECT_EQ(spec["completions"], 1);
  EXPECT_EQ(spec["parallelism"], 1);
  EXPECT_EQ(spec["backoffLimit"], 6);
  EXPECT_EQ(spec["completionMode"], "NonIndexed");
  EXPECT_EQ(spec["suspend"], false);
  EXPECT_EQ(spec["manualSelector"], false);
  EXPECT_EQ(spec["podReplacementPolicy"], "TerminatingOrFailed");
  EXPECT_EQ(spec["selector"],
            json::parse(R"({"matchLabels": {"batch.kubernetes.io/controller-uid": "8c1f"}})"));
  json labels = json::parse(R"({"batch.kubernetes.io/controller-uid": "8c1f",
      "batch.kubernetes.io/job-name": "pi", "controller-uid": "8c1f", "job-name": "pi"})");
  EXPECT_EQ(spec["template"]["metadata"]["labels"], labels);
  EXPECT_EQ(out["metadata"]["labels"], labels);
  Status valid = testing::validate("batch", "jobs", out);
  EXPECT_TRUE(valid.ok()) << valid.to_string();
}

TEST(BuiltinDefaults, CronJob) {
  json cj = json::parse(R"({"metadata": {"name": "hello"},
      "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
          "containers": [{"name": "hello", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}}})");
  json out = defaulted("batch", "cronjobs", cj);
  const json& spec = out["spec"];
  EXPECT_EQ(spec["concurrencyPolicy"], "Allow");
  EXPECT_EQ(spec["suspend"], false);
  EXPECT_EQ(spec["successfulJobsHistoryLimit"], 3);
  EXPECT_EQ(spec["failedJobsHistoryLimit"], 1);
  EXPECT_TRUE(spec["jobTemplate"]["metadata"]["creationTimestamp"].is_null());
  EXPECT_EQ(spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
  // Job-level defaults are not applied inside a CronJob's job template.
  EXPECT_FALSE(spec["jobTemplate"]["spec"].contains("backoffLimit"));
}

TEST(BuiltinDefaults, RbacBindingsAndOtherGroups) {
  json rb = defaulted("rbac.authorization.k8s.io", "rolebindings",
                      json::parse(R"({"roleRef": {"kind": "Role", "name": "r"},
                          "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "sa"}]})"));
  EXPECT_EQ(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
  EXPECT_EQ(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
  EXPECT_EQ(rb["subjects"][1]["apiGroup"], "");

  json sc =
      defaulted("storage.k8s.io", "storageclasses", {{"provisioner", "rancher.io/local-path"}});
  EXPECT_EQ(sc["reclaimPolicy"], "Delete");
  EXPECT_EQ(sc["volumeBindingMode"], "Immediate");

  json np = defaulted("networking.k8s.io", "networkpolicies",
                      json::parse(R"({"spec": {"egress": [{"ports": [{"port": 53}]}]}})"));
  EXPECT_EQ(np["spec"]["policyTypes"], json::array({"Ingress", "Egress"}));
  EXPECT_EQ(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");

  json hpa = defaulted(
      "autoscaling", "horizontalpodautoscalers",
      json::parse(
          R"({"spec": {"maxReplicas": 5, "scaleTargetRef": {"kind": "Deployment", "name": "web"}}})"));
  EXPECT_EQ(hpa["spec"]["minReplicas"], 1);
  EXPECT_EQ(hpa["spec"]["targetCPUUtilizationPercentage"], 80);
}

}  // namespace
}  // namespace skiff::api
