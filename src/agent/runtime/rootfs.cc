#include "agent/runtime/rootfs.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace skiff::agent::runtime {
namespace {

bool bad_path(const std::string& p) {
  return p.empty() || p.find_first_of(":,") != std::string::npos;
}

// /proc/self/mountinfo escapes space, tab, newline and backslash as octal.
std::string unescape_mountinfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (size_t j = 1; j <= 3; ++j) {
        char c = s[i + j];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

Result<std::string> overlay_mount_options(const std::vector<std::string>& lower_dirs,
                                          const std::string& upper_dir,
                                          const std::string& work_dir) {
  if (lower_dirs.empty()) return Status::Invalid("an overlay rootfs needs at least one layer");
  std::string lower;
  for (const auto& d : lower_dirs) {
    if (bad_path(d)) return Status::Invalid("layer path unusable in overlayfs options: " + d);
    if (!lower.empty()) lower += ':';
    lower += d;
  }
  if (bad_path(upper_dir) || bad_path(work_dir)) {
    return Status::Invalid("upper and work dirs must be set and hold no ':' or ','");
  }
  return "lowerdir=" + lower + ",upperdir=" + upper_dir + ",workdir=" + work_dir;
}

Status mount_overlay(const std::vector<std::string>& lower_dirs, const std::string& upper_dir,
                     const std::string& work_dir, const std::string& target) {
  auto options = overlay_mount_options(lower_dirs, upper_dir, work_dir);
  if (!options.ok()) return options.status();
  std::error_code ec;
  for (const auto& d : {upper_dir, work_dir, target}) {
    std::filesystem::create_directories(d, ec);
    if (ec) return Status::Internal("creating " + d + ": " + ec.message());
  }
  if (::mount("overlay", target.c_str(), "overlay", 0, options->c_str()) != 0) {
    return Status::Internal("mounting overlay at " + target + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

bool is_mount_point(const std::string& path) {
  std::error_code ec;
  auto canonical = std::filesystem::weakly_canonical(path, ec);
  if (ec) return false;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // "id parent major:minor root mount-point options ..."
    size_t pos = 0;
    for (int field = 0; field < 4 && pos != std::string::npos; ++field) {
      pos = line.find(' ', pos);
      if (pos != std::string::npos) ++pos;
    }
    if (pos == std::string::npos) continue;
    size_t end = line.find(' ', pos);
    if (unescape_mountinfo(line.substr(pos, end - pos)) == canonical.string()) return true;
  }
  return false;
}

Status unmount_rootfs(const std::string& target) {
  if (!is_mount_point(target)) return Status::Ok();
  if (::umount2(target.c_str(), 0) == 0) return Status::Ok();
  if (errno == EBUSY && ::umount2(target.c_str(), MNT_DETACH) == 0) return Status::Ok();
  if (errno == EINVAL || errno == ENOENT) return Status::Ok();
  return Status::Internal("unmounting " + target + ": " + std::strerror(errno));
}

}  // namespace skiff::agent::runtime
