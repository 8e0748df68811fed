// SqliteStore: the default Store backend, an embedded SQLite database in WAL mode.
//
// Layout on disk (one database file plus its -wal and -shm files):
//   kv    a log of every write, one row per revision: (revision, key, create_revision,
//         prev_revision, deleted, value). A delete is a row with deleted = 1 and no value
//         (a tombstone); prev_revision is the revision of the key's previous live value, 0 when
//         the write created the key.
//   live  key -> (revision, create_revision) of every live key, so that get and list read each
//         key's latest row in one pass.
//   meta  the compacted revision and the schema version.
// The current revision is the largest of MAX(kv.revision) and the compacted revision, so it
// never goes backwards, also across restarts and compactions that drop the newest tombstone.
//
// Writes: one writer thread owns the write connection. write() queues the op; the writer takes
// everything queued (at most max_batch_writes), checks each op's condition against an
// in-memory index of live keys, applies the ops that pass in ONE transaction, commits it once
// (one fsync of the WAL, synchronous=FULL), then hands the batch's events to every watcher, in
// revision order, and only then runs the callbacks. An op that fails its condition gets its own
// error and does not affect the others; an SQLite error inside the transaction fails every op of
// the batch with that error (Unavailable for I/O errors and a full disk). A failed COMMIT
// leaves the durable state unknown, so the store then refuses all further writes (Unavailable)
// until it is reopened; reads keep working.
//
// Compaction to revision R deletes every row at or below R that a later row of its key, also at
// or below R, supersedes, and every tombstone at or below R; the latest row of each live key
// stays, so get and list are unaffected. It runs on the writer thread, periodically and on
// compact(), in transactions of at most compaction_batch_revisions revisions so that writes
// keep flowing while it catches up.
//
// Reads run on a small pool of read connections, each in its own snapshot, concurrently with
// the writer.
//
// One SqliteStore per database file: the in-memory index assumes no other writer.
//
// Thread-safety: every method may be called from any thread concurrently, except that sinks and
// write callbacks must not block and must not call compact(), watch(), write_sync() or the
// store's destructor (write() and destroying watch handles are fine).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "store/store.h"

namespace skiff::store {

struct SqliteStoreOptions {
  // How often the writer thread compacts history; zero disables periodic compaction.
  std::chrono::milliseconds compaction_interval = std::chrono::minutes(5);
  // Periodic compaction keeps at least this many of the most recent revisions of history, so
  // watches can resume from any of them.
  int64_t retained_revisions = 10000;
  // Name of a registered SQLite VFS to open the database through; empty = SQLite's default.
  // Tests use it to inject faults (see store/testing/fault_vfs.h).
  std::string vfs;
  // Most write ops one group-commit transaction takes.
  size_t max_batch_writes = 1024;
  // Most revisions one compaction transaction covers.
  int64_t compaction_batch_revisions = 10000;
};

// Counters since open(); a consistent snapshot is not guaranteed between fields.
struct SqliteStoreStats {
  uint64_t writes = 0;                   // write ops the writer processed, successful or not
  uint64_t failed_writes = 0;            // ops that failed a condition or an SQLite error
  uint64_t transactions = 0;             // write transactions committed (one WAL fsync each)
  uint64_t largest_batch = 0;            // most ops taken in one batch
  uint64_t compaction_transactions = 0;  // compaction transactions committed
};

class SqliteStore final : public Store {
 public:
  // Opens (creating if needed) the database at path and starts the writer thread.
  // Returns Invalid for out-of-range options, Unavailable if the file cannot be opened or is not
  // a usable SQLite database in WAL mode, Internal if it holds a schema this version does not
  // understand.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path,
                                                   const SqliteStoreOptions& opts = {});

  // Stops accepting writes (they fail with Unavailable), commits every write already queued
  // (also while paused), answers pending compact() calls, joins the writer thread and closes
  // the database. Watch handles may outlive the store; they simply receive nothing more.
  ~SqliteStore() override;

  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // Reads see every write whose callback has run, and possibly later committed ones.
  Result<KeyValue> get(std::string_view key) override;
  // Reads one snapshot; revision is the store's revision in that snapshot.
  Result<ListResult> list(std::string_view prefix, std::string_view start_after = {},
                          int64_t limit = 0) override;

  // Errors passed to cb: AlreadyExists, NotFound, Conflict as in Store; Invalid for an empty key,
  // a missing value or a negative expected revision; TooLarge beyond SQLite's row size limit;
  // Unavailable when the store is closed (cb then runs on the calling thread) or the
  // transaction failed.
  void write(WriteOp op, WriteCallback cb) override;

  // The sink first receives the retained history, on the calling thread before watch()
  // returns, then live events on the writer thread; never two calls at once. Returns Gone if
  // after_revision < compacted_revision(), Invalid if it is negative or sink is empty, and the
  // SQLite error if the history cannot be read (the sink may then have seen part of it).
  // Destroying the handle stops delivery: once the destructor returns the sink is not running
  // and will not run again (if the destructor runs inside the sink, the current call finishes).
  Result<std::unique_ptr<WatchHandle>> watch(std::string_view prefix, int64_t after_revision,
                                             EventSink sink) override;

  int64_t current_revision() override;
  int64_t compacted_revision() override;

  // Blocks until history at or below revision is discarded. OK at once if revision is not
  // above compacted_revision(); Invalid if it is above current_revision(); Unavailable if the
  // store closes first; the SQLite error if a compaction transaction fails.
  Status compact(int64_t revision) override;

  SqliteStoreStats stats() const;

  // Test hooks. pause_writer() returns once the writer thread is idle and keeps it from taking
  // queued writes (or compacting) until resume_writer(), so a test can queue a known batch.
  void pause_writer();
  void resume_writer();

 private:
  class Impl;
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::store
