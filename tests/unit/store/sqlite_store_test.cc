#include "store/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "store/testing/fault_vfs.h"
#include "store_test_util.h"

namespace skiff::store {
namespace {

using test::Callbacks;
using test::create_op;
using test::EventLog;
using test::TempDir;
using test::update_op;

// Most tests check semantics, not durability, so they open the store through a FaultVfs that
// never crashes and skips the real fsync: real SQLite, without waiting for the disk on every
// commit. Durability is covered by the tests that pass real_fsync and by the crash tests.
class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { open_store(); }

  void open_store(SqliteStoreOptions opts = {}, bool real_fsync = false) {
    store_.reset();
    if (!real_fsync) opts.vfs = vfs_.name();
    auto s = SqliteStore::open(db_path(), opts);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    store_ = std::move(s).value();
  }

  std::string db_path() const { return dir_.file("state.db"); }

  // Rows in the kv log, read with a separate connection.
  int64_t log_rows() {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(db_path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM kv", -1, &stmt, nullptr);
    int64_t n = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
  }

  TempDir dir_;
  testing::FaultVfs vfs_{"skiff-no-fsync"};
  std::unique_ptr<SqliteStore> store_;
};

// ---- conditional writes ----

TEST_F(SqliteStoreTest, CreateThenGetReturnsValueAndRevisions) {
  auto w = store_->create("/registry/core/pods/ns/a", "v1");
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  EXPECT_EQ(w->revision, 1);
  EXPECT_EQ(w->create_revision, 1);
  EXPECT_EQ(w->prev_value, nullptr);

  auto kv = store_->get("/registry/core/pods/ns/a");
  ASSERT_TRUE(kv.ok()) << kv.status().to_string();
  EXPECT_EQ(*kv->value, "v1");
  EXPECT_EQ(kv->create_revision, 1);
  EXPECT_EQ(kv->mod_revision, 1);
  EXPECT_EQ(store_->current_revision(), 1);
}

TEST_F(SqliteStoreTest, GetOfMissingKeyIsNotFound) {
  auto kv = store_->get("/nope");
  EXPECT_EQ(kv.status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, CreateOfExistingKeyFailsWithAlreadyExists) {
  ASSERT_TRUE(store_->create("/k", "v1").ok());
  auto again = store_->create("/k", "v2");
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*store_->get("/k")->value, "v1");
}

TEST_F(SqliteStoreTest, StaleUpdateIsRejectedWithConflict) {
  auto c = store_->create("/k", "v1");
  auto u = store_->update("/k", "v2", c->revision);
  ASSERT_TRUE(u.ok()) << u.status().to_string();
  auto stale = store_->update("/k", "v3", c->revision);
  EXPECT_EQ(stale.status().code(), StatusCode::kConflict);
  EXPECT_EQ(*store_->get("/k")->value, "v2");
  EXPECT_EQ(store_->get("/k")->mod_revision, u->revision);
}

TEST_F(SqliteStoreTest, UpdateOfMissingKeyFailsWithNotFound) {
  auto u = store_->update("/missing", "v", 1);
  EXPECT_EQ(u.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->current_revision(), 0);
}

TEST_F(SqliteStoreTest, UpdateReturnsPreviousValueAndKeepsCreateRevision) {
  ASSERT_TRUE(store_->create("/other", "x").ok());
  auto c = store_->create("/k", "v1");
  auto u = store_->update("/k", "v2", c->revision);
  ASSERT_TRUE(u.ok());
  ASSERT_NE(u->prev_value, nullptr);
  EXPECT_EQ(*u->prev_value, "v1");
  EXPECT_EQ(u->create_revision, c->revision);
  EXPECT_EQ(store_->get("/k")->create_revision, c->revision);
}

TEST_F(SqliteStoreTest, RemoveChecksExpectedRevisionAndZeroRemovesUnconditionally) {
  auto a = store_->create("/a", "va");
  ASSERT_TRUE(store_->create("/b", "vb").ok());
  auto stale = store_->remove("/a", a->revision + 100);
  EXPECT_EQ(stale.status().code(), StatusCode::kConflict);

  auto removed = store_->remove("/a", a->revision);
  ASSERT_TRUE(removed.ok()) << removed.status().to_string();
  ASSERT_NE(removed->prev_value, nullptr);
  EXPECT_EQ(*removed->prev_value, "va");
  EXPECT_EQ(removed->create_revision, a->revision);

  auto unconditional = store_->remove("/b");
  ASSERT_TRUE(unconditional.ok());
  EXPECT_EQ(*unconditional->prev_value, "vb");
  EXPECT_EQ(store_->remove("/b").status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, RemovedKeyIsNotFoundAndCanBeCreatedAgain) {
  auto first = store_->create("/k", "v1");
  ASSERT_TRUE(store_->remove("/k").ok());
  EXPECT_EQ(store_->get("/k").status().code(), StatusCode::kNotFound);
  auto again = store_->create("/k", "v2");
  ASSERT_TRUE(again.ok());
  EXPECT_GT(again->create_revision, first->create_revision);
  EXPECT_EQ(again->prev_value, nullptr);
  EXPECT_EQ(store_->get("/k")->create_revision, again->revision);
}

TEST_F(SqliteStoreTest, InvalidWritesAreRejected) {
  EXPECT_EQ(store_->create("", "v").status().code(), StatusCode::kInvalid);
  WriteOp no_value;
  no_value.kind = WriteOp::Kind::kCreate;
  no_value.key = "/k";
  EXPECT_EQ(store_->write_sync(no_value).status().code(), StatusCode::kInvalid);
  EXPECT_EQ(store_->remove("/k", -1).status().code(), StatusCode::kInvalid);
  EXPECT_EQ(store_->current_revision(), 0);
}

TEST_F(SqliteStoreTest, EmptyValuesAndBinaryKeysRoundTrip) {
  std::string key = std::string("/bin/\0\xff", 7);
  ASSERT_TRUE(store_->create(key, "").ok());
  auto kv = store_->get(key);
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(*kv->value, "");
  auto list = store_->list("/bin/");
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_EQ(list->items[0].key, key);
}

TEST_F(SqliteStoreTest, RevisionsStrictlyIncreaseAndFailedWritesDoNotUseOne) {
  int64_t last = 0;
  for (int i = 0; i < 20; ++i) {
    auto w = store_->create("/k" + std::to_string(i), "v");
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w->revision, last + 1);
    last = w->revision;
    EXPECT_FALSE(store_->create("/k" + std::to_string(i), "v").ok());
  }
  EXPECT_EQ(store_->current_revision(), last);
  auto u = store_->update("/k3", "w", 4);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->revision, last + 1);
}

TEST_F(SqliteStoreTest, FailedOpInBatchDoesNotAffectOthers) {
  ASSERT_TRUE(store_->create("/existing", "v").ok());  // revision 1
  store_->pause_writer();
  Callbacks cbs;
  store_->write(create_op("/a", "1"), cbs.add(0));
  store_->write(create_op("/a", "dup"), cbs.add(1));           // AlreadyExists (same batch)
  store_->write(update_op("/existing", "x", 99), cbs.add(2));  // Conflict
  store_->write(update_op("/missing", "x", 1), cbs.add(3));    // NotFound
  store_->write(update_op("/a", "2", 2), cbs.add(4));          // sees /a from this batch
  store_->write(create_op("/b", "1"), cbs.add(5));
  store_->resume_writer();
  ASSERT_TRUE(cbs.wait_all());

  ASSERT_TRUE(cbs.result(0).ok());
  EXPECT_EQ(cbs.result(0)->revision, 2);
  EXPECT_EQ(cbs.result(1).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(cbs.result(2).status().code(), StatusCode::kConflict);
  EXPECT_EQ(cbs.result(3).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(cbs.result(4).ok()) << cbs.result(4).status().to_string();
  EXPECT_EQ(cbs.result(4)->revision, 3);
  EXPECT_EQ(*cbs.result(4)->prev_value, "1");
  ASSERT_TRUE(cbs.result(5).ok());
  EXPECT_EQ(cbs.result(5)->revision, 4);
  EXPECT_EQ(*store_->get("/a")->value, "2");
  EXPECT_EQ(store_->get("/a")->create_revision, 2);
  EXPECT_EQ(store_->current_revision(), 4);
}

// ---- group commit ----

TEST_F(SqliteStoreTest, GroupCommitPutsQueuedWritesInOneTransaction) {
  ASSERT_TRUE(store_->create("/warmup", "v").ok());
  store_->pause_writer();
  SqliteStoreStats before = store_->stats();
  Callbacks cbs;
  for (int i = 0; i < 10; ++i) store_->write(create_op("/k" + std::to_string(i), "v"), cbs.add(i));
  store_->resume_writer();
  ASSERT_TRUE(cbs.wait_all());
  SqliteStoreStats after = store_->stats();

  EXPECT_EQ(after.writes - before.writes, 10u);
  EXPECT_EQ(after.transactions - before.transactions, 1u);
  EXPECT_GE(after.largest_batch, 10u);
  std::set<int64_t> revisions;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(cbs.result(i).ok());
    revisions.insert(cbs.result(i)->revision);
  }
  EXPECT_EQ(revisions.size(), 10u);
  EXPECT_EQ(*revisions.begin(), 2);
  EXPECT_EQ(*revisions.rbegin(), 11);
}

TEST_F(SqliteStoreTest, BatchesAreBoundedByMaxBatchWrites) {
  SqliteStoreOptions opts;
  opts.max_batch_writes = 4;
  open_store(opts);
  store_->pause_writer();
  Callbacks cbs;
  for (int i = 0; i < 10; ++i) store_->write(create_op("/k" + std::to_string(i), "v"), cbs.add(i));
  store_->resume_writer();
  ASSERT_TRUE(cbs.wait_all());
  EXPECT_EQ(store_->stats().transactions, 3u);
  EXPECT_EQ(store_->stats().largest_batch, 4u);
}

TEST_F(SqliteStoreTest, ConcurrentWritersShareTransactions) {
  open_store({}, /*real_fsync=*/true);
  constexpr int kThreads = 32;
  constexpr int kWritesEach = 20;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWritesEach; ++i) {
        if (!store_->create("/t" + std::to_string(t) + "/" + std::to_string(i), "v").ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  SqliteStoreStats s = store_->stats();
  EXPECT_EQ(s.writes, static_cast<uint64_t>(kThreads * kWritesEach));
  EXPECT_EQ(store_->current_revision(), kThreads * kWritesEach);
  // With 32 writers waiting on each commit, commits must carry several writes each.
  EXPECT_LT(s.transactions, s.writes / 2);
  EXPECT_GT(s.largest_batch, 1u);
}

// ---- list ----

TEST_F(SqliteStoreTest, ListReturnsKeysUnderPrefixInKeyOrder) {
  for (const char* k : {"/a/b/2", "/a/b/1", "/a/bc", "/a/b", "/a/c/1", "/b/1"}) {
    ASSERT_TRUE(store_->create(k, std::string("v") + k).ok());
  }
  auto list = store_->list("/a/b/");
  ASSERT_TRUE(list.ok()) << list.status().to_string();
  ASSERT_EQ(list->items.size(), 2u);
  EXPECT_EQ(list->items[0].key, "/a/b/1");
  EXPECT_EQ(*list->items[0].value, "v/a/b/1");
  EXPECT_EQ(list->items[0].mod_revision, 2);
  EXPECT_EQ(list->items[1].key, "/a/b/2");
  EXPECT_FALSE(list->more);

  auto all = store_->list("");
  ASSERT_EQ(all->items.size(), 6u);
  for (size_t i = 1; i < all->items.size(); ++i) {
    EXPECT_LT(all->items[i - 1].key, all->items[i].key);
  }
}

TEST_F(SqliteStoreTest, ListExcludesRemovedKeysAndShowsLatestValues) {
  auto a = store_->create("/p/a", "1");
  ASSERT_TRUE(store_->create("/p/b", "1").ok());
  ASSERT_TRUE(store_->update("/p/a", "2", a->revision).ok());
  ASSERT_TRUE(store_->remove("/p/b").ok());
  auto list = store_->list("/p/");
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_EQ(*list->items[0].value, "2");
  EXPECT_EQ(list->items[0].create_revision, a->revision);
}

TEST_F(SqliteStoreTest, ListPagesWithLimitAndStartAfter) {
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store_->create("/p/" + std::to_string(i), "v").ok());
  ASSERT_TRUE(store_->create("/q/0", "v").ok());
  std::vector<std::string> seen;
  std::string after;
  int pages = 0;
  for (;;) {
    auto page = store_->list("/p/", after, 3);
    ASSERT_TRUE(page.ok());
    ++pages;
    for (const auto& kv : page->items) seen.push_back(kv.key);
    if (!page->more) break;
    ASSERT_EQ(page->items.size(), 3u);
    after = page->items.back().key;
  }
  EXPECT_EQ(pages, 4);
  ASSERT_EQ(seen.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(seen[i], "/p/" + std::to_string(i));

  auto exact = store_->list("/p/", "", 10);
  EXPECT_EQ(exact->items.size(), 10u);
  EXPECT_FALSE(exact->more);
  // start_after before the prefix range changes nothing; after it, nothing is left.
  EXPECT_EQ(store_->list("/p/", "/a")->items.size(), 10u);
  EXPECT_EQ(store_->list("/p/", "/z")->items.size(), 0u);
}

TEST_F(SqliteStoreTest, ListReportsTheRevisionItReflects) {
  EXPECT_EQ(store_->list("/")->revision, 0);
  ASSERT_TRUE(store_->create("/a", "v").ok());
  ASSERT_TRUE(store_->create("/b", "v").ok());
  EXPECT_EQ(store_->list("/a")->revision, 2);
  EXPECT_EQ(store_->list("/nothing/")->revision, 2);
}

TEST_F(SqliteStoreTest, ListOfManyKeysReturnsAllInOnePass) {
  constexpr int kKeys = 5000;
  Callbacks cbs;
  for (int i = 0; i < kKeys; ++i) {
    char key[32];
    snprintf(key, sizeof key, "/registry/k/%06d", i);
    store_->write(create_op(key, std::string(100, 'x')), cbs.add(i));
  }
  ASSERT_TRUE(cbs.wait_all());
  auto start = std::chrono::steady_clock::now();
  auto list = store_->list("/registry/");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->items.size(), static_cast<size_t>(kKeys));
  EXPECT_EQ(list->revision, kKeys);
  EXPECT_EQ(list->items[1234].key, "/registry/k/001234");
  std::cout << "[ info ] listed " << kKeys << " keys in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms, "
            << store_->stats().transactions << " transactions for " << kKeys << " writes\n";
}

TEST_F(SqliteStoreTest, ReadsAreConsistentWhileWritersRun) {
  // Every key is created and later updated in pairs by one writer; a list must never show a
  // value newer than its revision.
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 300; ++i) {
      auto c = store_->create("/r/" + std::to_string(i), "0");
      store_->update("/r/" + std::to_string(i), "1", c->revision);
    }
    done = true;
  });
  int lists = 0;
  while (!done.load() || lists < 5) {
    auto list = store_->list("/r/");
    ASSERT_TRUE(list.ok());
    for (const auto& kv : list->items) ASSERT_LE(kv.mod_revision, list->revision);
    ++lists;
  }
  writer.join();
  EXPECT_EQ(store_->list("/r/")->items.size(), 300u);
}

