#include "client/informer.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/log.h"
#include "common/random.h"

namespace skiff::client {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int64_t kPageSize = 500;
constexpr std::chrono::milliseconds kInitialBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{30'000};
// A watch the server ends sooner than this without sending anything is treated as a failure
// (with back-off), so that a server that keeps closing watches is not hammered.
constexpr std::chrono::milliseconds kShortestHealthyWatch{100};

const std::string& meta_string(const json& obj, const char* field) {
  static const std::string kEmpty;
  if (!obj.is_object()) return kEmpty;
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return kEmpty;
  auto f = m->find(field);
  if (f == m->end() || !f->is_string()) return kEmpty;
  return f->get_ref<const std::string&>();
}

const std::string& resource_version_of(const json& obj) {
  return meta_string(obj, "resourceVersion");
}

std::optional<uint64_t> parse_revision(const std::string& rv) {
  if (rv.empty() || rv.size() > 19 || rv.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::strtoull(rv.c_str(), nullptr, 10);
}

// Whether an event carrying `incoming` may replace the cached state at `cached`. skiff's
// resourceVersions are store revisions, so an event no newer than the cache (replayed after
// a paged list) is skipped; versions that are not numbers are taken as they come.
bool newer_than(const std::string& incoming, const std::string& cached) {
  auto a = parse_revision(incoming);
  auto b = parse_revision(cached);
  if (!a || !b) return incoming != cached;
  return *a > *b;
}

std::string key_of(const std::string& ns, const std::string& name) {
  return ns.empty() ? name : ns + "/" + name;
}

struct Notification {
  enum Kind { kAdd, kUpdate, kDelete } kind;
  ObjectPtr old_obj;  // kUpdate
  ObjectPtr obj;
};

}  // namespace

struct Informer::Impl {
  Impl(Client& c, ResourceRef r, ListOptions s)
      : client(c), ref(std::move(r)), selectors(std::move(s)) {}

  // A unit of work for the informer's thread.
  struct Item {
    enum Kind { kEvent, kClosed, kHandlers } kind = kEvent;
    uint64_t watch = 0;  // which watch sent it (kEvent, kClosed)
    WatchEvent event;
    Status status;
    std::shared_ptr<const InformerHandlers> handlers;
  };
  enum class Wait { kItem, kTimeout, kStopping };
  enum class WatchEnd { kRewatch, kRelist, kFailed, kStopping };

  struct Entry {
    ObjectPtr obj;
    std::vector<std::vector<std::string>> index_values;  // parallel to index_names
  };

  // Constant after construction.
  Client& client;
  const ResourceRef ref;
  const ListOptions selectors;
  TransformFn transform;  // set before start(), then constant

  ObjectPtr transformed(ObjectPtr obj) const {
    return transform && obj ? transform(std::move(obj)) : obj;
  }

  mutable std::mutex mu;
  std::condition_variable cv;               // the queue or `stopping` changed
  mutable std::condition_variable sync_cv;  // `synced` or `stopping` changed
  // Guarded by mu.
  std::unordered_map<std::string, Entry> cache;
  std::unordered_map<std::string, std::unordered_set<std::string>> by_namespace;
  std::vector<std::string> index_names;
  std::vector<IndexFn> index_fns;
  std::vector<std::unordered_map<std::string, std::unordered_set<std::string>>> indexes;
  std::string resource_version;
  std::vector<std::shared_ptr<const InformerHandlers>> handlers;
  std::deque<Item> queue;
  uint64_t watch_generation = 0;
  bool started = false;
  bool stopping = false;
  bool synced = false;
  std::thread::id thread_id;  // the informer's thread, once started

  std::mutex join_mu;  // serializes joining the thread
  std::thread thread;  // guarded by join_mu once started

  // --- Cache (REQUIRES: mu is held) ---

  void index_insert(const std::string& key, const std::string& ns, Entry& e) {
    by_namespace[ns].insert(key);
    e.index_values.resize(index_fns.size());
    for (size_t i = 0; i < index_fns.size(); ++i) {
      e.index_values[i] = index_fns[i](*e.obj);
      for (const auto& v : e.index_values[i]) indexes[i][v].insert(key);
    }
  }

  void index_erase(const std::string& key, const Entry& e) {
    const std::string& ns = meta_string(*e.obj, "namespace");
    if (auto it = by_namespace.find(ns); it != by_namespace.end()) {
      it->second.erase(key);
      if (it->second.empty()) by_namespace.erase(it);
    }
    for (size_t i = 0; i < e.index_values.size() && i < indexes.size(); ++i) {
      for (const auto& v : e.index_values[i]) {
        auto it = indexes[i].find(v);
        if (it == indexes[i].end()) continue;
        it->second.erase(key);
        if (it->second.empty()) indexes[i].erase(it);
      }
    }
  }

  void cache_put(const std::string& key, ObjectPtr obj) {
    auto it = cache.find(key);
    if (it != cache.end()) {
      index_erase(key, it->second);
    } else {
      it = cache.emplace(key, Entry{}).first;
    }
    it->second.obj = std::move(obj);
    index_insert(key, meta_string(*it->second.obj, "namespace"), it->second);
  }

  void cache_erase(std::unordered_map<std::string, Entry>::iterator it) {
    index_erase(it->first, it->second);
    cache.erase(it);
  }

  // --- Queue ---

  void push(Item item) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return;
      queue.push_back(std::move(item));
    }
    cv.notify_one();
  }

