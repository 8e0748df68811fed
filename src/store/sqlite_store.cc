#include "store/sqlite_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/sqlite_api.h"

namespace skiff::store {
namespace {

constexpr int64_t kSchemaVersion = 1;
constexpr int kBusyTimeoutMs = 10000;
// Idle read connections kept open; more are opened under load and closed when returned.
constexpr size_t kMaxIdleReaders = 8;
// Most events handed to a sink in one call while replaying history.
constexpr size_t kHistoryChunk = 1024;

struct DbCloser {
  void operator()(sqlite3* db) const { sq().close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;

Status sqlite_status(sqlite3* db, int rc, std::string_view what) {
  std::string msg = "store: ";
  msg += what;
  msg += ": ";
  msg += db != nullptr ? sq().errmsg(db) : sq().errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_MISUSE:
    case SQLITE_INTERNAL:
    case SQLITE_ERROR:
    case SQLITE_MISMATCH:
    case SQLITE_CONSTRAINT:
      return Status::Internal(std::move(msg));
    default:  // I/O errors, a full disk, locks held too long: the store is unavailable
      return Status::Unavailable(std::move(msg));
  }
}

// A prepared statement. Blob parameters are bound without copying: the bound bytes must stay
// alive until reset().
class Stmt {
 public:
  Stmt() = default;

  static Result<Stmt> prepare(sqlite3* db, std::string_view sql) {
    sqlite3_stmt* raw = nullptr;
    int rc = sq().prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    if (rc != SQLITE_OK) return sqlite_status(db, rc, "prepare");
    Stmt s;
    s.db_ = db;
    s.stmt_.reset(raw);
    return s;
  }

  void bind(int i, int64_t v) { sq().bind_int64(stmt_.get(), i, v); }
  void bind_blob(int i, std::string_view v) {
    // A null pointer would bind SQL NULL; an empty key or value is an empty blob.
    sq().bind_blob64(stmt_.get(), i, v.data() != nullptr ? v.data() : "", v.size(),
                        SQLITE_STATIC);
  }
  void bind_null(int i) { sq().bind_null(stmt_.get(), i); }

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sq().step(stmt_.get()); }
  void reset() {
    sq().reset(stmt_.get());
    sq().clear_bindings(stmt_.get());
  }
  // Runs a statement that returns no rows, then resets it.
  Status run(std::string_view what) {
    int rc = step();
    Status s = rc == SQLITE_DONE ? Status() : sqlite_status(db_, rc, what);
    reset();
    return s;
  }

  int64_t column_int(int i) { return sq().column_int64(stmt_.get(), i); }
  bool column_null(int i) { return sq().column_type(stmt_.get(), i) == SQLITE_NULL; }
  std::string_view column_blob(int i) {
    const void* p = sq().column_blob(stmt_.get(), i);
    int n = sq().column_bytes(stmt_.get(), i);
    return p == nullptr ? std::string_view() : std::string_view(static_cast<const char*>(p), n);
  }
  std::shared_ptr<const std::string> column_value(int i) {
    if (column_null(i)) return nullptr;
    return std::make_shared<const std::string>(column_blob(i));
  }

