// A real `skiff server` API inside a test process: a temporary data dir, a free port, and an
// in-process client. For tests of components that talk to the API (client, informers,
// controllers, scheduler, simulated nodes).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "apiserver/api_server.h"
#include "client/client.h"

namespace skiff::testing {

class TestServer {
 public:
  TestServer() {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(dir_);
    apiserver::ApiServer::Options o;
    o.data_dir = dir_.string();
    o.port = 0;
    o.bind_address = "127.0.0.1";
    o.disable_agent = true;
    auto s = apiserver::ApiServer::start(o);
    if (!s.ok()) {
      ADD_FAILURE() << "server did not start: " << s.status().to_string();
      return;
    }
    server_ = std::move(s.value());
  }
  ~TestServer() {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  bool ok() const { return server_ != nullptr; }
  apiserver::ApiServer& server() { return *server_; }
  const std::filesystem::path& dir() const { return dir_; }
  unsigned port() const { return server_->port(); }

  // A client that reaches the API in-process, as `user_agent`.
  std::unique_ptr<client::Client> client(const std::string& user_agent = "skiff-test") {
    return std::make_unique<client::Client>(server_->local_transport("system:" + user_agent),
                                            user_agent);
  }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<apiserver::ApiServer> server_;
};

// Polls cond until it is true or the deadline passes (for state reached asynchronously).
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

}  // namespace skiff::testing
