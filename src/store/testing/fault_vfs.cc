#include "store/testing/fault_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <vector>

namespace skiff::store::testing {

struct FaultVfs::State {
  struct Op {
    bool truncate = false;
    int64_t offset = 0;  // for a truncate: the new size
    std::string data;
  };
  struct File {
    std::optional<std::string> durable;  // nullopt: the file does not exist after a reboot
    std::vector<Op> pending;             // writes and truncates since the last sync, in order
    bool main_db = false;
  };

  std::string name;
  bool real_sync = false;
  sqlite3_vfs vfs{};
  sqlite3_vfs* real = nullptr;

  mutable std::mutex mu;
  // Guarded by mu.
  std::map<std::string, File> files;
  bool crashed = false;
  uint64_t syncs = 0;
  uint64_t sync_attempts = 0;
  uint64_t crash_at_attempt = 0;  // 0: no crash scheduled
};

namespace {

using State = FaultVfs::State;

// SQLite allocates vfs.szOsFile bytes per open file: this header, then the real VFS's file.
struct FaultFile {
  sqlite3_file base;
  State* state;
  const char* path;  // nullptr for files whose durability is not modelled (temporary files)
  sqlite3_file* real;
};

State* state_of(sqlite3_vfs* vfs) { return static_cast<State*>(vfs->pAppData); }
FaultFile* fault_file(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f); }

void apply_op(std::string& image, const State::Op& op) {
  if (op.truncate) {
    image.resize(static_cast<size_t>(op.offset));
    return;
  }
  size_t end = static_cast<size_t>(op.offset) + op.data.size();
  if (image.size() < end) image.resize(end, '\0');
  std::memcpy(image.data() + op.offset, op.data.data(), op.data.size());
}

int xClose(sqlite3_file* f) {
  FaultFile* ff = fault_file(f);
  return ff->real->pMethods->xClose(ff->real);
}

int xRead(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  FaultFile* ff = fault_file(f);
  return ff->real->pMethods->xRead(ff->real, buf, n, off);
}

int xWrite(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  FaultFile* ff = fault_file(f);
  if (ff->path == nullptr) return ff->real->pMethods->xWrite(ff->real, buf, n, off);
  std::lock_guard<std::mutex> lock(ff->state->mu);
  if (ff->state->crashed) return SQLITE_IOERR_WRITE;
  ff->state->files[ff->path].pending.push_back(
      State::Op{false, off, std::string(static_cast<const char*>(buf), n)});
  return ff->real->pMethods->xWrite(ff->real, buf, n, off);
}

int xTruncate(sqlite3_file* f, sqlite3_int64 size) {
  FaultFile* ff = fault_file(f);
  if (ff->path == nullptr) return ff->real->pMethods->xTruncate(ff->real, size);
  std::lock_guard<std::mutex> lock(ff->state->mu);
  if (ff->state->crashed) return SQLITE_IOERR_TRUNCATE;
  ff->state->files[ff->path].pending.push_back(State::Op{true, size, {}});
  return ff->real->pMethods->xTruncate(ff->real, size);
}

int xSync(sqlite3_file* f, int flags) {
  FaultFile* ff = fault_file(f);
  if (ff->path == nullptr) return ff->real->pMethods->xSync(ff->real, flags);
  State* st = ff->state;
  std::lock_guard<std::mutex> lock(st->mu);
  ++st->sync_attempts;
  if (st->crash_at_attempt != 0 && st->sync_attempts >= st->crash_at_attempt) st->crashed = true;
  if (st->crashed) return SQLITE_IOERR_FSYNC;
  if (st->real_sync) {
    int rc = ff->real->pMethods->xSync(ff->real, flags);
    if (rc != SQLITE_OK) return rc;
  }
  State::File& file = st->files[ff->path];
  if (!file.durable) file.durable.emplace();
  for (const State::Op& op : file.pending) apply_op(*file.durable, op);
  file.pending.clear();
  ++st->syncs;
  return SQLITE_OK;
}

int xFileSize(sqlite3_file* f, sqlite3_int64* size) {
  FaultFile* ff = fault_file(f);
  return ff->real->pMethods->xFileSize(ff->real, size);
}
int xLock(sqlite3_file* f, int level) {
  FaultFile* ff = fault_file(f);
  return ff->real->pMethods->xLock(ff->real, level);
}
int xUnlock(sqlite3_file* f, int level) {
  FaultFile* ff = fault_file(f);
  return ff->real->pMethods->xUnlock(ff->real, level);
}
int xCheckReservedLock(sqlite3_file* f, int* out) {
  FaultFile* ff = fault_file(f);
  return ff->real->pMethods->xCheckReservedLock(ff->real, out);
}
int xFileControl(sqlite3_file* f, int op, void* arg) {
  FaultFile* ff = fault_file(f);
  return ff->real->pMethods->xFileControl(ff->real, op, arg);
}
int xSectorSize(sqlite3_file* f) {
  FaultFile* ff = fault_file(f);
  return ff->real->pMethods->xSectorSize(ff->real);
}
int xDeviceCharacteristics(sqlite3_file* f) {
  FaultFile* ff = fault_file(f);
  return ff->real->pMethods->xDeviceCharacteristics(ff->real);
}
int xShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  FaultFile* ff = fault_file(f);
  return ff->real->pMethods->xShmMap(ff->real, region, size, extend, out);
}
int xShmLock(sqlite3_file* f, int offset, int n, int flags) {
  FaultFile* ff = fault_file(f);
  return ff->real->pMethods->xShmLock(ff->real, offset, n, flags);
}
void xShmBarrier(sqlite3_file* f) {
  FaultFile* ff = fault_file(f);
  ff->real->pMethods->xShmBarrier(ff->real);
}
int xShmUnmap(sqlite3_file* f, int delete_flag) {
  FaultFile* ff = fault_file(f);
  return ff->real->pMethods->xShmUnmap(ff->real, delete_flag);
}

