// A small SPDY/3.1 port-forward client for tests: drives a portforward::Session over a
// socketpair (so the session sees a byte stream cut at arbitrary points), the way kubectl
// does over its WebSocket tunnel. Optionally does SPDY flow control and checks that the
// session honours it.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "agent/portforward/portforward.h"
#include "agent/portforward/spdy.h"

namespace skiff::agent::portforward::testing {

class TestSpdyClient {
 public:
  struct Stream {
    bool replied = false;
    bool fin = false;
    bool reset = false;
    std::string data;
    int64_t send_window = spdy::kDefaultWindow;  // what the client may still send
    int64_t granted = spdy::kDefaultWindow;      // what the session may send in total
    uint64_t consumed_unacked = 0;
  };

  // `flow_control`: the client announces its window with SETTINGS, returns window as it
  // consumes data, and waits for the session's window updates before sending.
  TestSpdyClient(Session::DialFn dial, bool flow_control) : flow_control_(flow_control) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
    session_end_ = sv[0];
    client_end_ = sv[1];
    session_ = std::make_unique<Session>(
        [this](std::string bytes) { write_all(session_end_, bytes); }, std::move(dial),
        [this] {
          std::lock_guard<std::mutex> lock(mu_);
          session_finished_callback_ = true;
          cv_.notify_all();
        });
    feeder_ = std::thread([this] { feed_session(); });
    reader_thread_ = std::thread([this] { read_frames(); });
    if (flow_control_) {
      send_raw(writer_.settings(
          {{0, spdy::kSettingsInitialWindowSize, static_cast<uint32_t>(spdy::kDefaultWindow)}}));
    }
  }

  ~TestSpdyClient() {
    session_->close();
    ::shutdown(client_end_, SHUT_RDWR);
    ::shutdown(session_end_, SHUT_RDWR);
    feeder_.join();
    reader_thread_.join();
    session_.reset();
    ::close(session_end_);
    ::close(client_end_);
  }

  Session& session() { return *session_; }

  // Opens the error and data streams of one forwarded connection; returns the data stream id
  // (the error stream's id is 2 less). With `early_data`, the data stream is opened first,
  // carries those bytes and a FIN, and only then the error stream follows (its id is then
  // 2 more than the data stream's).
  uint32_t open_pair(uint16_t port, const std::string& request_id,
                     const std::string& early_data = "") {
    std::lock_guard<std::mutex> lock(write_mu_);
    uint32_t error_id = next_stream_;
    uint32_t data_id = next_stream_ + 2;
    if (!early_data.empty()) std::swap(error_id, data_id);
    next_stream_ += 4;
    {
      std::lock_guard<std::mutex> l(mu_);
      streams_[error_id];
      streams_[data_id];
    }
    std::string port_text = std::to_string(port);
    // Header blocks must be compressed in the order they are sent: one zlib context.
    auto error_syn = [&] {
      return writer_.syn_stream(
                 error_id,
                 {{"streamtype", "error"}, {"port", port_text}, {"requestid", request_id}}) +
             // kubectl half-closes the error stream at once: it never writes to it.
             writer_.data(error_id, "", spdy::kFlagFin);
    };
    auto data_syn = [&] {
      return writer_.syn_stream(
          data_id, {{"streamtype", "data"}, {"port", port_text}, {"requestid", request_id}});
    };
    if (early_data.empty()) {
      std::string out = error_syn();
      out += data_syn();
      write_all(client_end_, out);
    } else {
      write_all(client_end_, data_syn() + writer_.data(data_id, early_data, spdy::kFlagFin));
      write_all(client_end_, error_syn());
    }
    return data_id;
  }

