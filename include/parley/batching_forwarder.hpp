// BatchingForwarder: one queue per destination node, flushed as batches.
//
// The seed design's answer to "one HTTP call per message overwhelms the
// servers": a node buffers what it forwards to each peer and sends it as one
// batch. Two modes:
//  - kFixed: flush every period_ms (default 50) at a random per-destination
//    phase, each period jittered, so nodes do not all send at once; early when
//    a queue reaches max_items or max_bytes.
//  - kAdaptive: send at once when nothing is in flight to that node; while a
//    call is in flight, accumulate and send everything in one batch when it
//    completes. Idle links add no delay; busy links batch by themselves.
// At most one call is in flight per destination. A failed or timed-out call is
// retried with exponential backoff up to max_attempts, then dropped: receivers
// heal through gap detection and head sync, so nothing queues without bound.
// A queue over max_queued_bytes drops its oldest items for the same reason.
//
// Pure state machine: sends through the SendFn it is given, time passed in.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "parley/clock.hpp"
#include "parley/protocol.hpp"

namespace parley {

class BatchingForwarder {
 public:
  enum class Mode { kFixed, kAdaptive };
  struct Options {
    Mode mode = Mode::kAdaptive;
    int64_t period_ms = 50;
    double jitter = 0.2;     // each period is period_ms * (1 +- jitter)
    size_t max_items = 512;  // early flush / batch size cap
    size_t max_bytes = 512 * 1024;
    int max_attempts = 4;            // sends of one batch before it is dropped
    int64_t backoff_ms = 50;         // first retry delay, doubled each time
    int64_t call_timeout_ms = 2000;  // a call without a result by then failed
    size_t max_queued_bytes = 8 * 1024 * 1024;
  };
  struct Stats {
    uint64_t batches_sent = 0;  // calls made, retries included
    uint64_t items_sent = 0;    // items in first sends
    uint64_t retries = 0;
    uint64_t batches_dropped = 0;
    uint64_t items_dropped = 0;  // from dropped batches and queue overflow
    uint64_t timeouts = 0;
    size_t max_batch_items = 0;
  };
  // Hands a batch to the transport. The host reports the outcome through
  // on_result(dest, call_id, ok) - from the node's thread, later, never
  // from inside this call.
  using SendFn = std::function<void(const std::string& dest, uint64_t call_id, const Frame& batch)>;

  BatchingForwarder(std::string self_id, Options options, Random& random, SendFn send);

  // Queues one pre-encoded item for `dest`. May send at once (adaptive mode
  // with an idle link, or a full queue).
  void enqueue(const std::string& dest, const Frame& item, int64_t now_ms);
  void on_result(const std::string& dest, uint64_t call_id, bool ok, int64_t now_ms);
  // Runs flushes, retries and timeouts that are due.
  void poll(int64_t now_ms);
  int64_t next_deadline() const;
  // Drops a destination's queue and in-flight state (node left the cluster).
  void forget(const std::string& dest);

  const Stats& stats() const { return stats_; }
  const Options& options() const { return options_; }
  size_t queued_items(const std::string& dest) const;

 private:
  struct Dest {
    std::deque<Frame> queue;
    size_t queued_bytes = 0;
    int64_t next_flush = 0;  // fixed mode
    // The batch in flight or waiting to be retried.
    bool busy = false;
    uint64_t call_id = 0;
    Frame batch;
    size_t batch_items = 0;
    int attempts = 0;
    int64_t retry_at = 0;    // > 0: waiting to resend
    int64_t timeout_at = 0;  // > 0: in flight
  };
  void flush(const std::string& dest, Dest& d, int64_t now_ms);
  void transmit(const std::string& dest, Dest& d, int64_t now_ms);
  void fail(const std::string& dest, Dest& d, int64_t now_ms);
  void done(const std::string& dest, Dest& d, int64_t now_ms);
  int64_t jittered_period();

  std::string self_id_;
  Options options_;
  Random& random_;
  SendFn send_;
  std::map<std::string, Dest> dests_;
  uint64_t next_call_id_ = 1;
  Stats stats_;
};

}  // namespace parley
