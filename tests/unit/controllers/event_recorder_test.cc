#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "controllers/framework.h"
#include "testing/test_server.h"

namespace skiff::controllers {
namespace {

using nlohmann::json;

class EventRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    client_ = server_.client("event-recorder-test");
  }

  client::ObjectPtr create_config_map(const std::string& name, const std::string& ns = "default") {
    json cm = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata", {{"name", name}, {"namespace", ns}}},
               {"data", {{"k", "v"}}}};
    auto r = client_->create(client::resources::kConfigMaps.in(ns), cm);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? r.value() : nullptr;
  }

  std::vector<json> events(const std::string& ns = "default") {
    std::vector<json> out;
    auto r = client_->list(client::resources::kEvents.in(ns));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (r.ok()) {
      for (const auto& item : r->items) out.push_back(*item);
    }
    return out;
  }

  testing::TestServer server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(EventRecorderTest, RecordsEventAsClientGoWritesIt) {
  auto cm = create_config_map("web");
  ASSERT_TRUE(cm);
  EventRecorder recorder(*client_, "test-controller", "node-1");
  recorder.record(*cm, "Normal", "Synced", "config map synced");
  recorder.flush();

  auto evs = events();
  ASSERT_EQ(evs.size(), 1u);
  const json& ev = evs[0];
  std::string name = ev["metadata"]["name"];
  ASSERT_EQ(name.rfind("web.", 0), 0u) << name;
  EXPECT_EQ(name.find_first_not_of("0123456789abcdef", 4), std::string::npos) << name;
  EXPECT_EQ(ev["metadata"]["namespace"], "default");
  const json& io = ev["involvedObject"];
  EXPECT_EQ(io["kind"], "ConfigMap");
  EXPECT_EQ(io["apiVersion"], "v1");
  EXPECT_EQ(io["namespace"], "default");
  EXPECT_EQ(io["name"], "web");
  EXPECT_EQ(io["uid"], (*cm)["metadata"]["uid"]);
  EXPECT_EQ(io["resourceVersion"], (*cm)["metadata"]["resourceVersion"]);
  EXPECT_EQ(ev["reason"], "Synced");
  EXPECT_EQ(ev["message"], "config map synced");
  EXPECT_EQ(ev["type"], "Normal");
  EXPECT_EQ(ev["source"]["component"], "test-controller");
  EXPECT_EQ(ev["source"]["host"], "node-1");
  EXPECT_EQ(ev["count"], 1);
  ASSERT_TRUE(ev["firstTimestamp"].is_string());
  EXPECT_EQ(ev["firstTimestamp"], ev["lastTimestamp"]);
  EXPECT_TRUE(parse_rfc3339(ev["firstTimestamp"].get<std::string>()).ok());
  EXPECT_EQ(recorder.dropped(), 0u);
}

TEST_F(EventRecorderTest, RepeatsRaiseTheCountOfOneEvent) {
  auto cm = create_config_map("web");
  ASSERT_TRUE(cm);
  EventRecorder recorder(*client_, "test-controller");
  recorder.record(*cm, "Warning", "FailedSync", "cannot sync");
  recorder.flush();
  auto first = events();
  ASSERT_EQ(first.size(), 1u);

  recorder.record(*cm, "Warning", "FailedSync", "cannot sync");
  recorder.record(*cm, "Warning", "FailedSync", "cannot sync");
  recorder.flush();
  auto evs = events();
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0]["metadata"]["name"], first[0]["metadata"]["name"]);
  EXPECT_EQ(evs[0]["count"], 3);
  EXPECT_EQ(evs[0]["firstTimestamp"], first[0]["firstTimestamp"]);
  EXPECT_GE(evs[0]["lastTimestamp"].get<std::string>(),
            evs[0]["firstTimestamp"].get<std::string>());
  EXPECT_FALSE(evs[0]["source"].contains("host"));
}

TEST_F(EventRecorderTest, DifferentTypeReasonMessageOrObjectMakeNewEvents) {
  auto web = create_config_map("web");
  auto db = create_config_map("db");
  ASSERT_TRUE(web && db);
  EventRecorder recorder(*client_, "test-controller");
  recorder.record(*web, "Normal", "Synced", "one");
  recorder.record(*web, "Normal", "Synced", "two");
  recorder.record(*web, "Warning", "Synced", "one");
  recorder.record(*web, "Normal", "Other", "one");
  recorder.record(*db, "Normal", "Synced", "one");
  recorder.record(*web, "Normal", "Synced", "one");
  recorder.flush();
  auto evs = events();
  ASSERT_EQ(evs.size(), 5u);
  int counted = 0;
  for (const json& ev : evs) {
    if (ev["involvedObject"]["name"] == "web" && ev["type"] == "Normal" &&
        ev["reason"] == "Synced" && ev["message"] == "one") {
      EXPECT_EQ(ev["count"], 2);
      ++counted;
    } else {
      EXPECT_EQ(ev["count"], 1);
    }
  }
  EXPECT_EQ(counted, 1);
}

