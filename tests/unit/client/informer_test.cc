#include "client/informer.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>

#include "client_test_util.h"

namespace skiff::client {
namespace {

using testing::config_map;
using testing::eventually;
using testing::json;
using testing::make_transport;
using testing::new_namespace;
using testing::rv_of;
using testing::SharedServer;
using testing::Via;

// Wraps a real transport with faults a test switches on: a network cut (open streams end
// as broken, new requests fail) and a watch answered with 410 Expired, as when the
// informer's revision has been compacted away. Also counts requests.
class FaultyTransport final : public Transport {
 public:
  explicit FaultyTransport(std::shared_ptr<Transport> inner) : inner_(std::move(inner)) {}

  Result<Reply> round_trip(const Request& req) override {
    auto tap = std::make_shared<Tap>();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (down_) return Status::Unavailable("network cut");
      ++lists_;
    }
    return inner_->round_trip(req);
  }

  Result<std::unique_ptr<Watch>> stream(const Request& req,
                                        std::function<void(std::string_view)> on_data,
                                        std::function<void(const Status&)> on_end) override {
    auto tap = std::make_shared<Tap>();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (down_) return Status::Unavailable("network cut");
      ++watches_;
      if (gone_pending_ > 0) {
        --gone_pending_;
        on_data(R"j({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},)j"
                R"j("status":"Failure","message":"too old resource version: 1 (2)",)j"
                R"j("reason":"Expired","code":410}})j"
                "\n");
        on_end(Status::Ok());
        return std::unique_ptr<Watch>(std::make_unique<TapWatch>(nullptr));
      }
      // Registered before the stream exists, so that a cut() from here on reaches it.
      tap->on_data = std::move(on_data);
      tap->on_end = std::move(on_end);
      taps_.push_back(tap);
    }
    auto w = inner_->stream(
        req,
        [tap](std::string_view data) {
          std::lock_guard<std::recursive_mutex> lock(tap->mu);
          if (!tap->done && tap->on_data) tap->on_data(data);
        },
        [tap](const Status& s) {
          std::function<void(const Status&)> end;
          {
            std::lock_guard<std::recursive_mutex> lock(tap->mu);
            if (tap->done) return;
            tap->done = true;
            end = std::move(tap->on_end);
          }
          if (end) end(s);
        });
    if (!w.ok()) return w.status();
    {
      std::lock_guard<std::recursive_mutex> lock(tap->mu);
      tap->inner = std::move(*w);
    }
    return std::unique_ptr<Watch>(std::make_unique<TapWatch>(tap));
  }

  // Breaks every open stream and fails new requests until restore().
  void cut() {
    std::vector<std::shared_ptr<Tap>> taps;
    {
      std::lock_guard<std::mutex> lock(mu_);
      down_ = true;
      for (auto& w : taps_) {
        if (auto t = w.lock()) taps.push_back(t);
      }
      taps_.clear();
    }
    for (auto& t : taps) {
      std::function<void(const Status&)> end;
      {
        std::lock_guard<std::recursive_mutex> lock(t->mu);
        if (t->done) continue;
        t->done = true;
        end = std::move(t->on_end);
      }
      if (end) end(Status::Unavailable("connection reset"));
    }
  }
  // Heals the network; the next `gone` watches are answered with 410 Expired.
  void restore(int gone = 0) {
    std::lock_guard<std::mutex> lock(mu_);
    down_ = false;
    gone_pending_ = gone;
  }
  void answer_next_watch_with_gone() { restore(1); }
  int lists() {
    std::lock_guard<std::mutex> lock(mu_);
    return lists_;
  }
  int watches() {
    std::lock_guard<std::mutex> lock(mu_);
    return watches_;
  }

