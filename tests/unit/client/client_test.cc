#include "client/client.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "client_test_util.h"

namespace skiff::client {
namespace {

using testing::config_map;
using testing::eventually;
using testing::json;
using testing::make_client;
using testing::new_namespace;
using testing::pod;
using testing::rv_of;
using testing::Via;

// Records requests and answers them with a canned reply; streams deliver scripted chunks.
class RecordingTransport final : public Transport {
 public:
  Result<Reply> round_trip(const Request& req) override {
    requests.push_back(req);
    return reply;
  }
  Result<std::unique_ptr<Watch>> stream(const Request& req,
                                        std::function<void(std::string_view)> on_data,
                                        std::function<void(const Status&)> on_end) override {
    requests.push_back(req);
    for (const auto& chunk : chunks) on_data(chunk);
    on_end(end);
    struct NoWatch final : Watch {
      void stop() override {}
    };
    return std::unique_ptr<Watch>(std::make_unique<NoWatch>());
  }

  std::vector<Request> requests;
  Reply reply{200, "application/json", R"({"kind":"ConfigMap","metadata":{"name":"x"}})", nullptr};
  std::vector<std::string> chunks;
  Status end;
};

TEST(ClientPathTest, CoreAndGroupResourcesInAndOutOfNamespaces) {
  EXPECT_EQ(Client::path(resources::kPods), "/api/v1/pods");
  EXPECT_EQ(Client::path(resources::kPods.in("ns1"), "web", "status"),
            "/api/v1/namespaces/ns1/pods/web/status");
  EXPECT_EQ(Client::path(resources::kNodes, "n1"), "/api/v1/nodes/n1");
  EXPECT_EQ(Client::path(resources::kNamespaces, "default"), "/api/v1/namespaces/default");
  EXPECT_EQ(Client::path(resources::kDeployments.in("ns"), "d"),
            "/apis/apps/v1/namespaces/ns/deployments/d");
  EXPECT_EQ(Client::path(resources::kLeases.in("kube-node-lease"), "n1"),
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1");
  EXPECT_EQ(Client::path(resources::kEndpointSlices), "/apis/discovery.k8s.io/v1/endpointslices");
  EXPECT_EQ(Client::path(resources::kCronJobs.in("a"), "b"),
            "/apis/batch/v1/namespaces/a/cronjobs/b");
  ResourceRef crd{"serving.knative.dev", "v1", "services", "ns"};
  EXPECT_EQ(Client::path(crd, "hello"),
            "/apis/serving.knative.dev/v1/namespaces/ns/services/hello");
  // Names are path segments: anything outside a name's usual characters is escaped.
  EXPECT_EQ(Client::path(resources::kNodes, "a b/c"), "/api/v1/nodes/a%20b%2Fc");
  EXPECT_EQ(Client::path(ResourceRef{"rbac.authorization.k8s.io", "v1", "clusterroles", ""},
                         "system:controller:x"),
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:controller:x");
}

TEST(ClientRequestTest, ListOptionsAreEncodedInTheQuery) {
  auto t = std::make_shared<RecordingTransport>();
  t->reply.body = R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7",)"
                  R"("continue":"abc"},"items":[{"metadata":{"name":"p"}}]})";
  Client c(t, "tester");
  ListOptions o;
  o.label_selector = "app=web,tier in (a,b)";
  o.field_selector = "spec.nodeName=n1";
  o.limit = 50;
  o.continue_token = "tok+/=";
  o.resource_version = "0";
  auto list = c.list(resources::kPods.in("default"), o);
  ASSERT_TRUE(list.ok()) << list.status().to_string();
  const Request& r = t->requests.back();
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/api/v1/namespaces/default/pods");
  EXPECT_EQ(r.query,
            "labelSelector=app%3Dweb%2Ctier%20in%20%28a%2Cb%29&fieldSelector=spec.nodeName%3Dn1"
            "&limit=50&continue=tok%2B%2F%3D&resourceVersion=0");
  EXPECT_EQ(r.user_agent, "tester");
  EXPECT_EQ(list->resource_version, "7");
  EXPECT_EQ(list->continue_token, "abc");
  ASSERT_EQ(list->items.size(), 1u);
  // Items of a typed list get the kind and apiVersion the list names.
  EXPECT_EQ((*list->items[0])["kind"], "Pod");
  EXPECT_EQ((*list->items[0])["apiVersion"], "v1");
}

TEST(ClientRequestTest, WritesCarryFieldManagerDryRunAndContentType) {
  auto t = std::make_shared<RecordingTransport>();
  Client c(t, "skiff-scheduler");
  json cm = config_map("ns", "x");
  ASSERT_TRUE(c.create(resources::kConfigMaps, cm).ok());
  EXPECT_EQ(t->requests.back().method, "POST");
  // The object's namespace is used when the ResourceRef names none.
  EXPECT_EQ(t->requests.back().path, "/api/v1/namespaces/ns/configmaps");
  EXPECT_EQ(t->requests.back().query, "fieldManager=skiff-scheduler");
  EXPECT_EQ(t->requests.back().content_type, "application/json");
  EXPECT_EQ(json::parse(t->requests.back().body), cm);

  WriteOptions w;
  w.field_manager = "mgr";
  w.dry_run = true;
  ASSERT_TRUE(c.update(resources::kConfigMaps, cm, "", w).ok());
  EXPECT_EQ(t->requests.back().method, "PUT");
  EXPECT_EQ(t->requests.back().path, "/api/v1/namespaces/ns/configmaps/x");
  EXPECT_EQ(t->requests.back().query, "fieldManager=mgr&dryRun=All");

  ASSERT_TRUE(c.update(resources::kPods, pod("ns", "p"), "status").ok());
  EXPECT_EQ(t->requests.back().path, "/api/v1/namespaces/ns/pods/p/status");

  const std::pair<PatchType, const char*> types[] = {
      {PatchType::kJson, "application/json-patch+json"},
      {PatchType::kMerge, "application/merge-patch+json"},
      {PatchType::kStrategicMerge, "application/strategic-merge-patch+json"},
      {PatchType::kApply, "application/apply-patch+yaml"}};
  for (const auto& [type, content_type] : types) {
    ASSERT_TRUE(c.patch(resources::kConfigMaps.in("ns"), "x", type, "{}").ok());
    EXPECT_EQ(t->requests.back().method, "PATCH");
    EXPECT_EQ(t->requests.back().content_type, content_type);
    EXPECT_EQ(t->requests.back().body, "{}");
  }
  w = {};
  w.force = true;
  ASSERT_TRUE(c.patch(resources::kConfigMaps.in("ns"), "x", PatchType::kApply, "{}", "", w).ok());
  EXPECT_EQ(t->requests.back().query, "fieldManager=skiff-scheduler&force=true");

  ASSERT_TRUE(c.create_subresource(resources::kPods.in("ns"), "p", "binding", json::object()).ok());
  EXPECT_EQ(t->requests.back().method, "POST");
  EXPECT_EQ(t->requests.back().path, "/api/v1/namespaces/ns/pods/p/binding");
}

TEST(ClientRequestTest, DeleteOptionsTravelAsBody) {
  auto t = std::make_shared<RecordingTransport>();
  Client c(t, "tester");
  DeleteOptions o;
  o.propagation_policy = "Foreground";
  o.grace_period_seconds = 0;
  o.precondition_uid = "u1";
  o.precondition_resource_version = "42";
  o.dry_run = true;
  ASSERT_TRUE(c.remove(resources::kDeployments.in("ns"), "d", o).ok());
  const Request& r = t->requests.back();
  EXPECT_EQ(r.method, "DELETE");
  EXPECT_EQ(r.path, "/apis/apps/v1/namespaces/ns/deployments/d");
  EXPECT_EQ(r.content_type, "application/json");
  json body = json::parse(r.body);
  EXPECT_EQ(body["kind"], "DeleteOptions");
  EXPECT_EQ(body["propagationPolicy"], "Foreground");
  EXPECT_EQ(body["gracePeriodSeconds"], 0);
  EXPECT_EQ(body["preconditions"]["uid"], "u1");
  EXPECT_EQ(body["preconditions"]["resourceVersion"], "42");
  EXPECT_EQ(body["dryRun"], json::array({"All"}));
}

TEST(ClientRequestTest, FailedRepliesBecomeStatusesWithTheServersMessage) {
  auto t = std::make_shared<RecordingTransport>();
  Client c(t, "tester");
  t->reply = {404, "application/json",
              R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"x\" not )"
              R"(found","reason":"NotFound","details":{"name":"x","kind":"pods"},"code":404})", nullptr};
  auto r = c.get(resources::kPods.in("ns"), "x");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "pods \"x\" not found");

  t->reply = {409, "application/json",
              R"({"kind":"Status","status":"Failure","message":"exists","reason":"AlreadyExists",)"
              R"("code":409})", nullptr};
  EXPECT_EQ(c.get(resources::kPods.in("ns"), "x").status().code(), StatusCode::kAlreadyExists);

  // Without a known reason, the code decides.
  t->reply = {410, "application/json", R"({"kind":"Status","message":"gone","code":410})", nullptr};
  EXPECT_EQ(c.get(resources::kPods.in("ns"), "x").status().code(), StatusCode::kGone);

  // A body that is not a Status: the HTTP code and the body's text.
  t->reply = {503, "text/plain", "overloaded\n", nullptr};
  r = c.get(resources::kPods.in("ns"), "x");
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "overloaded");

