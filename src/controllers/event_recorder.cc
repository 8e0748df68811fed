#include <cinttypes>
#include <cstdio>
#include <deque>
#include <list>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <utility>

#include "common/json.h"
#include "common/log.h"
#include "controllers/framework.h"

namespace skiff::controllers {

namespace {

using nlohmann::json;

// As client-go's eventLogger cache.
constexpr size_t kMaxTrackedEvents = 4096;
// Attempts per write for errors that may pass (the server is busy or restarting).
constexpr int kWriteAttempts = 3;
constexpr std::chrono::milliseconds kRetryDelay{100};
// Event names are DNS subdomains: at most 253 characters, of which "." and 16 hex digits
// are the suffix.
constexpr size_t kMaxNamePrefix = 253 - 17;

std::string string_at(const json& obj, const char* field) {
  auto it = obj.find(field);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The ObjectReference of an object, or of an ObjectReference, without empty fields.
json object_reference(const json& obj) {
  json ref = json::object();
  if (!obj.is_object()) return ref;
  auto set = [&ref](const char* field, std::string value) {
    if (!value.empty()) ref[field] = std::move(value);
  };
  set("kind", string_at(obj, "kind"));
  auto meta = obj.find("metadata");
  if (meta != obj.end() && meta->is_object()) {
    set("namespace", string_at(*meta, "namespace"));
    set("name", string_at(*meta, "name"));
    set("uid", string_at(*meta, "uid"));
    set("apiVersion", string_at(obj, "apiVersion"));
    set("resourceVersion", string_at(*meta, "resourceVersion"));
  } else {
    for (const char* field :
         {"namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"}) {
      set(field, string_at(obj, field));
    }
  }
  return ref;
}

bool transient(const Status& s) {
  switch (s.code()) {
    case StatusCode::kUnavailable:
    case StatusCode::kInternal:
    case StatusCode::kTimeout:
    case StatusCode::kTooManyRequests:
      return true;
    default:
      return false;
  }
}

std::string hex_nanos(TimePoint t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  char buf[24];
  std::snprintf(buf, sizeof buf, "%" PRIx64, static_cast<uint64_t>(ns));
  return buf;
}

}  // namespace

struct EventRecorder::Impl {
  struct Pending {
    json ref;
    std::string ns;
    std::string type;
    std::string reason;
    std::string message;
    TimePoint time;
  };
  // An Event written before, that repeats update.
  struct Written {
    std::string ns;
    std::string name;
    int64_t count = 0;
    std::string first_timestamp;
    TimePoint last_seen;
    std::list<std::string>::iterator lru;
  };

  Impl(client::Client& c, std::string comp, std::string h)
      : client(c), component(std::move(comp)), host(std::move(h)) {}

  // Constant after construction.
  client::Client& client;
  const std::string component;
  const std::string host;

  mutable std::mutex mu;
  std::condition_variable work_cv;  // the writer waits on it (also for retry delays)
  std::condition_variable idle_cv;  // flush() waits on it
  // Guarded by mu.
  std::deque<Pending> pending;
  bool writing = false;  // the writer holds an event taken from pending
  bool stopping = false;
  uint64_t dropped = 0;
  std::thread writer;  // started by the first record()

  // Used by the writer thread only.
  std::unordered_map<std::string, Written> written;
  std::list<std::string> lru;  // keys of `written`, most recently used first

  void run() {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      work_cv.wait(lock, [this] { return stopping || !pending.empty(); });
      if (stopping) break;
      Pending p = std::move(pending.front());
      pending.pop_front();
      writing = true;
      lock.unlock();
      write(p);
      lock.lock();
      writing = false;
      if (pending.empty()) idle_cv.notify_all();
    }
    if (!pending.empty()) {
      SKIFF_LOG(Debug) << "event recorder " << component << ": dropping " << pending.size()
                       << " unwritten events";
    }
    pending.clear();
    idle_cv.notify_all();
  }

  // Sleeps between attempts; false if the recorder stops meanwhile.
  bool pause(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu);
    return !work_cv.wait_for(lock, d, [this] { return stopping; });
  }

  template <typename Fn>
  Result<client::ObjectPtr> with_retries(Fn fn) {
    Result<client::ObjectPtr> r = fn();
    for (int attempt = 1; attempt < kWriteAttempts && !r.ok() && transient(r.status()); ++attempt) {
      if (!pause(kRetryDelay * attempt)) break;
      r = fn();
    }
    return r;
  }

  json make_event(const Pending& p, const std::string& name, int64_t count,
                  const std::string& first_timestamp) const {
    json source = {{"component", component}};
    if (!host.empty()) source["host"] = host;
    json ev = {{"apiVersion", "v1"},
               {"kind", "Event"},
               {"metadata", {{"name", name}, {"namespace", p.ns}}},
               {"involvedObject", p.ref},
               {"reason", p.reason},
               {"message", p.message},
               {"type", p.type},
               {"source", std::move(source)},
               {"firstTimestamp", first_timestamp},
               {"lastTimestamp", format_rfc3339(p.time)},
               {"count", count},
               {"reportingComponent", component}};
    if (!host.empty()) ev["reportingInstance"] = host;
    return ev;
  }

