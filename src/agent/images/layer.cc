#include "agent/images/layer.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/images/digest.h"
#include "agent/images/libarchive.h"
#include "agent/images/fs_util.h"

namespace skiff::agent::images {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    reset();
    fd_ = std::exchange(o.fd_, -1);
    return *this;
  }
  ~Fd() { reset(); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Lexically cleans a tar path relative to the layer root, as filepath.Join("/", p) does:
// "." and empty components dropped, ".." pops (never above the root).
std::vector<std::string> clean_components(std::string_view p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view c = p.substr(i, j - i);
    if (c == "..") {
      if (!out.empty()) out.pop_back();
    } else if (!c.empty() && c != ".") {
      out.emplace_back(c);
    }
    i = j + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& comps, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (i) s += '/';
    s += comps[i];
  }
  return s;
}

// The tar stream behind the archive reader: decompressed by a second (raw) reader and hashed
// on the way, so that the diff_id comes out of the same single pass.
struct HashedStream {
  archive* inner = nullptr;
  bool inner_eof = false;
  Sha256 hash;
  std::vector<char> buf = std::vector<char>(1 << 16);
  std::string error;
};

la_ssize_t read_hashed(archive*, void* ud, const void** out) {
  auto* s = static_cast<HashedStream*>(ud);
  if (s->inner_eof) return 0;
  la_ssize_t n = la().read_data(s->inner, s->buf.data(), s->buf.size());
  if (n < 0) {
    const char* e = la().error_string(s->inner);
    s->error = e ? e : "decompression failed";
    return ARCHIVE_FATAL;
  }
  if (n == 0) s->inner_eof = true;
  s->hash.update(s->buf.data(), static_cast<size_t>(n));
  *out = s->buf.data();
  return n;
}

struct DeferredDir {
  std::string path;
  mode_t mode;
  uid_t uid;
  gid_t gid;
  timespec mtime;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

class Unpacker {
 public:
  Unpacker(int root_fd, bool privileged) : root_(root_fd), privileged_(privileged) {}

  Status entry(archive* a, archive_entry* e, int64_t* content_size);
  Status finish();

 private:
  // A descriptor for `rel` resolved inside the layer, or -errno.
  int open_in_root(const std::string& rel, int flags) const;
  Result<Fd> ensure_dir(const std::vector<std::string>& comps, size_t n);
  Status apply_xattrs(int fd, const std::string& path,
                      const std::vector<std::pair<std::string, std::string>>& xattrs) const;
  Status write_file(archive* a, int fd, const std::string& path, int64_t* content_size);