 private:
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const { sq().finalize(s); }
  };
  sqlite3* db_ = nullptr;
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
};

// Resets a statement when the scope ends, releasing its bindings and read snapshot.
class ResetOnExit {
 public:
  explicit ResetOnExit(Stmt& s) : s_(s) {}
  ~ResetOnExit() { s_.reset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  Stmt& s_;
};

Status exec(sqlite3* db, const char* sql) {
  int rc = sq().exec(db, sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? Status() : sqlite_status(db, rc, sql);
}

Result<Db> open_connection(const std::string& path, const std::string& vfs) {
  sqlite3* raw = nullptr;
  int rc = sq().open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           vfs.empty() ? nullptr : vfs.c_str());
  Db db(raw);
  if (rc != SQLITE_OK) {
    Status s = sqlite_status(raw, rc, "open " + path);
    return Status::Unavailable(s.message());
  }
  sq().extended_result_codes(raw, 1);
  sq().busy_timeout(raw, kBusyTimeoutMs);
  return db;
}

// The smallest byte string greater than every string that starts with prefix, or nullopt when
// there is none (prefix empty or all 0xff).
std::optional<std::string> prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last != 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::nullopt;
}

// Makes a directory entry durable (the database file's, when it was just created).
void sync_parent_directory(const std::string& path) {
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS kv(
  revision INTEGER PRIMARY KEY,
  key BLOB NOT NULL,
  create_revision INTEGER NOT NULL,
  prev_revision INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  value BLOB);
CREATE TABLE IF NOT EXISTS live(
  key BLOB PRIMARY KEY,
  revision INTEGER NOT NULL,
  create_revision INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta(
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta(name, value) VALUES('schema_version', 1), ('compacted_revision', 0);
)sql";

// The store's revision in the reading snapshot (see the header for why compacted_revision
// takes part).
constexpr const char* kRevisionSql =
    "SELECT MAX(IFNULL((SELECT MAX(revision) FROM kv), 0),"
    " (SELECT value FROM meta WHERE name = 'compacted_revision'))";

// Live events go to watchers through this registry. It is shared with the watch handles so that
// a handle may outlive the store.
struct Watcher {
  Watcher(std::string p, int64_t a, EventSink s)
      : prefix(std::move(p)), after(a), sink(std::move(s)) {}

  const std::string prefix;
  // Events at or below this revision were already covered by the history (or by the list the
  // caller started from), so the first live batch may contain some to skip.
  const int64_t after;
  const EventSink sink;
  std::atomic<bool> active{true};
  std::mutex delivery_mu;  // held while the sink runs on the writer thread

  void deliver(const std::vector<Event>& events) {
    std::lock_guard<std::mutex> lock(delivery_mu);
    if (!active.load()) return;
    auto wanted = [this](const Event& e) {
      return e.kv.mod_revision > after && e.kv.key.starts_with(prefix);
    };
    if (std::all_of(events.begin(), events.end(), wanted)) {
      sink(events);
      return;
    }
    std::vector<Event> mine;
    for (const Event& e : events) {
      if (wanted(e)) mine.push_back(e);
    }
    if (!mine.empty()) sink(mine);
  }
};

struct WatchRegistry {
  std::atomic<std::thread::id> writer_thread;

  std::mutex mu;
  // Guarded by mu: the newest revision whose events were handed to the watchers registered at
  // the time, and those watchers.
  int64_t published_revision = 0;
  std::unordered_map<Watcher*, std::shared_ptr<Watcher>> watchers;

  void publish(const std::vector<Event>& events, int64_t revision) {
    std::vector<std::shared_ptr<Watcher>> targets;
    {
      std::lock_guard<std::mutex> lock(mu);
      published_revision = revision;
      targets.reserve(watchers.size());
      for (auto& [_, w] : watchers) targets.push_back(w);
    }
    if (events.empty()) return;
    for (auto& w : targets) w->deliver(events);
  }
};

class SqliteWatchHandle final : public WatchHandle {
 public:
  SqliteWatchHandle(std::shared_ptr<WatchRegistry> registry, std::shared_ptr<Watcher> watcher)
      : registry_(std::move(registry)), watcher_(std::move(watcher)) {}

  ~SqliteWatchHandle() override {
    watcher_->active.store(false);
    {
      std::lock_guard<std::mutex> lock(registry_->mu);
      registry_->watchers.erase(watcher_.get());
    }
    // Wait out a delivery in progress on the writer thread. On the writer thread itself no other
    // delivery can be in progress, and the one calling us (if any) must be allowed to return.
    if (std::this_thread::get_id() != registry_->writer_thread.load()) {
      std::lock_guard<std::mutex> lock(watcher_->delivery_mu);
    }
  }

 private:
  std::shared_ptr<WatchRegistry> registry_;
  std::shared_ptr<Watcher> watcher_;
};

}  // namespace

class SqliteStore::Impl {
 public:
  Impl(std::string path, SqliteStoreOptions opts)
      : path_(std::move(path)),
        opts_(std::move(opts)),
        watches_(std::make_shared<WatchRegistry>()) {}

  ~Impl() { stop(); }

  Status start();
  void stop();

  Result<KeyValue> get(std::string_view key);
  Result<ListResult> list(std::string_view prefix, std::string_view start_after, int64_t limit);
  void write(WriteOp op, WriteCallback cb);
  Result<std::unique_ptr<WatchHandle>> watch(std::string_view prefix, int64_t after_revision,
                                             EventSink sink);
  Status compact(int64_t revision);
  int64_t current_revision() const { return current_revision_.load(); }
  int64_t compacted_revision() const { return compacted_revision_.load(); }
  SqliteStoreStats stats() const;
  void pause_writer();
  void resume_writer();

 private:
  struct Pending {
    WriteOp op;
    WriteCallback cb;
  };
  struct IndexEntry {
    int64_t create_revision = 0;
    int64_t mod_revision = 0;
  };
  // A key's state as changed by the batch being applied (not yet committed).
  struct Staged {
    std::optional<IndexEntry> entry;           // nullopt: deleted by the batch
    std::shared_ptr<const std::string> value;  // the value the batch last wrote
  };
  struct Batch {
    std::unordered_map<std::string, Staged> staged;
    std::vector<Event> events;
    int64_t revision = 0;  // the last revision handed out
    bool in_transaction = false;
    Status fatal;  // an SQLite error: the whole batch fails
  };
  struct CompactWaiter {
    int64_t revision = 0;
    std::promise<Status> done;
  };
  struct Reader {
    Db db;
    Stmt begin, commit, revision, get, list_bounded, list_unbounded, history;
  };
  class ReaderLease;

  // Writer thread.
  void writer_loop();
  void run_batch(std::vector<Pending>& batch);
  Result<WriteResult> apply(const WriteOp& op, Batch& b);
  std::optional<IndexEntry> lookup(const std::string& key, const Batch& b) const;
  Status compaction_step(int64_t target);
  void checkpoint_if_needed();
  void finish_compaction_waiters(const Status& error);  // REQUIRES: queue_mu_ held

  // Readers.
  Result<std::unique_ptr<Reader>> open_reader();
  Result<ReaderLease> acquire_reader();
  void release_reader(std::unique_ptr<Reader> r);
  // Hands the events in (from, to] under prefix to sink, oldest first.
  Status replay(const std::string& prefix, int64_t from, int64_t to, const EventSink& sink);

  // Constant after start().
  const std::string path_;
  const SqliteStoreOptions opts_;
  const std::shared_ptr<WatchRegistry> watches_;
  int64_t max_entry_bytes_ = 0;  // SQLite's row size limit

  // Used only by the writer thread once it runs (and by start() before).
  Db wdb_;
  Stmt w_begin_, w_commit_, w_rollback_, w_insert_kv_, w_put_live_, w_delete_live_, w_value_at_,
      w_compact_superseded_, w_compact_tombstones_, w_set_compacted_;
  std::unordered_map<std::string, IndexEntry> index_;  // every live key
  Status broken_;       // set when a COMMIT failed: the durable state is unknown
  int wal_frames_ = 0;  // frames in the WAL after the last commit

  std::atomic<int64_t> current_revision_{0};
  std::atomic<int64_t> compacted_revision_{0};  // changes only with history_mu_ held exclusively

  std::atomic<uint64_t> stat_writes_{0}, stat_failed_{0}, stat_transactions_{0},
      stat_largest_batch_{0}, stat_compactions_{0};

  // Shared by a watch() replaying history, exclusive while a compaction commits, so history
  // cannot be discarded between the two reads of a watch's replay.
  std::shared_mutex history_mu_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;  // wakes the writer
  std::condition_variable idle_cv_;   // wakes pause_writer()
  // Guarded by queue_mu_.
  std::deque<Pending> queue_;
  bool stopping_ = false;
  bool paused_ = false;
  bool writer_idle_ = false;
  int64_t compact_target_ = 0;
  std::vector<CompactWaiter> compact_waiters_;
  std::chrono::steady_clock::time_point next_compaction_;

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Reader>> idle_readers_;  // guarded by readers_mu_

  std::thread writer_;
};

// Returns a read connection to the pool when it goes out of scope.
class SqliteStore::Impl::ReaderLease {
 public:
  ReaderLease(Impl* impl, std::unique_ptr<Reader> r) : impl_(impl), r_(std::move(r)) {}
  ReaderLease(ReaderLease&& o) noexcept = default;
  ReaderLease& operator=(ReaderLease&&) = delete;
  ~ReaderLease() {
    if (r_) impl_->release_reader(std::move(r_));
  }
  Reader& operator*() { return *r_; }
  Reader* operator->() { return r_.get(); }

 private:
  Impl* impl_;
  std::unique_ptr<Reader> r_;
};

Status SqliteStore::Impl::start() {
  auto db = open_connection(path_, opts_.vfs);
  if (!db.ok()) return db.status();
  wdb_ = std::move(db).value();
  sqlite3* w = wdb_.get();

  {
    sqlite3_stmt* raw = nullptr;
    if (sq().prepare_v2(w, "PRAGMA journal_mode=WAL", -1, &raw, nullptr) != SQLITE_OK) {
      return sqlite_status(w, sq().errcode(w), "set journal mode");
    }
    int rc = sq().step(raw);
    std::string mode = rc == SQLITE_ROW && sq().column_text(raw, 0) != nullptr
                           ? reinterpret_cast<const char*>(sq().column_text(raw, 0))
                           : "";
    Status s = rc == SQLITE_ROW ? Status() : sqlite_status(w, rc, "set journal mode");
    sq().finalize(raw);
    if (!s.ok()) return Status::Unavailable(s.message());
    if (mode != "wal") {
      return Status::Unavailable("store: " + path_ + " cannot use WAL journal mode (got \"" + mode +
                                 "\")");
    }
  }
  // synchronous=FULL: every commit fsyncs the WAL before it returns, so an acknowledged write
  // survives power loss, not only a process crash. journal_size_limit: a burst of writes must
  // not leave a huge WAL file behind once it has been checkpointed.
  for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA journal_size_limit=67108864",
                             "PRAGMA temp_store=MEMORY", "PRAGMA cache_size=-16384"}) {
    Status s = exec(w, pragma);
    if (!s.ok()) return s;
  }
  // SQLite's automatic checkpoint would run inside COMMIT and hold back the batch's callbacks;
  // the writer checkpoints itself once the callbacks have run (see checkpoint_if_needed()).
  // Installing a WAL hook replaces the automatic checkpoint.
  sq().wal_hook(
      w,
      [](void* arg, sqlite3*, const char*, int frames) {
        static_cast<Impl*>(arg)->wal_frames_ = frames;
        return SQLITE_OK;
      },
      this);
  if (Status s = exec(w, "BEGIN IMMEDIATE"); !s.ok()) return s;
  if (Status s = exec(w, kSchema); !s.ok()) {
    exec(w, "ROLLBACK");
    return s;
  }
  if (Status s = exec(w, "COMMIT"); !s.ok()) return s;
  sync_parent_directory(path_);

