#include "agent/stats_summary.h"

#include <unistd.h>

#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "agent/agent_internal.h"
#include "agent/runtime/runtime.h"
#include "agent/runtime/stats.h"

namespace skiff::agent {
namespace {

using json = nlohmann::json;

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Busy CPU time of the whole node from /proc/stat's "cpu" line (all but idle and iowait, as
// the root cgroup's cpuacct.usage counts it), in nanoseconds.
std::optional<uint64_t> node_cpu_nanos(const std::string& proc_root) {
  auto text = read_file(proc_root + "/stat");
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  std::string label;
  in >> label;
  if (label != "cpu") return std::nullopt;
  uint64_t v[8] = {};
  for (auto& x : v) {
    if (!(in >> x)) break;
  }
  // user nice system idle iowait irq softirq steal
  uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  long hz = ::sysconf(_SC_CLK_TCK);
  if (hz <= 0) hz = 100;
  return busy * (1'000'000'000ULL / static_cast<uint64_t>(hz));
}

struct NodeMemory {
  uint64_t total = 0;
  uint64_t usage = 0;
  uint64_t working_set = 0;
};

// From /proc/meminfo: usage is what is not free; the working set leaves out inactive file
// pages (the kubelet's workingSetBytes); available is what the working set leaves.
std::optional<NodeMemory> node_memory(const std::string& proc_root) {
  auto text = read_file(proc_root + "/meminfo");
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  std::string line;
  std::map<std::string, uint64_t> kb;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    try {
      kb[line.substr(0, colon)] = std::stoull(line.substr(colon + 1));
    } catch (...) {
    }
  }
  if (kb.count("MemTotal") == 0) return std::nullopt;
  NodeMemory m;
  m.total = kb["MemTotal"] * 1024;
  uint64_t free = kb["MemFree"] * 1024;
  uint64_t inactive_file = kb["Inactive(file)"] * 1024;
  m.usage = m.total > free ? m.total - free : 0;
  m.working_set = m.usage > inactive_file ? m.usage - inactive_file : 0;
  return m;
}

// Seconds since boot from /proc/uptime.
std::optional<double> uptime_seconds(const std::string& proc_root) {
  auto text = read_file(proc_root + "/uptime");
  if (!text) return std::nullopt;
  try {
    return std::stod(*text);
  } catch (...) {
    return std::nullopt;
  }
}

double seconds_between(TimePoint a, TimePoint b) {
  return std::chrono::duration<double>(b - a).count();
}

uint64_t rate(uint64_t nanos, double seconds) {
  if (seconds <= 0) return 0;
  return static_cast<uint64_t>(static_cast<double>(nanos) / seconds);
}

json cpu_json(const std::string& time, uint64_t nano_cores, uint64_t core_nanos) {
  return {{"time", time}, {"usageNanoCores", nano_cores}, {"usageCoreNanoSeconds", core_nanos}};
}

json memory_json(const std::string& time, uint64_t usage, uint64_t working_set) {
  return {{"time", time}, {"usageBytes", usage}, {"workingSetBytes", working_set}};
}

}  // namespace

std::vector<StatsPodRef> stats_pod_refs(const std::vector<std::shared_ptr<const json>>& pods) {
  std::vector<StatsPodRef> out;
  for (const auto& p : pods) {
    if (!p || !p->contains("metadata") || !(*p)["metadata"].is_object()) continue;
    const json& m = (*p)["metadata"];
    StatsPodRef ref;
    ref.name = m.value("name", "");
    ref.ns = m.value("namespace", "");
    ref.uid = m.value("uid", "");
    if (ref.uid.empty()) continue;
    out.push_back(std::move(ref));
  }
  return out;
}

struct StatsSummaryProvider::Impl {
  struct Sample {
    TimePoint time;
    uint64_t cpu_nanos = 0;
    uint64_t nano_cores = 0;  // the rate last computed
    bool seen = false;        // in the current call; unseen samples are dropped after it
  };

