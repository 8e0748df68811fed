// Table columns and rows, compared with what Kubernetes 1.32's printers produce (and so what
// `kubectl get` shows).
#include <gtest/gtest.h>

#include <chrono>

#include "common/time.h"
#include "test_util.h"

namespace skiff::api {
namespace {

using nlohmann::json;
using testing::def;

int64_t seconds(const char* rfc3339) {
  return std::chrono::duration_cast<std::chrono::seconds>(
             parse_rfc3339(rfc3339).value().time_since_epoch())
      .count();
}

const int64_t kNow = seconds("2024-05-01T12:00:00Z");

std::vector<json> row(const std::string& group, const std::string& resource, const json& obj) {
  return def(group, resource).row(obj, kNow);
}

std::vector<std::string> column_names(const ResourceDef& d) {
  std::vector<std::string> out;
  for (const auto& c : d.columns) out.push_back(c.name + (c.priority > 0 ? "(1)" : ""));
  return out;
}

json pod(json status, json extra_spec = json::object()) {
  json spec = {{"containers", {{{"name", "web"}, {"image", "nginx"}}}}};
  spec.update(extra_spec);
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", "web-1"}, {"creationTimestamp", "2024-05-01T11:50:00Z"}}},
          {"spec", spec},
          {"status", status}};
}

TEST(BuiltinTable, PodColumns) {
  const ResourceDef& d = def("", "pods");
  EXPECT_EQ(column_names(d),
            (std::vector<std::string>{"Name", "Ready", "Status", "Restarts", "Age", "IP(1)",
                                      "Node(1)", "Nominated Node(1)", "Readiness Gates(1)"}));
  EXPECT_EQ(d.columns[0].format, "name");
  EXPECT_EQ(d.columns[0].type, "string");
  EXPECT_EQ(d.columns[3].type, "string");
  EXPECT_EQ(d.columns[1].description,
            "The aggregate readiness state of this pod for accepting traffic.");
  EXPECT_EQ(d.columns[4].description.substr(0, 29), "CreationTimestamp is a timest");
  EXPECT_FALSE(d.columns[6].description.empty());  // PodSpec.nodeName's documentation
}

TEST(BuiltinTable, RunningPod) {
  json p = pod({{"phase", "Running"},
                {"podIP", "10.42.0.7"},
                {"podIPs", {{{"ip", "10.42.0.7"}}}},
                {"conditions", {{{"type", "Ready"}, {"status", "True"}}}},
                {"containerStatuses",
                 {{{"name", "web"},
                   {"ready", true},
                   {"restartCount", 0},
                   {"state", {{"running", {{"startedAt", "2024-05-01T11:50:05Z"}}}}}}}}},
               {{"nodeName", "node-a"}});
  EXPECT_EQ(row("", "pods", p), (std::vector<json>{"web-1", "1/1", "Running", "0", "10m",
                                                   "10.42.0.7", "node-a", "<none>", "<none>"}));
}

TEST(BuiltinTable, PendingPod) {
  EXPECT_EQ(row("", "pods", pod({{"phase", "Pending"}})),
            (std::vector<json>{"web-1", "0/1", "Pending", "0", "10m", "<none>", "<none>", "<none>",
                               "<none>"}));
  json creating = pod({{"phase", "Pending"},
                       {"containerStatuses",
                        {{{"name", "web"},
                          {"ready", false},
                          {"restartCount", 0},
                          {"state", {{"waiting", {{"reason", "ContainerCreating"}}}}}}}}});
  EXPECT_EQ(row("", "pods", creating)[2], "ContainerCreating");
}

TEST(BuiltinTable, CrashLoopBackOffPodShowsRestartsWithLastRestartAge) {
  json p = pod(
      {{"phase", "Running"},
       {"containerStatuses",
        {{{"name", "web"},
          {"ready", false},
          {"restartCount", 3},
          {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}}}}},
          {"lastState",
           {{"terminated",
             {{"exitCode", 1}, {"reason", "Error"}, {"finishedAt", "2024-05-01T11:55:00Z"}}}}}}}}});
  std::vector<json> cells = row("", "pods", p);
  EXPECT_EQ(cells[1], "0/1");
  EXPECT_EQ(cells[2], "CrashLoopBackOff");
  EXPECT_EQ(cells[3], "3 (5m ago)");
}