  t->reply = {200, "application/json", "{not json", nullptr};
  EXPECT_EQ(c.get(resources::kPods.in("ns"), "x").status().code(), StatusCode::kInternal);
}

TEST(ClientStatusTest, StatusObjectsMapOntoCodesWithCauses) {
  json invalid = {{"kind", "Status"},
                  {"reason", "Invalid"},
                  {"code", 422},
                  {"message", "ConfigMap \"A\" is invalid"},
                  {"details",
                   {{"causes", json::array({{{"reason", "FieldValueInvalid"},
                                             {"message", "Invalid value: \"A\""},
                                             {"field", "metadata.name"}}})}}}};
  Status s = status_from_object(invalid);
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_EQ(s.message(), "ConfigMap \"A\" is invalid");
  ASSERT_EQ(s.causes().size(), 1u);
  EXPECT_EQ(s.causes()[0].field, "metadata.name");
  EXPECT_EQ(s.causes()[0].reason, "FieldValueInvalid");

  EXPECT_EQ(status_from_object({{"reason", "Expired"}, {"code", 410}}).code(), StatusCode::kGone);
  EXPECT_EQ(status_from_object({{"reason", "Gone"}}).code(), StatusCode::kGone);
  EXPECT_EQ(status_from_object({{"reason", "Conflict"}, {"code", 409}}).code(),
            StatusCode::kConflict);
  EXPECT_EQ(status_from_object({{"reason", "Weird"}, {"code", 403}}).code(),
            StatusCode::kForbidden);
  EXPECT_EQ(status_from_object(json::object(), 500).code(), StatusCode::kInternal);
  EXPECT_EQ(status_from_object(json::array()).code(), StatusCode::kInternal);
  // Wrongly typed fields are ignored rather than trusted.
  EXPECT_EQ(status_from_object({{"reason", 5}, {"code", "x"}, {"message", 1}}, 404).code(),
            StatusCode::kNotFound);
}

TEST(ClientWatchDecodeTest, EventsAreSplitOnLinesWhateverTheChunking) {
  std::string body;
  body += R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"1"}}})"
          "\n";
  body += R"({"type":"MODIFIED","object":{"metadata":{"name":"a","resourceVersion":"2"}}})"
          "\n";
  body += "\n";
  body += R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"3"}}})"
          "\r\n";
  body += R"({"type":"DELETED","object":{"metadata":{"name":"a","resourceVersion":"4"}}})"
          "\n";
  body += R"({"type":"ERROR","object":{"kind":"Status","reason":"Expired","code":410}})";
  for (size_t chunk = 1; chunk <= body.size(); chunk += (chunk < 8 ? 1 : 17)) {
    auto t = std::make_shared<RecordingTransport>();
    for (size_t i = 0; i < body.size(); i += chunk) t->chunks.push_back(body.substr(i, chunk));
    Client c(t, "tester");
    std::vector<WatchEvent> events;
    std::optional<Status> closed;
    ListOptions o;
    o.resource_version = "1";
    o.allow_bookmarks = true;
    o.timeout_seconds = 30;
    auto w = c.watch(
        resources::kPods.in("ns"), o, [&](const WatchEvent& e) { events.push_back(e); },
        [&](const Status& s) { closed = s; });
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(t->requests.back().query,
              "watch=true&resourceVersion=1&allowWatchBookmarks=true&timeoutSeconds=30");
    ASSERT_EQ(events.size(), 5u) << "chunk size " << chunk;
    EXPECT_EQ(events[0].type, WatchEventType::kAdded);
    EXPECT_EQ(events[1].type, WatchEventType::kModified);
    EXPECT_EQ(rv_of(*events[1].object), "2");
    EXPECT_EQ(events[2].type, WatchEventType::kBookmark);
    EXPECT_EQ(rv_of(*events[2].object), "3");
    EXPECT_EQ(events[3].type, WatchEventType::kDeleted);
    EXPECT_EQ(events[4].type, WatchEventType::kError);
    EXPECT_EQ(status_from_object(*events[4].object).code(), StatusCode::kGone);
    ASSERT_TRUE(closed.has_value());
    EXPECT_TRUE(closed->ok());
  }
}

