#include "agent/runtime/cri_log.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <filesystem>

namespace skiff::agent::runtime {
namespace {

// Go's time.RFC3339Nano in UTC: fraction without trailing zeros.
std::string format_rfc3339_nano(TimePoint t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  int64_t secs = ns / 1000000000;
  int64_t frac = ns % 1000000000;
  if (frac < 0) {
    frac += 1000000000;
    --secs;
  }
  auto base = format_rfc3339(Timestamp{secs, 0}, 0).value_or("0001-01-01T00:00:00Z");
  if (frac == 0) return base;
  char digits[16];
  std::snprintf(digits, sizeof digits, "%09lld", static_cast<long long>(frac));
  std::string d = digits;
  while (!d.empty() && d.back() == '0') d.pop_back();
  base.pop_back();  // 'Z'
  return base + "." + d + "Z";
}

// The log's lines in order, assembled from partial entries; what the sink gets.
class LineAssembler {
 public:
  explicit LineAssembler(const LogOptions& options) : options_(options) {}

  // Feeds one physical line; calls `emit` with each completed logical line.
  template <typename Emit>
  void feed(std::string_view physical, Emit&& emit) {
    auto entry = parse_cri_log_line(physical);
    if (!entry.ok()) return;
    Pending& p = pending_[entry->stream == LogStream::kStdout ? 0 : 1];
    if (!p.active) {
      p.active = true;
      p.time = entry->time;
      p.text.clear();
    }
    p.text.append(entry->content);
    if (entry->partial) return;
    p.active = false;
    if (options_.since && p.time < *options_.since) return;
    std::string line;
    if (options_.timestamps) {
      line = format_rfc3339_nano(p.time);
      line.push_back(' ');
    }
    line += p.text;
    line.push_back('\n');
    emit(std::move(line));
  }