// ---- watch ----

TEST_F(SqliteStoreTest, WatchReplaysHistoryThenDeliversLiveEvents) {
  auto a = store_->create("/w/a", "1");
  ASSERT_TRUE(store_->update("/w/a", "2", a->revision).ok());
  ASSERT_TRUE(store_->create("/w/b", "1").ok());
  EventLog log;
  auto handle = store_->watch("/w/", 1, log.sink());
  ASSERT_TRUE(handle.ok()) << handle.status().to_string();
  EXPECT_EQ(log.revisions(), (std::vector<int64_t>{2, 3}));  // history, before watch returned

  ASSERT_TRUE(store_->remove("/w/b").ok());
  ASSERT_TRUE(store_->create("/w/c", "1").ok());
  ASSERT_TRUE(log.wait_for_revision(5));
  EXPECT_EQ(log.revisions(), (std::vector<int64_t>{2, 3, 4, 5}));
  auto events = log.events();
  EXPECT_EQ(events[0].type, EventType::kPut);
  EXPECT_EQ(*events[0].kv.value, "2");
  EXPECT_EQ(*events[0].prev_value, "1");
  EXPECT_EQ(events[0].kv.create_revision, 1);
  EXPECT_EQ(events[1].prev_value, nullptr);
  EXPECT_EQ(events[2].type, EventType::kDelete);
  EXPECT_EQ(events[2].kv.key, "/w/b");
  EXPECT_EQ(events[2].kv.value, nullptr);
  EXPECT_EQ(*events[2].prev_value, "1");
  EXPECT_EQ(events[2].kv.create_revision, 3);
  EXPECT_FALSE(log.overlapping_calls());
}