  // The CPU rate of `key` now, given its cumulative `cpu_nanos` and, for a first sample, when
  // it started (its average since then).
  // REQUIRES: mu is held.
  uint64_t nano_cores(const std::string& key, TimePoint t, uint64_t cpu_nanos,
                      std::optional<TimePoint> started) {
    auto it = samples.find(key);
    if (it == samples.end()) {
      uint64_t r = started ? rate(cpu_nanos, seconds_between(*started, t)) : 0;
      samples[key] = Sample{t, cpu_nanos, r, true};
      return r;
    }
    Sample& s = it->second;
    s.seen = true;
    if (t - s.time < options.min_rate_window) return s.nano_cores;
    if (cpu_nanos < s.cpu_nanos) {
      // A counter that went back is a new cgroup under the same name: start over.
      s.nano_cores = started ? rate(cpu_nanos, seconds_between(*started, t)) : 0;
    } else {
      s.nano_cores = rate(cpu_nanos - s.cpu_nanos, seconds_between(s.time, t));
    }
    s.time = t;
    s.cpu_nanos = cpu_nanos;
    return s.nano_cores;
  }

  Impl(runtime::ContainerRuntime& rt, StatsSummaryOptions opts)
      : runtime(rt),
        options(std::move(opts)),
        clock(options.clock ? *options.clock : Clock::real()) {}

  // Constant after construction.
  runtime::ContainerRuntime& runtime;
  StatsSummaryOptions options;
  const Clock& clock;

  std::mutex mu;  // serializes summary()
  // By container id, "" for the node, "pod/<uid>" for a pod cgroup; guarded by mu.
  std::map<std::string, Sample> samples;
};

StatsSummaryProvider::StatsSummaryProvider(runtime::ContainerRuntime& runtime,
                                           StatsSummaryOptions options)
    : impl_(std::make_unique<Impl>(runtime, std::move(options))) {}

StatsSummaryProvider::~StatsSummaryProvider() = default;

json StatsSummaryProvider::summary(const std::vector<StatsPodRef>& pods) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> l(d.mu);
  for (auto& [key, s] : d.samples) s.seen = false;

  const TimePoint t = d.clock.now();
  const std::string time = format_rfc3339(t);
  const std::string& proc = d.options.proc_root;

  // The node.
  json node = {{"nodeName", d.options.node_name}};
  std::optional<TimePoint> boot;
  if (auto up = uptime_seconds(proc)) {
    boot = t - std::chrono::duration_cast<TimePoint::duration>(std::chrono::duration<double>(*up));
    node["startTime"] = format_rfc3339(*boot);
  }
  uint64_t node_cpu = node_cpu_nanos(proc).value_or(0);
  node["cpu"] = cpu_json(time, d.nano_cores("", t, node_cpu, boot), node_cpu);
  NodeMemory mem = node_memory(proc).value_or(NodeMemory{});
  node["memory"] = memory_json(time, mem.usage, mem.working_set);
  node["memory"]["availableBytes"] = mem.total > mem.working_set ? mem.total - mem.working_set : 0;

  // The pods: the newest running attempt of each of their containers.
  std::map<std::string, const StatsPodRef*> by_uid;
  for (const auto& p : pods) by_uid[p.uid] = &p;
  struct Running {
    int attempt = -1;
    runtime::ContainerStatus status;
  };
  std::map<std::string, std::map<std::string, Running>> running;  // pod uid -> name -> newest
  if (auto list = d.runtime.list(); list.ok()) {
    for (auto& st : *list) {
      if (st.state != runtime::ContainerState::kRunning) continue;
      ContainerName cn;
      if (!parse_container_id(st.id, &cn) || by_uid.count(cn.pod_uid) == 0) continue;
      Running& r = running[cn.pod_uid][cn.name];
      if (cn.attempt > r.attempt) r = Running{cn.attempt, std::move(st)};
    }
  }

