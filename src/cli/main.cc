// skiff: one binary, several roles. `skiff server` runs the control plane.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include "agent/agent.h"
#include "agent/images/image_command.h"
#include "apiserver/api_server.h"
#include "apiserver/pki/pki.h"
#include "client/client.h"
#include "controllers/framework.h"
#include "scheduler/scheduler.h"

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: skiff <command> [flags]\n\n"
               "commands:\n"
               "  server     run the control plane (API server, store) and a node agent\n"
               "  agent      join a cluster as a node that runs pods (--server URL --token T)\n"
               "  sim-nodes  register simulated nodes that run pods without containers\n"
               "  image      import, pull, list and remove the node's container images\n"
               "  cleanup    remove a stopped node's containers, mounts, network and rules\n"
               "  version    print the version\n");
}

void server_usage() {
  std::fprintf(stderr,
               "usage: skiff server [flags]\n\n"
               "  --data-dir DIR        state, credentials and kubeconfig (default /var/lib/skiff)\n"
               "  --port N              HTTPS port of the API (default 6443; 0 picks a free one)\n"
               "  --bind-address ADDR   address to listen on (default 0.0.0.0)\n"
               "  --tls-san NAME        extra name or IP for the serving certificate (repeatable)\n"
               "  --service-cidr CIDR   Service cluster IPs (default 10.43.0.0/16)\n"
               "  --cluster-cidr CIDR   Pod IPs (default 10.42.0.0/16)\n"
               "  --controllers LIST    controllers to run: * (all, the default), name, -name\n"
               "  --scheduler-strategy S  LeastAllocated (spread, the default) or\n"
               "                        MostAllocated (bin packing: fewer, fuller nodes)\n"
               "  --disable-agent       do not run a node agent in this process\n"
               "  --node-name NAME      the agent's Node name (default: the host name)\n"
               "  --bridge-name NAME    the agent's pod bridge (default skiff0)\n"
               "  --disable-kube-proxy  the agent runs no service proxy (no ClusterIP rules)\n"
               "  --disable-cluster-dns the agent serves no cluster DNS to its pods\n"
               "  --kubelet-port N      the agent's kubelet API port (default 10250; 0: any)\n"
               "  --eviction-hard LIST  node filesystem thresholds for DiskPressure (default\n"
               "                        nodefs.available<10%%,nodefs.inodesFree<5%%; 0%% is off)\n"
               "  --image-gc-high-threshold N  disk use %% that starts image GC (default 85;\n"
               "                        100 turns it off)\n"
               "  --image-gc-low-threshold N   disk use %% image GC frees down to (default 80)\n"
               "  --pod-max-pids N             most processes per pod (default -1: no limit)\n");
}

// The cluster DNS Service IP: the tenth address of the service CIDR (10.43.0.10 by default).
std::string cluster_dns_ip(const std::string& service_cidr) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (std::sscanf(service_cidr.c_str(), "%u.%u.%u.%u", &a, &b, &c, &d) != 4) return "10.43.0.10";
  return std::to_string(a) + "." + std::to_string(b) + "." + std::to_string(c) + "." +
         std::to_string(d + 10);
}