TEST_F(SqliteStoreTest, WatchHistoryAndLiveEventsAgree) {
  // The same sequence seen as history by a late watcher and live by an early one.
  EventLog live;
  auto early = store_->watch("/", 0, live.sink());
  ASSERT_TRUE(early.ok());
  auto a = store_->create("/a", "1");
  auto u = store_->update("/a", "2", a->revision);
  ASSERT_TRUE(store_->remove("/a", u->revision).ok());
  ASSERT_TRUE(store_->create("/a", "3").ok());
  ASSERT_TRUE(live.wait_for_revision(4));
  EventLog history;
  auto late = store_->watch("/", 0, history.sink());
  ASSERT_TRUE(late.ok());
  auto l = live.events();
  auto h = history.events();
  ASSERT_EQ(l.size(), h.size());
  for (size_t i = 0; i < l.size(); ++i) {
    EXPECT_EQ(l[i].type, h[i].type);
    EXPECT_EQ(l[i].kv.key, h[i].kv.key);
    EXPECT_EQ(l[i].kv.mod_revision, h[i].kv.mod_revision);
    EXPECT_EQ(l[i].kv.create_revision, h[i].kv.create_revision);
    EXPECT_EQ(l[i].kv.value == nullptr, h[i].kv.value == nullptr);
    if (l[i].kv.value && h[i].kv.value) {
      EXPECT_EQ(*l[i].kv.value, *h[i].kv.value);
    }
    EXPECT_EQ(l[i].prev_value == nullptr, h[i].prev_value == nullptr) << i;
    if (l[i].prev_value && h[i].prev_value) {
      EXPECT_EQ(*l[i].prev_value, *h[i].prev_value);
    }
  }
}

