// Pod-level cgroups, laid out as the kubelet's cgroupfs driver lays them out:
//
//   /<kubepods>                       the node's pods (cpu.shares and memory limit from the
//                                     node's allocatable, when given)
//   /<kubepods>/pod<uid>              a Guaranteed pod
//   /<kubepods>/burstable             Burstable pods (cpu.shares: the sum of theirs)
//   /<kubepods>/burstable/pod<uid>
//   /<kubepods>/besteffort            BestEffort pods (cpu.shares 2)
//   /<kubepods>/besteffort/pod<uid>
//
// A pod's containers live below its cgroup: ContainerConfig::cgroup_parent is the pod's path
// (what ensure() returns), so a container's cgroup is <pod cgroup>/<container id>.
//
// On cgroup v1 every directory exists in every mounted hierarchy (cpu, cpuacct, cpuset,
// memory, pids, devices, freezer, blkio, name=systemd, and the unified one of a hybrid host),
// as runc puts a container into all of them; on cgroup v2 there is one tree, and the
// controllers the host offers (cpu, cpuset, memory, pids, io, hugetlb) are enabled in each
// level's cgroup.subtree_control. The pod's values are the kubelet's (ResourceConfigForPod):
//   cpu.shares       from the sum of CPU requests (at least 2; BestEffort pods 2)
//   cpu.cfs_quota_us from the sum of CPU limits, when every container has one
//   memory limit     the sum of memory limits, when every container has one
//   pids.max         the node's pod PIDs limit (the kubelet's --pod-max-pids), when set
// (cgroup v2: cpu.weight, cpu.max, memory.max, pids.max). Init containers count as the kubelet counts
// them: the pod needs max(sum of the containers, largest init container).
//
// The top-level name ("kubepods") is configurable so that several agents (and test runs) on
// one host never share pod cgroups.
//
// Thread-safety: thread-safe. Calls for different pods may run concurrently; the QoS-level
// values are recomputed under an internal lock. Calls block on the file system (and remove()
// may wait for killed processes), so callers on an event loop run them on a worker thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "agent/runtime/oci_spec.h"
#include "common/status.h"

namespace skiff::agent {

// What one container of a pod asks for. A request defaults to the limit when only the limit
// is set (as the API server defaults it).
struct PodContainerResources {
  bool init = false;  // a (non-restartable) init container: runs alone, before the others
  int64_t cpu_request_milli = 0;
  int64_t cpu_limit_milli = 0;  // 0: none
  int64_t memory_request_bytes = 0;
  int64_t memory_limit_bytes = 0;  // 0: none
};

// A pod as its cgroup needs it.
struct PodResources {
  std::string uid;  // metadata.uid: [A-Za-z0-9_-]+
  runtime::QosClass qos = runtime::QosClass::kBestEffort;
  std::vector<PodContainerResources> containers;
  // spec.overhead (RuntimeClass), added to the pod's requests and limits.
  int64_t overhead_cpu_milli = 0;
  int64_t overhead_memory_bytes = 0;
};

// The QoS class of a core/v1 Pod as the API server computes it (GetPodQOS): BestEffort
// without any CPU or memory request or limit, Guaranteed when every container (init
// containers included) has CPU and memory limits and requests equal to them, else Burstable.
runtime::QosClass pod_qos_class(const nlohmann::json& pod);
// "Guaranteed", "Burstable", "BestEffort".
const char* qos_class_name(runtime::QosClass qos);

// A core/v1 Pod's metadata.uid, status.qosClass (pod_qos_class when it is not set yet), the
// resources of spec.containers and spec.initContainers (restartPolicy Always init containers,
// sidecars, count as containers), and spec.overhead. Invalid without a usable uid or with a
// malformed quantity.
Result<PodResources> pod_resources_from_json(const nlohmann::json& pod);

// The values of a pod's cgroup, as the kubelet sets them.
struct PodCgroupLimits {
  uint64_t cpu_shares = 2;
  int64_t cpu_quota_us = -1;  // -1: no quota
  uint64_t cpu_period_us = runtime::kCfsPeriodUs;
  int64_t memory_limit_bytes = -1;  // -1: no limit
  int64_t pids_limit = -1;          // -1: no limit
};
// The pod's values; pids_limit is the node's (PodCgroupsOptions::pod_pids_limit).
PodCgroupLimits pod_cgroup_limits(const PodResources& pod);

// cgroup v2 cpu.weight for a v1 cpu.shares value (runc's conversion, which the kubelet uses):
// 1 + (shares - 2) * 9999 / 262142, so 2 -> 1, 1024 -> 39, 262144 -> 10000.
uint64_t cpu_shares_to_weight(uint64_t shares);

struct PodCgroupsOptions {
  // Where the cgroup file systems are mounted: the hierarchies of cgroup v1 as subdirectories,
  // or the cgroup v2 tree itself (it has cgroup.controllers).
  std::string cgroup_root = "/sys/fs/cgroup";
  // The top-level cgroup's name: [A-Za-z0-9][A-Za-z0-9_.-]*.
  std::string kubepods = "kubepods";
  // The node's allocatable CPU and memory, set on the top-level cgroup as the kubelet does
  // (cpu.shares, memory limit); 0: left unset.
  int64_t node_cpu_milli = 0;
  int64_t node_memory_bytes = 0;
  // The most processes (and threads) one pod may run, as the kubelet's podPidsLimit
  // (--pod-max-pids): pids.max of each pod cgroup. 0 or less: unlimited.
  int64_t pod_pids_limit = 0;
  // When set, open() records cgroup_root and kubepods in <state_dir>/kPodCgroupsRecordFile,
  // so that `skiff cleanup` of the agent's data dir knows which cgroups to remove.
  std::string state_dir;
};

inline constexpr const char* kPodCgroupsRecordFile = "pod-cgroups.json";

// Removes every pod cgroup under the top-level cgroup recorded in `state_dir` (with
// kill_processes, their processes get SIGKILL first), then the top-level cgroup and the
// record: what a test's teardown or a node's decommissioning needs. OK when nothing is left
// (also when nothing was recorded); else the first failure, as PodCgroups::remove reports it.
Status remove_recorded_pod_cgroups(const std::string& state_dir, bool kill_processes);

// The top-level cgroup name an agent uses: `configured` when set, else "kubepods" with the
// default pod bridge ("skiff0") and "kubepods-<bridge>" with any other, so that agents on one
// host (and test runs, which always have a bridge of their own) never share pod cgroups.
std::string kubepods_cgroup_name(const std::string& configured, const std::string& bridge_name);

// The options an agent recorded in `state_dir` (cgroup_root and kubepods only). NotFound when
// it recorded none; Invalid when the record is unreadable.
Result<PodCgroupsOptions> recorded_pod_cgroups(const std::string& state_dir);

// A pod cgroup found on the host.
struct PodCgroupEntry {
  std::string uid;
  runtime::QosClass qos = runtime::QosClass::kBestEffort;
  std::string path;  // as ensure() returns it
};

class PodCgroups {
 public:
  // Finds the hierarchies under options.cgroup_root and creates the top-level and QoS cgroups
  // (idempotent: existing ones are kept, with their pods). Invalid for a bad name;
  // Unavailable when no cgroup file system is mounted there; Internal when a directory cannot
  // be created.
  static Result<std::unique_ptr<PodCgroups>> open(PodCgroupsOptions options);
  ~PodCgroups();
  PodCgroups(const PodCgroups&) = delete;
  PodCgroups& operator=(const PodCgroups&) = delete;

