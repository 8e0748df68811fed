// Removing what a node agent leaves on the host (`skiff cleanup`), for a server or agent that
// is stopped (or was killed): the containers and their conmon monitors, every mount under the
// data dir (overlay rootfs, tmpfs volumes, namespace bind mounts), the pods' network
// namespaces and CNI state and iptables rules, the pod bridge, the nftables tables of the
// service proxy and the cluster DNS redirect for that bridge, and the pod cgroups with the
// top-level "kubepods" cgroup the agent made (see pod_cgroups.h). Images and the API store stay
// unless CleanupOptions::all.
//
// Idempotent: a second run finds nothing and removes nothing. It keeps going after a failure
// (so one stuck container does not keep the rest around) and reports every failure. It never
// deletes a directory that still has a mount under it.
//
// Thread-safety: not meant to run concurrently with itself or with an agent on the same
// data dir or bridge.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace skiff::agent {

struct CleanupOptions {
  std::string data_dir = "/var/lib/skiff";  // as `skiff server/agent --data-dir`
  std::string bridge_name = "skiff0";       // as `--bridge-name`
  // Also the images, the API store, credentials and the rest of the data dir.
  bool all = false;
  std::string runc_path = "/usr/sbin/runc";
  std::string cni_bin_dir = "/usr/lib/cni";
  std::string nft_binary = "nft";
  // The agent's top-level pod cgroup (its PodCgroupsOptions::kubepods); empty: the one it
  // recorded in its state dir, if any. Only pod cgroups without processes are removed.
  std::string kubepods_cgroup;
};

struct CleanupReport {
  // What was removed, one line each: "container <id>", "mount <path>", "bridge skiff0",
  // "pod cgroup /kubepods/burstable/pod<uid>", "cgroup /kubepods", ...
  std::vector<std::string> removed;
  // What could not be removed, with why.
  std::vector<std::string> failed;
};

// Cleans up after the agent of `options.data_dir`. Returns OK when everything there was is
// gone (report->failed is empty), else Internal naming the first failure. Invalid for a
// relative or root data dir, or an empty bridge name.
Status cleanup_node(const CleanupOptions& options, CleanupReport* report);

}  // namespace skiff::agent