TEST_F(SqliteStoreTest, WatchDeliversOnlyKeysUnderItsPrefix) {
  EventLog log;
  auto handle = store_->watch("/a/", 0, log.sink());
  ASSERT_TRUE(store_->create("/a", "x").ok());
  ASSERT_TRUE(store_->create("/a/1", "x").ok());
  ASSERT_TRUE(store_->create("/ab", "x").ok());
  ASSERT_TRUE(store_->create("/a/2", "x").ok());
  ASSERT_TRUE(log.wait_for_revision(4));
  EXPECT_EQ(log.revisions(), (std::vector<int64_t>{2, 4}));
  EventLog replay;
  auto late = store_->watch("/a/", 0, replay.sink());
  EXPECT_EQ(replay.revisions(), (std::vector<int64_t>{2, 4}));
}

TEST_F(SqliteStoreTest, WatchEventsArriveBeforeTheWriteIsAcknowledged) {
  EventLog log;
  auto handle = store_->watch("/", 0, log.sink());
  for (int i = 0; i < 10; ++i) {
    auto w = store_->create("/k" + std::to_string(i), "v");
    ASSERT_TRUE(w.ok());
    auto revs = log.revisions();
    ASSERT_FALSE(revs.empty());
    EXPECT_EQ(revs.back(), w->revision);
  }
}