  // Sends `bytes` on a stream, in frames of at most 16 KiB, honouring the session's window
  // when flow control is on.
  void send(uint32_t stream, std::string_view bytes, bool fin = false) {
    size_t at = 0;
    do {
      size_t n = std::min<size_t>(bytes.size() - at, 16 * 1024);
      if (flow_control_ && n > 0) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] {
          return streams_[stream].send_window > 0 || streams_[stream].reset || closed_;
        });
        if (streams_[stream].reset || closed_) return;
        n = std::min<size_t>(n, static_cast<size_t>(streams_[stream].send_window));
        streams_[stream].send_window -= static_cast<int64_t>(n);
      }
      bool last = at + n == bytes.size();
      std::lock_guard<std::mutex> lock(write_mu_);
      write_all(client_end_,
                writer_.data(stream, bytes.substr(at, n), fin && last ? spdy::kFlagFin : 0));
      at += n;
    } while (at < bytes.size());
  }

  void send_fin(uint32_t stream) { send(stream, "", true); }

  void send_rst(uint32_t stream) {
    std::lock_guard<std::mutex> lock(write_mu_);
    write_all(client_end_, writer_.rst_stream(stream, spdy::RstStatus::kCancel));
  }

  void send_raw(const std::string& bytes) {
    std::lock_guard<std::mutex> lock(write_mu_);
    write_all(client_end_, bytes);
  }

  // Waits until `pred(stream state)` holds, or 20 s pass; returns whether it held.
  template <typename Pred>
  bool wait_stream(uint32_t stream, Pred pred) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return pred(streams_[stream]); });
  }

  bool wait_fin(uint32_t stream) {
    return wait_stream(stream, [](const Stream& s) { return s.fin || s.reset; });
  }

  bool wait_data_size(uint32_t stream, size_t n) {
    return wait_stream(stream, [n](const Stream& s) { return s.data.size() >= n || s.fin; });
  }

  // Waits until `pred()` holds, or 20 s pass. `pred` runs without the client's lock (it may
  // call the accessors below) and is also re-checked on a short tick, for state that changes
  // inside the session without a frame.
  template <typename Pred>
  bool wait_until(Pred pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(20));
    }
    return true;
  }

  Stream stream(uint32_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return streams_[id];
  }

  std::vector<uint32_t> pings() {
    std::lock_guard<std::mutex> lock(mu_);
    return pings_;
  }
  std::optional<uint32_t> goaway_status() {
    std::lock_guard<std::mutex> lock(mu_);
    return goaway_status_;
  }
  bool finished_callback() {
    std::lock_guard<std::mutex> lock(mu_);
    return session_finished_callback_;
  }
  // Data the session sent beyond the window the client granted (must stay 0).
  int64_t window_violations() {
    std::lock_guard<std::mutex> lock(mu_);
    return window_violations_;
  }
  std::string decode_error() {
    std::lock_guard<std::mutex> lock(mu_);
    return decode_error_;
  }

 private:
  static void write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }

  // Reads what the client wrote and hands it to the session in randomly sized pieces.
  void feed_session() {
    std::mt19937 rng(12345);
    std::string buf(64 * 1024, '\0');
    while (true) {
      size_t want = 1 + rng() % (rng() % 4 == 0 ? 7 : buf.size());
      ssize_t n = ::recv(session_end_, buf.data(), want, 0);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        return;
      }
      session_->on_client_bytes(std::string_view(buf.data(), static_cast<size_t>(n)));
    }
  }

  void read_frames() {
    std::string buf(64 * 1024, '\0');
    while (true) {
      ssize_t n = ::recv(client_end_, buf.data(), buf.size(), 0);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        break;
      }
      reader_.feed(std::string_view(buf.data(), static_cast<size_t>(n)));
      while (true) {
        auto f = reader_.next();
        if (!f.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          decode_error_ = f.status().to_string();
          closed_ = true;
          cv_.notify_all();
          return;
        }
        if (!f->has_value()) break;
        handle(**f);
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

  void handle(spdy::Frame& f) {
    std::string reply;
    {
      std::lock_guard<std::mutex> lock(mu_);
      switch (f.type) {
        case spdy::FrameType::kSynReply:
          streams_[f.stream_id].replied = true;
          break;
        case spdy::FrameType::kData: {
          Stream& s = streams_[f.stream_id];
          if (!s.replied) decode_error_ = "data before SYN_REPLY";
          s.data += f.data;
          if (f.flags & spdy::kFlagFin) s.fin = true;
          if (flow_control_ && !f.data.empty()) {
            s.granted -= static_cast<int64_t>(f.data.size());
            session_granted_ -= static_cast<int64_t>(f.data.size());
            if (s.granted < 0 || session_granted_ < 0) {
              window_violations_ += static_cast<int64_t>(f.data.size());
            }
            s.consumed_unacked += f.data.size();
            session_unacked_ += f.data.size();
            if (s.consumed_unacked >= 32 * 1024) {
              reply += writer_for_replies_window(f.stream_id, s.consumed_unacked);
              s.granted += static_cast<int64_t>(s.consumed_unacked);
              s.consumed_unacked = 0;
            }
            if (session_unacked_ >= 32 * 1024) {
              reply += writer_for_replies_window(0, session_unacked_);
              session_granted_ += static_cast<int64_t>(session_unacked_);
              session_unacked_ = 0;
            }
          }
          break;
        }
        case spdy::FrameType::kRstStream:
          streams_[f.stream_id].reset = true;
          break;
        case spdy::FrameType::kWindowUpdate:
          if (f.stream_id != 0) streams_[f.stream_id].send_window += f.delta_window;
          break;
        case spdy::FrameType::kPing:
          pings_.push_back(f.ping_id);
          break;
        case spdy::FrameType::kGoAway:
          goaway_status_ = f.status;
          break;
        default:
          break;
      }
      cv_.notify_all();
    }
    if (!reply.empty()) send_raw(reply);
  }

  // Window updates carry no header block, so they do not touch the compression context
  // and can be encoded by any writer.
  std::string writer_for_replies_window(uint32_t stream, uint64_t delta) {
    return window_writer_.window_update(stream, static_cast<uint32_t>(delta));
  }

  const bool flow_control_;
  int session_end_ = -1;
  int client_end_ = -1;
  std::unique_ptr<Session> session_;
  std::thread feeder_;
  std::thread reader_thread_;

  std::mutex write_mu_;
  spdy::FrameWriter writer_;  // guarded by write_mu_
  uint32_t next_stream_ = 1;  // guarded by write_mu_

  spdy::FrameReader reader_;         // reader thread only
  spdy::FrameWriter window_writer_;  // reader thread only

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint32_t, Stream> streams_;
  std::vector<uint32_t> pings_;
  std::optional<uint32_t> goaway_status_;
  bool session_finished_callback_ = false;
  bool closed_ = false;
  int64_t session_granted_ = spdy::kDefaultWindow;
  uint64_t session_unacked_ = 0;
  int64_t window_violations_ = 0;
  std::string decode_error_;
};

}  // namespace skiff::agent::portforward::testing