  // Waits for the next item of watch `watch` (0: none; only handler registrations are taken)
  // until `deadline`. Handler registrations are carried out on the way; items of other
  // (abandoned) watches are dropped.
  Wait next_item(uint64_t watch, std::optional<Clock::time_point> deadline, Item* out) {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      if (stopping) return Wait::kStopping;
      if (!queue.empty()) {
        Item item = std::move(queue.front());
        queue.pop_front();
        if (item.kind == Item::kHandlers) {
          lock.unlock();
          register_handlers(std::move(item.handlers));
          lock.lock();
          continue;
        }
        if (item.watch != watch || watch == 0) continue;
        *out = std::move(item);
        return Wait::kItem;
      }
      if (!deadline) {
        cv.wait(lock);
      } else if (cv.wait_until(lock, *deadline) == std::cv_status::timeout && queue.empty()) {
        return stopping ? Wait::kStopping : Wait::kTimeout;
      }
    }
  }

  // Sleeps for d (handling handler registrations meanwhile); false if stopping.
  bool pause(std::chrono::milliseconds d) {
    Item unused;
    return next_item(0, Clock::now() + d, &unused) != Wait::kStopping;
  }

  bool is_stopping() {
    std::lock_guard<std::mutex> lock(mu);
    return stopping;
  }

  // --- Handlers (informer thread only) ---

  std::vector<std::shared_ptr<const InformerHandlers>> current_handlers() {
    std::lock_guard<std::mutex> lock(mu);
    return handlers;
  }

  void call(const char* what, const std::function<void()>& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      SKIFF_LOG(Error) << "informer " << ref.resource << ": " << what
                       << " handler threw: " << e.what();
    } catch (...) {
      SKIFF_LOG(Error) << "informer " << ref.resource << ": " << what << " handler threw";
    }
  }

  void notify(const InformerHandlers& h, const Notification& n) {
    switch (n.kind) {
      case Notification::kAdd:
        if (h.on_add) call("add", [&] { h.on_add(n.obj); });
        break;
      case Notification::kUpdate:
        if (h.on_update) call("update", [&] { h.on_update(n.old_obj, n.obj); });
        break;
      case Notification::kDelete:
        if (h.on_delete) call("delete", [&] { h.on_delete(n.obj); });
        break;
    }
  }

  void deliver(const std::vector<Notification>& notes) {
    if (notes.empty()) return;
    auto hs = current_handlers();
    for (const auto& n : notes) {
      for (const auto& h : hs) {
        // A handler may have stopped the informer; nothing more runs after that.
        if (is_stopping()) return;
        notify(*h, n);
      }
    }
  }

  // A handler added while running sees every cached object as an add, then joins the rest.
  void register_handlers(std::shared_ptr<const InformerHandlers> h) {
    std::vector<ObjectPtr> objs;
    {
      std::lock_guard<std::mutex> lock(mu);
      objs.reserve(cache.size());
      for (const auto& [key, e] : cache) objs.push_back(e.obj);
    }
    if (h->on_add) {
      for (const auto& o : objs) call("add", [&] { h->on_add(o); });
    }
    std::lock_guard<std::mutex> lock(mu);
    handlers.push_back(std::move(h));
  }

  // --- List and watch (informer thread only) ---

  // Lists the collection page by page and reconciles the cache with it.
  Status relist() {
    std::unordered_map<std::string, ObjectPtr> fresh;
    std::string list_rv;
    ListOptions o;
    o.label_selector = selectors.label_selector;
    o.field_selector = selectors.field_selector;
    o.limit = selectors.limit > 0 ? selectors.limit : kPageSize;
    for (;;) {
      auto page = client.list(ref, o);
      if (!page.ok()) {
        if (page.status().code() == StatusCode::kGone && !o.continue_token.empty()) {
          // The continue token expired between pages: start over in one piece.
          fresh.clear();
          list_rv.clear();
          o.continue_token.clear();
          o.limit = 0;
          continue;
        }
        return page.status();
      }
      // Later pages may be newer than the first; watching from the first page's version
      // replays what changed meanwhile, and events older than the cache are skipped.
      if (list_rv.empty()) list_rv = page->resource_version;
      for (auto& item : page->items) {
        std::string key = object_key(*item);
        fresh[std::move(key)] = transformed(std::move(item));
      }
      if (page->continue_token.empty()) break;
      if (is_stopping()) return Status::Ok();
      o.continue_token = page->continue_token;
    }

    std::vector<Notification> notes;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto it = cache.begin(); it != cache.end();) {
        if (fresh.count(it->first) == 0) {
          notes.push_back({Notification::kDelete, nullptr, it->second.obj});
          auto gone = it++;
          cache_erase(gone);
        } else {
          ++it;
        }
      }
      for (auto& [key, obj] : fresh) {
        auto it = cache.find(key);
        if (it == cache.end()) {
          notes.push_back({Notification::kAdd, nullptr, obj});
          cache_put(key, obj);
        } else if (resource_version_of(*it->second.obj) != resource_version_of(*obj)) {
          notes.push_back({Notification::kUpdate, it->second.obj, obj});
          cache_put(key, obj);
        }
      }
      resource_version = list_rv;
    }
    deliver(notes);
    {
      std::lock_guard<std::mutex> lock(mu);
      synced = true;
    }
    sync_cv.notify_all();
    return Status::Ok();
  }

  void apply(const WatchEvent& event) {
    if (!event.object) return;
    WatchEvent ev{event.type, transformed(event.object)};
    const std::string key = object_key(*ev.object);
    const std::string& rv = resource_version_of(*ev.object);
    std::optional<Notification> note;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!rv.empty()) resource_version = rv;
      auto it = cache.find(key);
      if (ev.type == WatchEventType::kDeleted) {
        if (it == cache.end()) return;
        if (!newer_than(rv, resource_version_of(*it->second.obj)) &&
            rv != resource_version_of(*it->second.obj)) {
          return;  // a replayed delete of an earlier incarnation
        }
        note = Notification{Notification::kDelete, nullptr, ev.object};
        cache_erase(it);
      } else if (it == cache.end()) {
        note = Notification{Notification::kAdd, nullptr, ev.object};
        cache_put(key, ev.object);
      } else {
        if (!newer_than(rv, resource_version_of(*it->second.obj))) return;
        note = Notification{Notification::kUpdate, it->second.obj, ev.object};
        cache_put(key, ev.object);
      }
    }
    deliver({*note});
  }

  WatchEnd watch_once() {
    ListOptions o;
    o.label_selector = selectors.label_selector;
    o.field_selector = selectors.field_selector;
    o.allow_bookmarks = true;
    // As client-go: a random 5-10 minutes, so that a server's watches do not all end at once.
    o.timeout_seconds =
        selectors.timeout_seconds > 0 ? selectors.timeout_seconds : 300 + random_below(300);
    uint64_t generation;
    {
      std::lock_guard<std::mutex> lock(mu);
      o.resource_version = resource_version;
      generation = ++watch_generation;
    }
    auto w = client.watch(
        ref, o,
        [this, generation](const WatchEvent& e) {
          Item item;
          item.kind = Item::kEvent;
          item.watch = generation;
          item.event = e;
          push(std::move(item));
        },
        [this, generation](const Status& s) {
          Item item;
          item.kind = Item::kClosed;
          item.watch = generation;
          item.status = s;
          push(std::move(item));
        });
    if (!w.ok()) {
      SKIFF_LOG(Warn) << "informer " << ref.resource
                      << ": watch failed: " << w.status().to_string();
      return WatchEnd::kFailed;
    }
    std::unique_ptr<Watch> watch = std::move(w).value();
    auto began = Clock::now();
    bool got_events = false;
    for (;;) {
      Item item;
      if (next_item(generation, std::nullopt, &item) != Wait::kItem) return WatchEnd::kStopping;
      if (item.kind == Item::kClosed) {
        if (item.status.ok()) {
          if (got_events || Clock::now() - began >= kShortestHealthyWatch) {
            return WatchEnd::kRewatch;
          }
          return WatchEnd::kFailed;
        }
        if (item.status.code() == StatusCode::kGone) return WatchEnd::kRelist;
        SKIFF_LOG(Warn) << "informer " << ref.resource
                        << ": watch ended: " << item.status.to_string();
        return WatchEnd::kFailed;
      }
      const WatchEvent& ev = item.event;
      switch (ev.type) {
        case WatchEventType::kAdded:
        case WatchEventType::kModified:
        case WatchEventType::kDeleted:
          got_events = true;
          apply(ev);
          break;
        case WatchEventType::kBookmark:
          got_events = true;
          if (ev.object) {
            const std::string& rv = resource_version_of(*ev.object);
            std::lock_guard<std::mutex> lock(mu);
            if (!rv.empty()) resource_version = rv;
          }
          break;
        case WatchEventType::kError: {
          Status s = ev.object ? status_from_object(*ev.object) : Status::Internal("watch error");
          watch->stop();
          if (s.code() == StatusCode::kGone) return WatchEnd::kRelist;
          SKIFF_LOG(Warn) << "informer " << ref.resource << ": watch error: " << s.to_string();
          return WatchEnd::kFailed;
        }
      }
    }
  }

  void run() {
    std::chrono::milliseconds backoff{0};
    auto back_off = [&] {
      backoff = backoff.count() == 0 ? kInitialBackoff : std::min(backoff * 2, kMaxBackoff);
      auto jitter = std::chrono::milliseconds(random_below(backoff.count() / 10 + 1));
      return pause(backoff + jitter);
    };
    bool need_list = true;
    while (!is_stopping()) {
      if (need_list) {
        Status s = relist();
        if (!s.ok()) {
          SKIFF_LOG(Warn) << "informer " << ref.resource << ": list failed: " << s.to_string();
          if (!back_off()) return;
          continue;
        }
        need_list = false;
      }
      switch (watch_once()) {
        case WatchEnd::kStopping:
          return;
        case WatchEnd::kRewatch:
          backoff = std::chrono::milliseconds(0);
          break;
        case WatchEnd::kRelist:
          // The revision was compacted away: start again from a fresh list.
          need_list = true;
          break;
        case WatchEnd::kFailed:
          if (!back_off()) return;
          break;
      }
    }
  }
};

