// One pod's lifecycle on the node, as the kubelet's pod worker runs it: sandbox, images, init
// containers in order, containers with restartPolicy and CrashLoopBackOff, status, events, and
// graceful termination ending with the pod's final DELETE.
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "agent/agent_internal.h"
#include "agent/images/auth.h"
#include "agent/images/reference.h"
#include "agent/network/pod_dns_files.h"
#include "agent/probes.h"
#include "agent/runtime/oci_spec.h"
#include "agent/volumes.h"
#include "common/base64.h"
#include "common/log.h"
#include "common/quantity.h"

namespace skiff::agent {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

const json& sub(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it != j.end() ? *it : kNull;
}

bool flag(const json& j, const char* key) {
  if (!j.is_object()) return false;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

std::vector<std::string> strings(const json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& e : j) {
    if (e.is_string()) out.push_back(e.get<std::string>());
  }
  return out;
}

// The lowest oom_score_adj this process may give its children: -1000 with CAP_SYS_RESOURCE,
// else its own.
int lowest_oom_score_adj() {
  static const int lowest = [] {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("CapEff:", 0) != 0) continue;
      uint64_t caps = std::strtoull(line.c_str() + 7, nullptr, 16);
      if (caps & (uint64_t{1} << 24)) return -1000;  // CAP_SYS_RESOURCE
    }
    std::ifstream own("/proc/self/oom_score_adj");
    int v = 0;
    own >> v;
    return v;
  }();
  return lowest;
}

std::string pod_full_name(const json& pod) {
  const json& m = pod["metadata"];
  return str(m, "name") + "_" + str(m, "namespace") + "(" + str(m, "uid") + ")";
}

// imagePullPolicy as defaulted by Kubernetes: Always for :latest or an untagged image,
// IfNotPresent otherwise.
std::string pull_policy(const json& c) {
  std::string p = str(c, "imagePullPolicy");
  if (!p.empty()) return p;
  auto ref = images::parse_reference(str(c, "image"));
  if (ref.ok() && ref->digest.empty() && ref->tag == "latest") return "Always";
  return "IfNotPresent";
}

std::string short_duration(std::chrono::milliseconds d) {
  return format_go_duration(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
}

std::string hex_nanos(TimePoint t) {
  std::ostringstream o;
  o << std::hex
    << std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return o.str();
}

// The value of an env var's valueFrom.fieldRef, for the fields the downward API offers.
std::string field_ref_value(const json& pod, const std::string& path, const std::string& pod_ip,
                            const std::string& host_ip) {
  const json& m = pod["metadata"];
  if (path == "metadata.name") return str(m, "name");
  if (path == "metadata.namespace") return str(m, "namespace");
  if (path == "metadata.uid") return str(m, "uid");
  if (path == "spec.nodeName") return str(pod["spec"], "nodeName");
  if (path == "spec.serviceAccountName") return str(pod["spec"], "serviceAccountName");
  if (path == "status.podIP" || path == "status.podIPs") return pod_ip;
  if (path == "status.hostIP" || path == "status.hostIPs") return host_ip;
  return "";
}

// The pod's /etc/hosts as the kubelet writes it; no pod line while `pod_ip` is "".
network::PodHostsConfig pod_hosts_config(const json& pod, const std::string& pod_ip,
                                         const std::string& cluster_domain) {
  const json& spec = pod["spec"];
  network::PodHostsConfig hosts;
  hosts.pod_ip = pod_ip;
  hosts.hostname =
      str(spec, "hostname").empty() ? str(pod["metadata"], "name") : str(spec, "hostname");
  hosts.subdomain = str(spec, "subdomain");
  hosts.pod_namespace = str(pod["metadata"], "namespace");
  hosts.cluster_domain = cluster_domain;
  for (const auto& h : sub(spec, "hostAliases")) {
    hosts.host_aliases.push_back({str(h, "ip"), strings(sub(h, "hostnames"))});
  }
  return hosts;
}

// True when an env var of `c` takes the pod's IP (status.podIP), which is known only once the
// sandbox is attached to the network.
bool env_needs_pod_ip(const json& c) {
  for (const auto& e : sub(c, "env")) {
    std::string path = str(sub(sub(e, "valueFrom"), "fieldRef"), "fieldPath");
    if (path == "status.podIP" || path == "status.podIPs") return true;
  }
  return false;
}

}  // namespace

bool pod_changed_beyond_status(const json& a, const json& b) {
  for (const char* key : {"apiVersion", "kind", "spec"}) {
    if (sub(a, key) != sub(b, key)) return true;
  }
  const json& ma = sub(a, "metadata");
  const json& mb = sub(b, "metadata");
  if (!ma.is_object() || !mb.is_object()) return ma != mb;
  auto ignored = [](const std::string& k) { return k == "resourceVersion" || k == "managedFields"; };
  size_t compared = 0;
  for (auto it = ma.begin(); it != ma.end(); ++it) {
    if (ignored(it.key())) continue;
    auto other = mb.find(it.key());
    if (other == mb.end() || *other != it.value()) return true;
    ++compared;
  }
  size_t others = 0;
  for (auto it = mb.begin(); it != mb.end(); ++it) {
    if (!ignored(it.key())) ++others;
  }
  return others != compared;
}

void Agent::Impl::record_event(const json& pod, const std::string& type, const std::string& reason,
                               const std::string& message, const std::string& field_path) {
  const json& m = pod["metadata"];
  json involved = {{"kind", "Pod"},          {"namespace", str(m, "namespace")},
                   {"name", str(m, "name")}, {"uid", str(m, "uid")},
                   {"apiVersion", "v1"},     {"resourceVersion", str(m, "resourceVersion")}};
  if (!field_path.empty()) involved["fieldPath"] = field_path;
  post_event(std::move(involved), str(m, "namespace"), type, reason, message);
}

