#include "agent/runtime/runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "agent/runtime/rootfs.h"
#include "agent/runtime/subprocess.h"

namespace skiff::agent::runtime {

namespace fs = std::filesystem;
using internal::run_command;
using nlohmann::json;

namespace {

constexpr auto kRuncTimeout = std::chrono::seconds(60);
constexpr auto kCreateTimeout = std::chrono::seconds(60);
constexpr auto kKillWait = std::chrono::seconds(30);

int64_t to_nanos(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
TimePoint from_nanos(int64_t ns) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(ns)));
}

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status write_text_atomic(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return Status::Internal("writing " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::Internal("renaming " + tmp + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// runc reports errors as logrus lines (time="..." level=error msg="..."); the messages alone,
// one per line joined with "; ", else the text as is.
std::string runc_message(const std::string& text) {
  std::istringstream lines(text);
  std::string line, out;
  while (std::getline(lines, line)) {
    size_t at = line.find("level=") == std::string::npos ? std::string::npos : line.find(" msg=");
    if (at != std::string::npos) ++at;
    std::string msg;
    if (at == std::string::npos) {
      msg = trim(line);
    } else if (at + 4 < line.size() && line[at + 4] == '"') {
      for (size_t i = at + 5; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) ++i;
        msg += line[i];
      }
    } else {
      msg = line.substr(at + 4, line.find(' ', at) - (at + 4));
    }
    if (!msg.empty()) out += (out.empty() ? "" : "; ") + msg;
  }
  return out.empty() ? trim(text) : out;
}

bool is_valid_id(const std::string& id) {
  if (id.empty() || id.size() > 128 || id[0] == '.') return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

std::string random_suffix() {
  static std::atomic<uint64_t> counter{0};
  return std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
}

}  // namespace

const char* container_state_name(ContainerState state) {
  switch (state) {
    case ContainerState::kCreated:
      return "created";
    case ContainerState::kRunning:
      return "running";
    case ContainerState::kExited:
      return "exited";
    case ContainerState::kUnknown:
      break;
  }
  return "unknown";
}

struct ContainerRuntime::Paths {
  std::string bundle;
  std::string config;
  std::string rootfs;  // the overlay mount point
  std::string meta;
  std::string pidfile;
  std::string conmon_pidfile;
  std::string persist;
  std::string exit_file;
  std::string ctl;
  std::string socket_link;
};

ContainerRuntime::ContainerRuntime(RuntimeOptions options) : options_(std::move(options)) {}
ContainerRuntime::~ContainerRuntime() = default;

ContainerRuntime::Paths ContainerRuntime::paths(const std::string& id) const {
  Paths p;
  p.bundle = options_.root_dir + "/containers/" + id;
  p.config = p.bundle + "/config.json";
  p.rootfs = p.bundle + "/rootfs";
  p.meta = p.bundle + "/meta.json";
  p.pidfile = p.bundle + "/pidfile";
  p.conmon_pidfile = p.bundle + "/conmon.pid";
  p.persist = p.bundle + "/persist";
  p.exit_file = options_.root_dir + "/exits/" + id;
  p.ctl = p.bundle + "/ctl";
  p.socket_link = options_.root_dir + "/sockets/" + id;
  return p;
}

Result<std::unique_ptr<ContainerRuntime>> ContainerRuntime::open(RuntimeOptions options) {
  if (options.root_dir.empty()) return Status::Invalid("the runtime needs a root dir");
  while (options.root_dir.size() > 1 && options.root_dir.back() == '/') {
    options.root_dir.pop_back();
  }
  for (const auto& bin : {options.runc_path, options.conmon_path}) {
    if (::access(bin.c_str(), X_OK) != 0) return Status::Unavailable(bin + " is not installed");
  }
  std::error_code ec;
  for (const char* sub : {"/runc", "/containers", "/exits", "/sockets"}) {
    fs::create_directories(options.root_dir + sub, ec);
    if (ec) return Status::Internal("creating " + options.root_dir + sub + ": " + ec.message());
  }
  return std::unique_ptr<ContainerRuntime>(new ContainerRuntime(std::move(options)));
}

namespace {

// What a runtime needs to know about a container beyond runc's state, kept in its bundle.
struct Meta {
  std::string log_path;
  std::string cgroup_path;
  bool overlay = false;
  std::optional<TimePoint> created_at;
  std::optional<TimePoint> started_at;
};

json meta_to_json(const Meta& m) {
  json j = {{"logPath", m.log_path}, {"cgroupPath", m.cgroup_path}, {"overlay", m.overlay}};
  if (m.created_at) j["createdAt"] = to_nanos(*m.created_at);
  if (m.started_at) j["startedAt"] = to_nanos(*m.started_at);
  return j;
}

std::optional<Meta> read_meta(const std::string& path) {
  auto text = read_text(path);
  if (!text) return std::nullopt;
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  Meta m;
  m.log_path = j.value("logPath", "");
  m.cgroup_path = j.value("cgroupPath", "");
  m.overlay = j.value("overlay", false);
  if (j.contains("createdAt")) m.created_at = from_nanos(j["createdAt"].get<int64_t>());
  if (j.contains("startedAt")) m.started_at = from_nanos(j["startedAt"].get<int64_t>());
  return m;
}

// Waits until `file` (in directory `dir`) exists, up to `timeout`.
bool wait_for_file(const std::string& dir, const std::string& file,
                   std::chrono::milliseconds timeout) {
  int ino = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (ino >= 0) ::inotify_add_watch(ino, dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool found = false;
  while (true) {
    if (file_exists(file)) {
      found = true;
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    // Bounded waits also cover a missed event (and an inotify that could not be set up).
    int wait_ms = static_cast<int>(std::min<int64_t>(left.count(), 200));
    if (ino >= 0) {
      struct pollfd p = {ino, POLLIN, 0};
      if (::poll(&p, 1, wait_ms) > 0) {
        char buf[4096];
        while (::read(ino, buf, sizeof buf) > 0) {
        }
      }
    } else {
      ::usleep(static_cast<useconds_t>(wait_ms) * 1000);
    }
  }
  if (ino >= 0) ::close(ino);
  return found;
}

// What `runc state` reports as the container's status, computed from runc's state dir the way
// runc computes it, without running runc: stopped unless the init process is alive with the
// start time runc recorded; then created while the exec fifo exists, else running. Empty when
// the state cannot be read (no such container in runc).
std::string runc_status_from_state_dir(const std::string& dir, int* pid) {
  auto text = read_text(dir + "/state.json");
  if (!text) return "";
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object()) return "";
  auto pid_it = j.find("init_process_pid");
  auto start_it = j.find("init_process_start");
  if (pid_it == j.end() || !pid_it->is_number_integer() || start_it == j.end()) return "";
  uint64_t start = 0;
  if (start_it->is_number_unsigned() || start_it->is_number_integer()) {
    start = start_it->get<uint64_t>();
  } else if (start_it->is_string()) {
    start = std::strtoull(start_it->get<std::string>().c_str(), nullptr, 10);
  } else {
    return "";
  }
  const int init_pid = pid_it->get<int>();
  *pid = init_pid;
  if (init_pid <= 0) return "stopped";
  auto stat = read_text("/proc/" + std::to_string(init_pid) + "/stat");
  if (!stat) return "stopped";
  // After the command name (in parentheses, may hold spaces): field 3 is the state, field 22
  // the start time in clock ticks.
  size_t close = stat->rfind(')');
  if (close == std::string::npos) return "stopped";
  std::istringstream fields(stat->substr(close + 1));
  std::string state_char;
  fields >> state_char;
  std::string field;
  for (int i = 4; i < 22 && (fields >> field); ++i) {
  }
  uint64_t proc_start = 0;
  fields >> proc_start;
  if (state_char == "Z" || state_char == "X" || proc_start != start) return "stopped";
  return file_exists(dir + "/exec.fifo") ? "created" : "running";
}

// What `runc start` does for a created container, without the cost of running runc: opens
// the exec fifo runc's init process blocks on, reads what the init writes into it right
// before it executes the container's process, waits for the end of the fifo (the init's end
// closes on that exec), then removes the fifo, after which runc reports the container as
// running. False, with nothing changed, when the fifo is not there or the init process is
// gone without writing: `runc start` then runs and reports what is wrong.
bool start_through_exec_fifo(const std::string& state_dir, std::chrono::milliseconds timeout) {
  const std::string fifo = state_dir + "/exec.fifo";
  int fd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string data;
  bool done = false;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    struct pollfd p = {fd, POLLIN, 0};
    int n = ::poll(&p, 1, 100);
    if (n < 0 && errno != EINTR) break;
    if (n == 0) {
      // Nothing for a while: as runc does, check that the init process still waits.
      int pid = 0;
      if (data.empty() && runc_status_from_state_dir(state_dir, &pid) != "created") break;
      continue;
    }
    if (n < 0) continue;
    char buf[64];
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r > 0) {
      data.append(buf, static_cast<size_t>(r));
    } else if (r == 0) {
      if (data.empty()) break;  // the init's end closed without writing
      done = true;
    } else if (errno != EAGAIN && errno != EINTR) {
      break;
    }
  }
  ::close(fd);
  if (!done) return false;
  ::unlink(fifo.c_str());
  return true;
}

bool process_alive(const std::string& pidfile) {
  auto text = read_text(pidfile);
  if (!text) return false;
  int pid = std::atoi(text->c_str());
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

}  // namespace

Status ContainerRuntime::create(const ContainerConfig& config) {
  if (!is_valid_id(config.id)) return Status::Invalid("invalid container id \"" + config.id + "\"");
  Paths p = paths(config.id);
  if (::mkdir(p.bundle.c_str(), 0700) != 0) {
    if (errno == EEXIST) return Status::AlreadyExists("container " + config.id + " exists");
    return Status::Internal("creating " + p.bundle + ": " + std::strerror(errno));
  }
  bool mounted = false;
  auto fail = [&](Status s) {
    if (mounted) (void)unmount_rootfs(p.rootfs);
    (void)run_command(
        {options_.runc_path, "--root", options_.root_dir + "/runc", "delete", "--force", config.id},
        kRuncTimeout);
    if (!is_mount_point(p.rootfs)) {
      std::error_code ec;
      fs::remove_all(p.bundle, ec);
    }
    ::unlink(p.exit_file.c_str());
    return s;
  };

  std::string rootfs_path = config.rootfs.path;
  if (config.rootfs.overlay()) {
    Status s = mount_overlay(config.rootfs.lower_dirs, config.rootfs.upper_dir,
                             config.rootfs.work_dir, p.rootfs);
    if (!s.ok()) return fail(s);
    mounted = true;
    rootfs_path = p.rootfs;
  }
  auto spec = build_oci_spec(config, rootfs_path);
  if (!spec.ok()) return fail(spec.status());
  if (Status s = write_text_atomic(p.config, spec->dump(2)); !s.ok()) return fail(s);

  Meta meta;
  meta.log_path = config.log_path.empty() ? p.bundle + "/container.log" : config.log_path;
  meta.cgroup_path = container_cgroup_path(config);
  meta.overlay = config.rootfs.overlay();
  meta.created_at = now();
  std::error_code ec;
  fs::create_directories(fs::path(meta.log_path).parent_path(), ec);
  fs::create_directories(p.persist, ec);
  if (Status s = write_text_atomic(p.meta, meta_to_json(meta).dump()); !s.ok()) return fail(s);

  // conmon runs `runc create`, reports the container's pid (or runc's error) on the sync pipe,
  // then stays as the container's monitor, detached from this process.
  int sync_pipe[2], start_pipe[2];
  if (::pipe2(sync_pipe, O_CLOEXEC) != 0) return fail(Status::Internal("pipe failed"));
  if (::pipe2(start_pipe, O_CLOEXEC) != 0) {
    ::close(sync_pipe[0]);
    ::close(sync_pipe[1]);
    return fail(Status::Internal("pipe failed"));
  }
  std::string conmon_log = p.bundle + "/conmon.stderr";
  int err_fd = ::open(conmon_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  internal::SpawnOptions so;
  so.argv = {options_.conmon_path,
             "--api-version",
             "1",
             "-c",
             config.id,
             "-u",
             config.id,
             "-n",
             config.id,
             "-r",
             options_.runc_path,
             "-b",
             p.bundle,
             "-p",
             p.pidfile,
             "-P",
             p.conmon_pidfile,
             "-l",
             "k8s-file:" + meta.log_path,
             "--exit-dir",
             options_.root_dir + "/exits",
             "--persist-dir",
             p.persist,
             "--socket-dir-path",
             options_.root_dir + "/sockets",
             "--runtime-arg=--root=" + options_.root_dir + "/runc",
             "--log-level",
             "warn"};
  if (config.tty) so.argv.push_back("-t");
  if (config.stdin) {
    so.argv.push_back("-i");
    if (!config.stdin_once) so.argv.push_back("--leave-stdin-open");
  }
  // conmon also writes its "oom" marker into its working directory: the bundle, as CRI-O runs it.
  so.working_dir = p.bundle;
  so.env = internal::helper_env();
  so.env.push_back("_OCI_SYNCPIPE=3");
  so.env.push_back("_OCI_STARTPIPE=4");
  so.fds = {{sync_pipe[1], 3}, {start_pipe[0], 4}};
  if (err_fd >= 0) so.fds.push_back({err_fd, 2});
  auto pid = internal::spawn(so);
  ::close(sync_pipe[1]);
  ::close(start_pipe[0]);
  if (err_fd >= 0) ::close(err_fd);
  if (!pid.ok()) {
    ::close(sync_pipe[0]);
    ::close(start_pipe[1]);
    return fail(pid.status());
  }
  // conmon blocks on the start pipe before it forks; skiff has nothing to arrange first.
  (void)!::write(start_pipe[1], "0", 1);
  ::close(start_pipe[1]);
  // Without --sync the first conmon process exits once its daemon child runs.
  (void)internal::wait_child(*pid, std::chrono::milliseconds(kCreateTimeout));

  std::string reply;
  auto deadline = std::chrono::steady_clock::now() + kCreateTimeout;
  while (reply.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    struct pollfd pfd = {sync_pipe[0], POLLIN, 0};
    int n = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    char buf[4096];
    ssize_t r = ::read(sync_pipe[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    reply.append(buf, static_cast<size_t>(r));
  }
  ::close(sync_pipe[0]);
  json msg = json::parse(reply.substr(0, reply.find('\n')), nullptr, false);
  int data = msg.is_object() && msg.contains("data") && msg["data"].is_number_integer()
                 ? msg["data"].get<int>()
                 : -1;
  if (data <= 0) {
    std::string why = msg.is_object() ? msg.value("message", "") : "";
    if (why.empty()) why = trim(read_text(conmon_log).value_or(""));
    if (why.empty()) why = "conmon exited without reporting the container";
    return fail(Status::Internal("creating container " + config.id + ": " + runc_message(why)));
  }
  return Status::Ok();
}

Status ContainerRuntime::start(const std::string& id) {
  if (!is_valid_id(id)) return Status::NotFound("no container " + id);
  Paths p = paths(id);
  auto meta = read_meta(p.meta);
  if (!meta) return Status::NotFound("no container " + id);
  // The process runs from the moment runc start signals it, possibly exiting before runc
  // returns, so the start time is taken first.
  TimePoint started = now();
  if (!start_through_exec_fifo(options_.root_dir + "/runc/" + id, kRuncTimeout)) {
    auto r = run_command({options_.runc_path, "--root", options_.root_dir + "/runc", "start", id},
                         kRuncTimeout);
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) {
      return Status::Internal("starting container " + id + ": " + runc_message(r->err));
    }
  }
  meta->started_at = started;
  return write_text_atomic(p.meta, meta_to_json(*meta).dump());
}

Status ContainerRuntime::kill(const std::string& id, int signal, bool all) {
  if (!is_valid_id(id)) return Status::NotFound("no container " + id);
  std::vector<std::string> argv = {options_.runc_path, "--root", options_.root_dir + "/runc",
                                   "kill"};
  if (all) argv.push_back("--all");
  argv.push_back(id);
  argv.push_back(std::to_string(signal));
  auto r = run_command(argv, kRuncTimeout);
  if (!r.ok()) return r.status();
  if (r->exit_code == 0) return Status::Ok();
  auto st = status(id);
  if (!st.ok()) return st.status();
  if (st->state == ContainerState::kExited) return Status::Ok();
  return Status::Internal("signalling container " + id + ": " + trim(r->err));
}

Result<ContainerStatus> ContainerRuntime::wait(const std::string& id,
                                               std::chrono::milliseconds timeout) {
  if (!is_valid_id(id)) return Status::NotFound("no container " + id);
  Paths p = paths(id);
  if (!file_exists(p.meta)) return Status::NotFound("no container " + id);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    // Check conmon every second: when it is gone without an exit file, waiting is pointless.
    bool found =
        wait_for_file(options_.root_dir + "/exits", p.exit_file,
                      std::min<std::chrono::milliseconds>(
                          std::max<std::chrono::milliseconds>(left, {}), std::chrono::seconds(1)));
    auto st = status(id);
    if (!st.ok()) return st.status();
    if (st->state == ContainerState::kExited) return st;
    if (found) return st;
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status(StatusCode::kTimeout, "container " + id + " is still running");
    }
  }
}

Status ContainerRuntime::stop(const std::string& id, std::chrono::seconds grace) {
  auto st = status(id);
  if (!st.ok()) return st.status();
  if (st->state == ContainerState::kExited) return Status::Ok();
  if (st->state == ContainerState::kRunning && grace.count() > 0) {
    if (Status s = kill(id, SIGTERM); !s.ok()) return s;
    auto w = wait(id, grace);
    if (w.ok()) return Status::Ok();
    if (w.status().code() != StatusCode::kTimeout) return w.status();
  }
  if (Status s = kill(id, SIGKILL, true); !s.ok()) return s;
  auto w = wait(id, kKillWait);
  return w.ok() ? Status::Ok() : w.status();
}

Status ContainerRuntime::remove(const std::string& id) {
  if (!is_valid_id(id)) return Status::Ok();
  Paths p = paths(id);
  // Nothing of it anywhere (the common case before a create): no need to ask runc.
  struct stat ignored;
  if (::lstat(p.bundle.c_str(), &ignored) != 0 && errno == ENOENT &&
      ::lstat((options_.root_dir + "/runc/" + id).c_str(), &ignored) != 0 && errno == ENOENT &&
      ::lstat(p.exit_file.c_str(), &ignored) != 0 && errno == ENOENT &&
      ::lstat(p.socket_link.c_str(), &ignored) != 0 && errno == ENOENT) {
    return Status::Ok();
  }
  auto meta = read_meta(p.meta);
  if (file_exists(p.meta)) {
    auto st = status(id);
    if (st.ok() &&
        (st->state == ContainerState::kRunning || st->state == ContainerState::kCreated)) {
      (void)kill(id, SIGKILL, true);
      (void)wait(id, kKillWait);
    }
  }
  auto r = run_command(
      {options_.runc_path, "--root", options_.root_dir + "/runc", "delete", "--force", id},
      kRuncTimeout);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0 && r->err.find("does not exist") == std::string::npos &&
      r->err.find("not exist") == std::string::npos) {
    return Status::Internal("deleting container " + id + ": " + trim(r->err));
  }
  if (Status s = unmount_rootfs(p.rootfs); !s.ok()) return s;
  if (is_mount_point(p.rootfs)) return Status::Internal(p.rootfs + " is still mounted");
  std::error_code ec;
  fs::remove_all(p.bundle, ec);
  if (ec) return Status::Internal("removing " + p.bundle + ": " + ec.message());
  ::unlink(p.exit_file.c_str());
  ::unlink(p.socket_link.c_str());
  return Status::Ok();
}

Result<ContainerStatus> ContainerRuntime::status(const std::string& id) {
  if (!is_valid_id(id)) return Status::NotFound("no container " + id);
  Paths p = paths(id);
  auto meta = read_meta(p.meta);
  if (!meta) return Status::NotFound("no container " + id);
  ContainerStatus st;
  st.id = id;
  st.bundle = p.bundle;
  st.log_path = meta->log_path;
  st.cgroup_path = meta->cgroup_path;
  st.created_at = meta->created_at;
  st.started_at = meta->started_at;

  // An exit file settles it; otherwise runc's state dir says what `runc state` would, without
  // the cost of running runc on every status.
  bool exited = file_exists(p.exit_file);
  std::string runc_status;
  if (!exited) {
    runc_status = runc_status_from_state_dir(options_.root_dir + "/runc/" + id, &st.pid);
    if (runc_status.empty()) {
      auto r = run_command(
          {options_.runc_path, "--root", options_.root_dir + "/runc", "state", id}, kRuncTimeout);
      if (!r.ok()) return r.status();
      if (r->exit_code == 0) {
        json j = json::parse(r->out, nullptr, false);
        if (j.is_object()) {
          runc_status = j.value("status", "");
          st.pid = j.value("pid", 0);
        }
      }
    }
  }
  if (!exited && runc_status == "stopped" && process_alive(p.conmon_pidfile)) {
    // The process is gone; conmon writes the exit file once its output is logged.
    exited = wait_for_file(options_.root_dir + "/exits", p.exit_file, std::chrono::seconds(5));
  }
  if (exited) {
    st.state = ContainerState::kExited;
    st.pid = 0;
    st.exit_code = std::atoi(trim(read_text(p.exit_file).value_or("-1")).c_str());
    struct stat sb;
    if (::stat(p.exit_file.c_str(), &sb) == 0) {
      st.finished_at = TimePoint(std::chrono::duration_cast<TimePoint::duration>(
          std::chrono::seconds(sb.st_mtim.tv_sec) + std::chrono::nanoseconds(sb.st_mtim.tv_nsec)));
      // File times come from the kernel's coarse clock, which trails the clock the start
      // time is read from by up to a tick: a process that exits at once could seem to have
      // finished before it started.
      if (st.started_at && *st.finished_at < *st.started_at) st.finished_at = st.started_at;
    }
  } else if (runc_status == "created") {
    st.state = ContainerState::kCreated;
  } else if (runc_status == "running" || runc_status == "paused") {
    st.state = ContainerState::kRunning;
  } else if (runc_status == "stopped") {
    // Neither conmon nor its exit file: the exit status is lost.
    st.state = ContainerState::kExited;
    st.exit_code = 255;
    st.pid = 0;
  } else {
    st.state = ContainerState::kUnknown;
  }
  if (st.state == ContainerState::kExited) {
    st.oom_killed = file_exists(p.persist + "/oom");
    if (!st.oom_killed && !st.cgroup_path.empty()) {
      auto count = read_oom_kill_count(options_.cgroup_root, st.cgroup_path);
      st.oom_killed = count.ok() && *count > 0;
    }
    st.reason = st.oom_killed ? "OOMKilled" : (st.exit_code == 0 ? "Completed" : "Error");
  }
  return st;
}

Result<std::vector<ContainerStatus>> ContainerRuntime::list() {
  std::vector<ContainerStatus> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(options_.root_dir + "/containers", ec)) {
    if (!entry.is_directory()) continue;
    auto st = status(entry.path().filename().string());
    if (st.ok()) out.push_back(std::move(*st));
  }
  if (ec) return Status::Internal("listing containers: " + ec.message());
  std::sort(out.begin(), out.end(),
            [](const ContainerStatus& a, const ContainerStatus& b) { return a.id < b.id; });
  return out;
}