Informer::Informer(Client& client, ResourceRef ref, ListOptions selectors)
    : ref_(ref), impl_(std::make_unique<Impl>(client, std::move(ref), std::move(selectors))) {}

Informer::~Informer() {
  bool from_handler;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    from_handler = impl_->thread_id == std::this_thread::get_id();
  }
  if (from_handler) {
    // Destroying an informer from its own handler would free the state its thread runs on.
    SKIFF_LOG(Error) << "informer " << ref_.resource << " destroyed from its own handler";
    std::abort();
  }
  stop();
}

void Informer::add_handlers(InformerHandlers handlers) {
  auto h = std::make_shared<const InformerHandlers>(std::move(handlers));
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->started || impl_->stopping) {
      impl_->handlers.push_back(std::move(h));
      return;
    }
    Impl::Item item;
    item.kind = Impl::Item::kHandlers;
    item.handlers = std::move(h);
    impl_->queue.push_back(std::move(item));
  }
  impl_->cv.notify_one();
}

void Informer::add_index(const std::string& name, IndexFn fn) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& m = *impl_;
  if (std::find(m.index_names.begin(), m.index_names.end(), name) != m.index_names.end()) {
    return;  // shared informers: the first definition of a name stands
  }
  m.index_names.push_back(name);
  m.index_fns.push_back(std::move(fn));
  m.indexes.emplace_back();
  size_t i = m.index_fns.size() - 1;
  for (auto& [key, e] : m.cache) {
    e.index_values.resize(m.index_fns.size());
    e.index_values[i] = m.index_fns[i](*e.obj);
    for (const auto& v : e.index_values[i]) m.indexes[i][v].insert(key);
  }
}

