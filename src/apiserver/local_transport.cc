#include "apiserver/local_transport.h"

#include <future>
#include <mutex>
#include <nlohmann/json.hpp>

namespace skiff::apiserver {

struct LocalTransport::Shared {
  Handler handler;
  User user;
};

namespace {

// Takes the body from r (the coroutine's own copy of the request): bodies are the bulk of it.
HttpRequest make_request(client::Request& r, const std::string& user_agent) {
  http::verb verb = http::string_to_verb(r.method);
  std::string target = r.path;
  if (!r.query.empty()) target += "?" + r.query;
  HttpRequest req{verb, target, 11};
  if (!r.content_type.empty()) req.set(http::field::content_type, r.content_type);
  req.set(http::field::accept, r.accept);
  req.set(http::field::user_agent, user_agent);
  req.body() = std::move(r.body);
  req.prepare_payload();
  return req;
}

// A whole reply collected in memory.
class CollectingExchange final : public Exchange {
 public:
  CollectingExchange(HttpRequest& req, User user) : Exchange(req, std::move(user)) {}
  asio::awaitable<void> reply(Response r) override {
    responded_ = true;
    reply_.status = r.status;
    reply_.content_type = std::move(r.content_type);
    reply_.body = std::move(r.body);
    reply_.object = std::move(r.object);
    co_return;
  }
  asio::awaitable<bool> begin_stream(unsigned status, std::string content_type) override {
    responded_ = true;
    reply_.status = status;
    reply_.content_type = std::move(content_type);
    co_return true;
  }
  asio::awaitable<bool> write_chunk(std::string_view data) override {
    reply_.body.append(data);
    co_return true;
  }
  asio::awaitable<void> end_stream() override { co_return; }
  client::Reply take() { return std::move(reply_); }

 private:
  client::Reply reply_;
};

// State shared between a streaming request's coroutine and its Watch handle.
struct StreamState {
  // Recursive: a consumer may stop its watch from inside on_data.
  std::recursive_mutex mu;
  bool stopped = false;  // guarded by mu; once set no callback runs
  std::function<void(std::string_view)> on_data;
  // Set for a watch whose consumer takes events as objects (stream_watch).
  std::function<void(const client::WatchEvent&)> on_event;
  std::function<void(const Status&)> on_end;
};

class StreamingExchange final : public Exchange {
 public:
  StreamingExchange(HttpRequest& req, User user, std::shared_ptr<StreamState> state)
      : Exchange(req, std::move(user)),
        state_(std::move(state)),
        takes_events_(state_->on_event != nullptr) {}
  asio::awaitable<void> reply(Response r) override {
    responded_ = true;
    status_ = r.status;
    deliver(r.body);
    co_return;
  }
  asio::awaitable<bool> begin_stream(unsigned status, std::string) override {
    responded_ = true;
    status_ = status;
    co_return alive();
  }
  asio::awaitable<bool> write_chunk(std::string_view data) override { co_return deliver(data); }
  asio::awaitable<void> end_stream() override { co_return; }
  bool takes_events() const override { return takes_events_; }
  bool write_event(client::WatchEventType type,
                   std::shared_ptr<const nlohmann::json> object) override {
    std::lock_guard<std::recursive_mutex> lock(state_->mu);
    if (state_->stopped) return false;
    // A copy: the consumer may stop the watch (clearing on_event) from inside the callback.
    auto on_event = state_->on_event;
    if (on_event) {
      client::WatchEvent ev;
      ev.type = type;
      ev.object = std::move(object);
      on_event(ev);
    }
    return !state_->stopped;
  }
  unsigned status() const { return status_; }

 private:
  bool alive() {
    std::lock_guard<std::recursive_mutex> lock(state_->mu);
    return !state_->stopped;
  }
  bool deliver(std::string_view data) {
    std::lock_guard<std::recursive_mutex> lock(state_->mu);
    if (state_->stopped) return false;
    // A copy: the consumer may stop the watch (clearing on_data) from inside the callback.
    auto on_data = state_->on_data;
    if (on_data) on_data(data);
    return !state_->stopped;
  }
  std::shared_ptr<StreamState> state_;
  const bool takes_events_;  // fixed when the stream starts
  unsigned status_ = 0;
};

class LocalWatch final : public client::Watch {
 public:
  explicit LocalWatch(std::shared_ptr<StreamState> state) : state_(std::move(state)) {}
  ~LocalWatch() override { stop(); }
  void stop() override {
    std::lock_guard<std::recursive_mutex> lock(state_->mu);
    state_->stopped = true;
    state_->on_data = nullptr;
    state_->on_event = nullptr;
    state_->on_end = nullptr;
  }