TEST_F(EventRecorderTest, ClusterScopedObjectsGetEventsInDefaultNamespace) {
  json node = {
      {"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", "node-1"}, {"uid", "1234"}}}};
  EventRecorder recorder(*client_, "node-controller");
  recorder.record(node, "Normal", "RegisteredNode", "Node node-1 event: Registered");
  recorder.flush();
  auto evs = events("default");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0]["involvedObject"]["kind"], "Node");
  EXPECT_EQ(evs[0]["involvedObject"]["name"], "node-1");
  EXPECT_EQ(evs[0]["involvedObject"]["uid"], "1234");
  EXPECT_FALSE(evs[0]["involvedObject"].contains("namespace"));
}

TEST_F(EventRecorderTest, AcceptsAnObjectReference) {
  json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "team"}}}};
  ASSERT_TRUE(client_->create(client::resources::kNamespaces, ns).ok());
  json ref = {{"kind", "Pod"},   {"apiVersion", "v1"}, {"namespace", "team"},
              {"name", "web-0"}, {"uid", "u-1"},       {"fieldPath", "spec.containers{web}"}};
  EventRecorder recorder(*client_, "kubelet", "node-1");
  recorder.record(ref, "Normal", "Pulled", "image pulled");
  recorder.flush();
  auto evs = events("team");
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0]["involvedObject"]["fieldPath"], "spec.containers{web}");
  EXPECT_EQ(evs[0]["involvedObject"]["namespace"], "team");
  EXPECT_EQ(evs[0]["metadata"]["namespace"], "team");
}

TEST_F(EventRecorderTest, EventDeletedMeanwhileIsWrittenAgainWithTheCount) {
  auto cm = create_config_map("web");
  ASSERT_TRUE(cm);
  EventRecorder recorder(*client_, "test-controller");
  recorder.record(*cm, "Normal", "Synced", "synced");
  recorder.flush();
  auto evs = events();
  ASSERT_EQ(evs.size(), 1u);
  std::string name = evs[0]["metadata"]["name"];
  ASSERT_TRUE(client_->remove(client::resources::kEvents.in("default"), name).ok());

  recorder.record(*cm, "Normal", "Synced", "synced");
  recorder.flush();
  evs = events();
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0]["metadata"]["name"], name);
  EXPECT_EQ(evs[0]["count"], 2);
}

TEST_F(EventRecorderTest, UnknownTypesAndNamelessObjectsAreDropped) {
  auto cm = create_config_map("web");
  ASSERT_TRUE(cm);
  EventRecorder recorder(*client_, "test-controller");
  recorder.record(*cm, "Info", "Synced", "synced");
  recorder.record(json{{"kind", "Pod"}}, "Normal", "Synced", "synced");
  recorder.record(json("not an object"), "Normal", "Synced", "synced");
  recorder.flush();
  EXPECT_TRUE(events().empty());
}

// A server that holds every request until released, to fill the recorder's queue.
class HeldTransport final : public client::Transport {
 public:
  Result<client::Reply> round_trip(const client::Request& req) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++requests_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return released_; });
    return client::Reply{201, "application/json", req.body, nullptr};
  }
  Result<std::unique_ptr<client::Watch>> stream(const client::Request&,
                                                std::function<void(std::string_view)>,
                                                std::function<void(const Status&)>) override {
    return Status::Unavailable("no watches here");
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  int requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int requests_ = 0;
  bool released_ = false;
};

TEST(EventRecorderQueueTest, RecordDropsInsteadOfBlockingWhenTheQueueIsFull) {
  auto transport = std::make_shared<HeldTransport>();
  client::Client client(transport, "held");
  EventRecorder recorder(client, "test-controller");
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "web"}, {"namespace", "default"}}}};
  recorder.record(pod, "Normal", "Started", "event 0");
  ASSERT_TRUE(testing::eventually([&] { return transport->requests() == 1; }));
  constexpr size_t kExtra = 7;
  for (size_t i = 1; i <= EventRecorder::kQueueCapacity + kExtra; ++i) {
    recorder.record(pod, "Normal", "Started", "event " + std::to_string(i));
  }
  EXPECT_EQ(recorder.dropped(), kExtra);
  transport->release();
  recorder.flush();
  EXPECT_EQ(transport->requests(), static_cast<int>(EventRecorder::kQueueCapacity + 1));
}

}  // namespace
}  // namespace skiff::controllers
