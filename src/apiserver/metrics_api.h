// The resource metrics API, metrics.k8s.io/v1beta1, as metrics-server serves it (and so
// `kubectl top`): NodeMetrics (nodes, cluster-scoped) and PodMetrics (pods, namespaced), read
// only (get and list, with labelSelector and fieldSelector).
//
// The figures come from each Ready node's kubelet summary (GET /stats/summary), fetched
// through a SummaryFetcher, from all nodes at once, and cached for Options::cache_ttl so that
// a burst of requests costs one round of fetches. Simulated nodes (containerRuntimeVersion
// sim://...: they run no containers and have no kubelet), nodes without a kubelet endpoint
// port, and nodes whose fetch fails or takes longer than Options::fetch_timeout are left out,
// as metrics-server leaves out nodes it cannot scrape.
//
// CPU is reported in nanocores ("1234567n"), memory (the working set) in Ki, as
// metrics-server's quantities.
//
// Thread-safety: serve() may run concurrently on any number of connections. Fetches run as
// coroutines on the executor of the request that started them; the MetricsApi must outlive
// the io_contexts that run them.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>

#include "api/registry.h"
#include "apiserver/http.h"
#include "apiserver/request_info.h"
#include "common/status.h"

namespace skiff::apiserver {

struct ServerContext;

class MetricsApi {
 public:
  static constexpr const char* kGroup = "metrics.k8s.io";
  static constexpr const char* kVersion = "v1beta1";

  // Returns the body of GET /stats/summary from the kubelet of node `node` (its name), on
  // the calling coroutine's executor (KubeletClient::get).
  using SummaryFetcher = std::function<asio::awaitable<Result<std::string>>(std::string node)>;

  struct Options {
    std::chrono::milliseconds cache_ttl{std::chrono::seconds(10)};
    std::chrono::milliseconds fetch_timeout{std::chrono::seconds(15)};
  };

  // `ctx` must outlive the MetricsApi.
  MetricsApi(ServerContext& ctx, SummaryFetcher fetcher, Options options);
  ~MetricsApi();
  MetricsApi(const MetricsApi&) = delete;
  MetricsApi& operator=(const MetricsApi&) = delete;

  // Adds nodes (NodeMetrics) and pods (PodMetrics) of metrics.k8s.io/v1beta1 to the registry,
  // as request-only resources, so that discovery (aggregated and legacy) and OpenAPI list
  // them.
  static void register_resources(api::Registry& registry);

  // Answers a resource request of the group (ri.group == kGroup): 404 for unknown versions
  // and resources, 405 for verbs other than get and list, 400 for a bad selector, 404
  // NotFound for a node or pod without metrics.
  asio::awaitable<void> serve(Exchange& ex, const RequestInfo& ri);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The kubelet endpoint port a Node advertises (status.daemonEndpoints.kubeletEndpoint.Port);
// 0 when it has none.
int kubelet_port(const nlohmann::json& node);

}  // namespace skiff::apiserver
