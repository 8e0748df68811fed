#include "apiserver/watch_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "store/sqlite_store.h"

namespace skiff::apiserver {
namespace {

using nlohmann::json;

class WatchCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiff-watch-cache-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    open_store();
  }
  void TearDown() override {
    cache_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void open_store() {
    auto s = store::SqliteStore::open((dir_ / "state.db").string(), {});
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(s.value());
  }

  void start_cache(size_t history = 10000) {
    cache_ = std::make_unique<WatchCache>(
        *store_,
        [](std::string_view, const json& obj, Fields* f) {
          if (obj.contains("spec") && obj["spec"].contains("nodeName")) {
            f->emplace_back("spec.nodeName", obj["spec"]["nodeName"].get<std::string>());
          }
        },
        history);
    ASSERT_TRUE(cache_->start().ok());
  }

  static std::string cm(const std::string& name, const std::string& value,
                        const std::string& label = "") {
    json obj = {{"apiVersion", "v1"},
                {"kind", "ConfigMap"},
                {"metadata", {{"name", name}, {"namespace", "ns"}}},
                {"data", {{"v", value}}}};
    if (!label.empty()) obj["metadata"]["labels"] = {{"app", label}};
    return obj.dump();
  }

  static std::string key(const std::string& name) {
    return "/registry/core/configmaps/ns/" + name;
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<WatchCache> cache_;
};

TEST_F(WatchCacheTest, AcknowledgedWriteIsVisibleWithItsResourceVersion) {
  start_cache();
  auto w = store_->create(key("a"), cm("a", "1"));
  ASSERT_TRUE(w.ok());
  ObjectPtr o = cache_->get(key("a"));
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->mod_revision, w->revision);
  json obj = json::parse(*o->json);
  EXPECT_EQ(obj["metadata"]["resourceVersion"], std::to_string(w->revision));
  EXPECT_EQ(o->name, "a");
  EXPECT_EQ(o->ns, "ns");
}

TEST_F(WatchCacheTest, ListsByPrefixWithLimitAndContinue) {
  start_cache();
  for (const char* n : {"a", "b", "c", "d"}) ASSERT_TRUE(store_->create(key(n), cm(n, "1")).ok());
  ASSERT_TRUE(store_->create("/registry/core/configmaps/other/x", cm("x", "1")).ok());
  auto page = cache_->list("/registry/core/configmaps/ns/", nullptr, 3);
  ASSERT_EQ(page.items.size(), 3u);
  EXPECT_TRUE(page.more);
  auto rest = cache_->list("/registry/core/configmaps/ns/", nullptr, 3, page.items.back()->key);
  ASSERT_EQ(rest.items.size(), 1u);
  EXPECT_EQ(rest.items[0]->name, "d");
  EXPECT_FALSE(rest.more);
  EXPECT_EQ(cache_->count("/registry/core/configmaps/"), 5u);
}

TEST_F(WatchCacheTest, WatcherSeesEventsInOrderAndFilterTransitions) {
  start_cache();
  std::atomic<int> notified{0};
  auto w = cache_->watch(
      "/registry/core/configmaps/ns/",
      [](const CachedObject& o) {
        const std::string* app = o.label("app");
        return app != nullptr && *app == "web";
      },
      -1, false, [&] { notified++; });
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(store_->create(key("a"), cm("a", "1", "web")).ok());
  auto cur = cache_->get(key("a"));
  ASSERT_TRUE(store_->update(key("a"), cm("a", "2", "db"), cur->mod_revision).ok());
  cur = cache_->get(key("a"));
  ASSERT_TRUE(store_->update(key("a"), cm("a", "3", "web"), cur->mod_revision).ok());
  ASSERT_TRUE(store_->create(key("b"), cm("b", "1", "db")).ok());
  auto got = (*w)->take();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].as, EventType::kAdded);
  EXPECT_EQ(got[1].as, EventType::kDeleted);  // stopped matching
  EXPECT_TRUE(got[1].prev_deleted);
  EXPECT_NE(got[1].frame().find("\"DELETED\""), std::string::npos);
  EXPECT_EQ(got[2].as, EventType::kAdded);  // matches again
  EXPECT_GE(notified.load(), 3);
  cache_->unwatch(*w);
}

