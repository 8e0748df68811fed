// The cluster zone: how names under the cluster domain map onto Services, EndpointSlices and
// Pods, following the Kubernetes DNS-based service discovery specification as CoreDNS's
// kubernetes plugin implements it.
//
//   <svc>.<ns>.svc.<zone>            A: the ClusterIP; for a headless service, the addresses of
//                                    its ready endpoints (NXDOMAIN when it has none).
//                                    SRV: one record per port (headless: per endpoint and
//                                    port). ExternalName: a CNAME to spec.externalName.
//   _<port>._<proto>.<svc>.<ns>.svc.<zone>
//                                    SRV for the named port (NXDOMAIN for an unknown one).
//   <ep>.<svc>.<ns>.svc.<zone>       A: the endpoint whose hostname is <ep>, or whose address
//                                    written with dashes is <ep> ("10-42-0-5").
//   <a-b-c-d>.<ns>.pod.<zone>        A: the pod address (verified: only for a pod with that
//                                    address in <ns>).
//
// A name that exists but has no record of the type asked answers NOERROR with no answer
// (NODATA); a name that does not exist answers NXDOMAIN. Both carry the zone's SOA in the
// authority section, whose minimum is the TTL, so resolvers cache negative answers as long as
// positive ones. Every record has the configured TTL (5 seconds by default).
//
// Thread-safety: resolve() is safe to call concurrently when the Catalog is.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "client/client.h"
#include "dns/message.h"

namespace skiff::dns {

// The objects the zone is built from. Objects returned must not be changed.
class Catalog {
 public:
  virtual ~Catalog() = default;
  // The Service, or null.
  virtual client::ObjectPtr service(const std::string& ns, const std::string& name) const = 0;
  // Whether the namespace holds any Service (the zone knows namespaces by their services).
  virtual bool namespace_has_services(const std::string& ns) const = 0;
  // The EndpointSlices labelled kubernetes.io/service-name=<service> in ns.
  virtual std::vector<client::ObjectPtr> endpoint_slices(const std::string& ns,
                                                         const std::string& service) const = 0;
  // Whether a pod in ns has this IP. Only asked for PodRecords::kVerified.
  virtual bool pod_has_ip(const std::string& ns, const std::string& ip) const = 0;
};

// Pod A records (<a-b-c-d>.<ns>.pod.<zone>), as CoreDNS's `pods` option.
enum class PodRecords {
  kDisabled,  // NXDOMAIN
  kInsecure,  // answer the address in the name, whatever exists
  kVerified,  // answer only for a pod with that address in that namespace
};

struct ZoneOptions {
  std::string cluster_domain = "cluster.local";
  uint32_t ttl = 5;
  PodRecords pods = PodRecords::kVerified;
  uint32_t soa_serial = 1;
};

struct Resolution {
  bool in_zone = false;  // false: the name is outside the cluster domain; nothing else is set
  uint8_t rcode = kNoError;
  std::vector<Record> answers;
  std::vector<Record> authority;
  std::vector<Record> additional;
};

Resolution resolve(const Catalog& catalog, const Question& question, const ZoneOptions& options);

}  // namespace skiff::dns
