// The node's container runtime: OCI bundles run by runc, each watched by its own conmon.
//
// Layout under RuntimeOptions::root_dir (one per node data dir, so that runtimes never share
// state):
//   runc/                  runc --root: runc's own state
//   containers/<id>/       the bundle: config.json, rootfs/ (overlay mount point), conmon's
//                          pid files, ctl fifo, and meta.json (what adoption needs)
//   containers/<id>/persist/  conmon's exit and oom files for the container
//   exits/<id>             conmon's exit file: the exit status, written once all output is
//                          logged
//   sockets/               conmon's attach sockets
//
// conmon daemonizes (it double-forks and calls setsid), so containers outlive the process that
// created them: a new ContainerRuntime on the same root_dir lists and adopts them.
//
// Thread-safety: a ContainerRuntime holds no mutable state of its own; calls for different
// containers may run concurrently. Calls block (they run runc and wait for it), so callers on an
// event loop run them on a worker thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/runtime/oci_spec.h"
#include "agent/runtime/stats.h"
#include "common/status.h"
#include "common/time.h"

namespace skiff::agent::runtime {

struct RuntimeOptions {
  std::string root_dir;
  std::string runc_path = "/usr/sbin/runc";
  std::string conmon_path = "/usr/bin/conmon";
  // The cgroup hierarchy root, for stats and OOM counters.
  std::string cgroup_root = "/sys/fs/cgroup";
};

enum class ContainerState { kCreated, kRunning, kExited, kUnknown };
const char* container_state_name(ContainerState state);

struct ContainerStatus {
  std::string id;
  ContainerState state = ContainerState::kUnknown;
  int pid = 0;  // the container's init process on the host, while created or running
  std::optional<TimePoint> created_at;
  std::optional<TimePoint> started_at;
  std::optional<TimePoint> finished_at;
  int exit_code = 0;        // kExited only: the status, or 128+signal when killed by one
  bool oom_killed = false;  // kExited only: the kernel OOM killer killed a process of it
  // kExited only: "OOMKilled", "Completed" (exit code 0) or "Error", as the kubelet reports.
  std::string reason;
  std::string log_path;
  std::string cgroup_path;  // cgroupsPath of the spec
  std::string bundle;
};

struct ExecOptions {
  std::vector<std::string> args;
  std::vector<std::string> env;  // added to, and overriding, the container's
  std::string working_dir;       // "": the container's
  bool tty = false;              // one pseudo-terminal for stdin and output
  bool stdin = false;            // give the process a stdin the caller writes to
};

// A process started in a container by exec. The caller pumps its file descriptors: writes to
// stdin_fd (then close_stdin()), reads stdout_fd and stderr_fd to EOF; with a tty, stdin_fd
// and stdout_fd are the same pseudo-terminal master and stderr_fd is -1. Destroying it kills
// the process if it still runs. Not thread-safe.
class ExecProcess {
 public:
  virtual ~ExecProcess() = default;
  virtual int stdin_fd() const = 0;  // -1 unless ExecOptions::stdin or tty
  virtual int stdout_fd() const = 0;
  virtual int stderr_fd() const = 0;  // -1 with a tty
  virtual void close_stdin() = 0;
  // Sets the terminal size (on the process's own terminal too, so the size holds from the
  // moment the process can read it, whatever runc relays later); Invalid without a tty.
  virtual Status resize(uint16_t rows, uint16_t cols) = 0;
  // Sends a signal to the process.
  virtual Status kill(int signal) = 0;
  // The exit code (128+signal when killed by one); Timeout when it has not exited in `timeout`.
  virtual Result<int> wait(std::chrono::milliseconds timeout) = 0;
};

// A connection to a running container's own stdio through its conmon's attach socket (what
// `kubectl attach` uses). fd() is a SOCK_SEQPACKET socket: each message read from it is one
// packet [pipe][bytes] with pipe kAttachStdout or kAttachStderr (with a tty everything is
// stdout); bytes written to it go to the container's stdin, when it has one. Output written
// before the connection was made is not replayed (it is in the log). Closes the socket when
// destroyed. Not thread-safe.
class AttachConnection {
 public:
  static constexpr uint8_t kAttachStdout = 2;
  static constexpr uint8_t kAttachStderr = 3;
  // The largest packet conmon sends (its 8 KiB buffer and the pipe byte).
  static constexpr size_t kMaxPacket = 8193;

