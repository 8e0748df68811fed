#include "apiserver/rest.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <random>

#include "api/patch/apply.h"
#include "api/patch/patch.h"
#include "api/protobuf/protobuf.h"
#include "api/typecheck/typecheck.h"
#include "apiserver/object_bytes.h"
#include "apiserver/responses.h"
#include "apiserver/strategy.h"
#include "client/client.h"
#include "common/base64.h"
#include "common/json.h"
#include "common/labels.h"
#include "common/strings.h"
#include "common/time.h"

namespace skiff::apiserver {

using nlohmann::json;

namespace {

constexpr int kMaxConflictRetries = 5;

// The media type of a Content-Type header, lower-cased, without parameters.
std::string media_type(const std::string& content_type) {
  return ascii_lower(trim_space(std::string_view(content_type).substr(0, content_type.find(';'))));
}

std::string resource_group(const api::ResourceDef& def) {
  return def.group.empty() ? def.resource : def.resource + "." + def.group;
}

StatusDetails details_for(const api::ResourceDef& def, const std::string& name) {
  return {name, def.group, def.resource};
}

Status not_found(const api::ResourceDef& def, const std::string& name) {
  return Status::NotFound(resource_group(def) + " \"" + name + "\" not found");
}

Status conflict_modified(const api::ResourceDef& def, const std::string& name) {
  return Status::Conflict("Operation cannot be fulfilled on " + resource_group(def) + " \"" +
                          name +
                          "\": the object has been modified; please apply your changes to the "
                          "latest version and try again");
}

// Strips what the store must not hold: the resourceVersion lives in the key's revision.
std::string storage_bytes(json obj) {
  if (auto m = obj.find("metadata"); m != obj.end() && m->is_object()) {
    m->erase("resourceVersion");
    m->erase("selfLink");
  }
  return obj.dump();
}

// storage_bytes for an object about to be created: strips obj itself instead of a copy (a new
// object has no selfLink, and its resourceVersion is the store's to give).
std::string storage_bytes_of_new(json& obj) {
  if (auto m = obj.find("metadata"); m != obj.end() && m->is_object()) {
    m->erase("resourceVersion");
    m->erase("selfLink");
  }
  return obj.dump();
}

json parse_cached(const ObjectPtr& o) { return json::parse(*o->json, nullptr, false); }
json parse_cached_object(const CachedObject& o) { return json::parse(*o.json, nullptr, false); }

std::string meta_string(const json& obj, const char* field) {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return {};
  auto f = m->find(field);
  if (f == m->end() || !f->is_string()) return {};
  return f->get<std::string>();
}

// Everything but metadata and status: a change here bumps metadata.generation.
json spec_part(const json& obj) {
  json out = obj;
  if (out.is_object()) {
    out.erase("metadata");
    out.erase("status");
  }
  return out;
}

bool has_finalizers(const json& obj) {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return false;
  auto f = m->find("finalizers");
  return f != m->end() && f->is_array() && !f->empty();
}

bool being_deleted(const json& obj) {
  auto m = obj.find("metadata");
  return m != obj.end() && m->is_object() && m->contains("deletionTimestamp") &&
         !(*m)["deletionTimestamp"].is_null();
}

}  // namespace

struct RestHandler::Call {
  Call(Exchange& e, const RequestInfo& r, std::shared_ptr<const api::ResourceDef> d)
      : ex(e), ri(r), def(std::move(d)) {}

  Exchange& ex;
  const RequestInfo& ri;
  std::shared_ptr<const api::ResourceDef> def;
  bool dry_run = false;
  std::string field_manager;
  api::FieldValidation validation = api::FieldValidation::kWarn;
  std::vector<std::string> warnings;
  int64_t now = 0;
  std::string now_text;

