// DnsServer: the cluster DNS. An authoritative server for the cluster domain (see zone.h for
// the records) over UDP and TCP on one address and port, answering from the shared informers'
// caches of Services, EndpointSlices and (for verified pod records) Pods. Names outside the
// cluster domain are forwarded to upstream resolvers (by default those of /etc/resolv.conf),
// or refused when there are none.
//
// Protocol behaviour:
//  - Queries are answered with the question echoed, AA set for cluster names, RD copied, and
//    RA set when upstreams are known.
//  - A packet shorter than a header, or a response, is ignored. Anything else that cannot be
//    parsed gets FORMERR; a query with other than one question gets FORMERR; an opcode other
//    than QUERY gets NOTIMP; a class other than IN (or ANY) and zone transfers get REFUSED.
//  - EDNS0: a client's OPT record raises the UDP answer limit to its payload size (at most
//    4096); the answer carries an OPT of its own. An EDNS version above 0 gets BADVERS.
//  - A UDP answer larger than the limit (512 bytes without EDNS0) is cut to whole records and
//    has TC set, so the client retries over TCP; TCP answers may be up to 65535 bytes.
//  - Until the informers have synced, cluster names get SERVFAIL (never a false NXDOMAIN).
//
// Thread-safety: every method is thread-safe. The server runs on one thread of its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "client/informer.h"
#include "common/status.h"
#include "dns/zone.h"

namespace skiff::dns {

struct DnsOptions {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 address to listen on
  uint16_t port = 53;                 // 0: a free port, the same for UDP and TCP
  std::string cluster_domain = "cluster.local";
  uint32_t ttl = 5;
  PodRecords pods = PodRecords::kVerified;
  // Where other names go ("10.0.0.2" or "10.0.0.2:5353"). Empty: the nameservers of
  // resolv_conf (when that is not empty). No upstream at all: such queries are REFUSED.
  std::vector<std::string> upstreams;
  std::string resolv_conf = "/etc/resolv.conf";
  std::chrono::milliseconds upstream_timeout{2000};
  std::chrono::milliseconds tcp_idle_timeout{10000};
  size_t max_tcp_connections = 256;
};

class DnsServer {
 public:
  // `informers` must outlive the server.
  DnsServer(client::InformerFactory& informers, DnsOptions options);
  ~DnsServer();  // stop()
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // Starts the informers it needs (if not running), binds UDP and TCP and starts serving.
  // Returns BadRequest for an address that does not parse, Unavailable when the port cannot be
  // bound. Calling it again after success does nothing.
  Status start();
  // Stops serving and closes the sockets. Idempotent; a stopped server stays stopped.
  void stop();
  // The port bound (useful with port 0); 0 before start().
  uint16_t port() const;
  // The upstream resolvers in use, as "ip:port".
  std::vector<std::string> upstreams() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The nameservers listed in a resolv.conf text, as "ip:53".
std::vector<std::string> parse_resolv_conf(const std::string& text);

}  // namespace skiff::dns
