// Validation, compared with the messages a Kubernetes 1.32 API server returns.
#include <gtest/gtest.h>

#include "test_util.h"

namespace skiff::api {
namespace {

using nlohmann::json;
using testing::defaulted;
using testing::validate;

const char* const kSubdomainMessage =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

// Defaults `obj` as the API server does before validating it.
Status create(const std::string& group, const std::string& resource, json obj) {
  return validate(group, resource, defaulted(group, resource, std::move(obj)));
}

Status update(const std::string& group, const std::string& resource, json obj, json old) {
  json o = defaulted(group, resource, std::move(old));
  return validate(group, resource, defaulted(group, resource, std::move(obj)), &o);
}

json deployment(const std::string& name, json selector_labels, json template_labels) {
  json d = {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", name}, {"namespace", "default"}, {"resourceVersion", "5"}}},
            {"spec",
             {{"template",
               {{"metadata", {{"labels", template_labels}}},
                {"spec", {{"containers", {{{"name", "web"}, {"image", "nginx"}}}}}}}}}}};
  if (!selector_labels.is_null()) d["spec"]["selector"] = {{"matchLabels", selector_labels}};
  return d;
}

json pod(json containers) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", "web"}, {"namespace", "default"}}},
          {"spec", {{"containers", containers}}}};
}

TEST(BuiltinValidation, ValidObjectsPass) {
  Status s = create("apps", "deployments", deployment("web", {{"app", "web"}}, {{"app", "web"}}));
  EXPECT_TRUE(s.ok()) << s.to_string();
  s = create("", "pods", pod({{{"name", "web"}, {"image", "nginx"}}}));
  EXPECT_TRUE(s.ok()) << s.to_string();
  s = create("", "configmaps",
             {{"metadata", {{"name", "cfg"}, {"namespace", "default"}}},
              {"data", {{"app.properties", "x=1"}}}});
  EXPECT_TRUE(s.ok()) << s.to_string();
}

TEST(BuiltinValidation, BadConfigMapNameIsInvalid) {
  Status s =
      create("", "configmaps", {{"metadata", {{"name", "Bad_Name"}, {"namespace", "default"}}}});
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_EQ(s.message(),
            std::string("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: "
                        "\"Bad_Name\": ") +
                kSubdomainMessage);
  ASSERT_EQ(s.causes().size(), 1u);
  EXPECT_EQ(s.causes()[0].reason, "FieldValueInvalid");
  EXPECT_EQ(s.causes()[0].field, "metadata.name");
  EXPECT_EQ(s.causes()[0].message,
            std::string("Invalid value: \"Bad_Name\": ") + kSubdomainMessage);
}

TEST(BuiltinValidation, MissingNameAndNamespace) {
  Status s = create("", "configmaps", {{"metadata", json::object()}});
  EXPECT_EQ(s.message(),
            "ConfigMap \"\" is invalid: [metadata.name: Required value: name or generateName is "
            "required, metadata.namespace: Required value]");
  // A generateName's trailing dash is fine.
  s = create(
      "", "configmaps",
      {{"metadata", {{"name", "web-x1"}, {"generateName", "web-"}, {"namespace", "default"}}}});
  EXPECT_TRUE(s.ok()) << s.to_string();
}

TEST(BuiltinValidation, ClusterScopedKindsRejectANamespace) {
  Status s = create("", "nodes", {{"metadata", {{"name", "n1"}, {"namespace", "default"}}}});
  EXPECT_EQ(s.message(),
            "Node \"n1\" is invalid: metadata.namespace: Forbidden: not allowed on this type");
}

TEST(BuiltinValidation, ServiceNamesAreDns1035Labels) {
  json svc = {{"metadata", {{"name", "1web"}, {"namespace", "default"}}},
              {"spec", {{"ports", {{{"port", 80}}}}}}};
  Status s = create("", "services", svc);
  ASSERT_EQ(s.causes().size(), 1u) << s.message();
  EXPECT_EQ(s.causes()[0].field, "metadata.name");
  EXPECT_EQ(
      s.causes()[0].message.rfind("Invalid value: \"1web\": a DNS-1035 label must consist of", 0),
      0u)
      << s.causes()[0].message;
}

