// Crash safety: an acknowledged write survives power loss (simulated by FaultVfs, which drops
// everything not covered by an fsync) and the death of the process (SIGKILL).
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "store/sqlite_store.h"
#include "store/testing/fault_vfs.h"
#include "store_test_util.h"

namespace skiff::store {
namespace {

using test::TempDir;
using testing::FaultVfs;

// ---- the fault VFS itself ----

// Writes rows through plain SQLite with the given synchronous setting, cuts the power, and
// returns how many rows the database holds after the reboot.
int64_t rows_after_power_loss(const char* synchronous) {
  TempDir dir;
  std::string path = dir.file("t.db");
  FaultVfs vfs("skiff-fault-plain");
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            vfs.name().c_str()),
            SQLITE_OK);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
  sqlite3_exec(db, (std::string("PRAGMA synchronous=") + synchronous).c_str(), nullptr, nullptr,
               nullptr);
  sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(sqlite3_exec(db, "INSERT INTO t VALUES(1)", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  vfs.crash();
  sqlite3_close(db);
  vfs.restore_after_crash();

  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            vfs.name().c_str()),
            SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  int64_t rows = -1;
  if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM t", -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    rows = sqlite3_column_int64(stmt, 0);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return rows;
}

TEST(FaultVfsTest, CommitsWithoutFsyncAreLostOnPowerLoss) {
  EXPECT_LE(rows_after_power_loss("OFF"), 0);  // -1: not even the table survived
}

TEST(FaultVfsTest, FsyncedCommitsSurvivePowerLoss) { EXPECT_EQ(rows_after_power_loss("FULL"), 10); }

// ---- power loss under concurrent writers ----

// What a key should hold. The write in flight when the power failed may or may not have become
// durable when unsynced pages can reach the disk.
struct KeyState {
  bool exists = false;
  std::string value;
  int64_t mod_revision = 0;
};

struct KeyExpectation {
  KeyState acked;
  std::optional<KeyState> in_flight;
};

struct PowerLossCase {
  FaultVfs::Unsynced unsynced;
  const char* name;
};

void PrintTo(const PowerLossCase& c, std::ostream* os) { *os << c.name; }

class PowerLossTest : public ::testing::TestWithParam<PowerLossCase> {};

// Each writer owns a few keys and cycles create -> update... -> remove on them, one acknowledged
// write at a time, until its first error (the power is gone).
void run_writer(SqliteStore& store, int writer, int ops,
                std::map<std::string, KeyExpectation>& keys, std::mutex& mu) {
  for (int i = 0; i < ops; ++i) {
    std::string key = "/crash/" + std::to_string(writer) + "/" + std::to_string(i % 4);
    KeyState before;
    {
      std::lock_guard<std::mutex> lock(mu);
      before = keys[key].acked;
    }
    std::string value = std::to_string(writer) + ":" + std::to_string(i) + std::string(200, 'x');
    Result<WriteResult> r = Status::Internal("unset");
    KeyState after;
    if (!before.exists) {
      r = store.create(key, value);
      after = KeyState{true, value, 0};
    } else if (i % 5 == 0) {
      r = store.remove(key, before.mod_revision);
      after = KeyState{false, "", 0};
    } else {
      r = store.update(key, value, before.mod_revision);
      after = KeyState{true, value, 0};
    }
    std::lock_guard<std::mutex> lock(mu);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().to_string();
      keys[key].in_flight = after;
      return;
    }
    if (after.exists) after.mod_revision = r->revision;
    keys[key].acked = after;
  }
}