TEST(ClientWatchDecodeTest, AFailedReplyClosesWithItsStatus) {
  auto t = std::make_shared<RecordingTransport>();
  t->chunks = {R"({"kind":"Status","status":"Failure","message":"bad selector",)",
               R"("reason":"BadRequest","code":400})"};
  t->end = Status::Internal("the server answered 400");
  Client c(t, "tester");
  int events = 0;
  std::optional<Status> closed;
  auto w = c.watch(
      resources::kPods, {}, [&](const WatchEvent&) { ++events; },
      [&](const Status& s) { closed = s; });
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(events, 0);
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->code(), StatusCode::kBadRequest);
  EXPECT_EQ(closed->message(), "bad selector");
}

// --- Against a real server, in-process and over HTTPS ---

class ClientServerTest : public ::testing::TestWithParam<Via> {
 protected:
  void SetUp() override {
    client_ = make_client(GetParam());
    ns_ = new_namespace(*client_);
  }
  std::unique_ptr<Client> client_;
  std::string ns_;
};

TEST_P(ClientServerTest, CreateGetUpdateDeleteRoundTrip) {
  auto cms = resources::kConfigMaps.in(ns_);
  auto created = client_->create(cms, config_map(ns_, "cm", {{"k", "v1"}}));
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  EXPECT_FALSE(rv_of(**created).empty());
  EXPECT_FALSE((**created)["metadata"].value("uid", "").empty());

  auto got = client_->get(cms, "cm");
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ((**got)["data"]["k"], "v1");
  EXPECT_EQ(rv_of(**got), rv_of(**created));

  json next = **got;
  next["data"]["k"] = "v2";
  auto updated = client_->update(cms, next);
  ASSERT_TRUE(updated.ok()) << updated.status().to_string();
  EXPECT_EQ((**updated)["data"]["k"], "v2");
  EXPECT_NE(rv_of(**updated), rv_of(**got));

  auto removed = client_->remove(cms, "cm");
  ASSERT_TRUE(removed.ok()) << removed.status().to_string();
  EXPECT_TRUE(client_->get(cms, "cm").status().is_not_found());
}

