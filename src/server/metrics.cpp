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

HistogramCounts Histogram::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {bounds_, counts_, sum_, count_};
}

void HistogramCounts::add(const HistogramCounts& o) {
  if (bounds.empty()) bounds = o.bounds;
  counts.resize(std::max(counts.size(), o.counts.size()));
  for (size_t i = 0; i < o.counts.size(); ++i) counts[i] += o.counts[i];
  sum += o.sum;
  count += o.count;
}

void HistogramCounts::write(std::string* out, const std::string& name, const std::string& help) const {
  fmt::format_to(std::back_inserter(*out), "# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size() && i < counts.size(); ++i) {
    cumulative += counts[i];
    fmt::format_to(std::back_inserter(*out), "{}_bucket{{le=\"{}\"}} {}\n", name, bounds[i], cumulative);
  }
  fmt::format_to(std::back_inserter(*out), "{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name,
                 count, name, sum, name, count);
}

void MetricsSources::add(const MetricsSources& o) {
  NodeStats& n = node;
  const NodeStats& on = o.node;
  for (auto [mine, theirs] : {std::pair{&n.sends, &on.sends}, {&n.acks, &on.acks},
                              {&n.duplicate_sends, &on.duplicate_sends}, {&n.send_errors, &on.send_errors},
                              {&n.commits, &on.commits}, {&n.deliveries, &on.deliveries},
                              {&n.peer_batches_in, &on.peer_batches_in}, {&n.peer_messages_in, &on.peer_messages_in},
                              {&n.resent_on_interest, &on.resent_on_interest},
                              {&n.catch_ups, &on.catch_ups}, {&n.catch_up_messages, &on.catch_up_messages},
                              {&n.head_syncs, &on.head_syncs}, {&n.mode_switches, &on.mode_switches},
                              {&n.pull_hints, &on.pull_hints}, {&n.pulls, &on.pulls},
                              {&n.notifications, &on.notifications}, {&n.fell_behind, &on.fell_behind},
                              {&n.store_errors, &on.store_errors}, {&n.bad_frames, &on.bad_frames},
                              {&n.membership_reads, &on.membership_reads}}) {
    *mine += *theirs;
  }
  forwarder.batches_sent += o.forwarder.batches_sent;
  forwarder.items_sent += o.forwarder.items_sent;
  forwarder.retries += o.forwarder.retries;
  forwarder.batches_dropped += o.forwarder.batches_dropped;
  forwarder.items_dropped += o.forwarder.items_dropped;
  forwarder.timeouts += o.forwarder.timeouts;
  forwarder.max_batch_items = std::max(forwarder.max_batch_items, o.forwarder.max_batch_items);
  notifications_delivered += o.notifications_delivered;
  notifications_failed += o.notifications_failed;
  notifications_dropped += o.notifications_dropped;
  gateway.connections_opened += o.gateway.connections_opened;
  gateway.connections_closed += o.gateway.connections_closed;
  gateway.idle_closed += o.gateway.idle_closed;
  gateway.frames_in += o.gateway.frames_in;
  gateway.frames_out += o.gateway.frames_out;
  gateway.auth_failures += o.gateway.auth_failures;
  for (const auto& [status, count] : o.gateway.http_responses) gateway.http_responses[status] += count;
  connections += o.connections;
  http_auth_failures += o.http_auth_failures;
  appends_in_flight += o.appends_in_flight;
  reads_in_flight += o.reads_in_flight;
  lookups_in_flight += o.lookups_in_flight;
  store_jobs_in_flight += o.store_jobs_in_flight;
  append_seconds.add(o.append_seconds);
  read_seconds.add(o.read_seconds);
  append_batch.add(o.append_batch);
  peer_batch_bytes.add(o.peer_batch_bytes);
  for (const PeerGauges& p : o.peers) {
    auto it = std::find_if(peers.begin(), peers.end(), [&](const PeerGauges& q) { return q.node_id == p.node_id; });
    if (it == peers.end()) {
      peers.push_back(p);
    } else {
      it->queued_items += p.queued_items;
      it->queued_calls += p.queued_calls;
    }
  }
  std::sort(peers.begin(), peers.end(),
            [](const PeerGauges& a, const PeerGauges& b) { return a.node_id < b.node_id; });
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
  c("parley_peer_messages_resent_total", "messages sent again to a node that started following their group",
    d(s.resent_on_interest));
  c("parley_peer_batches_out_total", "peer calls made (retries included)", d(f.batches_sent));
  c("parley_peer_retries_total", "peer call retries", d(f.retries));
  c("parley_peer_items_dropped_total", "peer items given up on (healed from the store)", d(f.items_dropped));
  c("parley_catch_ups_total", "gap catch-up reads", d(s.catch_ups));
  c("parley_catch_up_messages_total", "messages read by catch-ups", d(s.catch_up_messages));
  c("parley_head_syncs_total", "group-head syncs", d(s.head_syncs));
  c("parley_mode_switches_total", "push/pull mode switches", d(s.mode_switches));
  c("parley_pulls_total", "pull requests", d(s.pulls));
  c("parley_notifications_total", "offline notifications raised", d(s.notifications));
  c("parley_notifications_delivered_total", "notifications the notifier delivered", d(m.notifications_delivered));
  c("parley_notifications_failed_total", "notifications the webhook refused or timed out",
    d(m.notifications_failed));
  c("parley_notifications_dropped_total", "notifications dropped (queue full)", d(m.notifications_dropped));
  c("parley_fell_behind_total", "sessions cut off at their queue bound", d(s.fell_behind));
  c("parley_bad_frames_total", "client frames refused as malformed", d(s.bad_frames));
  c("parley_store_errors_total", "store operations that failed", d(s.store_errors));
  c("parley_auth_failures_total", "requests refused for a bad or missing token or API key",
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