 private:
  struct Tap {
    std::recursive_mutex mu;
    bool done = false;  // guarded by mu
    std::function<void(std::string_view)> on_data;
    std::function<void(const Status&)> on_end;
    std::unique_ptr<Watch> inner;
  };
  class TapWatch final : public Watch {
   public:
    explicit TapWatch(std::shared_ptr<Tap> tap) : tap_(std::move(tap)) {}
    ~TapWatch() override { stop(); }
    void stop() override {
      if (!tap_) return;
      std::unique_ptr<Watch> inner;
      {
        std::lock_guard<std::recursive_mutex> lock(tap_->mu);
        tap_->done = true;
        tap_->on_data = nullptr;
        tap_->on_end = nullptr;
        inner = std::move(tap_->inner);
      }
      if (inner) inner->stop();
    }

   private:
    std::shared_ptr<Tap> tap_;
  };

  std::shared_ptr<Transport> inner_;
  std::mutex mu_;
  bool down_ = false;
  int gone_pending_ = 0;
  int lists_ = 0;
  int watches_ = 0;
  std::vector<std::weak_ptr<Tap>> taps_;
};

// What the handlers saw, in order, as "add a 1", "update a 1->2", "delete a 2" (name and the
// value of data.v).
class Recorder {
 public:
  InformerHandlers handlers() {
    InformerHandlers h;
    h.on_add = [this](const ObjectPtr& o) { log("add " + describe(*o)); };
    h.on_update = [this](const ObjectPtr& a, const ObjectPtr& b) {
      log("update " + describe(*a) + "->" + value(*b));
    };
    h.on_delete = [this](const ObjectPtr& o) { log("delete " + describe(*o)); };
    return h;
  }
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  bool saw(const std::string& entry) {
    std::lock_guard<std::mutex> lock(mu_);
    return std::find(seen_.begin(), seen_.end(), entry) != seen_.end();
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.clear();
  }

 private:
  static std::string value(const json& o) {
    auto d = o.find("data");
    if (d == o.end() || !d->contains("v")) return "";
    return (*d)["v"].get<std::string>();
  }
  static std::string describe(const json& o) {
    return o["metadata"]["name"].get<std::string>() + " " + value(o);
  }
  void log(std::string s) {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back(std::move(s));
  }
  std::mutex mu_;
  std::vector<std::string> seen_;
};

constexpr auto kSyncTimeout = std::chrono::seconds(20);

std::vector<std::string> names(std::vector<ObjectPtr> objs) {
  std::vector<std::string> out;
  for (const auto& o : objs) out.push_back((*o)["metadata"]["name"]);
  std::sort(out.begin(), out.end());
  return out;
}

class InformerTest : public ::testing::TestWithParam<Via> {
 protected:
  void SetUp() override {
    client_ = std::make_unique<Client>(make_transport(GetParam()), "skiff-test");
    ns_ = new_namespace(*client_);
    cms_ = resources::kConfigMaps.in(ns_);
  }
  ObjectPtr put(const std::string& name, const std::string& v, json labels = json::object()) {
    auto cur = client_->get(cms_, name);
    if (cur.ok()) {
      json next = **cur;
      next["data"]["v"] = v;
      if (!labels.empty()) next["metadata"]["labels"] = labels;
      auto r = client_->update(cms_, next);
      EXPECT_TRUE(r.ok()) << r.status().to_string();
      return r.ok() ? *r : nullptr;
    }
    auto r = client_->create(cms_, config_map(ns_, name, {{"v", v}}, labels));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : nullptr;
  }
  void del(const std::string& name) { ASSERT_TRUE(client_->remove(cms_, name).ok()); }

  std::unique_ptr<Client> client_;
  std::string ns_;
  ResourceRef cms_;
};