TEST(BuiltinValidation, LabelsAreChecked) {
  Status s = create(
      "", "configmaps",
      {{"metadata", {{"name", "cfg"}, {"namespace", "default"}, {"labels", {{"app", "-bad"}}}}}});
  ASSERT_EQ(s.causes().size(), 1u) << s.message();
  EXPECT_EQ(s.causes()[0].field, "metadata.labels");
  EXPECT_EQ(s.causes()[0].message.rfind("Invalid value: \"-bad\": a valid label must be", 0), 0u)
      << s.causes()[0].message;
}

TEST(BuiltinValidation, PodWithoutImage) {
  Status s = create("", "pods", pod({{{"name", "web"}}}));
  EXPECT_EQ(s.message(), "Pod \"web\" is invalid: spec.containers[0].image: Required value");
  ASSERT_EQ(s.causes().size(), 1u);
  EXPECT_EQ(s.causes()[0].reason, "FieldValueRequired");
  EXPECT_EQ(s.causes()[0].message, "Required value");
}

TEST(BuiltinValidation, PodContainersAndPorts) {
  Status s = create("", "pods", pod(json::array()));
  EXPECT_EQ(s.message(), "Pod \"web\" is invalid: spec.containers: Required value");
  s = create("", "pods",
             pod({{{"name", "web"}, {"image", "a"}}, {{"name", "web"}, {"image", "b"}}}));
  EXPECT_EQ(s.message(),
            "Pod \"web\" is invalid: spec.containers[1].name: Duplicate value: \"web\"");
  s = create("", "pods",
             pod({{{"name", "web"},
                   {"image", "a"},
                   {"ports", {{{"containerPort", 70000}, {"protocol", "ICMP"}}}}}}));
  EXPECT_EQ(
      s.message(),
      "Pod \"web\" is invalid: [spec.containers[0].ports[0].containerPort: Invalid value: 70000: "
      "must be between 1 and 65535, inclusive, spec.containers[0].ports[0].protocol: "
      "Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"]");
}

TEST(BuiltinValidation, PodRestartPolicy) {
  json p = pod({{{"name", "web"}, {"image", "nginx"}}});
  p["spec"]["restartPolicy"] = "Sometimes";
  Status s = create("", "pods", p);
  EXPECT_EQ(
      s.message(),
      "Pod \"web\" is invalid: spec.restartPolicy: Unsupported value: \"Sometimes\": supported "
      "values: \"Always\", \"OnFailure\", \"Never\"");
  EXPECT_EQ(s.causes()[0].reason, "FieldValueNotSupported");
}

TEST(BuiltinValidation, DeploymentSelectorMustMatchTemplateLabels) {
  Status s = create("apps", "deployments", deployment("web", {{"app", "web"}}, {{"app", "x"}}));
  EXPECT_EQ(s.message(),
            "Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: "
            "map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`");
  ASSERT_EQ(s.causes().size(), 1u);
  EXPECT_EQ(s.causes()[0].field, "spec.template.metadata.labels");
}

TEST(BuiltinValidation, DeploymentWithoutSelector) {
  Status s = create("apps", "deployments", deployment("web", nullptr, {{"app", "web"}}));
  EXPECT_EQ(s.message(),
            "Deployment.apps \"web\" is invalid: [spec.selector: Required value, "
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: "
            "`selector` does not match template `labels`]");
  EXPECT_EQ(s.causes().size(), 2u);
}

TEST(BuiltinValidation, DeploymentSelectorIsImmutable) {
  Status s = update("apps", "deployments", deployment("web", {{"app", "web2"}}, {{"app", "web2"}}),
                    deployment("web", {{"app", "web"}}, {{"app", "web"}}));
  EXPECT_EQ(s.message(),
            "Deployment.apps \"web\" is invalid: spec.selector: Invalid value: "
            "v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, "
            "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable");
  // Scaling is an ordinary update.
  json scaled = deployment("web", {{"app", "web"}}, {{"app", "web"}});
  scaled["spec"]["replicas"] = 5;
  s = update("apps", "deployments", scaled, deployment("web", {{"app", "web"}}, {{"app", "web"}}));
  EXPECT_TRUE(s.ok()) << s.to_string();
}

TEST(BuiltinValidation, DeploymentReplicasAndStrategy) {
  json d = deployment("web", {{"app", "web"}}, {{"app", "web"}});
  d["spec"]["replicas"] = -1;
  d["spec"]["strategy"] = {{"type", "RollingUpdate"},
                           {"rollingUpdate", {{"maxSurge", 0}, {"maxUnavailable", 0}}}};
  Status s = create("apps", "deployments", d);
  EXPECT_EQ(
      s.message(),
      "Deployment.apps \"web\" is invalid: [spec.replicas: Invalid value: -1: must be greater "
      "than or equal to 0, spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "
      "intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0]");
}

