// For tests that run real containers: whether they can run here, and a busybox-static rootfs
// (no libraries needed) for them.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

namespace skiff::testing {

// Why tests running containers cannot run on this machine; "" when they can.
inline std::string container_test_skip_reason() {
  if (::geteuid() != 0) return "needs root to run containers";
  for (const char* bin : {"/usr/sbin/runc", "/usr/bin/conmon", "/bin/busybox"}) {
    if (::access(bin, X_OK) != 0) {
      return std::string(bin) + " is missing (scripts/install-deps.sh test)";
    }
  }
  return "";
}

// Makes `rootfs` a busybox rootfs: /bin/busybox with `applets` linked to it, /etc, a sticky
// /tmp, /proc, /sys, /dev, `extra_dirs`, and /etc/passwd and /etc/group.
inline void make_busybox_rootfs(const std::string& rootfs,
                                std::initializer_list<const char*> applets,
                                std::initializer_list<const char*> extra_dirs = {},
                                const std::string& passwd = "root:x:0:0:root:/root:/bin/sh\n",
                                const std::string& group = "root:x:0:\n") {
  namespace fs = std::filesystem;
  for (const char* d : {"/bin", "/etc", "/tmp", "/proc", "/sys", "/dev"}) {
    fs::create_directories(rootfs + d);
  }
  for (const char* d : extra_dirs) fs::create_directories(rootfs + d);
  fs::permissions(rootfs + "/tmp", fs::perms::all | fs::perms::sticky_bit);
  fs::copy_file("/bin/busybox", rootfs + "/bin/busybox");
  for (const char* applet : applets) fs::create_symlink("busybox", rootfs + "/bin/" + applet);
  std::ofstream(rootfs + "/etc/passwd") << passwd;
  std::ofstream(rootfs + "/etc/group") << group;
}

}  // namespace skiff::testing