TEST(BuiltinTable, CompletedPod) {
  json p = pod({{"phase", "Succeeded"},
                {"containerStatuses",
                 {{{"name", "web"},
                   {"ready", false},
                   {"restartCount", 0},
                   {"state", {{"terminated", {{"exitCode", 0}, {"reason", "Completed"}}}}}}}}});
  std::vector<json> cells = row("", "pods", p);
  EXPECT_EQ(cells[1], "0/1");
  EXPECT_EQ(cells[2], "Completed");
}

TEST(BuiltinTable, TerminatedWithoutReasonShowsExitCodeOrSignal) {
  json exit = pod({{"phase", "Failed"},
                   {"containerStatuses",
                    {{{"name", "web"}, {"state", {{"terminated", {{"exitCode", 137}}}}}}}}});
  EXPECT_EQ(row("", "pods", exit)[2], "ExitCode:137");
  json signal =
      pod({{"phase", "Failed"},
           {"containerStatuses",
            {{{"name", "web"}, {"state", {{"terminated", {{"exitCode", 0}, {"signal", 9}}}}}}}}});
  EXPECT_EQ(row("", "pods", signal)[2], "Signal:9");
}

TEST(BuiltinTable, TerminatingPod) {
  json p = pod({{"phase", "Running"},
                {"containerStatuses",
                 {{{"name", "web"}, {"ready", true}, {"state", {{"running", json::object()}}}}}}});
  p["metadata"]["deletionTimestamp"] = "2024-05-01T11:59:00Z";
  std::vector<json> cells = row("", "pods", p);
  EXPECT_EQ(cells[1], "1/1");
  EXPECT_EQ(cells[2], "Terminating");
  // A terminal pod being deleted keeps its phase.
  json done = pod({{"phase", "Succeeded"}});
  done["metadata"]["deletionTimestamp"] = "2024-05-01T11:59:00Z";
  EXPECT_EQ(row("", "pods", done)[2], "Succeeded");
}

TEST(BuiltinTable, InitializingPod) {
  json extra = {{"initContainers", {{{"name", "init"}, {"image", "busybox"}}}}};
  json running_init = pod(
      {{"phase", "Pending"},
       {"initContainerStatuses", {{{"name", "init"}, {"state", {{"running", json::object()}}}}}}},
      extra);
  EXPECT_EQ(row("", "pods", running_init)[2], "Init:0/1");
  json crashing_init = pod({{"phase", "Pending"},
                            {"initContainerStatuses",
                             {{{"name", "init"},
                               {"restartCount", 2},
                               {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}}}}}}}}},
                           extra);
  std::vector<json> cells = row("", "pods", crashing_init);
  EXPECT_EQ(cells[2], "Init:CrashLoopBackOff");
  EXPECT_EQ(cells[3], "2");
  json failed_init = pod({{"phase", "Pending"},
                          {"initContainerStatuses",
                           {{{"name", "init"}, {"state", {{"terminated", {{"exitCode", 2}}}}}}}}},
                         extra);
  EXPECT_EQ(row("", "pods", failed_init)[2], "Init:ExitCode:2");
}

TEST(BuiltinTable, ReadinessGatesAndNominatedNode) {
  json p =
      pod({{"phase", "Running"},
           {"nominatedNodeName", "node-b"},
           {"conditions", {{{"type", "example.com/ready"}, {"status", "True"}}}}},
          {{"readinessGates",
            {{{"conditionType", "example.com/ready"}}, {{"conditionType", "example.com/other"}}}}});
  std::vector<json> cells = row("", "pods", p);
  EXPECT_EQ(cells[7], "node-b");
  EXPECT_EQ(cells[8], "1/2");
}