// The parsed objects in-process watchers take hold what the frames carry, built once per
// object, and follow the key: a newer state gets its own.
TEST_F(WatchCacheTest, ParsedObjectsMatchTheFramesAndAreShared) {
  start_cache();
  auto match_web = [](const CachedObject& o) {
    const std::string* app = o.label("app");
    return app != nullptr && *app == "web";
  };
  auto w1 = cache_->watch("/registry/core/configmaps/ns/", match_web, -1, false, [] {});
  auto w2 = cache_->watch("/registry/core/configmaps/ns/", nullptr, -1, false, [] {});
  ASSERT_TRUE(w1.ok() && w2.ok());
  ASSERT_TRUE(store_->create(key("a"), cm("a", "1", "web")).ok());
  auto cur = cache_->get(key("a"));
  ASSERT_TRUE(store_->update(key("a"), cm("a", "2", "db"), cur->mod_revision).ok());

  auto frame_object = [](const Delivery& d) { return json::parse(d.frame())["object"]; };
  auto filtered = (*w1)->take();
  auto all = (*w2)->take();
  ASSERT_EQ(filtered.size(), 2u);
  ASSERT_EQ(all.size(), 2u);
  for (const auto* batch : {&filtered, &all}) {
    for (const Delivery& d : *batch) EXPECT_EQ(*d.parsed(), frame_object(d));
  }
  EXPECT_TRUE(filtered[1].prev_deleted);
  EXPECT_EQ((*filtered[1].parsed())["data"]["v"], "1");
  EXPECT_EQ((*filtered[1].parsed())["metadata"]["resourceVersion"],
            std::to_string(all[1].event->revision()));
  EXPECT_EQ(filtered[0].parsed(), all[0].parsed());
  EXPECT_EQ(all[1].parsed(), cache_->get(key("a"))->parsed());
  EXPECT_NE(all[0].parsed(), all[1].parsed());
  cache_->unwatch(*w1);
  cache_->unwatch(*w2);
}

TEST_F(WatchCacheTest, WatchFromRevisionReplaysOnlyLaterEvents) {
  start_cache();
  auto first = store_->create(key("a"), cm("a", "1"));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(store_->create(key("b"), cm("b", "1")).ok());
  ASSERT_TRUE(store_->remove(key("a")).ok());
  auto w = cache_->watch("/registry/core/configmaps/", nullptr, first->revision, false, [] {});
  ASSERT_TRUE(w.ok());
  auto got = (*w)->take();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].as, EventType::kAdded);
  EXPECT_EQ(got[0].object()->name, "b");
  EXPECT_EQ(got[1].as, EventType::kDeleted);
  EXPECT_EQ(got[1].object()->name, "a");
  // The deleted object carries the delete's revision.
  EXPECT_GT(got[1].object()->mod_revision, got[0].object()->mod_revision);
}

TEST_F(WatchCacheTest, WatchOlderThanTheWindowIsGone) {
  start_cache(/*history=*/2);
  auto first = store_->create(key("a"), cm("a", "1"));
  for (const char* n : {"b", "c", "d"}) ASSERT_TRUE(store_->create(key(n), cm(n, "1")).ok());
  auto w = cache_->watch("/registry/core/configmaps/", nullptr, first->revision, false, [] {});
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kGone);
  EXPECT_NE(w.status().message().find("too old resource version"), std::string::npos);
}

TEST_F(WatchCacheTest, HistorySurvivesRestartSoWatchesResume) {
  start_cache();
  auto first = store_->create(key("a"), cm("a", "1"));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(store_->create(key("b"), cm("b", "1")).ok());
  cache_.reset();
  store_.reset();
  open_store();
  start_cache();
  ASSERT_TRUE(store_->create(key("c"), cm("c", "1")).ok());
  auto w = cache_->watch("/registry/core/configmaps/", nullptr, first->revision, false, [] {});
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  auto got = (*w)->take();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].object()->name, "b");
  EXPECT_EQ(got[1].object()->name, "c");
}

TEST_F(WatchCacheTest, InitialEventsListCurrentObjectsThenFollow) {
  start_cache();
  ASSERT_TRUE(store_->create(key("a"), cm("a", "1")).ok());
  auto w = cache_->watch("/registry/core/configmaps/", nullptr, -1, true, [] {});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(store_->create(key("b"), cm("b", "1")).ok());
  auto got = (*w)->take();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].object()->name, "a");
  EXPECT_EQ(got[1].object()->name, "b");
}

TEST_F(WatchCacheTest, EventFramesAreBuiltOnceAndShared) {
  start_cache();
  auto w1 = cache_->watch("/registry/core/configmaps/", nullptr, -1, false, [] {});
  auto w2 = cache_->watch("/registry/core/configmaps/ns/", nullptr, -1, false, [] {});
  ASSERT_TRUE(store_->create(key("a"), cm("a", "1")).ok());
  auto a = (*w1)->take();
  auto b = (*w2)->take();
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a[0].event.get(), b[0].event.get());
  EXPECT_EQ(&a[0].frame(), &b[0].frame());
  EXPECT_EQ(a[0].frame().back(), '\n');
}

TEST_F(WatchCacheTest, SelectableFieldsAreIndexed) {
  start_cache();
  json pod = {{"metadata", {{"name", "p"}, {"namespace", "ns"}}}, {"spec", {{"nodeName", "n1"}}}};
  ASSERT_TRUE(store_->create("/registry/core/pods/ns/p", pod.dump()).ok());
  auto o = cache_->get("/registry/core/pods/ns/p");
  ASSERT_NE(o, nullptr);
  ASSERT_NE(o->field("spec.nodeName"), nullptr);
  EXPECT_EQ(*o->field("spec.nodeName"), "n1");
  EXPECT_EQ(*o->field("metadata.name"), "p");
}

}  // namespace
}  // namespace skiff::apiserver
