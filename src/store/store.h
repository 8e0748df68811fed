// Store: the revisioned key-value store under the API server.
//
// Keys are byte strings, by convention "/registry/<group>/<resource>/<ns>/<name>" (or without
// <ns> for cluster-scoped resources; the core group is spelled "core"). Every successful write
// gets the next value of one global, strictly increasing revision counter, starting at 1.
// Values are opaque bytes (the object's JSON).
//
// Writes are conditional, so that optimistic concurrency can be built on top:
//   create  fails with AlreadyExists if the key exists;
//   update  fails with Conflict if the key's mod_revision differs from the expected one
//           (NotFound if the key does not exist);
//   remove  the same as update; expected_mod_revision == 0 removes unconditionally.
// A write that returned OK is durable (fsynced) and has already been delivered to every
// watcher registered at the time it committed: a reader that observes the returned revision
// through a watch sees it in order.
//
// Thread-safety: every method may be called from any thread concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace skiff::store {

struct KeyValue {
  std::string key;
  std::shared_ptr<const std::string> value;  // never null for a live key
  int64_t create_revision = 0;                // revision of the write that created the key
  int64_t mod_revision = 0;                   // revision of the last write to the key
};

struct ListResult {
  std::vector<KeyValue> items;  // ordered by key
  int64_t revision = 0;         // the store's revision the list reflects
  bool more = false;            // true when limit cut the list short
};

enum class EventType { kPut, kDelete };

// One committed change. For kPut, kv.value is the new value and prev_value the old one (null
// when the put created the key). For kDelete, kv.mod_revision is the revision of the delete,
// kv.value is null and prev_value is the value that was deleted.
struct Event {
  EventType type = EventType::kPut;
  KeyValue kv;
  std::shared_ptr<const std::string> prev_value;
};

// A write, for Store::write().
struct WriteOp {
  enum class Kind { kCreate, kUpdate, kRemove };
  Kind kind = Kind::kCreate;
  std::string key;
  std::shared_ptr<const std::string> value;  // kCreate/kUpdate
  int64_t expected_mod_revision = 0;         // kUpdate/kRemove; 0 = unconditional remove
};

struct WriteResult {
  int64_t revision = 0;  // the revision of this write
  int64_t create_revision = 0;
  std::shared_ptr<const std::string> prev_value;  // kUpdate/kRemove: the value replaced
};

using WriteCallback = std::function<void(Result<WriteResult>)>;

// Receives events in revision order, one batch per group commit. Called on the store's
// writer thread; must not block and must not call back into Store::write synchronously.
using EventSink = std::function<void(const std::vector<Event>& events)>;

// A registered watcher; events stop when it is destroyed.
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
};

class Store {
 public:
  virtual ~Store() = default;

  // Returns the live key, or NotFound.
  virtual Result<KeyValue> get(std::string_view key) = 0;

  // Lists live keys starting with prefix, in key order, strictly after start_after when it is
  // not empty. limit == 0 means no limit.
  virtual Result<ListResult> list(std::string_view prefix, std::string_view start_after = {},
                                  int64_t limit = 0) = 0;

  // Submits one write; cb runs once it is durable (or failed), on the store's writer thread
  // (so it must be quick). Concurrent writes share one transaction and one fsync.
  virtual void write(WriteOp op, WriteCallback cb) = 0;

  // Synchronous form of write(): blocks until the write is durable or failed.
  Result<WriteResult> write_sync(WriteOp op);
  Result<WriteResult> create(std::string key, std::string value);
  Result<WriteResult> update(std::string key, std::string value, int64_t expected_mod_revision);
  Result<WriteResult> remove(std::string key, int64_t expected_mod_revision = 0);

  // Delivers, in order, every event with revision > after_revision for keys under prefix:
  // first the retained history, then live events as they commit. Returns Gone if
  // after_revision is older than the compacted revision.
  virtual Result<std::unique_ptr<WatchHandle>> watch(std::string_view prefix,
                                                     int64_t after_revision, EventSink sink) = 0;

  // The revision of the last committed write (0 for an empty store).
  virtual int64_t current_revision() = 0;
  // History at or below this revision has been discarded; watches must start at or after it.
  virtual int64_t compacted_revision() = 0;
  // Discards history older than revision (the latest value of each live key is kept).
  virtual Status compact(int64_t revision) = 0;
};

}  // namespace skiff::store