  const api::ResourceDef& d() const { return *def; }
  std::string key() const { return object_key(*def, ri.ns, ri.name); }
};

namespace {

using Call = RestHandler::Call;

asio::awaitable<void> reply_status(Call& c, Status s, std::string name) {
  Response r = status_response(s, details_for(c.d(), name.empty() ? c.ri.name : name));
  co_await c.ex.reply(std::move(r));
}

asio::awaitable<void> reply_status(Call& c, Status s) {
  Response r = status_response(s, details_for(c.d(), c.ri.name));
  co_await c.ex.reply(std::move(r));
}

Response json_response(unsigned code, std::string body) {
  Response r;
  r.status = code;
  r.body = std::move(body);
  return r;
}

Response json_response(unsigned code, std::string body, const std::vector<std::string>& warnings) {
  Response r;
  r.status = code;
  r.body = std::move(body);
  for (const auto& w : warnings) {
    r.headers.emplace_back("Warning", "299 - " + json(w).dump());
  }
  return r;
}

// Decodes a request body by its Content-Type: JSON, YAML or Kubernetes protobuf.
Result<json> decode_body(ServerContext& ctx, Call& c) {
  const std::string& body = c.ex.request().body();
  std::string type = media_type(c.ex.header("Content-Type"));
  if (body.empty()) return Status::BadRequest("the request body is empty");
  ParseOptions opts;
  opts.reject_duplicate_keys = c.validation == api::FieldValidation::kStrict;
  if (type.empty() || type == "application/json" || type == "*/*") return parse_json(body, opts);
  if (type == "application/yaml" || type == "application/apply-patch+yaml") {
    return parse_yaml(body, opts);
  }
  if (type == "application/vnd.kubernetes.protobuf") {
    return api::decode_protobuf_object(body, *ctx.registry);
  }
  return Status(StatusCode::kUnsupportedMediaType,
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json, application/yaml, "
                "application/vnd.kubernetes.protobuf");
}

// Checks apiVersion/kind of a body against what the URL addresses.
Status check_type_meta(const json& obj, const std::string& api_version, const std::string& kind) {
  if (!obj.is_object()) {
    return Status::BadRequest("the request body must be a JSON object, got " +
                              std::string(obj.type_name()));
  }
  auto k = obj.find("kind");
  if (k == obj.end() || !k->is_string() || k->get<std::string>().empty()) {
    return Status::BadRequest("Object 'Kind' is missing in '" + obj.dump().substr(0, 200) + "'");
  }
  auto v = obj.find("apiVersion");
  if (v == obj.end() || !v->is_string()) {
    return Status::BadRequest("Object 'apiVersion' is missing in '" + obj.dump().substr(0, 200) +
                              "'");
  }
  if (v->get<std::string>() != api_version || k->get<std::string>() != kind) {
    return Status::BadRequest("the API version in the data (" + v->get<std::string>() +
                              ") does not match the expected API version (" + api_version +
                              ")" +
                              (k->get<std::string>() != kind
                                   ? ": the kind in the data (" + k->get<std::string>() +
                                         ") does not match the expected kind (" + kind + ")"
                                   : std::string()));
  }
  return Status::Ok();
}

// Field validation of a whole object against its schema (unknown fields, wrong types).
Status typecheck(Call& c, json& obj) {
  const api::ResourceDef& d = c.d();
  if (d.type == nullptr) return Status::Ok();
  Status s = api::check_fields(obj, *d.type, c.validation, &c.warnings);
  if (s.ok()) return s;
  return Status(s.code(), d.kind + " in version \"" + d.version + "\" cannot be handled as a " +
                              d.kind + ": " + s.message());
}

Status validate_object(const api::ResourceDef& d, const json& obj, const json* old) {
  if (!d.validate) return Status::Ok();
  return d.validate(obj, old);
}

// The response body for an object just written at `revision`: the cached bytes when the
// cache holds exactly this revision (the common case), else `obj` (which carries that
// resourceVersion) dumped.
std::string cached_or_dumped(ServerContext& ctx, const std::string& key, int64_t revision,
                             const json& obj) {
  if (ObjectPtr o = ctx.cache->get(key); o && o->mod_revision == revision) return *o->json;
  return obj.dump();
}

// Makes the store's answer into the response body (cached_or_dumped), setting the new
// resourceVersion on obj.
std::string written_body(ServerContext& ctx, const std::string& key, json obj, int64_t revision) {
  obj["metadata"]["resourceVersion"] = std::to_string(revision);
  return cached_or_dumped(ctx, key, revision, obj);
}

// The response to a create: the cached bytes (or, when the cache has moved on, the object
// dumped) and, for in-process clients, the stored document itself with its resourceVersion,
// which is what parsing the bytes would give. REQUIRES: obj holds what was stored.
Response created_response(ServerContext& ctx, const std::string& key, json obj, int64_t revision,
                          const std::vector<std::string>& warnings) {
  obj["metadata"]["resourceVersion"] = std::to_string(revision);
  auto doc = std::make_shared<const json>(std::move(obj));
  Response r = json_response(201, cached_or_dumped(ctx, key, revision, *doc), warnings);
  r.object = ctx.cache->share_parsed(key, revision, std::move(doc));
  return r;
}

Response namespace_not_found(const std::string& ns) {
  return status_response(Status::NotFound("namespaces \"" + ns + "\" not found"),
                         StatusDetails{ns, "", "namespaces"});
}

std::string manager_for(const Exchange& ex) {
  std::string m = ex.query().get("fieldManager");
  if (!m.empty()) return m;
  std::string ua = ex.header("User-Agent");
  return ua.substr(0, ua.find('/'));
}

}  // namespace

asio::awaitable<void> RestHandler::serve(Exchange& ex, const RequestInfo& ri,
                                         std::shared_ptr<const api::ResourceDef> def) {
  Call c{ex, ri, std::move(def)};
  const Query& q = ex.query();
  c.dry_run = !q.all("dryRun").empty();
  if (c.dry_run) {
    for (const auto& v : q.all("dryRun")) {
      if (v != "All") {
        co_await reply_status(c, Status::BadRequest("unsupported dry run option \"" + v +
                                                    "\": only \"All\" is supported"));
        co_return;
      }
    }
  }
  std::string fv = q.get("fieldValidation");
  if (fv == "Strict") {
    c.validation = api::FieldValidation::kStrict;
  } else if (fv == "Ignore") {
    c.validation = api::FieldValidation::kIgnore;
  } else if (fv.empty() || fv == "Warn") {
    c.validation = api::FieldValidation::kWarn;
  } else {
    co_await reply_status(c, Status::BadRequest("fieldValidation parameter unsupported: " + fv +
                                                ". Supported values: Ignore, Warn, Strict"));
    co_return;
  }
  c.field_manager = manager_for(ex);
  c.now = now_unix();
  c.now_text = now_rfc3339();
  const api::ResourceDef& d = *c.def;

  if (d.namespaced() && ri.ns.empty() && !ri.name.empty()) {
    co_await reply_status(c, Status::NotFound("the server could not find the requested resource"));
    co_return;
  }
  if (!ri.subresource.empty()) {
    const std::string& sub = ri.subresource;
    if (d.subresource(sub) == nullptr && !(d.resource == "namespaces" && sub == "finalize")) {
      co_await reply_status(c,
                            Status::NotFound("the server could not find the requested resource"));
      co_return;
    }
    if (sub == "scale") {
      co_await scale(c);
    } else if (sub == "binding") {
      co_await binding(c);
    } else if (sub == "token") {
      co_await token(c);
    } else if (sub == "eviction") {
      co_await eviction(c);
    } else if (sub == "status" || sub == "finalize") {
      if (ri.verb == "get") {
        co_await get(c);
      } else if (ri.verb == "update") {
        co_await update(c);
      } else if (ri.verb == "patch") {
        co_await patch(c);
      } else {
        co_await reply_status(c, Status(StatusCode::kMethodNotAllowed,
                                        "the server does not allow this method on the requested "
                                        "resource"));
      }
    } else {
      // log, exec, attach and portforward are proxied to the node agent by PodProxy before
      // they get here; what is left (proxy, ephemeralcontainers) is not served.
      co_await reply_status(
          c, Status::Unavailable("no node agent serves " + d.resource + "/" + sub + " for \"" +
                                 ri.name + "\" yet"));
    }
    co_return;
  }
  if (!d.stored) {
    if (ri.verb == "create") {
      co_await review(c);
    } else {
      co_await reply_status(c, Status(StatusCode::kMethodNotAllowed,
                                      "the server does not allow this method on the requested "
                                      "resource"));
    }
    co_return;
  }
  const std::string& verb = ri.verb;
  if (std::find(d.verbs.begin(), d.verbs.end(), verb) == d.verbs.end()) {
    co_await reply_status(c, Status(StatusCode::kMethodNotAllowed,
                                    "the server does not allow this method on the requested "
                                    "resource"));
    co_return;
  }
  if (verb == "get") {
    co_await get(c);
  } else if (verb == "list") {
    co_await list(c);
  } else if (verb == "watch") {
    co_await watch(c);
  } else if (verb == "create") {
    co_await create(c);
  } else if (verb == "update") {
    co_await update(c);
  } else if (verb == "patch") {
    co_await patch(c);
  } else if (verb == "delete") {
    co_await remove(c);
  } else if (verb == "deletecollection") {
    co_await remove_collection(c);
  } else {
    co_await reply_status(c, Status(StatusCode::kMethodNotAllowed, "unsupported method"));
  }
}

// ---------------------------------------------------------------------------------------------
// Reads

asio::awaitable<void> RestHandler::get(Call& c) {
  ObjectPtr o = ctx_.cache->get(c.key());
  if (!o) {
    co_await reply_status(c, not_found(c.d(), c.ri.name));
    co_return;
  }
  if (wants_table(c.ex.header("Accept"))) {
    json obj = parse_cached(o);
    json t = table_for(c.d(), {obj}, o->mod_revision,
                       c.ex.query().get("includeObject", "Metadata"), c.now, "");
    Response r = json_response(200, t.dump());
    r.content_type = kTableContentType;
    co_await c.ex.reply(std::move(r));
    co_return;
  }
  co_await c.ex.reply(json_response(200, *o->json));
}

namespace {

// Continue tokens: base64 of {"v":"meta.k8s.io/v1","rv":N,"start":"<last key>"}.
std::string make_continue(int64_t rv, const std::string& last_key) {
  json j = {{"v", "meta.k8s.io/v1"}, {"rv", rv}, {"start", last_key}};
  return base64_encode(j.dump());
}

Result<std::string> parse_continue(const std::string& token, const std::string& prefix,
                                   int64_t oldest) {
  auto raw = base64_decode(token);
  if (!raw.ok()) return Status::BadRequest("continue key is not valid: illegal base64 data");
  json j = json::parse(*raw, nullptr, false);
  if (!j.is_object() || !j.contains("start") || !j["start"].is_string() || !j.contains("rv") ||
      !j["rv"].is_number_integer()) {
    return Status::BadRequest("continue key is not valid: incorrect encoded start resourceVersion");
  }
  if (j["rv"].get<int64_t>() < oldest) {
    return Status::Gone(
        "The provided continue parameter is too old to display a consistent list result. You "
        "can start a new list without the continue parameter.");
  }
  std::string start = j["start"];
  if (start.compare(0, prefix.size(), prefix) != 0) {
    return Status::BadRequest("continue key is not valid: key does not match the request");
  }
  return start;
}


// Watch frames built outside coroutines (g++ 12 cannot keep brace-initialized JSON built from
// string literals in a coroutine frame).
std::string error_frame(const Status& s) { return watch_frame("ERROR", status_json(s)); }

std::string bookmark_frame(const api::ResourceDef& d, int64_t revision) {
  json b = {{"kind", d.kind},
            {"apiVersion", d.api_version()},
            {"metadata", {{"resourceVersion", std::to_string(revision)}}}};
  return watch_frame("BOOKMARK", b.dump());
}

client::WatchEventType client_event_type(EventType t) {
  switch (t) {
    case EventType::kAdded: return client::WatchEventType::kAdded;
    case EventType::kModified: return client::WatchEventType::kModified;
    case EventType::kDeleted: return client::WatchEventType::kDeleted;
  }
  return client::WatchEventType::kError;
}

std::string table_event_frame(const api::ResourceDef& d, const Delivery& del,
                              const std::string& include_object) {
  json obj = parse_cached(del.object());
  if (del.prev_deleted) obj["metadata"]["resourceVersion"] = std::to_string(del.event->revision());
  json t = table_for(d, {obj}, del.event->revision(), include_object, now_unix(), "");
  return watch_frame(event_type_name(del.as), t.dump());
}

}  // namespace

asio::awaitable<void> RestHandler::list(Call& c) {
  const Query& q = c.ex.query();
  if (q.flag("watch")) {
    co_await watch(c);
    co_return;
  }
  auto matcher = make_matcher(c.d(), q.get("labelSelector"), q.get("fieldSelector"));
  if (!matcher.ok()) {
    co_await reply_status(c, matcher.status());
    co_return;
  }
  std::string prefix = resource_prefix(c.d(), c.ri.ns);
  size_t limit = 0;
  if (std::string l = q.get("limit"); !l.empty()) {
    char* end = nullptr;
    long long v = std::strtoll(l.c_str(), &end, 10);
    if (end == l.c_str() || *end != '\0' || v < 0) {
      co_await reply_status(c, Status::BadRequest("limit must be a non-negative integer"));
      co_return;
    }
    limit = static_cast<size_t>(v);
  }
  std::string start_after;
  if (std::string cont = q.get("continue"); !cont.empty()) {
    auto s = parse_continue(cont, prefix, ctx_.cache->oldest_revision());
    if (!s.ok()) {
      co_await reply_status(c, s.status());
      co_return;
    }
    start_after = *s;
  }
  WatchCache::ListResult res = ctx_.cache->list(prefix, *matcher, limit, start_after);
  std::string cont;
  if (res.more && !res.items.empty()) cont = make_continue(res.revision, res.items.back()->key);
  if (wants_table(c.ex.header("Accept"))) {
    std::vector<json> objs;
    objs.reserve(res.items.size());
    for (const auto& o : res.items) objs.push_back(parse_cached(o));
    json t = table_for(c.d(), objs, res.revision, q.get("includeObject", "Metadata"), c.now, cont);
    Response r = json_response(200, t.dump());
    r.content_type = kTableContentType;
    co_await c.ex.reply(std::move(r));
    co_return;
  }
  co_await c.ex.reply(json_response(200, list_json(c.d(), res.items, res.revision, cont)));
}

asio::awaitable<void> RestHandler::watch(Call& c) {
  const Query& q = c.ex.query();
  Matcher match;
  {
    auto m = make_matcher(c.d(), q.get("labelSelector"), q.get("fieldSelector"));
    if (!m.ok()) {
      co_await reply_status(c, m.status());
      co_return;
    }
    match = *m;
  }
  std::string prefix = resource_prefix(c.d(), c.ri.ns);
  if (!c.ri.name.empty()) {
    // GET .../watch/<resource>/<name>: one object.
    prefix = c.key();
    std::string exact = prefix;
    Matcher inner = match;
    match = [exact, inner](const CachedObject& o) {
      return o.key == exact && (!inner || inner(o));
    };
  }
  int64_t after = -1;
  bool initial = true;
  std::string rv = q.get("resourceVersion");
  if (!rv.empty() && rv != "0") {
    char* end = nullptr;
    long long v = std::strtoll(rv.c_str(), &end, 10);
    if (end == rv.c_str() || *end != '\0' || v < 0) {
      co_await reply_status(c, Status::BadRequest("invalid resource version: " + rv));
      co_return;
    }
    after = v;
    initial = false;
  }
  bool table = wants_table(c.ex.header("Accept"));
  bool bookmarks = q.flag("allowWatchBookmarks");
  std::chrono::seconds timeout;
  if (std::string ts = q.get("timeoutSeconds"); !ts.empty()) {
    timeout = std::chrono::seconds(std::max(1L, std::strtol(ts.c_str(), nullptr, 10)));
  } else {
    // As Kubernetes: a random 30-60 minutes, so that watches do not all end at once.
    static thread_local std::mt19937 rng{std::random_device{}()};
    timeout = std::chrono::seconds(1800 + rng() % 1800);
  }

  auto executor = co_await asio::this_coro::executor;
  auto wake = std::make_shared<asio::steady_timer>(executor);
  wake->expires_at(asio::steady_timer::time_point::max());
  std::weak_ptr<asio::steady_timer> weak_wake = wake;
  auto notify = [weak_wake, executor]() {
    asio::post(executor, [weak_wake] {
      if (auto t = weak_wake.lock()) t->cancel();
    });
  };
  auto w = ctx_.cache->watch(prefix, match, after, initial, notify);
  if (!w.ok()) {
    // Kubernetes answers a too-old resourceVersion with 200 and an ERROR event.
    if (!co_await c.ex.begin_stream(200, table ? kTableContentType : kJson)) co_return;
    co_await c.ex.write_chunk(error_frame(w.status()));
    co_await c.ex.end_stream();
    co_return;
  }
  std::shared_ptr<Watcher> watcher = *w;
  if (!table && c.ex.takes_events()) watcher->set_takes_objects();
  struct Unwatch {
    WatchCache& cache;
    std::shared_ptr<Watcher> w;
    ~Unwatch() { cache.unwatch(w); }
  } unwatch{*ctx_.cache, watcher};

  if (!co_await c.ex.begin_stream(200, table ? kTableContentType : kJson)) co_return;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto bookmark_every = std::chrono::seconds(60);
  auto next_bookmark = std::chrono::steady_clock::now() + bookmark_every;
  const api::ResourceDef& d = c.d();
  // An in-process client takes the cache's parsed objects: no bytes to build or parse.
  const bool as_objects = !table && c.ex.takes_events();
  for (;;) {
    int64_t revision = ctx_.cache->revision();
    std::vector<Delivery> batch = watcher->take();
    if (watcher->overflowed()) break;  // too slow: the client re-watches from its last revision
    if (!batch.empty() && as_objects) {
      for (const auto& del : batch) {
        if (!c.ex.write_event(client_event_type(del.as), del.parsed())) co_return;
      }
    } else if (!batch.empty()) {
      std::string out;
      for (const auto& del : batch) {
        if (table) {
          out += table_event_frame(d, del, q.get("includeObject", "Metadata"));
        } else {
          out += del.frame();
        }
      }
      if (!co_await c.ex.write_chunk(out)) co_return;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    if (bookmarks && now >= next_bookmark) {
      if (!co_await c.ex.write_chunk(bookmark_frame(d, revision))) co_return;
      next_bookmark = now + bookmark_every;
    }
    if (!batch.empty()) continue;  // drain before sleeping
    auto until = std::min(deadline, bookmarks ? next_bookmark : deadline);
    wake->expires_at(until);
    boost::system::error_code ec;
    co_await wake->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    // A cancelled wait means new events; an expired one a deadline. Either way, loop.
  }
  co_await c.ex.end_stream();
}

// ---------------------------------------------------------------------------------------------
// Writes

namespace {

// Metadata fields are `omitempty` in Kubernetes: an empty or null map or list (what a merge
// patch leaves after removing the last key) is not stored or served.
void drop_empty_metadata(json& meta) {
  for (const char* f : {"labels", "annotations", "finalizers", "ownerReferences",
                        "managedFields", "generateName"}) {
    auto it = meta.find(f);
    if (it != meta.end() && (it->is_null() || (it->is_structured() && it->empty()) ||
                             (it->is_string() && it->get_ref<const std::string&>().empty()))) {
      meta.erase(it);
    }
  }
}

// Fills the metadata a new object gets from the server. `ns` is the request's namespace.
Status prepare_new_metadata(const api::ResourceDef& d, json& obj, const std::string& ns,
                            const std::string& url_name, const std::string& now) {
  json& meta = obj["metadata"];
  if (meta.is_null()) meta = json::object();
  if (!meta.is_object()) return Status::BadRequest("metadata must be an object");
  if (auto rv = meta.find("resourceVersion");
      rv != meta.end() && rv->is_string() && !rv->get<std::string>().empty()) {
    return Status::BadRequest("resourceVersion should not be set on objects to be created");
  }
  if (d.namespaced()) {
    std::string obj_ns = meta.value("namespace", std::string());
    if (!obj_ns.empty() && obj_ns != ns) {
      return Status::BadRequest(
          "the namespace of the provided object does not match the namespace sent on the "
          "request");
    }
    meta["namespace"] = ns;
  } else {
    meta.erase("namespace");
  }
  std::string name = meta.value("name", std::string());
  if (!url_name.empty() && !name.empty() && name != url_name) {
    return Status::BadRequest("the name of the object (" + name +
                              ") does not match the name on the URL (" + url_name + ")");
  }
  if (name.empty() && !url_name.empty()) name = url_name;
  if (name.empty()) {
    std::string gen = meta.value("generateName", std::string());
    if (gen.empty()) {
      Status s = Status::Invalid(
          d.kind + (d.group.empty() ? "" : "." + d.group) +
          " \"\" is invalid: metadata.name: Required value: name or generateName is required");
      s.add_cause({"FieldValueRequired", "Required value: name or generateName is required",
                   "metadata.name"});
      return s;
    }
    name = gen + random_name_suffix();
  }
  meta["name"] = name;
  drop_empty_metadata(meta);
  meta["uid"] = new_uid();
  meta["creationTimestamp"] = now;
  meta.erase("deletionTimestamp");
  meta.erase("deletionGracePeriodSeconds");
  meta.erase("selfLink");
  if (uses_generation(d)) {
    meta["generation"] = 1;
  } else {
    meta.erase("generation");
  }
  return Status::Ok();
}

}  // namespace

asio::awaitable<void> RestHandler::create(Call& c) {
  const api::ResourceDef& d = c.d();
  auto body = decode_body(ctx_, c);
  if (!body.ok()) {
    co_await reply_status(c, body.status());
    co_return;
  }
  json obj = std::move(body.value());
  if (Status s = check_type_meta(obj, d.api_version(), d.kind); !s.ok()) {
    co_await reply_status(c, s);
    co_return;
  }
  if (Status s = typecheck(c, obj); !s.ok()) {
    co_await reply_status(c, s);
    co_return;
  }
  if (Status s = prepare_new_metadata(d, obj, c.ri.ns, "", c.now_text); !s.ok()) {
    co_await reply_status(c, s, meta_string(obj, "name"));
    co_return;
  }
  std::string name = obj["metadata"]["name"];
  if (d.namespaced()) {
    ObjectPtr ns = ctx_.cache->get("/registry/core/namespaces/" + c.ri.ns);
    if (!ns) {
      Response r = namespace_not_found(c.ri.ns);
      co_await c.ex.reply(std::move(r));
      co_return;
    }
    if (ns->deleting) {
      co_await reply_status(c,
                            Status::Forbidden(d.resource + " \"" + name +
                                              "\" is forbidden: unable to create new content in "
                                              "namespace " +
                                              c.ri.ns + " because it is being terminated"),
                            name);
      co_return;
    }
  }
  prepare_status_for_create(d, obj);
  if (d.defaults) d.defaults(obj);
  if (Status s = validate_object(d, obj, nullptr); !s.ok()) {
    co_await reply_status(c, s, name);
    co_return;
  }
  if (Status s = allocate_for_create(ctx_, d, obj); !s.ok()) {
    co_await reply_status(c, s, name);
    co_return;
  }
  // An object the managed fields cannot be computed for is stored without them.
  (void)api::update_managed_fields_in_place(nullptr, obj, d.type, c.field_manager, "Update",
                                            d.api_version(), c.now_text);
  std::string key = object_key(d, c.ri.ns, name);
  if (c.dry_run) {
    if (ctx_.cache->get(key)) {
      co_await reply_status(c, Status::AlreadyExists(resource_group(d) + " \"" + name +
                                                     "\" already exists"),
                            name);
      co_return;
    }
    co_await c.ex.reply(json_response(201, obj.dump(), c.warnings));
    co_return;
  }
  store::WriteOp op;
  op.kind = store::WriteOp::Kind::kCreate;
  op.key = key;
  op.value = std::make_shared<const std::string>(storage_bytes_of_new(obj));
  auto res = co_await store_write(*ctx_.store, std::move(op));
  if (!res.ok()) {
    Status s = res.status();
    if (s.code() == StatusCode::kAlreadyExists) {
      s = Status::AlreadyExists(resource_group(d) + " \"" + name + "\" already exists");
    }
    co_await reply_status(c, s, name);
    co_return;
  }
  co_await c.ex.reply(created_response(ctx_, key, std::move(obj), res->revision, c.warnings));
}

asio::awaitable<Status> RestHandler::create_internal(const api::ResourceDef& d, json obj) {
  std::string ns = meta_string(obj, "namespace");
  std::string now = now_rfc3339();
  if (Status s = prepare_new_metadata(d, obj, ns, "", now); !s.ok()) co_return s;
  prepare_status_for_create(d, obj);
  if (d.defaults) d.defaults(obj);
  if (Status s = validate_object(d, obj, nullptr); !s.ok()) co_return s;
  if (Status s = allocate_for_create(ctx_, d, obj); !s.ok()) co_return s;
  (void)api::update_managed_fields_in_place(nullptr, obj, d.type, "skiff", "Update",
                                            d.api_version(), now);
  store::WriteOp op;
  op.kind = store::WriteOp::Kind::kCreate;
  op.key = object_key(d, ns, obj["metadata"]["name"].get<std::string>());
  op.value = std::make_shared<const std::string>(storage_bytes_of_new(obj));
  auto res = co_await store_write(*ctx_.store, std::move(op));
  co_return res.ok() ? Status::Ok() : res.status();
}

namespace {

// The outcome of applying an update to a stored object.
struct Prepared {
  json obj;
  bool unchanged = false;
  bool finalize_delete = false;  // the last finalizer went away from a deleted object
};

// Turns the requested new state into what will be stored, as Kubernetes' update path does:
// keeps server-owned metadata, splits spec and status by subresource, bumps the generation,
// defaults, validates and records managed fields.
Result<Prepared> prepare_update(ServerContext& ctx, Call& c, json obj, const json& old,
                                const std::string& operation_manager, bool managed_done) {
  const api::ResourceDef& d = c.d();
  const std::string& sub = c.ri.subresource;
  json& meta = obj["metadata"];
  if (!meta.is_object()) return Status::BadRequest("metadata must be an object");
  const json& old_meta = old["metadata"];
  std::string name = meta.value("name", std::string());
  if (name.empty()) name = c.ri.name;
  if (name != c.ri.name) {
    return Status::BadRequest("the name of the object (" + name +
                              ") does not match the name on the URL (" + c.ri.name + ")");
  }
  meta["name"] = name;
  if (d.namespaced()) {
    std::string ns = meta.value("namespace", std::string());
    if (!ns.empty() && ns != c.ri.ns) {
      return Status::BadRequest(
          "the namespace of the provided object does not match the namespace sent on the "
          "request");
    }
    meta["namespace"] = c.ri.ns;
  }
  std::string rv = meta.value("resourceVersion", std::string());
  if (!rv.empty() && rv != old_meta.value("resourceVersion", std::string())) {
    return conflict_modified(d, name);
  }
  for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp",
                        "deletionGracePeriodSeconds", "generation"}) {
    if (old_meta.contains(f)) {
      meta[f] = old_meta[f];
    } else {
      meta.erase(f);
    }
  }
  meta["resourceVersion"] = old_meta.value("resourceVersion", std::string());
  if (!meta.contains("managedFields") && old_meta.contains("managedFields")) {
    meta["managedFields"] = old_meta["managedFields"];
  }
  drop_empty_metadata(meta);
  bool status_sub = sub == "status";
  if (status_sub) {
    // Only the status changes through /status.
    json next = old;
    if (obj.contains("status")) {
      next["status"] = obj["status"];
    } else {
      next.erase("status");
    }
    if (meta.contains("managedFields")) next["metadata"]["managedFields"] = meta["managedFields"];
    obj = std::move(next);
  } else if (sub == "finalize") {
    json next = old;
    if (obj.contains("spec")) next["spec"] = obj["spec"];
    obj = std::move(next);
  } else if (d.has_status_subresource) {
    if (old.contains("status")) {
      obj["status"] = old["status"];
    } else {
      obj.erase("status");
    }
  }
  if (d.defaults) d.defaults(obj);
  if (!status_sub && uses_generation(d) && spec_part(obj) != spec_part(old)) {
    obj["metadata"]["generation"] = old_meta.value("generation", int64_t{0}) + 1;
  }
  if (Status s = validate_object(d, obj, &old); !s.ok()) return s;
  if (Status s = allocate_for_update(ctx, d, obj, old); !s.ok()) return s;
  Prepared p;
  json old_cmp = old;
  json new_cmp = obj;
  old_cmp["metadata"].erase("managedFields");
  new_cmp["metadata"].erase("managedFields");
  if (old_cmp == new_cmp && (!managed_done || obj["metadata"].value("managedFields", json()) ==
                                                  old_meta.value("managedFields", json()))) {
    p.obj = old;
    p.unchanged = true;
    return p;
  }
  if (!managed_done) {
    (void)api::update_managed_fields_in_place(&old, obj, d.type, operation_manager, "Update",
                                              d.api_version(), c.now_text, c.ri.subresource);
  }
  // The last finalizer of an object marked for deletion is gone: it goes. A namespace also
  // waits for its spec.finalizers (the namespace controller empties them via /finalize).
  bool spec_finalizers = d.group.empty() && d.resource == "namespaces" &&
                         obj.contains("spec") && obj["spec"].is_object() &&
                         obj["spec"].contains("finalizers") &&
                         obj["spec"]["finalizers"].is_array() &&
                         !obj["spec"]["finalizers"].empty();
  if (being_deleted(obj) && !has_finalizers(obj) && !spec_finalizers) p.finalize_delete = true;
  p.obj = std::move(obj);
  return p;
}

}  // namespace

