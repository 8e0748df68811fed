// FaultVfs: an SQLite VFS for tests that simulates power loss.
//
// It wraps SQLite's default VFS and passes every call through, while remembering for each
// database, WAL and rollback-journal file its "durable image": the contents covered by the
// last xSync. Writes and truncations since then are kept as a list of pending operations, per
// file (not per handle: an fsync on any descriptor flushes the whole file, as on Linux).
//
// A crash (crash(), or the nth xSync via crash_at_sync()) cuts the power: from then on every
// write, sync, truncate and delete through the VFS fails with an I/O error, so nothing more
// becomes durable and the crashing process cannot acknowledge anything new. Once every
// connection is closed, restore_after_crash() rewrites each file as the disk would hold it after
// the reboot: its durable image, optionally with some of the pending writes (the kernel may have
// written some dirty pages back; each write lands whole or not at all, in the order issued). Files
// that were never synced are deleted, and so is each database's -shm file, whose contents do
// not survive a reboot and which SQLite rebuilds from the WAL on open. File deletions are
// treated as immediately durable.
//
// Thread-safety: all methods are thread-safe; the VFS may be used by many connections at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace skiff::store::testing {

class FaultVfs {
 public:
  // Registers the VFS under name (not as the default VFS).
  // REQUIRES: no other registered VFS has that name.
  // real_sync: whether xSync also fsyncs the real file. Durability here is modelled by the
  // durable images, so tests usually skip the real fsync to run fast.
  explicit FaultVfs(std::string name, bool real_sync = false);
  // Unregisters the VFS. REQUIRES: no open connection uses it.
  ~FaultVfs();

  FaultVfs(const FaultVfs&) = delete;
  FaultVfs& operator=(const FaultVfs&) = delete;

  const std::string& name() const;

  // Cuts the power now.
  void crash();
  // Cuts the power at the start of the nth xSync from now (n >= 1): that sync fails.
  void crash_at_sync(uint64_t n);
  bool crashed() const;
  // xSync calls that made data durable so far.
  uint64_t syncs() const;

  enum class Unsynced {
    kLost,          // every write since the last xSync is lost
    kRandomSubset,  // each pending write survives with probability 1/2
    kPrefix,        // the writes of a random-length prefix survive (writeback was under way)
  };
  // Puts the files into their after-reboot state (see above) and switches the power back on.
  // REQUIRES: crashed(), and every connection through this VFS is closed.
  void restore_after_crash(Unsynced mode = Unsynced::kLost, uint32_t seed = 0);

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace skiff::store::testing