  {
    auto version = Stmt::prepare(w, "SELECT value FROM meta WHERE name = 'schema_version'");
    if (!version.ok()) return version.status();
    ResetOnExit r(*version);
    if (version->step() != SQLITE_ROW) return sqlite_status(w, sq().errcode(w), "schema");
    if (version->column_int(0) != kSchemaVersion) {
      return Status::Internal("store: " + path_ + " has schema version " +
                              std::to_string(version->column_int(0)) + ", this skiff reads " +
                              std::to_string(kSchemaVersion));
    }
  }
  {
    auto compacted = Stmt::prepare(w, "SELECT value FROM meta WHERE name = 'compacted_revision'");
    auto revision = Stmt::prepare(w, kRevisionSql);
    if (!compacted.ok()) return compacted.status();
    if (!revision.ok()) return revision.status();
    ResetOnExit r1(*compacted), r2(*revision);
    if (compacted->step() != SQLITE_ROW || revision->step() != SQLITE_ROW) {
      return sqlite_status(w, sq().errcode(w), "read revisions");
    }
    compacted_revision_ = compacted->column_int(0);
    current_revision_ = revision->column_int(0);
  }
  {
    auto live = Stmt::prepare(w, "SELECT key, revision, create_revision FROM live");
    if (!live.ok()) return live.status();
    ResetOnExit r(*live);
    int rc;
    while ((rc = live->step()) == SQLITE_ROW) {
      index_.emplace(std::string(live->column_blob(0)),
                     IndexEntry{live->column_int(2), live->column_int(1)});
    }
    if (rc != SQLITE_DONE) return sqlite_status(w, rc, "load index");
  }

