// `skiff sim-nodes`: simulated nodes for a running cluster, as kwok: they register, renew
// their leases and run the pods bound to them without containers, talking HTTPS to the API
// server named by a kubeconfig. Runs until SIGINT or SIGTERM, then stops and leaves the
// nodes behind (as stopped kubelets do: the node lifecycle controller will mark them
// NotReady); --delete-on-exit removes them instead.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>

#include "client/client.h"
#include "client/https_transport.h"
#include "common/time.h"
#include "simnodes/sim_nodes.h"

namespace skiff::cli {
namespace {

void sim_nodes_usage() {
  std::fprintf(
      stderr,
      "usage: skiff sim-nodes --kubeconfig PATH --count N [flags]\n\n"
      "Simulated nodes: they register, renew their leases and report the pods bound to\n"
      "them Running (Jobs' pods Succeeded) without starting containers.\n\n"
      "  --kubeconfig PATH       the cluster to join (default $KUBECONFIG)\n"
      "  --count N               how many nodes (default 1)\n"
      "  --name-prefix P         nodes are named P0, P1, ... (default sim-)\n"
      "  --first-index I         number of the first node (default 0)\n"
      "  --cpu Q                 CPU capacity of each node (default 4)\n"
      "  --memory Q              memory capacity of each node (default 8Gi)\n"
      "  --pods N                pod capacity of each node (default 110)\n"
      "  --label K=V             a label on every node (repeatable)\n"
      "  --taint K[=V]:EFFECT    a taint on every node (repeatable)\n"
      "  --job-run-time D        how long Job pods run, a duration (default 1s)\n"
      "  --workers N             concurrent status writes (default 16)\n"
      "  --delete-on-exit        delete the nodes when stopped\n");
}

bool parse_int(const std::string& text, long min, long max, long* out) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || end == text.c_str() || *end != '\0' || errno != 0 || v < min || v > max) {
    return false;
  }
  *out = v;
  return true;
}

// "key=value:Effect" or "key:Effect".
bool parse_taint(const std::string& text, simnodes::NodeTaint* out) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string kv = text.substr(0, colon);
  out->effect = text.substr(colon + 1);
  size_t eq = kv.find('=');
  out->key = kv.substr(0, eq);
  out->value = eq == std::string::npos ? "" : kv.substr(eq + 1);
  return !out->key.empty();
}

}  // namespace

