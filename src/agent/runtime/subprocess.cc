#include "agent/runtime/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace skiff::agent::runtime::internal {
namespace {

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

std::chrono::steady_clock::time_point deadline_after(std::chrono::milliseconds d) {
  return std::chrono::steady_clock::now() + d;
}

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

std::vector<std::string> helper_env() {
  return {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
}

int exit_code_of(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 255;
}

Result<pid_t> spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return Status::Invalid("nothing to run");
  std::vector<char*> argv, envp;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : options.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) return Status::Internal(std::string("open /dev/null: ") + std::strerror(errno));
  // Highest child fd, so that the sources can first be moved out of the way.
  int max_target = 2;
  for (const auto& [from, to] : options.fds) max_target = std::max(max_target, to);
  const int scratch_base = max_target + 1 + 64;

  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(devnull);
    return Status::Internal(std::string("fork: ") + std::strerror(e));
  }
  if (pid == 0) {
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int s = 1; s < NSIG; ++s) signal(s, SIG_DFL);
    // Move every source above the targets first, so that a source equal to another target is
    // not clobbered by an earlier dup2.
    int moved[64];
    size_t n = options.fds.size() < 64 ? options.fds.size() : 64;
    for (size_t i = 0; i < n; ++i) {
      moved[i] = fcntl(options.fds[i].first, F_DUPFD, scratch_base);
      if (moved[i] < 0) _exit(126);
    }
    int dn = fcntl(devnull, F_DUPFD, scratch_base);
    for (int t = 0; t <= 2; ++t) dup2(dn, t);
    for (size_t i = 0; i < n; ++i) {
      if (dup2(moved[i], options.fds[i].second) < 0) _exit(126);
    }
    ::syscall(SYS_close_range, max_target + 1, ~0U, 0);
    if (options.new_session) {
      setsid();
      ioctl(0, TIOCSCTTY, 0);
    }
    if (!options.working_dir.empty() && chdir(options.working_dir.c_str()) != 0) _exit(126);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  ::close(devnull);
  return pid;
}

Result<int> wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  int pfd = pidfd_open(pid);
  if (pfd >= 0) {
    struct pollfd p = {pfd, POLLIN, 0};
    int n;
    do {
      n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    } while (n < 0 && errno == EINTR);
    ::close(pfd);
    if (n == 0) return Status(StatusCode::kTimeout, "process still running");
  }
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return Status::Internal(std::string("waitpid: ") + std::strerror(errno));
  return exit_code_of(status);
}

Result<CommandResult> run_command(const std::vector<std::string>& argv,
                                  std::chrono::milliseconds timeout) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0)
    return Status::Internal("pipe: " + std::string(strerror(errno)));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return Status::Internal("pipe: " + std::string(strerror(errno)));
  }
  SpawnOptions so;
  so.argv = argv;
  so.env = helper_env();
  so.fds = {{out[1], 1}, {err[1], 2}};
  auto pid = spawn(so);
  ::close(out[1]);
  ::close(err[1]);
  if (!pid.ok()) {
    ::close(out[0]);
    ::close(err[0]);
    return pid.status();
  }
  CommandResult result;
  auto deadline = deadline_after(timeout);
  struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_count = 2;
  bool timed_out = false;
  char buf[65536];
  while (open_count > 0) {
    int n = ::poll(fds, 2, remaining_ms(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      timed_out = true;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  if (timed_out) {
    ::kill(*pid, SIGKILL);
    (void)wait_child(*pid, std::chrono::milliseconds(-1));
    return Status(StatusCode::kTimeout, argv[0] + " did not finish in time");
  }
  auto code = wait_child(*pid, std::chrono::milliseconds(-1));
  if (!code.ok()) return code.status();
  result.exit_code = *code;
  return result;
}

}  // namespace skiff::agent::runtime::internal