  json pod_list = json::array();
  for (const auto& [uid, containers] : running) {
    const StatsPodRef& ref = *by_uid[uid];
    json cs = json::array();
    uint64_t pod_cpu = 0, pod_cores = 0, pod_usage = 0, pod_ws = 0;
    std::optional<TimePoint> pod_start;
    for (const auto& [name, r] : containers) {
      const runtime::ContainerStatus& st = r.status;
      if (st.cgroup_path.empty()) continue;
      auto stats = runtime::read_cgroup_stats(d.runtime.options().cgroup_root, st.cgroup_path);
      if (!stats.ok()) continue;
      std::optional<TimePoint> started = st.started_at ? st.started_at : st.created_at;
      uint64_t cores = d.nano_cores(st.id, t, stats->cpu_usage_nanos, started);
      json c = {{"name", name},
                {"cpu", cpu_json(time, cores, stats->cpu_usage_nanos)},
                {"memory",
                 memory_json(time, stats->memory_usage_bytes, stats->memory_working_set_bytes)}};
      if (started) {
        c["startTime"] = format_rfc3339(*started);
        if (!pod_start || *started < *pod_start) pod_start = started;
      }
      cs.push_back(std::move(c));
      pod_cpu += stats->cpu_usage_nanos;
      pod_cores += cores;
      pod_usage += stats->memory_usage_bytes;
      pod_ws += stats->memory_working_set_bytes;
    }
    if (cs.empty()) continue;
    // Containers in a pod cgroup (<...>/pod<uid>/<id>, see pod_cgroups.h): the pod's figures
    // are that cgroup's, as the kubelet reports them (it also holds what no container's own
    // cgroup shows, such as the usage of exited attempts).
    std::string pod_cgroup;
    for (const auto& [name, r] : containers) {
      const std::string& path = r.status.cgroup_path;
      size_t slash = path.rfind('/');
      std::string parent = slash == std::string::npos ? "" : path.substr(0, slash);
      const std::string leaf = "/pod" + uid;
      bool in_pod = parent.size() > leaf.size() &&
                    parent.compare(parent.size() - leaf.size(), leaf.size(), leaf) == 0;
      if (!in_pod || (!pod_cgroup.empty() && parent != pod_cgroup)) {
        pod_cgroup.clear();
        break;
      }
      pod_cgroup = parent;
    }
    if (!pod_cgroup.empty()) {
      auto stats = runtime::read_cgroup_stats(d.runtime.options().cgroup_root, pod_cgroup);
      if (stats.ok()) {
        const std::string key = "pod/" + uid;
        const bool first = d.samples.count(key) == 0;
        uint64_t cores = d.nano_cores(key, t, stats->cpu_usage_nanos, pod_start);
        // A first sample's average since the pod started would count earlier attempts' CPU
        // time: the running containers' rates are the better figure until there is a window.
        if (first) cores = d.samples[key].nano_cores = pod_cores;
        pod_cpu = stats->cpu_usage_nanos;
        pod_cores = cores;
        pod_usage = stats->memory_usage_bytes;
        pod_ws = stats->memory_working_set_bytes;
      }
    }
    json p = {{"podRef", {{"name", ref.name}, {"namespace", ref.ns}, {"uid", ref.uid}}},
              {"containers", std::move(cs)},
              {"cpu", cpu_json(time, pod_cores, pod_cpu)},
              {"memory", memory_json(time, pod_usage, pod_ws)}};
    if (pod_start) p["startTime"] = format_rfc3339(*pod_start);
    pod_list.push_back(std::move(p));
  }

  // Forget containers that are gone, so the map does not grow with every restart.
  for (auto it = d.samples.begin(); it != d.samples.end();) {
    it = it->second.seen ? std::next(it) : d.samples.erase(it);
  }
  return {{"node", std::move(node)}, {"pods", std::move(pod_list)}};
}

std::string StatsSummaryProvider::summary_json(const std::vector<StatsPodRef>& pods) {
  return summary(pods).dump();
}

}  // namespace skiff::agent