void Agent::Impl::post_event(json involved, const std::string& ns, const std::string& type,
                             const std::string& reason, const std::string& message) {
  TimePoint t = now();
  json ev = {{"apiVersion", "v1"},
             {"kind", "Event"},
             {"metadata", {{"name", str(involved, "name") + "." + hex_nanos(t)}, {"namespace", ns}}},
             {"involvedObject", std::move(involved)},
             {"reason", reason},
             {"message", message},
             {"type", type},
             {"source", {{"component", "kubelet"}, {"host", options.node_name}}},
             {"firstTimestamp", format_rfc3339(t)},
             {"lastTimestamp", format_rfc3339(t)},
             {"count", 1},
             {"reportingComponent", "kubelet"},
             {"reportingInstance", options.node_name}};
  // Sent in the background, in order, as the kubelet's event broadcaster does: a pod start
  // does not wait for its events. At most 1000 wait; beyond that the oldest are dropped.
  std::lock_guard<std::mutex> l(events_mu);
  if (pending_events.size() >= 1000) pending_events.pop_front();
  pending_events.push_back(std::move(ev));
  if (events_sending) return;
  events_sending = true;
  pod_executor->post([this] { send_events(); });
}

void Agent::Impl::send_events() {
  while (true) {
    json ev;
    {
      std::lock_guard<std::mutex> l(events_mu);
      if (pending_events.empty()) {
        events_sending = false;
        return;
      }
      ev = std::move(pending_events.front());
      pending_events.pop_front();
    }
    const std::string ns = str(ev["metadata"], "namespace");
    auto r = client.create(client::resources::kEvents.in(ns), ev);
    if (!r.ok()) {
      SKIFF_LOG(Debug) << "recording event " << str(ev, "reason") << ": "
                       << r.status().to_string();
    }
  }
}

void PodWorker::notify() {
  std::lock_guard<std::mutex> l(mu);
  dirty = true;
  if (queued || syncing || stopping || finished) return;
  queued = true;
  agent->pod_executor->post([self = shared_from_this()] { self->run_once(); });
}

void PodWorker::request_stop() {
  std::lock_guard<std::mutex> l(mu);
  stopping = true;
  if (timer != 0) agent->pod_executor->cancel(timer);
  timer = 0;
}

void PodWorker::retry_at(TimePoint t) {
  std::lock_guard<std::mutex> l(mu);
  if (!wake_at || t < *wake_at) wake_at = t;
}

void PodWorker::run_once() {
  {
    std::lock_guard<std::mutex> l(mu);
    queued = false;
    if (stopping || finished) return;
    syncing = true;
    dirty = false;
    wake_at.reset();
    if (timer != 0) agent->pod_executor->cancel(timer);
    timer = 0;
  }
  bool done = false;
  try {
    done = sync();
  } catch (const std::exception& e) {
    // Objects come from the API and may be malformed; the pod is retried later.
    SKIFF_LOG(Warn) << "syncing pod " << ns << "/" << name << ": " << e.what();
    retry_at(now() + std::chrono::seconds(5));
  }
  std::lock_guard<std::mutex> l(mu);
  syncing = false;
  if (done) {
    finished = true;
    return;
  }
  if (stopping) return;
  auto self = shared_from_this();
  if (dirty) {
    queued = true;
    agent->pod_executor->post([self] { self->run_once(); });
  } else if (wake_at) {
    auto when = Executor::Clock::now() +
                std::chrono::duration_cast<Executor::Clock::duration>(*wake_at - now());
    timer = agent->pod_executor->post_at(when, [self] { self->notify(); });
  }
}

bool PodWorker::sync() {
  Agent::Impl& a = *agent;
  client::ObjectPtr cached = a.pod_informer->get(ns, name);
  if (!cached || str((*cached)["metadata"], "uid") != uid) {
    // Deleted (possibly forcibly) without our final DELETE: stop and remove what is left.
    for (const auto& st : a.pod_containers(uid)) {
      if (st.state == runtime::ContainerState::kRunning) {
        a.container_runtime->stop(st.id, std::chrono::seconds(2));
      }
    }
    a.remove_pod_resources(uid);
    return true;
  }
  const json& pod = *cached;
  if (pod["metadata"].contains("deletionTimestamp") &&
      !pod["metadata"]["deletionTimestamp"].is_null()) {
    return terminate(pod);
  }
  std::string phase = str(sub(pod, "status"), "phase");
  if (phase == "Succeeded" || phase == "Failed") {
    // Finished: nothing runs any more; the sandbox goes, containers stay for their logs.
    a.prober->remove_pod(uid);
    a.pod_network->remove_sandbox(uid);
    return false;
  }
  sync_running(pod);
  return false;
}

bool PodWorker::terminate(const json& pod) {
  Agent::Impl& a = *agent;
  a.prober->remove_pod(uid);
  int64_t grace = 30;
  const json& m = pod["metadata"];
  if (m.contains("deletionGracePeriodSeconds") && m["deletionGracePeriodSeconds"].is_number()) {
    grace = m["deletionGracePeriodSeconds"].get<int64_t>();
  } else if (pod["spec"].contains("terminationGracePeriodSeconds") &&
             pod["spec"]["terminationGracePeriodSeconds"].is_number()) {
    grace = pod["spec"]["terminationGracePeriodSeconds"].get<int64_t>();
  }
  if (grace < 0) grace = 0;
  std::vector<std::thread> stoppers;
  for (const auto& st : a.pod_containers(uid)) {
    if (st.state != runtime::ContainerState::kRunning &&
        st.state != runtime::ContainerState::kCreated) {
      continue;
    }
    ContainerName cn;
    parse_container_id(st.id, &cn);
    a.record_event(pod, "Normal", "Killing", "Stopping container " + cn.name,
                   "spec.containers{" + cn.name + "}");
    std::string id = st.id;
    stoppers.emplace_back([&a, id, grace] {
      Status s = a.container_runtime->stop(id, std::chrono::seconds(grace));
      if (!s.ok()) SKIFF_LOG(Warn) << "stopping container " << id << ": " << s.to_string();
    });
  }
  for (auto& t : stoppers) t.join();
  a.remove_pod_resources(uid);
  client::DeleteOptions d;
  d.grace_period_seconds = 0;
  d.precondition_uid = uid;
  auto r = a.client.remove(client::resources::kPods.in(ns), name, d);
  if (!r.ok() && !r.status().is_not_found() && r.status().code() != StatusCode::kConflict) {
    SKIFF_LOG(Warn) << "deleting pod " << ns << "/" << name << ": " << r.status().to_string();
    retry_at(now() + std::chrono::seconds(1));
    return false;
  }
  return true;
}