 private:
  struct Pending {
    bool active = false;
    TimePoint time;
    std::string text;
  };
  const LogOptions& options_;
  Pending pending_[2];
};

// Reads a file's complete lines as they are appended.
class LineFile {
 public:
  ~LineFile() { close(); }
  bool open(const std::string& path) {
    close();
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    buffer_.clear();
    if (fd_ < 0) return false;
    struct stat st;
    if (::fstat(fd_, &st) == 0) inode_ = st.st_ino;
    return true;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool is_open() const { return fd_ >= 0; }
  ino_t inode() const { return inode_; }

  // Reads to the current end of the file; `line` gets each complete line. Returns false when
  // `line` asked to stop.
  template <typename Line>
  bool drain(Line&& line) {
    if (fd_ < 0) return true;
    char chunk[65536];
    while (true) {
      ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return true;
      buffer_.append(chunk, static_cast<size_t>(n));
      size_t start = 0;
      while (true) {
        size_t nl = buffer_.find('\n', start);
        if (nl == std::string::npos) break;
        if (!line(std::string_view(buffer_).substr(start, nl - start))) {
          buffer_.erase(0, nl + 1);
          return false;
        }
        start = nl + 1;
      }
      buffer_.erase(0, start);
    }
  }

 private:
  int fd_ = -1;
  ino_t inode_ = 0;
  std::string buffer_;
};

ino_t inode_of(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace

Result<LogEntry> parse_cri_log_line(std::string_view line) {
  auto bad = [&]() {
    return Status::BadRequest("not a CRI log line: \"" + std::string(line.substr(0, 80)) + "\"");
  };
  size_t s1 = line.find(' ');
  if (s1 == std::string_view::npos) return bad();
  size_t s2 = line.find(' ', s1 + 1);
  if (s2 == std::string_view::npos) return bad();
  LogEntry e;
  e.timestamp = line.substr(0, s1);
  auto t = parse_rfc3339(e.timestamp);
  if (!t.ok()) return bad();
  e.time = *t;
  std::string_view stream = line.substr(s1 + 1, s2 - s1 - 1);
  if (stream == "stdout") {
    e.stream = LogStream::kStdout;
  } else if (stream == "stderr") {
    e.stream = LogStream::kStderr;
  } else {
    return bad();
  }
  size_t s3 = line.find(' ', s2 + 1);
  std::string_view tags =
      line.substr(s2 + 1, s3 == std::string_view::npos ? std::string_view::npos : s3 - s2 - 1);
  // Tags are ':'-separated; the first is F (full) or P (partial).
  std::string_view tag = tags.substr(0, tags.find(':'));
  if (tag == "P") {
    e.partial = true;
  } else if (tag != "F") {
    return bad();
  }
  e.content = s3 == std::string_view::npos ? std::string_view() : line.substr(s3 + 1);
  return e;
}

std::string format_cri_log_line(TimePoint time, LogStream stream, bool partial,
                                std::string_view content) {
  std::string out = format_rfc3339_nano(time);
  out += stream == LogStream::kStdout ? " stdout " : " stderr ";
  out += partial ? "P " : "F ";
  out.append(content);
  out.push_back('\n');
  return out;
}

Status read_container_log(const std::string& path, const LogOptions& options,
                          const std::function<bool(std::string_view)>& sink) {
  const std::string rotated = path + ".1";
  bool have_rotated = inode_of(rotated) != 0;
  bool have_current = inode_of(path) != 0;
  if (!have_rotated && !have_current && !options.follow) {
    return Status::NotFound("no log at " + path);
  }

  int64_t written = 0;
  bool stopped = false;
  auto output = [&](std::string_view text) {
    if (stopped) return false;
    if (options.limit_bytes > 0 &&
        written + static_cast<int64_t>(text.size()) > options.limit_bytes) {
      text = text.substr(0, static_cast<size_t>(options.limit_bytes - written));
      if (!text.empty()) sink(text);
      stopped = true;
      return false;
    }
    written += static_cast<int64_t>(text.size());
    if (!sink(text)) stopped = true;
    return !stopped;
  };

  LineAssembler assembler(options);
  // The existing content: with a tail, only the last N lines are written.
  std::deque<std::string> tail;
  const bool tailing = options.tail_lines.has_value();
  auto take = [&](std::string line) {
    if (!tailing) return output(line);
    if (*options.tail_lines <= 0) return true;
    tail.push_back(std::move(line));
    if (static_cast<int64_t>(tail.size()) > *options.tail_lines) tail.pop_front();
    return true;
  };
  auto feed_existing = [&](std::string_view physical) {
    bool go = true;
    assembler.feed(physical, [&](std::string line) { go = take(std::move(line)); });
    return go;
  };

  LineFile file;
  if (have_rotated && file.open(rotated)) {
    if (!file.drain(feed_existing)) return Status::Ok();
  }
  file.close();
  if (file.open(path)) {
    if (!file.drain(feed_existing)) return Status::Ok();
  }
  for (auto& line : tail) {
    if (!output(line)) return Status::Ok();
  }
  if (!options.follow) return Status::Ok();

  auto feed_new = [&](std::string_view physical) {
    bool go = true;
    assembler.feed(physical, [&](std::string line) { go = output(line); });
    return go;
  };
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int ino = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (ino < 0) return Status::Internal(std::string("inotify: ") + std::strerror(errno));
  if (::inotify_add_watch(
          ino, dir.c_str(),
          IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE) < 0) {
    ::close(ino);
    return Status::Internal("watching " + dir + ": " + std::strerror(errno));
  }
  Status result;
  while (!stopped) {
    // Rotation: once the path names a new file, finish the old one and switch.
    ino_t current = inode_of(path);
    if (!file.is_open() || (current != 0 && current != file.inode())) {
      if (file.is_open() && !file.drain(feed_new)) break;
      if (current != 0) file.open(path);
    }
    if (file.is_open() && !file.drain(feed_new)) break;
    struct pollfd pfd = {ino, POLLIN, 0};
    int n = ::poll(&pfd, 1, static_cast<int>(options.poll_interval.count()));
    if (n > 0) {
      char events[4096];
      while (::read(ino, events, sizeof events) > 0) {
      }
      continue;
    }
    if (n < 0 && errno != EINTR) {
      result = Status::Internal(std::string("poll: ") + std::strerror(errno));
      break;
    }
    if (options.keep_following && !options.keep_following()) {
      // The writer is done: what it wrote before is all there is.
      if (inode_of(path) != file.inode() && file.is_open()) {
        if (!file.drain(feed_new)) break;
        file.open(path);
      }
      file.drain(feed_new);
      break;
    }
  }
  ::close(ino);
  return result;
}

}  // namespace skiff::agent::runtime
