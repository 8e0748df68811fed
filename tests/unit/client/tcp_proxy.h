// A TCP forwarder for transport tests: listens on an address of its own and passes bytes to
// and from a target port on 127.0.0.1, so that a test can count connections, cut them all at
// once (a server dropping idle keep-alive connections, a broken network), or reach the server
// under an address its certificate does not name.
#pragma once

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace skiff::client::testing {

class TcpProxy {
 public:
  TcpProxy(const std::string& listen_address, unsigned target_port)
      : acceptor_(ioc_, tcp::endpoint(boost::asio::ip::make_address(listen_address), 0)),
        target_(boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(target_port)) {
    accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~TcpProxy() {
    boost::asio::post(ioc_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      close_pipes();
    });
    ioc_.stop();
    thread_.join();
  }
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  unsigned port() const { return acceptor_.local_endpoint().port(); }
  int accepted() {
    return run_on_loop([this] { return accepted_; });
  }
  // Closes every connection forwarded so far; returns once they are closed.
  void close_all() {
    run_on_loop([this] {
      close_pipes();
      return 0;
    });
  }

 private:
  using tcp = boost::asio::ip::tcp;

  struct Pipe : std::enable_shared_from_this<Pipe> {
    explicit Pipe(boost::asio::io_context& ioc) : client(ioc), server(ioc) {}
    tcp::socket client;
    tcp::socket server;
    std::array<char, 16384> up{};
    std::array<char, 16384> down{};

    void start() {
      pump(client, server, up);
      pump(server, client, down);
    }
    void pump(tcp::socket& from, tcp::socket& to, std::array<char, 16384>& buf) {
      auto self = shared_from_this();
      from.async_read_some(boost::asio::buffer(buf), [self, &from, &to, &buf](
                                                         boost::system::error_code ec, size_t n) {
        if (ec) return self->close();
        boost::asio::async_write(to, boost::asio::buffer(buf.data(), n),
                                 [self, &from, &to, &buf](boost::system::error_code ec, size_t) {
                                   if (ec) return self->close();
                                   self->pump(from, to, buf);
                                 });
      });
    }
    void close() {
      boost::system::error_code ec;
      client.close(ec);
      server.close(ec);
    }
  };

  template <typename F>
  auto run_on_loop(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    boost::asio::post(ioc_, [&task] { task(); });
    return result.get();
  }

  void accept() {
    auto pipe = std::make_shared<Pipe>(ioc_);
    acceptor_.async_accept(pipe->client, [this, pipe](boost::system::error_code ec) {
      if (ec) return;
      ++accepted_;
      pipes_.push_back(pipe);
      pipe->server.async_connect(target_, [pipe](boost::system::error_code ec) {
        if (ec) return pipe->close();
        pipe->start();
      });
      accept();
    });
  }

  void close_pipes() {
    for (auto& w : pipes_) {
      if (auto p = w.lock()) p->close();
    }
    pipes_.clear();
  }

  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  tcp::endpoint target_;
  std::thread thread_;
  // Touched only on the loop's thread.
  int accepted_ = 0;
  std::vector<std::weak_ptr<Pipe>> pipes_;
};

}  // namespace skiff::client::testing
