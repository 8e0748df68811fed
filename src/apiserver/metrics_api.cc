#include "apiserver/metrics_api.h"

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "apiserver/responses.h"
#include "apiserver/server_context.h"
#include "apiserver/strategy.h"
#include "common/log.h"
#include "common/time.h"

namespace skiff::apiserver {

using nlohmann::json;

namespace {

struct ContainerUsage {
  std::string name;
  uint64_t nano_cores = 0;
  uint64_t working_set_bytes = 0;
};

struct NodeUsage {
  std::string time;  // of the sample, RFC 3339
  uint64_t nano_cores = 0;
  uint64_t working_set_bytes = 0;
};

struct PodUsage {
  std::string time;
  std::vector<ContainerUsage> containers;
};

// One round of summaries from every node that answered.
struct Snapshot {
  TimePoint fetched;
  std::map<std::string, NodeUsage> nodes;                        // by node name
  std::map<std::pair<std::string, std::string>, PodUsage> pods;  // by (namespace, name)
};

uint64_t u64_at(const json& obj, const char* a, const char* b) {
  if (!obj.is_object() || !obj.contains(a) || !obj[a].is_object()) return 0;
  const json& o = obj[a];
  if (!o.contains(b) || !o[b].is_number()) return 0;
  return o[b].get<uint64_t>();
}

std::string str_at(const json& obj, const char* a, const char* b) {
  if (!obj.is_object() || !obj.contains(a) || !obj[a].is_object()) return "";
  const json& o = obj[a];
  if (!o.contains(b) || !o[b].is_string()) return "";
  return o[b].get<std::string>();
}

bool node_ready(const json& node) {
  if (!node.contains("status") || !node["status"].is_object()) return false;
  const json& st = node["status"];
  if (!st.contains("conditions") || !st["conditions"].is_array()) return false;
  for (const auto& c : st["conditions"]) {
    if (c.is_object() && c.value("type", "") == "Ready") return c.value("status", "") == "True";
  }
  return false;
}

// Adds one node's summary to the snapshot; malformed parts are skipped.
void add_summary(const std::string& node_name, const json& summary, Snapshot* snap) {
  if (!summary.is_object()) return;
  if (summary.contains("node") && summary["node"].is_object()) {
    const json& n = summary["node"];
    NodeUsage u;
    u.time = str_at(n, "cpu", "time");
    u.nano_cores = u64_at(n, "cpu", "usageNanoCores");
    u.working_set_bytes = u64_at(n, "memory", "workingSetBytes");
    snap->nodes[node_name] = std::move(u);
  }
  if (!summary.contains("pods") || !summary["pods"].is_array()) return;
  for (const auto& p : summary["pods"]) {
    if (!p.is_object() || !p.contains("podRef") || !p["podRef"].is_object()) continue;
    const json& ref = p["podRef"];
    std::string ns = ref.value("namespace", "");
    std::string name = ref.value("name", "");
    if (ns.empty() || name.empty()) continue;
    PodUsage pu;
    pu.time = str_at(p, "cpu", "time");
    if (p.contains("containers") && p["containers"].is_array()) {
      for (const auto& c : p["containers"]) {
        if (!c.is_object() || !c.contains("name") || !c["name"].is_string()) continue;
        ContainerUsage cu;
        cu.name = c["name"].get<std::string>();
        cu.nano_cores = u64_at(c, "cpu", "usageNanoCores");
        cu.working_set_bytes = u64_at(c, "memory", "workingSetBytes");
        if (pu.time.empty()) pu.time = str_at(c, "cpu", "time");
        pu.containers.push_back(std::move(cu));
      }
    }
    if (pu.containers.empty()) continue;
    snap->pods[{ns, name}] = std::move(pu);
  }
}

std::string cpu_quantity(uint64_t nano_cores) { return std::to_string(nano_cores) + "n"; }
std::string memory_quantity(uint64_t bytes) { return std::to_string(bytes / 1024) + "Ki"; }

json labels_of(const CachedObject& o) {
  json labels = json::object();
  for (const auto& [k, v] : o.labels) labels[k] = v;
  return labels;
}

std::string window_text(std::chrono::milliseconds ttl) {
  auto s = std::chrono::duration_cast<std::chrono::seconds>(ttl).count();
  return std::to_string(s < 1 ? 1 : s) + "s";
}

json node_metrics(const CachedObject& node, const NodeUsage& u, const std::string& window) {
  json meta = {{"name", node.name}, {"creationTimestamp", format_rfc3339(now())}};
  if (!node.labels.empty()) meta["labels"] = labels_of(node);
  return {
      {"kind", "NodeMetrics"},
      {"apiVersion", "metrics.k8s.io/v1beta1"},
      {"metadata", std::move(meta)},
      {"timestamp", u.time.empty() ? format_rfc3339(now()) : u.time},
      {"window", window},
      {"usage",
       {{"cpu", cpu_quantity(u.nano_cores)}, {"memory", memory_quantity(u.working_set_bytes)}}}};
}

json pod_metrics(const CachedObject& pod, const PodUsage& u, const std::string& window) {
  json meta = {
      {"name", pod.name}, {"namespace", pod.ns}, {"creationTimestamp", format_rfc3339(now())}};
  if (!pod.labels.empty()) meta["labels"] = labels_of(pod);
  json containers = json::array();
  for (const auto& c : u.containers) {
    containers.push_back({{"name", c.name},
                          {"usage",
                           {{"cpu", cpu_quantity(c.nano_cores)},
                            {"memory", memory_quantity(c.working_set_bytes)}}}});
  }
  return {{"kind", "PodMetrics"},
          {"apiVersion", "metrics.k8s.io/v1beta1"},
          {"metadata", std::move(meta)},
          {"timestamp", u.time.empty() ? format_rfc3339(now()) : u.time},
          {"window", window},
          {"containers", std::move(containers)}};
}

// metrics-server's Table: Name, CPU, Memory, Window (sums over containers for pods).
json metrics_table(const std::vector<json>& items, bool pods) {
  json columns = json::array({{{"name", "Name"},
                               {"type", "string"},
                               {"format", "name"},
                               {"description", "Name"},
                               {"priority", 0}},
                              {{"name", "CPU"},
                               {"type", "string"},
                               {"format", ""},
                               {"description", "CPU usage"},
                               {"priority", 0}},
                              {{"name", "Memory"},
                               {"type", "string"},
                               {"format", ""},
                               {"description", "Memory usage"},
                               {"priority", 0}},
                              {{"name", "Window"},
                               {"type", "string"},
                               {"format", ""},
                               {"description", "Interval the usage is averaged over"},
                               {"priority", 0}}});
  json rows = json::array();
  for (const auto& m : items) {
    uint64_t cpu = 0, mem_ki = 0;
    auto add = [&](const json& usage) {
      cpu += std::stoull(usage.value("cpu", "0n"));
      mem_ki += std::stoull(usage.value("memory", "0Ki"));
    };
    if (pods) {
      for (const auto& c : m["containers"]) add(c["usage"]);
    } else {
      add(m["usage"]);
    }
    json partial = {{"kind", "PartialObjectMetadata"},
                    {"apiVersion", "meta.k8s.io/v1"},
                    {"metadata", m["metadata"]}};
    rows.push_back(
        {{"cells", json::array({m["metadata"]["name"], std::to_string(cpu / 1'000'000) + "m",
                                std::to_string(mem_ki) + "Ki", m["window"]})},
         {"object", std::move(partial)}});
  }
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", json::object()},
          {"columnDefinitions", std::move(columns)},
          {"rows", std::move(rows)}};
}

Response json_response(const json& body) {
  Response r;
  r.body = body.dump();
  return r;
}

}  // namespace

