#include "apiserver/watch_cache.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "apiserver/object_bytes.h"
#include "common/json.h"

namespace skiff::apiserver {

namespace {
// A watcher this far behind is cut off; its client re-watches from its last revision.
constexpr size_t kMaxWatcherBacklog = 100000;

const std::string* find_in(const Fields& f, std::string_view key) {
  for (const auto& [k, v] : f) {
    if (k == key) return &v;
  }
  return nullptr;
}

}  // namespace

std::string watch_frame(std::string_view type, std::string_view object_json) {
  std::string out;
  out.reserve(object_json.size() + 32);
  out += "{\"type\":\"";
  out += type;
  out += "\",\"object\":";
  out += object_json;
  out += "}\n";
  return out;
}

const std::string* CachedObject::label(std::string_view key) const { return find_in(labels, key); }
const std::string* CachedObject::field(std::string_view path) const {
  if (path == "metadata.name") return &name;
  if (path == "metadata.namespace") return &ns;
  return find_in(fields, path);
}

namespace {
std::shared_ptr<const nlohmann::json> parse_object(const std::string& bytes) {
  auto parsed = parse_json(bytes);
  // Only the API server writes the store, always valid JSON.
  if (!parsed.ok()) return std::make_shared<const nlohmann::json>(nlohmann::json::object());
  return std::make_shared<const nlohmann::json>(std::move(parsed).value());
}
}  // namespace

std::shared_ptr<const nlohmann::json> CachedObject::parsed() const {
  std::lock_guard<std::mutex> lock(parsed_mu_);
  if (!parsed_) parsed_ = parse_object(*json);
  return parsed_;
}

std::shared_ptr<const nlohmann::json> CachedObject::adopt_parsed(
    std::shared_ptr<const nlohmann::json> doc) const {
  std::lock_guard<std::mutex> lock(parsed_mu_);
  if (!parsed_) parsed_ = std::move(doc);
  return parsed_;
}

void CachedObject::release_parsed() const {
  std::shared_ptr<const nlohmann::json> drop;  // freed outside the lock
  std::lock_guard<std::mutex> lock(parsed_mu_);
  drop.swap(parsed_);
}

const char* event_type_name(EventType t) {
  switch (t) {
    case EventType::kAdded: return "ADDED";
    case EventType::kModified: return "MODIFIED";
    case EventType::kDeleted: return "DELETED";
  }
  return "ERROR";
}

const std::string& CacheEvent::frame(EventType as) const {
  int i = static_cast<int>(as);
  std::call_once(once_[i], [&] { frames_[i] = watch_frame(event_type_name(as), *object_->json); });
  return frames_[i];
}

const std::string& CacheEvent::prev_deleted_frame() const {
  std::call_once(once_[3], [&] {
    // The object left a filtered watcher's view: it sees the previous state, stamped with this
    // event's revision, as Kubernetes' watch cache does.
    nlohmann::json obj = nlohmann::json::parse(*prev_->json, nullptr, false);
    if (obj.is_object()) obj["metadata"]["resourceVersion"] = std::to_string(revision_);
    frames_[3] = watch_frame("DELETED", obj.dump());
  });
  return frames_[3];
}

std::shared_ptr<const nlohmann::json> CacheEvent::parsed(bool prev_deleted) const {
  if (!prev_deleted) return object_->parsed();
  std::call_once(prev_parsed_once_, [&] {
    auto parsed = parse_json(*prev_->json);
    nlohmann::json obj = parsed.ok() ? std::move(parsed).value() : nlohmann::json::object();
    if (obj.is_object()) obj["metadata"]["resourceVersion"] = std::to_string(revision_);
    prev_parsed_ = std::make_shared<const nlohmann::json>(std::move(obj));
  });
  return prev_parsed_;
}

std::vector<Delivery> Watcher::take() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Delivery> out;
  out.swap(queue_);
  return out;
}

bool Watcher::overflowed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return overflowed_;
}