// Stores a prepared update guarded by the old revision, and answers.
static asio::awaitable<void> commit_update(ServerContext& ctx, Call& c, Prepared p,
                                           int64_t old_revision, bool* conflict) {
  *conflict = false;
  std::string key = c.key();
  if (p.unchanged || c.dry_run) {
    co_await c.ex.reply(json_response(200, p.obj.dump(), c.warnings));
    co_return;
  }
  store::WriteOp op;
  op.key = key;
  op.expected_mod_revision = old_revision;
  if (p.finalize_delete) {
    op.kind = store::WriteOp::Kind::kRemove;
  } else {
    op.kind = store::WriteOp::Kind::kUpdate;
    op.value = std::make_shared<const std::string>(storage_bytes(p.obj));
  }
  auto res = co_await store_write(*ctx.store, std::move(op));
  if (!res.ok()) {
    if (res.status().code() == StatusCode::kConflict) {
      *conflict = true;
      co_return;
    }
    if (res.status().code() == StatusCode::kNotFound) {
      co_await reply_status(c, not_found(c.d(), c.ri.name));
      co_return;
    }
    co_await reply_status(c, res.status());
    co_return;
  }
  if (p.finalize_delete) {
    p.obj["metadata"]["resourceVersion"] = std::to_string(res->revision);
    co_await c.ex.reply(json_response(200, p.obj.dump(), c.warnings));
    co_return;
  }
  co_await c.ex.reply(
      json_response(200, written_body(ctx, key, std::move(p.obj), res->revision), c.warnings));
}