TEST_F(SqliteStoreTest, WatchSeesEveryRevisionExactlyOnceUnderConcurrentWriters) {
  constexpr int kWriters = 8;
  constexpr int kWritesEach = 150;
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(store_->create("/pre/" + std::to_string(i), "v").ok());

  std::atomic<int> running{kWriters};
  std::vector<std::vector<int64_t>> acked(kWriters);
  std::vector<std::thread> writers;
  for (int t = 0; t < kWriters; ++t) {
    writers.emplace_back([&, t] {
      std::string key = "/w/" + std::to_string(t);
      auto c = store_->create(key, "0");
      int64_t rev = c->revision;
      acked[t].push_back(rev);
      for (int i = 1; i < kWritesEach; ++i) {
        auto u = store_->update(key, std::to_string(i), rev);
        if (!u.ok()) break;
        rev = u->revision;
        acked[t].push_back(rev);
      }
      --running;
    });
  }
  // Start watches from all over the history while the writers run.
  struct Started {
    int64_t after;
    std::unique_ptr<EventLog> log;
    std::unique_ptr<WatchHandle> handle;
  };
  std::vector<Started> watches;
  std::unique_ptr<EventLog> prefix_log = std::make_unique<EventLog>();
  auto prefix_handle = store_->watch("/w/3", 0, prefix_log->sink());
  ASSERT_TRUE(prefix_handle.ok());
  int started = 0;
  while (running.load() > 0 || started < 4) {
    int64_t now = store_->current_revision();
    int64_t after = started % 3 == 0 ? 0 : std::max<int64_t>(0, now - started % 7 * 5);
    auto log = std::make_unique<EventLog>();
    auto h = store_->watch("", after, log->sink());
    ASSERT_TRUE(h.ok());
    watches.push_back(Started{after, std::move(log), std::move(h).value()});
    ++started;
    std::this_thread::yield();
  }
  for (auto& w : writers) w.join();
  const int64_t last = store_->current_revision();
  ASSERT_EQ(last, 20 + kWriters * kWritesEach);

  for (auto& w : watches) {
    if (w.after < last) {
      ASSERT_TRUE(w.log->wait_for_revision(last)) << "watch after " << w.after;
    }
    auto revs = w.log->revisions();
    ASSERT_EQ(revs.size(), static_cast<size_t>(last - w.after)) << "watch after " << w.after;
    for (size_t i = 0; i < revs.size(); ++i) {
      ASSERT_EQ(revs[i], w.after + 1 + static_cast<int64_t>(i)) << "watch after " << w.after;
    }
    EXPECT_FALSE(w.log->overlapping_calls());
  }
  ASSERT_TRUE(prefix_log->wait_for_revision(acked[3].back()));
  EXPECT_EQ(prefix_log->revisions(), acked[3]);
  std::cout << "[ info ] " << watches.size() << " watches started during " << kWriters * kWritesEach
            << " writes in " << store_->stats().transactions << " transactions\n";
}

