#include "client/client.h"

#include <algorithm>
#include <atomic>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/json.h"
#include "common/log.h"

namespace skiff::client {

namespace resources {
const ResourceRef kPods{"", "v1", "pods", ""};
const ResourceRef kNodes{"", "v1", "nodes", ""};
const ResourceRef kServices{"", "v1", "services", ""};
const ResourceRef kEndpoints{"", "v1", "endpoints", ""};
const ResourceRef kNamespaces{"", "v1", "namespaces", ""};
const ResourceRef kEvents{"", "v1", "events", ""};
const ResourceRef kConfigMaps{"", "v1", "configmaps", ""};
const ResourceRef kSecrets{"", "v1", "secrets", ""};
const ResourceRef kServiceAccounts{"", "v1", "serviceaccounts", ""};
const ResourceRef kPersistentVolumeClaims{"", "v1", "persistentvolumeclaims", ""};
const ResourceRef kDeployments{"apps", "v1", "deployments", ""};
const ResourceRef kReplicaSets{"apps", "v1", "replicasets", ""};
const ResourceRef kDaemonSets{"apps", "v1", "daemonsets", ""};
const ResourceRef kStatefulSets{"apps", "v1", "statefulsets", ""};
const ResourceRef kControllerRevisions{"apps", "v1", "controllerrevisions", ""};
const ResourceRef kJobs{"batch", "v1", "jobs", ""};
const ResourceRef kCronJobs{"batch", "v1", "cronjobs", ""};
const ResourceRef kLeases{"coordination.k8s.io", "v1", "leases", ""};
const ResourceRef kEndpointSlices{"discovery.k8s.io", "v1", "endpointslices", ""};
}  // namespace resources

namespace {

using nlohmann::json;

constexpr std::string_view kJsonType = "application/json";

bool unreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

// Percent-encodes everything but RFC 3986's unreserved characters (and, in path segments,
// ':' and '@', which names such as "system:controller:x" contain).
std::string escape(std::string_view s, bool path_segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (unreserved(c) || (path_segment && (c == ':' || c == '@'))) {
      out.push_back(c);
    } else {
      auto b = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 15]);
    }
  }
  return out;
}