  struct {
    Stmt* stmt;
    const char* sql;
  } const statements[] = {
      {&w_begin_, "BEGIN IMMEDIATE"},
      {&w_commit_, "COMMIT"},
      {&w_rollback_, "ROLLBACK"},
      {&w_insert_kv_,
       "INSERT INTO kv(revision, key, create_revision, prev_revision, deleted, value)"
       " VALUES(?1, ?2, ?3, ?4, ?5, ?6)"},
      {&w_put_live_,
       "INSERT INTO live(key, revision, create_revision) VALUES(?1, ?2, ?3)"
       " ON CONFLICT(key) DO UPDATE SET revision = excluded.revision,"
       " create_revision = excluded.create_revision"},
      {&w_delete_live_, "DELETE FROM live WHERE key = ?1"},
      {&w_value_at_, "SELECT value FROM kv WHERE revision = ?1"},
      // A row is superseded when a later row of its key names it as prev_revision; rows
      // superseded at or below the compaction revision are no longer needed. This runs before
      // the tombstones go, as they carry that link.
      {&w_compact_superseded_,
       "DELETE FROM kv WHERE revision IN (SELECT prev_revision FROM kv"
       " WHERE revision > ?1 AND revision <= ?2 AND prev_revision > 0)"},
      {&w_compact_tombstones_,
       "DELETE FROM kv WHERE revision > ?1 AND revision <= ?2 AND deleted = 1"},
      {&w_set_compacted_, "UPDATE meta SET value = ?1 WHERE name = 'compacted_revision'"},
  };
  for (const auto& s : statements) {
    auto prepared = Stmt::prepare(w, s.sql);
    if (!prepared.ok()) return prepared.status();
    *s.stmt = std::move(prepared).value();
  }
  max_entry_bytes_ = sq().limit(w, SQLITE_LIMIT_LENGTH, -1);

  // Fail now, not on the first read, if read connections cannot be opened.
  auto reader = open_reader();
  if (!reader.ok()) return reader.status();
  release_reader(std::move(reader).value());

  watches_->published_revision = current_revision_.load();
  next_compaction_ = std::chrono::steady_clock::now() + opts_.compaction_interval;
  writer_ = std::thread([this] { writer_loop(); });
  return Status();
}

void SqliteStore::Impl::stop() {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stopping_ = true;
    paused_ = false;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  std::lock_guard<std::mutex> lock(readers_mu_);
  idle_readers_.clear();
}

// ---- writer thread ----

void SqliteStore::Impl::writer_loop() {
  watches_->writer_thread.store(std::this_thread::get_id());
  const bool periodic = opts_.compaction_interval.count() > 0;
  std::unique_lock<std::mutex> lock(queue_mu_);
  for (;;) {
    bool worked = false;
    if (!paused_ || stopping_) {
      if (!queue_.empty()) {
        size_t n = std::min(queue_.size(), std::max<size_t>(opts_.max_batch_writes, 1));
        std::vector<Pending> batch;
        batch.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        lock.unlock();
        run_batch(batch);
        checkpoint_if_needed();
        lock.lock();
        worked = true;
      }
      auto now = std::chrono::steady_clock::now();
      if (periodic && now >= next_compaction_) {
        compact_target_ =
            std::max(compact_target_, current_revision_.load() - opts_.retained_revisions);
        next_compaction_ = now + opts_.compaction_interval;
      }
      // One compaction step per batch: compaction catches up without stalling writes.
      if (!stopping_ && compact_target_ > compacted_revision_.load()) {
        int64_t target = compact_target_;
        lock.unlock();
        Status s = compaction_step(target);
        checkpoint_if_needed();
        lock.lock();
        if (!s.ok()) compact_target_ = compacted_revision_.load();
        finish_compaction_waiters(s);
        worked = true;
      }
    }
    if (worked) continue;
    if (stopping_ && queue_.empty()) break;
    writer_idle_ = true;
    idle_cv_.notify_all();
    auto ready = [this] {
      return stopping_ ||
             (!paused_ && (!queue_.empty() || compact_target_ > compacted_revision_.load()));
    };
    if (periodic && !paused_) {
      queue_cv_.wait_until(lock, next_compaction_, ready);
    } else {
      queue_cv_.wait(lock, ready);
    }
    writer_idle_ = false;
  }
  finish_compaction_waiters(Status::Unavailable("store is closed"));
  writer_idle_ = true;
  idle_cv_.notify_all();
}

void SqliteStore::Impl::finish_compaction_waiters(const Status& error) {
  int64_t compacted = compacted_revision_.load();
  auto it = compact_waiters_.begin();
  while (it != compact_waiters_.end()) {
    if (!error.ok()) {
      it->done.set_value(error);
    } else if (it->revision <= compacted) {
      it->done.set_value(Status());
    } else {
      ++it;
      continue;
    }
    it = compact_waiters_.erase(it);
  }
}