TEST_P(ClientServerTest, MissingObjectIsNotFoundWithTheServersMessage) {
  auto r = client_->get(resources::kConfigMaps.in(ns_), "nope");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "configmaps \"nope\" not found");
  EXPECT_EQ(client_->remove(resources::kConfigMaps.in(ns_), "nope").status().code(),
            StatusCode::kNotFound);
}

TEST_P(ClientServerTest, SecondCreateIsAlreadyExists) {
  auto cms = resources::kConfigMaps.in(ns_);
  ASSERT_TRUE(client_->create(cms, config_map(ns_, "dup")).ok());
  auto again = client_->create(cms, config_map(ns_, "dup"));
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(again.status().message().find("already exists"), std::string::npos)
      << again.status().message();
}

TEST_P(ClientServerTest, StaleUpdateIsRejectedWithConflict) {
  auto cms = resources::kConfigMaps.in(ns_);
  auto v1 = client_->create(cms, config_map(ns_, "cm", {{"k", "1"}}));
  ASSERT_TRUE(v1.ok());
  json a = **v1;
  a["data"]["k"] = "2";
  ASSERT_TRUE(client_->update(cms, a).ok());
  json stale = **v1;
  stale["data"]["k"] = "3";
  auto r = client_->update(cms, stale);
  EXPECT_EQ(r.status().code(), StatusCode::kConflict) << r.status().to_string();
  EXPECT_NE(r.status().message().find("modified"), std::string::npos) << r.status().message();
}

