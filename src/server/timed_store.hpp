// TimedMessageStore: a MessageStore decorator that measures the store for
// /metrics (append and read latency, messages per group commit) and logs when
// the store stops answering and when it is back. Same thread rules as the
// store it wraps.
#pragma once

#include <chrono>

#include "log.hpp"
#include "metrics.hpp"
#include "parley/store.hpp"

namespace parley::server {

class TimedMessageStore final : public MessageStore {
 public:
  explicit TimedMessageStore(MessageStore& inner) : inner_(inner) {}

  Status append(const std::vector<AppendRequest>& requests, std::vector<AppendOutcome>* out) override {
    auto t0 = std::chrono::steady_clock::now();
    Status st = inner_.append(requests, out);
    append_seconds_.observe(seconds_since(t0));
    append_batch_.observe(static_cast<double>(requests.size()));
    return note(std::move(st));
  }
  Status read(const std::string& group_id, uint64_t after, size_t limit, std::vector<Message>* out) override {
    auto t0 = std::chrono::steady_clock::now();
    Status st = inner_.read(group_id, after, limit, out);
    read_seconds_.observe(seconds_since(t0));
    return note(std::move(st));
  }
  Status read_folded(const std::string& group_id, uint64_t after, size_t limit, const std::string& reader,
                     FoldedPage* out) override {
    auto t0 = std::chrono::steady_clock::now();
    Status st = inner_.read_folded(group_id, after, limit, reader, out);
    read_seconds_.observe(seconds_since(t0));
    return note(std::move(st));
  }
  Status heads(const std::vector<std::string>& group_ids, std::vector<GroupHead>* out) override {
    return note(inner_.heads(group_ids, out));
  }
  Result<uint64_t> reset_group(const std::string& group_id) override { return inner_.reset_group(group_id); }
  Status unread(const std::vector<UnreadQuery>& queries, std::vector<UnreadCount>* out) override {
    return inner_.unread(queries, out);
  }

  const Histogram& append_seconds() const { return append_seconds_; }
  const Histogram& read_seconds() const { return read_seconds_; }
  const Histogram& append_batch() const { return append_batch_; }

 private:
  static double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  static std::vector<double> latency_bounds() {
    return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
  }
  // Logs the store going down (unavailable or timed out) once, and coming back.
  Status note(Status st) {
    const bool down = st.code() == Code::kUnavailable || st.code() == Code::kTimeout;
    if (down) {
      if (failed_calls_++ == 0) PARLEY_LOG_WARN("store is failing: {}", st.to_string());
    } else if (failed_calls_ > 0) {
      PARLEY_LOG_INFO("store is answering again ({} calls failed meanwhile)", failed_calls_);
      failed_calls_ = 0;
    }
    return st;
  }

  MessageStore& inner_;
  uint64_t failed_calls_ = 0;
  Histogram append_seconds_{latency_bounds()};
  Histogram read_seconds_{latency_bounds()};
  Histogram append_batch_{{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}};
};

}  // namespace parley::server