std::optional<SqliteStore::Impl::IndexEntry> SqliteStore::Impl::lookup(const std::string& key,
                                                                       const Batch& b) const {
  if (auto it = b.staged.find(key); it != b.staged.end()) return it->second.entry;
  if (auto it = index_.find(key); it != index_.end()) return it->second;
  return std::nullopt;
}

Result<WriteResult> SqliteStore::Impl::apply(const WriteOp& op, Batch& b) {
  using Kind = WriteOp::Kind;
  if (op.key.empty()) return Status::Invalid("empty key");
  if (op.kind != Kind::kRemove && op.value == nullptr) return Status::Invalid("no value");
  if (op.expected_mod_revision < 0) return Status::Invalid("negative expected revision");
  size_t size = op.key.size() + (op.kind != Kind::kRemove ? op.value->size() : 0);
  if (size > static_cast<size_t>(max_entry_bytes_)) {
    return Status::TooLarge("key and value take " + std::to_string(size) +
                            " bytes, more than the limit of " + std::to_string(max_entry_bytes_));
  }

  std::optional<IndexEntry> current = lookup(op.key, b);
  if (op.kind == Kind::kCreate) {
    if (current) return Status::AlreadyExists("key already exists");
  } else {
    if (!current) return Status::NotFound("key not found");
    bool conditional = op.kind == Kind::kUpdate || op.expected_mod_revision != 0;
    if (conditional && current->mod_revision != op.expected_mod_revision) {
      return Status::Conflict("key was modified: expected revision " +
                              std::to_string(op.expected_mod_revision) + ", current revision " +
                              std::to_string(current->mod_revision));
    }
  }

  auto fail = [&b](Status s) -> Status {
    b.fatal = std::move(s);
    return b.fatal;
  };
  if (!b.in_transaction) {
    if (Status s = w_begin_.run("begin"); !s.ok()) return fail(std::move(s));
    b.in_transaction = true;
  }

  std::shared_ptr<const std::string> prev_value;
  if (current) {
    auto staged = b.staged.find(op.key);
    if (staged != b.staged.end() && staged->second.value != nullptr) {
      prev_value = staged->second.value;
    } else {
      ResetOnExit r(w_value_at_);
      w_value_at_.bind(1, current->mod_revision);
      int rc = w_value_at_.step();
      if (rc != SQLITE_ROW) {
        return fail(rc == SQLITE_DONE
                        ? Status::Internal("store: row " + std::to_string(current->mod_revision) +
                                           " of a live key is missing")
                        : sqlite_status(wdb_.get(), rc, "read previous value"));
      }
      prev_value = w_value_at_.column_value(0);
    }
  }

  const int64_t revision = b.revision + 1;
  const int64_t create_revision = current ? current->create_revision : revision;
  const bool deleted = op.kind == Kind::kRemove;

  w_insert_kv_.bind(1, revision);
  w_insert_kv_.bind_blob(2, op.key);
  w_insert_kv_.bind(3, create_revision);
  w_insert_kv_.bind(4, current ? current->mod_revision : 0);
  w_insert_kv_.bind(5, deleted ? 1 : 0);
  if (deleted) {
    w_insert_kv_.bind_null(6);
  } else {
    w_insert_kv_.bind_blob(6, *op.value);
  }
  if (Status s = w_insert_kv_.run("insert"); !s.ok()) return fail(std::move(s));
  if (deleted) {
    w_delete_live_.bind_blob(1, op.key);
    if (Status s = w_delete_live_.run("delete live key"); !s.ok()) return fail(std::move(s));
  } else {
    w_put_live_.bind_blob(1, op.key);
    w_put_live_.bind(2, revision);
    w_put_live_.bind(3, create_revision);
    if (Status s = w_put_live_.run("put live key"); !s.ok()) return fail(std::move(s));
  }
  b.revision = revision;

  Staged& staged = b.staged[op.key];
  if (deleted) {
    staged.entry.reset();
    staged.value = nullptr;
  } else {
    staged.entry = IndexEntry{create_revision, revision};
    staged.value = op.value;
  }

  Event e;
  e.type = deleted ? EventType::kDelete : EventType::kPut;
  e.kv.key = op.key;
  e.kv.value = deleted ? nullptr : op.value;
  e.kv.create_revision = create_revision;
  e.kv.mod_revision = revision;
  e.prev_value = prev_value;
  b.events.push_back(std::move(e));

  WriteResult result;
  result.revision = revision;
  result.create_revision = create_revision;
  result.prev_value = std::move(prev_value);
  return result;
}