TEST_F(SqliteStoreTest, WatchesStartedWhileCompactionRunsHaveNoGaps) {
  SqliteStoreOptions opts;
  opts.compaction_interval = std::chrono::milliseconds(1);
  opts.retained_revisions = 30;
  open_store(opts);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    auto c = store_->create("/k", "0");
    int64_t rev = c->revision;
    for (int i = 1; !stop.load(); ++i) rev = store_->update("/k", std::to_string(i), rev)->revision;
  });
  struct Started {
    int64_t after;
    std::unique_ptr<EventLog> log;
    std::unique_ptr<WatchHandle> handle;
  };
  std::vector<Started> watches;
  int gone = 0;
  int64_t previous = 0;
  while (watches.size() < 40) {
    // Spread the watches over the writes.
    ASSERT_TRUE(test::eventually([&] { return store_->current_revision() >= previous + 5; }));
    previous = store_->current_revision();
    int64_t after = std::max<int64_t>(0, previous - 25);
    auto log = std::make_unique<EventLog>();
    auto h = store_->watch("/", after, log->sink());
    if (!h.ok()) {
      // Compaction may overtake a watch that starts close to the edge of the window.
      ASSERT_EQ(h.status().code(), StatusCode::kGone);
      ++gone;
      continue;
    }
    watches.push_back(Started{after, std::move(log), std::move(h).value()});
  }
  stop = true;
  writer.join();
  const int64_t last = store_->current_revision();
  EXPECT_GT(store_->compacted_revision(), 0);
  for (auto& w : watches) {
    ASSERT_TRUE(w.log->wait_for_revision(last));
    auto revs = w.log->revisions();
    ASSERT_EQ(revs.size(), static_cast<size_t>(last - w.after)) << "watch after " << w.after;
    for (size_t i = 0; i < revs.size(); ++i) ASSERT_EQ(revs[i], w.after + 1 + int64_t(i));
  }
  std::cout << "[ info ] " << watches.size() << " watches, " << gone << " gone, compacted to "
            << store_->compacted_revision() << " of " << last << "\n";
}

TEST_F(SqliteStoreTest, SinkMayQueueWritesAndDestroyWatches) {
  // A sink reacting to an event with a write of its own, as a controller would.
  std::atomic<int> follow_ups{0};
  EventLog other;
  auto other_handle = store_->watch("/", 0, other.sink());
  std::unique_ptr<WatchHandle> to_drop = std::move(other_handle).value();
  std::mutex mu;
  auto h = store_->watch("/in/", 0, [&](const std::vector<Event>& events) {
    for (const Event& e : events) {
      store_->write(create_op("/out" + e.kv.key, "seen"), [&](Result<WriteResult> r) {
        if (r.ok()) ++follow_ups;
      });
    }
    std::lock_guard<std::mutex> lock(mu);
    to_drop.reset();
  });
  ASSERT_TRUE(h.ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store_->create("/in/" + std::to_string(i), "v").ok());
  ASSERT_TRUE(test::eventually([&] { return follow_ups.load() == 5; }));
  EXPECT_EQ(store_->list("/out/in/")->items.size(), 5u);
  // Dropped during the first delivery, which reaches watchers in no particular order.
  EXPECT_LE(other.revisions().size(), 1u);
}

TEST_F(SqliteStoreTest, DestroyingWatchHandleStopsDelivery) {
  EventLog log;
  auto handle = store_->watch("/", 0, log.sink());
  ASSERT_TRUE(store_->create("/a", "v").ok());
  ASSERT_TRUE(log.wait_for_revision(1));
  handle->reset();
  ASSERT_TRUE(store_->create("/b", "v").ok());
  EXPECT_EQ(log.revisions(), (std::vector<int64_t>{1}));
}

TEST_F(SqliteStoreTest, WatchHandleDestroyedDuringDeliveryStopsItSafely) {
  // Handles are destroyed from the test thread while the writer delivers to them; once the
  // destructor returns, the sink must never run again.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) store_->create("/k" + std::to_string(i), "v");
  });
  for (int round = 0; round < 50; ++round) {
    auto alive = std::make_shared<std::atomic<bool>>(true);
    auto violations = std::make_shared<std::atomic<int>>(0);
    auto delivered = std::make_shared<std::atomic<int>>(0);
    auto h = store_->watch("/", store_->current_revision(),
                           [alive, violations, delivered](const std::vector<Event>&) {
                             if (!alive->load()) ++*violations;
                             ++*delivered;
                           });
    ASSERT_TRUE(h.ok());
    test::eventually([&] { return delivered->load() > 0; });
    h->reset();
    alive->store(false);
    int64_t target = store_->current_revision() + 2;
    test::eventually([&] { return store_->current_revision() >= target; });
    EXPECT_EQ(violations->load(), 0);
  }
  stop = true;
  writer.join();
}