void Watcher::push(Delivery d) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (overflowed_) return;
    if (queue_.size() >= kMaxWatcherBacklog) {
      overflowed_ = true;
      queue_.clear();
    } else {
      queue_.push_back(std::move(d));
    }
  }
  notify_();
}

void Watcher::offer(const EventPtr& e) {
  const ObjectPtr& obj = e->object();
  if (obj->key.compare(0, prefix_.size(), prefix_) != 0) return;
  if (!match_) {
    push({e, e->type()});
    return;
  }
  switch (e->type()) {
    case EventType::kAdded:
      if (match_(*obj)) push({e, EventType::kAdded});
      return;
    case EventType::kDeleted:
      if (match_(*obj)) push({e, EventType::kDeleted});
      return;
    case EventType::kModified: {
      bool now = match_(*obj);
      bool before = e->prev() && match_(*e->prev());
      if (now && before) {
        push({e, EventType::kModified});
      } else if (now) {
        push({e, EventType::kAdded});
      } else if (before) {
        push({e, EventType::kDeleted, true});
      }
      return;
    }
  }
}

WatchCache::WatchCache(store::Store& store, FieldIndexer indexer, size_t history_capacity)
    : store_(store), indexer_(std::move(indexer)), history_capacity_(history_capacity) {}

WatchCache::~WatchCache() { store_watch_.reset(); }

std::string WatchCache::resource_prefix(std::string_view key) {
  // "/registry/<group>/<resource>/..." → "/registry/<group>/<resource>/"
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    pos = key.find('/', pos + (i == 0 ? 0 : 1));
    if (pos == std::string_view::npos) return std::string(key);
  }
  return std::string(key.substr(0, pos + 1));
}

ObjectPtr WatchCache::make_object(const std::string& key, const std::string& value,
                                  int64_t mod_revision, int64_t create_revision) const {
  auto o = std::make_shared<CachedObject>();
  o->key = key;
  o->mod_revision = mod_revision;
  o->create_revision = create_revision;
  // The common case: bytes this server wrote, read and stamped without a DOM.
  if (ObjectBytesInfo info; read_canonical_object(value, &info)) {
    o->name = std::move(info.name);
    o->ns = std::move(info.ns);
    o->deleting = info.deleting;
    o->labels = std::move(info.labels);
    if (indexer_) {
      info.summary["metadata"]["resourceVersion"] = std::to_string(mod_revision);
      indexer_(key, info.summary, &o->fields);
    }
    o->json = std::make_shared<const std::string>(with_resource_version(value, info, mod_revision));
    return o;
  }
  nlohmann::json obj = nlohmann::json::parse(value, nullptr, false);
  if (!obj.is_object()) {
    // Only the API server writes the store, always valid JSON; keep the bytes as they are.
    o->json = std::make_shared<const std::string>(value);
    return o;
  }
  auto& meta = obj["metadata"];
  if (!meta.is_object()) meta = nlohmann::json::object();
  meta["resourceVersion"] = std::to_string(mod_revision);
  if (auto it = meta.find("name"); it != meta.end() && it->is_string()) o->name = *it;
  if (auto it = meta.find("namespace"); it != meta.end() && it->is_string()) o->ns = *it;
  if (auto it = meta.find("deletionTimestamp"); it != meta.end() && !it->is_null()) {
    o->deleting = true;
  }
  if (auto it = meta.find("labels"); it != meta.end() && it->is_object()) {
    for (auto& [k, v] : it->items()) {
      if (v.is_string()) o->labels.emplace_back(k, v.get<std::string>());
    }
  }
  if (indexer_) indexer_(key, obj, &o->fields);
  o->json = std::make_shared<const std::string>(obj.dump());
  return o;
}

