// CPU and memory usage of a cgroup, as the kubelet's summary API (and so `kubectl top`) reports
// them, on cgroup v1 and v2. Functions read files only and are thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "common/time.h"

namespace skiff::agent::runtime {

struct ContainerStats {
  TimePoint timestamp;
  uint64_t cpu_usage_nanos = 0;  // cumulative CPU time of all its processes
  uint64_t memory_usage_bytes = 0;
  // usage minus inactive file pages: what the kubelet evicts on and `kubectl top` shows.
  uint64_t memory_working_set_bytes = 0;
};

// True when `cgroup_root` is a cgroup v2 (unified) hierarchy.
bool is_cgroup_v2(const std::string& cgroup_root);

// Stats of the cgroup at `cgroup_path` (as the spec's cgroupsPath, e.g. "/skiff/pod1/c1")
// under `cgroup_root`: v1 reads cpuacct/<path>/cpuacct.usage and memory/<path>/
// memory.usage_in_bytes and memory.stat's total_inactive_file; v2 reads <path>/cpu.stat's
// usage_usec, memory.current and memory.stat's inactive_file. NotFound when the cgroup does
// not exist.
Result<ContainerStats> read_cgroup_stats(const std::string& cgroup_root,
                                         const std::string& cgroup_path);

// How many times the kernel OOM killer killed a process in the cgroup (v1
// memory.oom_control's oom_kill, v2 memory.events' oom_kill). NotFound without the cgroup.
Result<uint64_t> read_oom_kill_count(const std::string& cgroup_root,
                                     const std::string& cgroup_path);

}  // namespace skiff::agent::runtime