asio::awaitable<void> RestHandler::update(Call& c) {
  const api::ResourceDef& d = c.d();
  auto body = decode_body(ctx_, c);
  if (!body.ok()) {
    co_await reply_status(c, body.status());
    co_return;
  }
  json obj = std::move(body.value());
  if (Status s = check_type_meta(obj, d.api_version(), d.kind); !s.ok()) {
    co_await reply_status(c, s);
    co_return;
  }
  if (Status s = typecheck(c, obj); !s.ok()) {
    co_await reply_status(c, s);
    co_return;
  }
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    ObjectPtr cur = ctx_.cache->get(c.key());
    if (!cur) {
      co_await reply_status(c, not_found(d, c.ri.name));
      co_return;
    }
    json old = parse_cached(cur);
    auto p = prepare_update(ctx_, c, obj, old, c.field_manager, false);
    if (!p.ok()) {
      co_await reply_status(c, p.status());
      co_return;
    }
    bool conflict = false;
    co_await commit_update(ctx_, c, std::move(p.value()), cur->mod_revision, &conflict);
    if (!conflict) co_return;
    // Raced with another writer: retry only when the client did not pin a resourceVersion.
    if (!meta_string(obj, "resourceVersion").empty()) break;
  }
  co_await reply_status(c, conflict_modified(d, c.ri.name));
}