namespace {

class RuncExecProcess final : public ExecProcess {
 public:
  RuncExecProcess(pid_t runc_pid, std::string pid_file, std::string spec_file, int in, int out,
                  int err, bool tty)
      : runc_pid_(runc_pid),
        pid_file_(std::move(pid_file)),
        spec_file_(std::move(spec_file)),
        in_(in),
        out_(out),
        err_(err),
        tty_(tty) {}
  ~RuncExecProcess() override {
    if (!exit_code_) {
      (void)kill(SIGKILL);
      (void)wait(std::chrono::seconds(10));
      if (!exit_code_) ::kill(runc_pid_, SIGKILL);
      (void)wait(std::chrono::seconds(10));
    }
    if (in_ >= 0 && in_ != out_) ::close(in_);
    if (out_ >= 0) ::close(out_);
    if (err_ >= 0) ::close(err_);
    ::unlink(pid_file_.c_str());
    ::unlink(spec_file_.c_str());
  }
  int stdin_fd() const override { return in_; }
  int stdout_fd() const override { return out_; }
  int stderr_fd() const override { return err_; }
  void close_stdin() override {
    if (tty_) {
      // EOF on a terminal is the EOF character at the start of a line.
      if (in_ >= 0) (void)!::write(in_, "\x04", 1);
      return;
    }
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }
  // runc passes its own terminal's size (ours, out_) to the container's terminal when the
  // process starts and on SIGWINCH, and the process may read its size before runc got to
  // either. So the size is also set on the container's terminal itself, once the process
  // runs: the last size asked for then holds from the moment the process can see it.
  Status resize(uint16_t rows, uint16_t cols) override {
    if (!tty_) return Status::Invalid("the process has no terminal");
    size_ = winsize{rows, cols, 0, 0};
    if (::ioctl(out_, TIOCSWINSZ, &*size_) != 0) {
      return Status::Internal(std::string("resizing terminal: ") + std::strerror(errno));
    }
    apply_size_in_container();
    return Status::Ok();
  }
  // Waits until runc has started the process (its pid file is written) or runc has exited,
  // then sets the container's terminal to the last size asked for. With a tty only.
  void wait_started(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (container_pid() == 0 && !exit_code_ && std::chrono::steady_clock::now() < deadline) {
      if (wait(std::chrono::milliseconds(0)).ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    apply_size_in_container();
  }
  Status kill(int signal) override {
    if (exit_code_) return Status::Ok();
    // The process's host pid, once runc has written it.
    auto text = read_text(pid_file_);
    int pid = text ? std::atoi(text->c_str()) : 0;
    if (pid > 0) {
      if (::kill(pid, signal) == 0 || errno == ESRCH) return Status::Ok();
      return Status::Internal(std::string("kill: ") + std::strerror(errno));
    }
    // Not started yet: runc forwards signals it receives to the process.
    ::kill(runc_pid_, signal);
    return Status::Ok();
  }
  Result<int> wait(std::chrono::milliseconds timeout) override {
    if (exit_code_) return *exit_code_;
    auto code = internal::wait_child(runc_pid_, timeout);
    if (code.ok()) exit_code_ = *code;
    return code;
  }

 private:
  // The process's host pid once runc has written it, else 0.
  int container_pid() {
    if (container_pid_ == 0) {
      auto text = read_text(pid_file_);
      container_pid_ = text ? std::atoi(text->c_str()) : 0;
    }
    return container_pid_;
  }
  // Sets the last requested size on the terminal the process has (its first standard
  // descriptor that is a terminal); TIOCSWINSZ there signals SIGWINCH to its foreground
  // process group. Nothing to do before the process runs or after it exited.
  void apply_size_in_container() {
    if (!size_ || exit_code_) return;
    int pid = container_pid();
    if (pid <= 0) return;
    for (int fd = 0; fd <= 2; ++fd) {
      std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
      int t = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
      if (t < 0) continue;
      bool done = ::isatty(t) && ::ioctl(t, TIOCSWINSZ, &*size_) == 0;
      ::close(t);
      if (done) return;
    }
  }

  pid_t runc_pid_;
  std::string pid_file_;
  std::string spec_file_;
  int in_, out_, err_;
  bool tty_;
  std::optional<int> exit_code_;
  int container_pid_ = 0;
  std::optional<winsize> size_;  // the last size asked for
};

}  // namespace

Result<std::unique_ptr<ExecProcess>> ContainerRuntime::exec(const std::string& id,
                                                            const ExecOptions& options) {
  if (options.args.empty()) return Status::Invalid("exec needs a command");
  auto st = status(id);
  if (!st.ok()) return st.status();
  if (st->state != ContainerState::kRunning) {
    return Status::Conflict("container " + id + " is not running");
  }
  Paths p = paths(id);
  auto config_text = read_text(p.config);
  json config = config_text ? json::parse(*config_text, nullptr, false) : json();
  if (!config.is_object() || !config.contains("process")) {
    return Status::Internal("container " + id + " has no readable config.json");
  }
  // The container's own process settings (user, capabilities, env, ...) with the new args.
  json process = config["process"];
  process["args"] = options.args;
  process["terminal"] = options.tty;
  if (!options.working_dir.empty()) process["cwd"] = options.working_dir;
  json env = process.value("env", json::array());
  for (const auto& e : options.env) {
    std::string name = e.substr(0, e.find('='));
    json kept = json::array();
    for (const auto& old : env) {
      std::string s = old.get<std::string>();
      if (s.substr(0, s.find('=')) != name) kept.push_back(s);
    }
    kept.push_back(e);
    env = std::move(kept);
  }
  process["env"] = env;
  std::string suffix = random_suffix();
  std::string spec_file = p.bundle + "/exec-" + suffix + ".json";
  std::string pid_file = p.bundle + "/exec-" + suffix + ".pid";
  if (Status s = write_text_atomic(spec_file, process.dump()); !s.ok()) return s;

  internal::SpawnOptions so;
  so.argv = {options_.runc_path,
             "--root",
             options_.root_dir + "/runc",
             "exec",
             "--process",
             spec_file,
             "--pid-file",
             pid_file,
             id};
  so.env = internal::helper_env();
  int ours_in = -1, ours_out = -1, ours_err = -1;
  std::vector<int> theirs;
  auto cleanup_fail = [&](Status s) {
    for (int fd : {ours_in, ours_out, ours_err}) {
      if (fd >= 0) ::close(fd);
    }
    for (int fd : theirs) ::close(fd);
    ::unlink(spec_file.c_str());
    return s;
  };
  if (options.tty) {
    // runc copies between its own terminal and the container's; its terminal is the slave of
    // a pseudo-terminal whose master the caller pumps.
    int master = -1, slave = -1;
    if (::openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) {
      return cleanup_fail(Status::Internal(std::string("openpty: ") + std::strerror(errno)));
    }
    ::fcntl(master, F_SETFD, FD_CLOEXEC);
    ::fcntl(slave, F_SETFD, FD_CLOEXEC);
    ours_in = ours_out = master;
    theirs.push_back(slave);
    so.fds = {{slave, 0}, {slave, 1}, {slave, 2}};
    so.new_session = true;
  } else {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return cleanup_fail(Status::Internal("pipe failed"));
    ours_out = out[0];
    theirs.push_back(out[1]);
    if (::pipe2(err, O_CLOEXEC) != 0) return cleanup_fail(Status::Internal("pipe failed"));
    ours_err = err[0];
    theirs.push_back(err[1]);
    so.fds = {{out[1], 1}, {err[1], 2}};
    if (options.stdin) {
      int in[2];
      if (::pipe2(in, O_CLOEXEC) != 0) return cleanup_fail(Status::Internal("pipe failed"));
      ours_in = in[1];
      theirs.push_back(in[0]);
      so.fds.push_back({in[0], 0});
    }
  }
  auto pid = internal::spawn(so);
  if (!pid.ok()) return cleanup_fail(pid.status());
  for (int fd : theirs) ::close(fd);
  auto proc = std::make_unique<RuncExecProcess>(*pid, pid_file, spec_file, ours_in, ours_out,
                                                ours_err, options.tty);
  // With a terminal, return once the process runs, so that resize() reaches its terminal
  // from the first call on.
  if (options.tty) proc->wait_started(std::chrono::seconds(30));
  return std::unique_ptr<ExecProcess>(std::move(proc));
}

Result<ExecResult> ContainerRuntime::exec_sync(const std::string& id,
                                               const std::vector<std::string>& args,
                                               std::chrono::milliseconds timeout) {
  ExecOptions options;
  options.args = args;
  auto proc = exec(id, options);
  if (!proc.ok()) return proc.status();
  constexpr size_t kMaxOutput = 16 << 20;
  ExecResult result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  struct pollfd fds[2] = {{(*proc)->stdout_fd(), POLLIN, 0}, {(*proc)->stderr_fd(), POLLIN, 0}};
  int open_count = 2;
  char buf[65536];
  while (open_count > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      (void)(*proc)->kill(SIGKILL);
      return Status(StatusCode::kTimeout, "command timed out");
    }
    int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Internal(std::string("poll: ") + std::strerror(errno));
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        std::string& dst = i == 0 ? result.stdout_data : result.stderr_data;
        if (dst.size() < kMaxOutput) {
          dst.append(buf, std::min(static_cast<size_t>(r), kMaxOutput - dst.size()));
        }
      } else if (r == 0 || errno != EINTR) {
        fds[i].fd = -1;  // closed by the ExecProcess
        --open_count;
      }
    }
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  auto code = (*proc)->wait(std::max(left, std::chrono::milliseconds(0)));
  if (!code.ok()) {
    (void)(*proc)->kill(SIGKILL);
    return code.status();
  }
  result.exit_code = *code;
  return result;
}