void SqliteStore::Impl::run_batch(std::vector<Pending>& batch) {
  std::vector<Result<WriteResult>> results;
  results.reserve(batch.size());
  Batch b;
  b.revision = current_revision_.load();
  bool committed = false;

  if (!broken_.ok()) {
    b.fatal = broken_;
  } else {
    for (Pending& p : batch) {
      results.push_back(apply(p.op, b));
      if (!b.fatal.ok()) break;
    }
    if (b.fatal.ok() && b.in_transaction) {
      Status s = w_commit_.run("commit");
      if (s.ok()) {
        committed = true;
      } else {
        // SQLite may or may not have made the transaction durable; nothing written from now on
        // could be trusted, so refuse writes until the store is reopened and recovers.
        broken_ = Status::Unavailable(s.message() + " (the store refuses writes until reopened)");
        b.fatal = broken_;
      }
    }
    if (!b.fatal.ok() && !sq().get_autocommit(wdb_.get())) w_rollback_.run("rollback");
  }

  uint64_t failed = 0;
  if (!b.fatal.ok()) {
    results.assign(batch.size(), b.fatal);
    failed = batch.size();
  } else {
    for (const auto& r : results) failed += r.ok() ? 0 : 1;
  }
  stat_writes_ += batch.size();
  stat_failed_ += failed;
  if (batch.size() > stat_largest_batch_.load()) stat_largest_batch_ = batch.size();

  if (committed) {
    for (auto& [key, staged] : b.staged) {
      if (staged.entry) {
        index_[key] = *staged.entry;
      } else {
        index_.erase(key);
      }
    }
    current_revision_ = b.revision;
    ++stat_transactions_;
    watches_->publish(b.events, b.revision);
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].cb) batch[i].cb(std::move(results[i]));
  }
}

void SqliteStore::Impl::checkpoint_if_needed() {
  // SQLite's default threshold for its automatic checkpoint.
  constexpr int kCheckpointFrames = 1000;
  if (wal_frames_ < kCheckpointFrames) return;
  // PASSIVE never waits for readers; what it cannot copy yet is copied next time. A failure
  // (an I/O error) leaves the WAL as it is, and the next commit reports the problem.
  sq().wal_checkpoint_v2(wdb_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  wal_frames_ = 0;
}

Status SqliteStore::Impl::compaction_step(int64_t target) {
  if (!broken_.ok()) return broken_;
  const int64_t from = compacted_revision_.load();
  const int64_t to =
      std::min(target, from + std::max<int64_t>(opts_.compaction_batch_revisions, 1));
  std::unique_lock<std::shared_mutex> history(history_mu_);
  Status s = w_begin_.run("begin compaction");
  if (s.ok()) {
    w_compact_superseded_.bind(1, from);
    w_compact_superseded_.bind(2, to);
    s = w_compact_superseded_.run("compact superseded rows");
  }
  if (s.ok()) {
    w_compact_tombstones_.bind(1, from);
    w_compact_tombstones_.bind(2, to);
    s = w_compact_tombstones_.run("compact tombstones");
  }
  if (s.ok()) {
    w_set_compacted_.bind(1, to);
    s = w_set_compacted_.run("record compacted revision");
  }
  if (!s.ok()) {
    w_rollback_.run("rollback compaction");
    return s;
  }
  s = w_commit_.run("commit compaction");
  if (!s.ok()) {
    broken_ = Status::Unavailable(s.message() + " (the store refuses writes until reopened)");
    if (!sq().get_autocommit(wdb_.get())) w_rollback_.run("rollback compaction");
    // The rows may be gone durably; watches must not be offered them.
    compacted_revision_ = to;
    return broken_;
  }
  compacted_revision_ = to;
  ++stat_compactions_;
  return Status();
}

// ---- public operations ----

void SqliteStore::Impl::write(WriteOp op, WriteCallback cb) {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (!stopping_) {
      queue_.push_back(Pending{std::move(op), std::move(cb)});
      queue_cv_.notify_one();
      return;
    }
  }
  if (cb) cb(Status::Unavailable("store is closed"));
}

Status SqliteStore::Impl::compact(int64_t revision) {
  int64_t current = current_revision_.load();
  if (revision > current) {
    return Status::Invalid("compaction revision " + std::to_string(revision) +
                           " is newer than the current revision " + std::to_string(current));
  }
  std::future<Status> done;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (stopping_) return Status::Unavailable("store is closed");
    if (revision <= compacted_revision_.load()) return Status();
    compact_target_ = std::max(compact_target_, revision);
    compact_waiters_.push_back(CompactWaiter{revision, {}});
    done = compact_waiters_.back().done.get_future();
    queue_cv_.notify_one();
  }
  return done.get();
}

SqliteStoreStats SqliteStore::Impl::stats() const {
  SqliteStoreStats s;
  s.writes = stat_writes_.load();
  s.failed_writes = stat_failed_.load();
  s.transactions = stat_transactions_.load();
  s.largest_batch = stat_largest_batch_.load();
  s.compaction_transactions = stat_compactions_.load();
  return s;
}

void SqliteStore::Impl::pause_writer() {
  std::unique_lock<std::mutex> lock(queue_mu_);
  paused_ = true;
  queue_cv_.notify_all();
  idle_cv_.wait(lock, [this] { return writer_idle_; });
}

void SqliteStore::Impl::resume_writer() {
  std::lock_guard<std::mutex> lock(queue_mu_);
  paused_ = false;
  queue_cv_.notify_all();
}

// ---- readers ----