class QueryBuilder {
 public:
  void add(std::string_view key, std::string_view value) {
    if (!out_.empty()) out_.push_back('&');
    out_ += key;
    out_.push_back('=');
    out_ += escape(value, false);
  }
  void add_if(std::string_view key, const std::string& value) {
    if (!value.empty()) add(key, value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

void add_write_options(QueryBuilder& q, const WriteOptions& o, const std::string& user_agent) {
  q.add("fieldManager", o.field_manager.empty() ? user_agent : o.field_manager);
  if (o.dry_run) q.add("dryRun", "All");
}

void add_list_options(QueryBuilder& q, const ListOptions& o) {
  q.add_if("labelSelector", o.label_selector);
  q.add_if("fieldSelector", o.field_selector);
  if (o.limit > 0) q.add("limit", std::to_string(o.limit));
  q.add_if("continue", o.continue_token);
  q.add_if("resourceVersion", o.resource_version);
}

// obj[key] when it is a string, else "". Never throws, whatever the server sent.
std::string str_field(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

StatusCode code_from_reason(std::string_view r) {
  static constexpr StatusCode kCodes[] = {StatusCode::kBadRequest,
                                          StatusCode::kUnauthorized,
                                          StatusCode::kForbidden,
                                          StatusCode::kNotFound,
                                          StatusCode::kMethodNotAllowed,
                                          StatusCode::kNotAcceptable,
                                          StatusCode::kAlreadyExists,
                                          StatusCode::kConflict,
                                          StatusCode::kGone,
                                          StatusCode::kTooLarge,
                                          StatusCode::kUnsupportedMediaType,
                                          StatusCode::kInvalid,
                                          StatusCode::kTooManyRequests,
                                          StatusCode::kInternal,
                                          StatusCode::kUnavailable,
                                          StatusCode::kTimeout};
  if (r.empty()) return StatusCode::kOk;
  for (StatusCode c : kCodes) {
    if (r == reason(c)) return c;
  }
  // Reasons Kubernetes uses that skiff folds into its codes.
  if (r == "Gone") return StatusCode::kGone;
  if (r == "ServerTimeout") return StatusCode::kTimeout;
  return StatusCode::kOk;
}

StatusCode code_from_http(int http) {
  switch (http) {
    case 400:
      return StatusCode::kBadRequest;
    case 401:
      return StatusCode::kUnauthorized;
    case 403:
      return StatusCode::kForbidden;
    case 404:
      return StatusCode::kNotFound;
    case 405:
      return StatusCode::kMethodNotAllowed;
    case 406:
      return StatusCode::kNotAcceptable;
    case 409:
      return StatusCode::kConflict;
    case 410:
      return StatusCode::kGone;
    case 413:
      return StatusCode::kTooLarge;
    case 415:
      return StatusCode::kUnsupportedMediaType;
    case 422:
      return StatusCode::kInvalid;
    case 429:
      return StatusCode::kTooManyRequests;
    case 503:
      return StatusCode::kUnavailable;
    case 504:
      return StatusCode::kTimeout;
    default:
      break;
  }
  if (http >= 400 && http < 500) return StatusCode::kBadRequest;
  return StatusCode::kInternal;
}

// A failed reply as a Status: the server's Status object when the body is one, else the HTTP
// code with the body as message.
Status reply_status(const Reply& reply) {
  auto parsed = parse_json(reply.body);
  if (parsed.ok() && str_field(*parsed, "kind") == "Status") {
    return status_from_object(*parsed, reply.status);
  }
  std::string message = reply.body.substr(0, 1024);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  if (message.empty()) message = "the server answered " + std::to_string(reply.status);
  return Status(code_from_http(static_cast<int>(reply.status)), std::move(message));
}

Result<json> parse_reply(const Result<Reply>& reply) {
  if (!reply.ok()) return reply.status();
  if (reply->status < 200 || reply->status >= 300) return reply_status(*reply);
  auto parsed = parse_json(reply->body);
  if (!parsed.ok()) {
    return Status::Internal("the server's reply is not valid JSON: " + parsed.status().message());
  }
  return std::move(parsed).value();
}

const std::string& string_at(const json& obj, const char* a, const char* b) {
  static const std::string kEmpty;
  if (!obj.is_object()) return kEmpty;
  auto ia = obj.find(a);
  if (ia == obj.end() || !ia->is_object()) return kEmpty;
  auto ib = ia->find(b);
  if (ib == ia->end() || !ib->is_string()) return kEmpty;
  return ib->get_ref<const std::string&>();
}

// The namespace a request about `obj` goes to: the ResourceRef's, else the object's own.
ResourceRef with_object_namespace(const ResourceRef& r, const json& obj) {
  if (!r.ns.empty() || !obj.is_object()) return r;
  return r.in(string_at(obj, "metadata", "namespace"));
}

std::optional<WatchEventType> event_type(std::string_view t) {
  if (t == "ADDED") return WatchEventType::kAdded;
  if (t == "MODIFIED") return WatchEventType::kModified;
  if (t == "DELETED") return WatchEventType::kDeleted;
  if (t == "BOOKMARK") return WatchEventType::kBookmark;
  if (t == "ERROR") return WatchEventType::kError;
  return std::nullopt;
}

// Splits a watch body into lines (one event each) and decodes them. Chunks arrive in order
// from one transport thread at a time, so it needs no lock.
class WatchDecoder {
 public:
  explicit WatchDecoder(WatchEventFn on_event) : on_event_(std::move(on_event)) {}

  // Called by Watch::stop(), possibly from inside on_event: the rest of the chunk being
  // decoded is dropped.
  void stop() { stopped_.store(true); }
  bool stopped() const { return stopped_.load(); }

  void feed(std::string_view data) {
    if (stopped()) return;
    pending_.append(data);
    size_t start = 0;
    for (;;) {
      if (stopped()) return;
      size_t nl = pending_.find('\n', scanned_);
      if (nl == std::string::npos) break;
      decode_line(std::string_view(pending_).substr(start, nl - start));
      start = nl + 1;
      scanned_ = start;
    }
    pending_.erase(0, start);
    scanned_ = pending_.size();
  }

  // An event the transport passes as an object (no bytes to decode).
  void deliver(const WatchEvent& ev) {
    if (stopped()) return;
    on_event_(ev);
  }

  // The status to close with: a failure the body itself carried (a non-200 reply is a Status
  // object rather than events) wins over the transport's.
  Status finish(const Status& transport_status) {
    if (!pending_.empty()) {
      decode_line(pending_);
      pending_.clear();
    }
    if (!failure_.ok()) return failure_;
    return transport_status;
  }

 private:
  void decode_line(std::string_view line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (line.empty()) return;
    auto parsed = parse_json(line);
    if (!parsed.ok() || !parsed->is_object()) {
      SKIFF_LOG(Warn) << "ignoring a watch event that is not a JSON object: "
                      << (parsed.ok() ? "not an object" : parsed.status().message());
      return;
    }
    json& j = *parsed;
    auto type = j.find("type");
    if (type == j.end()) {
      if (str_field(j, "kind") == "Status") failure_ = status_from_object(j);
      return;
    }
    auto t = type->is_string() ? event_type(type->get_ref<const std::string&>()) : std::nullopt;
    if (!t) {
      SKIFF_LOG(Warn) << "ignoring a watch event of unknown type " << type->dump();
      return;
    }
    WatchEvent ev;
    ev.type = *t;
    auto obj = j.find("object");
    ev.object = std::make_shared<const json>(obj == j.end() ? json::object() : std::move(*obj));
    on_event_(ev);
  }

  WatchEventFn on_event_;
  std::atomic<bool> stopped_{false};
  std::string pending_;
  size_t scanned_ = 0;  // pending_[0, scanned_) holds no newline
  Status failure_;
};

// The Watch a Client hands out: stops decoding first, then the transport's stream (which
// waits for a callback running on another thread to return).
class ClientWatch final : public Watch {
 public:
  ClientWatch(std::shared_ptr<WatchDecoder> decoder, std::unique_ptr<Watch> stream)
      : decoder_(std::move(decoder)), stream_(std::move(stream)) {}
  ~ClientWatch() override { stop(); }
  void stop() override {
    decoder_->stop();
    stream_->stop();
  }

 private:
  std::shared_ptr<WatchDecoder> decoder_;
  std::unique_ptr<Watch> stream_;
};

}  // namespace

Status status_from_object(const nlohmann::json& obj, unsigned http_status) {
  StatusCode code = StatusCode::kOk;
  std::string message;
  if (obj.is_object()) {
    if (auto r = obj.find("reason"); r != obj.end() && r->is_string()) {
      code = code_from_reason(r->get_ref<const std::string&>());
    }
    if (code == StatusCode::kOk) {
      if (auto c = obj.find("code"); c != obj.end() && c->is_number_integer()) {
        code = code_from_http(static_cast<int>(std::clamp<int64_t>(c->get<int64_t>(), 0, 999)));
      }
    }
    if (auto m = obj.find("message"); m != obj.end() && m->is_string()) message = *m;
  }
  if (code == StatusCode::kOk) {
    code = http_status != 0 ? code_from_http(static_cast<int>(http_status)) : StatusCode::kInternal;
  }
  if (message.empty()) message = reason(code);
  Status s(code, std::move(message));
  if (obj.is_object()) {
    auto details = obj.find("details");
    if (details != obj.end() && details->is_object()) {
      auto causes = details->find("causes");
      if (causes != details->end() && causes->is_array()) {
        for (const json& c : *causes) {
          if (!c.is_object()) continue;
          s.add_cause({str_field(c, "reason"), str_field(c, "message"), str_field(c, "field")});
        }
      }
    }
  }
  return s;
}

Client::Client(std::shared_ptr<Transport> transport, std::string user_agent)
    : transport_(std::move(transport)), user_agent_(std::move(user_agent)) {}

std::string Client::path(const ResourceRef& r, const std::string& name,
                         const std::string& subresource) {
  std::string p;
  if (r.group.empty()) {
    p = "/api/" + (r.version.empty() ? std::string("v1") : r.version);
  } else {
    p = "/apis/" + r.group + "/" + r.version;
  }
  if (!r.ns.empty()) p += "/namespaces/" + escape(r.ns, true);
  p += "/" + r.resource;
  if (!name.empty()) p += "/" + escape(name, true);
  if (!subresource.empty()) p += "/" + subresource;
  return p;
}

Result<ObjectPtr> Client::send(Request req) {
  if (req.user_agent.empty()) req.user_agent = user_agent_;
  Result<Reply> reply = transport_->round_trip(req);
  if (reply.ok() && reply->object && reply->status >= 200 && reply->status < 300) {
    return std::move(reply->object);
  }
  auto j = parse_reply(reply);
  if (!j.ok()) return j.status();
  return ObjectPtr(std::make_shared<const nlohmann::json>(std::move(j).value()));
}

Result<ObjectPtr> Client::get(const ResourceRef& r, const std::string& name) {
  Request req;
  req.method = "GET";
  req.path = path(r, name);
  return send(std::move(req));
}

Result<ObjectList> Client::list(const ResourceRef& r, const ListOptions& o) {
  Request req;
  req.method = "GET";
  req.path = path(r);
  QueryBuilder q;
  add_list_options(q, o);
  req.query = q.take();
  req.user_agent = user_agent_;
  auto j = parse_reply(transport_->round_trip(req));
  if (!j.ok()) return j.status();
  json& list = *j;
  if (!list.is_object()) return Status::Internal("the server's list reply is not an object");
  ObjectList out;
  out.resource_version = string_at(list, "metadata", "resourceVersion");
  out.continue_token = string_at(list, "metadata", "continue");
  // Items of a typed list may leave out their kind and apiVersion; the list names them.
  std::string kind = str_field(list, "kind");
  if (kind.size() > 4 && kind.compare(kind.size() - 4, 4, "List") == 0)
    kind.resize(kind.size() - 4);
  std::string api_version = str_field(list, "apiVersion");
  auto items = list.find("items");
  if (items != list.end() && items->is_array()) {
    out.items.reserve(items->size());
    for (json& item : *items) {
      if (!item.is_object()) continue;
      if (!kind.empty() && !item.contains("kind")) item["kind"] = kind;
      if (!api_version.empty() && !item.contains("apiVersion")) item["apiVersion"] = api_version;
      out.items.push_back(std::make_shared<const json>(std::move(item)));
    }
  }
  return out;
}

Result<ObjectPtr> Client::create(const ResourceRef& r, const nlohmann::json& obj,
                                 const WriteOptions& o) {
  Request req;
  req.method = "POST";
  req.path = path(with_object_namespace(r, obj));
  QueryBuilder q;
  add_write_options(q, o, user_agent_);
  req.query = q.take();
  req.content_type = kJsonType;
  req.body = to_json(obj);
  return send(std::move(req));
}

Result<ObjectPtr> Client::update(const ResourceRef& r, const nlohmann::json& obj,
                                 const std::string& subresource, const WriteOptions& o) {
  const std::string& name = string_at(obj, "metadata", "name");
  if (name.empty()) return Status::BadRequest("the object to update has no metadata.name");
  Request req;
  req.method = "PUT";
  req.path = path(with_object_namespace(r, obj), name, subresource);
  QueryBuilder q;
  add_write_options(q, o, user_agent_);
  req.query = q.take();
  req.content_type = kJsonType;
  req.body = to_json(obj);
  return send(std::move(req));
}

Result<ObjectPtr> Client::patch(const ResourceRef& r, const std::string& name, PatchType type,
                                const std::string& body, const std::string& subresource,
                                const WriteOptions& o) {
  Request req;
  req.method = "PATCH";
  req.path = path(r, name, subresource);
  QueryBuilder q;
  add_write_options(q, o, user_agent_);
  if (type == PatchType::kApply && o.force) q.add("force", "true");
  req.query = q.take();
  switch (type) {
    case PatchType::kJson:
      req.content_type = "application/json-patch+json";
      break;
    case PatchType::kMerge:
      req.content_type = "application/merge-patch+json";
      break;
    case PatchType::kStrategicMerge:
      req.content_type = "application/strategic-merge-patch+json";
      break;
    case PatchType::kApply:
      req.content_type = "application/apply-patch+yaml";
      break;
  }
  req.body = body;
  return send(std::move(req));
}

Result<ObjectPtr> Client::remove(const ResourceRef& r, const std::string& name,
                                 const DeleteOptions& o) {
  Request req;
  req.method = "DELETE";
  req.path = path(r, name);
  json body = json::object();
  body["kind"] = "DeleteOptions";
  body["apiVersion"] = "v1";
  if (!o.propagation_policy.empty()) body["propagationPolicy"] = o.propagation_policy;
  if (o.grace_period_seconds) body["gracePeriodSeconds"] = *o.grace_period_seconds;
  if (!o.precondition_uid.empty() || !o.precondition_resource_version.empty()) {
    json pre = json::object();
    if (!o.precondition_uid.empty()) pre["uid"] = o.precondition_uid;
    if (!o.precondition_resource_version.empty()) {
      pre["resourceVersion"] = o.precondition_resource_version;
    }
    body["preconditions"] = std::move(pre);
  }
  if (o.dry_run) {
    body["dryRun"] = json::array({"All"});
    req.query = "dryRun=All";
  }
  req.content_type = kJsonType;
  req.body = to_json(body);
  return send(std::move(req));
}

Result<ObjectPtr> Client::create_subresource(const ResourceRef& r, const std::string& name,
                                             const std::string& subresource,
                                             const nlohmann::json& body, const WriteOptions& o) {
  Request req;
  req.method = "POST";
  req.path = path(r, name, subresource);
  QueryBuilder q;
  add_write_options(q, o, user_agent_);
  req.query = q.take();
  req.content_type = kJsonType;
  req.body = to_json(body);
  return send(std::move(req));
}

Result<std::unique_ptr<Watch>> Client::watch(const ResourceRef& r, const ListOptions& o,
                                             WatchEventFn on_event, WatchClosedFn on_closed) {
  Request req;
  req.method = "GET";
  req.path = path(r);
  req.user_agent = user_agent_;
  QueryBuilder q;
  q.add("watch", "true");
  q.add_if("labelSelector", o.label_selector);
  q.add_if("fieldSelector", o.field_selector);
  q.add_if("resourceVersion", o.resource_version);
  if (o.allow_bookmarks) q.add("allowWatchBookmarks", "true");
  if (o.timeout_seconds > 0) q.add("timeoutSeconds", std::to_string(o.timeout_seconds));
  req.query = q.take();
  auto decoder = std::make_shared<WatchDecoder>(std::move(on_event));
  auto closed = std::make_shared<WatchClosedFn>(std::move(on_closed));
  // The callbacks hold their state by local references: a consumer that stops the watch
  // from on_event may make the transport destroy these very callbacks while they run.
  auto stream = transport_->stream_watch(
      req,
      [decoder](std::string_view data) {
        std::shared_ptr<WatchDecoder> d = decoder;
        d->feed(data);
      },
      [decoder](const WatchEvent& ev) {
        std::shared_ptr<WatchDecoder> d = decoder;
        d->deliver(ev);
      },
      [decoder, closed](const Status& s) {
        std::shared_ptr<WatchDecoder> d = decoder;
        std::shared_ptr<WatchClosedFn> on_closed = closed;
        Status final_status = d->finish(s);
        if (!d->stopped() && *on_closed) (*on_closed)(final_status);
      });
  if (!stream.ok()) return stream.status();
  return std::unique_ptr<Watch>(
      std::make_unique<ClientWatch>(std::move(decoder), std::move(stream).value()));
}

}  // namespace skiff::client