AttachConnection::AttachConnection(int fd, bool tty, std::string ctl_path)
    : fd_(fd), tty_(tty), ctl_path_(std::move(ctl_path)) {}

AttachConnection::~AttachConnection() {
  if (fd_ >= 0) ::close(fd_);
}

void AttachConnection::close_stdin() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

Status AttachConnection::resize(uint16_t rows, uint16_t cols) {
  if (!tty_) return Status::Invalid("the container has no terminal");
  int fd = ::open(ctl_path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Status::Unavailable("the container's monitor is gone");
  // conmon's control message 1: resize the terminal to rows x cols.
  std::string msg = "1 " + std::to_string(rows) + " " + std::to_string(cols) + "\n";
  ssize_t n = ::write(fd, msg.data(), msg.size());
  ::close(fd);
  if (n != static_cast<ssize_t>(msg.size())) return Status::Internal("resizing the terminal");
  return Status::Ok();
}

Result<std::unique_ptr<AttachConnection>> ContainerRuntime::attach(const std::string& id) {
  auto st = status(id);
  if (!st.ok()) return st.status();
  if (st->state != ContainerState::kRunning) {
    return Status::Conflict("container " + id + " is not running");
  }
  Paths p = paths(id);
  auto config_text = read_text(p.config);
  json config = config_text ? json::parse(*config_text, nullptr, false) : json();
  bool tty = config.is_object() && config.contains("process") &&
             config["process"].value("terminal", false);
  // The bundle path may be longer than a socket address allows; connect through the
  // directory's /proc/self/fd entry, as conmon binds it.
  int dir = ::open(p.bundle.c_str(), O_PATH | O_CLOEXEC);
  if (dir < 0) return Status::NotFound("no container " + id);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/attach", dir);
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ::close(dir);
    return Status::Internal(std::string("socket: ") + std::strerror(errno));
  }
  int rc = ::connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::close(dir);
  if (rc != 0) {
    ::close(fd);
    return Status::Unavailable("attaching to container " + id + ": " + std::strerror(err));
  }
  return std::make_unique<AttachConnection>(fd, tty, p.ctl);
}

