// LoadShard: a share of the simulated clients, all driven by one thread that
// owns an io_context and a websocketpp client endpoint (no locks inside: the
// endpoint is configured without threading). The main thread talks to a shard
// only through the public calls below, which post to the shard's thread.
//
// Each client: connects (at most `max_connecting` handshakes in flight per
// shard), resumes its group, and once started sends on its fixed schedule
// (LoadPlan::scheduled_ns). Each `msg` (pushed, or pulled in pull mode) is
// checked against the client's last id (order errors, duplicates) and its
// latency is taken from the scheduled send time in its contents, so a late
// send is not hidden (no coordinated omission).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "latency_histogram.hpp"
#include "load_plan.hpp"

namespace parley::load {

// What the main thread polls while waiting for connections or the tail.
struct ShardProgress {
  uint64_t ready = 0;    // connected and resumed
  uint64_t failed = 0;   // never got ready
  uint64_t open = 0;     // connections not yet closed
  uint64_t sending = 0;  // clients whose send schedule has not ended
  uint64_t sent = 0;
  uint64_t answered = 0;               // sends answered by ack or error
  uint64_t expected_with_echo = 0;     // measured sends not refused x members of their group
  uint64_t expected_sender_count = 0;  // those sends (subtracted when the server does not echo)
  uint64_t received_measured = 0;
  uint64_t self_received = 0;  // own messages received back
  void add(const ShardProgress& o);
  // Deliveries owed for the measured sends.
  uint64_t expected(bool echo) const {
    return echo ? expected_with_echo : expected_with_echo - expected_sender_count;
  }
};

struct ShardStats {
  LatencyHistogram latency;      // receive - scheduled send, measured messages
  LatencyHistogram ack_latency;  // ack - scheduled send, measured sends
  LatencyHistogram send_lag;     // actual - scheduled send (client's own lateness)
  ShardProgress progress;
  uint64_t received_total = 0;      // all msg deliveries (pushed or pulled)
  uint64_t received_in_window = 0;  // deliveries that arrived inside the measured window
  uint64_t sent_measured = 0;
  uint64_t acked = 0, acked_measured = 0, dup_acks = 0;
  uint64_t send_errors = 0, send_errors_measured = 0;
  uint64_t sends_skipped = 0;  // due while the connection was closed
  uint64_t send_failures = 0;  // websocketpp refused to queue the frame
  uint64_t duplicates = 0, order_errors = 0, pull_overlap = 0;
  uint64_t bad_contents = 0, bad_frames = 0;
  uint64_t to_pull = 0, to_push = 0, hints = 0, pulls = 0, pulled_msgs = 0;
  uint64_t epochs = 0, behind = 0;
  uint64_t connect_failures = 0, unexpected_closes = 0;
  uint64_t hello = 0, presence = 0, other_frames = 0;
  std::map<std::string, uint64_t> error_names;  // error events by name
  std::vector<std::string> samples;             // the first few errors and closes, verbatim
  void merge(const ShardStats& o);
  void note(std::string what);
};

class LoadShard {
 public:
  // `clients`: indexes into plan.clients. `plan` must outlive the shard.
  LoadShard(const LoadPlan& plan, std::vector<uint32_t> clients, size_t max_connecting);
  ~LoadShard();
  LoadShard(const LoadShard&) = delete;
  LoadShard& operator=(const LoadShard&) = delete;

  // Starts the shard's thread and its connections.
  void connect_all();
  // Starts every ready client's send schedule.
  void start(const RunWindow& window);
  // A snapshot of the counters; blocks until the shard's thread answers.
  ShardProgress progress();
  // Closes every connection (code 1000); closes from now on are expected.
  void close_all();
  // Stops the thread (whatever is still open is dropped) and joins it.
  void stop();
  // REQUIRES: stop() has returned.
  const ShardStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace parley::load
