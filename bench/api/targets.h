// The two servers the API benchmark compares, as the requests each one gets for the same work:
// skiff through its Kubernetes API (HTTPS, client certificate, admission, store), etcd 3.4
// through its v3 JSON gateway (plain HTTP on loopback), with keys laid out as Kubernetes lays
// them out in etcd (/registry/configmaps/<namespace>/<name>).
//
// Thread-safety: Target objects are immutable after construction.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http_client.h"

namespace skiff::bench {

// The ~1 KiB ConfigMap both servers store: its JSON as a client would POST it. `seq` makes
// successive updates of one object differ.
std::string configmap_json(std::string_view ns, std::string_view name, int64_t seq);

// How one line of a watch stream reads.
struct WatchLine {
  enum Kind { kOther, kCreated, kEvents, kError } kind = kOther;
  int events = 0;  // for kEvents: how many changes the line carries
};

class Target {
 public:
  virtual ~Target() = default;
  virtual std::string name() const = 0;
  virtual Endpoint endpoint() const = 0;

  // Answers 200 once the server serves requests.
  virtual Request ready() const = 0;
  // Requests to run (and expect success from) before the benchmark, e.g. namespaces.
  virtual std::vector<Request> setup(const std::vector<std::string>& namespaces) const = 0;

  virtual Request create(std::string_view ns, std::string_view name) const = 0;
  virtual Request get(std::string_view ns, std::string_view name) const = 0;
  virtual Request list(std::string_view ns) const = 0;
  // Replaces the object with configmap_json(ns, name, seq).
  virtual Request update(std::string_view ns, std::string_view name, int64_t seq) const = 0;
  // Streams every change to objects in ns after revision.
  virtual Request watch(std::string_view ns, int64_t after_revision) const = 0;

  // Whether a response to create/get/update means success.
  virtual bool created(const Response& res) const = 0;
  virtual bool found(const Response& res) const = 0;
  virtual bool updated(const Response& res) const = 0;
  // The number of objects in a list response, or -1 if it is not one.
  virtual int64_t listed(const Response& res) const = 0;
  // The store revision a write response reports, or -1.
  virtual int64_t write_revision(const Response& res) const = 0;

  // A watch is established when its response header arrives (skiff) or when the server
  // confirms it with a kCreated line (etcd).
  virtual bool watch_open_at_header() const = 0;
  virtual WatchLine classify(std::string_view line) const = 0;
};

std::unique_ptr<Target> make_skiff_target(Endpoint ep);
std::unique_ptr<Target> make_etcd_target(Endpoint ep);

}  // namespace skiff::bench