TEST(BuiltinTable, DeploymentRow) {
  const ResourceDef& d = def("apps", "deployments");
  EXPECT_EQ(column_names(d),
            (std::vector<std::string>{"Name", "Ready", "Up-to-date", "Available", "Age",
                                      "Containers(1)", "Images(1)", "Selector(1)"}));
  json deploy = {
      {"metadata", {{"name", "web"}, {"creationTimestamp", "2024-04-30T12:00:00Z"}}},
      {"spec",
       {{"replicas", 3},
        {"selector", {{"matchLabels", {{"app", "web"}, {"tier", "front"}}}}},
        {"template",
         {{"spec",
           {{"containers",
             {{{"name", "web"}, {"image", "nginx:1.27"}},
              {{"name", "log"}, {"image", "busybox"}}}}}}}}}},
      {"status", {{"readyReplicas", 2}, {"updatedReplicas", 3}, {"availableReplicas", 2}}}};
  EXPECT_EQ(row("apps", "deployments", deploy),
            (std::vector<json>{"web", "2/3", 3, 2, "24h", "web,log", "nginx:1.27,busybox",
                               "app=web,tier=front"}));
}

TEST(BuiltinTable, ServiceRow) {
  const ResourceDef& d = def("", "services");
  EXPECT_EQ(column_names(d), (std::vector<std::string>{"Name", "Type", "Cluster-IP", "External-IP",
                                                       "Port(s)", "Age", "Selector(1)"}));
  json svc = {{"metadata", {{"name", "web"}, {"creationTimestamp", "2024-05-01T09:00:00Z"}}},
              {"spec",
               {{"type", "NodePort"},
                {"clusterIP", "10.43.12.7"},
                {"clusterIPs", {"10.43.12.7"}},
                {"selector", {{"app", "web"}}},
                {"ports",
                 {{{"port", 80}, {"protocol", "TCP"}},
                  {{"port", 443}, {"nodePort", 30443}, {"protocol", "TCP"}}}}}}};
  EXPECT_EQ(row("", "services", svc), (std::vector<json>{"web", "NodePort", "10.43.12.7", "<none>",
                                                         "80/TCP,443:30443/TCP", "3h", "app=web"}));
  json lb = {{"metadata", {{"name", "lb"}}},
             {"spec", {{"type", "LoadBalancer"}, {"clusterIPs", {"10.43.0.9"}}}}};
  std::vector<json> cells = row("", "services", lb);
  EXPECT_EQ(cells[3], "<pending>");
  EXPECT_EQ(cells[4], "<none>");
  EXPECT_EQ(cells[5], "<unknown>");
  EXPECT_EQ(cells[6], "<none>");
  lb["status"] = {{"loadBalancer", {{"ingress", {{{"ip", "192.0.2.10"}}}}}}};
  EXPECT_EQ(row("", "services", lb)[3], "192.0.2.10");
  json external = {{"metadata", {{"name", "db"}}},
                   {"spec", {{"type", "ExternalName"}, {"externalName", "db.example.com"}}}};
  cells = row("", "services", external);
  EXPECT_EQ(cells[2], "<none>");
  EXPECT_EQ(cells[3], "db.example.com");
}

TEST(BuiltinTable, NamespaceConfigMapAndSecretRows) {
  EXPECT_EQ(column_names(def("", "namespaces")),
            (std::vector<std::string>{"Name", "Status", "Age"}));
  json ns = {{"metadata", {{"name", "dev"}, {"creationTimestamp", "2024-04-01T12:00:00Z"}}},
             {"status", {{"phase", "Active"}}}};
  EXPECT_EQ(row("", "namespaces", ns), (std::vector<json>{"dev", "Active", "30d"}));

  EXPECT_EQ(column_names(def("", "configmaps")), (std::vector<std::string>{"Name", "Data", "Age"}));
  json cm = {{"metadata", {{"name", "cfg"}, {"creationTimestamp", "2024-05-01T11:59:15Z"}}},
             {"data", {{"a", "1"}, {"b", "2"}}},
             {"binaryData", {{"c", "AA=="}}}};
  EXPECT_EQ(row("", "configmaps", cm), (std::vector<json>{"cfg", 3, "45s"}));

  EXPECT_EQ(column_names(def("", "secrets")),
            (std::vector<std::string>{"Name", "Type", "Data", "Age"}));
  json secret = {{"metadata", {{"name", "token"}, {"creationTimestamp", "2024-05-01T07:30:00Z"}}},
                 {"type", "Opaque"},
                 {"data", {{"password", "cGFzcw=="}}}};
  EXPECT_EQ(row("", "secrets", secret), (std::vector<json>{"token", "Opaque", 1, "4h30m"}));
}

