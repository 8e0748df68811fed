#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "controllers/framework.h"
#include "testing/test_server.h"

namespace skiff::controllers {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr char kTestNamespace[] = "framework-test";
constexpr char kReconciledBy[] = "framework-test/reconciled-by";

// What the test controller's instances did, across managers.
struct TestControllerLog {
  std::mutex mu;
  int live = 0;  // instances alive now
  int max_live = 0;
  int instances = 0;
  std::map<std::string, int> reconciles_by_agent;
  std::map<std::string, int> attempts_by_key;

  void reset() {
    std::lock_guard<std::mutex> lock(mu);
    live = max_live = instances = 0;
    reconciles_by_agent.clear();
    attempts_by_key.clear();
  }
};

TestControllerLog& test_log() {
  static auto* log = new TestControllerLog();
  return *log;
}

// Marks each ConfigMap of kTestNamespace with the user agent of the manager whose instance
// reconciled it; a ConfigMap with data.failures = "N" fails its first N reconciles.
class FrameworkTestController final : public Controller {
 public:
  explicit FrameworkTestController(ControllerContext& ctx)
      : ctx_(ctx),
        config_maps_(ctx.informers.informer(client::resources::kConfigMaps.in(kTestNamespace))) {
    TestControllerLog& log = test_log();
    std::lock_guard<std::mutex> lock(log.mu);
    ++log.instances;
    log.max_live = std::max(log.max_live, ++log.live);
  }
  ~FrameworkTestController() override {
    TestControllerLog& log = test_log();
    std::lock_guard<std::mutex> lock(log.mu);
    --log.live;
  }

  std::string name() const override { return "framework_test"; }

  void setup(WorkQueue& queue) override {
    auto enqueue = [&queue](const client::ObjectPtr& obj) { queue.add(client::object_key(*obj)); };
    config_maps_.add_handlers(
        {enqueue,
         [enqueue](const client::ObjectPtr&, const client::ObjectPtr& obj) { enqueue(obj); },
         enqueue});
  }

  Status reconcile(const std::string& key) override {
    std::string ns, name;
    client::split_key(key, &ns, &name);
    client::ObjectPtr cm = config_maps_.get(ns, name);
    if (!cm) return Status::Ok();
    const std::string& agent = ctx_.client.user_agent();
    int attempt = 0;
    {
      TestControllerLog& log = test_log();
      std::lock_guard<std::mutex> lock(log.mu);
      ++log.reconciles_by_agent[agent];
      attempt = ++log.attempts_by_key[key];
    }
    int failures = 0;
    if (cm->contains("data") && (*cm)["data"].contains("failures")) {
      failures = std::stoi((*cm)["data"]["failures"].get<std::string>());
    }
    if (attempt <= failures) return Status::Internal("failing on purpose");
    const json& meta = (*cm)["metadata"];
    if (meta.contains("annotations") && meta["annotations"].value(kReconciledBy, "") == agent) {
      return Status::Ok();
    }
    json patch = {{"metadata", {{"annotations", {{kReconciledBy, agent}}}}}};
    auto r = ctx_.client.patch(client::resources::kConfigMaps.in(ns), name,
                               client::PatchType::kMerge, patch.dump());
    if (!r.ok()) return r.status();
    ctx_.events.record(*cm, "Normal", "Reconciled", "reconciled by " + agent);
    return Status::Ok();
  }

 private:
  ControllerContext& ctx_;
  client::Informer& config_maps_;
};

SKIFF_REGISTER_CONTROLLER(framework_test, [](ControllerContext& ctx) {
  return std::make_unique<FrameworkTestController>(ctx);
});

TEST(ControllerRegistryTest, RegisteredControllersAreListedSortedAndUnique) {
  auto names = registered_controllers();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_NE(std::find(names.begin(), names.end(), "framework_test"), names.end());
  EXPECT_TRUE(controller_factory("framework_test"));
  EXPECT_FALSE(controller_factory("no_such_controller"));

  auto factory = [](ControllerContext&) -> std::unique_ptr<Controller> { return nullptr; };
  EXPECT_FALSE(register_controller("framework_test", factory));
  EXPECT_FALSE(register_controller("", factory));
  EXPECT_FALSE(register_controller("no_factory", ControllerFactory()));
  EXPECT_EQ(registered_controllers(), names);
}

class ControllerManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    admin_ = server_.client("manager-test");
    json ns = {
        {"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kTestNamespace}}}};
    auto r = admin_->create(client::resources::kNamespaces, ns);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    test_log().reset();
  }

  static ManagerOptions options(const std::string& identity) {
    ManagerOptions o;
    o.identity = identity;
    o.enabled = {"framework_test"};
    o.lease_duration = 2s;
    o.renew_deadline = 1s;
    o.retry_period = 200ms;
    o.release_on_stop = false;
    return o;
  }

  json lease() {
    auto r = admin_->get(client::resources::kLeases.in(ControllerManager::kLeaseNamespace),
                         ControllerManager::kLeaseName);
    return r.ok() ? *r.value() : json();
  }

  std::string holder() {
    json l = lease();
    return l.is_object() ? l["spec"].value("holderIdentity", "") : "";
  }

  int64_t transitions() {
    json l = lease();
    return l.is_object() ? l["spec"].value("leaseTransitions", int64_t{-1}) : -1;
  }

  // Waits until the Lease has been written n more times (each renewal changes renewTime).
  bool wait_for_renewals(size_t n) {
    std::set<std::string> seen;
    return testing::eventually(
        [&] {
          json l = lease();
          if (l.is_object()) seen.insert(l["spec"].value("renewTime", ""));
          return seen.size() > n;
        },
        10s);
  }

  void create_config_map(const std::string& name, int failures = 0) {
    json cm = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata", {{"name", name}, {"namespace", kTestNamespace}}},
               {"data", {{"failures", std::to_string(failures)}}}};
    auto r = admin_->create(client::resources::kConfigMaps.in(kTestNamespace), cm);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
  }