asio::awaitable<void> RestHandler::patch(Call& c) {
  const api::ResourceDef& d = c.d();
  std::string type = media_type(c.ex.header("Content-Type"));
  const std::string& body = c.ex.request().body();
  bool is_apply = type == "application/apply-patch+yaml";
  if (type != "application/json-patch+json" && type != "application/merge-patch+json" &&
      type != "application/strategic-merge-patch+json" && !is_apply) {
    co_await reply_status(
        c, Status(StatusCode::kUnsupportedMediaType,
                  "the body of the request was in an unknown format - accepted media types "
                  "include: application/json-patch+json, application/merge-patch+json, "
                  "application/apply-patch+yaml" +
                      std::string(d.crd ? "" : ", application/strategic-merge-patch+json")));
    co_return;
  }
  if (type == "application/strategic-merge-patch+json" && d.crd) {
    co_await reply_status(
        c, Status(StatusCode::kUnsupportedMediaType,
                  "the body of the request was in an unknown format - accepted media types "
                  "include: application/json-patch+json, application/merge-patch+json, "
                  "application/apply-patch+yaml"));
    co_return;
  }
  if (body.empty()) {
    co_await reply_status(c, Status::BadRequest("the request body is empty"));
    co_return;
  }
  ParseOptions popts;
  popts.reject_duplicate_keys = c.validation == api::FieldValidation::kStrict;
  auto parsed = is_apply ? parse_yaml(body, popts) : parse_json(body, popts);
  if (!parsed.ok()) {
    co_await reply_status(c, parsed.status());
    co_return;
  }
  json patch_doc = std::move(parsed.value());
  if (is_apply) {
    if (!c.ri.subresource.empty() && c.ri.subresource != "status") {
      co_await reply_status(c, Status::BadRequest("apply is not supported on this subresource"));
      co_return;
    }
    if (Status s = check_type_meta(patch_doc, d.api_version(), d.kind); !s.ok()) {
      co_await reply_status(c, s);
      co_return;
    }
    if (Status s = typecheck(c, patch_doc); !s.ok()) {
      co_await reply_status(c, s);
      co_return;
    }
    std::string applied_name = meta_string(patch_doc, "name");
    if (!applied_name.empty() && applied_name != c.ri.name) {
      co_await reply_status(c, Status::BadRequest("the name of the object (" + applied_name +
                                                  ") does not match the name on the URL (" +
                                                  c.ri.name + ")"));
      co_return;
    }
    if (c.ex.query().get("fieldManager").empty()) {
      co_await reply_status(c, Status::BadRequest(
                                   "PATCH, application/apply-patch+yaml requests require a "
                                   "non-empty fieldManager"));
      co_return;
    }
  } else if (type == "application/json-patch+json" ? !patch_doc.is_array()
                                                   : !patch_doc.is_object()) {
    co_await reply_status(c, Status::BadRequest(
                                 std::string("the patch must be a JSON ") +
                                 (type == "application/json-patch+json" ? "array" : "object")));
    co_return;
  }
  bool force = c.ex.query().flag("force");
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    ObjectPtr cur = ctx_.cache->get(c.key());
    if (!cur && !is_apply) {
      co_await reply_status(c, not_found(d, c.ri.name));
      co_return;
    }
    api::ApplyOptions aopts;
    aopts.manager = c.field_manager;
    aopts.force = force;
    aopts.api_version = d.api_version();
    aopts.now_rfc3339 = c.now_text;
    aopts.subresource = c.ri.subresource;
    if (!cur) {
      // Server-side apply creates what does not exist.
      if (!c.ri.subresource.empty()) {
        co_await reply_status(c, not_found(d, c.ri.name));
        co_return;
      }
      auto applied = api::server_side_apply(nullptr, patch_doc, d.type, aopts);
      if (!applied.ok()) {
        co_await reply_status(c, applied.status());
        co_return;
      }
      json obj = std::move(applied.value());
      if (Status s = prepare_new_metadata(d, obj, c.ri.ns, c.ri.name, c.now_text); !s.ok()) {
        co_await reply_status(c, s);
        co_return;
      }
      if (d.namespaced()) {
        ObjectPtr ns = ctx_.cache->get("/registry/core/namespaces/" + c.ri.ns);
        if (!ns) {
          Response r = namespace_not_found(c.ri.ns);
          co_await c.ex.reply(std::move(r));
          co_return;
        }
        if (ns->deleting) {
          co_await reply_status(c, Status::Forbidden(
                                       d.resource + " \"" + c.ri.name +
                                       "\" is forbidden: unable to create new content in "
                                       "namespace " +
                                       c.ri.ns + " because it is being terminated"));
          co_return;
        }
      }
      prepare_status_for_create(d, obj);
      if (d.defaults) d.defaults(obj);
      if (Status s = validate_object(d, obj, nullptr); !s.ok()) {
        co_await reply_status(c, s);
        co_return;
      }
      if (Status s = allocate_for_create(ctx_, d, obj); !s.ok()) {
        co_await reply_status(c, s);
        co_return;
      }
      if (c.dry_run) {
        co_await c.ex.reply(json_response(201, obj.dump(), c.warnings));
        co_return;
      }
      store::WriteOp op;
      op.kind = store::WriteOp::Kind::kCreate;
      op.key = c.key();
      op.value = std::make_shared<const std::string>(storage_bytes(obj));
      auto res = co_await store_write(*ctx_.store, std::move(op));
      if (!res.ok()) {
        if (res.status().code() == StatusCode::kAlreadyExists) continue;  // lost a race: merge
        co_await reply_status(c, res.status());
        co_return;
      }
      co_await c.ex.reply(json_response(
          201, written_body(ctx_, c.key(), std::move(obj), res->revision), c.warnings));
      co_return;
    }
    json old = parse_cached(cur);
    Result<json> patched = Status::Internal("unreachable");
    bool managed_done = false;
    if (type == "application/json-patch+json") {
      patched = api::apply_json_patch(old, patch_doc);
    } else if (type == "application/merge-patch+json") {
      patched = api::apply_merge_patch(old, patch_doc);
    } else if (type == "application/strategic-merge-patch+json") {
      patched = api::apply_strategic_merge_patch(old, patch_doc, d.type);
    } else {
      patched = api::server_side_apply(&old, patch_doc, d.type, aopts);
      managed_done = true;
    }
    if (!patched.ok()) {
      co_await reply_status(c, patched.status());
      co_return;
    }
    json obj = std::move(patched.value());
    if (!is_apply) {
      if (!obj.is_object()) {
        co_await reply_status(c, Status::BadRequest("the patch produced a non-object"));
        co_return;
      }
      // The patched object must still be well-typed (a merge patch can set any JSON value).
      if (Status s = check_type_meta(obj, d.api_version(), d.kind); !s.ok()) {
        co_await reply_status(c, s);
        co_return;
      }
      if (Status s = typecheck(c, obj); !s.ok()) {
        co_await reply_status(c, s);
        co_return;
      }
    }
    auto p = prepare_update(ctx_, c, std::move(obj), old, c.field_manager, managed_done);
    if (!p.ok()) {
      co_await reply_status(c, p.status());
      co_return;
    }
    bool conflict = false;
    co_await commit_update(ctx_, c, std::move(p.value()), cur->mod_revision, &conflict);
    if (!conflict) co_return;
  }
  co_await reply_status(c, conflict_modified(d, c.ri.name));
}

