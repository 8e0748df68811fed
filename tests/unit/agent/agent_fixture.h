// For tests that run a whole node agent with real containers: whether they can run here,
// options unique to the test, the busybox image in the node's store, and removal of whatever
// the agent left on the host.
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/images/store.h"
#include "agent/network/pod_network.h"
#include "agent/pod_cgroups.h"
#include "agent/runtime/runtime.h"
#include "common/status.h"
#include "unit/agent/images/test_image.h"
#include "unit/agent/network/net_test_util.h"

namespace skiff::testing {

// Why agent tests cannot run on this machine; "" when they can.
inline std::string agent_test_skip_reason() {
  if (::geteuid() != 0) return "needs root (runc, overlayfs, network namespaces)";
  for (const char* bin :
       {"/usr/sbin/runc", "/usr/bin/conmon", "/bin/busybox", "/usr/lib/cni/bridge"}) {
    if (::access(bin, X_OK) != 0) return std::string(bin) + " is missing (scripts/install-deps.sh)";
  }
  return "";
}

// Options for an agent of its own: a unique node name ("<prefix>-<suffix>"), bridge and free
// pod CIDR, short back-offs, and neither DiskPressure nor image GC whatever the host's free
// space (they are tested on their own). pod_cidr is empty when no /24 is free.
inline agent::AgentOptions test_agent_options(const std::string& prefix,
                                              const std::string& data_dir) {
  using namespace std::chrono_literals;
  agent::AgentOptions o;
  std::string suffix = agent::network::testing::unique_suffix();
  o.node_name = prefix + "-" + suffix;
  o.data_dir = data_dir;
  o.bridge_name = "sk" + suffix;
  o.eviction_nodefs_available_percent = 0;
  o.eviction_nodefs_inodes_free_percent = 0;
  o.image_gc_high_threshold_percent = 100;
  o.pod_cidr = agent::network::testing::free_pod_cidr();
  o.crash_backoff_base = 300ms;
  o.crash_backoff_max = 2s;
  o.relist_interval = 200ms;
  return o;
}

// Imports a busybox-static image named skiff.test/busybox:1.0 (Cmd sh, PATH=/bin) with
// `applets` linked to busybox into the node store under `data_dir`.
inline Status import_busybox_image(const std::string& data_dir,
                                   std::initializer_list<const char*> applets) {
  using agent::images::testing::TarEntry;
  namespace it = agent::images::testing;
  std::vector<TarEntry> entries = {
      {"bin/", '5', "", "", 0755},
      {"bin/busybox", '0', it::read_all("/bin/busybox"), "", 0755},
      {"etc/", '5', "", "", 0755},
      {"etc/passwd", '0', "root:x:0:0:root:/root:/bin/sh\n", "", 0644},
      {"etc/group", '0', "root:x:0:\n", "", 0644},
      {"tmp/", '5', "", "", 01777},
  };
  for (const char* applet : applets) {
    entries.push_back({std::string("bin/") + applet, '2', "", "busybox", 0777});
  }
  it::TempDir scratch;
  nlohmann::json rc = {{"Cmd", {"sh"}}, {"Env", {"PATH=/bin"}}};
  auto img = it::make_image({it::make_tar(entries)}, {true}, scratch.path(), rc);
  img.write_oci_layout(scratch.path() + "/layout", "1.0");
  auto store = agent::images::ImageStore::open(data_dir);
  if (!store.ok()) return store.status();
  agent::images::ImportOptions io;
  io.name = "skiff.test/busybox";
  auto imported = (*store)->import(scratch.path() + "/layout", io);
  if (!imported.ok()) return imported.status();
  return (*store)->get("skiff.test/busybox:1.0").status();
}

// Removes what a stopped agent with options `o` left: its containers, pod cgroups, mounts
// under its data dir, and its pod network (bridge, rules, namespaces).
inline void remove_agent_leftovers(const agent::AgentOptions& o) {
  agent::runtime::RuntimeOptions ro;
  ro.root_dir = o.data_dir + "/agent/runtime";
  auto rt = agent::runtime::ContainerRuntime::open(ro);
  if (rt.ok()) {
    auto all = (*rt)->list();
    if (all.ok()) {
      for (const auto& c : *all) (*rt)->remove(c.id);
    }
  }
  (void)agent::remove_recorded_pod_cgroups(o.data_dir + "/agent", true);
  std::vector<std::string> left;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string a, b, c, d, point;
    f >> a >> b >> c >> d >> point;
    if (point.rfind(o.data_dir + "/", 0) == 0) left.push_back(point);
  }
  std::sort(left.rbegin(), left.rend());
  for (const auto& p : left) ::umount2(p.c_str(), MNT_DETACH);
  agent::network::PodNetworkOptions no;
  no.state_dir = o.data_dir + "/agent";
  no.pod_cidr = o.pod_cidr;
  no.bridge_name = o.bridge_name;
  agent::network::cleanup_pod_network(no);
}

}  // namespace skiff::testing
