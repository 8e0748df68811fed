// The agent: Node registration, Lease renewal, node status heartbeats, the pod informer, the
// relist of the runtime, and a pod worker per pod (see pod_worker.cc).
#include "agent/agent.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/agent_internal.h"
#include "agent/node_status.h"
#include "agent/probes.h"
#include "agent/server/kubelet_server.h"
#include "agent/services.h"
#include "agent/housekeeping.h"
#include "agent/stats_summary.h"
#include "agent/volumes.h"
#include "common/log.h"

namespace skiff::agent {

namespace fs = std::filesystem;
using nlohmann::json;

Agent::Agent(client::Client& client, AgentOptions options)
    : impl_(std::make_shared<Impl>(client, std::move(options))) {}

Agent::~Agent() { stop(); }

const AgentOptions& Agent::options() const { return impl_->options; }

std::string Agent::pod_cidr() const {
  std::lock_guard<std::mutex> l(impl_->cidr_mu);
  return impl_->pod_cidr;
}

Status parse_node_flag(const std::string& flag, const std::string& value, AgentOptions* o) {
  if (flag == "--eviction-hard") {
    auto t = parse_eviction_hard(value);
    if (!t.ok()) return t.status();
    o->eviction_nodefs_available_percent = t->nodefs_available_percent;
    o->eviction_nodefs_inodes_free_percent = t->nodefs_inodes_free_percent;
    return Status::Ok();
  }
  if (flag == "--pod-max-pids") {
    char* rest = nullptr;
    errno = 0;
    long long v = std::strtoll(value.c_str(), &rest, 10);
    if (value.empty() || *rest != '\0' || errno != 0 || v < -1) {
      return Status::BadRequest("\"" + value + "\": want a number of processes, or -1 for no limit");
    }
    o->pod_max_pids = v;
    return Status::Ok();
  }
  if (flag != "--image-gc-high-threshold" && flag != "--image-gc-low-threshold") {
    return Status::BadRequest("unknown flag " + flag);
  }
  char* rest = nullptr;
  long v = std::strtol(value.c_str(), &rest, 10);
  if (value.empty() || *rest != '\0' || v < 0 || v > 100) {
    return Status::BadRequest("\"" + value + "\": want a percentage from 0 to 100");
  }
  int& field = flag == "--image-gc-high-threshold" ? o->image_gc_high_threshold_percent
                                                    : o->image_gc_low_threshold_percent;
  field = static_cast<int>(v);
  return Status::Ok();
}

Agent::Impl::Impl(client::Client& c, AgentOptions o)
    : client(c),
      options(std::move(o)),
      pod_executor(std::make_unique<Executor>(ExecutorOptions{.max_threads = 256})) {
  state_dir = options.data_dir + "/agent";
}

Agent::Impl::~Impl() = default;

Status Agent::start() {
  Impl& a = *impl_;
  {
    std::lock_guard<std::mutex> l(a.mu);
    if (a.started) return a.start_status;
    a.started = true;
    a.start_status = a.start_locked();
    return a.start_status;
  }
}

void Agent::stop() { impl_->stop(); }

Status Agent::Impl::start_locked() {
  if (options.node_name.empty()) return Status::Invalid("the agent needs a node name");
  if (options.data_dir.empty()) return Status::Invalid("the agent needs a data dir");
  std::error_code ec;
  fs::create_directories(state_dir + "/pods", ec);
  if (ec) return Status::Internal("creating " + state_dir + ": " + ec.message());

  auto store = images::ImageStore::open(options.data_dir);
  if (!store.ok()) return store.status();
  image_store = std::move(*store);

  runtime::RuntimeOptions ro;
  ro.root_dir = state_dir + "/runtime";
  ro.runc_path = options.runc_path;
  ro.conmon_path = options.conmon_path;
  auto rt = runtime::ContainerRuntime::open(ro);
  if (!rt.ok()) return rt.status();
  container_runtime = std::move(*rt);

  // Probe workers start with the pods' containers (PodWorker::sync_probes).
  ProberOptions po;
  po.exec = [this](const std::string& id, const std::vector<std::string>& command,
                   std::chrono::milliseconds timeout) {
    return container_runtime->exec_sync(id, command, timeout);
  };
  po.on_unhealthy = [this](const ProbeTarget& t, const std::string& message) {
    client::ObjectPtr pod = pod_informer ? pod_informer->get(t.pod_namespace, t.pod_name) : nullptr;
    if (pod && (*pod)["metadata"].value("uid", "") == t.pod_uid) {
      Status s = record_unhealthy_event(client, *pod, options.node_name, t.container_name, message);
      if (!s.ok()) SKIFF_LOG(Debug) << "recording an Unhealthy event: " << s.to_string();
    }
  };
  po.on_change = [this](const std::string& uid) { wake(uid); };
  prober = std::make_unique<Prober>(std::move(po));

  facts.name = options.node_name;
  facts.internal_ip = options.node_ip.empty() ? detect_node_ip() : options.node_ip;
  facts.host = read_host_info();
  facts.runtime_version = runc_version(options.runc_path);
  facts.ephemeral_storage_bytes = filesystem_bytes(options.data_dir);
  {
    PodCgroupsOptions pco;
    pco.kubepods = kubepods_cgroup_name(options.kubepods_cgroup, options.bridge_name);
    pco.node_cpu_milli = facts.host.cpus * 1000;
    pco.node_memory_bytes = facts.host.memory_bytes;
    pco.pod_pids_limit = options.pod_max_pids;
    pco.state_dir = state_dir;  // recorded for `skiff cleanup`
    auto pc = PodCgroups::open(pco);
    if (!pc.ok()) return pc.status();
    pod_cgroups = std::move(*pc);
  }
  if (Status ks = start_kubelet_server(); !ks.ok()) return ks;

  Status s = register_node();
  if (!s.ok()) return s;

  // The pod CIDR: given, or the one the node IPAM controller assigns to the Node.
  client::ListOptions node_selector;
  node_selector.field_selector = "metadata.name=" + options.node_name;
  node_informer =
      std::make_unique<client::Informer>(client, client::resources::kNodes, node_selector);
  // The node reads no object's managedFields: the caches keep everything else.
  node_informer->set_transform(client::strip_managed_fields);
  node_informer->add_handlers(
      {.on_add = [this](const client::ObjectPtr& n) { on_node(n); },
       .on_update = [this](const client::ObjectPtr&, const client::ObjectPtr& n) { on_node(n); },
       .on_delete = nullptr});
  node_informer->start();
  std::string cidr = options.pod_cidr;
  if (cidr.empty()) {
    std::unique_lock<std::mutex> l(cidr_mu);
    cidr_cv.wait_for(l, options.pod_cidr_timeout, [&] { return !node_pod_cidr.empty(); });
    cidr = node_pod_cidr;
    if (cidr.empty()) {
      return Status::Unavailable("node " + options.node_name + " has no spec.podCIDR after " +
                                 std::to_string(options.pod_cidr_timeout.count()) + " ms");
    }
  }

  {
    std::lock_guard<std::mutex> l(cidr_mu);
    pod_cidr = cidr;
  }
  network::PodNetworkOptions no;
  no.state_dir = state_dir;
  no.pod_cidr = cidr;
  no.bridge_name = options.bridge_name;
  no.cni_bin_dir = options.cni_bin_dir;
  auto net = network::PodNetwork::open(no);
  if (!net.ok()) return net.status();
  pod_network = std::move(*net);

  // The node reads no object's managedFields: the caches keep everything else.
  shared_informers = std::make_unique<client::InformerFactory>(client);
  service_informer = &shared_informers->informer(client::resources::kServices);
  service_informer->set_transform(client::strip_managed_fields);

  // Services and DNS work before the first pod starts.
  if (options.run_service_proxy || options.run_cluster_dns) {
    shared_informers->informer(client::resources::kEndpointSlices)
        .set_transform(client::strip_managed_fields);
    NodeServicesOptions so;
    so.node_name = options.node_name;
    so.bridge_name = options.bridge_name;
    so.cluster_cidr = options.cluster_cidr.empty() ? cidr : options.cluster_cidr;
    so.cluster_dns = options.cluster_dns;
    so.cluster_domain = options.cluster_domain;
    so.run_proxy = options.run_service_proxy;
    so.run_dns = options.run_cluster_dns;
    so.informers = shared_informers.get();
    node_services = std::make_unique<NodeServices>(client, so);
    Status ss = node_services->start();
    if (!ss.ok()) return ss;
  }

  running = true;
  lease_thread = std::thread([this] { lease_loop(); });

  client::ListOptions pod_selector;
  pod_selector.field_selector = "spec.nodeName=" + options.node_name;
  pod_informer = std::make_unique<client::Informer>(client, client::resources::kPods, pod_selector);
  pod_informer->set_transform(client::strip_managed_fields);
  shared_informers->start();
  service_informer->wait_for_sync(std::chrono::seconds(30));
  // Pod volumes and env from ConfigMaps and Secrets; their changes refresh the volumes.
  config_map_informer = std::make_unique<client::Informer>(client, client::resources::kConfigMaps);
  secret_informer = std::make_unique<client::Informer>(client, client::resources::kSecrets);
  config_map_informer->set_transform(client::strip_managed_fields);
  secret_informer->set_transform(client::strip_managed_fields);
  {
    VolumeManagerOptions vo;
    vo.pods_dir = state_dir + "/pods";
    vo.node_cpu_milli = facts.host.cpus * 1000;
    vo.node_memory_bytes = facts.host.memory_bytes;
    vo.config_maps = config_map_informer.get();
    vo.secrets = secret_informer.get();
    vo.pods = [this] { return pod_informer->list(); };
    vo.record_event = [this](const json& pod, const std::string& type, const std::string& reason,
                             const std::string& message) {
      record_event(pod, type, reason, message);
    };
    volumes = std::make_unique<VolumeManager>(client, std::move(vo));
    client::InformerHandlers changed{
        .on_add = [this](const client::ObjectPtr&) { volumes->notify_changed(); },
        .on_update = [this](const client::ObjectPtr&,
                            const client::ObjectPtr&) { volumes->notify_changed(); },
        .on_delete = [this](const client::ObjectPtr&) { volumes->notify_changed(); }};
    config_map_informer->add_handlers(changed);
    secret_informer->add_handlers(changed);
    config_map_informer->start();
    secret_informer->start();
    config_map_informer->wait_for_sync(std::chrono::seconds(30));
    secret_informer->wait_for_sync(std::chrono::seconds(30));
    volumes->start();
  }
  pod_informer->add_handlers(
      {.on_add = [this](const client::ObjectPtr& p) { on_pod(p); },
       .on_update =
           [this](const client::ObjectPtr& old, const client::ObjectPtr& p) {
             // The worker's own status writes come back as updates; like the kubelet, the
             // agent owns the status, so only changes beyond it need a sync.
             if (!old || pod_changed_beyond_status(*old, *p)) on_pod(p);
           },
       .on_delete = [this](const client::ObjectPtr& p) { on_pod(p); }});
  pod_informer->start();
  pod_informer->wait_for_sync(std::chrono::seconds(30));
  pods_ready = true;
  relist_thread = std::thread([this] { relist_loop(); });
  HousekeepingOptions housekeeping_options;
  // Image garbage collection: the images of every pod on this node are in use (pods leave the
  // API only once their containers are removed): what their specs name, and the image IDs
  // their container statuses report (a tag may have moved on since the container started).
  housekeeping_options.image_store = image_store.get();
  housekeeping_options.image_gc_policy.high_threshold_percent = options.image_gc_high_threshold_percent;
  housekeeping_options.image_gc_policy.low_threshold_percent =
      std::min(options.image_gc_low_threshold_percent, options.image_gc_high_threshold_percent);
  housekeeping_options.images_in_use = [this]() -> Result<std::set<std::string>> {
    if (!pod_informer->synced()) return Status::Unavailable("the pod informer has not synced");
    std::set<std::string> in_use;
    for (const auto& p : pod_informer->list()) {
      const json& pod = *p;
      for (const char* list : {"initContainers", "containers", "ephemeralContainers"}) {
        auto spec = pod.find("spec");
        if (spec == pod.end() || !spec->contains(list) || !(*spec)[list].is_array()) continue;
        for (const auto& c : (*spec)[list]) {
          auto image = c.find("image");
          if (image != c.end() && image->is_string()) in_use.insert(image->get<std::string>());
        }
      }
      for (const char* list :
           {"initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"}) {
        auto status = pod.find("status");
        if (status == pod.end() || !status->contains(list) || !(*status)[list].is_array()) {
          continue;
        }
        for (const auto& cs : (*status)[list]) {
          auto id = cs.find("imageID");
          if (id != cs.end() && id->is_string() && !id->get<std::string>().empty()) {
            in_use.insert(id->get<std::string>());
          }
        }
      }
    }
    return in_use;
  };
  // FreeDiskSpaceFailed and ImageGCFailed, about the Node, as the kubelet records them: in
  // namespace default, the Node's UID being its name.
  housekeeping_options.record_node_event = [this](const std::string& type,
                                                  const std::string& reason,
                                                  const std::string& message) {
    post_event({{"kind", "Node"},
                {"name", options.node_name},
                {"uid", options.node_name},
                {"apiVersion", "v1"}},
               "default", type, reason, message);
  };
  housekeeping = std::make_unique<Housekeeping>(*container_runtime, std::move(housekeeping_options));
  housekeeping->start();
  SKIFF_LOG(Info) << "agent for node " << options.node_name << " started, pod CIDR " << cidr;
  return Status::Ok();
}

void Agent::Impl::on_node(const client::ObjectPtr& node) {
  std::string cidr;
  if (node->contains("spec") && (*node)["spec"].contains("podCIDR") &&
      (*node)["spec"]["podCIDR"].is_string()) {
    cidr = (*node)["spec"]["podCIDR"].get<std::string>();
  }
  if (cidr.empty()) return;
  std::lock_guard<std::mutex> l(cidr_mu);
  if (node_pod_cidr.empty()) {
    node_pod_cidr = cidr;
    cidr_cv.notify_all();
  }
}

Status Agent::Impl::register_node() {
  Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto created = client.create(client::resources::kNodes, node_object(facts, now()));
    if (created.ok()) {
      node_uid = (**created)["metadata"].value("uid", "");
      last = Status::Ok();
    } else if (created.status().code() == StatusCode::kAlreadyExists) {
      auto current = client.get(client::resources::kNodes, options.node_name);
      if (!current.ok()) {
        last = current.status();
        continue;
      }
      node_uid = (**current)["metadata"].value("uid", "");
      json meta_patch = {{"metadata", {{"labels", node_labels(facts)}}}};
      auto p = client.patch(client::resources::kNodes, options.node_name, client::PatchType::kMerge,
                            meta_patch.dump());
      if (!p.ok()) {
        last = p.status();
        continue;
      }
      NodePressure pressure{.disk = node_disk_pressure(options.data_dir, eviction_thresholds())};
      json status_patch = {{"status", node_status(facts, &**current, now(), pressure)}};
      auto ps = client.patch(client::resources::kNodes, options.node_name,
                             client::PatchType::kMerge, status_patch.dump(), "status");
      last = ps.status();
    } else {
      last = created.status();
    }
    if (last.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
  }
  if (!last.ok()) return last;
  return renew_lease();
}

Status Agent::Impl::renew_lease() {
  auto leases = client::resources::kLeases.in("kube-node-lease");
  auto p =
      client.patch(leases, options.node_name, client::PatchType::kMerge,
                   lease_renewal_patch(options.node_name, options.lease_duration_seconds, now()));
  if (p.ok()) return Status::Ok();
  if (!p.status().is_not_found()) return p.status();
  auto c = client.create(
      leases, lease_object(options.node_name, node_uid, options.lease_duration_seconds, now()));
  if (c.ok() || c.status().code() == StatusCode::kAlreadyExists) return Status::Ok();
  return c.status();
}

Status Agent::Impl::post_node_status() {
  auto current = client.get(client::resources::kNodes, options.node_name);
  if (current.status().is_not_found()) return register_node();
  if (!current.ok()) return current.status();
  NodePressure pressure{.disk = node_disk_pressure(options.data_dir, eviction_thresholds())};
  json patch = {{"status", node_status(facts, &**current, now(), pressure)}};
  return client
      .patch(client::resources::kNodes, options.node_name, client::PatchType::kMerge, patch.dump(),
             "status")
      .status();
}

EvictionThresholds Agent::Impl::eviction_thresholds() const {
  return {.nodefs_available_percent = options.eviction_nodefs_available_percent,
          .nodefs_inodes_free_percent = options.eviction_nodefs_inodes_free_percent};
}

void Agent::Impl::lease_loop() {
  auto next_status = std::chrono::steady_clock::now() + options.node_status_interval;
  // DiskPressure as last posted (a new Node is registered without): a change is posted at
  // once, as the kubelet does.
  bool disk_pressure = false;
  std::unique_lock<std::mutex> l(loop_mu);
  while (running) {
    loop_cv.wait_for(l, options.lease_renew_interval, [&] { return !running.load(); });
    if (!running) break;
    l.unlock();
    Status s = renew_lease();
    if (!s.ok()) SKIFF_LOG(Warn) << "renewing the node lease: " << s.to_string();
    const bool pressure_now = node_disk_pressure(options.data_dir, eviction_thresholds());
    if (std::chrono::steady_clock::now() >= next_status || pressure_now != disk_pressure) {
      s = post_node_status();
      if (!s.ok()) SKIFF_LOG(Warn) << "posting node status: " << s.to_string();
      if (s.ok()) disk_pressure = pressure_now;
      next_status = std::chrono::steady_clock::now() + options.node_status_interval;
    }
    l.lock();
  }
}

void Agent::Impl::stop() {
  // First: the kubelet API reads the informers and the runtime.
  if (kubelet_server) kubelet_server->stop();
  {
    std::lock_guard<std::mutex> l(loop_mu);
    if (!running.exchange(false)) {
      // Never started or already stopped; the informers may still need stopping.
    }
    loop_cv.notify_all();
  }
  if (pod_informer) pod_informer->stop();
  if (config_map_informer) config_map_informer->stop();
  if (secret_informer) secret_informer->stop();
  if (volumes) volumes->stop();
  if (node_informer) node_informer->stop();
  if (node_services) node_services->stop();
  if (shared_informers) shared_informers->stop();
  if (lease_thread.joinable()) lease_thread.join();
  if (relist_thread.joinable()) relist_thread.join();
  if (housekeeping) housekeeping->stop();
  std::map<std::string, std::shared_ptr<PodWorker>> workers_copy;
  {
    std::lock_guard<std::mutex> l(workers_mu);
    workers_copy.swap(workers);
  }
  for (auto& [uid, w] : workers_copy) w->request_stop();
  pod_executor->stop();  // waits for the syncs running now
  if (prober) prober->stop();
}

void Agent::Impl::on_pod(const client::ObjectPtr& pod) {
  const json& meta = (*pod)["metadata"];
  std::string uid = meta.value("uid", "");
  if (uid.empty()) return;
  notify_worker(uid, meta.value("namespace", ""), meta.value("name", ""));
}

void Agent::Impl::notify_worker(const std::string& uid, const std::string& ns,
                                const std::string& name) {
  std::lock_guard<std::mutex> l(workers_mu);
  if (!running) return;
  auto it = workers.find(uid);
  if (it != workers.end() && !it->second->finished) {
    it->second->notify();
    return;
  }
  if (it != workers.end()) workers.erase(it);
  auto w = std::make_shared<PodWorker>();
  w->uid = uid;
  w->ns = ns;
  w->name = name;
  w->agent = this;
  workers[uid] = w;
  w->notify();
}

// The kubelet's PLEG: container state changes found by listing the runtime wake the pod's
// worker; containers and sandboxes of pods this node no longer has are removed.
void Agent::Impl::relist_loop() {
  std::map<std::string, std::string> last;  // container id -> state
  std::unique_lock<std::mutex> l(loop_mu);
  while (running) {
    l.unlock();
    auto list = container_runtime->list();
    if (list.ok()) {
      std::map<std::string, std::string> seen;
      std::set<std::string> orphans;
      for (const auto& st : *list) {
        ContainerName cn;
        if (!parse_container_id(st.id, &cn)) continue;
        std::string state = std::string(runtime::container_state_name(st.state)) + "/" +
                            std::to_string(st.exit_code);
        seen[st.id] = state;
        auto prev = last.find(st.id);
        if (prev == last.end() || prev->second != state) wake(cn.pod_uid);
        if (!pod_known(cn.pod_uid)) orphans.insert(cn.pod_uid);
      }
      for (const auto& [id, state] : last) {
        ContainerName cn;
        if (seen.count(id) == 0 && parse_container_id(id, &cn)) wake(cn.pod_uid);
      }
      last = std::move(seen);
      for (const auto& sb : pod_network->list_sandboxes()) {
        if (!pod_known(sb.pod_uid)) orphans.insert(sb.pod_uid);
      }
      if (pod_cgroups) {
        for (const auto& e : pod_cgroups->list()) {
          if (!pod_known(e.uid)) orphans.insert(e.uid);
        }
      }
      for (const auto& uid : orphans) {
        SKIFF_LOG(Info) << "removing the containers of pod " << uid << ", gone from the API";
        remove_pod_resources(uid);
      }
    }
    l.lock();
    loop_cv.wait_for(l, options.relist_interval, [&] { return !running.load(); });
  }
}

void Agent::Impl::wake(const std::string& uid) {
  std::lock_guard<std::mutex> l(workers_mu);
  auto it = workers.find(uid);
  if (it != workers.end()) it->second->notify();
}

// True when the pod informer holds a pod with this uid, or a worker still owns it. A pod
// unknown to an unsynced informer counts as known, so that nothing is removed before the
// first list arrived.
bool Agent::Impl::pod_known(const std::string& uid) {
  if (!pod_informer->synced()) return true;
  {
    std::lock_guard<std::mutex> l(workers_mu);
    auto it = workers.find(uid);
    if (it != workers.end() && !it->second->finished) return true;
  }
  for (const auto& p : pod_informer->list()) {
    if ((*p)["metadata"].value("uid", "") == uid) return true;
  }
  return false;
}

std::string Agent::Impl::pod_dir(const std::string& uid) const {
  return state_dir + "/pods/" + uid;
}

void Agent::Impl::remove_pod_resources(const std::string& uid) {
  if (prober) prober->remove_pod(uid);
  auto ids = pod_containers(uid);
  for (const auto& st : ids) {
    Status s = container_runtime->remove(st.id);
    if (!s.ok()) SKIFF_LOG(Warn) << "removing container " << st.id << ": " << s.to_string();
  }
  if (pod_cgroups) {
    Status cs = pod_cgroups->remove(uid, true);
    if (!cs.ok()) SKIFF_LOG(Warn) << "removing the cgroup of pod " << uid << ": " << cs.to_string();
  }
  Status s = pod_network->remove_sandbox(uid);
  if (!s.ok()) SKIFF_LOG(Warn) << "removing the sandbox of pod " << uid << ": " << s.to_string();
  std::error_code ec;
  if (volumes) volumes->teardown(uid);  // unmounts tmpfs volumes before the removal
  fs::remove_all(pod_dir(uid), ec);
}

std::vector<runtime::ContainerStatus> Agent::Impl::pod_containers(const std::string& uid) {
  std::vector<runtime::ContainerStatus> out;
  std::error_code ec;
  std::string prefix = uid + "_";
  for (const auto& e :
       fs::directory_iterator(container_runtime->options().root_dir + "/containers", ec)) {
    std::string id = e.path().filename().string();
    if (id.rfind(prefix, 0) != 0) continue;
    auto st = container_runtime->status(id);
    if (st.ok()) out.push_back(std::move(*st));
  }
  return out;
}

// The kubelet API: logs, exec and attach resolve the pod through the informer and its
// containers through the runtime, port-forward dials into the pod's sandbox, and
// /stats/summary comes from the stats provider.
Status Agent::Impl::start_kubelet_server() {
  if (options.kubelet_port < 0) return Status::Ok();
  if (options.kubelet_secret.empty()) {
    SKIFF_LOG(Warn) << "no kubelet secret: node " << options.node_name
                    << " serves no logs, exec, attach or port-forward";
    return Status::Ok();
  }
  StatsSummaryOptions so;
  so.node_name = options.node_name;
  stats_provider = std::make_unique<StatsSummaryProvider>(*container_runtime, so);
  auto find_pod = [this](const std::string& ns, const std::string& name) -> client::ObjectPtr {
    if (!pods_ready) return nullptr;
    return pod_informer->get(ns, name);
  };
  server::KubeletServerOptions ko;
  ko.address = facts.internal_ip;
  ko.port = static_cast<unsigned>(options.kubelet_port);
  ko.cert_dir = state_dir + "/kubelet";
  ko.node_name = options.node_name;
  ko.node_ip = facts.internal_ip;
  ko.secret = options.kubelet_secret;
  ko.runtime = container_runtime.get();
  ko.find_container = [this, find_pod](const std::string& ns, const std::string& name,
                                       const std::string& container,
                                       bool previous) -> Result<server::ContainerTarget> {
    if (!pods_ready) return Status::Unavailable("the node agent is starting");
    client::ObjectPtr pod = find_pod(ns, name);
    if (!pod) return Status::NotFound("pod \"" + ns + "/" + name + "\" not found on this node");
    std::vector<std::pair<int, runtime::ContainerStatus>> found;
    for (auto& st : pod_containers((*pod)["metadata"].value("uid", ""))) {
      ContainerName cn;
      if (parse_container_id(st.id, &cn) && cn.name == container) {
        found.emplace_back(cn.attempt, std::move(st));
      }
    }
    std::sort(found.begin(), found.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<runtime::ContainerStatus> attempts;
    for (auto& f : found) attempts.push_back(std::move(f.second));
    return server::select_container(*pod, container, previous, attempts);
  };
  ko.pod_netns = [this, find_pod](const std::string& ns,
                                  const std::string& name) -> Result<std::string> {
    client::ObjectPtr pod = find_pod(ns, name);
    if (!pod) return Status::NotFound("pod \"" + ns + "/" + name + "\" not found on this node");
    auto sandbox = pod_network->get_sandbox((*pod)["metadata"].value("uid", ""));
    if (!sandbox.ok()) return sandbox.status();
    return sandbox->net_ns;
  };
  ko.stats_summary = [this]() -> Result<std::string> {
    std::vector<client::ObjectPtr> pods;
    if (pods_ready) pods = pod_informer->list();
    return stats_provider->summary_json(stats_pod_refs(pods));
  };
  auto ks = server::KubeletServer::start(ko);
  if (!ks.ok() && ks.status().code() == StatusCode::kUnavailable && ko.port != 0) {
    // Another kubelet (a second agent on this host) holds the port: any free one will do,
    // since the Node reports the port the API server is to use.
    SKIFF_LOG(Warn) << "kubelet port " << ko.port << ": " << ks.status().message()
                    << "; using a free port instead";
    ko.port = 0;
    ks = server::KubeletServer::start(ko);
  }
  if (!ks.ok()) return ks.status();
  kubelet_server = std::move(*ks);
  facts.kubelet_port = static_cast<int>(kubelet_server->port());
  SKIFF_LOG(Info) << "kubelet API of node " << options.node_name << " on " << facts.internal_ip
                  << ":" << facts.kubelet_port;
  return Status::Ok();
}

std::vector<std::string> service_env(const std::vector<client::ObjectPtr>& services,
                                     const std::string& pod_namespace, bool enable_service_links) {
  std::map<std::string, std::string> vars;
  auto add = [&vars](const json& svc) {
    const json& spec = svc["spec"];
    if (!spec.contains("clusterIP") || !spec["clusterIP"].is_string()) return;
    std::string ip = spec["clusterIP"].get<std::string>();
    if (ip.empty() || ip == "None") return;
    std::string name = svc["metadata"].value("name", "");
    for (char& c : name) c = c == '-' ? '_' : static_cast<char>(std::toupper(c));
    const json& ports = spec.contains("ports") ? spec["ports"] : json::array();
    if (!ports.is_array() || ports.empty()) return;
    vars[name + "_SERVICE_HOST"] = ip;
    for (size_t i = 0; i < ports.size(); ++i) {
      const json& p = ports[i];
      std::string port = std::to_string(p.value("port", 0));
      std::string proto = p.contains("protocol") && p["protocol"].is_string()
                              ? p["protocol"].get<std::string>()
                              : "TCP";
      std::string lower = proto;
      for (char& c : lower) c = static_cast<char>(std::tolower(c));
      if (i == 0) {
        vars[name + "_SERVICE_PORT"] = port;
        vars[name + "_PORT"] = lower + "://" + ip + ":" + port;
      }
      if (p.contains("name") && p["name"].is_string()) {
        std::string pname = p["name"].get<std::string>();
        for (char& c : pname) c = c == '-' ? '_' : static_cast<char>(std::toupper(c));
        vars[name + "_SERVICE_PORT_" + pname] = port;
      }
      std::string prefix = name + "_PORT_" + port + "_" + proto;
      vars[prefix] = lower + "://" + ip + ":" + port;
      vars[prefix + "_PROTO"] = lower;
      vars[prefix + "_PORT"] = port;
      vars[prefix + "_ADDR"] = ip;
    }
  };
  for (const auto& s : services) {
    const json& m = (*s)["metadata"];
    std::string ns = m.value("namespace", "");
    std::string name = m.value("name", "");
    if (ns == "default" && name == "kubernetes") {
      add(*s);
    } else if (enable_service_links && ns == pod_namespace) {
      add(*s);
    }
  }
  std::vector<std::string> out;
  for (const auto& [k, v] : vars) out.push_back(k + "=" + v);
  return out;
}

std::string container_id(const std::string& pod_uid, const std::string& name, int attempt) {
  return pod_uid + "_" + name + "_" + std::to_string(attempt);
}

bool parse_container_id(const std::string& id, ContainerName* out) {
  size_t first = id.find('_');
  size_t last = id.rfind('_');
  if (first == std::string::npos || last == first) return false;
  out->pod_uid = id.substr(0, first);
  out->name = id.substr(first + 1, last - first - 1);
  const std::string n = id.substr(last + 1);
  if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos) return false;
  out->attempt = std::atoi(n.c_str());
  return !out->pod_uid.empty() && !out->name.empty();
}

}  // namespace skiff::agent
