// bench_pod_start: how long a pod takes from the API POST that creates it to the watch event
// that shows it Running, through a real server, scheduler and node agent (bench/pod-start/
// run.sh sets them up and measures the baseline).
//
// One watch on the namespace is opened first; then `--pods` pods (busybox `sleep 3600`, the
// image already in the node's store, imagePullPolicy IfNotPresent) are created one after the
// other, each as soon as the previous one was seen Running, so that every latency is that of
// one pod start on an idle node. A pod's latency runs from just before its POST to the watch
// event whose status.phase is Running.
//
// Prints one line per pod ("pod <i> <ms>") and a summary line
// ("latency_ms p50 <x> p99 <y> max <z>"). The pods are left running (run.sh measures memory
// with them, then deletes them).
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/https_transport.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace client = skiff::client;

struct Flags {
  std::string kubeconfig;
  std::string ns = "default";
  std::string image = "docker.io/library/busybox:1.36";
  int pods = 100;
  int timeout_seconds = 120;
};

int usage() {
  std::fprintf(stderr,
               "usage: bench_pod_start --kubeconfig FILE [--namespace NS] [--pods N]\n"
               "                       [--image REF] [--timeout-seconds N]\n");
  return 2;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--kubeconfig" && (v = value())) {
      f.kubeconfig = v;
    } else if (a == "--namespace" && (v = value())) {
      f.ns = v;
    } else if (a == "--image" && (v = value())) {
      f.image = v;
    } else if (a == "--pods" && (v = value())) {
      f.pods = std::atoi(v);
    } else if (a == "--timeout-seconds" && (v = value())) {
      f.timeout_seconds = std::atoi(v);
    } else {
      return usage();
    }
  }
  if (f.kubeconfig.empty() || f.pods <= 0) return usage();

  auto transport = client::HttpsTransport::from_kubeconfig(f.kubeconfig);
  if (!transport.ok()) {
    std::fprintf(stderr, "bench_pod_start: %s\n", transport.status().to_string().c_str());
    return 1;
  }
  client::Client api(*transport, "bench-pod-start");
  const client::ResourceRef pods = client::resources::kPods.in(f.ns);

  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, Clock::time_point> running_at;  // guarded by mu
  std::string watch_error;                               // guarded by mu

  auto listed = api.list(pods);
  if (!listed.ok()) {
    std::fprintf(stderr, "bench_pod_start: list: %s\n", listed.status().to_string().c_str());
    return 1;
  }
  client::ListOptions wo;
  wo.resource_version = listed->resource_version;
  auto watch = api.watch(
      pods, wo,
      [&](const client::WatchEvent& e) {
        if (e.type != client::WatchEventType::kAdded && e.type != client::WatchEventType::kModified) {
          return;
        }
        const json& pod = *e.object;
        if (pod.value("/status/phase"_json_pointer, std::string()) != "Running") return;
        auto now = Clock::now();
        std::lock_guard<std::mutex> lock(mu);
        running_at.emplace(pod.value("/metadata/name"_json_pointer, std::string()), now);
        cv.notify_all();
      },
      [&](const skiff::Status& s) {
        std::lock_guard<std::mutex> lock(mu);
        watch_error = "watch closed: " + s.to_string();
        cv.notify_all();
      });
  if (!watch.ok()) {
    std::fprintf(stderr, "bench_pod_start: watch: %s\n", watch.status().to_string().c_str());
    return 1;
  }

  std::vector<double> latencies;
  for (int i = 0; i < f.pods; ++i) {
    std::string name = "start-" + std::to_string(i);
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"labels", {{"app", "bench-pod-start"}}}}},
                {"spec",
                 {{"terminationGracePeriodSeconds", 1},
                  {"containers",
                   json::array({{{"name", "main"},
                                 {"image", f.image},
                                 {"imagePullPolicy", "IfNotPresent"},
                                 {"command", json::array({"sleep", "3600"})}}})}}}};
    auto start = Clock::now();
    auto created = api.create(pods, pod);
    if (!created.ok()) {
      std::fprintf(stderr, "bench_pod_start: create %s: %s\n", name.c_str(),
                   created.status().to_string().c_str());
      return 1;
    }
    std::unique_lock<std::mutex> lock(mu);
    bool seen = cv.wait_for(lock, std::chrono::seconds(f.timeout_seconds), [&] {
      return running_at.count(name) > 0 || !watch_error.empty();
    });
    if (!watch_error.empty()) {
      std::fprintf(stderr, "bench_pod_start: %s\n", watch_error.c_str());
      return 1;
    }
    if (!seen) {
      std::fprintf(stderr, "bench_pod_start: pod %s not Running after %d s\n", name.c_str(),
                   f.timeout_seconds);
      return 1;
    }
    double ms = std::chrono::duration<double, std::milli>(running_at[name] - start).count();
    latencies.push_back(ms);
    std::printf("pod %d %.1f\n", i, ms);
    std::fflush(stdout);
  }
  (*watch)->stop();
  std::printf("latency_ms p50 %.1f p99 %.1f max %.1f\n", percentile(latencies, 0.5),
              percentile(latencies, 0.99), *std::max_element(latencies.begin(), latencies.end()));
  return 0;
}
