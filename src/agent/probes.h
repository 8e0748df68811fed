// Container probes as the kubelet runs them: liveness, readiness and startup probes with exec,
// httpGet and tcpSocket handlers (grpc probes are reported as errored: not supported here).
//
// A Prober keeps one worker per probe of each running container. A worker probes at once, then
// every periodSeconds; it skips ticks before initialDelaySeconds have passed since the
// container started, and liveness and readiness workers skip ticks until the startup probe (if
// any) has succeeded. A result is published once successThreshold successes or
// failureThreshold failures came in a row. Published results answer status(): whether the
// container has started and is ready, and whether its liveness or startup probe failed (the
// container is then to be killed and restarted). A failed liveness or startup worker holds
// until the container is replaced (a new container id). Readiness starts as not ready;
// liveness as healthy.
//
// httpGet and tcpSocket probes run from the host to the pod IP (or the probe's host); exec
// probes run through an injected exec callback (the runtime's exec_sync).
//
// Thread-safety: Prober is thread-safe. Callbacks run on the prober's pool threads, never with
// the Prober's lock held; they may call status(), update() and remove_*(), but not stop().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/runtime/runtime.h"
#include "common/status.h"
#include "common/time.h"

namespace skiff::client {
class Client;
}

namespace skiff::agent {

enum class ProbeKind { kLiveness, kReadiness, kStartup };
// "Liveness", "Readiness", "Startup", as in the kubelet's event messages.
const char* probe_kind_name(ProbeKind kind);

// One probe of a container spec, with the API's defaults applied.
struct ProbeSpec {
  enum class Handler { kExec, kHttpGet, kTcpSocket, kGrpc };
  Handler handler = Handler::kExec;
  std::vector<std::string> command;  // exec
  // httpGet, tcpSocket: "" means the pod IP.
  std::string host;
  int port = 0;                 // httpGet, tcpSocket, grpc (named ports resolved)
  std::string scheme = "HTTP";  // httpGet: HTTP or HTTPS (certificates are not verified)
  std::string path = "/";       // httpGet
  std::vector<std::pair<std::string, std::string>> http_headers;  // httpGet
  int initial_delay_seconds = 0;
  int period_seconds = 10;
  int timeout_seconds = 1;
  int success_threshold = 1;  // always 1 for liveness and startup probes
  int failure_threshold = 3;
  // The probe's own terminationGracePeriodSeconds (liveness and startup probes).
  std::optional<int64_t> termination_grace_period_seconds;
  // Set when the probe cannot run as written (an unknown named port, no handler): every tick
  // then reports "<Kind> probe errored: <error>".
  std::string error;

  friend bool operator==(const ProbeSpec&, const ProbeSpec&) = default;
};

// container.livenessProbe / readinessProbe / startupProbe of a container spec, or nullopt when
// the container has none.
std::optional<ProbeSpec> parse_probe(const nlohmann::json& container, ProbeKind kind);

enum class ProbeResult { kSuccess, kFailure, kError };
// The outcome of one probe: kError when the probe could not run (its result is discarded, as
// the kubelet does); `message` is the kubelet's text for a failure or error.
struct ProbeOutcome {
  ProbeResult result = ProbeResult::kError;
  std::string message;
};

// GET scheme://host:port/path with the given headers (they replace the defaults
// "User-Agent: kube-probe/1.32" and "Accept: */*"; a "Host" header sets the request's host),
// within `timeout`. Success for a status code in [200, 400); redirects are not followed.
ProbeOutcome http_probe(const std::string& scheme, const std::string& host, int port,
                        const std::string& path,
                        const std::vector<std::pair<std::string, std::string>>& headers,
                        std::chrono::milliseconds timeout);
// Success when a TCP connection to host:port is established within `timeout`.
ProbeOutcome tcp_probe(const std::string& host, int port, std::chrono::milliseconds timeout);

// The result state of one probe worker, without threads or clocks of its own.
// Not thread-safe.
class ProbeState {
 public:
  ProbeState(ProbeKind kind, ProbeSpec spec);
  const ProbeSpec& spec() const { return spec_; }
  ProbeKind kind() const { return kind_; }
  // Whether a tick at `now` probes a container that started at `started_at`: false before
  // initialDelaySeconds, while on hold, and for liveness and readiness until `started` (the
  // startup probe succeeded or there is none); for a startup probe, false once `started`.
  bool should_probe(TimePoint now, TimePoint started_at, bool started) const;
  // Records one outcome (kError ones are ignored); returns true when the published result
  // changed. A published liveness or startup failure puts the state on hold.
  bool record(ProbeResult result);
  // The published result: readiness starts at kFailure, liveness at kSuccess, startup at
  // kError (unknown).
  ProbeResult result() const { return result_; }
  bool on_hold() const { return on_hold_; }

