#include "proxy/nft.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "proxy/ruleset.h"

extern char** environ;

namespace skiff::proxy {

namespace {

// A pipe end closed on scope exit.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

bool make_pipe(Fd* read_end, Fd* write_end) {
  int fds[2];
  // Close-on-exec, so that children started concurrently by other threads do not inherit them
  // (and keep the pipe open).
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  read_end->reset(fds[0]);
  write_end->reset(fds[1]);
  return true;
}

// Blocks SIGPIPE in this thread while it lives, so that writing to a child that has exited
// fails with EPIPE instead of killing the process; a SIGPIPE raised meanwhile is discarded.
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

Result<CommandResult> run_command(const std::vector<std::string>& argv, std::string_view input) {
  if (argv.empty()) return Status::BadRequest("run_command: empty argv");
  Fd in_r, in_w, out_r, out_w;
  if (!make_pipe(&in_r, &in_w) || !make_pipe(&out_r, &out_w)) {
    return Status::Unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 2);
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
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return Status::Unavailable("cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  in_r.reset();
  out_w.reset();

  CommandResult result;
  {
    SigpipeBlock block;
    size_t written = 0;
    if (input.empty()) in_w.reset();
    ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
    bool out_open = true;
    while (out_open) {
      pollfd fds[2];
      int n = 0;
      fds[n++] = {out_r.get(), POLLIN, 0};
      if (in_w.get() >= 0) fds[n++] = {in_w.get(), POLLOUT, 0};
      if (::poll(fds, n, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (n == 2 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
        ssize_t w = ::write(in_w.get(), input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
          in_w.reset();  // done, or the child stopped reading
        }
      }
      if ((fds[0].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
        char buf[4096];
        ssize_t r = ::read(out_r.get(), buf, sizeof(buf));
        if (r > 0) {
          result.output.append(buf, static_cast<size_t>(r));
        } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
          out_open = false;
        }
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

NftApplier::NftApplier(std::string nft_binary, std::string netns)
    : nft_binary_(nft_binary.empty() ? "nft" : std::move(nft_binary)), netns_(std::move(netns)) {}

std::vector<std::string> NftApplier::command(const std::vector<std::string>& nft_args) const {
  std::vector<std::string> argv;
  if (!netns_.empty()) argv = {"ip", "netns", "exec", netns_};
  argv.push_back(nft_binary_);
  for (const auto& a : nft_args) argv.push_back(a);
  return argv;
}

Status NftApplier::apply(const std::string& script) {
  auto r = run_command(command({"-f", "-"}), script);
  if (!r.ok()) return r.status();
  if (r->exit_code == 127) {
    // `ip netns exec` reports a program it cannot run this way.
    return Status::Unavailable("cannot run " + nft_binary_ + ": " + r->output);
  }
  if (r->exit_code != 0) {
    return Status::Internal("nft -f - failed (exit " + std::to_string(r->exit_code) +
                            "): " + r->output);
  }
  return Status::Ok();
}

Result<std::string> NftApplier::list_table(const std::string& table) const {
  auto r = run_command(command({"list", "table", kTableFamily, table}), "");
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    if (r->output.find("No such file or directory") != std::string::npos) {
      return Status::NotFound(std::string("table ") + kTableFamily + " " + table +
                              " does not exist");
    }
    return Status::Internal("nft list table failed (exit " + std::to_string(r->exit_code) +
                            "): " + r->output);
  }
  return r->output;
}

}  // namespace skiff::proxy