  const PodCgroupsOptions& options() const { return options_; }
  bool cgroup_v2() const { return v2_; }
  // The hierarchy directories the cgroups are made in (cgroup v2: just the root).
  const std::vector<std::string>& hierarchies() const { return hierarchies_; }

  // "/<kubepods>", and a pod's path for its QoS class, e.g. "/kubepods/burstable/pod<uid>".
  std::string root_path() const;
  std::string pod_path(const std::string& uid, runtime::QosClass qos) const;

  // Creates the pod's cgroup (if needed) in every hierarchy and sets its values; returns its
  // path, for ContainerConfig::cgroup_parent. Idempotent, and cheap enough to call before
  // every container start. Invalid for a bad uid; Internal when a directory or value cannot
  // be written (e.g. a memory limit below what the pod already uses).
  Result<std::string> ensure(const PodResources& pod);
  // ensure() for a core/v1 Pod object (pod_resources_from_json).
  Result<std::string> ensure_pod(const nlohmann::json& pod);

  // Removes the pod's cgroup from every hierarchy, whatever its QoS class: leftover container
  // cgroups below it first, then the pod's own. With kill_processes, processes still in it get
  // SIGKILL first (as the kubelet does before it destroys a pod cgroup) and are waited for
  // briefly. OK when nothing is left (also when there was nothing); Unavailable when
  // processes remain or the kernel still reports it busy, so the caller tries again later (the
  // relist's orphan pass); Invalid for a bad uid; Internal for other errors.
  Status remove(const std::string& uid, bool kill_processes);

  // The pod cgroups under the top-level cgroup, in any hierarchy (orphans included), by uid.
  std::vector<PodCgroupEntry> list() const;

  // The processes in the pod's cgroup and below it, in any hierarchy (sorted, no duplicates).
  std::vector<int> processes(const std::string& uid) const;

  // Removes the QoS and top-level cgroups when no pod cgroup is left under them, and the
  // record in state_dir. OK when they are gone; Unavailable when pods remain.
  Status remove_root();

 private:
  PodCgroups(PodCgroupsOptions options, bool v2, std::vector<std::string> hierarchies);
  Status ensure_dir(const std::string& path);
  Status set_pod_values(const std::string& path, const PodCgroupLimits& limits);
  void update_qos_values();

  // Constant after construction.
  const PodCgroupsOptions options_;
  const bool v2_;
  const std::vector<std::string> hierarchies_;
  std::string cpu_dir_;     // the hierarchy with cpu.shares / cpu.weight ("" when none)
  std::string memory_dir_;  // the hierarchy with the memory controller ("" when none)
  std::string cpuset_dir_;  // cgroup v1's cpuset hierarchy ("" when none)
  std::string pids_dir_;    // the hierarchy with the pids controller ("" when none)
  std::vector<std::string> v2_controllers_;  // cgroup v2: controllers enabled below the root

  std::mutex qos_mu_;  // serializes the QoS-level recomputation
};

}  // namespace skiff::agent