// Version 2: shared memory (needed for WAL) but no memory-mapped reads, so every read of the
// database goes through xRead.
const sqlite3_io_methods kMethods = {
    2,
    xClose,
    xRead,
    xWrite,
    xTruncate,
    xSync,
    xFileSize,
    xLock,
    xUnlock,
    xCheckReservedLock,
    xFileControl,
    xSectorSize,
    xDeviceCharacteristics,
    xShmMap,
    xShmLock,
    xShmBarrier,
    xShmUnmap,
    nullptr,
    nullptr,
};

constexpr int kTrackedTypes = SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_WAL;

int xOpen(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  State* st = state_of(vfs);
  FaultFile* ff = fault_file(f);
  ff->base.pMethods = nullptr;
  ff->state = st;
  ff->path = (name != nullptr && (flags & kTrackedTypes) != 0) ? name : nullptr;
  ff->real = reinterpret_cast<sqlite3_file*>(ff + 1);

  int existed = 0;
  if (ff->path != nullptr) {
    int rc = st->real->xAccess(st->real, name, SQLITE_ACCESS_EXISTS, &existed);
    if (rc != SQLITE_OK) return rc;
  }
  int rc = st->real->xOpen(st->real, name, ff->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (ff->real->pMethods != nullptr) ff->real->pMethods->xClose(ff->real);
    return rc;
  }
  if (ff->path != nullptr) {
    std::lock_guard<std::mutex> lock(st->mu);
    auto [it, inserted] = st->files.try_emplace(ff->path);
    State::File& file = it->second;
    if (flags & SQLITE_OPEN_MAIN_DB) file.main_db = true;
    if (inserted && existed) {
      // A file from before this VFS saw it counts as durable as it is.
      sqlite3_int64 size = 0;
      ff->real->pMethods->xFileSize(ff->real, &size);
      std::string image(static_cast<size_t>(size), '\0');
      if (size > 0) ff->real->pMethods->xRead(ff->real, image.data(), static_cast<int>(size), 0);
      file.durable = std::move(image);
    }
  }
  ff->base.pMethods = &kMethods;
  return SQLITE_OK;
}

int xDelete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  State* st = state_of(vfs);
  std::lock_guard<std::mutex> lock(st->mu);
  if (st->crashed) return SQLITE_IOERR_DELETE;
  st->files.erase(name);
  return st->real->xDelete(st->real, name, sync_dir);
}

