// Real containers: runc under conmon, a busybox rootfs built per test run. Needs root, runc and
// conmon (scripts/install-deps.sh) and busybox-static; skips with the reason otherwise.
#include "agent/runtime/runtime.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "agent/runtime/cri_log.h"
#include "agent/runtime/rootfs.h"
#include "unit/agent/runtime/busybox_rootfs.h"

namespace skiff::agent::runtime {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string log_text(const std::string& path) {
  std::string out;
  (void)read_container_log(path, {}, [&](std::string_view s) {
    out.append(s);
    return true;
  });
  return out;
}

// A busybox rootfs with /etc/passwd and /etc/group; built once per test binary run.
class RuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason_ = testing::container_test_skip_reason();
    if (!skip_reason_.empty()) return;
    char tmpl[] = "/tmp/skiff-rt-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::random_device rd;
    run_tag_ = std::to_string(rd() % 100000000);
    rootfs_ = dir_ + "/image";
    testing::make_busybox_rootfs(
        rootfs_,
        {"sh", "echo", "cat", "sleep", "id", "hostname", "pwd", "grep", "touch", "head", "tail",
         "test", "env", "ls", "true", "false", "tty", "rm", "mkdir"},
        {"/home/app", "/data"},
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        "root:x:0:\napp:x:1000:\nextra:x:2000:app\n");
  }

  static void TearDownTestSuite() {
    if (dir_.empty()) return;
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_FALSE(dir_.empty());
    test_dir_ = dir_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(test_dir_);
    cgroup_parent_ = "/skiff-test-" + run_tag_;
    RuntimeOptions options;
    options.root_dir = test_dir_ + "/state";
    auto rt = ContainerRuntime::open(options);
    ASSERT_TRUE(rt.ok()) << rt.status().to_string();
    runtime_ = std::move(*rt);
  }

  void TearDown() override {
    if (!runtime_ && test_dir_.empty()) return;
    // Kill and remove whatever the test left, also through a fresh runtime object (a test may
    // have dropped its own).
    RuntimeOptions options;
    options.root_dir = test_dir_ + "/state";
    auto rt = ContainerRuntime::open(options);
    if (rt.ok()) {
      auto all = (*rt)->list();
      if (all.ok()) {
        for (const auto& c : *all) {
          Status s = (*rt)->remove(c.id);
          EXPECT_TRUE(s.ok()) << s.to_string();
        }
      }
    }
    runtime_.reset();
    // runc removes the containers' cgroups, not the parents it created for them.
    for (const char* ctl :
         {"", "/cpu", "/cpuacct", "/cpuset", "/memory", "/devices", "/freezer", "/blkio", "/pids",
          "/systemd", "/net_cls", "/perf_event", "/net_prio", "/hugetlb", "/rdma", "/misc"}) {
      ::rmdir(("/sys/fs/cgroup" + std::string(ctl) + cgroup_parent_).c_str());
    }
    std::error_code ec;
    fs::remove_all(test_dir_, ec);
  }

  ContainerConfig config(const std::string& name, std::vector<std::string> args) {
    ContainerConfig c;
    c.id = name + "-" + run_tag_;
    c.rootfs.path = rootfs_;
    c.args = std::move(args);
    c.cgroup_parent = cgroup_parent_;
    c.log_path = test_dir_ + "/logs/" + name + ".log";
    c.network = NamespaceOption::host();  // no CNI here; the network part is tested elsewhere
    return c;
  }

  // Creates, starts and waits for a container; returns its final status.
  ContainerStatus run_to_exit(const ContainerConfig& c) {
    Status s = runtime_->create(c);
    EXPECT_TRUE(s.ok()) << s.to_string();
    s = runtime_->start(c.id);
    EXPECT_TRUE(s.ok()) << s.to_string();
    auto st = runtime_->wait(c.id, 60s);
    EXPECT_TRUE(st.ok()) << st.status().to_string();
    return st.ok() ? *st : ContainerStatus{};
  }

  // Waits until the log holds `text`.
  bool wait_for_log(const std::string& path, const std::string& text) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (log_text(path).find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  // Whether the log holds `text` within a moment.
  bool wait_for_log_briefly(const std::string& path, const std::string& text) {
    std::this_thread::sleep_for(300ms);
    return log_text(path).find(text) != std::string::npos;
  }

  static inline std::string skip_reason_;
  static inline std::string dir_;
  static inline std::string rootfs_;
  static inline std::string run_tag_;
  std::string test_dir_;
  std::string cgroup_parent_;
  std::unique_ptr<ContainerRuntime> runtime_;
};