 private:
  std::shared_ptr<StreamState> state_;
};

// Coroutines take their arguments by value: they live in the coroutine frame.
asio::awaitable<void> run_round_trip(std::shared_ptr<LocalTransport::Shared> shared,
                                     client::Request r,
                                     std::shared_ptr<std::promise<client::Reply>> done) {
  HttpRequest req = make_request(r, "skiff-local");
  CollectingExchange ex(req, shared->user);
  std::string failure;
  try {
    co_await shared->handler(ex);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  client::Reply reply = ex.take();
  if (!failure.empty() && !ex.responded()) {
    reply.status = 500;
    reply.body = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                 "\"reason\":\"InternalError\",\"code\":500,\"message\":\"internal error\"}";
  }
  done->set_value(std::move(reply));
}

asio::awaitable<void> run_stream(std::shared_ptr<LocalTransport::Shared> shared,
                                 client::Request r, std::shared_ptr<StreamState> state) {
  HttpRequest req = make_request(r, "skiff-local");
  StreamingExchange ex(req, shared->user, state);
  Status end;
  try {
    co_await shared->handler(ex);
  } catch (const std::exception& e) {
    end = Status::Internal(std::string("internal error: ") + e.what());
  }
  if (end.ok() && ex.status() != 200) {
    end = Status(StatusCode::kInternal, "the server answered " + std::to_string(ex.status()));
  }
  std::function<void(const Status&)> on_end;
  {
    std::lock_guard<std::recursive_mutex> lock(state->mu);
    if (state->stopped) co_return;
    state->stopped = true;
    on_end = std::move(state->on_end);
    state->on_data = nullptr;
    state->on_event = nullptr;
  }
  if (on_end) on_end(end);
}

}  // namespace

LocalTransport::LocalTransport(std::vector<asio::io_context*> workers, Handler handler, User user)
    : workers_(std::move(workers)),
      shared_(std::make_shared<Shared>(Shared{std::move(handler), std::move(user)})) {}

LocalTransport::~LocalTransport() = default;

asio::io_context& LocalTransport::next_worker() {
  return *workers_[next_.fetch_add(1, std::memory_order_relaxed) % workers_.size()];
}

Result<client::Reply> LocalTransport::round_trip(const client::Request& req) {
  auto done = std::make_shared<std::promise<client::Reply>>();
  auto fut = done->get_future();
  asio::io_context& worker = next_worker();
  if (worker.stopped()) return Status::Unavailable("the in-process API server has stopped");
  asio::co_spawn(worker, run_round_trip(shared_, req, done), asio::detached);
  // A request spawned just as the server stops never runs: look at the worker now and then.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (fut.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
    if (worker.stopped()) return Status::Unavailable("the in-process API server has stopped");
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::Unavailable("the in-process API server did not answer");
    }
  }
  return fut.get();
}

Result<std::unique_ptr<client::Watch>> LocalTransport::stream(
    const client::Request& req, std::function<void(std::string_view)> on_data,
    std::function<void(const Status&)> on_end) {
  return stream_watch(req, std::move(on_data), nullptr, std::move(on_end));
}

Result<std::unique_ptr<client::Watch>> LocalTransport::stream_watch(
    const client::Request& req, std::function<void(std::string_view)> on_data,
    std::function<void(const client::WatchEvent&)> on_event,
    std::function<void(const Status&)> on_end) {
  auto state = std::make_shared<StreamState>();
  state->on_data = std::move(on_data);
  state->on_event = std::move(on_event);
  state->on_end = std::move(on_end);
  auto watch = std::make_unique<LocalWatch>(state);
  asio::co_spawn(next_worker(), run_stream(shared_, req, state), asio::detached);
  return std::unique_ptr<client::Watch>(std::move(watch));
}

}  // namespace skiff::apiserver