  AttachConnection(int fd, bool tty, std::string ctl_path);
  ~AttachConnection();
  AttachConnection(const AttachConnection&) = delete;
  AttachConnection& operator=(const AttachConnection&) = delete;

  int fd() const { return fd_; }
  bool tty() const { return tty_; }  // the container's process has a terminal
  // Ends the stdin direction (shutdown SHUT_WR); conmon then closes the container's stdin
  // unless the container keeps it open (stdinOnce false).
  void close_stdin();
  // Sets the container's terminal size (conmon's control fifo). Invalid without a tty.
  Status resize(uint16_t rows, uint16_t cols);

 private:
  int fd_;
  bool tty_;
  std::string ctl_path_;
};

struct ExecResult {
  int exit_code = 0;
  std::string stdout_data;
  std::string stderr_data;
};

class ContainerRuntime {
 public:
  // Creates the directories under options.root_dir. Invalid for an empty root_dir;
  // Unavailable when runc or conmon is not at the given path.
  static Result<std::unique_ptr<ContainerRuntime>> open(RuntimeOptions options);
  ~ContainerRuntime();
  ContainerRuntime(const ContainerRuntime&) = delete;
  ContainerRuntime& operator=(const ContainerRuntime&) = delete;

  const RuntimeOptions& options() const { return options_; }

  // Creates the container (runc create under a new conmon): mounts the overlay rootfs, writes
  // the bundle, and returns once runc has created the container's process, which waits for
  // start(). AlreadyExists when the id is taken; Invalid for a config build_oci_spec rejects;
  // Internal with runc's message when runc fails. Nothing is left behind on failure.
  Status create(const ContainerConfig& config);
  // Starts the created container's process. NotFound for an unknown id.
  Status start(const std::string& id);
  // Sends `signal` to the container's init process (all of its processes when `all`).
  // OK when the container has already exited.
  Status kill(const std::string& id, int signal, bool all = false);
  // Graceful stop as the kubelet does it: SIGTERM, up to `grace` for the container to exit,
  // then SIGKILL. Returns once the container has exited (and its output is logged). OK when it
  // had already exited; never-started containers are killed directly.
  Status stop(const std::string& id, std::chrono::seconds grace);
  // Removes the container: kills it if it still runs, deletes it from runc, unmounts the
  // overlay rootfs and removes the bundle. The log file stays unless it is in the bundle.
  // OK for an unknown id.
  Status remove(const std::string& id);

  // The container's status from runc and conmon's exit and oom files. NotFound for an
  // unknown id.
  Result<ContainerStatus> status(const std::string& id);
  // Every container under the root dir, including those created by an earlier process.
  Result<std::vector<ContainerStatus>> list();
  // Waits until the container has exited, then returns its status; Timeout if it has not
  // exited within `timeout`.
  Result<ContainerStatus> wait(const std::string& id, std::chrono::milliseconds timeout);

  // Runs a command in the running container and collects its output (at most 16 MiB of each
  // stream). Timeout (after killing it) when it runs longer than `timeout`.
  Result<ExecResult> exec_sync(const std::string& id, const std::vector<std::string>& args,
                               std::chrono::milliseconds timeout);
  // Starts a command in the running container with file descriptors the caller pumps. With a
  // tty it returns once the process runs (or runc failed), so resize() reaches it at once.
  // NotFound for an unknown id, Conflict when the container is not running.
  Result<std::unique_ptr<ExecProcess>> exec(const std::string& id, const ExecOptions& options);

  // Connects to the running container's stdio through conmon (see AttachConnection).
  // NotFound for an unknown id, Conflict when the container is not running, Unavailable when
  // conmon's attach socket does not answer.
  Result<std::unique_ptr<AttachConnection>> attach(const std::string& id);

  // Makes conmon reopen the log path (after the file was moved away).
  Status reopen_log(const std::string& id);
  // Rotates the container's log when it is larger than `max_bytes` (always when 0): the
  // current file becomes <log>.1 (replacing the previous one) and conmon starts a new file.
  // Returns whether it rotated.
  Result<bool> rotate_log(const std::string& id, int64_t max_bytes);

  // CPU and memory usage of the container's cgroup. NotFound when it has none (exited and
  // removed, or never created).
  Result<ContainerStats> stats(const std::string& id);

 private:
  explicit ContainerRuntime(RuntimeOptions options);
  struct Paths;
  Paths paths(const std::string& id) const;

  RuntimeOptions options_;
};

}  // namespace skiff::agent::runtime