TEST_F(RuntimeTest, EchoIsLoggedInCriFormatAndExitsZero) {
  auto c = config("echo", {"sh", "-c", "echo hello; echo oops >&2"});
  auto st = run_to_exit(c);
  EXPECT_EQ(st.state, ContainerState::kExited);
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_EQ(st.reason, "Completed");
  EXPECT_FALSE(st.oom_killed);
  ASSERT_TRUE(st.started_at && st.finished_at);
  EXPECT_LE(*st.started_at, *st.finished_at);

  std::istringstream lines(read_file(c.log_path));
  std::string line;
  bool saw_out = false, saw_err = false;
  while (std::getline(lines, line)) {
    auto e = parse_cri_log_line(line);
    ASSERT_TRUE(e.ok()) << line;
    EXPECT_FALSE(e->partial);
    if (e->stream == LogStream::kStdout && e->content == "hello") saw_out = true;
    if (e->stream == LogStream::kStderr && e->content == "oops") saw_err = true;
  }
  EXPECT_TRUE(saw_out) << read_file(c.log_path);
  EXPECT_TRUE(saw_err) << read_file(c.log_path);
}

TEST_F(RuntimeTest, ExitCodeIsReported) {
  auto st = run_to_exit(config("exit3", {"sh", "-c", "exit 3"}));
  EXPECT_EQ(st.state, ContainerState::kExited);
  EXPECT_EQ(st.exit_code, 3);
  EXPECT_EQ(st.reason, "Error");
}

TEST_F(RuntimeTest, GracefulStopLetsTheTrapHandlerRun) {
  auto c = config("graceful", {"sh", "-c",
                               "trap 'echo got-term; exit 0' TERM; echo ready; "
                               "while true; do sleep 0.1; done"});
  ASSERT_TRUE(runtime_->create(c).ok());
  ASSERT_TRUE(runtime_->start(c.id).ok());
  ASSERT_TRUE(wait_for_log(c.log_path, "ready"));
  auto running = runtime_->status(c.id);
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->state, ContainerState::kRunning);
  EXPECT_GT(running->pid, 0);

  Status s = runtime_->stop(c.id, 30s);
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto st = runtime_->status(c.id);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->state, ContainerState::kExited);
  EXPECT_EQ(st->exit_code, 0);
  EXPECT_NE(log_text(c.log_path).find("got-term"), std::string::npos);
}

// What `runc state` says about the container ("" when runc does not know it).
std::string runc_status(const std::string& root_dir, const std::string& id) {
  std::string cmd = "runc --root '" + root_dir + "/runc' state '" + id + "' 2>/dev/null";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  ::pclose(f);
  auto at = out.find("\"status\": \"");
  if (at == std::string::npos) return "";
  at += 11;
  return out.substr(at, out.find('"', at) - at);
}

TEST_F(RuntimeTest, StartRunsACreatedContainerOnceAsRuncSeesIt) {
  auto c = config("startonce", {"sh", "-c", "echo started; sleep 30"});
  ASSERT_TRUE(runtime_->create(c).ok());
  auto created = runtime_->status(c.id);
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  EXPECT_EQ(created->state, ContainerState::kCreated);
  EXPECT_EQ(runc_status(runtime_->options().root_dir, c.id), "created");
  EXPECT_FALSE(wait_for_log_briefly(c.log_path, "started"));

  Status s = runtime_->start(c.id);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_TRUE(wait_for_log(c.log_path, "started"));
  auto running = runtime_->status(c.id);
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->state, ContainerState::kRunning);
  EXPECT_TRUE(running->started_at.has_value());
  EXPECT_EQ(runc_status(runtime_->options().root_dir, c.id), "running");
  // A running container is not started twice, nor is a stopped one.
  EXPECT_FALSE(runtime_->start(c.id).ok());
  ASSERT_TRUE(runtime_->stop(c.id, 0s).ok());
  EXPECT_FALSE(runtime_->start(c.id).ok());
}

TEST_F(RuntimeTest, StartFailsForAContainerKilledBeforeItStarted) {
  auto c = config("killedfirst", {"sh", "-c", "echo should-not-run"});
  ASSERT_TRUE(runtime_->create(c).ok());
  ASSERT_TRUE(runtime_->kill(c.id, SIGKILL).ok());
  auto exited = runtime_->wait(c.id, 30s);
  ASSERT_TRUE(exited.ok()) << exited.status().to_string();
  EXPECT_EQ(exited->state, ContainerState::kExited);
  Status s = runtime_->start(c.id);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(log_text(c.log_path).find("should-not-run"), std::string::npos);
}

