// The node side of `kubectl port-forward`: the portforward.k8s.io protocol over SPDY/3.1.
//
// kubectl opens `GET .../pods/{pod}/portforward` with `Upgrade: websocket` and
// `Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io` (KEP-4006). After the upgrade the
// WebSocket binary messages carry one SPDY/3.1 byte stream; message boundaries mean nothing.
// For each local connection kubectl opens two SPDY streams with the same `requestid` header:
// `streamtype: error` and `streamtype: data`, both with `port: <n>`. The session connects to
// that port inside the pod (through the injected dial function) and copies bytes both ways on
// the data stream; a failure is written as text on the error stream, which is then closed.
// SPDY/3.1 flow control: the session returns window (WINDOW_UPDATE, per stream and for the
// session) as it writes client data to the pod, and holds its own sending to the client's
// windows (64 KiB initial, SETTINGS, WINDOW_UPDATE) once the client shows it does flow control
// by sending an initial window size (SETTINGS) or WINDOW_UPDATE. kubectl's SPDY library sends
// neither and ignores windows, so for it the session sends freely; limit_unsent_bytes and
// limit_client_bytes bound what it buffers in each direction instead.
//
// The HTTP/WebSocket layer owns the connection; a Session only turns bytes into bytes:
//   - the server feeds every received payload to on_client_bytes() (WebSocket messages, or
//     the raw bytes of a plain SPDY/3.1 connection: the framing is the same);
//   - the session calls send_to_client(bytes) with data to send as a binary message;
//   - when finished() becomes true (on_finished is called), the server closes the WebSocket;
//     when the WebSocket closes first, the server calls close() (or destroys the session).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace skiff::agent::portforward {

// The subprotocol to accept in Sec-WebSocket-Protocol for the WebSocket upgrade.
inline constexpr char kWebSocketSubprotocol[] = "SPDY/3.1+portforward.k8s.io";

// One port-forward connection (one kubectl port-forward process).
//
// Thread-safe: on_client_bytes(), close() and finished() may be called from any thread.
// The session owns one I/O thread that parses client frames, dials, and pumps the dialled
// sockets; on_client_bytes() only queues bytes and never blocks on the network.
class Session {
 public:
  // Called with bytes to send to the client as one WebSocket binary message. Calls are
  // serialized (never concurrent) and made in order from the session's I/O thread; the
  // callback must not block for long (queue the write) and must not call close() and wait.
  // Outgoing data is bounded by the client's SPDY flow-control windows.
  using SendFn = std::function<void(std::string)>;
  // Opens a TCP connection to `port` inside the pod and returns the connected socket, which
  // the session then owns (and closes). An error status is reported to kubectl on the
  // stream pair's error stream with its message. Called on the session's I/O thread.
  using DialFn = std::function<Result<int>(uint16_t port)>;
  // Called once, from the I/O thread, when the session ends on its own: the client sent
  // GOAWAY, or its bytes were not valid SPDY (a GOAWAY with PROTOCOL_ERROR is sent first).
  // Not called when the session ends through close().
  using FinishedFn = std::function<void()>;

  Session(SendFn send_to_client, DialFn dial, FinishedFn on_finished = nullptr);
  // Same as close().
  ~Session();

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Feeds bytes received from the client (any split of the SPDY byte stream). Ignored once
  // the session is finished. Returns whether the caller may go on reading from the client:
  // false while more than the limit_client_bytes() bound is held for pods that do not read
  // it yet (the caller then waits for the drained callback before it reads again).
  bool on_client_bytes(std::string_view bytes);

  // Ends the session: closes all dialled sockets and stops the I/O thread. After it returns
  // (when called from another thread than the session's own), send_to_client and
  // on_finished are not called any more. Idempotent.
  void close();

  // True once the session has ended (on its own or through close()).
  bool finished() const;

  // Optional backpressure towards the client. kubectl's SPDY library does no flow control,
  // so without it the session reads from pods as fast as they write and send_to_client's
  // queue can grow without bound on a slow link. After limit_unsent_bytes(n), the session
  // stops reading from pods while more than `n` bytes handed to send_to_client have not been
  // confirmed with bytes_sent(); the server calls bytes_sent(size) when a message is written.
  void limit_unsent_bytes(size_t limit);
  void bytes_sent(size_t bytes);

  // Backpressure towards pods. kubectl does no flow control either when it sends, so bytes
  // for a pod that reads slowly pile up. After limit_client_bytes(n, drained), once more than
  // `n` bytes fed with on_client_bytes() are not yet written to pods, on_client_bytes()
  // returns false, and `drained` is called (from the session's I/O thread; it must not
  // block) once they are `n` or fewer again.
  void limit_client_bytes(size_t limit, std::function<void()> drained);

  // Bytes held by the session now and the most it ever held (for tests and diagnostics):
  //   to_client  handed to send_to_client and not yet confirmed with bytes_sent() (counted
  //              once limit_unsent_bytes() was called)
  //   to_pods    fed with on_client_bytes() and not yet written to a pod
  struct Buffered {
    size_t to_client = 0;
    size_t to_pods = 0;
    size_t peak_to_client = 0;
    size_t peak_to_pods = 0;
  };
  Buffered buffered() const;

  // Number of stream pairs whose dialled connection is open (for tests and diagnostics).
  size_t open_connections() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Opens a TCP connection to 127.0.0.1:`port` inside the network namespace at `netns_path`
// (a bind-mounted namespace file, e.g. a pod sandbox's `net`). The socket is created on a
// short-lived thread that joins the namespace, so the caller's thread stays where it is.
// Returns the connected, blocking socket (close-on-exec). Unavailable with the errno text
// (e.g. "connection refused") when nothing listens on the port; Internal when the namespace
// cannot be entered.
Result<int> dial_in_netns(const std::string& netns_path, uint16_t port);

// Opens a TCP connection to 127.0.0.1:`port` in the caller's own network namespace.
Result<int> dial_localhost(uint16_t port);

}  // namespace skiff::agent::portforward
