// WatchCache: every object in memory, serialized once, plus a window of recent events.
//
// Lists, gets and watches are served from here, never from the store. The cache is fed by one
// store watch; because the store delivers a batch to its watchers before it acknowledges the
// writes, anything a client was told is written is already visible here (reads after writes
// are consistent without asking the store).
//
// Each object is kept as its JSON bytes with metadata.resourceVersion set to the store's
// mod_revision, so that responses concatenate bytes instead of re-encoding. Each event's watch
// frame ({"type":..,"object":..}\n) is built once and shared by every watcher. Watchers inside
// the process (the in-process transport) take the object parsed instead, also built once and
// shared; an object keeps its parsed form while it is the key's current state.
//
// Thread-safety: all public methods are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace skiff::apiserver {

using Fields = std::vector<std::pair<std::string, std::string>>;

struct CachedObject {
  std::string key;
  std::shared_ptr<const std::string> json;  // with metadata.resourceVersion
  int64_t mod_revision = 0;
  int64_t create_revision = 0;
  std::string ns;
  std::string name;
  bool deleting = false;  // metadata.deletionTimestamp is set
  Fields labels;  // sorted by key
  Fields fields;  // selectable fields (e.g. spec.nodeName), as the indexer extracted them

  const std::string* label(std::string_view key) const;
  const std::string* field(std::string_view path) const;

  // The object parsed from json, built on first use and shared: in-process clients take it
  // instead of bytes they would parse again. Never changed once built.
  std::shared_ptr<const nlohmann::json> parsed() const;
  // Drops the parsed object (the cache calls it when the key gets a newer state, so that only
  // current states keep theirs); a later parsed() builds it again.
  void release_parsed() const;
  // Keeps doc as the parsed object unless one was built already; returns the one kept.
  // REQUIRES: *doc is what parsing json gives.
  std::shared_ptr<const nlohmann::json> adopt_parsed(
      std::shared_ptr<const nlohmann::json> doc) const;

 private:
  mutable std::mutex parsed_mu_;
  mutable std::shared_ptr<const nlohmann::json> parsed_;  // guarded by parsed_mu_
};
using ObjectPtr = std::shared_ptr<const CachedObject>;
using Matcher = std::function<bool(const CachedObject&)>;

enum class EventType { kAdded, kModified, kDeleted };
const char* event_type_name(EventType t);

// One line of a JSON watch stream: {"type":"<type>","object":<object_json>}\n
std::string watch_frame(std::string_view type, std::string_view object_json);

// One change as an unfiltered watcher sees it.
class CacheEvent {
 public:
  CacheEvent(EventType type, ObjectPtr object, ObjectPtr prev, int64_t revision)
      : type_(type), object_(std::move(object)), prev_(std::move(prev)), revision_(revision) {}
  EventType type() const { return type_; }
  // The new state; for kDeleted the deleted object with the delete's resourceVersion.
  const ObjectPtr& object() const { return object_; }
  // The previous state; null for kAdded.
  const ObjectPtr& prev() const { return prev_; }
  int64_t revision() const { return revision_; }
  // The JSON watch frame for `as` (built once). For an event a filtered watcher sees as
  // kDeleted because the object stopped matching, use prev_frame().
  const std::string& frame(EventType as) const;
  // {"type":"DELETED","object":<prev with this event's resourceVersion>}\n
  const std::string& prev_deleted_frame() const;
  // The object of frame() (or, with prev_deleted, of prev_deleted_frame()) parsed, shared.
  std::shared_ptr<const nlohmann::json> parsed(bool prev_deleted) const;

 private:
  EventType type_;
  ObjectPtr object_;
  ObjectPtr prev_;
  int64_t revision_;
  mutable std::once_flag once_[4];
  mutable std::string frames_[4];
  mutable std::once_flag prev_parsed_once_;
  mutable std::shared_ptr<const nlohmann::json> prev_parsed_;  // built once
};
using EventPtr = std::shared_ptr<const CacheEvent>;

// What one watcher receives: the event and how it sees it.
struct Delivery {
  EventPtr event;
  EventType as;
  bool prev_deleted = false;  // use event->prev_deleted_frame()
  const std::string& frame() const {
    return prev_deleted ? event->prev_deleted_frame() : event->frame(as);
  }
  // The object the watcher sees (prev for prev_deleted).
  const ObjectPtr& object() const { return prev_deleted ? event->prev() : event->object(); }
  // What frame() carries as "object", parsed and shared.
  std::shared_ptr<const nlohmann::json> parsed() const { return event->parsed(prev_deleted); }
};