TEST_P(InformerTest, SyncsThenSeesAddsUpdatesAndDeletes) {
  put("a", "1");
  put("b", "1");
  Informer inf(*client_, cms_);
  Recorder rec;
  inf.add_handlers(rec.handlers());
  EXPECT_FALSE(inf.synced());
  inf.start();
  ASSERT_TRUE(inf.wait_for_sync(kSyncTimeout));
  EXPECT_EQ(names(inf.list()), (std::vector<std::string>{"a", "b"}));
  std::vector<std::string> initial = rec.seen();
  std::sort(initial.begin(), initial.end());
  EXPECT_EQ(initial, (std::vector<std::string>{"add a 1", "add b 1"}));
  rec.clear();

  put("c", "1");
  put("a", "2");
  auto last = put("a", "3");
  del("b");
  ASSERT_TRUE(eventually([&] { return rec.seen().size() >= 4; }));
  EXPECT_EQ(rec.seen(),
            (std::vector<std::string>{"add c 1", "update a 1->2", "update a 2->3", "delete b 1"}));
  EXPECT_EQ(names(inf.list()), (std::vector<std::string>{"a", "c"}));
  ASSERT_NE(inf.get(ns_, "a"), nullptr);
  EXPECT_EQ((*inf.get(ns_, "a"))["data"]["v"], "3");
  EXPECT_EQ(inf.get(ns_, "b"), nullptr);
  EXPECT_EQ(inf.get("elsewhere", "a"), nullptr);
  // The informer's version is at least that of the last write it saw.
  EXPECT_GE(std::stoll(inf.resource_version()), std::stoll(rv_of(*last)));
  inf.stop();
}

TEST_P(InformerTest, TransformShapesWhatIsCachedAndHandedOut) {
  put("listed", "1");
  Informer inf(*client_, cms_);
  inf.set_transform(strip_managed_fields);
  std::mutex mu;
  std::vector<ObjectPtr> handed;
  inf.add_handlers({.on_add = [&](const ObjectPtr& o) {
                      std::lock_guard<std::mutex> l(mu);
                      handed.push_back(o);
                    },
                    .on_update = nullptr,
                    .on_delete = nullptr});
  inf.start();
  ASSERT_TRUE(inf.wait_for_sync(kSyncTimeout));
  put("watched", "1");
  ASSERT_TRUE(eventually([&] { return inf.get(ns_, "watched") != nullptr; }));
  // The server keeps the fields' managers; the cache (from the list and from the watch)
  // and the handlers get everything else.
  auto stored = client_->get(cms_, "watched");
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE((**stored)["metadata"].contains("managedFields"));
  for (const char* name : {"listed", "watched"}) {
    ObjectPtr cached = inf.get(ns_, name);
    ASSERT_NE(cached, nullptr) << name;
    EXPECT_FALSE((*cached)["metadata"].contains("managedFields")) << name;
    EXPECT_EQ((*cached)["data"]["v"], "1") << name;
    EXPECT_FALSE((*cached)["metadata"]["uid"].get<std::string>().empty()) << name;
  }
  std::lock_guard<std::mutex> l(mu);
  ASSERT_EQ(handed.size(), 2u);
  for (const auto& o : handed) EXPECT_FALSE((*o)["metadata"].contains("managedFields"));
  inf.stop();
}

TEST(StripManagedFieldsTest, DropsOnlyManagedFields) {
  auto with = std::make_shared<const json>(json::parse(
      R"({"metadata":{"name":"a","managedFields":[{"manager":"kubectl"}]},"data":{"k":"v"}})"));
  ObjectPtr out = strip_managed_fields(with);
  EXPECT_EQ(*out, json::parse(R"({"metadata":{"name":"a"},"data":{"k":"v"}})"));
  EXPECT_TRUE((*with)["metadata"].contains("managedFields"));  // the input is not changed
  auto without = std::make_shared<const json>(json::parse(R"({"metadata":{"name":"b"}})"));
  EXPECT_EQ(strip_managed_fields(without), without);  // nothing to drop: the same object
  EXPECT_EQ(strip_managed_fields(nullptr), nullptr);
}