TEST_F(SqliteStoreTest, WatchHandleCanBeDestroyedInsideItsSink) {
  std::unique_ptr<WatchHandle> handle;
  std::mutex mu;
  int calls = 0;
  auto h = store_->watch("/", 0, [&](const std::vector<Event>&) {
    std::lock_guard<std::mutex> lock(mu);
    ++calls;
    handle.reset();
  });
  ASSERT_TRUE(h.ok());
  {
    std::lock_guard<std::mutex> lock(mu);
    handle = std::move(h).value();
  }
  ASSERT_TRUE(store_->create("/a", "v").ok());
  ASSERT_TRUE(store_->create("/b", "v").ok());
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(handle, nullptr);
}

TEST_F(SqliteStoreTest, WatchHandleMayOutliveTheStore) {
  EventLog log;
  auto handle = store_->watch("/", 0, log.sink());
  ASSERT_TRUE(handle.ok());
  store_.reset();
  handle->reset();
}

TEST_F(SqliteStoreTest, WatchFromFutureRevisionDeliversOnlyLaterEvents) {
  ASSERT_TRUE(store_->create("/a", "v").ok());
  EventLog log;
  auto handle = store_->watch("/", 3, log.sink());
  ASSERT_TRUE(handle.ok());
  for (const char* k : {"/b", "/c", "/d"}) ASSERT_TRUE(store_->create(k, "v").ok());
  ASSERT_TRUE(log.wait_for_revision(4));
  EXPECT_EQ(log.revisions(), (std::vector<int64_t>{4}));
  EXPECT_EQ(store_->watch("/", -1, log.sink()).status().code(), StatusCode::kInvalid);
}

// ---- compaction ----

TEST_F(SqliteStoreTest, WatchBeforeCompactedRevisionIsGone) {
  auto a = store_->create("/a", "1");
  int64_t rev = a->revision;
  for (int i = 0; i < 9; ++i) rev = store_->update("/a", std::to_string(i + 2), rev)->revision;
  ASSERT_EQ(rev, 10);
  ASSERT_TRUE(store_->compact(5).ok());
  EXPECT_EQ(store_->compacted_revision(), 5);

  EventLog gone;
  auto w = store_->watch("/", 4, gone.sink());
  EXPECT_EQ(w.status().code(), StatusCode::kGone);
  EXPECT_EQ(gone.calls(), 0u);

  EventLog ok;
  auto from5 = store_->watch("/", 5, ok.sink());
  ASSERT_TRUE(from5.ok()) << from5.status().to_string();
  EXPECT_EQ(ok.revisions(), (std::vector<int64_t>{6, 7, 8, 9, 10}));
  EXPECT_EQ(*ok.events()[0].prev_value, "5");  // the row at revision 5 is kept as 6's previous
}

TEST_F(SqliteStoreTest, CompactionKeepsLatestValueOfLiveKeysAndDropsTheRest) {
  auto a = store_->create("/a", "1");                         // 1
  auto a2 = store_->update("/a", "2", a->revision);           // 2
  ASSERT_TRUE(store_->create("/b", "1").ok());                // 3
  ASSERT_TRUE(store_->remove("/b").ok());                     // 4
  ASSERT_TRUE(store_->create("/c", "1").ok());                // 5
  ASSERT_TRUE(store_->update("/a", "3", a2->revision).ok());  // 6
  ASSERT_EQ(log_rows(), 6);

  ASSERT_TRUE(store_->compact(5).ok());
  // Gone: /a@1 (superseded at 2), /b@3 and its tombstone @4. Kept: /a@2 (superseded only at
  // 6, above the compaction), /c@5, /a@6.
  EXPECT_EQ(log_rows(), 3);
  ASSERT_TRUE(store_->compact(6).ok());
  EXPECT_EQ(log_rows(), 2);  // /a@6 and /c@5

  auto list = store_->list("/");
  ASSERT_EQ(list->items.size(), 2u);
  EXPECT_EQ(*list->items[0].value, "3");
  EXPECT_EQ(list->items[0].create_revision, 1);
  EXPECT_EQ(*list->items[1].value, "1");
  EXPECT_EQ(store_->get("/b").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->current_revision(), 6);
  EXPECT_EQ(store_->create("/d", "1")->revision, 7);
}

TEST_F(SqliteStoreTest, CompactRejectsFutureRevisionsAndIgnoresOldOnes) {
  ASSERT_TRUE(store_->create("/a", "1").ok());
  ASSERT_TRUE(store_->create("/b", "1").ok());
  EXPECT_EQ(store_->compact(3).code(), StatusCode::kInvalid);
  ASSERT_TRUE(store_->compact(2).ok());
  EXPECT_TRUE(store_->compact(1).ok());
  EXPECT_EQ(store_->compacted_revision(), 2);
}