TEST_P(ClientServerTest, InvalidObjectIsInvalidWithCauses) {
  auto r = client_->create(resources::kConfigMaps.in(ns_), config_map(ns_, "Bad_Name"));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalid) << r.status().to_string();
  ASSERT_FALSE(r.status().causes().empty());
  EXPECT_EQ(r.status().causes()[0].field, "metadata.name");
}

TEST_P(ClientServerTest, EveryPatchTypeApplies) {
  auto cms = resources::kConfigMaps.in(ns_);
  ASSERT_TRUE(client_->create(cms, config_map(ns_, "cm", {{"a", "1"}})).ok());

  auto merged = client_->patch(cms, "cm", PatchType::kMerge, R"({"data":{"b":"2"}})");
  ASSERT_TRUE(merged.ok()) << merged.status().to_string();
  EXPECT_EQ((**merged)["data"], json({{"a", "1"}, {"b", "2"}}));

  auto patched = client_->patch(cms, "cm", PatchType::kJson,
                                R"([{"op":"replace","path":"/data/a","value":"9"}])");
  ASSERT_TRUE(patched.ok()) << patched.status().to_string();
  EXPECT_EQ((**patched)["data"]["a"], "9");

  auto strategic =
      client_->patch(cms, "cm", PatchType::kStrategicMerge, R"({"data":{"b":null,"c":"3"}})");
  ASSERT_TRUE(strategic.ok()) << strategic.status().to_string();
  EXPECT_EQ((**strategic)["data"], json({{"a", "9"}, {"c", "3"}}));

  auto bad = client_->patch(cms, "cm", PatchType::kJson,
                            R"([{"op":"test","path":"/data/a","value":"0"}])");
  EXPECT_FALSE(bad.ok());

  // Server-side apply: a second manager claiming the same field conflicts unless it forces.
  std::string mine =
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n"
      "  namespace: " +
      ns_ + "\ndata:\n  k: mine\n";
  WriteOptions alice;
  alice.field_manager = "alice";
  auto applied = client_->patch(cms, "applied", PatchType::kApply, mine, "", alice);
  ASSERT_TRUE(applied.ok()) << applied.status().to_string();
  EXPECT_EQ((**applied)["data"]["k"], "mine");

  std::string theirs = mine.substr(0, mine.find("k: mine")) + "k: theirs\n";
  WriteOptions bob;
  bob.field_manager = "bob";
  auto conflict = client_->patch(cms, "applied", PatchType::kApply, theirs, "", bob);
  EXPECT_EQ(conflict.status().code(), StatusCode::kConflict) << conflict.status().to_string();
  bob.force = true;
  auto forced = client_->patch(cms, "applied", PatchType::kApply, theirs, "", bob);
  ASSERT_TRUE(forced.ok()) << forced.status().to_string();
  EXPECT_EQ((**forced)["data"]["k"], "theirs");
}