 private:
  ProbeKind kind_;
  ProbeSpec spec_;
  ProbeResult result_;
  ProbeResult last_ = ProbeResult::kError;
  int run_ = 0;
  bool on_hold_ = false;
};

// What a pod worker tells the prober about one running container.
struct ProbeTarget {
  std::string pod_uid;
  std::string pod_namespace;
  std::string pod_name;
  std::string container_name;
  std::string container_id;  // the runtime's id; a new id starts the probes afresh
  std::string pod_ip;
  TimePoint started_at;
  std::optional<ProbeSpec> liveness;
  std::optional<ProbeSpec> readiness;
  std::optional<ProbeSpec> startup;
};

// The probes' verdict on one container.
struct ContainerProbeStatus {
  bool started = false;  // the startup probe succeeded, or there is none
  bool ready = false;    // started, and the readiness probe succeeded or there is none
  // Set once the liveness or startup probe failed failureThreshold times in a row: the
  // container is to be killed ("Container <name> failed liveness probe").
  std::optional<ProbeKind> failed;
  // That probe's terminationGracePeriodSeconds, if it has one.
  std::optional<int64_t> termination_grace_period_seconds;
};

struct ProberOptions {
  // Runs `command` in the container within `timeout` (ContainerRuntime::exec_sync's contract:
  // Timeout when it ran too long). Exec probes error without it.
  std::function<Result<runtime::ExecResult>(const std::string& container_id,
                                            const std::vector<std::string>& command,
                                            std::chrono::milliseconds timeout)>
      exec;
  // Each failed or errored probe, with the kubelet's Unhealthy event message ("Liveness probe
  // failed: ...", "Readiness probe errored: ...").
  std::function<void(const ProbeTarget& target, const std::string& message)> on_unhealthy;
  // A container's status() changed.
  std::function<void(const std::string& pod_uid)> on_change;
  // The clock initialDelaySeconds is measured with (against ProbeTarget::started_at); must
  // outlive the Prober.
  const Clock* clock = &Clock::real();
};

class Prober {
 public:
  explicit Prober(ProberOptions options);
  ~Prober();  // stop()
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  // Starts the probes of a running container, or keeps them when its container id and probe
  // specs are unchanged (a new id or changed specs start them afresh). Ignored after stop().
  void update(const ProbeTarget& target);
  // Stops the probes of one container, or of every container of a pod. Does not wait for a
  // probe in flight.
  void remove_container(const std::string& pod_uid, const std::string& container_name);
  void remove_pod(const std::string& pod_uid);
  // The verdict on container `container_id`; for a container without probe workers (not
  // running, or unknown), started and ready are false.
  ContainerProbeStatus status(const std::string& pod_uid, const std::string& container_name,
                              const std::string& container_id) const;
  // Stops every worker and waits for the probes in flight. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes the kubelet's Warning "Unhealthy" event about container `container_name` of `pod`
// (source kubelet on `node_name`), aggregated as the kubelet's event recorder does: the same
// message for the same container again raises the count and lastTimestamp of one Event rather
// than adding another. Returns the API's error.
Status record_unhealthy_event(client::Client& client, const nlohmann::json& pod,
                              const std::string& node_name, const std::string& container_name,
                              const std::string& message);

}  // namespace skiff::agent
