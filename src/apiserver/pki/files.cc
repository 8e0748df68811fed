#include "apiserver/pki/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/random.h"

namespace skiff::apiserver::pki {
namespace {

Status system_error(std::string_view op, const std::string& path, int err) {
  return Status::Internal(std::string(op) + " " + path + ": " + std::strerror(err));
}

// Closes on scope exit; -1 means none.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now, reporting the error close() returns (a deferred write error on some systems).
  int close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

Status fsync_directory(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return system_error("open", dir, errno);
  if (::fsync(fd.get()) != 0) return system_error("fsync", dir, errno);
  return Status::Ok();
}

}  // namespace

std::string parent_directory(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status ensure_directory(const std::string& path, mode_t mode, bool tighten) {
  if (path.empty()) return Status::Internal("empty directory path");
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return Status::Internal(path + " exists and is not a directory");
    if (tighten && (st.st_mode & 07777 & ~mode) != 0 && ::chmod(path.c_str(), mode) != 0)
      return system_error("chmod", path, errno);
    return Status::Ok();
  }
  if (errno != ENOENT) return system_error("stat", path, errno);
  std::string parent = parent_directory(path);
  if (parent != path) {
    Status s = ensure_directory(parent, mode, false);
    if (!s.ok()) return s;
  }
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
    return system_error("mkdir", path, errno);
  // mkdir applies the umask; a directory we create gets exactly `mode`.
  if (::chmod(path.c_str(), mode) != 0) return system_error("chmod", path, errno);
  return Status::Ok();
}

Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + ".tmp-" + random_hex(8);
  // O_EXCL|O_NOFOLLOW: never write through a file or link someone else placed at the name.
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0600));
  if (fd.get() < 0) return system_error("create", tmp, errno);
  auto fail = [&](std::string_view op, int err) {
    ::unlink(tmp.c_str());
    return system_error(op, tmp, err);
  };
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write", errno);
    }
    done += size_t(n);
  }
  // Created owner-only above; set to the final mode (wider, for certificates) only once the
  // content is complete, and exactly, whatever the umask.
  if (::fchmod(fd.get(), mode) != 0) return fail("chmod", errno);
  if (::fsync(fd.get()) != 0) return fail("fsync", errno);
  if (fd.close() != 0) return fail("close", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return system_error("rename " + tmp + " to", path, err);
  }
  return fsync_directory(parent_directory(path));
}

Result<std::optional<std::string>> read_file(const std::string& path, bool private_mode) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return system_error("open", path, errno);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return system_error("stat", path, errno);
  if (!S_ISREG(st.st_mode)) return Status::Internal(path + " is not a regular file");
  if (st.st_size > off_t(kMaxCredentialFileSize))
    return Status::Internal(path + " is too large to be a credential file");
  if (private_mode && (st.st_mode & 077) != 0 && ::fchmod(fd.get(), 0600) != 0)
    return system_error("chmod", path, errno);
  std::string data;
  char buf[16384];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return system_error("read", path, errno);
    }
    if (n == 0) break;
    data.append(buf, size_t(n));
    if (data.size() > kMaxCredentialFileSize)
      return Status::Internal(path + " is too large to be a credential file");
  }
  return std::optional<std::string>(std::move(data));
}

}  // namespace skiff::apiserver::pki