Result<std::unique_ptr<SqliteStore::Impl::Reader>> SqliteStore::Impl::open_reader() {
  auto db = open_connection(path_, opts_.vfs);
  if (!db.ok()) return db.status();
  auto r = std::make_unique<Reader>();
  r->db = std::move(db).value();
  // Reads of the database file through a memory map skip a system call per page, which halves
  // the time to list everything at start-up. (A disk error while reading then ends the process
  // instead of failing the read, as with etcd's bbolt.) A VFS without memory-map support, such
  // as the tests' FaultVfs, silently falls back to plain reads.
  if (Status s = exec(r->db.get(), "PRAGMA query_only=1; PRAGMA mmap_size=1073741824"); !s.ok()) {
    return s;
  }
  struct {
    Stmt* stmt;
    const char* sql;
  } const statements[] = {
      {&r->begin, "BEGIN"},
      {&r->commit, "COMMIT"},
      {&r->revision, kRevisionSql},
      {&r->get,
       "SELECT l.create_revision, l.revision, k.value FROM live AS l"
       " JOIN kv AS k ON k.revision = l.revision WHERE l.key = ?1"},
      // CROSS JOIN keeps live as the outer loop: one ordered pass over the key range.
      {&r->list_bounded,
       "SELECT l.key, l.create_revision, l.revision, k.value FROM live AS l"
       " CROSS JOIN kv AS k ON k.revision = l.revision"
       " WHERE l.key >= ?1 AND l.key < ?2 ORDER BY l.key LIMIT ?3"},
      {&r->list_unbounded,
       "SELECT l.key, l.create_revision, l.revision, k.value FROM live AS l"
       " CROSS JOIN kv AS k ON k.revision = l.revision"
       " WHERE l.key >= ?1 ORDER BY l.key LIMIT ?3"},
      {&r->history,
       "SELECT k.revision, k.key, k.create_revision, k.deleted, k.value, p.value"
       " FROM kv AS k LEFT JOIN kv AS p ON p.revision = k.prev_revision AND k.prev_revision > 0"
       " WHERE k.revision > ?1 AND k.revision <= ?2 AND k.key >= ?3"
       " AND (?4 IS NULL OR k.key < ?4) ORDER BY k.revision"},
  };
  for (const auto& s : statements) {
    auto prepared = Stmt::prepare(r->db.get(), s.sql);
    if (!prepared.ok()) return prepared.status();
    *s.stmt = std::move(prepared).value();
  }
  return r;
}

Result<SqliteStore::Impl::ReaderLease> SqliteStore::Impl::acquire_reader() {
  {
    std::lock_guard<std::mutex> lock(readers_mu_);
    if (!idle_readers_.empty()) {
      auto r = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return ReaderLease(this, std::move(r));
    }
  }
  auto r = open_reader();
  if (!r.ok()) return r.status();
  return ReaderLease(this, std::move(r).value());
}

void SqliteStore::Impl::release_reader(std::unique_ptr<Reader> r) {
  // A read that failed half-way may have left its snapshot open.
  if (!sq().get_autocommit(r->db.get())) exec(r->db.get(), "ROLLBACK");
  std::lock_guard<std::mutex> lock(readers_mu_);
  if (idle_readers_.size() < kMaxIdleReaders) idle_readers_.push_back(std::move(r));
}

Result<KeyValue> SqliteStore::Impl::get(std::string_view key) {
  auto lease = acquire_reader();
  if (!lease.ok()) return lease.status();
  Reader& r = **lease;
  ResetOnExit reset(r.get);
  r.get.bind_blob(1, key);
  int rc = r.get.step();
  if (rc == SQLITE_DONE) return Status::NotFound("key not found");
  if (rc != SQLITE_ROW) return sqlite_status(r.db.get(), rc, "get");
  KeyValue kv;
  kv.key = std::string(key);
  kv.create_revision = r.get.column_int(0);
  kv.mod_revision = r.get.column_int(1);
  kv.value = r.get.column_value(2);
  if (kv.value == nullptr) kv.value = std::make_shared<const std::string>();
  return kv;
}

Result<ListResult> SqliteStore::Impl::list(std::string_view prefix, std::string_view start_after,
                                           int64_t limit) {
  if (limit < 0) return Status::Invalid("negative limit");
  // Keys strictly after start_after are those at or after start_after + "\0".
  std::string lower(prefix);
  if (!start_after.empty()) {
    std::string after(start_after);
    after.push_back('\0');
    if (after > lower) lower = std::move(after);
  }
  std::optional<std::string> upper = prefix_end(prefix);

  auto lease = acquire_reader();
  if (!lease.ok()) return lease.status();
  Reader& r = **lease;
  if (Status s = r.begin.run("begin read"); !s.ok()) return s;

  ListResult out;
  {
    ResetOnExit reset(r.revision);
    int rc = r.revision.step();
    if (rc != SQLITE_ROW) return sqlite_status(r.db.get(), rc, "read revision");
    out.revision = r.revision.column_int(0);
  }
  Stmt& q = upper ? r.list_bounded : r.list_unbounded;
  ResetOnExit reset(q);
  q.bind_blob(1, lower);
  if (upper) q.bind_blob(2, *upper);
  // One row more than asked tells whether the list was cut short.
  q.bind(3, limit > 0 && limit < std::numeric_limits<int64_t>::max() ? limit + 1 : -1);
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    if (limit > 0 && static_cast<int64_t>(out.items.size()) == limit) {
      out.more = true;
      break;
    }
    KeyValue kv;
    kv.key = std::string(q.column_blob(0));
    kv.create_revision = q.column_int(1);
    kv.mod_revision = q.column_int(2);
    kv.value = q.column_value(3);
    if (kv.value == nullptr) kv.value = std::make_shared<const std::string>();
    out.items.push_back(std::move(kv));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sqlite_status(r.db.get(), rc, "list");
  q.reset();
  if (Status s = r.commit.run("end read"); !s.ok()) return s;
  return out;
}