TEST_P(InformerTest, IndexesAndNamespaceListingFollowEveryChange) {
  std::string other_ns = new_namespace(*client_);
  std::string suite = "idx-" + ns_;
  ListOptions sel;
  sel.label_selector = "suite=" + suite;
  Informer inf(*client_, resources::kConfigMaps, sel);  // every namespace
  inf.add_index("app", [](const json& o) {
    std::vector<std::string> out;
    auto labels = o["metadata"].find("labels");
    if (labels != o["metadata"].end() && labels->contains("app")) {
      out.push_back((*labels)["app"]);
    }
    return out;
  });
  put("web-1", "1", {{"suite", suite}, {"app", "web"}});
  inf.start();
  ASSERT_TRUE(inf.wait_for_sync(kSyncTimeout));
  EXPECT_EQ(names(inf.by_index("app", "web")), (std::vector<std::string>{"web-1"}));

  put("web-2", "1", {{"suite", suite}, {"app", "web"}});
  auto other = client_->create(
      resources::kConfigMaps.in(other_ns),
      config_map(other_ns, "db-1", {{"v", "1"}}, {{"suite", suite}, {"app", "db"}}));
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(eventually([&] { return inf.list().size() == 3; }));
  EXPECT_EQ(names(inf.list(ns_)), (std::vector<std::string>{"web-1", "web-2"}));
  EXPECT_EQ(names(inf.list(other_ns)), (std::vector<std::string>{"db-1"}));
  EXPECT_EQ(names(inf.by_index("app", "web")), (std::vector<std::string>{"web-1", "web-2"}));
  EXPECT_EQ(names(inf.by_index("app", "db")), (std::vector<std::string>{"db-1"}));
  EXPECT_TRUE(inf.by_index("app", "none").empty());
  EXPECT_TRUE(inf.by_index("no-such-index", "web").empty());

  // A changed label moves the object between index values.
  put("web-2", "2", {{"suite", suite}, {"app", "db"}});
  ASSERT_TRUE(eventually([&] { return inf.by_index("app", "db").size() == 2; }));
  EXPECT_EQ(names(inf.by_index("app", "web")), (std::vector<std::string>{"web-1"}));

  // Deleted objects leave every index, and empty namespaces leave the listing.
  ASSERT_TRUE(client_->remove(resources::kConfigMaps.in(other_ns), "db-1").ok());
  del("web-1");
  ASSERT_TRUE(eventually([&] { return inf.list().size() == 1; }));
  EXPECT_TRUE(inf.list(other_ns).empty());
  EXPECT_TRUE(inf.by_index("app", "web").empty());
  EXPECT_EQ(names(inf.by_index("app", "db")), (std::vector<std::string>{"web-2"}));

  // Relabelling out of the selector reads as a delete.
  put("web-2", "3", {{"suite", "other"}, {"app", "db"}});
  ASSERT_TRUE(eventually([&] { return inf.list().empty(); }));
  EXPECT_TRUE(inf.by_index("app", "db").empty());
}

TEST_P(InformerTest, HandlersAddedLateSeeEveryCachedObjectFirst) {
  put("a", "1");
  put("b", "1");
  Informer inf(*client_, cms_);
  inf.start();
  ASSERT_TRUE(inf.wait_for_sync(kSyncTimeout));
  Recorder late;
  inf.add_handlers(late.handlers());
  put("c", "1");
  ASSERT_TRUE(eventually([&] { return late.seen().size() >= 3; }));
  std::vector<std::string> seen = late.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2], "add c 1");  // the existing objects come first
  std::sort(seen.begin(), seen.begin() + 2);
  EXPECT_EQ(seen[0], "add a 1");
  EXPECT_EQ(seen[1], "add b 1");
}

TEST_P(InformerTest, SurvivesTheServerEndingItsWatchWithoutMissingEvents) {
  auto faulty = std::make_shared<FaultyTransport>(make_transport(GetParam()));
  Client c(faulty, "skiff-test");
  ListOptions sel;
  sel.timeout_seconds = 1;  // the server ends each watch after a second
  Informer inf(c, cms_, sel);
  std::mutex mu;
  std::vector<int> values;
  InformerHandlers h;
  h.on_add = [&](const ObjectPtr& o) {
    std::lock_guard<std::mutex> lock(mu);
    values.push_back(std::stoi((*o)["data"]["v"].get<std::string>()));
  };
  h.on_update = [&](const ObjectPtr&, const ObjectPtr& o) { h.on_add(o); };
  inf.add_handlers(h);
  inf.start();
  ASSERT_TRUE(inf.wait_for_sync(kSyncTimeout));
  int watches_before = faulty->watches();

  // Keep writing, each write once the previous one has been seen, until the informer has
  // been through two more watches.
  int n = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (faulty->watches() < watches_before + 2 && std::chrono::steady_clock::now() < deadline) {
    auto written = put("counter", std::to_string(++n));
    ASSERT_NE(written, nullptr);
    ASSERT_TRUE(eventually([&] {
      auto cached = inf.get(ns_, "counter");
      return cached && rv_of(*cached) == rv_of(*written);
    }));
  }
  ASSERT_GE(faulty->watches(), watches_before + 2);
  // Each write also goes out as an event between them; none lost, none repeated.
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(values.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) EXPECT_EQ(values[i], i + 1);
  // Nothing was relisted: the re-watches resumed from the last version seen.
  EXPECT_EQ(faulty->lists(), 1);
}

TEST_P(InformerTest, ResumesAfterABrokenConnection) {
  auto faulty = std::make_shared<FaultyTransport>(make_transport(GetParam()));
  Client c(faulty, "skiff-test");
  put("a", "1");
  Informer inf(c, cms_);
  Recorder rec;
  inf.add_handlers(rec.handlers());
  inf.start();
  ASSERT_TRUE(inf.wait_for_sync(kSyncTimeout));
  rec.clear();

  faulty->cut();
  put("a", "2");
  put("b", "1");
  del("a");
  faulty->restore();
  ASSERT_TRUE(eventually([&] { return rec.seen().size() >= 3; }));
  // The re-watch from the last version seen replays exactly what was missed.
  EXPECT_EQ(rec.seen(), (std::vector<std::string>{"update a 1->2", "add b 1", "delete a 2"}));
  EXPECT_EQ(faulty->lists(), 1);
}

TEST_P(InformerTest, RelistsAfterGoneAndReportsTheDifferences) {
  auto faulty = std::make_shared<FaultyTransport>(make_transport(GetParam()));
  Client c(faulty, "skiff-test");
  put("keep", "1");
  put("change", "1");
  put("remove", "1");
  Informer inf(c, cms_);
  inf.add_index("v", [](const json& o) {
    return std::vector<std::string>{o["data"]["v"].get<std::string>()};
  });
  Recorder rec;
  inf.add_handlers(rec.handlers());
  inf.start();
  ASSERT_TRUE(inf.wait_for_sync(kSyncTimeout));
  rec.clear();
  int lists_before = faulty->lists();

  // While disconnected the objects change; on return the server has forgotten the revision.
  faulty->cut();
  put("change", "2");
  del("remove");
  put("new", "1");
  faulty->answer_next_watch_with_gone();
  ASSERT_TRUE(eventually([&] { return rec.seen().size() >= 3; }));
  std::vector<std::string> seen = rec.seen();
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"add new 1", "delete remove 1", "update change 1->2"}));
  EXPECT_GT(faulty->lists(), lists_before);
  EXPECT_EQ(names(inf.list()), (std::vector<std::string>{"change", "keep", "new"}));
  EXPECT_EQ(names(inf.by_index("v", "1")), (std::vector<std::string>{"keep", "new"}));
  EXPECT_EQ(names(inf.by_index("v", "2")), (std::vector<std::string>{"change"}));

  // And it watches again from the fresh list.
  rec.clear();
  put("keep", "2");
  ASSERT_TRUE(eventually([&] { return rec.saw("update keep 1->2"); }));
  EXPECT_EQ(rec.seen().size(), 1u);
}

TEST_P(InformerTest, FirstListComesInPages) {
  auto faulty = std::make_shared<FaultyTransport>(make_transport(GetParam()));
  Client c(faulty, "skiff-test");
  for (int i = 0; i < 5; ++i) put("cm" + std::to_string(i), "1");
  ListOptions sel;
  sel.limit = 2;
  Informer inf(c, cms_, sel);
  inf.start();
  ASSERT_TRUE(inf.wait_for_sync(kSyncTimeout));
  EXPECT_EQ(inf.list().size(), 5u);
  EXPECT_EQ(faulty->lists(), 3);
}

TEST_P(InformerTest, NoHandlerRunsAfterStop) {
  Informer inf(*client_, cms_);
  std::atomic<int> calls{0};
  std::atomic<bool> stopped{false};
  std::atomic<bool> late_call{false};
  InformerHandlers h;
  h.on_add = [&](const ObjectPtr&) {
    ++calls;
    if (stopped) late_call = true;
  };
  h.on_update = [&](const ObjectPtr&, const ObjectPtr&) {
    ++calls;
    if (stopped) late_call = true;
  };
  inf.add_handlers(h);
  inf.start();
  ASSERT_TRUE(inf.wait_for_sync(kSyncTimeout));
  put("a", "1");
  ASSERT_TRUE(eventually([&] { return calls.load() > 0; }));
  inf.stop();
  stopped = true;
  inf.stop();  // idempotent
  put("a", "2");
  put("b", "1");
  // Another informer sees both writes, so the stopped one had every chance to.
  Informer witness(*client_, cms_);
  witness.start();
  ASSERT_TRUE(witness.wait_for_sync(kSyncTimeout));
  EXPECT_FALSE(late_call.load());
  EXPECT_TRUE(inf.synced());
}

TEST_P(InformerTest, AHandlerMayStopItsInformer) {
  put("a", "1");
  put("b", "1");
  Informer inf(*client_, cms_);
  std::atomic<int> calls{0};
  InformerHandlers h;
  h.on_add = [&](const ObjectPtr&) {
    ++calls;
    inf.stop();
  };
  inf.add_handlers(h);
  inf.start();
  ASSERT_TRUE(eventually([&] { return calls.load() > 0; }));
  inf.stop();  // joins the thread the handler stopped
  EXPECT_EQ(calls.load(), 1);
}

INSTANTIATE_TEST_SUITE_P(Transports, InformerTest, ::testing::Values(Via::kInProcess, Via::kHttps),
                         testing::via_name);

TEST(InformerFactoryTest, SharesOneInformerPerCollection) {
  auto client = testing::make_client(Via::kInProcess);
  std::string ns = new_namespace(*client);
  ASSERT_TRUE(client->create(resources::kConfigMaps.in(ns), config_map(ns, "x")).ok());
  InformerFactory factory(*client);
  Informer& a = factory.informer(resources::kConfigMaps.in(ns));
  Informer& b = factory.informer(resources::kConfigMaps.in(ns));
  EXPECT_EQ(&a, &b);
  Informer& all = factory.informer(resources::kConfigMaps);
  EXPECT_NE(&a, &all);
  EXPECT_EQ(&factory.client(), client.get());
  EXPECT_FALSE(a.synced());
  factory.start();
  ASSERT_TRUE(factory.wait_for_sync(kSyncTimeout));
  EXPECT_NE(a.get(ns, "x"), nullptr);
  EXPECT_NE(all.get(ns, "x"), nullptr);
  // Informers made after start() start at once.
  Informer& late = factory.informer(resources::kNamespaces);
  ASSERT_TRUE(late.wait_for_sync(kSyncTimeout));
  EXPECT_NE(late.get("", ns), nullptr);
  factory.stop();
}

TEST(ObjectKeyTest, KeysOfNamespacedAndClusterObjects) {
  EXPECT_EQ(object_key({{"metadata", {{"namespace", "ns"}, {"name", "a"}}}}), "ns/a");
  EXPECT_EQ(object_key({{"metadata", {{"name", "n1"}}}}), "n1");
  EXPECT_EQ(object_key(json::object()), "");
  std::string ns, name;
  split_key("ns/a", &ns, &name);
  EXPECT_EQ(ns, "ns");
  EXPECT_EQ(name, "a");
  split_key("n1", &ns, &name);
  EXPECT_EQ(ns, "");
  EXPECT_EQ(name, "n1");
}

}  // namespace
}  // namespace skiff::client