TEST(BuiltinTable, NodeRow) {
  EXPECT_EQ(column_names(def("", "nodes")),
            (std::vector<std::string>{"Name", "Status", "Roles", "Age", "Version", "Internal-IP(1)",
                                      "External-IP(1)", "OS-Image(1)", "Kernel-Version(1)",
                                      "Container-Runtime(1)"}));
  json node = {
      {"metadata",
       {{"name", "node-a"},
        {"creationTimestamp", "2024-04-28T12:00:00Z"},
        {"labels",
         {{"node-role.kubernetes.io/control-plane", ""},
          {"node-role.kubernetes.io/master", "true"}}}}},
      {"spec", {{"unschedulable", true}}},
      {"status",
       {{"conditions",
         {{{"type", "MemoryPressure"}, {"status", "False"}},
          {{"type", "Ready"}, {"status", "True"}}}},
        {"addresses", {{{"type", "InternalIP"}, {"address", "192.168.1.10"}}}},
        {"nodeInfo", {{"kubeletVersion", "v1.32.0+skiff"}, {"osImage", "Debian GNU/Linux 12"}}}}}};
  EXPECT_EQ(row("", "nodes", node),
            (std::vector<json>{"node-a", "Ready,SchedulingDisabled", "control-plane,master", "3d",
                               "v1.32.0+skiff", "192.168.1.10", "<none>", "Debian GNU/Linux 12",
                               "<unknown>", "<unknown>"}));
  EXPECT_EQ(row("", "nodes", json{{"metadata", {{"name", "n"}}}})[1], "Unknown");
}

TEST(BuiltinTable, EventRow) {
  EXPECT_EQ(
      column_names(def("", "events")),
      (std::vector<std::string>{"Last Seen", "Type", "Reason", "Object", "Subobject(1)",
                                "Source(1)", "Message", "First Seen(1)", "Count(1)", "Name(1)"}));
  json ev = {{"metadata", {{"name", "web-1.17c3"}, {"namespace", "default"}}},
             {"involvedObject",
              {{"kind", "Pod"}, {"name", "web-1"}, {"fieldPath", "spec.containers{web}"}}},
             {"type", "Normal"},
             {"reason", "Pulled"},
             {"message", "Successfully pulled image \"nginx\"\n"},
             {"source", {{"component", "kubelet"}, {"host", "node-a"}}},
             {"firstTimestamp", "2024-05-01T11:00:00Z"},
             {"lastTimestamp", "2024-05-01T11:58:00Z"},
             {"count", 4}};
  EXPECT_EQ(row("", "events", ev),
            (std::vector<json>{"2m", "Normal", "Pulled", "pod/web-1", "spec.containers{web}",
                               "kubelet, node-a", "Successfully pulled image \"nginx\"", "60m", 4,
                               "web-1.17c3"}));
  json fresh = {{"metadata", {{"name", "e"}}},
                {"involvedObject", {{"kind", "Node"}}},
                {"eventTime", "2024-05-01T11:59:30.000000Z"},
                {"reportingComponent", "skiff-scheduler"}};
  std::vector<json> cells = row("", "events", fresh);
  EXPECT_EQ(cells[0], "30s");
  EXPECT_EQ(cells[3], "node");
  EXPECT_EQ(cells[5], "skiff-scheduler");
  EXPECT_EQ(cells[8], 1);
}

