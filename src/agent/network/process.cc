#include "agent/network/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace skiff::agent::network {
namespace {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

bool make_pipe(Fd* r, Fd* w) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  *r = Fd(fds[0]);
  *w = Fd(fds[1]);
  return true;
}

// Keeps a write to a child that stopped reading from raising SIGPIPE in this process: the
// signal is blocked on this thread while feeding the child and any pending one is consumed.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~SigpipeBlock() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    timespec zero{0, 0};
    while (sigtimedwait(&set, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t old_;
};

}  // namespace

std::vector<std::string> helper_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  const char* path = std::getenv("PATH");
  env.push_back(std::string("PATH=") +
                (path != nullptr && *path != '\0'
                     ? path
                     : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

Result<ProcessResult> run_process(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& env, std::string_view input,
                                  std::chrono::milliseconds timeout) {
  if (argv.empty()) return Status::BadRequest("run_process: empty argv");
  Fd in_r, in_w, out_r, out_w, err_r, err_w;
  if (!make_pipe(&in_r, &in_w) || !make_pipe(&out_r, &out_w) || !make_pipe(&err_r, &err_w)) {
    return Status::Unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The child starts with no blocked signals and default dispositions, whatever this thread
  // and process use.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return Status::Unavailable("cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();

  ProcessResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  {
    SigpipeBlock block;
    size_t written = 0;
    if (input.empty()) in_w.reset();
    if (in_w.get() >= 0) ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
    bool out_open = true, err_open = true;
    while (out_open || err_open) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ::kill(pid, SIGKILL);
        result.timed_out = true;
        break;
      }
      pollfd fds[3];
      int n = 0;
      int out_i = -1, err_i = -1, in_i = -1;
      if (out_open) out_i = n, fds[n++] = {out_r.get(), POLLIN, 0};
      if (err_open) err_i = n, fds[n++] = {err_r.get(), POLLIN, 0};
      if (in_w.get() >= 0) in_i = n, fds[n++] = {in_w.get(), POLLOUT, 0};
      int pr = ::poll(fds, n, static_cast<int>(std::min<long long>(left.count(), 1000)));
      if (pr < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (in_i >= 0 && (fds[in_i].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
        ssize_t w = ::write(in_w.get(), input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
          in_w.reset();  // done, or the child stopped reading
        }
      }
      auto drain = [](int fd, std::string* out, bool* open) {
        char buf[4096];
        ssize_t r = ::read(fd, buf, sizeof(buf));
        if (r > 0) {
          out->append(buf, static_cast<size_t>(r));
        } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
          *open = false;
        }
      };
      if (out_i >= 0 && (fds[out_i].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
        drain(out_r.get(), &result.stdout_text, &out_open);
      }
      if (err_i >= 0 && (fds[err_i].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
        drain(err_r.get(), &result.stderr_text, &err_open);
      }
    }
    in_w.reset();
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

}  // namespace skiff::agent::network