namespace {

// Reads a metav1.DeleteOptions object into o (fields absent from j are left as they are).
Status read_delete_options(const json& j, DeleteOptions* o, bool* dry_run) {
  if (!j.is_object()) return Status::BadRequest("DeleteOptions must be a JSON object");
  if (auto p = j.find("propagationPolicy"); p != j.end() && p->is_string()) {
    o->propagation = *p;
  }
  if (auto p = j.find("orphanDependents"); p != j.end() && p->is_boolean()) {
    o->propagation = p->get<bool>() ? "Orphan" : o->propagation;
  }
  if (auto p = j.find("gracePeriodSeconds"); p != j.end() && p->is_number_integer()) {
    o->grace = *p;
  }
  if (auto p = j.find("dryRun"); p != j.end() && p->is_array() && !p->empty()) *dry_run = true;
  if (auto p = j.find("preconditions"); p != j.end() && p->is_object()) {
    o->precondition_uid = p->value("uid", std::string());
    o->precondition_rv = p->value("resourceVersion", std::string());
  }
  if (!o->propagation.empty() && o->propagation != "Orphan" && o->propagation != "Background" &&
      o->propagation != "Foreground") {
    return Status::BadRequest("propagationPolicy: Unsupported value: \"" + o->propagation +
                              "\": supported values: \"Foreground\", \"Background\", \"Orphan\"");
  }
  return Status::Ok();
}

Result<DeleteOptions> parse_delete_options(ServerContext& ctx, Call& c) {
  DeleteOptions o;
  const Query& q = c.ex.query();
  o.propagation = q.get("propagationPolicy");
  if (q.has("orphanDependents")) o.propagation = q.flag("orphanDependents") ? "Orphan" : "";
  if (std::string g = q.get("gracePeriodSeconds"); !g.empty()) o.grace = std::atoll(g.c_str());
  if (!c.ex.request().body().empty()) {
    auto parsed = decode_body(ctx, c);
    if (!parsed.ok()) return parsed.status();
    if (Status s = read_delete_options(*parsed, &o, &c.dry_run); !s.ok()) return s;
  } else if (!o.propagation.empty()) {
    json empty = json::object();
    if (Status s = read_delete_options(empty, &o, &c.dry_run); !s.ok()) return s;
  }
  return o;
}

}  // namespace

asio::awaitable<void> RestHandler::remove(Call& c) {
  auto opts = parse_delete_options(ctx_, c);
  if (!opts.ok()) {
    co_await reply_status(c, opts.status());
    co_return;
  }
  Result<Response> r = co_await delete_object(c, opts.value());
  if (!r.ok()) {
    co_await reply_status(c, r.status());
    co_return;
  }
  co_await c.ex.reply(std::move(r.value()));
}

asio::awaitable<Result<Response>> RestHandler::delete_object(Call& c, DeleteOptions o) {
  const api::ResourceDef& d = c.d();
  const DeleteOptions* opts = &o;
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    ObjectPtr cur = ctx_.cache->get(c.key());
    if (!cur) {
      co_return not_found(d, c.ri.name);
    }
    json obj = parse_cached(cur);
    json& meta = obj["metadata"];
    if (!opts->precondition_uid.empty() && opts->precondition_uid != meta.value("uid", "")) {
      co_return Status::Conflict("Precondition failed: UID in precondition: " +
                                                opts->precondition_uid +
                                                ", UID in object meta: " + meta.value("uid", ""));
    }
    if (!opts->precondition_rv.empty() &&
        opts->precondition_rv != meta.value("resourceVersion", "")) {
      co_return Status::Conflict("Precondition failed: ResourceVersion in precondition: " +
                                 opts->precondition_rv + ", ResourceVersion in object meta: " +
                                 meta.value("resourceVersion", ""));
    }
    // Decide between deleting now and marking for deletion (finalizers, graceful pods,
    // namespaces whose content must go first).
    json finalizers = meta.value("finalizers", json::array());
    if (!finalizers.is_array()) finalizers = json::array();
    auto add_finalizer = [&](const std::string& f) {
      if (std::find(finalizers.begin(), finalizers.end(), json(f)) == finalizers.end()) {
        finalizers.push_back(f);
      }
    };
    if (opts->propagation == "Orphan") add_finalizer("orphan");
    if (opts->propagation == "Foreground") add_finalizer("foregroundDeletion");
    bool graceful = false;
    int64_t grace = 0;
    if (d.group.empty() && d.resource == "pods" && opts->grace != 0) {
      std::string node = obj.value("spec", json::object()).value("nodeName", std::string());
      bool node_exists = !node.empty() && ctx_.cache->get("/registry/core/nodes/" + node);
      if (node_exists) {
        graceful = true;
        grace = opts->grace > 0
                    ? opts->grace
                    : obj["spec"].value("terminationGracePeriodSeconds", int64_t{30});
        if (grace <= 0) graceful = false;
      }
    }
    bool is_namespace = d.group.empty() && d.resource == "namespaces";
    bool pending = !finalizers.empty() || graceful || is_namespace;
    if (pending) {
      if (being_deleted(obj) && finalizers == meta.value("finalizers", json::array()) &&
          !graceful) {
        // Already being deleted; nothing new to record.
        co_return json_response(202, *cur->json, c.warnings);
      }
      if (!being_deleted(obj)) {
        if (graceful) {
          meta["deletionTimestamp"] = c.now_text;  // agents count the grace period from here
          meta["deletionGracePeriodSeconds"] = grace;
        } else {
          meta["deletionTimestamp"] = c.now_text;
          meta["deletionGracePeriodSeconds"] = 0;
        }
      }
      if (!finalizers.empty()) meta["finalizers"] = finalizers;
      if (is_namespace) obj["status"]["phase"] = "Terminating";
      if (c.dry_run) {
        co_return json_response(202, obj.dump(), c.warnings);
      }
      store::WriteOp op;
      op.kind = store::WriteOp::Kind::kUpdate;
      op.key = c.key();
      op.expected_mod_revision = cur->mod_revision;
      op.value = std::make_shared<const std::string>(storage_bytes(obj));
      auto res = co_await store_write(*ctx_.store, std::move(op));
      if (!res.ok()) {
        if (res.status().code() == StatusCode::kConflict) continue;
        co_return res.status();
      }
      co_return json_response(202, written_body(ctx_, c.key(), std::move(obj), res->revision),
                        c.warnings);
    }
    if (c.dry_run) {
      co_return json_response(200, *cur->json, c.warnings);
    }
    store::WriteOp op;
    op.kind = store::WriteOp::Kind::kRemove;
    op.key = c.key();
    op.expected_mod_revision = cur->mod_revision;
    auto res = co_await store_write(*ctx_.store, std::move(op));
    if (!res.ok()) {
      if (res.status().code() == StatusCode::kConflict) continue;
      if (res.status().code() == StatusCode::kNotFound) {
        co_return not_found(d, c.ri.name);
      }
      co_return res.status();
    }
    co_return json_response(200, *cur->json, c.warnings);
  }
  co_return conflict_modified(d, c.ri.name);
}