bool PodWorker::ensure_image(const json& pod, const json& c, std::string* image_ref) {
  Agent::Impl& a = *agent;
  const std::string cname = str(c, "name");
  const std::string image = str(c, "image");
  const std::string field = "spec.containers{" + cname + "}";
  const std::string policy = pull_policy(c);
  auto local = a.image_store->get(image);
  if (policy != "Always" && local.ok()) {
    if (image_ids.count(cname) == 0) {
      a.record_event(pod, "Normal", "Pulled",
                     "Container image \"" + image + "\" already present on machine", field);
    }
    image_ids[cname] = local->repo_digests.empty() ? local->id : local->repo_digests[0];
    *image_ref = local->id;
    return true;
  }
  if (policy == "Never") {
    waiting[cname] = {"ErrImageNeverPull",
                      "Container image \"" + image + "\" is not present with pull policy of Never"};
    a.record_event(pod, "Warning", "ErrImageNeverPull", waiting[cname].message, field);
    return false;
  }
  auto backoff = pull_backoff.find(cname);
  if (backoff != pull_backoff.end() && now() < backoff->second) {
    waiting[cname] = {"ImagePullBackOff", "Back-off pulling image \"" + image + "\""};
    a.record_event(pod, "Normal", "BackOff", waiting[cname].message, field);
    retry_at(backoff->second);
    return false;
  }
  images::PullOptions po;
  // imagePullSecrets: the first secret with credentials for the image's registry.
  auto ref = images::parse_reference(image);
  if (ref.ok()) {
    for (const auto& s : sub(pod["spec"], "imagePullSecrets")) {
      auto secret = a.client.get(client::resources::kSecrets.in(ns), str(s, "name"));
      if (!secret.ok()) continue;
      std::string encoded = str(sub(**secret, "data"), ".dockerconfigjson");
      if (encoded.empty()) encoded = str(sub(**secret, "data"), ".dockercfg");
      auto decoded = base64_decode(encoded);
      if (!decoded.ok()) continue;
      auto auths = images::parse_docker_config(*decoded);
      if (!auths.ok()) continue;
      auto creds = images::find_credentials(*auths, ref->domain, ref->repository);
      if (creds) {
        po.credentials = *creds;
        break;
      }
    }
  }
  a.record_event(pod, "Normal", "Pulling", "Pulling image \"" + image + "\"", field);
  auto started = std::chrono::steady_clock::now();
  auto pulled = a.image_store->pull(image, po);
  if (!pulled.ok()) {
    int n = ++pull_failures[cname];
    auto delay = std::min<std::chrono::milliseconds>(
        a.options.crash_backoff_base * (1LL << std::min(n - 1, 10)), a.options.crash_backoff_max);
    pull_backoff[cname] = now() + delay;
    waiting[cname] = {"ErrImagePull", pulled.status().message()};
    a.record_event(pod, "Warning", "Failed", pulled.status().message(), field);
    a.record_event(pod, "Warning", "Failed", "Error: ErrImagePull", field);
    // The next sync, at the latest after the base back-off, shows ImagePullBackOff while the
    // back-off lasts; the one after it pulls again.
    retry_at(now() + std::min<std::chrono::milliseconds>(delay, a.options.crash_backoff_base));
    return false;
  }
  pull_failures.erase(cname);
  pull_backoff.erase(cname);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  // The store has no pull queue: the time waited is the time taken.
  a.record_event(pod, "Normal", "Pulled",
                 "Successfully pulled image \"" + image + "\" in " + short_duration(took) + " (" +
                     short_duration(took) + " including waiting). Image size: " +
                     std::to_string(pulled->size) + " bytes.",
                 field);
  image_ids[cname] = pulled->repo_digests.empty() ? pulled->id : pulled->repo_digests[0];
  *image_ref = pulled->id;
  return true;
}

