// LoopbackCluster: several Nodes, their peer links and client sessions in one
// thread, on virtual time. The smallest way to see Parley work, and a harness
// for an embedder's own tests: no sockets, no threads, deterministic.
//
// Peer calls and session writes are delivered after a fixed latency through an
// event queue; run_for() advances virtual time, running what is due (timers
// included). Each session's events are decoded and handed to its callback.
//
// Not thread-safe. The stores must outlive the cluster.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "parley/node.hpp"

namespace parley {

class LoopbackCluster {
 public:
  using EventFn = std::function<void(SessionId session, const ServerEvent& event)>;

  // latency_ms: one-way delay of every peer call and session write.
  LoopbackCluster(NodeStores stores, int64_t latency_ms = 2, int64_t start_ms = 0);
  ~LoopbackCluster();
  LoopbackCluster(const LoopbackCluster&) = delete;
  LoopbackCluster& operator=(const LoopbackCluster&) = delete;

  // Adds and starts a node. Returns its index.
  Result<size_t> add_node(NodeOptions options, Notifier* notifier = nullptr);
  Node& node(size_t index);
  size_t node_count() const;

  // Opens a session for `user_id` on node `node_index`.
  Result<SessionId> connect(size_t node_index, const std::string& user_id, EventFn on_event);
  void disconnect(SessionId session);
  // Sends a request from a session's client (arrives after the latency).
  void request(SessionId session, const ClientRequest& request);
  // Advances virtual time by `ms`, running everything that falls due.
  void run_for(int64_t ms);
  int64_t now_ms() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley
