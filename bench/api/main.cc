// bench_api: the load generator of bench/api/run.sh. Drives one server (skiff's Kubernetes API
// or etcd's v3 JSON gateway) through the same work and prints one figure a line:
//
//   creates_per_s  N   concurrent ~1 KiB ConfigMap creates (or puts)
//   gets_per_s     N   concurrent gets of those objects by name (or single-key ranges)
//   list10k_ms     N   median time to list a namespace holding exactly 10,000 of them (or
//                      range over their prefix) on an already-open connection
//   watch_p50_ms   N   with that many watchers on one namespace, the time from just before an
//   watch_p99_ms   N   update is sent to its event's arrival at each watcher
//
// Lines starting with '#' describe each phase (counts, load generator CPU use). A phase that
// fails prints its figures as "fail" and says why on stderr; the others still run.
//
// All network I/O runs on one thread (one io_context); the main thread only orchestrates, so
// the generator needs one core and a server's figures are not limited by client threads.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "http_client.h"
#include "targets.h"

namespace skiff::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Kubernetes' own scale target for one list, and the figure's name.
constexpr size_t kListSize = 10000;
constexpr const char* kWatchNamespace = "bench-watch";
constexpr const char* kWatchedName = "watched";
constexpr size_t kConnectBatch = 100;

// A failure that stops the current phase (or, outside a phase, the run).
class Failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string target;
  std::string address = "127.0.0.1";
  unsigned port = 0;
  std::string tls_dir;
  size_t clients = 64;
  size_t creates = 20000;
  size_t gets = 50000;
  size_t list_runs = 7;
  size_t watchers = 1000;
  size_t updates = 100;
  int wait_ready_seconds = -1;  // >= 0: only wait until the server is ready
  int free_ports = 0;           // > 0: only print this many free loopback ports
  int server_pid = 0;           // > 0: also report the server's CPU use per phase
};

void usage() {
  std::fprintf(stderr,
               "usage: bench_api (skiff|etcd) --port N [flags]\n"
               "       bench_api --free-ports N\n\n"
               "  --address A        server address (default 127.0.0.1)\n"
               "  --tls-dir D        skiff: D/ca.crt, D/client-admin.crt, D/client-admin.key\n"
               "  --clients N        concurrent connections for creates and gets (64)\n"
               "  --creates N        ConfigMaps created, 10,000 per namespace (20000)\n"
               "  --gets N           gets by name (50000)\n"
               "  --list-runs N      timed lists of the 10,000-object namespace (7)\n"
               "  --watchers N       concurrent watches on one namespace (1000)\n"
               "  --updates N        updates delivered to every watcher, one at a time (100)\n"
               "  --server-pid P     also report the CPU use of process P (the server)\n"
               "  --wait-ready S     only wait up to S seconds for the server to be ready\n");
}

bool parse_options(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    auto number = [&](auto* out) {
      const char* v = value();
      if (!v) return false;
      char* end = nullptr;
      long long n = std::strtoll(v, &end, 10);
      if (end == v || *end != '\0' || n < 0) return false;
      *out = static_cast<std::remove_pointer_t<decltype(out)>>(n);
      return true;
    };
    bool ok = true;
    if (a == "skiff" || a == "etcd") {
      o->target = a;
    } else if (a == "--address") {
      const char* v = value();
      ok = v != nullptr;
      if (ok) o->address = v;
    } else if (a == "--tls-dir") {
      const char* v = value();
      ok = v != nullptr;
      if (ok) o->tls_dir = v;
    } else if (a == "--port") {
      ok = number(&o->port) && o->port > 0 && o->port < 65536;
    } else if (a == "--clients") {
      ok = number(&o->clients) && o->clients > 0;
    } else if (a == "--creates") {
      ok = number(&o->creates);
    } else if (a == "--gets") {
      ok = number(&o->gets);
    } else if (a == "--list-runs") {
      ok = number(&o->list_runs) && o->list_runs > 0;
    } else if (a == "--watchers") {
      ok = number(&o->watchers);
    } else if (a == "--updates") {
      ok = number(&o->updates);
    } else if (a == "--wait-ready") {
      ok = number(&o->wait_ready_seconds);
    } else if (a == "--server-pid") {
      ok = number(&o->server_pid) && o->server_pid > 0;
    } else if (a == "--free-ports") {
      ok = number(&o->free_ports) && o->free_ports > 0;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "bench_api: bad argument %s\n", a.c_str());
      return false;
    }
  }
  if (o->free_ports > 0) return true;
  if (o->target.empty() || o->port == 0) return false;
  if (o->target == "skiff" && o->tls_dir.empty()) {
    std::fprintf(stderr, "bench_api: skiff needs --tls-dir\n");
    return false;
  }
  return true;
}