  std::string reconciled_by(const std::string& name) {
    auto r = admin_->get(client::resources::kConfigMaps.in(kTestNamespace), name);
    if (!r.ok()) return "";
    const json& meta = (*r.value())["metadata"];
    return meta.contains("annotations") ? meta["annotations"].value(kReconciledBy, "") : "";
  }

  int reconciles_by(const std::string& agent) {
    std::lock_guard<std::mutex> lock(test_log().mu);
    auto it = test_log().reconciles_by_agent.find(agent);
    return it == test_log().reconciles_by_agent.end() ? 0 : it->second;
  }

  int live_instances() {
    std::lock_guard<std::mutex> lock(test_log().mu);
    return test_log().live;
  }

  testing::TestServer server_;
  std::unique_ptr<client::Client> admin_;
};

TEST_F(ControllerManagerTest, OnlyTheLeaderRunsControllersAndAnotherTakesOverAfterExpiry) {
  auto client_a = server_.client("manager-a");
  auto client_b = server_.client("manager-b");
  ControllerManager a(*client_a, options("a"));
  ControllerManager b(*client_b, options("b"));
  EXPECT_EQ(a.identity(), "a");

  a.start();
  ASSERT_TRUE(testing::eventually([&] { return a.is_leader(); }));
  b.start();
  json l = lease();
  ASSERT_TRUE(l.is_object());
  EXPECT_EQ(l["spec"]["holderIdentity"], "a");
  EXPECT_EQ(l["spec"]["leaseDurationSeconds"], 2);
  EXPECT_EQ(l["spec"]["leaseTransitions"], 0);
  EXPECT_TRUE(parse_rfc3339(l["spec"]["acquireTime"].get<std::string>()).ok());
  EXPECT_TRUE(parse_rfc3339(l["spec"]["renewTime"].get<std::string>()).ok());

  create_config_map("one");
  ASSERT_TRUE(testing::eventually([&] { return reconciled_by("one") == "manager-a"; }));
  // b campaigns every retry period meanwhile, and loses each time.
  ASSERT_TRUE(wait_for_renewals(4));
  EXPECT_FALSE(b.is_leader());
  EXPECT_EQ(holder(), "a");
  EXPECT_EQ(reconciles_by("manager-b"), 0);
  EXPECT_EQ(live_instances(), 1);

  SteadyClock::time_point stopped_at = SteadyClock::now();
  a.stop();
  EXPECT_FALSE(a.is_leader());
  EXPECT_EQ(live_instances(), 0);
  EXPECT_EQ(holder(), "a");  // not released: b must wait for the lease to expire

  ASSERT_TRUE(testing::eventually([&] { return b.is_leader(); }, 15s));
  EXPECT_GE(SteadyClock::now() - stopped_at, 1s);
  EXPECT_EQ(holder(), "b");
  EXPECT_EQ(transitions(), 1);

  create_config_map("two");
  ASSERT_TRUE(testing::eventually([&] { return reconciled_by("two") == "manager-b"; }));
  {
    std::lock_guard<std::mutex> lock(test_log().mu);
    EXPECT_EQ(test_log().max_live, 1);
    EXPECT_EQ(test_log().instances, 2);
  }
  b.stop();
  EXPECT_EQ(live_instances(), 0);
}

TEST_F(ControllerManagerTest, ManagersStartedTogetherElectOneLeader) {
  auto client_a = server_.client("manager-a");
  auto client_b = server_.client("manager-b");
  auto client_c = server_.client("manager-c");
  ControllerManager a(*client_a, options("a"));
  ControllerManager b(*client_b, options("b"));
  ControllerManager c(*client_c, options("c"));
  a.start();
  b.start();
  c.start();
  ASSERT_TRUE(testing::eventually([&] { return a.is_leader() || b.is_leader() || c.is_leader(); }));
  ASSERT_TRUE(wait_for_renewals(3));
  int leaders = int{a.is_leader()} + int{b.is_leader()} + int{c.is_leader()};
  EXPECT_EQ(leaders, 1);
  std::string h = holder();
  EXPECT_TRUE((h == "a" && a.is_leader()) || (h == "b" && b.is_leader()) ||
              (h == "c" && c.is_leader()))
      << h;
  EXPECT_EQ(transitions(), 0);
  create_config_map("one");
  ASSERT_TRUE(testing::eventually([&] { return reconciled_by("one") == "manager-" + h; }));
  std::lock_guard<std::mutex> lock(test_log().mu);
  EXPECT_EQ(test_log().max_live, 1);
}

