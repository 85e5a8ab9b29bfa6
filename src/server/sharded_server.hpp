// ShardedServer: parley-server as N shards in one process (--threads N > 1,
// docs/decisions.md 46), behind parley::server::Server. Internal: included
// by server.cpp only.
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "server_impl.hpp"
#include "shard_set.hpp"

namespace parley::server {

// A process of N shards (--threads N > 1): starts them one after the other
// (the first binds the port, the others join it), runs each on a thread of
// its own (the first on the caller's), and stops them together.
template <typename Ws>
class ShardedServer final : public Server::Impl {
 public:
  explicit ShardedServer(const Config& config) : cfg_(config) {
    // websocketpp's _htonll (64-bit frame lengths) sets a function-local
    // static on its first call, unsynchronised: make that first call here,
    // before the shards' threads share it (TSan saw two shards race on it).
    websocketpp::lib::net::_htonll(0);
    const int n = config.threads;
    for (int k = 0; k < n; ++k) {
      Config c = config;
      if (k > 0) c.peer_listen = Endpoint{};  // one peer listener per process: shard 0's
      set_.shards.push_back(std::make_unique<ServerImpl<Ws>>(std::move(c), &set_, k, n));
    }
  }

  int start() override {
    if (cfg_.store == "sqlite" && cfg_.store_executor == "thread") {
      set_.executor_stores = std::make_unique<ServerStores>();
      if (Status st = set_.executor_stores->open_shared_executor(cfg_); !st) {
        PARLEY_LOG_ERROR("cannot open the store: {}", st.to_string());
        return 1;
      }
    }
    for (size_t k = 0; k < set_.shards.size(); ++k) {
      if (k > 0) set_.shards[k]->listen_on_port(set_.shards[0]->port());
      if (int rc = set_.shards[k]->start(); rc != 0) return rc;
    }
    set_.shards[0]->announce();
    return 0;
  }

  int run() override {
    std::vector<std::thread> threads;
    for (size_t k = 1; k < set_.shards.size(); ++k) {
      threads.emplace_back([shard = set_.shards[k].get()] { shard->run(); });
    }
    const int rc = set_.shards[0]->run();
    for (std::thread& t : threads) t.join();
    return rc;
  }

  void stop() override {
    for (auto& shard : set_.shards) shard->stop();
  }

  uint16_t port() const override { return set_.shards[0]->port(); }

 private:
  const Config cfg_;
  ShardSet<Ws> set_;
};

}  // namespace parley::server