bool PodWorker::start_container(const json& pod, const json& c, int attempt, bool init) {
  Agent::Impl& a = *agent;
  const std::string cname = str(c, "name");
  const std::string field =
      std::string(init ? "spec.initContainers{" : "spec.containers{") + cname + "}";
  if (sandbox_failed || !pending_sandbox) return false;
  // A container that could not be created is retried with the crash back-off (10 s, doubling
  // up to 5 min), not on every sync: the status write of the failure is itself an event.
  if (auto until = start_backoff.find(cname); until != start_backoff.end() && now() < until->second) {
    retry_at(until->second);
    return false;
  }
  std::string image_ref;
  if (!ensure_image(pod, c, &image_ref)) return false;
  auto image = a.image_store->get(image_ref);
  auto lowers = a.image_store->lower_dirs(image_ref);
  auto fail = [&](const std::string& reason, const std::string& message) {
    waiting[cname] = {reason, message};
    a.record_event(pod, "Warning", "Failed", "Error: " + message, field);
    int failures = start_failures[cname]++;
    auto delay = a.options.crash_backoff_base * (1LL << std::min(failures, 20));
    if (delay > a.options.crash_backoff_max) delay = a.options.crash_backoff_max;
    start_backoff[cname] = now() + delay;
    retry_at(start_backoff[cname]);
    return false;
  };
  if (!image.ok()) return fail("CreateContainerError", image.status().message());
  if (!lowers.ok()) return fail("CreateContainerError", lowers.status().message());
  // Usually the container is created while the sandbox's network attach runs; an env var
  // with the pod's IP needs the attach to be finished first.
  if (env_needs_pod_ip(c) && !await_sandbox(pod)) return false;

  const std::string id = container_id(uid, cname, attempt);
  const std::string dir = a.pod_dir(uid);
  runtime::ContainerConfig cfg;
  cfg.id = id;
  cfg.rootfs.lower_dirs = *lowers;
  cfg.rootfs.upper_dir = dir + "/rootfs/" + id + "/upper";
  cfg.rootfs.work_dir = dir + "/rootfs/" + id + "/work";

  // Environment: the image's, the Services', then the container's (later entries win).
  std::vector<std::string> env = image->config.env;
  {
    bool links = !(pod["spec"].contains("enableServiceLinks") &&
                   pod["spec"]["enableServiceLinks"].is_boolean() &&
                   !pod["spec"]["enableServiceLinks"].get<bool>());
    for (auto& e : service_env(a.service_informer->list(), ns, links)) {
      std::string key = e.substr(0, e.find('='));
      env.erase(std::remove_if(env.begin(), env.end(),
                               [&](const std::string& x) { return x.rfind(key + "=", 0) == 0; }),
                env.end());
      env.push_back(std::move(e));
    }
  }
  auto set_env = [&env](const std::string& k, const std::string& v) {
    std::string prefix = k + "=";
    env.erase(std::remove_if(env.begin(), env.end(),
                             [&](const std::string& e) { return e.rfind(prefix, 0) == 0; }),
              env.end());
    env.push_back(prefix + v);
  };
  // envFrom (ConfigMaps, Secrets) comes before env, whose entries win.
  auto env_from = a.volumes->env_from(pod, c);
  if (!env_from.ok()) return fail("CreateContainerConfigError", env_from.status().message());
  for (const auto& [k, v] : *env_from) set_env(k, v);
  for (const auto& e : sub(c, "env")) {
    std::string k = str(e, "name");
    if (k.empty()) continue;
    if (e.contains("value")) {
      set_env(k, runtime::expand_env_references(str(e, "value"), env));
    } else if (e.contains("valueFrom") && e["valueFrom"].contains("fieldRef")) {
      set_env(k, field_ref_value(pod, str(e["valueFrom"]["fieldRef"], "fieldPath"), pod_ip,
                                 a.facts.internal_ip));
    } else if (e.contains("valueFrom") && e["valueFrom"].is_object()) {
      // configMapKeyRef, secretKeyRef, resourceFieldRef; a missing optional one is left out.
      auto v = a.volumes->env_value(pod, c, e["valueFrom"]);
      if (!v.ok()) return fail("CreateContainerConfigError", v.status().message());
      if (*v) set_env(k, **v);
    } else {
      set_env(k, "");
    }
  }
  cfg.env = env;
  cfg.args = runtime::merge_command(image->config.entrypoint, image->config.cmd,
                                    strings(sub(c, "command")), strings(sub(c, "args")), env);
  if (cfg.args.empty()) {
    return fail("CreateContainerError", "no command specified");
  }
  cfg.working_dir = str(c, "workingDir");
  if (cfg.working_dir.empty()) cfg.working_dir = image->config.working_dir;

  // User: securityContext (container over pod), else the image's USER.
  const json& psc = sub(pod["spec"], "securityContext");
  const json& csc = sub(c, "securityContext");
  std::optional<int64_t> run_as_user, run_as_group;
  for (const json* sc : {&psc, &csc}) {
    if (sc->contains("runAsUser") && (*sc)["runAsUser"].is_number()) {
      run_as_user = (*sc)["runAsUser"].get<int64_t>();
    }
    if (sc->contains("runAsGroup") && (*sc)["runAsGroup"].is_number()) {
      run_as_group = (*sc)["runAsGroup"].get<int64_t>();
    }
  }
  std::string passwd_root = lowers->empty() ? "" : lowers->front();
  for (const auto& l : *lowers) {
    if (fs::exists(l + "/etc/passwd")) {
      passwd_root = l;
      break;
    }
  }
  auto user = runtime::resolve_image_user(passwd_root, image->config.user);
  if (!user.ok() && !run_as_user)
    return fail("CreateContainerConfigError", user.status().message());
  if (user.ok()) {
    cfg.uid = user->uid;
    cfg.gid = user->gid;
    cfg.additional_gids = user->additional_gids;
  }
  if (run_as_user) cfg.uid = static_cast<uint32_t>(*run_as_user);
  if (run_as_group) cfg.gid = static_cast<uint32_t>(*run_as_group);
  cfg.privileged = flag(csc, "privileged");
  cfg.read_only_rootfs = flag(csc, "readOnlyRootFilesystem");
  // allowPrivilegeEscalation absent: allowed. runAsNonRoot and seccompProfile: the
  // container's, else the pod's. No seccomp profile: Unconfined, as the kubelet runs without
  // --seccomp-default.
  if (csc.contains("allowPrivilegeEscalation") && csc["allowPrivilegeEscalation"].is_boolean()) {
    cfg.allow_privilege_escalation = csc["allowPrivilegeEscalation"].get<bool>();
  }
  cfg.capabilities_add = strings(sub(sub(csc, "capabilities"), "add"));
  cfg.capabilities_drop = strings(sub(sub(csc, "capabilities"), "drop"));
  const json& non_root =
      csc.contains("runAsNonRoot") ? sub(csc, "runAsNonRoot") : sub(psc, "runAsNonRoot");
  cfg.run_as_non_root = non_root.is_boolean() && non_root.get<bool>();
  if (cfg.run_as_non_root) {
    Status nr = runtime::verify_run_as_non_root(
        run_as_user, run_as_user ? std::string() : std::to_string(cfg.uid));
    if (!nr.ok()) return fail("CreateContainerConfigError", nr.message());
  }
  std::string seccomp = str(sub(csc, "seccompProfile"), "type");
  if (seccomp.empty()) seccomp = str(sub(psc, "seccompProfile"), "type");
  if (seccomp == "Localhost") {
    return fail("CreateContainerError", "localhost seccomp profiles are not supported by this node");
  }
  cfg.seccomp = seccomp == "RuntimeDefault" ? runtime::ContainerConfig::Seccomp::kRuntimeDefault
                                            : runtime::ContainerConfig::Seccomp::kUnconfined;
  for (const auto& sc : sub(psc, "sysctls")) {
    if (!str(sc, "name").empty()) cfg.sysctls[str(sc, "name")] = str(sc, "value");
  }
  cfg.tty = flag(c, "tty");
  cfg.stdin = flag(c, "stdin");
  cfg.stdin_once = flag(c, "stdinOnce");

  // The sandbox's namespaces exist; its network may still be being attached.
  const network::PodSandbox& sandbox = pending_sandbox->namespaces();
  cfg.network = runtime::NamespaceOption::join(sandbox.net_ns);
  cfg.ipc = runtime::NamespaceOption::join(sandbox.ipc_ns);
  cfg.uts = runtime::NamespaceOption::join(sandbox.uts_ns);
  cfg.pid = runtime::NamespaceOption::create();
  cfg.mounts.push_back({runtime::Mount::Type::kBind, "/etc/hosts", dir + "/etc-hosts", false, 0});
  cfg.mounts.push_back(
      {runtime::Mount::Type::kBind, "/etc/resolv.conf", dir + "/resolv.conf", false, 0});
  cfg.mounts.push_back({runtime::Mount::Type::kBind, "/etc/hostname", dir + "/hostname", false, 0});
  // Volumes: the pod's are set up first (the container waits in ContainerCreating while one
  // cannot be, with FailedMount events), then this container's mounts.
  if (Status vs = a.volumes->prepare(pod); !vs.ok()) {
    waiting.erase(cname);
    retry_at(now() + std::chrono::seconds(2));
    return false;
  }
  auto volume_mounts = a.volumes->container_mounts(pod, c, env);
  if (!volume_mounts.ok()) {
    return fail("CreateContainerConfigError", volume_mounts.status().message());
  }
  cfg.mounts.insert(cfg.mounts.end(), volume_mounts->begin(), volume_mounts->end());

  const json& limits = sub(sub(c, "resources"), "limits");
  const json& requests = sub(sub(c, "resources"), "requests");
  if (limits.contains("cpu")) {
    auto q = Quantity::from_json(limits["cpu"]);
    if (q.ok()) cfg.resources.cpu_limit_milli = q->milli_value();
  }
  if (limits.contains("memory")) {
    auto q = Quantity::from_json(limits["memory"]);
    if (q.ok()) cfg.resources.memory_limit_bytes = q->value();
  }
  if (requests.contains("cpu")) {
    auto q = Quantity::from_json(requests["cpu"]);
    if (q.ok()) cfg.resources.cpu_request_milli = q->milli_value();
  } else if (limits.contains("cpu")) {
    cfg.resources.cpu_request_milli = cfg.resources.cpu_limit_milli;
  }
  // The OOM killer's preference by QoS class, as the kubelet sets it: Guaranteed pods last,
  // BestEffort first, Burstable by the share of the node's memory the container requests.
  {
    const std::string qos = str(sub(pod, "status"), "qosClass");
    int64_t memory_request = cfg.resources.memory_limit_bytes;
    if (requests.contains("memory")) {
      auto q = Quantity::from_json(requests["memory"]);
      if (q.ok()) memory_request = q->value();
    }
    runtime::QosClass qc = qos == "Guaranteed"   ? runtime::QosClass::kGuaranteed
                           : qos == "Burstable" ? runtime::QosClass::kBurstable
                                                : runtime::QosClass::kBestEffort;
    // Below its own score only with CAP_SYS_RESOURCE (some hosts' root lacks it): the
    // container then keeps the agent's.
    cfg.oom_score_adj = std::max(runtime::oom_score_adj(qc, memory_request, a.facts.host.memory_bytes),
                                 lowest_oom_score_adj());
  }

  cfg.log_path = dir + "/logs/" + cname + "/" + std::to_string(attempt) + ".log";
  std::error_code ec;
  fs::create_directories(dir + "/logs/" + cname, ec);
  const json& m = pod["metadata"];
  cfg.annotations = {{"io.kubernetes.pod.name", str(m, "name")},
                     {"io.kubernetes.pod.namespace", str(m, "namespace")},
                     {"io.kubernetes.pod.uid", str(m, "uid")},
                     {"io.kubernetes.container.name", cname},
                     {"io.kubernetes.container.restartCount", std::to_string(attempt)}};

  // The container's cgroup is <pod cgroup>/<id>; the pod's cgroup carries the pod's limits.
  if (a.pod_cgroups) {
    auto parent = a.pod_cgroups->ensure_pod(pod);
    if (!parent.ok()) return fail("CreateContainerError", parent.status().message());
    cfg.cgroup_parent = *parent;
  }
  // A leftover of an interrupted create with the same attempt number goes first.
  a.container_runtime->remove(id);
  Status s = a.container_runtime->create(cfg);
  if (!s.ok()) {
    fs::remove_all(dir + "/rootfs/" + id, ec);
    return fail("CreateContainerError", s.message());
  }
  // Nothing starts before the pod's network is attached (and /etc/hosts names its IP).
  if (!await_sandbox(pod)) {
    if (Status rs = a.container_runtime->remove(id); !rs.ok()) {
      SKIFF_LOG(Warn) << "removing container " << id << ": " << rs.to_string();
    }
    fs::remove_all(dir + "/rootfs/" + id, ec);
    return false;
  }
  a.record_event(pod, "Normal", "Created", "Created container " + cname, field);
  start_backoff.erase(cname);
  start_failures.erase(cname);
  s = a.container_runtime->start(id);
  if (!s.ok()) {
    a.record_event(pod, "Warning", "Failed", "Error: " + s.message(), field);
    retry_at(now() + a.options.crash_backoff_base);
    return false;
  }
  a.record_event(pod, "Normal", "Started", "Started container " + cname, field);
  waiting.erase(cname);
  // Only the previous attempt is kept (for `kubectl logs --previous`).
  for (int old = attempt - 2; old >= 0; --old) {
    std::string old_id = container_id(uid, cname, old);
    if (!fs::exists(a.container_runtime->options().root_dir + "/containers/" + old_id)) break;
    a.container_runtime->remove(old_id);
    fs::remove_all(dir + "/rootfs/" + old_id, ec);
  }
  return true;
}