TEST(BuiltinValidation, ReplicaSetTemplateMustRestartAlways) {
  json rs = {
      {"metadata", {{"name", "web"}, {"namespace", "default"}}},
      {"spec",
       {{"selector", {{"matchLabels", {{"app", "web"}}}}},
        {"template",
         {{"metadata", {{"labels", {{"app", "web"}}}}},
          {"spec",
           {{"restartPolicy", "Never"}, {"containers", {{{"name", "c"}, {"image", "i"}}}}}}}}}}};
  Status s = create("apps", "replicasets", rs);
  EXPECT_EQ(
      s.message(),
      "ReplicaSet.apps \"web\" is invalid: spec.template.spec.restartPolicy: Unsupported value: "
      "\"Never\": supported values: \"Always\"");
}

TEST(BuiltinValidation, StatefulSetSpecIsMostlyImmutable) {
  json sts = {{"metadata", {{"name", "db"}, {"namespace", "default"}}},
              {"spec",
               {{"serviceName", "db"},
                {"selector", {{"matchLabels", {{"app", "db"}}}}},
                {"template",
                 {{"metadata", {{"labels", {{"app", "db"}}}}},
                  {"spec", {{"containers", {{{"name", "c"}, {"image", "i"}}}}}}}}}}};
  Status s = create("apps", "statefulsets", sts);
  EXPECT_TRUE(s.ok()) << s.to_string();
  json changed = sts;
  changed["spec"]["serviceName"] = "other";
  s = update("apps", "statefulsets", changed, sts);
  EXPECT_EQ(s.message(),
            "StatefulSet.apps \"db\" is invalid: spec: Forbidden: updates to statefulset spec for "
            "fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
            "'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
            "are forbidden");
  changed = sts;
  changed["spec"]["replicas"] = 3;
  EXPECT_TRUE(update("apps", "statefulsets", changed, sts).ok());
}

TEST(BuiltinValidation, JobTemplateMustNotRestartAlways) {
  json job = {
      {"metadata", {{"name", "pi"}, {"namespace", "default"}, {"uid", "u1"}}},
      {"spec",
       {{"template", {{"spec", {{"containers", {{{"name", "pi"}, {"image", "perl"}}}}}}}}}}};
  Status s = create("batch", "jobs", job);
  EXPECT_EQ(s.message(),
            "Job.batch \"pi\" is invalid: spec.template.spec.restartPolicy: Required value: valid "
            "values: \"OnFailure\", \"Never\"");
}