void Informer::set_transform(TransformFn fn) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->transform = std::move(fn);
}

ObjectPtr strip_managed_fields(ObjectPtr obj) {
  if (!obj || !obj->is_object()) return obj;
  auto m = obj->find("metadata");
  if (m == obj->end() || !m->is_object() || !m->contains("managedFields")) return obj;
  auto out = std::make_shared<nlohmann::json>(*obj);
  (*out)["metadata"].erase("managedFields");
  return out;
}

void Informer::start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->started) return;
  impl_->started = true;
  std::lock_guard<std::mutex> join(impl_->join_mu);
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
  impl_->thread_id = impl_->thread.get_id();
}

void Informer::stop() {
  bool from_handler;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    impl_->queue.clear();
    from_handler = impl_->thread_id == std::this_thread::get_id();
  }
  impl_->cv.notify_all();
  impl_->sync_cv.notify_all();
  // From a handler, the thread ends once the handler returns; a later stop() or the
  // destructor joins it.
  if (from_handler) return;
  std::lock_guard<std::mutex> join(impl_->join_mu);
  if (impl_->thread.joinable()) impl_->thread.join();
}

bool Informer::synced() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->synced;
}

bool Informer::wait_for_sync(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->sync_cv.wait_for(lock, timeout, [&] { return impl_->synced || impl_->stopping; });
  return impl_->synced;
}