int kubelet_port(const nlohmann::json& node) {
  if (!node.is_object() || !node.contains("status") || !node["status"].is_object()) return 0;
  const json& st = node["status"];
  if (!st.contains("daemonEndpoints") || !st["daemonEndpoints"].is_object()) return 0;
  const json& de = st["daemonEndpoints"];
  if (!de.contains("kubeletEndpoint") || !de["kubeletEndpoint"].is_object()) return 0;
  const json& ke = de["kubeletEndpoint"];
  if (!ke.contains("Port") || !ke["Port"].is_number_integer()) return 0;
  return ke["Port"].get<int>();
}

bool simulated(const json& node) {
  if (!node.contains("status") || !node["status"].is_object()) return false;
  return str_at(node["status"], "nodeInfo", "containerRuntimeVersion").rfind("sim://", 0) == 0;
}

struct MetricsApi::Impl {
  Impl(ServerContext& c, SummaryFetcher f, Options o) : ctx(c), fetcher(std::move(f)), options(o) {}

  // One round of fetches, shared by the coroutines doing it; lives on one executor.
  struct Round {
    explicit Round(asio::any_io_executor ex) : done(ex) {}
    size_t pending = 0;
    std::vector<std::pair<std::string, Result<std::string>>> results;
    asio::steady_timer done;  // cancelled when the last fetch ends
  };

