// Counters and histograms of parley-server, written in the Prometheus text
// format at GET /metrics. Histograms have fixed buckets (cumulative counts,
// as Prometheus wants them). Used on the server's I/O thread, except
// NotifierStats (atomics, from the webhook thread) and Histogram (locked: the
// store executor's thread times its appends).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "notifiers.hpp"
#include "parley/batching_forwarder.hpp"
#include "parley/node.hpp"

namespace parley::server {

// A histogram's counts at one moment (a value: shards' are added up).
struct HistogramCounts {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;  // per bucket, the last one past every bound
  double sum = 0;
  uint64_t count = 0;
  // Adds another's counts (same bounds).
  void add(const HistogramCounts& o);
  // Appends "# TYPE" and the _bucket/_sum/_count lines for `name`.
  void write(std::string* out, const std::string& name, const std::string& help) const;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1) {}
  // Thread-safe: the store executor's thread observes what the serving thread writes.
  void observe(double v);
  HistogramCounts counts() const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

void write_counter(std::string* out, const std::string& name, const std::string& help, double value,
                   const char* type = "counter");

// What the WebSocket gateway counts (on the I/O thread).
struct GatewayCounters {
  uint64_t connections_opened = 0;
  uint64_t connections_closed = 0;
  uint64_t idle_closed = 0;
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t auth_failures = 0;            // refused upgrades
  std::map<int, uint64_t> http_responses;  // by status code
};

struct PeerGauges {
  std::string node_id;
  size_t queued_items = 0;  // waiting to be batched (the node's forwarder)
  size_t queued_calls = 0;  // batches waiting for the connection (the poster)
};

// Everything /metrics shows, taken by the server on its I/O thread; with
// --threads N each shard takes its own and they are added up.
struct MetricsSources {
  NodeStats node;
  BatchingForwarder::Stats forwarder;
  uint64_t notifications_delivered = 0;
  uint64_t notifications_failed = 0;
  uint64_t notifications_dropped = 0;
  GatewayCounters gateway;
  size_t connections = 0;
  uint64_t http_auth_failures = 0;
  size_t appends_in_flight = 0;
  size_t reads_in_flight = 0;
  size_t lookups_in_flight = 0;
  size_t store_jobs_in_flight = 0;
  HistogramCounts append_seconds;
  HistogramCounts read_seconds;
  HistogramCounts append_batch;
  HistogramCounts peer_batch_bytes;
  std::vector<PeerGauges> peers;  // by node id
  // Adds another shard's: counters and gauges sum, per-peer gauges by peer.
  void add(const MetricsSources& o);
};

// The Prometheus text of /metrics.
std::string render_metrics(const MetricsSources& m);

}  // namespace parley::server