ObjectPtr Informer::get(const std::string& ns, const std::string& name) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->cache.find(key_of(ns, name));
  return it == impl_->cache.end() ? nullptr : it->second.obj;
}

std::vector<ObjectPtr> Informer::list(const std::string& ns) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<ObjectPtr> out;
  if (ns.empty()) {
    out.reserve(impl_->cache.size());
    for (const auto& [key, e] : impl_->cache) out.push_back(e.obj);
    return out;
  }
  auto it = impl_->by_namespace.find(ns);
  if (it == impl_->by_namespace.end()) return out;
  out.reserve(it->second.size());
  for (const auto& key : it->second) out.push_back(impl_->cache.at(key).obj);
  return out;
}

std::vector<ObjectPtr> Informer::by_index(const std::string& index,
                                          const std::string& value) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<ObjectPtr> out;
  const Impl& m = *impl_;
  auto name = std::find(m.index_names.begin(), m.index_names.end(), index);
  if (name == m.index_names.end()) return out;
  const auto& idx = m.indexes[name - m.index_names.begin()];
  auto it = idx.find(value);
  if (it == idx.end()) return out;
  out.reserve(it->second.size());
  for (const auto& key : it->second) out.push_back(m.cache.at(key).obj);
  return out;
}

std::string Informer::resource_version() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->resource_version;
}

InformerFactory::InformerFactory(Client& client) : client_(client) {}

InformerFactory::~InformerFactory() { stop(); }

Informer& InformerFactory::informer(const ResourceRef& r) {
  std::string key = r.group + "/" + r.version + "/" + r.resource + "/" + r.ns;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = informers_.find(key);
  if (it != informers_.end()) return *it->second;
  auto inf = std::make_unique<Informer>(client_, r);
  if (started_) inf->start();
  Informer& ref = *inf;
  informers_.emplace(std::move(key), std::move(inf));
  return ref;
}

void InformerFactory::start() {
  std::lock_guard<std::mutex> lock(mu_);
  started_ = true;
  for (auto& [key, inf] : informers_) inf->start();
}

bool InformerFactory::wait_for_sync(std::chrono::milliseconds timeout) {
  std::vector<Informer*> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, inf] : informers_) all.push_back(inf.get());
  }
  auto deadline = Clock::now() + timeout;
  for (Informer* inf : all) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!inf->wait_for_sync(std::max(left, std::chrono::milliseconds(0)))) return false;
  }
  return true;
}

void InformerFactory::stop() {
  std::vector<Informer*> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, inf] : informers_) all.push_back(inf.get());
  }
  for (Informer* inf : all) inf->stop();
}

std::string object_key(const nlohmann::json& obj) {
  return key_of(meta_string(obj, "namespace"), meta_string(obj, "name"));
}

void split_key(const std::string& key, std::string* ns, std::string* name) {
  size_t slash = key.find('/');
  if (slash == std::string::npos) {
    ns->clear();
    *name = key;
  } else {
    *ns = key.substr(0, slash);
    *name = key.substr(slash + 1);
  }
}

}  // namespace skiff::client
