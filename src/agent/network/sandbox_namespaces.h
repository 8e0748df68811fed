// The namespaces a pod's containers share: network, IPC and UTS, kept alive without a pause
// process. Each is created by a short-lived thread that unshares it and bind-mounts its
// /proc/thread-self/ns/<type> onto a file, as `ip netns add` does; containers join them by
// path (runc `namespaces: [{type: network, path: ...}]`).
//
// Layout under a namespaces root (the network layer uses <state dir>/netns):
//   <root>/<pod-uid>/net, <root>/<pod-uid>/ipc, <root>/<pod-uid>/uts
// The root itself is made a shared mount (as iproute2 does for /run/netns), so that removing
// a namespace also unmounts the copies that other mount namespaces made of it.
//
// All functions are thread-safe; calls for the same pod must not run concurrently.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace skiff::agent::network {

struct SandboxNamespacePaths {
  std::string dir;  // <root>/<pod-uid>
  std::string net;
  std::string ipc;
  std::string uts;
};

// The paths the namespaces of pod `pod_uid` have (or would have) under `root`.
SandboxNamespacePaths sandbox_namespace_paths(const std::string& root, const std::string& pod_uid);

// True if `path` is a bind-mounted namespace (nsfs), i.e. a namespace that is alive. A plain
// file left behind after a reboot is not.
bool is_namespace_mount(const std::string& path);

// True if all three namespaces of the pod are alive.
bool sandbox_namespaces_alive(const SandboxNamespacePaths& paths);

// Creates the pod's network, IPC and UTS namespaces, with the UTS hostname set to `hostname`.
// Idempotent: when all three are alive already they are kept as they are (hostname included);
// leftovers of an incomplete earlier attempt are removed first. Returns Invalid for a bad pod
// uid or hostname (more than 64 characters), Internal when the kernel refuses (with the
// failing step and errno), in which case nothing is left behind.
Result<SandboxNamespacePaths> create_sandbox_namespaces(const std::string& root,
                                                        const std::string& pod_uid,
                                                        const std::string& hostname);

// Unmounts and deletes the pod's namespace files and directory. Idempotent: OK when they
// do not exist. Internal when something cannot be removed.
Status remove_sandbox_namespaces(const SandboxNamespacePaths& paths);

// Pod uids that have a namespace directory under `root` (alive or not), sorted.
std::vector<std::string> list_sandbox_namespace_dirs(const std::string& root);

// Removes every pod's namespaces under `root`, then unmounts and deletes `root` itself.
// Idempotent; OK when `root` does not exist.
Status remove_all_sandbox_namespaces(const std::string& root);

}  // namespace skiff::agent::network