TEST_F(RuntimeTest, StopKillsAProcessIgnoringSigtermAfterTheGracePeriod) {
  auto c =
      config("stubborn", {"sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"});
  ASSERT_TRUE(runtime_->create(c).ok());
  ASSERT_TRUE(runtime_->start(c.id).ok());
  ASSERT_TRUE(wait_for_log(c.log_path, "ready"));
  Status s = runtime_->stop(c.id, 1s);
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto st = runtime_->status(c.id);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->state, ContainerState::kExited);
  EXPECT_EQ(st->exit_code, 128 + SIGKILL);
}

TEST_F(RuntimeTest, ExecReturnsOutputAndExitStatus) {
  auto c = config("exec", {"sleep", "1000"});
  ASSERT_TRUE(runtime_->create(c).ok());
  ASSERT_TRUE(runtime_->start(c.id).ok());
  auto r = runtime_->exec_sync(c.id, {"sh", "-c", "echo out; echo err >&2; exit 7"}, 30s);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->stdout_data, "out\n");
  EXPECT_EQ(r->stderr_data, "err\n");
  EXPECT_EQ(r->exit_code, 7);

  // Streams the caller pumps: stdin in, stdout out.
  ExecOptions opts;
  opts.args = {"cat"};
  opts.stdin = true;
  auto proc = runtime_->exec(c.id, opts);
  ASSERT_TRUE(proc.ok()) << proc.status().to_string();
  ASSERT_EQ(::write((*proc)->stdin_fd(), "piped\n", 6), 6);
  (*proc)->close_stdin();
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = ::read((*proc)->stdout_fd(), buf, sizeof buf)) > 0) out.append(buf, n);
  EXPECT_EQ(out, "piped\n");
  auto code = (*proc)->wait(30s);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);

  // With a terminal the process sees a tty on its stdin.
  ExecOptions tty_opts;
  tty_opts.args = {"sh", "-c", "test -t 0 && echo is-a-tty"};
  tty_opts.tty = true;
  auto tproc = runtime_->exec(c.id, tty_opts);
  ASSERT_TRUE(tproc.ok()) << tproc.status().to_string();
  EXPECT_TRUE((*tproc)->resize(40, 100).ok());
  EXPECT_EQ((*tproc)->stderr_fd(), -1);
  auto tcode = (*tproc)->wait(30s);
  ASSERT_TRUE(tcode.ok());
  EXPECT_EQ(*tcode, 0);
  std::string tout;
  while ((n = ::read((*tproc)->stdout_fd(), buf, sizeof buf)) > 0) tout.append(buf, n);
  EXPECT_NE(tout.find("is-a-tty"), std::string::npos) << tout;

  auto stopped = runtime_->exec_sync("no-such-container", {"true"}, 5s);
  EXPECT_TRUE(stopped.status().is_not_found());
}

TEST_F(RuntimeTest, MemoryHogIsOomKilled) {
  auto c = config("oom", {"sh", "-c", "x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done"});
  c.resources.memory_limit_bytes = 16 << 20;
  auto st = run_to_exit(c);
  EXPECT_EQ(st.state, ContainerState::kExited);
  EXPECT_EQ(st.exit_code, 128 + SIGKILL);
  EXPECT_TRUE(st.oom_killed);
  EXPECT_EQ(st.reason, "OOMKilled");
}

TEST_F(RuntimeTest, ContainerOutlivesTheRuntimeAndIsAdoptedByANewOne) {
  auto c = config("adopt",
                  {"sh", "-c", "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done"});
  ASSERT_TRUE(runtime_->create(c).ok());
  ASSERT_TRUE(runtime_->start(c.id).ok());
  ASSERT_TRUE(wait_for_log(c.log_path, "ready"));
  std::string state_dir = test_dir_ + "/state";
  runtime_.reset();

  // conmon is a daemon: not this process's child, and still watching the container.
  int conmon_pid = std::atoi(read_file(state_dir + "/containers/" + c.id + "/conmon.pid").c_str());
  ASSERT_GT(conmon_pid, 0);
  EXPECT_EQ(::kill(conmon_pid, 0), 0);
  std::istringstream stat(read_file("/proc/" + std::to_string(conmon_pid) + "/stat"));
  std::string pid_field, comm, state;
  int ppid = 0;
  stat >> pid_field >> comm >> state >> ppid;
  EXPECT_NE(ppid, ::getpid());

  RuntimeOptions options;
  options.root_dir = state_dir;
  auto adopted = ContainerRuntime::open(options);
  ASSERT_TRUE(adopted.ok());
  auto all = (*adopted)->list();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].id, c.id);
  EXPECT_EQ((*all)[0].state, ContainerState::kRunning);
  EXPECT_EQ((*all)[0].log_path, c.log_path);

  ASSERT_TRUE((*adopted)->stop(c.id, 30s).ok());
  auto st = (*adopted)->status(c.id);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->state, ContainerState::kExited);
  EXPECT_EQ(st->exit_code, 0);
  ASSERT_TRUE((*adopted)->remove(c.id).ok());
  EXPECT_TRUE((*adopted)->status(c.id).status().is_not_found());
}

