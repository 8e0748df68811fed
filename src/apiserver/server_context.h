// What the API server's handlers share (private to src/apiserver).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <set>
#include <string>

#include "api/registry.h"
#include "apiserver/http.h"
#include "apiserver/pki/pki.h"
#include "apiserver/watch_cache.h"
#include "common/status.h"
#include "store/store.h"

namespace skiff::apiserver {

struct ServerOptions {
  std::string data_dir = "/var/lib/skiff";
  unsigned port = 6443;
  std::string bind_address = "0.0.0.0";
  std::vector<std::string> tls_sans;
  std::string service_cidr = "10.43.0.0/16";
  std::string cluster_cidr = "10.42.0.0/16";
  bool disable_agent = false;
  int threads = 2;
};

// Hands out Service cluster IPs from the service CIDR and NodePorts from 30000-32767.
// Thread-safe. Addresses in use are read from the watch cache; addresses handed out but not
// yet visible there are held for a while so two concurrent creates never get the same one.
class ServiceAllocator {
 public:
  ServiceAllocator(const std::string& cidr, WatchCache& cache);
  Status valid_cidr() const { return cidr_status_; }
  // The n-th address of the service CIDR ("10.43.0.1" for n = 1).
  std::string nth_ip(uint32_t n) const;
  // Reserves `wanted` (if not empty; Invalid if outside the range or taken) or the next free IP.
  Result<std::string> allocate_ip(const std::string& wanted);
  Result<int> allocate_node_port(int wanted);
  bool in_range(const std::string& ip) const;

 private:
  void collect_used(std::set<uint32_t>* ips, std::set<int>* ports) const;
  WatchCache& cache_;
  Status cidr_status_;
  uint32_t base_ = 0;
  uint32_t size_ = 0;
  std::mutex mu_;
  std::set<uint32_t> pending_ips_;  // guarded by mu_
  std::set<int> pending_ports_;     // guarded by mu_
};

struct ServerContext {
  ServerOptions options;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<api::Registry> registry;
  std::unique_ptr<WatchCache> cache;
  std::unique_ptr<ServiceAllocator> services;
  pki::Pki pki;
};

// Storage key of an object: /registry/<group>/<resource>/[<ns>/]<name>.
std::string object_key(const api::ResourceDef& def, const std::string& ns, const std::string& name);
// Prefix of a resource's keys, optionally within one namespace (with a trailing slash).
std::string resource_prefix(const api::ResourceDef& def, const std::string& ns);

// Awaits a store write; resumes on the calling coroutine's executor.
asio::awaitable<Result<store::WriteResult>> store_write(store::Store& s, store::WriteOp op);

// Small shared helpers.
std::string now_rfc3339();
int64_t now_unix();
std::string new_uid();
std::string random_name_suffix();

}  // namespace skiff::apiserver