TEST_P(ClientServerTest, ListPagesWithLimitAndContinue) {
  auto cms = resources::kConfigMaps.in(ns_);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client_
                    ->create(cms, config_map(ns_, "cm" + std::to_string(i), json::object(),
                                             {{"group", i % 2 == 0 ? "even" : "odd"}}))
                    .ok());
  }
  ListOptions o;
  o.limit = 2;
  std::set<std::string> names;
  int pages = 0;
  for (;;) {
    auto page = client_->list(cms, o);
    ASSERT_TRUE(page.ok()) << page.status().to_string();
    ++pages;
    EXPECT_LE(page->items.size(), 2u);
    EXPECT_FALSE(page->resource_version.empty());
    for (const auto& item : page->items) names.insert((*item)["metadata"]["name"]);
    if (page->continue_token.empty()) break;
    o.continue_token = page->continue_token;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names.size(), 5u);

  ListOptions even;
  even.label_selector = "group=even";
  auto evens = client_->list(cms, even);
  ASSERT_TRUE(evens.ok());
  EXPECT_EQ(evens->items.size(), 3u);

  ListOptions bad;
  bad.label_selector = "group in (";
  EXPECT_EQ(client_->list(cms, bad).status().code(), StatusCode::kBadRequest);
}

TEST_P(ClientServerTest, DeletePreconditionsAndDryRun) {
  auto cms = resources::kConfigMaps.in(ns_);
  auto created = client_->create(cms, config_map(ns_, "cm"));
  ASSERT_TRUE(created.ok());

  WriteOptions dry;
  dry.dry_run = true;
  ASSERT_TRUE(client_->create(cms, config_map(ns_, "dry"), dry).ok());
  EXPECT_TRUE(client_->get(cms, "dry").status().is_not_found());

  DeleteOptions wrong_uid;
  wrong_uid.precondition_uid = "not-the-uid";
  EXPECT_EQ(client_->remove(cms, "cm", wrong_uid).status().code(), StatusCode::kConflict);

  DeleteOptions dry_delete;
  dry_delete.dry_run = true;
  ASSERT_TRUE(client_->remove(cms, "cm", dry_delete).ok());
  EXPECT_TRUE(client_->get(cms, "cm").ok());

  DeleteOptions right;
  right.precondition_uid = (**created)["metadata"]["uid"];
  right.precondition_resource_version = rv_of(**created);
  right.propagation_policy = "Background";
  auto removed = client_->remove(cms, "cm", right);
  ASSERT_TRUE(removed.ok()) << removed.status().to_string();
  EXPECT_TRUE(client_->get(cms, "cm").status().is_not_found());
}