EventPtr WatchCache::to_event(const store::Event& e, const ObjectPtr& prev) {
  if (e.type == store::EventType::kPut) {
    ObjectPtr obj = make_object(e.kv.key, *e.kv.value, e.kv.mod_revision, e.kv.create_revision);
    return std::make_shared<CacheEvent>(prev ? EventType::kModified : EventType::kAdded,
                                        std::move(obj), prev, e.kv.mod_revision);
  }
  // A delete: the watcher sees the last state, stamped with the delete's revision.
  ObjectPtr last;
  if (e.prev_value) {
    last = make_object(e.kv.key, *e.prev_value, e.kv.mod_revision,
                       prev ? prev->create_revision : e.kv.create_revision);
  } else if (prev) {
    last = make_object(prev->key, *prev->json, e.kv.mod_revision, prev->create_revision);
  } else {
    auto o = std::make_shared<CachedObject>();
    o->key = e.kv.key;
    o->mod_revision = e.kv.mod_revision;
    o->json = std::make_shared<const std::string>("{}");
    last = o;
  }
  return std::make_shared<CacheEvent>(EventType::kDeleted, std::move(last), prev,
                                      e.kv.mod_revision);
}

Status WatchCache::start() {
  auto listed = store_.list("/registry/");
  if (!listed.ok()) return listed.status();
  {
    std::unique_lock lock(mu_);
    for (const auto& kv : listed->items) {
      objects_[kv.key] = make_object(kv.key, *kv.value, kv.mod_revision, kv.create_revision);
    }
    revision_ = listed->revision;
    list_revision_ = listed->revision;
    history_floor_ = listed->revision;
  }
  // Replays the retained history (events up to the list's revision only fill the event
  // window), then follows live writes.
  int64_t from = store_.compacted_revision();
  if (from > listed->revision) from = listed->revision;
  {
    std::unique_lock lock(mu_);
    history_floor_ = from;
  }
  auto w = store_.watch("/registry/", from,
                        [this](const std::vector<store::Event>& evs) { on_events(evs); });
  if (!w.ok()) {
    // History was compacted between the two calls; follow from the list instead.
    std::unique_lock lock(mu_);
    history_floor_ = listed->revision;
    lock.unlock();
    w = store_.watch("/registry/", listed->revision,
                     [this](const std::vector<store::Event>& evs) { on_events(evs); });
    if (!w.ok()) return w.status();
  }
  store_watch_ = std::move(w.value());
  return Status::Ok();
}

void WatchCache::record(EventPtr ev) {
  history_.push_back(ev);
  while (history_.size() > history_capacity_) {
    history_floor_ = history_.front()->revision();
    history_.pop_front();
  }
}

void WatchCache::on_events(const std::vector<store::Event>& events) {
  // Replayed history: rebuilt outside the lock, keyed by the previous replayed state.
  std::unique_lock lock(mu_);
  std::map<std::string, ObjectPtr> replay_prev;
  for (const auto& e : events) {
    int64_t rev = e.kv.mod_revision;
    if (rev <= list_revision_) {
      // Already reflected in objects_: only fills the event window.
      ObjectPtr prev;
      if (auto it = replay_prev.find(e.kv.key); it != replay_prev.end()) prev = it->second;
      EventPtr ev = to_event(e, prev);
      replay_prev[e.kv.key] = ev->type() == EventType::kDeleted ? nullptr : ev->object();
      record(std::move(ev));
      continue;
    }
    if (rev <= revision_) continue;  // delivered already
    ObjectPtr prev;
    auto it = objects_.find(e.kv.key);
    if (it != objects_.end()) prev = it->second;
    EventPtr ev = to_event(e, prev);
    if (ev->type() == EventType::kDeleted) {
      if (it != objects_.end()) objects_.erase(it);
    } else if (it != objects_.end()) {
      it->second = ev->object();
    } else {
      objects_.emplace(e.kv.key, ev->object());
    }
    if (prev) prev->release_parsed();
    revision_ = rev;
    record(ev);
    for (const auto& [prefix, fn] : listeners_) {
      if (e.kv.key.compare(0, prefix.size(), prefix) == 0) fn(*ev);
    }
    auto wit = watchers_.find(resource_prefix(e.kv.key));
    if (wit != watchers_.end()) {
      for (auto& [id, w] : wit->second) w->offer(ev);
    }
  }
}

