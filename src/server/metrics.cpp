#include "metrics.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace parley::server {

void Histogram::observe(double v) {
  size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  std::lock_guard<std::mutex> lock(mu_);
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::write(std::string* out, const std::string& name, const std::string& help) const {
  fmt::format_to(std::back_inserter(*out), "# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    fmt::format_to(std::back_inserter(*out), "{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  fmt::format_to(std::back_inserter(*out), "{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name,
                 count_, name, sum_, name, count_);
}

void write_counter(std::string* out, const std::string& name, const std::string& help, double value,
                   const char* type) {
  fmt::format_to(std::back_inserter(*out), "# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type,
                 name, value);
}

std::string render_metrics(const MetricsSources& m) {
  const NodeStats& s = m.node;
  const BatchingForwarder::Stats& f = m.forwarder;
  const GatewayCounters& gw = m.gateway;
  std::string out;
  auto c = [&out](const char* name, const char* help, double v) { write_counter(&out, name, help, v); };
  auto g = [&out](const char* name, const char* help, double v) { write_counter(&out, name, help, v, "gauge"); };
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  g("parley_connections", "open WebSocket chat sessions", d(m.connections));
  c("parley_connections_opened_total", "chat sessions opened", d(gw.connections_opened));
  c("parley_connections_closed_total", "chat sessions ended", d(gw.connections_closed));
  c("parley_idle_closed_total", "chat sessions closed by --idle-timeout-ms", d(gw.idle_closed));
  c("parley_frames_in_total", "WebSocket frames received from clients", d(gw.frames_in));
  c("parley_frames_out_total", "WebSocket frames written to clients", d(gw.frames_out));
  c("parley_messages_in_total", "sends received from clients", d(s.sends));
  c("parley_acks_total", "sends acknowledged", d(s.acks));
  c("parley_duplicate_sends_total", "resends answered with the stored id", d(s.duplicate_sends));
  c("parley_send_errors_total", "sends refused", d(s.send_errors));
  c("parley_messages_out_total", "message frames queued to sessions", d(s.deliveries));
  c("parley_commits_total", "store transactions (group commits)", d(s.commits));
  g("parley_appends_in_flight", "append jobs handed to the store executor and not completed",
    d(m.appends_in_flight));
  g("parley_reads_in_flight", "range reads (catch-ups, resumes) handed to the store executor and not completed",
    d(m.reads_in_flight));
  g("parley_lookups_in_flight", "lookups (requests waiting for the store) not completed", d(m.lookups_in_flight));
  g("parley_store_jobs_in_flight", "store jobs (heads, routes, directory writes) not completed",
    d(m.store_jobs_in_flight));
  c("parley_peer_batches_in_total", "peer batches received", d(s.peer_batches_in));
  c("parley_peer_messages_in_total", "messages received in peer batches", d(s.peer_messages_in));
  c("parley_peer_batches_out_total", "peer calls made (retries included)", d(f.batches_sent));
  c("parley_peer_retries_total", "peer call retries", d(f.retries));
  c("parley_peer_items_dropped_total", "peer items given up on (healed from the store)", d(f.items_dropped));
  c("parley_catch_ups_total", "gap catch-up reads", d(s.catch_ups));
  c("parley_catch_up_messages_total", "messages read by catch-ups", d(s.catch_up_messages));
  c("parley_head_syncs_total", "group-head syncs", d(s.head_syncs));
  c("parley_mode_switches_total", "push/pull mode switches", d(s.mode_switches));
  c("parley_pulls_total", "pull requests", d(s.pulls));
  c("parley_notifications_total", "offline notifications raised", d(s.notifications));
  c("parley_notifications_delivered_total", "notifications the notifier delivered", d(m.notifier.delivered.load()));
  c("parley_notifications_failed_total", "notifications the webhook refused or timed out",
    d(m.notifier.failed.load()));
  c("parley_notifications_dropped_total", "notifications dropped (queue full)", d(m.notifier.dropped.load()));
  c("parley_fell_behind_total", "sessions cut off at their queue bound", d(s.fell_behind));
  c("parley_bad_frames_total", "client frames refused as malformed", d(s.bad_frames));
  c("parley_store_errors_total", "store operations that failed", d(s.store_errors));
  c("parley_auth_failures_total", "requests refused for a bad or missing token",
    d(gw.auth_failures + m.http_auth_failures));
  out +=
      "# HELP parley_http_responses_total HTTP answers by status code\n"
      "# TYPE parley_http_responses_total counter\n";
  for (const auto& [status, n] : gw.http_responses) {
    fmt::format_to(std::back_inserter(out), "parley_http_responses_total{{code=\"{}\"}} {}\n", status, n);
  }
  m.append_seconds.write(&out, "parley_store_append_seconds", "store append (group commit) latency");
  m.read_seconds.write(&out, "parley_store_read_seconds", "store read latency (the executor's reads when there is one)");
  m.append_batch.write(&out, "parley_commit_batch_messages", "messages per group commit");
  m.peer_batch_bytes.write(&out, "parley_peer_batch_bytes", "bytes per peer batch sent");
  // Per peer node: what waits for it (both bounded; see docs/server.md).
  out +=
      "# HELP parley_peer_queued_items messages waiting to be batched to a peer node\n"
      "# TYPE parley_peer_queued_items gauge\n";
  for (const PeerGauges& p : m.peers)
    fmt::format_to(std::back_inserter(out), "parley_peer_queued_items{{peer=\"{}\"}} {}\n", p.node_id,
                   p.queued_items);
  out +=
      "# HELP parley_peer_calls_queued peer calls waiting for the connection to a peer node\n"
      "# TYPE parley_peer_calls_queued gauge\n";
  for (const PeerGauges& p : m.peers)
    fmt::format_to(std::back_inserter(out), "parley_peer_calls_queued{{peer=\"{}\"}} {}\n", p.node_id,
                   p.queued_calls);
  return out;
}

}  // namespace parley::server