TEST(BuiltinValidation, JobSelectorAndTemplateAreImmutable) {
  json job = {{"metadata", {{"name", "pi"}, {"namespace", "default"}, {"uid", "u1"}}},
              {"spec",
               {{"template",
                 {{"spec",
                   {{"restartPolicy", "Never"},
                    {"containers", {{{"name", "pi"}, {"image", "perl"}}}}}}}}}}};
  json changed = job;
  changed["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:5.40";
  Status s = update("batch", "jobs", changed, job);
  ASSERT_EQ(s.causes().size(), 1u) << s.message();
  EXPECT_EQ(s.causes()[0].field, "spec.template");
  EXPECT_NE(s.causes()[0].message.find("field is immutable"), std::string::npos);
  changed = job;
  changed["spec"]["completions"] = 1;
  changed["spec"]["parallelism"] = 3;  // parallelism may change
  s = update("batch", "jobs", changed, job);
  EXPECT_TRUE(s.ok()) << s.to_string();
}

TEST(BuiltinValidation, CronJobScheduleMustParse) {
  json cj = {{"metadata", {{"name", "hello"}, {"namespace", "default"}}},
             {"spec",
              {{"schedule", "* * *"},
               {"jobTemplate",
                {{"spec",
                  {{"template",
                    {{"spec",
                      {{"restartPolicy", "OnFailure"},
                       {"containers", {{{"name", "c"}, {"image", "i"}}}}}}}}}}}}}}};
  Status s = create("batch", "cronjobs", cj);
  EXPECT_EQ(s.message(),
            "CronJob.batch \"hello\" is invalid: spec.schedule: Invalid value: \"* * *\": expected "
            "exactly 5 fields, found 3: [* * *]");
  cj["spec"]["schedule"] = "*/61 * * * *";
  EXPECT_TRUE(create("batch", "cronjobs", cj).ok());
  cj["spec"]["schedule"] = "0 24 * * *";
  EXPECT_EQ(create("batch", "cronjobs", cj).causes().at(0).message,
            "Invalid value: \"0 24 * * *\": end of range (24) above maximum (23): 24");
  cj["spec"]["schedule"] = "@hourly";
  EXPECT_TRUE(create("batch", "cronjobs", cj).ok());
  cj["spec"]["schedule"] = "TZ=UTC 0 * * * *";
  EXPECT_EQ(create("batch", "cronjobs", cj).causes().at(0).message,
            "Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use "
            "timeZone field instead");
  cj["spec"]["schedule"] = "@hourly";
  cj["metadata"]["name"] = std::string(53, 'a');
  EXPECT_EQ(create("batch", "cronjobs", cj).causes().at(0).message,
            "Invalid value: \"" + std::string(53, 'a') + "\": must be no more than 52 characters");
}

TEST(BuiltinValidation, ServicePortsAndType) {
  json svc = {{"metadata", {{"name", "web"}, {"namespace", "default"}}},
              {"spec", {{"ports", {{{"port", 80}}, {{"port", 70000}}}}}}};
  Status s = create("", "services", svc);
  EXPECT_EQ(
      s.message(),
      "Service \"web\" is invalid: [spec.ports[0].name: Required value, spec.ports[1].name: "
      "Required value, spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, "
      "inclusive, spec.ports[1].targetPort: Invalid value: 70000: must be between 1 and 65535, "
      "inclusive]");
  svc = {{"metadata", {{"name", "web"}, {"namespace", "default"}}},
         {"spec", {{"type", "Bogus"}, {"ports", {{{"port", 80}}}}}}};
  EXPECT_EQ(create("", "services", svc).causes().back().message,
            "Unsupported value: \"Bogus\": supported values: \"ClusterIP\", \"ExternalName\", "
            "\"LoadBalancer\", \"NodePort\"");
  svc = {{"metadata", {{"name", "web"}, {"namespace", "default"}}}, {"spec", json::object()}};
  EXPECT_EQ(create("", "services", svc).message(),
            "Service \"web\" is invalid: spec.ports: Required value");
  svc = {{"metadata", {{"name", "web"}, {"namespace", "default"}}},
         {"spec", {{"ports", {{{"port", 80}, {"name", "a"}}, {{"port", 80}, {"name", "b"}}}}}}};
  EXPECT_EQ(
      create("", "services", svc).message(),
      "Service \"web\" is invalid: spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", "
      "Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, "
      "TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}");
}

TEST(BuiltinValidation, ServiceClusterIPCannotChange) {
  json old = {
      {"metadata", {{"name", "web"}, {"namespace", "default"}}},
      {"spec",
       {{"clusterIP", "10.43.0.5"}, {"clusterIPs", {"10.43.0.5"}}, {"ports", {{{"port", 80}}}}}}};
  json changed = old;
  changed["spec"]["clusterIP"] = "10.43.0.9";
  changed["spec"]["clusterIPs"] = {"10.43.0.9"};
  EXPECT_EQ(
      update("", "services", changed, old).message(),
      "Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: []string{\"10.43.0.9\"}: "
      "may not change once set");
  // Leaving the allocated address out keeps it.
  json omitted = old;
  omitted["spec"].erase("clusterIP");
  omitted["spec"].erase("clusterIPs");
  EXPECT_TRUE(update("", "services", omitted, old).ok());
}

TEST(BuiltinValidation, PodUpdatesMayOnlyChangeImagesAndAFewFields) {
  json old = pod({{{"name", "web"}, {"image", "nginx:1.26"}}});
  json changed = old;
  changed["spec"]["containers"][0]["image"] = "nginx:1.27";
  EXPECT_TRUE(update("", "pods", changed, old).ok());
  changed["metadata"]["labels"] = {{"tier", "front"}};
  EXPECT_TRUE(update("", "pods", changed, old).ok());
  changed = old;
  changed["spec"]["containers"][0]["command"] = {"sleep", "1"};
  Status s = update("", "pods", changed, old);
  ASSERT_EQ(s.causes().size(), 1u) << s.message();
  EXPECT_EQ(s.causes()[0].field, "spec");
  EXPECT_EQ(
      s.causes()[0].message.rfind(
          "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
          "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
          "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
          "(allow it to be set to 1 if it was previously negative)\n",
          0),
      0u)
      << s.causes()[0].message;
  changed = old;
  changed["spec"]["containers"].push_back({{"name", "sidecar"}, {"image", "busybox"}});
  EXPECT_EQ(update("", "pods", changed, old).message(),
            "Pod \"web\" is invalid: spec.containers: Forbidden: pod updates may not add or remove "
            "containers");
}

TEST(BuiltinValidation, ConfigMapAndSecretImmutability) {
  json cm = {{"metadata", {{"name", "cfg"}, {"namespace", "default"}}},
             {"data", {{"a", "1"}}},
             {"immutable", true}};
  json changed = cm;
  changed["data"]["a"] = "2";
  EXPECT_EQ(
      update("", "configmaps", changed, cm).message(),
      "ConfigMap \"cfg\" is invalid: data: Forbidden: field is immutable when `immutable` is set");
  json secret = {{"metadata", {{"name", "s"}, {"namespace", "default"}}}, {"type", "Opaque"}};
  json retyped = secret;
  retyped["type"] = "kubernetes.io/tls";
  retyped["data"] = {{"tls.crt", "eA=="}, {"tls.key", "eA=="}};
  EXPECT_EQ(
      update("", "secrets", retyped, secret).message(),
      "Secret \"s\" is invalid: type: Invalid value: \"kubernetes.io/tls\": field is immutable");
}

TEST(BuiltinValidation, ConfigMapKeysAndSize) {
  json cm = {{"metadata", {{"name", "cfg"}, {"namespace", "default"}}},
             {"data", {{"bad key", "1"}}}};
  Status s = create("", "configmaps", cm);
  ASSERT_EQ(s.causes().size(), 1u);
  EXPECT_EQ(s.causes()[0].field, "data[bad key]");
  EXPECT_EQ(
      s.causes()[0].message,
      "Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, "
      "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
      "validation is '[-._a-zA-Z0-9]+')");
  cm["data"] = {{"big", std::string(1024 * 1024 + 1, 'x')}};
  EXPECT_EQ(create("", "configmaps", cm).message(),
            "ConfigMap \"cfg\" is invalid: []: Too long: must have at most 1048576 bytes");
}

TEST(BuiltinValidation, PersistentVolumeClaimsMayOnlyGrow) {
  json pvc = {
      {"metadata", {{"name", "data"}, {"namespace", "default"}}},
      {"spec",
       {{"accessModes", {"ReadWriteOnce"}}, {"resources", {{"requests", {{"storage", "2Gi"}}}}}}}};
  EXPECT_TRUE(create("", "persistentvolumeclaims", pvc).ok());
  json grown = pvc;
  grown["spec"]["resources"]["requests"]["storage"] = "4Gi";
  EXPECT_TRUE(update("", "persistentvolumeclaims", grown, pvc).ok());
  json shrunk = pvc;
  shrunk["spec"]["resources"]["requests"]["storage"] = "1Gi";
  EXPECT_EQ(
      update("", "persistentvolumeclaims", shrunk, pvc).message(),
      "PersistentVolumeClaim \"data\" is invalid: spec.resources.requests.storage: Forbidden: "
      "field can not be less than previous value");
  json remoded = pvc;
  remoded["spec"]["accessModes"] = {"ReadWriteMany"};
  Status s = update("", "persistentvolumeclaims", remoded, pvc);
  ASSERT_EQ(s.causes().size(), 1u);
  EXPECT_EQ(s.causes()[0].message.rfind(
                "Forbidden: spec is immutable after creation except resources.requests and "
                "volumeAttributesClassName for bound claims\n",
                0),
            0u);
  EXPECT_EQ(create("", "persistentvolumeclaims",
                   {{"metadata", {{"name", "d"}, {"namespace", "default"}}},
                    {"spec", {{"accessModes", {"ReadWriteOnce"}}}}})
                .message(),
            "PersistentVolumeClaim \"d\" is invalid: spec.resources[storage]: Required value");
}

TEST(BuiltinValidation, RbacNamesAndRoleRefs) {
  Status s = create("rbac.authorization.k8s.io", "clusterroles", {{"metadata", {{"name", "a/b"}}}});
  EXPECT_EQ(s.message(),
            "ClusterRole.rbac.authorization.k8s.io \"a/b\" is invalid: metadata.name: "
            "Invalid value: \"a/b\": may not contain '/'");
  EXPECT_TRUE(
      create("rbac.authorization.k8s.io", "clusterroles", {{"metadata", {{"name", "system:view"}}}})
          .ok());
  json rb = {{"metadata", {{"name", "rb"}, {"namespace", "default"}}},
             {"roleRef", {{"kind", "Role"}, {"name", "reader"}}},
             {"subjects", {{{"kind", "User"}, {"name", "alice"}}}}};
  EXPECT_TRUE(create("rbac.authorization.k8s.io", "rolebindings", rb).ok());
  json changed = rb;
  changed["roleRef"]["name"] = "writer";
  EXPECT_EQ(update("rbac.authorization.k8s.io", "rolebindings", changed, rb).message(),
            "RoleBinding.rbac.authorization.k8s.io \"rb\" is invalid: roleRef: Invalid value: "
            "rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"writer\"}: "
            "cannot change roleRef");
  json role = {{"metadata", {{"name", "r"}, {"namespace", "default"}}},
               {"rules", {{{"resources", {"pods"}}}}}};
  EXPECT_EQ(
      create("rbac.authorization.k8s.io", "roles", role).message(),
      "Role.rbac.authorization.k8s.io \"r\" is invalid: [rules[0].verbs: Required value: verbs "
      "must contain at least one value, rules[0].apiGroups: Required value: resource rules must "
      "supply at least one api group]");
}

TEST(BuiltinValidation, ReviewsNeedNoMetadata) {
  json ssar = {{"apiVersion", "authorization.k8s.io/v1"},
               {"kind", "SelfSubjectAccessReview"},
               {"spec", {{"resourceAttributes", {{"verb", "get"}, {"resource", "pods"}}}}}};
  EXPECT_TRUE(validate("authorization.k8s.io", "selfsubjectaccessreviews", ssar).ok());
  ssar["spec"] = json::object();
  EXPECT_EQ(
      validate("authorization.k8s.io", "selfsubjectaccessreviews", ssar).message(),
      "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: "
      "Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be "
      "specified");
}

TEST(BuiltinValidation, MetadataNameIsImmutable) {
  json cm = {{"metadata", {{"name", "cfg"}, {"namespace", "default"}}}};
  json renamed = cm;
  renamed["metadata"]["name"] = "cfg2";
  EXPECT_EQ(
      update("", "configmaps", renamed, cm).message(),
      "ConfigMap \"cfg2\" is invalid: metadata.name: Invalid value: \"cfg2\": field is immutable");
}

json crontab_crd() {
  return json::parse(R"({
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "crontabs.stable.example.com"},
    "spec": {"group": "stable.example.com", "scope": "Namespaced",
             "names": {"plural": "crontabs", "kind": "CronTab"},
             "versions": [{"name": "v1", "served": true, "storage": true,
                           "schema": {"openAPIV3Schema": {"type": "object"}}}]}})");
}