TEST(BuiltinTable, JobAndCronJobRows) {
  EXPECT_EQ(column_names(def("batch", "jobs")),
            (std::vector<std::string>{"Name", "Status", "Completions", "Duration", "Age",
                                      "Containers(1)", "Images(1)", "Selector(1)"}));
  json job = {{"metadata", {{"name", "pi"}, {"creationTimestamp", "2024-05-01T11:00:00Z"}}},
              {"spec",
               {{"completions", 1},
                {"parallelism", 1},
                {"selector", {{"matchLabels", {{"batch.kubernetes.io/controller-uid", "u1"}}}}},
                {"template", {{"spec", {{"containers", {{{"name", "pi"}, {"image", "perl"}}}}}}}}}},
              {"status",
               {{"succeeded", 1},
                {"startTime", "2024-05-01T11:00:00Z"},
                {"completionTime", "2024-05-01T11:00:42Z"},
                {"conditions", {{{"type", "Complete"}, {"status", "True"}}}}}}};
  EXPECT_EQ(row("batch", "jobs", job),
            (std::vector<json>{"pi", "Complete", "1/1", "42s", "60m", "pi", "perl",
                               "batch.kubernetes.io/controller-uid=u1"}));

  EXPECT_EQ(column_names(def("batch", "cronjobs")),
            (std::vector<std::string>{"Name", "Schedule", "Timezone", "Suspend", "Active",
                                      "Last Schedule", "Age", "Containers(1)", "Images(1)",
                                      "Selector(1)"}));
  json cj = {{"metadata", {{"name", "hello"}, {"creationTimestamp", "2024-05-01T10:00:00Z"}}},
             {"spec", {{"schedule", "*/5 * * * *"}, {"suspend", false}}},
             {"status", {{"lastScheduleTime", "2024-05-01T11:55:00Z"}}}};
  EXPECT_EQ(row("batch", "cronjobs", cj),
            (std::vector<json>{"hello", "*/5 * * * *", "<none>", "False", 0, "5m", "120m", "", "",
                               "<none>"}));
}

TEST(BuiltinTable, RoleBindingShowsRoleAndSubjects) {
  json rb = {{"metadata", {{"name", "read"}}},
             {"roleRef", {{"kind", "ClusterRole"}, {"name", "view"}}},
             {"subjects",
              {{{"kind", "User"}, {"name", "alice"}},
               {{"kind", "ServiceAccount"}, {"name", "bot"}, {"namespace", "ci"}},
               {{"kind", "Group"}, {"name", "devs"}}}}};
  EXPECT_EQ(
      row("rbac.authorization.k8s.io", "rolebindings", rb),
      (std::vector<json>{"read", "ClusterRole/view", "<unknown>", "alice", "devs", "ci/bot"}));
}

TEST(BuiltinTable, KindsWithoutAPrinterUseTheDefaultTable) {
  const ResourceDef& d = def("rbac.authorization.k8s.io", "roles");
  ASSERT_EQ(d.columns.size(), 2u);
  EXPECT_EQ(d.columns[1].name, "Created At");
  EXPECT_EQ(d.columns[1].type, "date");
  json role = {{"metadata", {{"name", "reader"}, {"creationTimestamp", "2024-05-01T11:00:00Z"}}}};
  EXPECT_EQ(d.row(role, kNow), (std::vector<json>{"reader", "2024-05-01T11:00:00Z"}));
  EXPECT_EQ(def("apiextensions.k8s.io", "customresourcedefinitions").columns.size(), 2u);
}

TEST(BuiltinTable, PersistentVolumeClaimRow) {
  json pvc = {
      {"metadata", {{"name", "data"}}},
      {"spec",
       {{"volumeName", "pv-1"}, {"storageClassName", "local-path"}, {"volumeMode", "Filesystem"}}},
      {"status",
       {{"phase", "Bound"},
        {"accessModes", {"ReadWriteOnce"}},
        {"capacity", {{"storage", "1024Mi"}}}}}};
  EXPECT_EQ(row("", "persistentvolumeclaims", pvc),
            (std::vector<json>{"data", "Bound", "pv-1", "1Gi", "RWO", "local-path", "<unset>",
                               "<unknown>", "Filesystem"}));
}

}  // namespace
}  // namespace skiff::api