  std::string key_of(const Pending& p) const {
    std::string key;
    for (const std::string* part : {&component, &host, &p.type, &p.reason, &p.message}) {
      key += *part;
      key += '\x1f';
    }
    for (const char* field : {"kind", "namespace", "name", "uid", "apiVersion", "fieldPath"}) {
      key += string_at(p.ref, field);
      key += '\x1f';
    }
    return key;
  }

  void remember(const std::string& key, Written w) {
    auto it = written.find(key);
    if (it != written.end()) {
      lru.erase(it->second.lru);
      written.erase(it);
    }
    while (written.size() >= kMaxTrackedEvents && !lru.empty()) {
      written.erase(lru.back());
      lru.pop_back();
    }
    lru.push_front(key);
    w.lru = lru.begin();
    written.emplace(key, std::move(w));
  }

  Status create(const Pending& p, const std::string& key, const std::string& name, int64_t count,
                const std::string& first_timestamp) {
    json ev = make_event(p, name, count, first_timestamp);
    auto events = client::resources::kEvents.in(p.ns);
    auto r = with_retries([&] { return client.create(events, ev); });
    if (!r.ok()) return r.status();
    remember(key, Written{p.ns, name, count, first_timestamp, p.time, {}});
    return Status::Ok();
  }

  void write(const Pending& p) {
    std::string key = key_of(p);
    Status s;
    auto it = written.find(key);
    if (it != written.end() && p.time - it->second.last_seen <= kAggregationWindow) {
      Written& w = it->second;
      lru.splice(lru.begin(), lru, w.lru);
      json patch = {{"count", w.count + 1},
                    {"lastTimestamp", format_rfc3339(p.time)},
                    {"message", p.message}};
      auto events = client::resources::kEvents.in(w.ns);
      auto r = with_retries(
          [&] { return client.patch(events, w.name, client::PatchType::kMerge, to_json(patch)); });
      if (r.ok()) {
        ++w.count;
        w.last_seen = p.time;
        return;
      }
      s = r.status();
      if (s.is_not_found()) {
        // The Event expired or was deleted: write it again under its name, keeping the count.
        std::string name = w.name;
        std::string first = w.first_timestamp;
        s = create(p, key, name, w.count + 1, first);
      }
    } else {
      std::string name =
          string_at(p.ref, "name").substr(0, kMaxNamePrefix) + "." + hex_nanos(p.time);
      s = create(p, key, name, 1, format_rfc3339(p.time));
    }
    if (!s.ok()) {
      SKIFF_LOG(Warn) << "event recorder " << component << ": could not write event " << p.reason
                      << " for " << string_at(p.ref, "kind") << " " << p.ns << "/"
                      << string_at(p.ref, "name") << ": " << s.to_string();
    }
  }
};

EventRecorder::EventRecorder(client::Client& client, std::string component, std::string host)
    : impl_(std::make_unique<Impl>(client, std::move(component), std::move(host))) {}

EventRecorder::~EventRecorder() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->work_cv.notify_all();
  // record() starts the writer under mu and not after stopping, so this read cannot race.
  if (impl_->writer.joinable()) impl_->writer.join();
}

void EventRecorder::record(const nlohmann::json& involved_object, const std::string& type,
                           const std::string& reason, const std::string& message) {
  if (type != "Normal" && type != "Warning") {
    SKIFF_LOG(Warn) << "event recorder " << impl_->component << ": unsupported event type \""
                    << type << "\" for reason " << reason << "; event dropped";
    return;
  }
  Impl::Pending p;
  p.ref = object_reference(involved_object);
  if (string_at(p.ref, "name").empty()) {
    SKIFF_LOG(Warn) << "event recorder " << impl_->component
                    << ": involved object has no name; event " << reason << " dropped";
    return;
  }
  p.ns = string_at(p.ref, "namespace");
  if (p.ns.empty()) p.ns = "default";
  p.type = type;
  p.reason = reason;
  p.message = message;
  p.time = now();

  uint64_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopping) return;
    if (impl_->pending.size() >= kQueueCapacity) {
      dropped = ++impl_->dropped;
    } else {
      impl_->pending.push_back(std::move(p));
      if (!impl_->writer.joinable()) impl_->writer = std::thread([this] { impl_->run(); });
    }
  }
  if (dropped == 0) {
    impl_->work_cv.notify_one();
  } else if ((dropped & (dropped - 1)) == 0) {  // 1, 2, 4, 8, ...: bounded log volume
    SKIFF_LOG(Warn) << "event recorder " << impl_->component << ": queue full, " << dropped
                    << " events dropped so far";
  }
}

void EventRecorder::flush() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->idle_cv.wait(
      lock, [this] { return impl_->stopping || (impl_->pending.empty() && !impl_->writing); });
}

uint64_t EventRecorder::dropped() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->dropped;
}

}  // namespace skiff::controllers