TEST_F(ControllerManagerTest, StoppedLeaderReleasesTheLeaseForAQuickTakeover) {
  auto client_a = server_.client("manager-a");
  auto client_b = server_.client("manager-b");
  ManagerOptions oa = options("a");
  ManagerOptions ob = options("b");
  // Long enough that a takeover well before expiry can only come from the release.
  for (ManagerOptions* o : {&oa, &ob}) {
    o->lease_duration = 30s;
    o->renew_deadline = 20s;
    o->release_on_stop = true;
  }
  ControllerManager a(*client_a, oa);
  ControllerManager b(*client_b, ob);
  a.start();
  ASSERT_TRUE(testing::eventually([&] { return a.is_leader(); }));
  b.start();
  ASSERT_TRUE(wait_for_renewals(2));
  EXPECT_FALSE(b.is_leader());

  SteadyClock::time_point stopped_at = SteadyClock::now();
  a.stop();
  EXPECT_NE(holder(), "a");
  ASSERT_TRUE(testing::eventually([&] { return b.is_leader(); }, 15s));
  EXPECT_LT(SteadyClock::now() - stopped_at, 15s);
  EXPECT_EQ(holder(), "b");
  EXPECT_EQ(transitions(), 1);
}

TEST_F(ControllerManagerTest, LeaderThatCannotRenewStepsDownAndCampaignsAgain) {
  auto client_a = server_.client("manager-a");
  ControllerManager a(*client_a, options("a"));
  a.start();
  ASSERT_TRUE(testing::eventually([&] { return a.is_leader(); }));
  create_config_map("one");
  ASSERT_TRUE(testing::eventually([&] { return reconciled_by("one") == "manager-a"; }));

  // Another server takes the Lease behind a's back (as after a long pause of a).
  SteadyClock::time_point taken_at;
  ASSERT_TRUE(testing::eventually([&] {
    json l = lease();
    if (!l.is_object()) return false;
    l["spec"]["holderIdentity"] = "intruder";
    l["spec"]["renewTime"] = format_rfc3339_micro(now());
    taken_at = SteadyClock::now();
    return admin_->update(client::resources::kLeases.in(ControllerManager::kLeaseNamespace), l)
        .ok();
  }));
  ASSERT_TRUE(testing::eventually([&] { return !a.is_leader(); }, 10s));
  EXPECT_GE(SteadyClock::now() - taken_at, 300ms);  // renew_deadline (1 s) less a retry or two
  EXPECT_EQ(live_instances(), 0);

  // The intruder never renews: once its Lease expires, a takes it again and restarts its
  // controllers.
  ASSERT_TRUE(testing::eventually([&] { return a.is_leader(); }, 15s));
  EXPECT_EQ(holder(), "a");
  EXPECT_EQ(transitions(), 1);
  create_config_map("two");
  ASSERT_TRUE(testing::eventually([&] { return reconciled_by("two") == "manager-a"; }));
  std::lock_guard<std::mutex> lock(test_log().mu);
  EXPECT_EQ(test_log().instances, 2);
  EXPECT_EQ(test_log().max_live, 1);
}

TEST_F(ControllerManagerTest, FailedReconcilesAreRetriedWithBackoff) {
  auto client_a = server_.client("manager-a");
  ControllerManager a(*client_a, options("a"));
  a.start();
  create_config_map("flaky", 3);
  ASSERT_TRUE(testing::eventually([&] { return reconciled_by("flaky") == "manager-a"; }));
  {
    std::lock_guard<std::mutex> lock(test_log().mu);
    EXPECT_GE(test_log().attempts_by_key[std::string(kTestNamespace) + "/flaky"], 4);
  }
  // The controller's Events carry its registered name as their source.
  ASSERT_TRUE(testing::eventually([&] {
    auto evs = admin_->list(client::resources::kEvents.in(kTestNamespace));
    if (!evs.ok()) return false;
    for (const auto& ev : evs->items) {
      if ((*ev)["reason"] == "Reconciled" &&
          (*ev)["source"]["component"] == "framework-test-controller") {
        return true;
      }
    }
    return false;
  }));
  a.stop();
}

TEST_F(ControllerManagerTest, StopBeforeLeadingAndRestartAreClean) {
  auto client_a = server_.client("manager-a");
  ControllerManager a(*client_a, options("a"));
  a.stop();
  a.start();
  a.start();
  ASSERT_TRUE(testing::eventually([&] { return a.is_leader(); }));
  a.stop();
  a.stop();
  EXPECT_FALSE(a.is_leader());
  a.start();  // same identity: takes its own Lease again at once
  ASSERT_TRUE(testing::eventually([&] { return a.is_leader(); }));
  create_config_map("one");
  ASSERT_TRUE(testing::eventually([&] { return reconciled_by("one") == "manager-a"; }));
}

}  // namespace
}  // namespace skiff::controllers
