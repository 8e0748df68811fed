#include "targets.h"

#include <openssl/evp.h>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace skiff::bench {

namespace {

using json = nlohmann::json;

constexpr size_t kObjectBytes = 1024;

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Request make_request(http::verb verb, const Endpoint& ep, std::string target,
                     std::string body = {}) {
  Request req{verb, target, 11};
  req.set(http::field::host, ep.address + ":" + std::to_string(ep.port));
  req.set(http::field::user_agent, "bench_api");
  req.set(http::field::accept, "application/json");
  if (!body.empty() || verb == http::verb::post || verb == http::verb::put) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
    req.prepare_payload();
  }
  req.keep_alive(true);
  return req;
}

int64_t parse_int(const json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (!v.is_string()) return -1;
  const std::string& s = v.get_ref<const std::string&>();
  char* end = nullptr;
  long long n = std::strtoll(s.c_str(), &end, 10);
  return end == s.c_str() || *end != '\0' ? -1 : n;
}

json parse(const Response& res) { return json::parse(res.body(), nullptr, false); }

size_t count_of(std::string_view haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string_view::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

class SkiffTarget final : public Target {
 public:
  explicit SkiffTarget(Endpoint ep) : ep_(std::move(ep)) {}

  std::string name() const override { return "skiff"; }
  Endpoint endpoint() const override { return ep_; }

  Request ready() const override { return make_request(http::verb::get, ep_, "/readyz"); }

  std::vector<Request> setup(const std::vector<std::string>& namespaces) const override {
    std::vector<Request> out;
    for (const auto& ns : namespaces) {
      out.push_back(make_request(
          http::verb::post, ep_, "/api/v1/namespaces",
          R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":")" + ns + R"("}})"));
    }
    return out;
  }

  Request create(std::string_view ns, std::string_view name) const override {
    return make_request(http::verb::post, ep_, collection(ns), configmap_json(ns, name, 0));
  }
  Request get(std::string_view ns, std::string_view name) const override {
    return make_request(http::verb::get, ep_, collection(ns) + "/" + std::string(name));
  }
  Request list(std::string_view ns) const override {
    return make_request(http::verb::get, ep_, collection(ns));
  }
  Request update(std::string_view ns, std::string_view name, int64_t seq) const override {
    return make_request(http::verb::put, ep_, collection(ns) + "/" + std::string(name),
                        configmap_json(ns, name, seq));
  }
  Request watch(std::string_view ns, int64_t after_revision) const override {
    return make_request(
        http::verb::get, ep_,
        collection(ns) + "?watch=true&resourceVersion=" + std::to_string(after_revision));
  }

  bool created(const Response& res) const override { return res.result_int() == 201; }
  bool found(const Response& res) const override { return res.result_int() == 200; }
  bool updated(const Response& res) const override { return res.result_int() == 200; }
  int64_t listed(const Response& res) const override {
    if (res.result_int() != 200) return -1;
    json j = parse(res);
    if (!j.is_object() || j.value("kind", "") != "ConfigMapList") return -1;
    auto items = j.find("items");
    return items != j.end() && items->is_array() ? static_cast<int64_t>(items->size()) : 0;
  }
  int64_t write_revision(const Response& res) const override {
    json j = parse(res);
    if (!j.is_object() || !j.contains("metadata")) return -1;
    return parse_int(j["metadata"].value("resourceVersion", json()));
  }

  bool watch_open_at_header() const override { return true; }
  WatchLine classify(std::string_view line) const override {
    if (line.starts_with(R"({"type":"ERROR")")) return {WatchLine::kError, 0};
    if (line.starts_with(R"({"type":"BOOKMARK")")) return {};
    if (line.starts_with(R"({"type":")")) return {WatchLine::kEvents, 1};
    return {};
  }

 private:
  static std::string collection(std::string_view ns) {
    return "/api/v1/namespaces/" + std::string(ns) + "/configmaps";
  }

  Endpoint ep_;
};

class EtcdTarget final : public Target {
 public:
  explicit EtcdTarget(Endpoint ep) : ep_(std::move(ep)) {}

  std::string name() const override { return "etcd"; }
  Endpoint endpoint() const override { return ep_; }

  Request ready() const override { return make_request(http::verb::get, ep_, "/health"); }

  std::vector<Request> setup(const std::vector<std::string>&) const override { return {}; }

  Request create(std::string_view ns, std::string_view name) const override {
    return put(ns, name, 0);
  }
  Request get(std::string_view ns, std::string_view name) const override {
    return make_request(http::verb::post, ep_, "/v3/kv/range",
                        R"({"key":")" + base64(key(ns, name)) + R"("})");
  }
  Request list(std::string_view ns) const override {
    return make_request(http::verb::post, ep_, "/v3/kv/range", range(ns) + "}");
  }
  Request update(std::string_view ns, std::string_view name, int64_t seq) const override {
    return put(ns, name, seq);
  }
  Request watch(std::string_view ns, int64_t after_revision) const override {
    return make_request(http::verb::post, ep_, "/v3/watch",
                        R"({"create_request":)" + range(ns) + R"(,"start_revision":")" +
                            std::to_string(after_revision + 1) + R"("}})");
  }

  bool created(const Response& res) const override { return updated(res); }
  bool found(const Response& res) const override {
    return res.result_int() == 200 && res.body().find(R"("kvs":[)") != std::string::npos;
  }
  bool updated(const Response& res) const override {
    return res.result_int() == 200 && res.body().starts_with(R"({"header":)");
  }
  int64_t listed(const Response& res) const override {
    if (res.result_int() != 200) return -1;
    json j = parse(res);
    if (!j.is_object() || !j.contains("header")) return -1;
    auto kvs = j.find("kvs");
    return kvs != j.end() && kvs->is_array() ? static_cast<int64_t>(kvs->size()) : 0;
  }
  int64_t write_revision(const Response& res) const override {
    json j = parse(res);
    if (!j.is_object() || !j.contains("header")) return -1;
    return parse_int(j["header"].value("revision", json()));
  }

  bool watch_open_at_header() const override { return false; }
  WatchLine classify(std::string_view line) const override {
    if (line.find(R"("events":[)") != std::string_view::npos) {
      return {WatchLine::kEvents, static_cast<int>(count_of(line, R"("kv":)"))};
    }
    if (line.find(R"("created":true)") != std::string_view::npos) return {WatchLine::kCreated, 0};
    if (line.find(R"("canceled":true)") != std::string_view::npos ||
        line.starts_with(R"({"error":)")) {
      return {WatchLine::kError, 0};
    }
    return {};
  }

 private:
  static std::string key(std::string_view ns, std::string_view name) {
    return "/registry/configmaps/" + std::string(ns) + "/" + std::string(name);
  }
  // {"key":<prefix of ns>,"range_end":<prefix end>   (left open for more fields)
  static std::string range(std::string_view ns) {
    std::string prefix = "/registry/configmaps/" + std::string(ns) + "/";
    std::string end = prefix;
    end.back() = static_cast<char>(end.back() + 1);
    return R"({"key":")" + base64(prefix) + R"(","range_end":")" + base64(end) + R"(")";
  }
  Request put(std::string_view ns, std::string_view name, int64_t seq) const {
    return make_request(http::verb::post, ep_, "/v3/kv/put",
                        R"({"key":")" + base64(key(ns, name)) + R"(","value":")" +
                            base64(configmap_json(ns, name, seq)) + R"("})");
  }

  Endpoint ep_;
};

}  // namespace

std::string configmap_json(std::string_view ns, std::string_view name, int64_t seq) {
  std::string head = R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" +
                     std::string(name) + R"(","namespace":")" + std::string(ns) +
                     R"("},"data":{"seq":")" + std::to_string(seq) + R"(","payload":")";
  const std::string tail = R"("}})";
  static constexpr std::string_view kFill = "abcdefghijklmnopqrstuvwxyz0123456789";
  size_t fill =
      head.size() + tail.size() < kObjectBytes ? kObjectBytes - head.size() - tail.size() : 0;
  std::string out = std::move(head);
  out.reserve(out.size() + fill + tail.size());
  for (size_t i = 0; i < fill; ++i) out.push_back(kFill[i % kFill.size()]);
  out += tail;
  return out;
}

std::unique_ptr<Target> make_skiff_target(Endpoint ep) {
  return std::make_unique<SkiffTarget>(std::move(ep));
}

std::unique_ptr<Target> make_etcd_target(Endpoint ep) {
  return std::make_unique<EtcdTarget>(std::move(ep));
}

}  // namespace skiff::bench