Status ContainerRuntime::reopen_log(const std::string& id) {
  if (!is_valid_id(id)) return Status::NotFound("no container " + id);
  Paths p = paths(id);
  if (!file_exists(p.meta)) return Status::NotFound("no container " + id);
  int fd = ::open(p.ctl.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    // No reader (ENXIO) or no fifo: conmon is gone and writes no more.
    return Status::Ok();
  }
  // conmon's control message 2: reopen the log files.
  const char msg[] = "2 0 0\n";
  ssize_t n = ::write(fd, msg, sizeof msg - 1);
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof msg - 1)) {
    return Status::Internal("asking conmon to reopen the log of " + id);
  }
  return Status::Ok();
}

Result<bool> ContainerRuntime::rotate_log(const std::string& id, int64_t max_bytes) {
  if (!is_valid_id(id)) return Status::NotFound("no container " + id);
  Paths p = paths(id);
  auto meta = read_meta(p.meta);
  if (!meta) return Status::NotFound("no container " + id);
  struct stat sb;
  if (::stat(meta->log_path.c_str(), &sb) != 0) return false;
  if (max_bytes > 0 && sb.st_size <= max_bytes) return false;
  std::string rotated = meta->log_path + ".1";
  if (::rename(meta->log_path.c_str(), rotated.c_str()) != 0) {
    return Status::Internal("rotating " + meta->log_path + ": " + std::strerror(errno));
  }
  if (Status s = reopen_log(id); !s.ok()) return s;
  return true;
}

Result<ContainerStats> ContainerRuntime::stats(const std::string& id) {
  if (!is_valid_id(id)) return Status::NotFound("no container " + id);
  auto meta = read_meta(paths(id).meta);
  if (!meta) return Status::NotFound("no container " + id);
  return read_cgroup_stats(options_.cgroup_root, meta->cgroup_path);
}

}  // namespace skiff::agent::runtime
