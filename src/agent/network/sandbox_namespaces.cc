#include "agent/network/sandbox_namespaces.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace skiff::agent::network {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

bool valid_pod_uid(const std::string& uid) {
  if (uid.empty() || uid.size() > 253 || uid == "." || uid == "..") return false;
  return std::all_of(uid.begin(), uid.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

Status make_dirs(const std::string& path, mode_t mode) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
      return Status::Internal("mkdir " + cur + ": " + errno_text(errno));
    }
  }
  return Status::Ok();
}

// Makes `root` a shared mount point, bind-mounting it onto itself first if it is not a
// mount point yet (what iproute2 does for /run/netns).
Status make_shared_mount(const std::string& root) {
  if (::mount("", root.c_str(), "none", MS_SHARED | MS_REC, nullptr) == 0) return Status::Ok();
  if (errno != EINVAL) {
    return Status::Internal("make " + root + " a shared mount: " + errno_text(errno));
  }
  if (::mount(root.c_str(), root.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0) {
    return Status::Internal("bind-mount " + root + " onto itself: " + errno_text(errno));
  }
  if (::mount("", root.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
    return Status::Internal("make " + root + " a shared mount: " + errno_text(errno));
  }
  return Status::Ok();
}

// Unmounts everything mounted on `path` (a namespace may have been bound twice).
Status unmount_all(const std::string& path) {
  for (int i = 0; i < 16; ++i) {
    if (::umount2(path.c_str(), MNT_DETACH) != 0) {
      if (errno == EINVAL || errno == ENOENT) return Status::Ok();
      return Status::Internal("unmount " + path + ": " + errno_text(errno));
    }
  }
  return Status::Internal("unmount " + path + ": still mounted after 16 unmounts");
}

// Runs on its own thread: the unshare changes only this thread's namespaces, and the thread
// ends right after, so no other code ever runs inside the pod's namespaces.
std::string unshare_and_bind(const SandboxNamespacePaths& paths, const std::string& hostname) {
  if (::unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) != 0) {
    return "unshare(net, ipc, uts): " + errno_text(errno);
  }
  if (::sethostname(hostname.data(), hostname.size()) != 0) {
    return "sethostname(" + hostname + "): " + errno_text(errno);
  }
  const std::pair<const char*, const std::string*> binds[] = {
      {"/proc/thread-self/ns/net", &paths.net},
      {"/proc/thread-self/ns/ipc", &paths.ipc},
      {"/proc/thread-self/ns/uts", &paths.uts},
  };
  for (const auto& [source, target] : binds) {
    if (::mount(source, target->c_str(), "none", MS_BIND, nullptr) != 0) {
      return std::string("bind-mount ") + source + " onto " + *target + ": " + errno_text(errno);
    }
  }
  return "";
}

}  // namespace

SandboxNamespacePaths sandbox_namespace_paths(const std::string& root, const std::string& pod_uid) {
  SandboxNamespacePaths p;
  p.dir = root + "/" + pod_uid;
  p.net = p.dir + "/net";
  p.ipc = p.dir + "/ipc";
  p.uts = p.dir + "/uts";
  return p;
}

bool is_namespace_mount(const std::string& path) {
  struct statfs fs {};
  if (::statfs(path.c_str(), &fs) != 0) return false;
  return static_cast<unsigned long>(fs.f_type) == NSFS_MAGIC;
}

bool sandbox_namespaces_alive(const SandboxNamespacePaths& paths) {
  return is_namespace_mount(paths.net) && is_namespace_mount(paths.ipc) &&
         is_namespace_mount(paths.uts);
}

Result<SandboxNamespacePaths> create_sandbox_namespaces(const std::string& root,
                                                        const std::string& pod_uid,
                                                        const std::string& hostname) {
  if (!valid_pod_uid(pod_uid)) {
    return Status::Invalid("invalid pod uid \"" + pod_uid +
                           "\": want letters, digits, '-', '_' and '.'");
  }
  if (hostname.empty() || hostname.size() > 64) {
    return Status::Invalid("invalid hostname \"" + hostname + "\": want 1 to 64 characters");
  }
  SandboxNamespacePaths paths = sandbox_namespace_paths(root, pod_uid);
  if (Status s = make_dirs(root, 0755); !s.ok()) return s;
  if (Status s = make_shared_mount(root); !s.ok()) return s;
  if (sandbox_namespaces_alive(paths)) return paths;
  if (Status s = remove_sandbox_namespaces(paths); !s.ok()) return s;

  if (::mkdir(paths.dir.c_str(), 0755) != 0) {
    return Status::Internal("mkdir " + paths.dir + ": " + errno_text(errno));
  }
  for (const std::string* f : {&paths.net, &paths.ipc, &paths.uts}) {
    int fd = ::open(f->c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0) {
      Status err = Status::Internal("create " + *f + ": " + errno_text(errno));
      (void)remove_sandbox_namespaces(paths);
      return err;
    }
    ::close(fd);
  }
  std::string error;
  std::thread worker([&] { error = unshare_and_bind(paths, hostname); });
  worker.join();
  if (!error.empty()) {
    (void)remove_sandbox_namespaces(paths);
    return Status::Internal("creating the namespaces of pod " + pod_uid + ": " + error);
  }
  return paths;
}

Status remove_sandbox_namespaces(const SandboxNamespacePaths& paths) {
  for (const std::string* f : {&paths.net, &paths.ipc, &paths.uts}) {
    if (Status s = unmount_all(*f); !s.ok()) return s;
    if (::unlink(f->c_str()) != 0 && errno != ENOENT) {
      return Status::Internal("remove " + *f + ": " + errno_text(errno));
    }
  }
  if (::rmdir(paths.dir.c_str()) != 0 && errno != ENOENT) {
    return Status::Internal("remove " + paths.dir + ": " + errno_text(errno));
  }
  return Status::Ok();
}

std::vector<std::string> list_sandbox_namespace_dirs(const std::string& root) {
  std::vector<std::string> uids;
  DIR* d = ::opendir(root.c_str());
  if (d == nullptr) return uids;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || !valid_pod_uid(name)) continue;
    struct stat st {};
    if (::stat((root + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      uids.push_back(name);
    }
  }
  ::closedir(d);
  std::sort(uids.begin(), uids.end());
  return uids;
}

Status remove_all_sandbox_namespaces(const std::string& root) {
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::Internal("stat " + root + ": " + errno_text(errno));
  }
  Status first;
  for (const std::string& uid : list_sandbox_namespace_dirs(root)) {
    Status s = remove_sandbox_namespaces(sandbox_namespace_paths(root, uid));
    if (!s.ok() && first.ok()) first = s;
  }
  if (!first.ok()) return first;
  if (Status s = unmount_all(root); !s.ok()) return s;
  if (::rmdir(root.c_str()) != 0 && errno != ENOENT) {
    return Status::Internal("remove " + root + ": " + errno_text(errno));
  }
  return Status::Ok();
}

}  // namespace skiff::agent::network