  int root_;
  bool privileged_;
  std::vector<DeferredDir> dirs_;
};

int Unpacker::open_in_root(const std::string& rel, int flags) const {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const char* p = rel.empty() ? "." : rel.c_str();
  long fd;
  do {
    fd = ::syscall(SYS_openat2, root_, p, &how, sizeof how);
  } while (fd < 0 && errno == EAGAIN);
  return fd < 0 ? -errno : static_cast<int>(fd);
}

// The directory comps[0..n) inside the layer, created (0755) with its parents if missing.
Result<Fd> Unpacker::ensure_dir(const std::vector<std::string>& comps, size_t n) {
  std::string rel = join(comps, n);
  int fd = open_in_root(rel, O_PATH | O_DIRECTORY);
  if (fd >= 0) return Fd(fd);
  if (fd != -ENOENT || n == 0) {
    return Status::Invalid("layer entry \"" + rel + "\": " + std::strerror(-fd));
  }
  auto parent = ensure_dir(comps, n - 1);
  if (!parent.ok()) return parent.status();
  const std::string& name = comps[n - 1];
  if (::mkdirat(parent->get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
    return errno_status("mkdir", rel, errno);
  }
  ::fchmodat(parent->get(), name.c_str(), 0755, 0);
  fd = open_in_root(rel, O_PATH | O_DIRECTORY);
  if (fd < 0) return Status::Invalid("layer entry \"" + rel + "\": " + std::strerror(-fd));
  return Fd(fd);
}

Status Unpacker::apply_xattrs(
    int fd, const std::string& path,
    const std::vector<std::pair<std::string, std::string>>& xattrs) const {
  for (const auto& [name, value] : xattrs) {
    if (::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) != 0) {
      if (!privileged_ || errno == ENOTSUP) continue;  // the file system or the user cannot
      return errno_status("set xattr " + name + " on", path, errno);
    }
  }
  return Status::Ok();
}

std::vector<std::pair<std::string, std::string>> entry_xattrs(archive_entry* e) {
  std::vector<std::pair<std::string, std::string>> out;
  la().entry_xattr_reset(e);
  const char* name;
  const void* value;
  size_t size;
  while (la().entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    std::string_view n(name);
    if (n.rfind("trusted.overlay.", 0) == 0 || n.rfind("user.overlay.", 0) == 0) continue;
    out.emplace_back(std::string(n), std::string(static_cast<const char*>(value), size));
  }
  return out;
}

Status Unpacker::write_file(archive* a, int fd, const std::string& path, int64_t* content_size) {
  const void* buf;
  size_t size;
  la_int64_t offset;
  while (true) {
    int r = la().read_data_block(a, &buf, &size, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      const char* m = la().error_string(a);
      return Status::Invalid("layer entry \"" + path + "\": " + (m ? m : "read failed"));
    }
    const char* p = static_cast<const char*>(buf);
    while (size > 0) {
      ssize_t n = ::pwrite(fd, p, size, offset);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno_status("write", path, errno);
      p += n;
      size -= static_cast<size_t>(n);
      offset += n;
      *content_size += n;
    }
  }
  return Status::Ok();
}

Status Unpacker::entry(archive* a, archive_entry* e, int64_t* content_size) {
  const char* raw = la().entry_pathname(e);
  std::vector<std::string> comps = clean_components(raw ? raw : "");
  if (comps.empty()) return Status::Ok();  // the layer root itself
  const std::string base = comps.back();
  const std::string path = join(comps, comps.size());
  auto parent = ensure_dir(comps, comps.size() - 1);
  if (!parent.ok()) return parent.status();
  int pfd = parent->get();

  if (std::string_view(base).rfind(kWhiteoutPrefix, 0) == 0) {
    if (base == kOpaqueMarker) {
      Fd dir(::openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!dir.valid()) return errno_status("open", join(comps, comps.size() - 1), errno);
      if (::fsetxattr(dir.get(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
        return errno_status("mark opaque", join(comps, comps.size() - 1), errno);
      }
      return Status::Ok();
    }
    if (std::string_view(base).rfind(".wh..wh.", 0) == 0) return Status::Ok();  // AUFS metadata
    std::string name = base.substr(kWhiteoutPrefix.size());
    Status s = remove_tree_at(pfd, name);
    if (!s.ok()) return s;
    if (::mknodat(pfd, name.c_str(), S_IFCHR, makedev(0, 0)) != 0) {
      return errno_status("create whiteout", join(comps, comps.size() - 1) + "/" + name, errno);
    }
    return Status::Ok();
  }

  const mode_t type = la().entry_filetype(e);
  const char* hardlink = la().entry_hardlink(e);
  struct stat existing;
  if (::fstatat(pfd, base.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0) {
    bool keep_dir = hardlink == nullptr && type == AE_IFDIR && S_ISDIR(existing.st_mode);
    if (!keep_dir) {
      Status s = remove_tree_at(pfd, base);
      if (!s.ok()) return s;
    }
  }
  const mode_t perm = la().entry_perm(e) & 07777;
  const uid_t uid = static_cast<uid_t>(la().entry_uid(e));
  const gid_t gid = static_cast<gid_t>(la().entry_gid(e));
  timespec times[2];
  times[1].tv_sec = la().entry_mtime(e);
  times[1].tv_nsec = la().entry_mtime_nsec(e);
  times[0] = la().entry_atime_is_set(e)
                 ? timespec{la().entry_atime(e), la().entry_atime_nsec(e)}
                 : times[1];

  if (hardlink != nullptr) {
    std::vector<std::string> target = clean_components(hardlink);
    if (target.empty()) return Status::Invalid("layer entry \"" + path + "\": bad hard link");
    int tparent = open_in_root(join(target, target.size() - 1), O_PATH | O_DIRECTORY);
    int err = -tparent;
    if (tparent >= 0) {
      Fd owner(tparent);
      err = ::linkat(tparent, target.back().c_str(), pfd, base.c_str(), 0) == 0 ? 0 : errno;
    }
    if (err != 0) {
      return Status::Invalid("layer entry \"" + path + "\": cannot link to \"" +
                             join(target, target.size()) + "\": " + std::strerror(err));
    }
    return Status::Ok();
  }

  switch (type) {
    case AE_IFREG: {
      Fd fd(
          ::openat(pfd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!fd.valid()) return errno_status("create", path, errno);
      Status s = write_file(a, fd.get(), path, content_size);
      if (!s.ok()) return s;
      if (::ftruncate(fd.get(), la().entry_size(e)) != 0) {
        return errno_status("truncate", path, errno);
      }
      if (privileged_ && ::fchown(fd.get(), uid, gid) != 0) {
        return errno_status("chown", path, errno);
      }
      if (::fchmod(fd.get(), perm) != 0) return errno_status("chmod", path, errno);
      s = apply_xattrs(fd.get(), path, entry_xattrs(e));
      if (!s.ok()) return s;
      ::futimens(fd.get(), times);
      return Status::Ok();
    }
    case AE_IFDIR: {
      if (::mkdirat(pfd, base.c_str(), 0700) != 0 && errno != EEXIST) {
        return errno_status("mkdir", path, errno);
      }
      // Modes and times of directories are set last: a read-only directory must still take
      // its children, and adding them would change its mtime.
      dirs_.push_back({path, perm, uid, gid, times[1], entry_xattrs(e)});
      return Status::Ok();
    }
    case AE_IFLNK: {
      const char* target = la().entry_symlink(e);
      if (::symlinkat(target ? target : "", pfd, base.c_str()) != 0) {
        return errno_status("symlink", path, errno);
      }
      if (privileged_) ::fchownat(pfd, base.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
      ::utimensat(pfd, base.c_str(), times, AT_SYMLINK_NOFOLLOW);
      return Status::Ok();
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
      if (type != AE_IFIFO && !privileged_) return Status::Ok();  // cannot mknod; skipped
      dev_t dev =
          type == AE_IFIFO ? 0 : makedev(la().entry_rdevmajor(e), la().entry_rdevminor(e));
      if (::mknodat(pfd, base.c_str(), type | 0600, dev) != 0) {
        return errno_status("mknod", path, errno);
      }
      if (privileged_) ::fchownat(pfd, base.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
      ::fchmodat(pfd, base.c_str(), perm, 0);
      ::utimensat(pfd, base.c_str(), times, AT_SYMLINK_NOFOLLOW);
      return Status::Ok();
    }
    default:
      return Status::Ok();  // sockets and unknown types carry no content
  }
}

Status Unpacker::finish() {
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    int raw = open_in_root(it->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (raw < 0) continue;  // replaced by a later entry or a whiteout
    Fd fd(raw);
    if (privileged_ && ::fchown(fd.get(), it->uid, it->gid) != 0) {
      return errno_status("chown", it->path, errno);
    }
    Status s = apply_xattrs(fd.get(), it->path, it->xattrs);
    if (!s.ok()) return s;
    if (::fchmod(fd.get(), it->mode) != 0) return errno_status("chmod", it->path, errno);
    timespec times[2] = {it->mtime, it->mtime};
    ::futimens(fd.get(), times);
  }
  return Status::Ok();
}

}  // namespace

Result<UnpackedLayer> unpack_layer(const std::string& blob_path, const std::string& dest) {
  Fd root(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return errno_status("open", dest, errno);
  if (Status s = load_libarchive(); !s.ok()) return s;

  HashedStream stream;
  stream.inner = la().read_new();
  la().read_support_filter_all(stream.inner);
  la().read_support_format_raw(stream.inner);
  archive* outer = la().read_new();
  la().read_support_format_tar(outer);
  la().read_support_format_empty(outer);
  struct Closer {
    HashedStream& s;
    archive* outer;
    ~Closer() {
      la().read_free(outer);
      la().read_free(s.inner);
    }
  } closer{stream, outer};

  auto archive_error = [&](archive* a, std::string_view what) {
    std::string m = stream.error;
    if (m.empty()) {
      const char* e = la().error_string(a);
      m = e ? e : "unknown error";
    }
    return Status::Invalid("layer " + blob_path + ": " + std::string(what) + ": " + m);
  };

  if (la().read_open_filename(stream.inner, blob_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return archive_error(stream.inner, "open");
  }
  archive_entry* raw_entry;
  int r = la().read_next_header(stream.inner, &raw_entry);
  if (r == ARCHIVE_EOF) {
    stream.inner_eof = true;
  } else if (r < ARCHIVE_WARN) {
    return archive_error(stream.inner, "decompress");
  }
  if (la().read_open(outer, &stream, nullptr, read_hashed, nullptr) != ARCHIVE_OK) {
    return archive_error(outer, "read");
  }

  Unpacker unpacker(root.get(), ::geteuid() == 0);
  UnpackedLayer out;
  while (true) {
    archive_entry* e;
    r = la().read_next_header(outer, &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return archive_error(outer, "read");
    Status s = unpacker.entry(outer, e, &out.content_size);
    if (!s.ok()) return s;
  }
  Status s = unpacker.finish();
  if (!s.ok()) return s;
  // The tar reader stops at the end-of-archive blocks; the diff_id covers every byte.
  const void* unused;
  while (read_hashed(outer, &stream, &unused) > 0) {
  }
  if (!stream.error.empty()) return archive_error(outer, "read");
  out.diff_id = stream.hash.digest();
  return out;
}

}  // namespace skiff::agent::images