asio::awaitable<void> RestHandler::remove_collection(Call& c) {
  const api::ResourceDef& d = c.d();
  const Query& q = c.ex.query();
  auto matcher = make_matcher(d, q.get("labelSelector"), q.get("fieldSelector"));
  if (!matcher.ok()) {
    co_await reply_status(c, matcher.status());
    co_return;
  }
  WatchCache::ListResult res = ctx_.cache->list(resource_prefix(d, c.ri.ns), *matcher, 0);
  for (const auto& o : res.items) {
    if (c.dry_run) continue;
    store::WriteOp op;
    op.kind = store::WriteOp::Kind::kRemove;
    op.key = o->key;
    op.expected_mod_revision = 0;
    json obj = parse_cached(o);
    if (has_finalizers(obj)) {
      if (being_deleted(obj)) continue;
      obj["metadata"]["deletionTimestamp"] = c.now_text;
      obj["metadata"]["deletionGracePeriodSeconds"] = 0;
      op.kind = store::WriteOp::Kind::kUpdate;
      op.expected_mod_revision = o->mod_revision;
      op.value = std::make_shared<const std::string>(storage_bytes(obj));
    }
    co_await store_write(*ctx_.store, std::move(op));
  }
  co_await c.ex.reply(
      json_response(200, list_json(d, res.items, ctx_.cache->revision(), ""), c.warnings));
}

// ---------------------------------------------------------------------------------------------
// Subresources

asio::awaitable<void> RestHandler::scale(Call& c) {
  const api::ResourceDef& d = c.d();
  auto scale_of = [&](const json& obj) {
    const json& meta = obj["metadata"];
    json spec = obj.value("spec", json::object());
    json status = obj.value("status", json::object());
    std::string selector;
    if (auto sel = spec.find("selector"); sel != spec.end() && sel->is_object()) {
      json match_labels = sel->value("matchLabels", json::object());
      for (auto& [k, v] : match_labels.items()) {
        if (!selector.empty()) selector += ",";
        selector += k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
      }
    }
    json s = {{"kind", "Scale"},
              {"apiVersion", "autoscaling/v1"},
              {"metadata",
               {{"name", meta.value("name", "")},
                {"namespace", meta.value("namespace", "")},
                {"uid", meta.value("uid", "")},
                {"resourceVersion", meta.value("resourceVersion", "")},
                {"creationTimestamp", meta.value("creationTimestamp", json())}}},
              {"spec", {{"replicas", spec.value("replicas", 0)}}},
              {"status", {{"replicas", status.value("replicas", 0)}, {"selector", selector}}}};
    return s;
  };
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    ObjectPtr cur = ctx_.cache->get(c.key());
    if (!cur) {
      co_await reply_status(c, not_found(d, c.ri.name));
      co_return;
    }
    json old = parse_cached(cur);
    json current_scale = scale_of(old);
    if (c.ri.verb == "get") {
      co_await c.ex.reply(json_response(200, current_scale.dump()));
      co_return;
    }
    json wanted;
    std::string type = media_type(c.ex.header("Content-Type"));
    auto parsed = decode_body(ctx_, c);
    if (c.ri.verb == "patch") {
      parsed = parse_json(c.ex.request().body());
    }
    if (!parsed.ok()) {
      co_await reply_status(c, parsed.status());
      co_return;
    }
    if (c.ri.verb == "update") {
      wanted = std::move(parsed.value());
    } else if (c.ri.verb == "patch") {
      Result<json> r = Status::Internal("unreachable");
      if (type == "application/json-patch+json") {
        r = api::apply_json_patch(current_scale, *parsed);
      } else {
        r = api::apply_merge_patch(current_scale, *parsed);
      }
      if (!r.ok()) {
        co_await reply_status(c, r.status());
        co_return;
      }
      wanted = std::move(r.value());
    } else {
      co_await reply_status(c, Status(StatusCode::kMethodNotAllowed, "unsupported method"));
      co_return;
    }
    auto replicas = wanted.value("spec", json::object()).value("replicas", json());
    if (!replicas.is_number_integer() || replicas.get<int64_t>() < 0) {
      Status s = Status::Invalid("Scale.autoscaling \"" + c.ri.name +
                                 "\" is invalid: spec.replicas: Invalid value: " +
                                 replicas.dump() +
                                 ": must be greater than or equal to 0");
      s.add_cause({"FieldValueInvalid", "Invalid value: " + replicas.dump() +
                                             ": must be greater than or equal to 0",
                   "spec.replicas"});
      co_await reply_status(c, s);
      co_return;
    }
    std::string rv = wanted.value("metadata", json::object()).value("resourceVersion", "");
    if (!rv.empty() && rv != old["metadata"].value("resourceVersion", "")) {
      co_await reply_status(c, conflict_modified(d, c.ri.name));
      co_return;
    }
    json obj = old;
    obj["spec"]["replicas"] = replicas;
    RequestInfo main_ri = c.ri;
    main_ri.subresource.clear();
    Call main(c.ex, main_ri, c.def);
    main.dry_run = c.dry_run;
    main.field_manager = c.field_manager;
    main.validation = c.validation;
    main.now = c.now;
    main.now_text = c.now_text;
    auto p = prepare_update(ctx_, main, std::move(obj), old, c.field_manager, false);
    if (!p.ok()) {
      co_await reply_status(c, p.status());
      co_return;
    }
    Prepared prepared = std::move(p.value());
    if (!prepared.unchanged && !c.dry_run) {
      store::WriteOp op;
      op.kind = store::WriteOp::Kind::kUpdate;
      op.key = c.key();
      op.expected_mod_revision = cur->mod_revision;
      op.value = std::make_shared<const std::string>(storage_bytes(prepared.obj));
      auto res = co_await store_write(*ctx_.store, std::move(op));
      if (!res.ok()) {
        if (res.status().code() == StatusCode::kConflict) continue;
        co_await reply_status(c, res.status());
        co_return;
      }
      prepared.obj["metadata"]["resourceVersion"] = std::to_string(res->revision);
    }
    co_await c.ex.reply(json_response(200, scale_of(prepared.obj).dump()));
    co_return;
  }
  co_await reply_status(c, conflict_modified(d, c.ri.name));
}

namespace {

// pods/binding through the DOM, for pods bind_pod_bytes leaves to it: the bound pod as the
// store keeps it, or Conflict when it is already on a node.
Result<std::string> bind_pod_dom(const CachedObject& cur, const std::string& pod_name,
                                 const std::string& node, const std::string& now) {
  json pod = parse_cached_object(cur);
  std::string assigned = pod.value("spec", json::object()).value("nodeName", std::string());
  if (!assigned.empty()) {
    return Status::Conflict("pod " + pod_name + " is already assigned to node \"" + assigned +
                            "\"");
  }
  pod["spec"]["nodeName"] = node;
  json& conds = pod["status"]["conditions"];
  if (!conds.is_array()) conds = json::array();
  bool found = false;
  for (auto& cond : conds) {
    if (cond.value("type", "") == "PodScheduled") {
      cond["status"] = "True";
      cond["lastTransitionTime"] = now;
      cond.erase("reason");
      cond.erase("message");
      found = true;
    }
  }
  if (!found) {
    conds.push_back({{"type", "PodScheduled"},
                     {"status", "True"},
                     {"lastProbeTime", nullptr},
                     {"lastTransitionTime", now}});
  }
  return storage_bytes(std::move(pod));
}

}  // namespace

asio::awaitable<void> RestHandler::binding(Call& c) {
  if (c.ri.verb != "create") {
    co_await reply_status(c, Status(StatusCode::kMethodNotAllowed, "unsupported method"));
    co_return;
  }
  auto body = decode_body(ctx_, c);
  if (!body.ok()) {
    co_await reply_status(c, body.status());
    co_return;
  }
  const json& b = *body;
  std::string node = b.value("target", json::object()).value("name", std::string());
  if (node.empty()) {
    Status s = Status::Invalid("Binding \"" + c.ri.name +
                               "\" is invalid: target.name: Required value");
    s.add_cause({"FieldValueRequired", "Required value", "target.name"});
    co_await reply_status(c, s);
    co_return;
  }
  for (int attempt = 0; attempt < kMaxConflictRetries; ++attempt) {
    ObjectPtr cur = ctx_.cache->get(c.key());
    if (!cur) {
      co_await reply_status(c, not_found(c.d(), c.ri.name));
      co_return;
    }
    if (cur->deleting) {
      co_await reply_status(c, Status::Conflict("pod " + c.ri.name +
                                                " is being deleted, cannot be assigned to a host"));
      co_return;
    }
    // The common case, on the cached bytes without a DOM; bind_pod_dom judges the rest.
    BindResult fast = bind_pod_bytes(*cur->json, node, c.now_text);
    if (fast.kind == BindResult::Kind::kAssigned) {
      co_await reply_status(c, Status::Conflict("pod " + c.ri.name +
                                                " is already assigned to node \"" +
                                                fast.assigned + "\""));
      co_return;
    }
    std::shared_ptr<const std::string> bound;
    if (fast.kind == BindResult::Kind::kBound) {
      bound = std::make_shared<const std::string>(std::move(fast.bytes));
    } else {
      auto slow = bind_pod_dom(*cur, c.ri.name, node, c.now_text);
      if (!slow.ok()) {
        co_await reply_status(c, slow.status());
        co_return;
      }
      bound = std::make_shared<const std::string>(std::move(slow.value()));
    }
    if (c.dry_run) break;
    store::WriteOp op;
    op.kind = store::WriteOp::Kind::kUpdate;
    op.key = c.key();
    op.expected_mod_revision = cur->mod_revision;
    op.value = std::move(bound);
    auto res = co_await store_write(*ctx_.store, std::move(op));
    if (!res.ok()) {
      if (res.status().code() == StatusCode::kConflict) continue;
      co_await reply_status(c, res.status());
      co_return;
    }
    break;
  }
  co_await c.ex.reply(json_response(201, status_json(Status::Ok())));
}