TEST_F(SqliteStoreTest, LargeCompactionRunsInSeveralTransactions) {
  SqliteStoreOptions opts;
  opts.compaction_batch_revisions = 100;
  open_store(opts);
  auto c = store_->create("/a", "0");
  int64_t rev = c->revision;
  for (int i = 1; i < 450; ++i) rev = store_->update("/a", std::to_string(i), rev)->revision;
  ASSERT_TRUE(store_->compact(rev).ok());
  EXPECT_EQ(store_->stats().compaction_transactions, 5u);
  EXPECT_EQ(log_rows(), 1);
  EXPECT_EQ(*store_->get("/a")->value, "449");
}

TEST_F(SqliteStoreTest, PeriodicCompactionKeepsTheRetainedWindow) {
  SqliteStoreOptions opts;
  opts.compaction_interval = std::chrono::milliseconds(1);
  opts.retained_revisions = 10;
  open_store(opts);
  auto c = store_->create("/a", "0");
  int64_t rev = c->revision;
  for (int i = 1; i < 50; ++i) rev = store_->update("/a", std::to_string(i), rev)->revision;
  ASSERT_TRUE(test::eventually([&] { return store_->compacted_revision() == rev - 10; }))
      << "compacted " << store_->compacted_revision();
  EventLog log;
  auto w = store_->watch("/", rev - 10, log.sink());
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(log.revisions().size(), 10u);
  EXPECT_EQ(store_->watch("/", rev - 11, log.sink()).status().code(), StatusCode::kGone);
}

// ---- restart ----

TEST_F(SqliteStoreTest, DataAndRevisionSurviveReopen) {
  open_store({}, /*real_fsync=*/true);
  auto a = store_->create("/a", "1");
  ASSERT_TRUE(store_->update("/a", "2", a->revision).ok());
  ASSERT_TRUE(store_->create("/b", "1").ok());
  ASSERT_TRUE(store_->remove("/b").ok());
  open_store({}, /*real_fsync=*/true);
  EXPECT_EQ(store_->current_revision(), 4);
  auto kv = store_->get("/a");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(*kv->value, "2");
  EXPECT_EQ(kv->create_revision, 1);
  EXPECT_EQ(kv->mod_revision, 2);
  EXPECT_EQ(store_->get("/b").status().code(), StatusCode::kNotFound);
  // The index of live keys is rebuilt: conditions hold across the restart.
  EXPECT_EQ(store_->create("/a", "x").status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->update("/a", "x", 1).status().code(), StatusCode::kConflict);
  EXPECT_EQ(store_->update("/a", "3", 2)->revision, 5);
}

TEST_F(SqliteStoreTest, RevisionNeverGoesBackwardsAfterCompactionAndReopen) {
  ASSERT_TRUE(store_->create("/a", "1").ok());
  ASSERT_TRUE(store_->remove("/a").ok());  // the newest row is a tombstone
  ASSERT_TRUE(store_->compact(2).ok());    // ...which compaction drops
  EXPECT_EQ(log_rows(), 0);
  open_store();
  EXPECT_EQ(store_->current_revision(), 2);
  EXPECT_EQ(store_->compacted_revision(), 2);
  EXPECT_EQ(store_->list("/")->revision, 2);
  EXPECT_EQ(store_->create("/a", "again")->revision, 3);
}

TEST_F(SqliteStoreTest, WatchResumesAfterReopen) {
  ASSERT_TRUE(store_->create("/a", "1").ok());
  ASSERT_TRUE(store_->create("/b", "1").ok());
  open_store();
  ASSERT_TRUE(store_->create("/c", "1").ok());
  EventLog log;
  auto w = store_->watch("/", 1, log.sink());
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(log.revisions(), (std::vector<int64_t>{2, 3}));
}

TEST_F(SqliteStoreTest, CloseCommitsQueuedWrites) {
  store_->pause_writer();
  Callbacks cbs;
  for (int i = 0; i < 5; ++i) store_->write(create_op("/k" + std::to_string(i), "v"), cbs.add(i));
  store_.reset();  // drains the queue although the writer is paused
  ASSERT_TRUE(cbs.wait_all());
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(cbs.result(i).ok());
  open_store();
  EXPECT_EQ(store_->list("/")->items.size(), 5u);
}

TEST_F(SqliteStoreTest, OpenReportsUnusableFiles) {
  SqliteStoreOptions opts;
  opts.vfs = "no-such-vfs";
  EXPECT_EQ(SqliteStore::open(dir_.file("x.db"), opts).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(SqliteStore::open(dir_.file("missing-dir/x.db")).status().code(),
            StatusCode::kUnavailable);
  FILE* f = fopen(dir_.file("garbage.db").c_str(), "w");
  fputs("this is not an SQLite database, not even close to one; it is plain text.", f);
  fclose(f);
  EXPECT_FALSE(SqliteStore::open(dir_.file("garbage.db")).ok());
}

}  // namespace
}  // namespace skiff::store
