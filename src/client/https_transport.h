// HttpsTransport: the Transport of components outside `skiff server` (a remote `skiff agent`,
// `skiff` subcommands): HTTP/1.1 over TLS to the API server.
//
// The server's certificate must chain to the configured CA and name the server's host (DNS
// name or IP address, as in the URL). The client proves who it is with a client certificate
// or a bearer token (or both).
//
// round_trip() uses a small pool of keep-alive connections shared by every thread; a request
// on a pooled connection the server has meanwhile closed is sent again once on a fresh one.
// Each stream() (a watch) gets its own connection and thread; Watch::stop() closes that
// connection, so it returns promptly even while the server is silent.
//
// Errors: Unavailable when the server cannot be reached, the TLS handshake fails (including
// an untrusted certificate or a wrong host name), the connection breaks or a timeout passes.
//
// Thread-safety: thread-safe. Watches may outlive the transport that made them.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "client/client.h"

namespace skiff::client {

struct HttpsOptions {
  std::string server;           // "https://host:port" (IPv6 hosts in brackets), optional path
  std::string ca_pem;           // CA certificates to trust; empty: the system's trust store
  std::string client_cert_pem;  // with client_key_pem: authenticate with a certificate
  std::string client_key_pem;
  std::string bearer_token;          // non-empty: sent as "Authorization: Bearer <token>"
  std::string user_agent = "skiff";  // for requests that do not name their own
  std::chrono::milliseconds connect_timeout{10'000};  // TCP connect plus TLS handshake
  std::chrono::milliseconds request_timeout{60'000};  // a whole round trip; a stream's reply
                                                      // headers (its body may take forever)
  size_t max_idle_connections = 4;
};

class HttpsTransport final : public Transport {
 public:
  // Invalid for a URL that is not https://host[:port][/path], unparsable PEM, a key that does
  // not match its certificate, or a certificate without its key.
  static Result<std::shared_ptr<HttpsTransport>> create(HttpsOptions options);
  // A transport configured by a kubeconfig file: the cluster and user of its current context
  // (or the first ones listed): server, certificate-authority(-data),
  // client-certificate(-data), client-key(-data), token, tokenFile. Relative file names are
  // relative to the kubeconfig's directory. NotFound if the file does not exist; Invalid if
  // it lacks what a transport needs.
  static Result<std::shared_ptr<HttpsTransport>> from_kubeconfig(const std::string& path);
  // The options from_kubeconfig would use, to adjust before create().
  static Result<HttpsOptions> options_from_kubeconfig(const std::string& path);

  ~HttpsTransport() override;

  Result<Reply> round_trip(const Request& req) override;
  Result<std::unique_ptr<Watch>> stream(const Request& req,
                                        std::function<void(std::string_view)> on_data,
                                        std::function<void(const Status&)> on_end) override;

  const HttpsOptions& options() const;
  // Connections waiting in the pool (tests).
  size_t idle_connections() const;

  struct Impl;

 private:
  explicit HttpsTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::client