Status SqliteStore::Impl::replay(const std::string& prefix, int64_t from, int64_t to,
                                 const EventSink& sink) {
  auto lease = acquire_reader();
  if (!lease.ok()) return lease.status();
  Reader& r = **lease;
  std::optional<std::string> upper = prefix_end(prefix);
  Stmt& q = r.history;
  ResetOnExit reset(q);
  q.bind(1, from);
  q.bind(2, to);
  q.bind_blob(3, prefix);
  if (upper) {
    q.bind_blob(4, *upper);
  } else {
    q.bind_null(4);
  }
  std::vector<Event> chunk;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    Event e;
    bool deleted = q.column_int(3) != 0;
    e.type = deleted ? EventType::kDelete : EventType::kPut;
    e.kv.mod_revision = q.column_int(0);
    e.kv.key = std::string(q.column_blob(1));
    e.kv.create_revision = q.column_int(2);
    if (!deleted) {
      e.kv.value = q.column_value(4);
      if (e.kv.value == nullptr) e.kv.value = std::make_shared<const std::string>();
    }
    e.prev_value = q.column_value(5);
    chunk.push_back(std::move(e));
    if (chunk.size() == kHistoryChunk) {
      sink(chunk);
      chunk.clear();
    }
  }
  if (rc != SQLITE_DONE) return sqlite_status(r.db.get(), rc, "read history");
  if (!chunk.empty()) sink(chunk);
  return Status();
}

Result<std::unique_ptr<WatchHandle>> SqliteStore::Impl::watch(std::string_view prefix_view,
                                                              int64_t after_revision,
                                                              EventSink sink) {
  if (after_revision < 0) return Status::Invalid("negative revision");
  if (!sink) return Status::Invalid("no event sink");
  std::string prefix(prefix_view);
  std::shared_lock<std::shared_mutex> history(history_mu_);
  int64_t compacted = compacted_revision_.load();
  if (after_revision < compacted) {
    return Status::Gone("revision " + std::to_string(after_revision) +
                        " has been compacted; the oldest available is " +
                        std::to_string(compacted));
  }
  // Most of the history is replayed without holding up the writer; only what committed
  // meanwhile is replayed under the registry lock, which the writer needs to publish, so the
  // watcher joins exactly where the replay ends.
  int64_t replayed = after_revision;
  int64_t published;
  {
    std::lock_guard<std::mutex> lock(watches_->mu);
    published = watches_->published_revision;
  }
  if (published > replayed) {
    if (Status s = replay(prefix, replayed, published, sink); !s.ok()) return s;
    replayed = published;
  }
  auto watcher = std::make_shared<Watcher>(prefix, after_revision, std::move(sink));
  std::vector<Event> tail;
  std::unique_lock<std::mutex> delivery(watcher->delivery_mu);
  {
    std::lock_guard<std::mutex> lock(watches_->mu);
    published = watches_->published_revision;
    if (published > replayed) {
      Status s = replay(prefix, replayed, published, [&tail](const std::vector<Event>& events) {
        tail.insert(tail.end(), events.begin(), events.end());
      });
      if (!s.ok()) return s;
    }
    watches_->watchers.emplace(watcher.get(), watcher);
  }
  // The watcher is registered, but the writer cannot deliver to it before the tail is out: it
  // needs delivery_mu, held since before registration. The registry lock is free again, so the
  // sink may destroy other watches meanwhile.
  if (!tail.empty()) watcher->sink(tail);
  delivery.unlock();
  return std::unique_ptr<WatchHandle>(
      std::make_unique<SqliteWatchHandle>(watches_, std::move(watcher)));
}

// ---- SqliteStore ----

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path,
                                                       const SqliteStoreOptions& opts) {
  if (opts.retained_revisions < 0) return Status::Invalid("negative retained_revisions");
  if (opts.compaction_interval.count() < 0) return Status::Invalid("negative compaction_interval");
  if (opts.max_batch_writes == 0) return Status::Invalid("max_batch_writes must be positive");
  if (opts.compaction_batch_revisions <= 0) {
    return Status::Invalid("compaction_batch_revisions must be positive");
  }
  if (Status s = load_sqlite(); !s.ok()) return s;
  auto impl = std::make_unique<Impl>(path, opts);
  if (Status s = impl->start(); !s.ok()) return s;
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteStore::~SqliteStore() = default;

Result<KeyValue> SqliteStore::get(std::string_view key) { return impl_->get(key); }
Result<ListResult> SqliteStore::list(std::string_view prefix, std::string_view start_after,
                                     int64_t limit) {
  return impl_->list(prefix, start_after, limit);
}
void SqliteStore::write(WriteOp op, WriteCallback cb) {
  impl_->write(std::move(op), std::move(cb));
}
Result<std::unique_ptr<WatchHandle>> SqliteStore::watch(std::string_view prefix,
                                                        int64_t after_revision, EventSink sink) {
  return impl_->watch(prefix, after_revision, std::move(sink));
}
int64_t SqliteStore::current_revision() { return impl_->current_revision(); }
int64_t SqliteStore::compacted_revision() { return impl_->compacted_revision(); }
Status SqliteStore::compact(int64_t revision) { return impl_->compact(revision); }
SqliteStoreStats SqliteStore::stats() const { return impl_->stats(); }
void SqliteStore::pause_writer() { impl_->pause_writer(); }
void SqliteStore::resume_writer() { impl_->resume_writer(); }

}  // namespace skiff::store
