// Shared by the client tests: one API server for the whole test binary, clients that reach
// it in-process or over HTTPS, and small object builders.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "client/client.h"
#include "client/https_transport.h"
#include "testing/test_server.h"

namespace skiff::client::testing {

using nlohmann::json;
using skiff::testing::eventually;
using skiff::testing::TestServer;

// Starting a server takes a while (credentials, store); the tests share one and keep apart
// by namespace and name.
class SharedServer : public ::testing::Environment {
 public:
  void SetUp() override { get(); }
  void TearDown() override { server_.reset(); }
  static TestServer& get() {
    if (!server_) server_ = std::make_unique<TestServer>();
    return *server_;
  }

 private:
  static inline std::unique_ptr<TestServer> server_;
};

inline ::testing::Environment* const kSharedServerEnvironment =
    ::testing::AddGlobalTestEnvironment(new SharedServer);

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline std::string tls_file(const std::string& name) {
  return read_file((SharedServer::get().dir() / "tls" / name).string());
}

inline std::string server_url(const std::string& host = "127.0.0.1") {
  return "https://" + host + ":" + std::to_string(SharedServer::get().port());
}

// Options for the admin identity over HTTPS, from the server's files.
inline HttpsOptions admin_https_options(const std::string& host = "127.0.0.1") {
  HttpsOptions o;
  o.server = server_url(host);
  o.ca_pem = tls_file("ca.crt");
  o.client_cert_pem = tls_file("client-admin.crt");
  o.client_key_pem = tls_file("client-admin.key");
  return o;
}

enum class Via { kInProcess, kHttps };

inline std::string via_name(const ::testing::TestParamInfo<Via>& info) {
  return info.param == Via::kInProcess ? "InProcess" : "Https";
}

inline std::shared_ptr<Transport> make_transport(Via via) {
  if (via == Via::kInProcess) return SharedServer::get().server().local_transport("system:test");
  auto t =
      HttpsTransport::from_kubeconfig((SharedServer::get().dir() / "kubeconfig.yaml").string());
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  return t.ok() ? std::shared_ptr<Transport>(*t) : nullptr;
}

inline std::unique_ptr<Client> make_client(Via via, const std::string& user_agent = "skiff-test") {
  return std::make_unique<Client>(make_transport(via), user_agent);
}

// A namespace of its own for a test.
inline std::string new_namespace(Client& c) {
  static std::atomic<int> counter{0};
  std::string name = "t" + std::to_string(counter++);
  json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
  auto r = c.create(resources::kNamespaces, ns);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return name;
}

inline json config_map(const std::string& ns, const std::string& name, json data = json::object(),
                       json labels = json::object()) {
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", name}, {"namespace", ns}}},
             {"data", std::move(data)}};
  if (!labels.empty()) cm["metadata"]["labels"] = std::move(labels);
  return cm;
}

inline json pod(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}}};
}

inline std::string rv_of(const json& obj) { return obj["metadata"].value("resourceVersion", ""); }

}  // namespace skiff::client::testing