int run_sim_nodes(int argc, char** argv) {
  simnodes::SimNodesOptions o;
  std::string kubeconfig;
  if (const char* env = std::getenv("KUBECONFIG"); env != nullptr) kubeconfig = env;
  bool delete_on_exit = false;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool has_value = false;
    if (size_t eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    auto next = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) {
        std::fprintf(stderr, "skiff sim-nodes: %s needs a value\n", a.c_str());
        return false;
      }
      value = argv[++i];
      return true;
    };
    auto bad = [&](const char* want) {
      std::fprintf(stderr, "skiff sim-nodes: %s %s: want %s\n", a.c_str(), value.c_str(), want);
      return 2;
    };
    long n = 0;
    if (a == "--kubeconfig") {
      if (!next()) return 2;
      kubeconfig = value;
    } else if (a == "--count") {
      if (!next()) return 2;
      if (!parse_int(value, 0, 1'000'000, &n)) return bad("a number from 0 to 1000000");
      o.count = static_cast<int>(n);
    } else if (a == "--name-prefix") {
      if (!next()) return 2;
      o.name_prefix = value;
    } else if (a == "--first-index") {
      if (!next()) return 2;
      if (!parse_int(value, 0, 1'000'000'000, &n)) return bad("a number >= 0");
      o.first_index = static_cast<int>(n);
    } else if (a == "--cpu") {
      if (!next()) return 2;
      o.cpu = value;
    } else if (a == "--memory") {
      if (!next()) return 2;
      o.memory = value;
    } else if (a == "--pods") {
      if (!next()) return 2;
      o.pods = value;
    } else if (a == "--label") {
      if (!next()) return 2;
      size_t eq = value.find('=');
      if (eq == std::string::npos || eq == 0) return bad("KEY=VALUE");
      o.labels[value.substr(0, eq)] = value.substr(eq + 1);
    } else if (a == "--taint") {
      if (!next()) return 2;
      simnodes::NodeTaint t;
      if (!parse_taint(value, &t)) return bad("KEY[=VALUE]:EFFECT");
      o.taints.push_back(t);
    } else if (a == "--job-run-time") {
      if (!next()) return 2;
      auto d = parse_go_duration(value);
      if (!d.ok() || d->count() < 0) return bad("a duration such as 1s or 2m");
      o.job_run_time = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
    } else if (a == "--workers") {
      if (!next()) return 2;
      if (!parse_int(value, 1, 1024, &n)) return bad("a number from 1 to 1024");
      o.workers = static_cast<int>(n);
    } else if (a == "--delete-on-exit") {
      delete_on_exit = true;
    } else if (a == "-h" || a == "--help") {
      sim_nodes_usage();
      return 0;
    } else {
      std::fprintf(stderr, "skiff sim-nodes: unknown flag %s\n", a.c_str());
      sim_nodes_usage();
      return 2;
    }
  }
  if (kubeconfig.empty()) {
    std::fprintf(stderr, "skiff sim-nodes: --kubeconfig is required (or set KUBECONFIG)\n");
    return 2;
  }

  // Signals are taken by a thread of their own (every thread started from here on inherits
  // the mask), so that Ctrl-C also interrupts a long registration.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto options = client::HttpsTransport::options_from_kubeconfig(kubeconfig);
  if (!options.ok()) {
    std::fprintf(stderr, "skiff sim-nodes: %s: %s\n", kubeconfig.c_str(),
                 options.status().to_string().c_str());
    return 1;
  }
  options->user_agent = "skiff-sim-nodes";
  // Every writer thread keeps its connection.
  options->max_idle_connections = static_cast<size_t>(o.workers) + 16;
  auto transport = client::HttpsTransport::create(*options);
  if (!transport.ok()) {
    std::fprintf(stderr, "skiff sim-nodes: %s\n", transport.status().to_string().c_str());
    return 1;
  }
  client::Client client(transport.value(), "skiff-sim-nodes");
  simnodes::SimNodes sim(client, o);

  std::mutex mu;
  std::condition_variable cv;
  bool signalled = false;  // guarded by mu
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    timespec tick{0, 200'000'000};
    while (!done.load()) {
      int sig = sigtimedwait(&signals, nullptr, &tick);
      if (sig == SIGINT || sig == SIGTERM) {
        std::fprintf(stderr, "skiff sim-nodes: %s, stopping\n",
                     sig == SIGINT ? "interrupted" : "terminated");
        {
          std::lock_guard<std::mutex> lock(mu);
          signalled = true;
        }
        cv.notify_all();
        sim.stop();
        return;
      }
    }
  });

  std::printf("skiff sim-nodes: registering %d nodes (%s%d ...)\n", o.count,
              o.name_prefix.c_str(), o.first_index);
  std::fflush(stdout);
  Status started = sim.start();
  int rc = 0;
  bool interrupted = false;
  {
    std::lock_guard<std::mutex> lock(mu);
    interrupted = signalled;
  }
  if (!started.ok() && !interrupted) {
    std::fprintf(stderr, "skiff sim-nodes: %s\n", started.to_string().c_str());
    rc = 1;
  } else if (!interrupted) {
    std::printf("skiff sim-nodes: %llu nodes running; Ctrl-C to stop\n",
                static_cast<unsigned long long>(sim.stats().nodes_registered));
    std::fflush(stdout);
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return signalled; });
  }
  done.store(true);
  waiter.join();
  sim.stop();

  simnodes::SimNodes::Stats s = sim.stats();
  std::printf(
      "skiff sim-nodes: %llu lease renewals (%llu failed), %llu pods started, %llu completed, "
      "%llu finalized\n",
      static_cast<unsigned long long>(s.lease_renewals),
      static_cast<unsigned long long>(s.lease_failures),
      static_cast<unsigned long long>(s.pods_started),
      static_cast<unsigned long long>(s.pods_completed),
      static_cast<unsigned long long>(s.pods_finalized));
  if (delete_on_exit) {
    Status d = sim.delete_nodes();
    if (!d.ok()) {
      std::fprintf(stderr, "skiff sim-nodes: deleting the nodes: %s\n", d.to_string().c_str());
      rc = 1;
    }
  }
  return rc;
}

}  // namespace skiff::cli
