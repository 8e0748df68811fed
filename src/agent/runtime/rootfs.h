// Container root filesystems as overlayfs mounts of image layers.
//
// Thread-safe (each call is one mount or unmount system call plus directory creation).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace skiff::agent::runtime {

// The overlayfs mount options for the layers (topmost first) and the writable dirs:
// "lowerdir=a:b,upperdir=u,workdir=w". Invalid when a path holds ':' or ',' or no layer is
// given.
Result<std::string> overlay_mount_options(const std::vector<std::string>& lower_dirs,
                                          const std::string& upper_dir,
                                          const std::string& work_dir);

// Mounts an overlay of `lower_dirs` (topmost first) with `upper_dir` and `work_dir` (created
// when missing) at `target` (created when missing). Internal with the kernel's error.
Status mount_overlay(const std::vector<std::string>& lower_dirs, const std::string& upper_dir,
                     const std::string& work_dir, const std::string& target);

// Unmounts whatever is mounted at `target` (lazily when busy). OK when nothing is mounted.
Status unmount_rootfs(const std::string& target);

// True when `path` is a mount point.
bool is_mount_point(const std::string& path);

}  // namespace skiff::agent::runtime
