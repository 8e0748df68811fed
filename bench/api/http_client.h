// Keep-alive HTTP/1.1 client connections for the API benchmark's load generator, over plain
// TCP (etcd's JSON gateway) or TLS with a client certificate (skiff).
//
// Threading: every connection belongs to one io_context that exactly one thread runs; all
// calls on a connection, and all its callbacks, happen on that thread. Callbacks keep the
// connection alive while an operation is in flight.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace skiff::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using ErrorCode = beast::error_code;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Where a server listens and how to reach it.
struct Endpoint {
  std::string address = "127.0.0.1";
  unsigned short port = 0;
  asio::ssl::context* tls = nullptr;  // null: plain HTTP; else TLS with this client context
};

class Connection {
 public:
  using OnResponse = std::function<void(ErrorCode, Response&)>;
  // The stream's response header arrived (ec set if it did not).
  using OnOpen = std::function<void(ErrorCode, unsigned status)>;
  // One newline-terminated line of a streamed body, without the newline.
  using OnLine = std::function<void(std::string_view line)>;
  // The stream ended: the server finished the body (ec clear) or the connection failed.
  using OnEnd = std::function<void(ErrorCode)>;

  virtual ~Connection() = default;

  // Sends req and reads the whole response (no body size limit). One operation at a time.
  virtual void request(Request req, OnResponse done) = 0;
  // Sends req and reads the response as a stream of lines (a chunked body such as a watch).
  // The connection is used by the stream until it ends.
  virtual void stream(Request req, OnOpen on_open, OnLine on_line, OnEnd on_end) = 0;
};

// Opens a connection to ep (TCP connect, then the TLS handshake if ep.tls is set) and calls
// done with it, or with the error that stopped it.
void connect(asio::io_context& io, const Endpoint& ep,
             std::function<void(ErrorCode, std::shared_ptr<Connection>)> done);

}  // namespace skiff::bench
