#include "http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>

namespace skiff::bench {

namespace {

using tcp = asio::ip::tcp;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

template <class S>
class BasicConnection final : public Connection,
                              public std::enable_shared_from_this<BasicConnection<S>> {
 public:
  static constexpr bool kTls = std::is_same_v<S, TlsStream>;

  BasicConnection(asio::io_context& io, asio::ssl::context* tls) : stream_(make_stream(io, tls)) {}

  void open(const tcp::endpoint& target,
            std::function<void(ErrorCode, std::shared_ptr<Connection>)> done) {
    auto self = this->shared_from_this();
    beast::get_lowest_layer(stream_).async_connect(target, [self, done](ErrorCode ec) {
      if (ec) return done(ec, nullptr);
      beast::get_lowest_layer(self->stream_).socket().set_option(tcp::no_delay(true), ec);
      if constexpr (kTls) {
        self->stream_.async_handshake(asio::ssl::stream_base::client, [self, done](ErrorCode ec) {
          if (ec) return done(ec, nullptr);
          done({}, self);
        });
      } else {
        done({}, self);
      }
    });
  }

  void request(Request req, OnResponse done) override {
    req_ = std::move(req);
    auto self = this->shared_from_this();
    http::async_write(stream_, req_, [self, done](ErrorCode ec, size_t) {
      if (ec) return self->fail(ec, done);
      self->parser_.emplace();
      self->parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
      http::async_read(self->stream_, self->buffer_, *self->parser_,
                       [self, done](ErrorCode ec, size_t) {
                         if (ec) return self->fail(ec, done);
                         Response res = self->parser_->release();
                         done({}, res);
                       });
    });
  }

  void stream(Request req, OnOpen on_open, OnLine on_line, OnEnd on_end) override {
    req_ = std::move(req);
    on_line_ = std::move(on_line);
    on_end_ = std::move(on_end);
    pending_.clear();
    auto self = this->shared_from_this();
    http::async_write(stream_, req_, [self, on_open](ErrorCode ec, size_t) {
      if (ec) return on_open(ec, 0);
      self->parser_.emplace();
      self->parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
      self->chunk_body_ = [raw = self.get()](std::uint64_t, beast::string_view body,
                                             ErrorCode&) -> size_t {
        raw->take_body(std::string_view(body.data(), body.size()));
        return body.size();
      };
      self->parser_->on_chunk_body(self->chunk_body_);
      http::async_read_header(self->stream_, self->buffer_, *self->parser_,
                              [self, on_open](ErrorCode ec, size_t) {
                                if (ec) return on_open(ec, 0);
                                on_open({}, self->parser_->get().result_int());
                                self->read_stream();
                              });
    });
  }

 private:
  static S make_stream(asio::io_context& io, asio::ssl::context* tls) {
    if constexpr (kTls) {
      return S(io, *tls);
    } else {
      (void)tls;
      return S(io);
    }
  }

  void fail(ErrorCode ec, const OnResponse& done) {
    Response empty;
    done(ec, empty);
  }

  void read_stream() {
    auto self = this->shared_from_this();
    http::async_read_some(stream_, buffer_, *parser_, [self](ErrorCode ec, size_t) {
      if (ec) return self->on_end_(ec);
      if (self->parser_->is_done()) {
        // A body that was not chunked (e.g. an error Status) arrives whole.
        const std::string& body = self->parser_->get().body();
        if (!body.empty()) self->take_body(body);
        if (!self->pending_.empty()) self->on_line_(self->pending_);
        return self->on_end_({});
      }
      self->read_stream();
    });
  }

  void take_body(std::string_view body) {
    pending_.append(body.data(), body.size());
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      on_line_(std::string_view(pending_).substr(start, nl - start));
    }
    pending_.erase(0, start);
  }

  S stream_;
  beast::flat_buffer buffer_;
  Request req_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::function<size_t(std::uint64_t, beast::string_view, ErrorCode&)> chunk_body_;
  OnLine on_line_;
  OnEnd on_end_;
  std::string pending_;  // body bytes after the last complete line
};

}  // namespace

void connect(asio::io_context& io, const Endpoint& ep,
             std::function<void(ErrorCode, std::shared_ptr<Connection>)> done) {
  ErrorCode ec;
  auto address = asio::ip::make_address(ep.address, ec);
  if (ec) return done(ec, nullptr);
  tcp::endpoint target(address, ep.port);
  if (ep.tls) {
    std::make_shared<BasicConnection<TlsStream>>(io, ep.tls)->open(target, std::move(done));
  } else {
    std::make_shared<BasicConnection<PlainStream>>(io, nullptr)->open(target, std::move(done));
  }
}

}  // namespace skiff::bench