TEST_P(PowerLossTest, AcknowledgedWritesSurvivePowerLoss) {
  constexpr int kWriters = 12;
  constexpr int kOpsEach = 60;
  constexpr int kRounds = 5;
  TempDir dir;
  std::string path = dir.file("state.db");
  FaultVfs vfs(std::string("skiff-fault-") + GetParam().name);
  SqliteStoreOptions opts;
  opts.vfs = vfs.name();
  // Compaction runs during the writes, so some crashes hit it.
  opts.compaction_interval = std::chrono::milliseconds(2);
  opts.retained_revisions = 50;

  std::mt19937 rng(20240607);
  std::map<std::string, KeyExpectation> keys;
  std::mutex mu;
  int64_t revision_floor = 0;  // no revision at or below this may be handed out again
  uint64_t acked_total = 0, in_flight_durable = 0;

  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto opened = SqliteStore::open(path, opts);
    ASSERT_TRUE(opened.ok()) << opened.status().to_string();
    std::unique_ptr<SqliteStore> store = std::move(opened).value();

    vfs.crash_at_sync(1 + rng() % 80);
    std::vector<std::thread> threads;
    for (int t = 0; t < kWriters; ++t) {
      threads.emplace_back([&, t] { run_writer(*store, t, kOpsEach, keys, mu); });
    }
    for (auto& t : threads) t.join();
    if (!vfs.crashed()) vfs.crash();
    acked_total += store->stats().writes - store->stats().failed_writes;
    for (auto& [key, e] : keys) revision_floor = std::max(revision_floor, e.acked.mod_revision);
    store.reset();
    vfs.restore_after_crash(GetParam().unsynced, rng());

    opened = SqliteStore::open(path, opts);
    ASSERT_TRUE(opened.ok()) << opened.status().to_string();
    store = std::move(opened).value();
    EXPECT_GE(store->current_revision(), revision_floor);
    for (auto& [key, e] : keys) {
      auto got = store->get(key);
      ASSERT_TRUE(got.ok() || got.status().is_not_found()) << got.status().to_string();
      KeyState actual{got.ok(), got.ok() ? *got->value : "", got.ok() ? got->mod_revision : 0};
      bool matches_acked = actual.exists == e.acked.exists &&
                           (!actual.exists || (actual.value == e.acked.value &&
                                               actual.mod_revision == e.acked.mod_revision));
      bool matches_in_flight = e.in_flight && actual.exists == e.in_flight->exists &&
                               (!actual.exists || actual.value == e.in_flight->value);
      if (GetParam().unsynced == FaultVfs::Unsynced::kLost) {
        ASSERT_TRUE(matches_acked) << key << ": acknowledged write lost or changed";
      } else {
        ASSERT_TRUE(matches_acked || matches_in_flight) << key << ": acknowledged write lost";
        if (!matches_acked) ++in_flight_durable;
      }
      e.acked = actual;
      e.in_flight.reset();
      revision_floor = std::max(revision_floor, actual.mod_revision);
    }
    // The store is usable and the revision continues upward.
    auto w = store->create("/crash/probe/" + std::to_string(round), "v");
    ASSERT_TRUE(w.ok()) << w.status().to_string();
    EXPECT_GT(w->revision, revision_floor);
    revision_floor = w->revision;
    auto list = store->list("/crash/");
    ASSERT_TRUE(list.ok());
    EXPECT_GE(list->revision, w->revision);
  }
  std::cout << "[ info ] " << acked_total << " acknowledged writes over " << kRounds
            << " power losses; " << in_flight_durable
            << " unacknowledged writes reached the disk anyway\n";
}

INSTANTIATE_TEST_SUITE_P(
    Unsynced, PowerLossTest,
    ::testing::Values(PowerLossCase{FaultVfs::Unsynced::kLost, "UnsyncedWritesLost"},
                      PowerLossCase{FaultVfs::Unsynced::kRandomSubset, "RandomUnsyncedWritesKept"},
                      PowerLossCase{FaultVfs::Unsynced::kPrefix, "UnsyncedWritesKeptInOrder"}),
    [](const ::testing::TestParamInfo<PowerLossCase>& info) { return info.param.name; });

// ---- SIGKILL ----

TEST(SqliteStoreKillTest, AcknowledgedWritesSurviveSigkill) {
  constexpr int kWriters = 8;
  constexpr size_t kAcksBeforeKill = 300;
  TempDir dir;
  std::string path = dir.file("state.db");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: write until killed, reporting each acknowledged write on the pipe.
    close(fds[0]);
    auto store = SqliteStore::open(path);
    if (!store.ok()) _exit(2);
    std::vector<std::thread> threads;
    for (int t = 0; t < kWriters; ++t) {
      threads.emplace_back([&, t] {
        for (uint32_t i = 0;; ++i) {
          std::string key = "/kill/" + std::to_string(t) + "/" + std::to_string(i);
          if (!(*store)->create(key, "value-" + key).ok()) _exit(3);
          uint64_t id = (static_cast<uint64_t>(t) << 32) | i;
          if (write(fds[1], &id, sizeof id) != sizeof id) _exit(4);
        }
      });
    }
    for (auto& t : threads) t.join();
    _exit(0);
  }
  close(fds[1]);
  std::vector<uint64_t> acked;
  auto read_acks = [&](bool until_eof) {
    auto deadline = std::chrono::steady_clock::now() + test::kDeadline;
    while (until_eof || acked.size() < kAcksBeforeKill) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      pollfd p{fds[0], POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) continue;
      uint64_t id;
      ssize_t n = read(fds[0], &id, sizeof id);
      if (n == 0) return until_eof;
      if (n != sizeof id) return false;
      acked.push_back(id);
    }
    return true;
  };
  bool got_acks = read_acks(false);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(got_acks) << "child acknowledged only " << acked.size() << " writes";
  ASSERT_TRUE(read_acks(true));  // acknowledgements still in the pipe
  close(fds[0]);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;

  auto store = SqliteStore::open(path);
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  for (uint64_t id : acked) {
    std::string key = "/kill/" + std::to_string(id >> 32) + "/" + std::to_string(id & 0xffffffff);
    auto kv = (*store)->get(key);
    ASSERT_TRUE(kv.ok()) << key << ": " << kv.status().to_string();
    EXPECT_EQ(*kv->value, "value-" + key);
  }
  int64_t revision = (*store)->current_revision();
  EXPECT_GE(revision, static_cast<int64_t>(acked.size()));
  auto w = (*store)->create("/after-kill", "v");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->revision, revision + 1);
}

}  // namespace
}  // namespace skiff::store