bool PodWorker::await_sandbox(const json& pod) {
  Agent::Impl& a = *agent;
  if (sandbox_failed || !pending_sandbox) return false;
  auto sb = pending_sandbox->wait();
  Status failure;
  if (!sb.ok()) {
    failure = sb.status();
  } else {
    pod_ip = sb->pod_ip;
    if (hosts_pod_ip != pod_ip) {
      failure = network::update_pod_hosts_file(
          a.pod_dir(uid), pod_hosts_config(pod, pod_ip, a.options.cluster_domain));
      if (failure.ok()) hosts_pod_ip = pod_ip;
    }
  }
  if (failure.ok()) return true;
  sandbox_failed = true;
  a.record_event(pod, "Warning", "FailedCreatePodSandBox",
                 "Failed to create pod sandbox: " + failure.message());
  retry_at(now() + std::chrono::seconds(2));
  return false;
}

void PodWorker::sync_running(const json& pod) {
  Agent::Impl& a = *agent;
  const json& spec = pod["spec"];
  const json& status = sub(pod, "status");
  const std::string policy =
      str(spec, "restartPolicy").empty() ? "Always" : str(spec, "restartPolicy");
  TimePoint t = now();
  if (start_time.empty()) {
    start_time = str(status, "startTime");
    if (start_time.empty()) start_time = format_rfc3339(t);
  }

  // Sandbox: its namespaces first; the network attach (CNI ADD) runs in the background while
  // the containers are created, and is waited for before any starts (await_sandbox).
  bool sandbox_ready = false;
  pending_sandbox.reset();
  sandbox_failed = false;
  {
    network::PodSandboxRequest req;
    req.pod_uid = uid;
    req.pod_name = name;
    req.pod_namespace = ns;
    req.hostname = str(spec, "hostname");
    for (const auto& c : sub(spec, "containers")) {
      for (const auto& p : sub(c, "ports")) {
        if (p.contains("hostPort") && p["hostPort"].is_number() && p["hostPort"].get<int>() > 0) {
          network::HostPortMapping hp;
          hp.container_port = p.value("containerPort", 0);
          hp.host_port = p["hostPort"].get<int>();
          hp.protocol = str(p, "protocol").empty() ? "TCP" : str(p, "protocol");
          hp.host_ip = str(p, "hostIP");
          req.port_mappings.push_back(hp);
        }
      }
    }
    auto sb = a.pod_network->begin_create_sandbox(req);
    if (sb.ok()) {
      sandbox_ready = true;
      pending_sandbox = std::move(*sb);
    } else {
      a.record_event(pod, "Warning", "FailedCreatePodSandBox",
                     "Failed to create pod sandbox: " + sb.status().message());
      retry_at(t + std::chrono::seconds(2));
    }
  }
  if (sandbox_ready && !dns_written) {
    // /etc/hosts gets the pod's line once the attach gave the pod its IP (await_sandbox),
    // written into this same file, which the containers created meanwhile bind-mount.
    network::PodHostsConfig hosts = pod_hosts_config(pod, "", a.options.cluster_domain);
    network::PodResolvConfig resolv;
    resolv.dns_policy = str(spec, "dnsPolicy");
    resolv.pod_namespace = ns;
    resolv.cluster_dns = a.options.cluster_dns;
    resolv.cluster_domain = a.options.cluster_domain;
    if (spec.contains("dnsConfig") && spec["dnsConfig"].is_object()) {
      network::PodDnsConfig dc;
      dc.nameservers = strings(sub(spec["dnsConfig"], "nameservers"));
      dc.searches = strings(sub(spec["dnsConfig"], "searches"));
      for (const auto& o : sub(spec["dnsConfig"], "options")) {
        network::DnsOption opt{str(o, "name"), std::nullopt};
        if (o.contains("value") && o["value"].is_string())
          opt.value = o["value"].get<std::string>();
        dc.options.push_back(opt);
      }
      resolv.dns_config = dc;
    }
    auto files = network::write_pod_dns_files(a.pod_dir(uid), hosts, resolv);
    if (files.ok()) {
      dns_written = true;
      hosts_pod_ip.clear();
    } else {
      sandbox_ready = false;
      a.record_event(pod, "Warning", "FailedCreatePodSandBox", files.status().message());
      retry_at(t + std::chrono::seconds(2));
    }
  }

  // The containers the runtime has for the pod, by name, attempts ascending.
  std::map<std::string, std::vector<runtime::ContainerStatus>> by_name;
  std::map<std::string, std::vector<int>> attempts;
  auto refresh = [&] {
    by_name.clear();
    attempts.clear();
    auto list = a.pod_containers(uid);
    std::vector<std::pair<ContainerName, runtime::ContainerStatus>> named;
    for (auto& st : list) {
      ContainerName cn;
      if (parse_container_id(st.id, &cn)) named.emplace_back(cn, std::move(st));
    }
    std::sort(named.begin(), named.end(),
              [](const auto& x, const auto& y) { return x.first.attempt < y.first.attempt; });
    for (auto& [cn, st] : named) {
      by_name[cn.name].push_back(std::move(st));
      attempts[cn.name].push_back(cn.attempt);
    }
  };
  refresh();
  auto latest_attempt = [&](const std::string& n) {
    auto it = attempts.find(n);
    return it == attempts.end() || it->second.empty() ? -1 : it->second.back();
  };

  // Restarts `c` after its back-off, or reports CrashLoopBackOff until then.
  auto restart_after_backoff = [&](const json& c, const runtime::ContainerStatus& last, int attempt,
                                   bool init) {
    const std::string cname = str(c, "name");
    auto delay = a.options.crash_backoff_base * (1LL << std::min(attempt, 20));
    if (delay > a.options.crash_backoff_max) delay = a.options.crash_backoff_max;
    TimePoint finished = last.finished_at.value_or(t);
    TimePoint until = finished + delay;
    if (t < until) {
      std::string full = pod_full_name(pod);
      waiting[cname] = {"CrashLoopBackOff", "back-off " + short_duration(delay) +
                                                " restarting failed container=" + cname +
                                                " pod=" + full};
      if (backoff_reported.insert(last.id).second) {
        a.record_event(
            pod, "Warning", "BackOff",
            "Back-off restarting failed container " + cname + " in pod " + full,
            std::string(init ? "spec.initContainers{" : "spec.containers{") + cname + "}");
      }
      retry_at(until);
      return;
    }
    start_container(pod, c, attempt + 1, init);
  };

  bool init_done = true;
  bool init_failed = false;
  if (sandbox_ready) {
    for (const auto& c : sub(spec, "initContainers")) {
      const std::string cname = str(c, "name");
      int att = latest_attempt(cname);
      if (att < 0) {
        start_container(pod, c, 0, true);
        init_done = false;
        break;
      }
      const auto& st = by_name[cname].back();
      if (st.state == runtime::ContainerState::kCreated) {
        // Created but never started (interrupted): created again, with the pod's network.
        start_container(pod, c, att, true);
        init_done = false;
        break;
      }
      if (st.state != runtime::ContainerState::kExited) {
        init_done = false;
        break;
      }
      if (st.exit_code == 0) continue;
      init_done = false;
      if (policy == "Never") {
        init_failed = true;
      } else {
        restart_after_backoff(c, st, att, true);
      }
      break;
    }
    if (init_done) {
      if (kill_unhealthy(pod, by_name)) refresh();
      for (const auto& c : sub(spec, "containers")) {
        const std::string cname = str(c, "name");
        int att = latest_attempt(cname);
        if (att < 0) {
          start_container(pod, c, 0, false);
          continue;
        }
        const auto& st = by_name[cname].back();
        if (st.state == runtime::ContainerState::kCreated) {
          // Created but never started (interrupted): created again, with the pod's network.
          start_container(pod, c, att, false);
          continue;
        }
        if (st.state != runtime::ContainerState::kExited) continue;
        bool restart = policy == "Always" || (policy == "OnFailure" && st.exit_code != 0);
        if (restart) restart_after_backoff(c, st, att, false);
      }
    }
    refresh();
  } else {
    init_done = sub(spec, "initContainers").empty();
  }
  if (sandbox_ready && !await_sandbox(pod)) {
    sandbox_ready = false;
    refresh();
  }
  pending_sandbox.reset();
  sync_probes(pod, by_name);

  // Status.
  auto terminated_of = [&](const runtime::ContainerStatus& st) {
    json term = {{"exitCode", st.exit_code},
                 {"reason", st.reason.empty() ? "Error" : st.reason},
                 {"containerID", "runc://" + st.id}};
    if (st.started_at) term["startedAt"] = format_rfc3339(*st.started_at);
    if (st.finished_at) term["finishedAt"] = format_rfc3339(*st.finished_at);
    return json{{"terminated", term}};
  };
  int never_started = 0, running = 0, stopped = 0, succeeded = 0;
  std::vector<std::string> unready, incomplete_init;
  auto container_status = [&](const json& c, bool init) {
    const std::string cname = str(c, "name");
    json cs = {{"name", cname},
               {"image", str(c, "image")},
               {"imageID", image_ids.count(cname) ? image_ids[cname] : ""},
               {"ready", false},
               {"restartCount", 0},
               {"started", false},
               {"lastState", json::object()}};
    auto it = by_name.find(cname);
    if (it == by_name.end() || it->second.empty()) {
      std::string reason = init ? "PodInitializing" : "ContainerCreating";
      if (!init && !init_done) reason = "PodInitializing";
      json w = {{"reason", reason}};
      auto wt = waiting.find(cname);
      if (wt != waiting.end()) w = {{"reason", wt->second.reason}, {"message", wt->second.message}};
      cs["state"] = {{"waiting", w}};
      if (!init) ++never_started;
      if (init) incomplete_init.push_back(cname);
      if (!init) unready.push_back(cname);
      return cs;
    }
    const auto& list = it->second;
    const auto& st = list.back();
    cs["restartCount"] = attempts[cname].back();
    cs["containerID"] = "runc://" + st.id;
    if (image_ids.count(cname) == 0) {
      auto img = a.image_store->get(str(c, "image"));
      if (img.ok()) image_ids[cname] = img->repo_digests.empty() ? img->id : img->repo_digests[0];
      cs["imageID"] = image_ids.count(cname) ? image_ids[cname] : "";
    }
    if (list.size() >= 2 && list[list.size() - 2].state == runtime::ContainerState::kExited) {
      cs["lastState"] = terminated_of(list[list.size() - 2]);
    }
    if (st.state == runtime::ContainerState::kRunning) {
      json r = json::object();
      if (st.started_at) r["startedAt"] = format_rfc3339(*st.started_at);
      cs["state"] = {{"running", r}};
      // Main containers: started and ready as their probes say (probes.h).
      ContainerProbeStatus probed;
      if (!init) probed = a.prober->status(uid, cname, st.id);
      cs["started"] = init || probed.started;
      cs["ready"] = !init && probed.ready;
      if (!init) ++running;
      if (!init && !probed.ready) unready.push_back(cname);
      if (init) incomplete_init.push_back(cname);
    } else if (st.state == runtime::ContainerState::kExited) {
      auto wt = waiting.find(cname);
      if (wt != waiting.end() && wt->second.reason == "CrashLoopBackOff") {
        cs["state"] = {
            {"waiting", {{"reason", wt->second.reason}, {"message", wt->second.message}}}};
        cs["lastState"] = terminated_of(st);
      } else {
        cs["state"] = terminated_of(st);
      }
      if (!init) {
        ++stopped;
        if (st.exit_code == 0) ++succeeded;
        unready.push_back(cname);
      } else if (st.exit_code != 0) {
        incomplete_init.push_back(cname);
      }
    } else {
      cs["state"] = {{"waiting", {{"reason", "ContainerCreating"}}}};
      if (!init) {
        ++never_started;
        unready.push_back(cname);
      } else {
        incomplete_init.push_back(cname);
      }
    }
    return cs;
  };
  json init_statuses = json::array();
  for (const auto& c : sub(spec, "initContainers"))
    init_statuses.push_back(container_status(c, true));
  json statuses = json::array();
  for (const auto& c : sub(spec, "containers")) statuses.push_back(container_status(c, false));

  std::string phase = "Pending";
  if (init_failed) {
    phase = "Failed";
  } else if (!init_done) {
    phase = "Pending";
  } else if (never_started > 0) {
    phase = "Pending";
  } else if (running > 0) {
    phase = "Running";
  } else if (stopped > 0) {
    if (policy == "Always") {
      phase = "Running";
    } else if (stopped == succeeded) {
      phase = "Succeeded";
    } else if (policy == "OnFailure") {
      phase = "Running";
    } else {
      phase = "Failed";
    }
  }
  bool terminal = phase == "Succeeded" || phase == "Failed";
  bool containers_ready = unready.empty() && !terminal;

  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
    return "[" + s + "]";
  };
  auto condition = [&](const std::string& type, bool ok, const std::string& reason,
                       const std::string& message) {
    std::string st = ok ? "True" : "False";
    std::string transition = format_rfc3339(t);
    for (const auto& e : sub(status, "conditions")) {
      if (str(e, "type") == type && str(e, "status") == st &&
          !str(e, "lastTransitionTime").empty()) {
        transition = str(e, "lastTransitionTime");
      }
    }
    if (auto it = last_transitions.find({type, st}); it != last_transitions.end()) {
      transition = it->second;
    }
    json c = {{"type", type},
              {"status", st},
              {"lastProbeTime", nullptr},
              {"lastTransitionTime", transition}};
    if (!ok && !reason.empty()) {
      c["reason"] = reason;
      if (!message.empty()) c["message"] = message;
    }
    return c;
  };
  json conditions = json::array();
  conditions.push_back(condition("PodReadyToStartContainers", sandbox_ready && !terminal, "", ""));
  conditions.push_back(condition("Initialized", init_done, "ContainersNotInitialized",
                                 "containers with incomplete status: " + join(incomplete_init)));
  std::string ready_reason = terminal ? "PodCompleted" : "ContainersNotReady";
  std::string ready_message = terminal ? "" : "containers with unready status: " + join(unready);
  conditions.push_back(condition("Ready", containers_ready, ready_reason, ready_message));
  conditions.push_back(condition("ContainersReady", containers_ready, ready_reason, ready_message));
  conditions.push_back(condition("PodScheduled", true, "", ""));

  json out = {
      {"phase", phase},
      {"conditions", conditions},
      {"hostIP", a.facts.internal_ip},
      {"hostIPs", {{{"ip", a.facts.internal_ip}}}},
      {"startTime", start_time},
      {"containerStatuses", statuses},
      {"qosClass", str(status, "qosClass").empty() ? "BestEffort" : str(status, "qosClass")}};
  if (!init_statuses.empty()) out["initContainerStatuses"] = init_statuses;
  if (!pod_ip.empty()) {
    out["podIP"] = pod_ip;
    out["podIPs"] = {{{"ip", pod_ip}}};
  }
  std::string written = out.dump();
  if (last_status == written) return;
  auto r = a.client.patch(client::resources::kPods.in(ns), name, client::PatchType::kMerge,
                          "{\"status\":" + written + "}", "status");
  if (r.ok()) {
    last_status = std::move(written);
    last_transitions.clear();
    for (const auto& c : conditions) {
      last_transitions[{str(c, "type"), str(c, "status")}] = str(c, "lastTransitionTime");
    }
  } else if (!r.status().is_not_found()) {
    SKIFF_LOG(Warn) << "writing the status of pod " << ns << "/" << name << ": "
                    << r.status().to_string();
    retry_at(now() + std::chrono::seconds(1));
  }
  if (terminal) a.pod_network->remove_sandbox(uid);
}