ObjectPtr WatchCache::get(std::string_view key) const {
  std::shared_lock lock(mu_);
  auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : it->second;
}

WatchCache::ListResult WatchCache::list(std::string_view prefix, const Matcher& match,
                                        size_t limit, std::string_view start_after) const {
  ListResult out;
  std::shared_lock lock(mu_);
  out.revision = revision_;
  auto it = start_after.empty() ? objects_.lower_bound(prefix) : objects_.upper_bound(start_after);
  for (; it != objects_.end(); ++it) {
    const std::string& k = it->first;
    if (k.compare(0, prefix.size(), prefix) != 0) {
      if (k > prefix) break;
      continue;
    }
    if (match && !match(*it->second)) continue;
    if (limit > 0 && out.items.size() >= limit) {
      out.more = true;
      break;
    }
    out.items.push_back(it->second);
  }
  return out;
}

size_t WatchCache::count(std::string_view prefix) const {
  std::shared_lock lock(mu_);
  size_t n = 0;
  for (auto it = objects_.lower_bound(prefix);
       it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    ++n;
  }
  return n;
}

Result<std::shared_ptr<Watcher>> WatchCache::watch(std::string prefix, Matcher match,
                                                   int64_t after_revision, bool send_initial,
                                                   std::function<void()> notify) {
  auto w = std::make_shared<Watcher>(prefix, std::move(match), std::move(notify));
  std::unique_lock lock(mu_);
  if (after_revision >= 0) {
    if (after_revision < history_floor_) {
      return Status::Gone("too old resource version: " + std::to_string(after_revision) + " (" +
                          std::to_string(history_floor_ + 1) + ")");
    }
    auto first = std::upper_bound(
        history_.begin(), history_.end(), after_revision,
        [](int64_t rev, const EventPtr& e) { return rev < e->revision(); });
    for (auto it = first; it != history_.end(); ++it) w->offer(*it);
  } else if (send_initial) {
    for (auto it = objects_.lower_bound(prefix);
         it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      auto ev = std::make_shared<CacheEvent>(EventType::kAdded, it->second, nullptr,
                                             it->second->mod_revision);
      w->offer(ev);
    }
  }
  w->id_ = next_watcher_id_++;
  watchers_[resource_prefix(prefix)][w->id_] = w;
  return w;
}

void WatchCache::unwatch(const std::shared_ptr<Watcher>& w) {
  std::unique_lock lock(mu_);
  auto it = watchers_.find(resource_prefix(w->prefix()));
  if (it != watchers_.end()) {
    it->second.erase(w->id_);
    if (it->second.empty()) watchers_.erase(it);
  }
}

void WatchCache::add_listener(std::string prefix, Listener fn) {
  listeners_.emplace_back(std::move(prefix), std::move(fn));
}

std::shared_ptr<const nlohmann::json> WatchCache::share_parsed(
    std::string_view key, int64_t revision, std::shared_ptr<const nlohmann::json> doc) {
  ObjectPtr o;
  {
    std::shared_lock lock(mu_);
    auto it = objects_.find(key);
    if (it == objects_.end() || it->second->mod_revision != revision) return doc;
    auto wit = watchers_.find(resource_prefix(key));
    if (wit == watchers_.end()) return doc;
    bool wanted = false;
    for (const auto& [id, w] : wit->second) {
      if (w->takes_objects_.load(std::memory_order_relaxed)) {
        wanted = true;
        break;
      }
    }
    if (!wanted) return doc;
    o = it->second;
  }
  return o->adopt_parsed(std::move(doc));
}

int64_t WatchCache::revision() const {
  std::shared_lock lock(mu_);
  return revision_;
}

int64_t WatchCache::oldest_revision() const {
  std::shared_lock lock(mu_);
  return history_floor_;
}

}  // namespace skiff::apiserver
