#include "agent/runtime/stats.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

namespace skiff::agent::runtime {
namespace {

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<uint64_t> read_u64(const std::string& path) {
  auto text = read_file(path);
  if (!text) return std::nullopt;
  try {
    return std::stoull(*text);
  } catch (...) {
    return std::nullopt;
  }
}

// The value of `key` in a "key value" per-line file (memory.stat, cpu.stat, memory.events).
std::optional<uint64_t> keyed_value(const std::string& text, std::string_view key) {
  std::istringstream in(text);
  std::string k;
  uint64_t v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return std::nullopt;
}

}  // namespace

bool is_cgroup_v2(const std::string& cgroup_root) {
  return exists(cgroup_root + "/cgroup.controllers");
}

Result<ContainerStats> read_cgroup_stats(const std::string& cgroup_root,
                                         const std::string& cgroup_path) {
  ContainerStats stats;
  stats.timestamp = now();
  if (is_cgroup_v2(cgroup_root)) {
    std::string dir = cgroup_root + cgroup_path;
    auto cpu = read_file(dir + "/cpu.stat");
    if (!cpu) return Status::NotFound("no cgroup " + dir);
    stats.cpu_usage_nanos = keyed_value(*cpu, "usage_usec").value_or(0) * 1000;
    stats.memory_usage_bytes = read_u64(dir + "/memory.current").value_or(0);
    uint64_t inactive = 0;
    if (auto mem = read_file(dir + "/memory.stat")) {
      inactive = keyed_value(*mem, "inactive_file").value_or(0);
    }
    stats.memory_working_set_bytes =
        stats.memory_usage_bytes > inactive ? stats.memory_usage_bytes - inactive : 0;
    return stats;
  }
  std::string cpu_dir = cgroup_root + "/cpuacct" + cgroup_path;
  std::string mem_dir = cgroup_root + "/memory" + cgroup_path;
  auto cpu = read_u64(cpu_dir + "/cpuacct.usage");
  auto usage = read_u64(mem_dir + "/memory.usage_in_bytes");
  if (!cpu && !usage) return Status::NotFound("no cgroup " + cgroup_path);
  stats.cpu_usage_nanos = cpu.value_or(0);
  stats.memory_usage_bytes = usage.value_or(0);
  uint64_t inactive = 0;
  if (auto mem = read_file(mem_dir + "/memory.stat")) {
    inactive = keyed_value(*mem, "total_inactive_file").value_or(0);
  }
  stats.memory_working_set_bytes =
      stats.memory_usage_bytes > inactive ? stats.memory_usage_bytes - inactive : 0;
  return stats;
}

Result<uint64_t> read_oom_kill_count(const std::string& cgroup_root,
                                     const std::string& cgroup_path) {
  std::string path = is_cgroup_v2(cgroup_root)
                         ? cgroup_root + cgroup_path + "/memory.events"
                         : cgroup_root + "/memory" + cgroup_path + "/memory.oom_control";
  auto text = read_file(path);
  if (!text) return Status::NotFound("no cgroup " + cgroup_path);
  return keyed_value(*text, "oom_kill").value_or(0);
}

}  // namespace skiff::agent::runtime