  // The current snapshot, fetching a new round when the cached one is older than cache_ttl.
  asio::awaitable<std::shared_ptr<const Snapshot>> snapshot();
  asio::awaitable<void> fetch_one(std::shared_ptr<Round> round, std::string node);

  // Constant after construction.
  ServerContext& ctx;
  const SummaryFetcher fetcher;
  const Options options;

  std::mutex mu;
  std::shared_ptr<const Snapshot> current;  // guarded by mu
};

asio::awaitable<void> MetricsApi::Impl::fetch_one(std::shared_ptr<Round> round, std::string node) {
  Result<std::string> body = Status::Internal("not fetched");
  try {
    body = co_await fetcher(node);
  } catch (const std::exception& e) {
    body = Status::Internal(e.what());
  }
  round->results.emplace_back(std::move(node), std::move(body));
  if (--round->pending == 0) round->done.cancel();
}

asio::awaitable<std::shared_ptr<const Snapshot>> MetricsApi::Impl::snapshot() {
  {
    std::lock_guard<std::mutex> l(mu);
    if (current && now() - current->fetched < options.cache_ttl) co_return current;
  }
  auto snap = std::make_shared<Snapshot>();
  snap->fetched = now();
  auto executor = co_await asio::this_coro::executor;
  auto round = std::make_shared<Round>(executor);
  std::vector<std::string> names;
  for (const auto& o : ctx.cache->list("/registry/core/nodes/", Matcher(), 0).items) {
    json node = json::parse(*o->json, nullptr, false);
    if (!node.is_object() || !node_ready(node) || kubelet_port(node) <= 0 || simulated(node)) {
      continue;
    }
    names.push_back(o->name);
  }
  // Every node at once; the round (results and timer) is shared with the fetches, which may
  // outlive this request when they take longer than fetch_timeout.
  round->pending = names.size();
  for (const auto& name : names) {
    asio::co_spawn(executor, fetch_one(round, name), asio::detached);
  }
  if (round->pending > 0) {
    round->done.expires_after(options.fetch_timeout);
    boost::system::error_code ec;
    co_await round->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  for (const auto& [name, body] : round->results) {
    if (!body.ok()) {
      SKIFF_LOG(Warn) << "metrics: no summary from node " << name << ": "
                      << body.status().to_string();
      continue;
    }
    json summary = json::parse(*body, nullptr, false);
    if (summary.is_discarded()) {
      SKIFF_LOG(Warn) << "metrics: node " << name << " sent a summary that is not JSON";
      continue;
    }
    add_summary(name, summary, snap.get());
  }
  if (round->pending > 0) {
    SKIFF_LOG(Warn) << "metrics: " << round->pending << " node(s) did not answer within "
                    << options.fetch_timeout.count() << " ms";
  }
  std::lock_guard<std::mutex> l(mu);
  current = snap;
  co_return snap;
}

MetricsApi::MetricsApi(ServerContext& ctx, SummaryFetcher fetcher, Options options)
    : impl_(std::make_unique<Impl>(ctx, std::move(fetcher), options)) {}

MetricsApi::~MetricsApi() = default;

void MetricsApi::register_resources(api::Registry& registry) {
  for (bool pods : {false, true}) {
    auto def = std::make_shared<api::ResourceDef>();
    def->group = kGroup;
    def->version = kVersion;
    def->kind = pods ? "PodMetrics" : "NodeMetrics";
    def->list_kind = def->kind + "List";
    def->resource = pods ? "pods" : "nodes";
    def->scope = pods ? api::Scope::kNamespaced : api::Scope::kCluster;
    def->verbs = {"get", "list"};
    def->stored = false;
    registry.add(std::move(def));
  }
}

asio::awaitable<void> MetricsApi::serve(Exchange& ex, const RequestInfo& ri) {
  Impl& d = *impl_;
  const bool pods = ri.resource == "pods";
  if (ri.version != kVersion || (ri.resource != "nodes" && !pods) || !ri.subresource.empty() ||
      (!pods && !ri.ns.empty())) {
    co_await ex.reply(
        status_response(Status::NotFound("the server could not find the requested resource")));
    co_return;
  }
  if (ri.verb != "get" && ri.verb != "list") {
    co_await ex.reply(
        status_response(Status(StatusCode::kMethodNotAllowed,
                               "the server does not allow this method on the requested resource")));
    co_return;
  }
  auto core = d.ctx.registry->find("", "v1", ri.resource);
  if (!core) {
    co_await ex.reply(status_response(Status::Internal("no core/v1 " + ri.resource)));
    co_return;
  }
  Matcher matcher;
  if (ri.verb == "list") {
    const Query& q = ex.query();
    auto m = make_matcher(*core, q.get("labelSelector"), q.get("fieldSelector"));
    if (!m.ok()) {
      co_await ex.reply(status_response(m.status()));
      co_return;
    }
    matcher = std::move(*m);
  }

  std::shared_ptr<const Snapshot> snap = co_await d.snapshot();

  const std::string window = window_text(d.options.cache_ttl);
  const std::string kind = pods ? "PodMetrics" : "NodeMetrics";
  auto metrics_of = [&](const CachedObject& o) -> std::optional<json> {
    if (pods) {
      auto it = snap->pods.find({o.ns, o.name});
      if (it == snap->pods.end()) return std::nullopt;
      return pod_metrics(o, it->second, window);
    }
    auto it = snap->nodes.find(o.name);
    if (it == snap->nodes.end()) return std::nullopt;
    return node_metrics(o, it->second, window);
  };

  const bool table = wants_table(ex.header("Accept"));
  if (ri.verb == "get") {
    ObjectPtr obj = d.ctx.cache->get(object_key(*core, ri.ns, ri.name));
    if (!obj) {
      StatusDetails details{ri.name, "", ri.resource};
      Response r = status_response(Status::NotFound(ri.resource + " \"" + ri.name + "\" not found"),
                                   details);
      co_await ex.reply(std::move(r));
      co_return;
    }
    auto m = metrics_of(*obj);
    if (!m) {
      std::string resource = pods ? "podmetrics" : "nodemetrics";
      std::string shown = pods ? ri.ns + "/" + ri.name : ri.name;
      StatusDetails details{shown, kGroup, resource};
      Response r = status_response(
          Status::NotFound(resource + "." + kGroup + " \"" + shown + "\" not found"), details);
      co_await ex.reply(std::move(r));
      co_return;
    }
    if (table) {
      std::vector<json> one;
      one.push_back(std::move(*m));
      Response r = json_response(metrics_table(one, pods));
      r.content_type = kTableContentType;
      co_await ex.reply(std::move(r));
      co_return;
    }
    co_await ex.reply(json_response(*m));
    co_return;
  }

  WatchCache::ListResult objects = d.ctx.cache->list(resource_prefix(*core, ri.ns), matcher, 0);
  std::vector<json> items;
  for (const auto& o : objects.items) {
    if (auto m = metrics_of(*o)) items.push_back(std::move(*m));
  }
  if (table) {
    Response r = json_response(metrics_table(items, pods));
    r.content_type = kTableContentType;
    co_await ex.reply(std::move(r));
    co_return;
  }
  json list = {{"kind", kind + "List"},
               {"apiVersion", std::string(kGroup) + "/" + kVersion},
               {"metadata", json::object()},
               {"items", std::move(items)}};
  co_await ex.reply(json_response(list));
}

}  // namespace skiff::apiserver