TEST_F(RuntimeTest, EnvWorkdirUserAndHostnameAreVisibleInside) {
  auto c = config("identity", {"sh", "-c", "echo foo=$FOO; pwd; id -u; id -g; id -G; hostname"});
  c.env = {"FOO=bar"};
  c.working_dir = "/home/app";
  c.uid = 1000;
  c.gid = 1000;
  c.additional_gids = {2000};
  c.hostname = "web-0";
  auto st = run_to_exit(c);
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_EQ(log_text(c.log_path), "foo=bar\n/home/app\n1000\n1000\n1000 2000\nweb-0\n");
}

TEST_F(RuntimeTest, ReadOnlyRootFilesystemDeniesWrites) {
  auto c = config("readonly", {"sh", "-c",
                               "touch /newfile 2>/dev/null && echo wrote || echo denied; "
                               "touch /data/ok && echo tmpfs-writable"});
  c.read_only_rootfs = true;
  Mount tmp;
  tmp.type = Mount::Type::kTmpfs;
  tmp.container_path = "/data";
  c.mounts.push_back(tmp);
  auto st = run_to_exit(c);
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_EQ(log_text(c.log_path), "denied\ntmpfs-writable\n");
  EXPECT_FALSE(fs::exists(rootfs_ + "/newfile"));
}

TEST_F(RuntimeTest, CapabilitiesAreVisibleInProcStatus) {
  auto defaults = config("caps-default", {"grep", "CapEff", "/proc/self/status"});
  run_to_exit(defaults);
  // Kubernetes' default set, as `docker run` shows it too.
  EXPECT_EQ(log_text(defaults.log_path), "CapEff:\t00000000a80425fb\n");

  auto dropped = config("caps-dropped", {"grep", "CapEff", "/proc/self/status"});
  dropped.capabilities_drop = {"ALL"};
  dropped.capabilities_add = {"NET_BIND_SERVICE"};
  run_to_exit(dropped);
  EXPECT_EQ(log_text(dropped.log_path), "CapEff:\t0000000000000400\n");

  auto nnp = config("nnp", {"grep", "NoNewPrivs", "/proc/self/status"});
  nnp.allow_privilege_escalation = false;
  run_to_exit(nnp);
  EXPECT_EQ(log_text(nnp.log_path), "NoNewPrivs:\t1\n");
}

TEST_F(RuntimeTest, SeccompModeFollowsTheProfile) {
  auto c = config("seccomp", {"grep", "Seccomp:", "/proc/self/status"});
  run_to_exit(c);
  EXPECT_EQ(log_text(c.log_path), "Seccomp:\t2\n");
  auto u = config("unconfined", {"grep", "Seccomp:", "/proc/self/status"});
  u.seccomp = ContainerConfig::Seccomp::kUnconfined;
  run_to_exit(u);
  EXPECT_EQ(log_text(u.log_path), "Seccomp:\t0\n");
}

TEST_F(RuntimeTest, OverlayRootfsKeepsWritesInTheUpperDirAndUnmountsOnRemove) {
  auto c = config("overlay", {"sh", "-c", "echo layered > /written; cat /written"});
  c.rootfs = RootfsConfig{};
  c.rootfs.lower_dirs = {rootfs_};
  c.rootfs.upper_dir = test_dir_ + "/upper";
  c.rootfs.work_dir = test_dir_ + "/work";
  auto st = run_to_exit(c);
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_EQ(log_text(c.log_path), "layered\n");
  EXPECT_EQ(read_file(test_dir_ + "/upper/written"), "layered\n");
  EXPECT_FALSE(fs::exists(rootfs_ + "/written"));
  std::string mount_point = st.bundle + "/rootfs";
  EXPECT_TRUE(is_mount_point(mount_point));
  ASSERT_TRUE(runtime_->remove(c.id).ok());
  EXPECT_FALSE(is_mount_point(mount_point));
  EXPECT_FALSE(fs::exists(st.bundle));
}