TEST_P(ClientServerTest, BindingAndStatusSubresources) {
  auto pods = resources::kPods.in(ns_);
  ASSERT_TRUE(client_->create(pods, pod(ns_, "p")).ok());
  json binding = {{"apiVersion", "v1"},
                  {"kind", "Binding"},
                  {"metadata", {{"name", "p"}, {"namespace", ns_}}},
                  {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", "node-1"}}}};
  auto bound = client_->create_subresource(pods, "p", "binding", binding);
  ASSERT_TRUE(bound.ok()) << bound.status().to_string();
  auto got = client_->get(pods, "p");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((**got)["spec"]["nodeName"], "node-1");

  json with_status = **got;
  with_status["status"]["phase"] = "Running";
  with_status["spec"]["nodeName"] = "ignored-by-status-update";
  auto updated = client_->update(pods, with_status, "status");
  ASSERT_TRUE(updated.ok()) << updated.status().to_string();
  EXPECT_EQ((**updated)["status"]["phase"], "Running");
  EXPECT_EQ((**updated)["spec"]["nodeName"], "node-1");
}

TEST_P(ClientServerTest, WatchDeliversEventsInOrder) {
  auto cms = resources::kConfigMaps.in(ns_);
  auto start = client_->list(cms);
  ASSERT_TRUE(start.ok());

  std::mutex mu;
  std::condition_variable cv;
  std::vector<WatchEvent> events;
  ListOptions o;
  o.resource_version = start->resource_version;
  auto w = client_->watch(
      cms, o,
      [&](const WatchEvent& e) {
        std::lock_guard<std::mutex> lock(mu);
        events.push_back(e);
        cv.notify_all();
      },
      [&](const Status&) {});
  ASSERT_TRUE(w.ok()) << w.status().to_string();

  auto created = client_->create(cms, config_map(ns_, "w", {{"n", "0"}}));
  ASSERT_TRUE(created.ok());
  json obj = **created;
  for (int i = 1; i <= 3; ++i) {
    obj["data"]["n"] = std::to_string(i);
    auto u = client_->update(cms, obj);
    ASSERT_TRUE(u.ok());
    obj = **u;
  }
  ASSERT_TRUE(client_->remove(cms, "w").ok());

  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return events.size() >= 5; }));
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].type, WatchEventType::kAdded);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(events[i].type, WatchEventType::kModified);
    EXPECT_EQ((*events[i].object)["data"]["n"], std::to_string(i));
  }
  EXPECT_EQ(events[4].type, WatchEventType::kDeleted);
  lock.unlock();
  (*w)->stop();
}

// Replies and watch events carry the object exactly as a get returns it, through either
// transport; an object leaving a selector is seen deleted in its previous state, stamped with
// the revision that changed it. In-process, watchers of one event share one object.
TEST_P(ClientServerTest, RepliesAndWatchEventsCarryTheStoredObject) {
  auto cms = resources::kConfigMaps.in(ns_);
  auto start = client_->list(cms);
  ASSERT_TRUE(start.ok());

  struct Seen {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<WatchEvent> events;
  };
  auto watch = [&](Seen& seen, const std::string& label_selector) {
    ListOptions o;
    o.resource_version = start->resource_version;
    o.label_selector = label_selector;
    return client_->watch(
        cms, o,
        [&seen](const WatchEvent& e) {
          std::lock_guard<std::mutex> lock(seen.mu);
          seen.events.push_back(e);
          seen.cv.notify_all();
        },
        [](const Status&) {});
  };
  Seen all, labelled, second;
  auto w_all = watch(all, "");
  auto w_labelled = watch(labelled, "app=web");
  auto w_second = watch(second, "");
  ASSERT_TRUE(w_all.ok() && w_labelled.ok() && w_second.ok());

  auto created = client_->create(cms, config_map(ns_, "s", {{"k", "v"}}, {{"app", "web"}}));
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  auto got = client_->get(cms, "s");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(**created, **got);

  json relabelled = **got;
  relabelled["metadata"]["labels"]["app"] = "db";
  auto updated = client_->update(cms, relabelled);
  ASSERT_TRUE(updated.ok()) << updated.status().to_string();
  std::string update_rv = (**updated)["metadata"]["resourceVersion"];

  auto wait_for = [](Seen& seen, size_t n) {
    std::unique_lock<std::mutex> lock(seen.mu);
    return seen.cv.wait_for(lock, std::chrono::seconds(20),
                            [&] { return seen.events.size() >= n; });
  };
  ASSERT_TRUE(wait_for(all, 2));
  ASSERT_TRUE(wait_for(second, 2));
  ASSERT_TRUE(wait_for(labelled, 2));
  {
    std::lock_guard<std::mutex> l1(all.mu), l2(labelled.mu), l3(second.mu);
    ASSERT_EQ(all.events.size(), 2u);
    EXPECT_EQ(all.events[0].type, WatchEventType::kAdded);
    EXPECT_EQ(*all.events[0].object, **got);
    EXPECT_EQ(all.events[1].type, WatchEventType::kModified);
    EXPECT_EQ(*all.events[1].object, **updated);

    ASSERT_EQ(labelled.events.size(), 2u);
    EXPECT_EQ(labelled.events[0].type, WatchEventType::kAdded);
    EXPECT_EQ(*labelled.events[0].object, **got);
    EXPECT_EQ(labelled.events[1].type, WatchEventType::kDeleted);
    json left = **got;
    left["metadata"]["resourceVersion"] = update_rv;
    EXPECT_EQ(*labelled.events[1].object, left);

    if (GetParam() == Via::kInProcess) {
      EXPECT_EQ(all.events[1].object, second.events[1].object);
    } else {
      EXPECT_EQ(*all.events[1].object, *second.events[1].object);
    }
  }
  (*w_all)->stop();
  (*w_labelled)->stop();
  (*w_second)->stop();
}