bool PodWorker::kill_unhealthy(
    const json& pod, const std::map<std::string, std::vector<runtime::ContainerStatus>>& latest) {
  Agent::Impl& a = *agent;
  const json& spec = pod["spec"];
  const bool restart = str(spec, "restartPolicy") != "Never";
  bool killed = false;
  for (const auto& c : sub(spec, "containers")) {
    const std::string cname = str(c, "name");
    auto it = latest.find(cname);
    if (it == latest.end() || it->second.empty()) continue;
    const runtime::ContainerStatus& st = it->second.back();
    if (st.state != runtime::ContainerState::kRunning) continue;
    ContainerProbeStatus probed = a.prober->status(uid, cname, st.id);
    if (!probed.failed) continue;
    int64_t grace = 30;
    if (probed.termination_grace_period_seconds) {
      grace = *probed.termination_grace_period_seconds;
    } else if (spec.contains("terminationGracePeriodSeconds") &&
               spec["terminationGracePeriodSeconds"].is_number_integer()) {
      grace = std::max<int64_t>(0, spec["terminationGracePeriodSeconds"].get<int64_t>());
    }
    std::string message = "Container " + cname + " failed " +
                          (*probed.failed == ProbeKind::kLiveness ? "liveness" : "startup") +
                          " probe";
    if (restart) message += ", will be restarted";
    a.record_event(pod, "Normal", "Killing", message, "spec.containers{" + cname + "}");
    a.prober->remove_container(uid, cname);
    Status s = a.container_runtime->stop(st.id, std::chrono::seconds(grace));
    if (!s.ok()) SKIFF_LOG(Warn) << "stopping container " << st.id << ": " << s.to_string();
    killed = true;
  }
  return killed;
}

void PodWorker::sync_probes(
    const json& pod, const std::map<std::string, std::vector<runtime::ContainerStatus>>& latest) {
  Agent::Impl& a = *agent;
  for (const auto& c : sub(pod["spec"], "containers")) {
    const std::string cname = str(c, "name");
    auto it = latest.find(cname);
    if (it == latest.end() || it->second.empty() ||
        it->second.back().state != runtime::ContainerState::kRunning) {
      a.prober->remove_container(uid, cname);
      continue;
    }
    const runtime::ContainerStatus& st = it->second.back();
    ProbeTarget t;
    t.pod_uid = uid;
    t.pod_namespace = ns;
    t.pod_name = name;
    t.container_name = cname;
    t.container_id = st.id;
    t.pod_ip = pod_ip;
    // Stable across syncs: a different start time would restart the probes.
    t.started_at = st.started_at.value_or(st.created_at.value_or(TimePoint()));
    t.liveness = parse_probe(c, ProbeKind::kLiveness);
    t.readiness = parse_probe(c, ProbeKind::kReadiness);
    t.startup = parse_probe(c, ProbeKind::kStartup);
    a.prober->update(t);
  }
}

}  // namespace skiff::agent
