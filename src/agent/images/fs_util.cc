#include "agent/images/fs_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <utility>
#include <vector>

#include "common/random.h"

namespace skiff::agent::images {

Status errno_status(std::string_view what, std::string_view path, int err) {
  return Status::Internal(std::string(what) + " " + std::string(path) + ": " + std::strerror(err));
}

Status sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status("open", dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return errno_status("fsync", dir, err);
  return Status::Ok();
}

Status write_file_atomic(const std::string& path, std::string_view bytes) {
  std::string tmp = path + ".tmp-" + random_hex(6);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return errno_status("create", tmp, errno);
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return errno_status("write", tmp, err);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return errno_status("fsync", tmp, err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return errno_status("rename", tmp, err);
  }
  std::string dir = path.substr(0, path.rfind('/'));
  return sync_dir(dir.empty() ? "/" : dir);
}

Result<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return errno_status("open", path, errno);
  }
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return errno_status("read", path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status remove_tree_at(int dirfd, const std::string& name) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return errno_status("stat", name, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return errno_status("unlink", name, errno);
    }
    return Status::Ok();
  }
  if ((st.st_mode & 0700) != 0700) ::fchmodat(dirfd, name.c_str(), 0700, 0);
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno_status("open", name, errno);
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    int err = errno;
    ::close(fd);
    return errno_status("opendir", name, err);
  }
  std::vector<std::string> children;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    children.emplace_back(e->d_name);
  }
  Status s;
  for (const auto& c : children) {
    s = remove_tree_at(::dirfd(d), c);
    if (!s.ok()) break;
  }
  ::closedir(d);
  if (!s.ok()) return s;
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return errno_status("rmdir", name, errno);
  }
  return Status::Ok();
}

Status remove_tree(const std::string& path) {
  if (path.empty() || path == "/") return Status::Internal("refusing to remove \"" + path + "\"");
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    return errno_status("open", dir, errno);
  }
  Status s = remove_tree_at(fd, base);
  ::close(fd);
  return s;
}

namespace {

int64_t usage_at(int dirfd, const char* name, std::set<std::pair<dev_t, ino_t>>& seen) {
  struct stat st;
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return 0;
  int64_t total = 0;
  if (st.st_nlink <= 1 || S_ISDIR(st.st_mode) || seen.insert({st.st_dev, st.st_ino}).second) {
    total += static_cast<int64_t>(st.st_blocks) * 512;
  }
  if (!S_ISDIR(st.st_mode)) return total;
  int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return total;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return total;
  }
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    total += usage_at(::dirfd(d), e->d_name, seen);
  }
  ::closedir(d);
  return total;
}

}  // namespace

int64_t tree_disk_usage(const std::string& path) {
  std::set<std::pair<dev_t, ino_t>> seen;
  return usage_at(AT_FDCWD, path.c_str(), seen);
}

}  // namespace skiff::agent::images