TEST(BuiltinValidation, CustomResourceDefinitionsMustBeServable) {
  const std::string g = "apiextensions.k8s.io";
  Status s = create(g, "customresourcedefinitions", crontab_crd());
  EXPECT_TRUE(s.ok()) << s.to_string();
  json crd = crontab_crd();
  crd["spec"]["versions"][0].erase("schema");
  EXPECT_EQ(create(g, "customresourcedefinitions", crd).message(),
            "CustomResourceDefinition.apiextensions.k8s.io \"crontabs.stable.example.com\" is "
            "invalid: spec.versions[0].schema.openAPIV3Schema: Required value: schemas are "
            "required");
  crd = crontab_crd();
  crd["spec"]["conversion"] = {{"strategy", "Magic"}};
  EXPECT_EQ(create(g, "customresourcedefinitions", crd).message(),
            "CustomResourceDefinition.apiextensions.k8s.io \"crontabs.stable.example.com\" is "
            "invalid: spec.conversion.strategy: Unsupported value: \"Magic\": supported values: "
            "\"None\", \"Webhook\"");
}

TEST(BuiltinValidation, CustomResourceDefinitionScopeIsImmutable) {
  json crd = crontab_crd();
  json changed = crd;
  changed["spec"]["scope"] = "Cluster";
  EXPECT_EQ(update("apiextensions.k8s.io", "customresourcedefinitions", changed, crd).message(),
            "CustomResourceDefinition.apiextensions.k8s.io \"crontabs.stable.example.com\" is "
            "invalid: spec.scope: Invalid value: \"Cluster\": field is immutable");
}

}  // namespace
}  // namespace skiff::api