int xAccess(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  State* st = state_of(vfs);
  return st->real->xAccess(st->real, name, flags, out);
}
int xFullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  State* st = state_of(vfs);
  return st->real->xFullPathname(st->real, name, n, out);
}
void* xDlOpen(sqlite3_vfs* vfs, const char* name) {
  State* st = state_of(vfs);
  return st->real->xDlOpen(st->real, name);
}
void xDlError(sqlite3_vfs* vfs, int n, char* out) {
  State* st = state_of(vfs);
  st->real->xDlError(st->real, n, out);
}
void (*xDlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  State* st = state_of(vfs);
  return st->real->xDlSym(st->real, handle, symbol);
}
void xDlClose(sqlite3_vfs* vfs, void* handle) {
  State* st = state_of(vfs);
  st->real->xDlClose(st->real, handle);
}
int xRandomness(sqlite3_vfs* vfs, int n, char* out) {
  State* st = state_of(vfs);
  return st->real->xRandomness(st->real, n, out);
}
int xSleep(sqlite3_vfs* vfs, int micros) {
  State* st = state_of(vfs);
  return st->real->xSleep(st->real, micros);
}
int xCurrentTime(sqlite3_vfs* vfs, double* out) {
  State* st = state_of(vfs);
  return st->real->xCurrentTime(st->real, out);
}
int xGetLastError(sqlite3_vfs* vfs, int n, char* out) {
  State* st = state_of(vfs);
  return st->real->xGetLastError(st->real, n, out);
}
int xCurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  State* st = state_of(vfs);
  return st->real->xCurrentTimeInt64(st->real, out);
}

bool write_file(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) {
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return ::close(fd) == 0;
}

}  // namespace

FaultVfs::FaultVfs(std::string name, bool real_sync) : state_(std::make_unique<State>()) {
  State* st = state_.get();
  st->name = std::move(name);
  st->real_sync = real_sync;
  st->real = sqlite3_vfs_find(nullptr);
  // The default VFS always exists in a standard SQLite build; without it nothing could run.
  if (st->real == nullptr) std::abort();
  sqlite3_vfs& v = st->vfs;
  v.iVersion = 2;
  v.szOsFile = static_cast<int>(sizeof(FaultFile)) + st->real->szOsFile;
  v.mxPathname = st->real->mxPathname;
  v.zName = st->name.c_str();
  v.pAppData = st;
  v.xOpen = xOpen;
  v.xDelete = xDelete;
  v.xAccess = xAccess;
  v.xFullPathname = xFullPathname;
  v.xDlOpen = xDlOpen;
  v.xDlError = xDlError;
  v.xDlSym = xDlSym;
  v.xDlClose = xDlClose;
  v.xRandomness = xRandomness;
  v.xSleep = xSleep;
  v.xCurrentTime = xCurrentTime;
  v.xGetLastError = xGetLastError;
  v.xCurrentTimeInt64 = xCurrentTimeInt64;
  sqlite3_vfs_register(&v, 0);
}

FaultVfs::~FaultVfs() { sqlite3_vfs_unregister(&state_->vfs); }

const std::string& FaultVfs::name() const { return state_->name; }

void FaultVfs::crash() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->crashed = true;
}

void FaultVfs::crash_at_sync(uint64_t n) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->crash_at_attempt = state_->sync_attempts + (n == 0 ? 1 : n);
}

bool FaultVfs::crashed() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->crashed;
}

uint64_t FaultVfs::syncs() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->syncs;
}

void FaultVfs::restore_after_crash(Unsynced mode, uint32_t seed) {
  std::lock_guard<std::mutex> lock(state_->mu);
  std::mt19937 rng(seed);
  for (auto& [path, file] : state_->files) {
    std::optional<std::string> image = file.durable;
    size_t prefix = file.pending.empty() ? 0 : rng() % (file.pending.size() + 1);
    for (size_t i = 0; i < file.pending.size(); ++i) {
      bool keep = (mode == Unsynced::kRandomSubset && rng() % 2 == 1) ||
                  (mode == Unsynced::kPrefix && i < prefix);
      if (!keep) continue;
      if (!image) image.emplace();
      apply_op(*image, file.pending[i]);
    }
    if (image) {
      write_file(path, *image);
    } else {
      ::unlink(path.c_str());
    }
    file.durable = std::move(image);
    file.pending.clear();
    if (file.main_db) ::unlink((path + "-shm").c_str());
  }
  state_->crashed = false;
  state_->crash_at_attempt = 0;
}

}  // namespace skiff::store::testing