TEST_F(RuntimeTest, FollowedLogSurvivesRotation) {
  auto c = config("rotate", {"sh", "-c",
                             "echo first; while [ ! -e /tmp/go ]; do sleep 0.1; done; "
                             "echo second"});
  ASSERT_TRUE(runtime_->create(c).ok());
  ASSERT_TRUE(runtime_->start(c.id).ok());
  ASSERT_TRUE(wait_for_log(c.log_path, "first"));

  std::string followed;
  std::thread follower([&] {
    LogOptions o;
    o.follow = true;
    o.poll_interval = 100ms;
    o.keep_following = [&] {
      auto st = runtime_->status(c.id);
      return st.ok() && st->state != ContainerState::kExited;
    };
    Status s = read_container_log(c.log_path, o, [&](std::string_view text) {
      followed.append(text);
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.to_string();
  });
  auto rotated = runtime_->rotate_log(c.id, 0);
  ASSERT_TRUE(rotated.ok()) << rotated.status().to_string();
  EXPECT_TRUE(*rotated);
  auto go = runtime_->exec_sync(c.id, {"touch", "/tmp/go"}, 30s);
  ASSERT_TRUE(go.ok());
  auto st = runtime_->wait(c.id, 60s);
  ASSERT_TRUE(st.ok());
  follower.join();
  EXPECT_EQ(followed, "first\nsecond\n");
  EXPECT_NE(read_file(c.log_path + ".1").find(" stdout F first"), std::string::npos);
  EXPECT_EQ(read_file(c.log_path).find("first"), std::string::npos);
  EXPECT_NE(read_file(c.log_path).find(" stdout F second"), std::string::npos);
  EXPECT_EQ(log_text(c.log_path), "first\nsecond\n");
  // Small files are left alone.
  auto again = runtime_->rotate_log(c.id, 1 << 20);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST_F(RuntimeTest, StatsReportCpuAndMemoryOfTheContainerCgroup) {
  auto c = config("stats", {"sh", "-c",
                            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done; "
                            "sleep 1000"});
  ASSERT_TRUE(runtime_->create(c).ok());
  ASSERT_TRUE(runtime_->start(c.id).ok());
  ASSERT_TRUE(wait_for_log(c.log_path, "done"));
  auto stats = runtime_->stats(c.id);
  ASSERT_TRUE(stats.ok()) << stats.status().to_string();
  EXPECT_GT(stats->cpu_usage_nanos, 0u);
  EXPECT_GT(stats->memory_usage_bytes, 0u);
  EXPECT_GT(stats->memory_working_set_bytes, 0u);
  EXPECT_LE(stats->memory_working_set_bytes, stats->memory_usage_bytes);
  ASSERT_TRUE(runtime_->remove(c.id).ok());
  EXPECT_TRUE(runtime_->stats(c.id).status().is_not_found());
}

TEST_F(RuntimeTest, FailedCreateReportsRuncsErrorAndLeavesNothing) {
  auto c = config("missing", {"/no/such/binary"});
  Status s = runtime_->create(c);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/no/such/binary"), std::string::npos) << s.to_string();
  auto all = runtime_->list();
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
  EXPECT_FALSE(fs::exists(test_dir_ + "/state/containers/" + c.id));
}

TEST_F(RuntimeTest, DuplicateIdAndRunAsRootUnderRunAsNonRootAreRejected) {
  auto c = config("dup", {"sleep", "1000"});
  ASSERT_TRUE(runtime_->create(c).ok());
  EXPECT_EQ(runtime_->create(c).code(), StatusCode::kAlreadyExists);
  auto root = config("nonroot", {"true"});
  root.run_as_non_root = true;
  EXPECT_EQ(runtime_->create(root).code(), StatusCode::kInvalid);
  // The never-started container is stopped and removed as well.
  ASSERT_TRUE(runtime_->stop(c.id, 1s).ok());
  ASSERT_TRUE(runtime_->remove(c.id).ok());
  EXPECT_TRUE(runtime_->status(c.id).status().is_not_found());
}

}  // namespace
}  // namespace skiff::agent::runtime