// A registered watch. The cache pushes deliveries and calls notify (which must not block);
// the consumer drains with take(). If the consumer falls too far behind, the watcher is
// closed (overflowed() turns true) and the client must re-watch, as Kubernetes does.
class Watcher {
 public:
  Watcher(std::string prefix, Matcher match, std::function<void()> notify)
      : prefix_(std::move(prefix)), match_(std::move(match)), notify_(std::move(notify)) {}
  std::vector<Delivery> take();
  bool overflowed() const;
  const std::string& prefix() const { return prefix_; }
  // Marks a watcher whose client takes parsed objects (CacheEvent::parsed) rather than frames.
  void set_takes_objects() { takes_objects_.store(true, std::memory_order_relaxed); }

 private:
  friend class WatchCache;
  void push(Delivery d);  // REQUIRES: called by WatchCache only
  void offer(const EventPtr& e);

  const std::string prefix_;
  const Matcher match_;
  const std::function<void()> notify_;
  mutable std::mutex mu_;
  std::vector<Delivery> queue_;  // guarded by mu_
  bool overflowed_ = false;      // guarded by mu_
  uint64_t id_ = 0;              // constant after registration
  std::atomic<bool> takes_objects_{false};
};

class WatchCache {
 public:
  // Extracts the selectable fields of an object stored under key. `obj` may be a summary of
  // the object holding only its top-level scalars and the scalar members of its top-level
  // objects (see ObjectBytesInfo): an indexer reads fields at most two levels deep.
  using FieldIndexer = std::function<void(std::string_view key, const nlohmann::json& obj,
                                          Fields* fields)>;

  WatchCache(store::Store& store, FieldIndexer indexer, size_t history_capacity = 10000);
  ~WatchCache();

  // Loads every object and the store's retained history, then follows the store.
  Status start();

  ObjectPtr get(std::string_view key) const;

  struct ListResult {
    std::vector<ObjectPtr> items;
    int64_t revision = 0;  // the cache's revision when listed
    bool more = false;     // limit cut the list short; continue after items.back()->key
  };
  // Objects under prefix (in key order) after start_after, passing match (if set), at most
  // limit (0 = all).
  ListResult list(std::string_view prefix, const Matcher& match, size_t limit,
                  std::string_view start_after = {}) const;
  // Counts objects under prefix (no filtering).
  size_t count(std::string_view prefix) const;

  // Registers a watcher for keys under prefix. after_revision < 0: start now, and with
  // send_initial first deliver an ADDED for every current matching object. Otherwise deliver
  // every event after after_revision (Gone if it is older than the retained window).
  Result<std::shared_ptr<Watcher>> watch(std::string prefix, Matcher match,
                                         int64_t after_revision, bool send_initial,
                                         std::function<void()> notify);
  void unwatch(const std::shared_ptr<Watcher>& w);

  // For a client that wrote key at revision and holds what it wrote as a document (equal to
  // the stored bytes parsed, with metadata.resourceVersion): when a watcher of that resource
  // takes parsed objects, the cache keeps doc as the object's parsed form, so that watchers
  // share it instead of parsing the bytes. Returns the document to hand out: doc, or the
  // parsed form a watcher built first.
  std::shared_ptr<const nlohmann::json> share_parsed(std::string_view key, int64_t revision,
                                                     std::shared_ptr<const nlohmann::json> doc);

  int64_t revision() const;
  // Oldest revision a watch may start after.
  int64_t oldest_revision() const;

  // Calls fn for every change under prefix, on the store's writer thread, before the write is
  // acknowledged to its client: what fn does is visible to anyone who saw the write succeed.
  // fn must be quick and must not call back into the cache. Register before start().
  using Listener = std::function<void(const CacheEvent& event)>;
  void add_listener(std::string prefix, Listener fn);

 private:
  void on_events(const std::vector<store::Event>& events);
  EventPtr to_event(const store::Event& e, const ObjectPtr& prev);
  ObjectPtr make_object(const std::string& key, const std::string& value, int64_t mod_revision,
                        int64_t create_revision) const;
  void record(EventPtr ev);  // REQUIRES: mu_ held exclusively
  static std::string resource_prefix(std::string_view key);

  store::Store& store_;
  const FieldIndexer indexer_;
  const size_t history_capacity_;

  mutable std::shared_mutex mu_;
  std::map<std::string, ObjectPtr, std::less<>> objects_;  // guarded by mu_
  std::deque<EventPtr> history_;                           // guarded by mu_
  int64_t history_floor_ = 0;  // guarded by mu_: watches may start after this revision
  int64_t revision_ = 0;       // guarded by mu_
  int64_t list_revision_ = 0;  // guarded by mu_: events up to here were in the initial list
  // Watchers grouped by "/registry/<group>/<resource>/" prefix; guarded by mu_.
  std::unordered_map<std::string, std::map<uint64_t, std::shared_ptr<Watcher>>> watchers_;
  uint64_t next_watcher_id_ = 1;  // guarded by mu_
  std::vector<std::pair<std::string, Listener>> listeners_;  // constant after start()
  std::unique_ptr<store::WatchHandle> store_watch_;
};

}  // namespace skiff::apiserver