int run_server(int argc, char** argv) {
  skiff::apiserver::ApiServer::Options o;
  std::vector<std::string> controllers;
  bool bin_packing = false;
  std::string node_name;
  std::string bridge_name = "skiff0";
  bool disable_kube_proxy = false;
  bool disable_cluster_dns = false;
  int kubelet_port = 10250;
  skiff::agent::AgentOptions disk_options;  // eviction and image GC thresholds
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    auto next = [&](const char* flag) -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) {
        std::fprintf(stderr, "skiff server: %s needs a value\n", flag);
        return false;
      }
      value = argv[++i];
      return true;
    };
    if (a == "--data-dir") {
      if (!next("--data-dir")) return 2;
      o.data_dir = value;
    } else if (a == "--port") {
      if (!next("--port")) return 2;
      char* end = nullptr;
      long p = std::strtol(value.c_str(), &end, 10);
      if (end == value.c_str() || *end != '\0' || p < 0 || p > 65535) {
        std::fprintf(stderr, "skiff server: --port %s: want a number from 0 to 65535\n",
                     value.c_str());
        return 2;
      }
      o.port = static_cast<unsigned>(p);
    } else if (a == "--bind-address") {
      if (!next("--bind-address")) return 2;
      o.bind_address = value;
    } else if (a == "--tls-san") {
      if (!next("--tls-san")) return 2;
      o.tls_sans.push_back(value);
    } else if (a == "--service-cidr") {
      if (!next("--service-cidr")) return 2;
      o.service_cidr = value;
    } else if (a == "--cluster-cidr") {
      if (!next("--cluster-cidr")) return 2;
      o.cluster_cidr = value;
    } else if (a == "--controllers") {
      if (!next("--controllers")) return 2;
      size_t start = 0;
      while (start <= value.size()) {
        size_t comma = value.find(',', start);
        if (comma == std::string::npos) comma = value.size();
        if (comma > start) controllers.push_back(value.substr(start, comma - start));
        start = comma + 1;
      }
    } else if (a == "--scheduler-strategy") {
      if (!next("--scheduler-strategy")) return 2;
      if (value == "MostAllocated") {
        bin_packing = true;
      } else if (value != "LeastAllocated") {
        std::fprintf(stderr,
                     "skiff server: --scheduler-strategy %s: want LeastAllocated or "
                     "MostAllocated\n",
                     value.c_str());
        return 2;
      }
    } else if (a == "--disable-agent") {
      o.disable_agent = true;
    } else if (a == "--node-name") {
      if (!next("--node-name")) return 2;
      node_name = value;
    } else if (a == "--bridge-name") {
      if (!next("--bridge-name")) return 2;
      bridge_name = value;
    } else if (a == "--disable-kube-proxy") {
      disable_kube_proxy = true;
    } else if (a == "--disable-cluster-dns") {
      disable_cluster_dns = true;
    } else if (a == "--eviction-hard" || a == "--image-gc-high-threshold" ||
               a == "--image-gc-low-threshold" || a == "--pod-max-pids") {
      std::string flag = a;
      if (!next(flag.c_str())) return 2;
      if (skiff::Status ds = skiff::agent::parse_node_flag(flag, value, &disk_options); !ds.ok()) {
        std::fprintf(stderr, "skiff server: %s: %s\n", flag.c_str(), ds.message().c_str());
        return 2;
      }
    } else if (a == "--kubelet-port") {
      if (!next("--kubelet-port")) return 2;
      kubelet_port = std::atoi(value.c_str());
    } else if (a == "-h" || a == "--help") {
      server_usage();
      return 0;
    } else {
      std::fprintf(stderr, "skiff server: unknown flag %s\n", a.c_str());
      server_usage();
      return 2;
    }
  }
  // Printed paths must work from any directory.
  std::error_code ec;
  auto abs = std::filesystem::absolute(o.data_dir, ec);
  if (!ec) o.data_dir = abs.lexically_normal().string();
  auto server = skiff::apiserver::ApiServer::start(o);
  if (!server.ok()) {
    std::fprintf(stderr, "skiff server: %s\n", server.status().to_string().c_str());
    return 1;
  }
  // The control loops run in-process and reach the API like any client would.
  skiff::client::Client controller_client(
      server.value()->local_transport("system:kube-controller-manager"),
      "kube-controller-manager");
  skiff::controllers::ManagerOptions mopts;
  mopts.controller_options.cluster_cidr = o.cluster_cidr;
  mopts.controller_options.service_cidr = o.service_cidr;
  for (const auto& c : controllers) mopts.enabled.push_back(c);
  skiff::controllers::ControllerManager manager(controller_client, mopts);
  manager.start();
  // The scheduler has informers of its own and records Events as default-scheduler.
  skiff::client::Client scheduler_client(
      server.value()->local_transport("system:kube-scheduler"), "default-scheduler");
  skiff::client::InformerFactory scheduler_informers(scheduler_client);
  skiff::controllers::EventRecorder scheduler_events(scheduler_client, "default-scheduler");
  skiff::scheduler::SchedulerOptions sopts;
  sopts.default_strategy = bin_packing ? skiff::scheduler::ScoringStrategy::kMostAllocated
                                       : skiff::scheduler::ScoringStrategy::kLeastAllocated;
  sopts.events = [&scheduler_events](const nlohmann::json& obj, const std::string& type,
                                     const std::string& reason, const std::string& message) {
    scheduler_events.record(obj, type, reason, message);
  };
  skiff::scheduler::Scheduler scheduler(scheduler_client, scheduler_informers, sopts);
  scheduler.start();
  scheduler_informers.start();
  // The node agent for this host, as `k3s server` runs one; it waits for the node IPAM
  // controller to give its Node a pod CIDR.
  std::unique_ptr<skiff::client::Client> agent_client;
  std::unique_ptr<skiff::agent::Agent> agent;
  if (!o.disable_agent) {
    if (node_name.empty()) {
      char host[256] = {};
      ::gethostname(host, sizeof host - 1);
      node_name = host;
    }
    agent_client = std::make_unique<skiff::client::Client>(
        server.value()->local_transport("system:node:" + node_name), "kubelet");
    skiff::agent::AgentOptions aopts;
    aopts.node_name = node_name;
    aopts.data_dir = o.data_dir;
    aopts.bridge_name = bridge_name;
    aopts.cluster_dns = cluster_dns_ip(o.service_cidr);
    aopts.cluster_cidr = o.cluster_cidr;
    aopts.run_service_proxy = !disable_kube_proxy;
    aopts.run_cluster_dns = !disable_cluster_dns;
    // The kubelet API checks the API server's calls against the join secret in <data>/token.
    aopts.kubelet_port = kubelet_port;
    aopts.eviction_nodefs_available_percent = disk_options.eviction_nodefs_available_percent;
    aopts.eviction_nodefs_inodes_free_percent = disk_options.eviction_nodefs_inodes_free_percent;
    aopts.image_gc_high_threshold_percent = disk_options.image_gc_high_threshold_percent;
    aopts.image_gc_low_threshold_percent = disk_options.image_gc_low_threshold_percent;
    aopts.pod_max_pids = disk_options.pod_max_pids;
    {
      std::ifstream token_file(o.data_dir + "/token");
      std::string token;
      std::getline(token_file, token);
      auto parsed = skiff::apiserver::pki::parse_join_token(token);
      if (parsed.ok()) aopts.kubelet_secret = parsed->secret;
    }
    agent = std::make_unique<skiff::agent::Agent>(*agent_client, aopts);
    auto s = agent->start();
    if (!s.ok()) {
      std::fprintf(stderr, "skiff server: node agent: %s\n", s.to_string().c_str());
      agent.reset();
    }
  }
  std::printf("skiff server listening on port %u\n", server.value()->port());
  std::printf("kubeconfig: %s\n", server.value()->kubeconfig_path().c_str());
  std::printf("  export KUBECONFIG=%s; kubectl get nodes\n",
              server.value()->kubeconfig_path().c_str());
  std::fflush(stdout);
  auto stop_components = [&] {
    if (agent) agent->stop();
    scheduler.stop();
    scheduler_informers.stop();
    manager.stop();
  };
  server.value()->wait(stop_components);
  stop_components();  // idempotent; for a stop() that did not come from a signal
  return 0;
}

}  // namespace

namespace skiff::cli {
int run_sim_nodes(int argc, char** argv);
int run_agent(int argc, char** argv);
int run_cleanup(int argc, char** argv);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "server") return run_server(argc - 2, argv + 2);
  if (cmd == "sim-nodes") return skiff::cli::run_sim_nodes(argc - 2, argv + 2);
  if (cmd == "agent") return skiff::cli::run_agent(argc - 2, argv + 2);
  if (cmd == "cleanup") return skiff::cli::run_cleanup(argc - 2, argv + 2);
  if (cmd == "image") return skiff::agent::images::run_image_command(argc - 2, argv + 2);
  if (cmd == "version" || cmd == "--version") {
    std::printf("skiff v0.1.0 (Kubernetes v1.32.0)\n");
    return 0;
  }
  usage();
  return 2;
}