namespace {

// An eviction must not take a running pod below what a PodDisruptionBudget allows: a budget
// selecting the pod whose status allows no disruption refuses it (429), as Kubernetes does.
Status check_disruption_budgets(ServerContext& ctx, const CachedObject& pod) {
  json p = parse_cached_object(pod);
  std::string phase = p.value("status", json::object()).value("phase", "");
  if (phase == "Succeeded" || phase == "Failed" || phase == "Pending") return Status::Ok();
  auto budgets = ctx.cache->list("/registry/policy/poddisruptionbudgets/" + pod.ns + "/",
                                 nullptr, 0);
  json labels = p["metadata"].value("labels", json::object());
  for (const auto& o : budgets.items) {
    json pdb = parse_cached_object(*o);
    auto selector = LabelSelector::from_json(pdb.value("spec", json::object()).value(
        "selector", json()));
    if (!selector.ok() || !selector->matches_json(labels)) continue;
    json status = pdb.value("status", json::object());
    if (!status.contains("disruptionsAllowed")) continue;  // not yet computed
    if (status.value("disruptionsAllowed", 0) < 1) {
      Status s(StatusCode::kTooManyRequests,
               "Cannot evict pod as it would violate the pod's disruption budget.");
      s.add_cause({"DisruptionBudget",
                   "The disruption budget " + pdb["metadata"].value("name", "") +
                       " needs " + std::to_string(status.value("desiredHealthy", 0)) +
                       " healthy pods and has " + std::to_string(status.value("currentHealthy", 0)) +
                       " currently",
                   ""});
      return s;
    }
  }
  return Status::Ok();
}

}  // namespace

asio::awaitable<void> RestHandler::eviction(Call& c) {
  if (c.ri.verb != "create") {
    co_await reply_status(c, Status(StatusCode::kMethodNotAllowed, "unsupported method"));
    co_return;
  }
  auto body = decode_body(ctx_, c);
  if (!body.ok()) {
    co_await reply_status(c, body.status());
    co_return;
  }
  DeleteOptions opts;
  if (auto d = body->find("deleteOptions"); d != body->end() && d->is_object()) {
    if (Status s = read_delete_options(*d, &opts, &c.dry_run); !s.ok()) {
      co_await reply_status(c, s);
      co_return;
    }
  }
  ObjectPtr pod = ctx_.cache->get(c.key());
  if (!pod) {
    co_await reply_status(c, not_found(c.d(), c.ri.name));
    co_return;
  }
  if (Status s = check_disruption_budgets(ctx_, *pod); !s.ok()) {
    co_await reply_status(c, s);
    co_return;
  }
  Result<Response> r = co_await delete_object(c, opts);
  if (!r.ok()) {
    co_await reply_status(c, r.status());
    co_return;
  }
  co_await c.ex.reply(json_response(201, status_json(Status::Ok())));
}

namespace {
json token_status(const std::string& token, int64_t expires) {
  auto tp = std::chrono::system_clock::time_point(std::chrono::seconds(expires));
  return {{"token", token}, {"expirationTimestamp", format_rfc3339(tp)}};
}
}  // namespace

asio::awaitable<void> RestHandler::token(Call& c) {
  if (c.ri.verb != "create") {
    co_await reply_status(c, Status(StatusCode::kMethodNotAllowed, "unsupported method"));
    co_return;
  }
  ObjectPtr sa = ctx_.cache->get(c.key());
  if (!sa) {
    co_await reply_status(c, not_found(c.d(), c.ri.name));
    co_return;
  }
  auto body = decode_body(ctx_, c);
  if (!body.ok()) {
    co_await reply_status(c, body.status());
    co_return;
  }
  json req = std::move(body.value());
  json spec = req.value("spec", json::object());
  int64_t expiration = spec.value("expirationSeconds", int64_t{3600});
  if (expiration < 600) {
    Status s = Status::Invalid("TokenRequest.authentication.k8s.io \"" + c.ri.name +
                               "\" is invalid: spec.expirationSeconds: Invalid value: " +
                               std::to_string(expiration) +
                               ": may not specify a duration less than 10 minutes");
    s.add_cause({"FieldValueInvalid", "may not specify a duration less than 10 minutes",
                 "spec.expirationSeconds"});
    co_await reply_status(c, s);
    co_return;
  }
  std::vector<std::string> audiences;
  if (auto a = spec.find("audiences"); a != spec.end() && a->is_array()) {
    for (const auto& x : *a) {
      if (x.is_string()) audiences.push_back(x);
    }
  }
  if (audiences.empty()) audiences.push_back("https://kubernetes.default.svc.cluster.local");
  json sa_obj = parse_cached(sa);
  std::optional<pki::BoundPod> bound;
  if (auto br = spec.find("boundObjectRef"); br != spec.end() && br->is_object()) {
    if (br->value("kind", "") == "Pod") {
      bound = pki::BoundPod{br->value("name", ""), br->value("uid", ""), "", ""};
    }
  }
  json claims = pki::service_account_claims(c.ri.ns, c.ri.name,
                                            sa_obj["metadata"].value("uid", ""), audiences,
                                            expiration, c.now, bound);
  auto signed_token = pki::sign_token(claims, ctx_.pki);
  if (!signed_token.ok()) {
    co_await reply_status(c, signed_token.status());
    co_return;
  }
  req["apiVersion"] = "authentication.k8s.io/v1";
  req["kind"] = "TokenRequest";
  req["metadata"] = {{"name", c.ri.name},
                     {"namespace", c.ri.ns},
                     {"creationTimestamp", nullptr}};
  req["spec"]["audiences"] = audiences;
  req["spec"]["expirationSeconds"] = expiration;
  if (!req["spec"].contains("boundObjectRef")) req["spec"]["boundObjectRef"] = nullptr;
  req["status"] = token_status(*signed_token, c.now + expiration);
  co_await c.ex.reply(json_response(201, req.dump()));
}

asio::awaitable<void> RestHandler::review(Call& c) {
  const api::ResourceDef& d = c.d();
  auto body = decode_body(ctx_, c);
  if (!body.ok()) {
    co_await reply_status(c, body.status());
    co_return;
  }
  json obj = std::move(body.value());
  if (Status s = check_type_meta(obj, d.api_version(), d.kind); !s.ok()) {
    co_await reply_status(c, s);
    co_return;
  }
  const User& u = c.ex.user();
  obj["metadata"] = {{"creationTimestamp", nullptr}};
  if (d.resource == "selfsubjectaccessreviews" || d.resource == "subjectaccessreviews") {
    // Authorization is not enforced yet: every authenticated user may do everything.
    obj["status"] = {{"allowed", true}, {"reason", "skiff does not restrict authenticated users"}};
  } else if (d.resource == "selfsubjectrulesreviews") {
    obj["status"] = {
        {"resourceRules",
         json::array({{{"verbs", {"*"}}, {"apiGroups", {"*"}}, {"resources", {"*"}}}})},
        {"nonResourceRules", json::array({{{"verbs", {"*"}}, {"nonResourceURLs", {"*"}}}})},
        {"incomplete", false}};
  } else if (d.resource == "selfsubjectreviews") {
    obj["status"] = {{"userInfo", {{"username", u.name}, {"groups", u.groups}}}};
  } else if (d.resource == "tokenreviews") {
    std::string tok = obj.value("spec", json::object()).value("token", std::string());
    auto claims = pki::verify_token(tok, ctx_.pki, now_unix());
    if (claims.ok()) {
      std::string sub = claims->value("sub", "");
      obj["status"] = {{"authenticated", true},
                       {"user",
                        {{"username", sub},
                         {"groups", {"system:serviceaccounts", "system:authenticated"}}}}};
    } else {
      obj["status"] = {{"authenticated", false}, {"error", claims.status().message()}};
    }
  } else {
    co_await reply_status(c, Status(StatusCode::kMethodNotAllowed, "unsupported method"));
    co_return;
  }
  co_await c.ex.reply(json_response(201, obj.dump()));
}

}  // namespace skiff::apiserver
