// ShardSet: what the shards of one parley-server process (--threads N,
// docs/decisions.md 46) share. Internal: included by server_impl.hpp.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "parley/status.hpp"
#include "server_stores.hpp"

namespace parley::server {

template <typename Ws>
class ServerImpl;

// The shards of one process (--threads N, docs/decisions.md 46): made
// before any starts and fixed from then on. Each shard is a ServerImpl with
// a thread, a node, sockets and store connections of its own; they share
// the listening port and reach each other as local peers.
template <typename Ws>
struct ShardSet {
  std::vector<std::unique_ptr<ServerImpl<Ws>>> shards;
  // Chat connections per user in the whole process, so that
  // --max-connections-per-user holds per process, not per shard.
  std::mutex users_mu;
  std::unordered_map<std::string, size_t> users;
  // Why each user's last connection failed, until the user's next
  // connection (on any shard) is told (Node::report_last_failure is off).
  std::unordered_map<std::string, Status> failures;
  // On one SQLite file the shards share one store executor (one writer, one
  // commit for all): declared after `shards`, so it is joined first, while
  // the shards its completions go to still exist.
  std::unique_ptr<ServerStores> executor_stores;
};

}  // namespace parley::server