TEST_P(ClientServerTest, WatchEndsWhenTheServersTimeoutPasses) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Status> closed;
  ListOptions o;
  o.timeout_seconds = 1;
  auto w = client_->watch(
      resources::kConfigMaps.in(ns_), o, [](const WatchEvent&) {},
      [&](const Status& s) {
        std::lock_guard<std::mutex> lock(mu);
        closed = s;
        cv.notify_all();
      });
  ASSERT_TRUE(w.ok());
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return closed.has_value(); }));
  EXPECT_TRUE(closed->ok()) << closed->to_string();
}

TEST_P(ClientServerTest, WatchWithABadSelectorClosesWithBadRequest) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Status> closed;
  ListOptions o;
  o.label_selector = "a in (";
  auto w = client_->watch(
      resources::kConfigMaps.in(ns_), o, [](const WatchEvent&) {},
      [&](const Status& s) {
        std::lock_guard<std::mutex> lock(mu);
        closed = s;
        cv.notify_all();
      });
  ASSERT_TRUE(w.ok());
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return closed.has_value(); }));
  EXPECT_EQ(closed->code(), StatusCode::kBadRequest) << closed->to_string();
}

TEST_P(ClientServerTest, StoppedWatchDeliversNothingMore) {
  auto cms = resources::kConfigMaps.in(ns_);
  std::atomic<int> events{0};
  std::atomic<bool> closed{false};
  auto w = client_->watch(
      cms, {}, [&](const WatchEvent&) { ++events; }, [&](const Status&) { closed = true; });
  ASSERT_TRUE(w.ok());
  (*w)->stop();
  int seen = events.load();
  ASSERT_TRUE(client_->create(cms, config_map(ns_, "after-stop")).ok());
  // A second watch sees the write, so the first one had every chance to.
  std::atomic<bool> second_saw{false};
  auto w2 = client_->watch(
      cms, {},
      [&](const WatchEvent& e) {
        if ((*e.object)["metadata"]["name"] == "after-stop") second_saw = true;
      },
      [](const Status&) {});
  ASSERT_TRUE(w2.ok());
  ASSERT_TRUE(eventually([&] { return second_saw.load(); }));
  EXPECT_EQ(events.load(), seen);
  EXPECT_FALSE(closed.load());
}

TEST_P(ClientServerTest, ConcurrentCallsFromManyThreads) {
  auto cms = resources::kConfigMaps.in(ns_);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        std::string name = "c" + std::to_string(t) + "-" + std::to_string(i);
        if (!client_->create(cms, config_map(ns_, name)).ok()) ++failures;
        if (!client_->get(cms, name).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto all = client_->list(cms);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->items.size(), 60u);
}

INSTANTIATE_TEST_SUITE_P(Transports, ClientServerTest,
                         ::testing::Values(Via::kInProcess, Via::kHttps), testing::via_name);

}  // namespace
}  // namespace skiff::client