// The io_context and the one thread that runs it. Its destructor stops the thread and drops
// the pending callbacks (and with them the connections); declare it after anything those
// callbacks refer to.
class IoThread {
 public:
  IoThread() : guard_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~IoThread() {
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  asio::io_context& io() { return io_; }
  template <class F>
  void post(F&& f) {
    asio::post(io_, std::forward<F>(f));
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

template <class T>
T await(std::future<T> f, Clock::duration timeout, const std::string& what) {
  if (f.wait_for(timeout) != std::future_status::ready) throw Failure(what + ": timed out");
  return f.get();
}

// Runs fn on the io thread (where the state it reads lives) and returns its result.
template <class F>
auto on_io(IoThread& io, F fn) -> decltype(fn()) {
  using T = decltype(fn());
  auto p = std::make_shared<std::promise<T>>();
  auto f = p->get_future();
  io.post([p, fn = std::move(fn)]() mutable { p->set_value(fn()); });
  return await(std::move(f), 30s, "io thread");
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

// CPU seconds used so far by process pid (user + system), or -1 if unknown.
double process_cpu_seconds(int pid) {
  if (pid <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(paren + 2));
  std::string f;
  // After "pid (comm) ", field 3 (state) comes first; utime and stime are fields 14 and 15.
  for (int i = 3; i < 14 && fields >> f; ++i) {
  }
  long long utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// CPU use over a phase, in CPU seconds per wall second (100% = one busy core): the load
// generator's and, if its pid is known, the server's.
class CpuMeter {
 public:
  explicit CpuMeter(int server_pid)
      : server_pid_(server_pid),
        wall0_(Clock::now()),
        self0_(cpu_seconds()),
        server0_(process_cpu_seconds(server_pid)) {}

  std::string report() const {
    double wall = std::chrono::duration<double>(Clock::now() - wall0_).count();
    char buf[128];
    int n = std::snprintf(buf, sizeof buf, "load generator CPU %.0f%%",
                          100 * (cpu_seconds() - self0_) / wall);
    double server = process_cpu_seconds(server_pid_);
    if (server0_ >= 0 && server >= 0) {
      std::snprintf(buf + n, sizeof buf - n, ", server CPU %.0f%%",
                    100 * (server - server0_) / wall);
    }
    return buf;
  }

 private:
  int server_pid_;
  Clock::time_point wall0_;
  double self0_;
  double server0_;
};

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string namespace_of(size_t i) {
  return i < kListSize ? "bench" : "bench-" + std::to_string(i / kListSize + 1);
}

std::string name_of(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "cm-%05zu", i % kListSize);
  return buf;
}

using ConnectionPtr = std::shared_ptr<Connection>;

std::vector<ConnectionPtr> open_connections(IoThread& io, const Endpoint& ep, size_t n) {
  std::vector<ConnectionPtr> all;
  for (size_t begin = 0; begin < n; begin += kConnectBatch) {
    size_t count = std::min(kConnectBatch, n - begin);
    struct State {
      std::vector<ConnectionPtr> conns;
      size_t pending = 0;
      std::string error;
      std::promise<void> done;
    };
    auto st = std::make_shared<State>();
    st->conns.resize(count);
    st->pending = count;
    auto done = st->done.get_future();
    io.post([&io, ep, st, count] {
      for (size_t i = 0; i < count; ++i) {
        connect(io.io(), ep, [st, i](ErrorCode ec, ConnectionPtr c) {
          if (ec && st->error.empty()) st->error = ec.message();
          st->conns[i] = std::move(c);
          if (--st->pending == 0) st->done.set_value();
        });
      }
    });
    await(std::move(done), 60s, "connect");
    if (!st->error.empty()) {
      throw Failure("connect to port " + std::to_string(ep.port) + ": " + st->error);
    }
    for (auto& c : st->conns) all.push_back(std::move(c));
  }
  return all;
}

struct Timed {
  Response response;
  Clock::duration elapsed{};
};

// One request on c, timed from just before it is written to the end of the response.
Timed roundtrip(IoThread& io, const ConnectionPtr& c, Request req, Clock::duration timeout = 60s) {
  auto p = std::make_shared<std::promise<Timed>>();
  auto f = p->get_future();
  io.post([c, p, req = std::move(req)]() mutable {
    auto start = Clock::now();
    c->request(std::move(req), [p, start](ErrorCode ec, Response& res) {
      auto end = Clock::now();
      if (ec) {
        p->set_exception(std::make_exception_ptr(Failure("request: " + ec.message())));
        return;
      }
      p->set_value(Timed{std::move(res), end - start});
    });
  });
  return await(std::move(f), timeout, "request");
}

// ---------------------------------------------------------------------------------------------
// Creates and gets: `clients` connections, each sending its next request as soon as the
// previous one is answered, until `total` operations are done.

struct LoadState {
  size_t total = 0;
  size_t offset = 0;
  std::function<Request(size_t)> make;
  std::function<bool(const Response&)> ok;
  size_t next = 0;
  size_t done = 0;
  size_t failed = 0;
  std::string first_error;
  Clock::time_point begin, end;
  std::promise<void> finished;
};

void drive(const std::shared_ptr<LoadState>& st, const ConnectionPtr& c) {
  if (st->next == st->total) return;
  size_t i = st->offset + st->next++;
  c->request(st->make(i), [st, c](ErrorCode ec, Response& res) {
    if (ec || !st->ok(res)) {
      if (st->failed++ == 0) {
        st->first_error =
            ec ? ec.message()
               : "HTTP " + std::to_string(res.result_int()) + ": " + res.body().substr(0, 300);
      }
    }
    if (++st->done == st->total) {
      st->end = Clock::now();
      st->finished.set_value();
      return;
    }
    drive(st, c);
  });
}

struct LoadResult {
  size_t ops = 0;
  double seconds = 0;
  std::string cpu;  // CpuMeter::report()
};

LoadResult run_load(IoThread& io, const std::vector<ConnectionPtr>& conns, size_t offset,
                    size_t total, std::function<Request(size_t)> make,
                    std::function<bool(const Response&)> ok, const std::string& what,
                    int server_pid) {
  LoadResult r;
  r.ops = total;
  if (total == 0) return r;
  auto st = std::make_shared<LoadState>();
  st->total = total;
  st->offset = offset;
  st->make = std::move(make);
  st->ok = std::move(ok);
  auto finished = st->finished.get_future();
  CpuMeter meter(server_pid);
  io.post([st, conns] {
    st->begin = Clock::now();
    for (const auto& c : conns) drive(st, c);
  });
  await(std::move(finished), 600s, what);
  r.cpu = meter.report();
  r.seconds = std::chrono::duration<double>(st->end - st->begin).count();
  if (st->failed > 0) {
    throw Failure(what + ": " + std::to_string(st->failed) + " of " + std::to_string(total) +
                  " failed; first: " + st->first_error);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Watches: `watchers` streams on one namespace; `updates` updates of one object, each sent
// once every watcher has received the previous one and its write was answered.

struct WatchState {
  const Target* target = nullptr;
  std::string ns;
  size_t watchers = 0;
  size_t updates = 0;
  ConnectionPtr writer;
  std::unique_ptr<asio::steady_timer> pause;

  size_t opened = 0;
  size_t open_failed = 0;
  std::vector<char> counted;  // [watcher]: counted in opened or open_failed
  std::promise<void> all_open;

  std::vector<std::vector<Clock::time_point>> arrivals;  // [watcher][update]
  std::vector<Clock::time_point> sent;                   // [update]
  std::vector<size_t> delivered;                         // [update]: watchers that have it
  std::vector<char> acked;                               // [update]: write answered
  size_t ended = 0;  // streams that ended before the phase finished
  std::string first_error;
  bool done = false;
  std::promise<void> finished;

  // Records the first error and ends the phase: a lost write or stream would stall it.
  void fail(std::string e) {
    if (first_error.empty()) first_error = std::move(e);
    if (done) return;
    done = true;
    finished.set_value();
  }
  void count_open(size_t i, bool ok) {
    if (counted[i]) return;
    counted[i] = 1;
    ok ? ++opened : ++open_failed;
    if (opened + open_failed == watchers) all_open.set_value();
  }
};

void send_update(const std::shared_ptr<WatchState>& st, size_t k);

void maybe_next(const std::shared_ptr<WatchState>& st, size_t k) {
  if (!st->acked[k] || st->delivered[k] != st->watchers || st->done) return;
  if (k + 1 == st->updates) {
    st->done = true;
    st->finished.set_value();
    return;
  }
  // A short pause lets each update start from a quiet server, as a sparse stream of changes.
  st->pause->expires_after(5ms);
  st->pause->async_wait([st, k](ErrorCode ec) {
    if (!ec) send_update(st, k + 1);
  });
}

void send_update(const std::shared_ptr<WatchState>& st, size_t k) {
  Request req = st->target->update(st->ns, kWatchedName, static_cast<int64_t>(k + 1));
  st->sent[k] = Clock::now();
  st->writer->request(std::move(req), [st, k](ErrorCode ec, Response& res) {
    if (ec || !st->target->updated(res)) {
      st->fail("update " + std::to_string(k) + ": " +
               (ec ? ec.message() : "HTTP " + std::to_string(res.result_int())));
      return;
    }
    st->acked[k] = 1;
    maybe_next(st, k);
  });
}

void start_watch(const std::shared_ptr<WatchState>& st, const ConnectionPtr& c, size_t i,
                 int64_t after) {
  auto on_open = [st, i](ErrorCode ec, unsigned status) {
    if (ec || status != 200) {
      st->fail("watch: " + (ec ? ec.message() : "HTTP " + std::to_string(status)));
      st->count_open(i, false);
    } else if (st->target->watch_open_at_header()) {
      st->count_open(i, true);
    }
  };
  auto on_line = [st, i](std::string_view line) {
    WatchLine l = st->target->classify(line);
    if (l.kind == WatchLine::kCreated) {
      st->count_open(i, true);
    } else if (l.kind == WatchLine::kError) {
      st->fail("watch event: " + std::string(line.substr(0, 300)));
      st->count_open(i, false);
    } else if (l.kind == WatchLine::kEvents) {
      auto now = Clock::now();
      for (int e = 0; e < l.events; ++e) {
        size_t k = st->arrivals[i].size();
        st->arrivals[i].push_back(now);
        if (k < st->updates) {
          ++st->delivered[k];
          maybe_next(st, k);
        }
      }
    }
  };
  auto on_end = [st, i](ErrorCode ec) {
    if (st->done) return;
    ++st->ended;
    st->fail("a watch ended early" + (ec ? ": " + ec.message() : std::string()));
    st->count_open(i, false);
  };
  c->stream(st->target->watch(st->ns, after), on_open, on_line, on_end);
}

struct WatchResult {
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  size_t samples = 0;
  std::string cpu;  // CpuMeter::report()
};

double percentile(const std::vector<double>& sorted, double p) {
  // Nearest rank.
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

WatchResult run_watch(IoThread& io, const Target& t, size_t watchers, size_t updates,
                      int server_pid) {
  if (watchers == 0 || updates == 0) throw Failure("watch: needs watchers and updates");
  auto st = std::make_shared<WatchState>();
  st->target = &t;
  st->ns = kWatchNamespace;
  st->watchers = watchers;
  st->updates = updates;
  st->writer = open_connections(io, t.endpoint(), 1).front();
  st->pause = std::make_unique<asio::steady_timer>(io.io());
  st->counted.assign(watchers, 0);
  st->arrivals.resize(watchers);
  for (auto& a : st->arrivals) a.reserve(updates + 1);
  st->sent.resize(updates);
  st->delivered.assign(updates, 0);
  st->acked.assign(updates, 0);

  Timed created = roundtrip(io, st->writer, t.create(st->ns, kWatchedName));
  if (!t.created(created.response)) {
    throw Failure("watch: creating the watched object: HTTP " +
                  std::to_string(created.response.result_int()) + " " +
                  created.response.body().substr(0, 300));
  }
  int64_t after = t.write_revision(created.response);
  if (after < 0) throw Failure("watch: no revision in the create response");

  auto open0 = Clock::now();
  std::vector<ConnectionPtr> conns = open_connections(io, t.endpoint(), watchers);
  auto all_open = st->all_open.get_future();
  auto finished = st->finished.get_future();
  io.post([st, conns, after] {
    for (size_t i = 0; i < conns.size(); ++i) start_watch(st, conns[i], i, after);
  });
  await(std::move(all_open), 120s, "watch: opening the watches");

  // The state lives on the io thread; everything below reads it there.
  auto status = [st]() {
    size_t got = 0;
    for (size_t k = 0; k < st->updates; ++k) got += st->delivered[k];
    return std::to_string(st->opened) + " open, " + std::to_string(st->open_failed) +
           " failed to open, " + std::to_string(st->ended) + " ended early, " +
           std::to_string(got) + " of " + std::to_string(st->updates * st->watchers) +
           " deliveries" + (st->first_error.empty() ? "" : "; first error: " + st->first_error);
  };
  if (on_io(io, [st] { return st->open_failed > 0 || !st->first_error.empty(); })) {
    throw Failure("watch: " + on_io(io, status));
  }
  std::printf("# watch: %zu streams open in %.2f s\n", watchers,
              std::chrono::duration<double>(Clock::now() - open0).count());
  std::fflush(stdout);

  CpuMeter meter(server_pid);
  io.post([st] { send_update(st, 0); });
  if (finished.wait_for(60s + updates * 1s) != std::future_status::ready) {
    throw Failure("watch: timed out: " + on_io(io, status));
  }
  WatchResult r;
  r.cpu = meter.report();
  if (std::string e = on_io(io, [st] { return st->first_error; }); !e.empty()) {
    throw Failure("watch: " + on_io(io, status));
  }
  std::vector<double> lat = on_io(io, [st] {
    std::vector<double> out;
    out.reserve(st->watchers * st->updates);
    for (const auto& a : st->arrivals) {
      for (size_t k = 0; k < st->updates; ++k) out.push_back(ms(a[k] - st->sent[k]));
    }
    return out;
  });
  std::sort(lat.begin(), lat.end());
  r.samples = lat.size();
  r.p50_ms = percentile(lat, 50);
  r.p99_ms = percentile(lat, 99);
  r.max_ms = lat.back();
  return r;
}

// ---------------------------------------------------------------------------------------------

bool wait_ready(IoThread& io, const Target& t, int seconds) {
  auto deadline = Clock::now() + std::chrono::seconds(seconds);
  do {
    try {
      auto c = open_connections(io, t.endpoint(), 1).front();
      if (roundtrip(io, c, t.ready(), 5s).response.result_int() == 200) return true;
    } catch (const Failure&) {
      // Not listening yet, or not ready.
    }
    std::this_thread::sleep_for(100ms);
  } while (Clock::now() < deadline);
  return false;
}

int print_free_ports(int n) {
  asio::io_context io;
  std::vector<asio::ip::tcp::acceptor> held;
  for (int i = 0; i < n; ++i) {
    held.emplace_back(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::printf("%u\n", held.back().local_endpoint().port());
  }
  return 0;
}

void phase_failed(const std::string& figures, const std::exception& e) {
  std::fprintf(stderr, "bench_api: %s\n", e.what());
  for (size_t at = 0; at < figures.size();) {
    size_t sp = figures.find(' ', at);
    std::string f = figures.substr(at, sp == std::string::npos ? std::string::npos : sp - at);
    std::printf("%s fail\n", f.c_str());
    at = sp == std::string::npos ? figures.size() : sp + 1;
  }
  std::fflush(stdout);
}

int run(const Options& o) {
  std::unique_ptr<asio::ssl::context> tls;
  Endpoint ep;
  ep.address = o.address;
  ep.port = static_cast<unsigned short>(o.port);
  std::unique_ptr<Target> target;
  if (o.target == "skiff") {
    tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
    tls->load_verify_file(o.tls_dir + "/ca.crt");
    tls->use_certificate_chain_file(o.tls_dir + "/client-admin.crt");
    tls->use_private_key_file(o.tls_dir + "/client-admin.key", asio::ssl::context::pem);
    tls->set_verify_mode(asio::ssl::verify_peer);
    ep.tls = tls.get();
    target = make_skiff_target(ep);
  } else {
    target = make_etcd_target(ep);
  }
  const Target& t = *target;
  IoThread io;  // after what its callbacks use, so that it stops while they still exist

  if (o.wait_ready_seconds >= 0) {
    if (wait_ready(io, t, o.wait_ready_seconds)) return 0;
    std::fprintf(stderr, "bench_api: %s on port %u not ready after %d s\n", t.name().c_str(),
                 o.port, o.wait_ready_seconds);
    return 1;
  }

  std::printf(
      "# %s on %s:%u: %zu clients, %zu creates, %zu gets, %zu list runs, "
      "%zu watchers x %zu updates\n",
      t.name().c_str(), o.address.c_str(), o.port, o.clients, o.creates, o.gets, o.list_runs,
      o.watchers, o.updates);
  std::fflush(stdout);

  std::vector<ConnectionPtr> conns = open_connections(io, ep, o.clients);
  {
    std::vector<std::string> namespaces;
    for (size_t i = 0; i < std::max(o.creates, kListSize); i += kListSize) {
      namespaces.push_back(namespace_of(i));
    }
    namespaces.push_back(kWatchNamespace);
    for (Request& req : t.setup(namespaces)) {
      Timed r = roundtrip(io, conns.front(), std::move(req));
      if (r.response.result_int() >= 300) {
        throw Failure("setup: HTTP " + std::to_string(r.response.result_int()) + " " +
                      r.response.body().substr(0, 300));
      }
    }
  }

  auto create = [&t](size_t i) { return t.create(namespace_of(i), name_of(i)); };
  auto created = [&t](const Response& r) { return t.created(r); };
  try {
    LoadResult r = run_load(io, conns, 0, o.creates, create, created, "creates", o.server_pid);
    std::printf("# creates: %zu in %.2f s; %s\n", r.ops, r.seconds, r.cpu.c_str());
    std::printf("creates_per_s %.1f\n", r.seconds > 0 ? r.ops / r.seconds : 0.0);
    std::fflush(stdout);
  } catch (const Failure& e) {
    phase_failed("creates_per_s", e);
  }

  // The list namespace must hold exactly kListSize objects, whatever --creates was.
  bool filled = true;
  if (o.creates < kListSize) {
    try {
      run_load(io, conns, o.creates, kListSize - o.creates, create, created, "filling", 0);
    } catch (const Failure& e) {
      std::fprintf(stderr, "bench_api: %s\n", e.what());
      filled = false;
    }
  }

  try {
    if (!filled) throw Failure("gets: the namespace was not filled");
    auto get = [&t](size_t i) { return t.get("bench", name_of(i * 7919 % kListSize)); };
    auto found = [&t](const Response& r) { return t.found(r); };
    LoadResult r = run_load(io, conns, 0, o.gets, get, found, "gets", o.server_pid);
    std::printf("# gets: %zu in %.2f s; %s\n", r.ops, r.seconds, r.cpu.c_str());
    std::printf("gets_per_s %.1f\n", r.seconds > 0 ? r.ops / r.seconds : 0.0);
    std::fflush(stdout);
  } catch (const Failure& e) {
    phase_failed("gets_per_s", e);
  }
  conns.clear();

  try {
    if (!filled) throw Failure("list: the namespace was not filled");
    ConnectionPtr c = open_connections(io, ep, 1).front();
    Timed warm = roundtrip(io, c, t.list("bench"));
    int64_t n = t.listed(warm.response);
    if (n != static_cast<int64_t>(kListSize)) {
      throw Failure("list: got " + std::to_string(n) + " objects (HTTP " +
                    std::to_string(warm.response.result_int()) + "), want " +
                    std::to_string(kListSize));
    }
    std::vector<double> times;
    for (size_t i = 0; i < o.list_runs; ++i) {
      Timed r = roundtrip(io, c, t.list("bench"));
      if (r.response.result_int() != 200 ||
          r.response.body().size() != warm.response.body().size()) {
        throw Failure("list: run " + std::to_string(i) + " answered HTTP " +
                      std::to_string(r.response.result_int()) + " with " +
                      std::to_string(r.response.body().size()) + " bytes");
      }
      times.push_back(ms(r.elapsed));
    }
    std::sort(times.begin(), times.end());
    double median = times.size() % 2 ? times[times.size() / 2]
                                     : (times[times.size() / 2 - 1] + times[times.size() / 2]) / 2;
    std::printf("# list: %zu objects, %zu bytes; %zu runs, min %.1f ms, max %.1f ms\n", kListSize,
                warm.response.body().size(), times.size(), times.front(), times.back());
    std::printf("list10k_ms %.2f\n", median);
    std::fflush(stdout);
  } catch (const Failure& e) {
    phase_failed("list10k_ms", e);
  }

  try {
    WatchResult r = run_watch(io, t, o.watchers, o.updates, o.server_pid);
    std::printf("# watch: %zu watchers x %zu updates = %zu deliveries, max %.1f ms; %s\n",
                o.watchers, o.updates, r.samples, r.max_ms, r.cpu.c_str());
    std::printf("watch_p50_ms %.2f\nwatch_p99_ms %.2f\n", r.p50_ms, r.p99_ms);
    std::fflush(stdout);
  } catch (const Failure& e) {
    phase_failed("watch_p50_ms watch_p99_ms", e);
  }
  return 0;
}

}  // namespace
}  // namespace skiff::bench

int main(int argc, char** argv) {
  skiff::bench::Options o;
  if (!skiff::bench::parse_options(argc, argv, &o)) {
    skiff::bench::usage();
    return 2;
  }
  try {
    if (o.free_ports > 0) return skiff::bench::print_free_ports(o.free_ports);
    return skiff::bench::run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_api: %s\n", e.what());
    return 1;
  }
}
