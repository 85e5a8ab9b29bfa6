// ThreadedExecutor: a StoreExecutor that appends, reads and looks up on a
// thread of its own.
//
// The node's turn hands it an AppendJob, a ReadJob or a LookupJob and goes
// on serving;
// the thread runs it and hands the outcome back through `deliver`, which
// must carry it to the node's thread (a server posts it to its event loop)
// and call complete(node, ...) there. While one commit is in flight every job that
// arrives waits; the next commit takes them all at once, as one
// MessageStore::append (group commit across turns: with SQLite's FULL sync
// one fsync covers every send that arrived during the previous one). The
// outcomes are split back per job, in job order; a failed commit answers
// every job in it with the error. Reads and lookups that are waiting go
// first, before the next commit, so a resume waits for at most one commit's
// fsync.
//
// The store is used only from the executor's thread: give it a store
// instance (a connection) of its own, e.g. a second open_sqlite_store() of
// the same file, or a second open_redis_store().
//
// Several nodes in one process may share one executor (parley-server's
// shards on one SQLite file: one writer, one fsync per commit for all of
// them): add_client() gives each node a StoreExecutor of its own, whose
// completions go to that node's `deliver`. Jobs of every client share the
// queues, in the order they came, so each node's store jobs still run in
// its order, and one commit holds every client's queued appends.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "parley/node.hpp"
#include "parley/status.hpp"
#include "parley/store.hpp"

namespace parley {

// The outcome of one AppendJob (for Node::on_append_done).
struct AppendCompletion {
  uint64_t job = 0;
  Status status;
  std::vector<AppendOutcome> outcomes;
};

// The outcome of one ReadJob (for Node::on_read_done).
struct ReadCompletion {
  uint64_t job = 0;
  ReadResult result;
};

// The answer to one LookupJob (for Node::on_lookup_done).
struct LookupCompletion {
  uint64_t job = 0;
  LookupResult result;
};

// The results of one StoreJob (for Node::on_store_done).
struct StoreJobCompletion {
  uint64_t job = 0;
  std::vector<StoreOpResult> results;
};

// The executor's store instances (connections of its own). Lookups need
// `membership` (appends check mentions against it; without it mentions are
// not checked), store jobs `membership`
// and `directory` (presence is optional); without them those jobs are
// answered with an internal error.
struct ExecutorStores {
  MessageStore& messages;
  MembershipStore* membership = nullptr;
  SessionDirectory* directory = nullptr;
  PresenceStore* presence = nullptr;
};

// What one round of the executor's thread finished: the reads, lookups and
// store jobs, then the appends of one commit, each in job order.
struct StoreCompletions {
  std::vector<ReadCompletion> reads;
  std::vector<AppendCompletion> appends;
  std::vector<LookupCompletion> lookups;
  std::vector<StoreJobCompletion> jobs;
  bool empty() const { return reads.empty() && appends.empty() && lookups.empty() && jobs.empty(); }
};

class ThreadedExecutor final : public StoreExecutor {
 public:
  struct Options {
    // A commit takes whole jobs until it holds at least this many requests
    // (a single larger job is taken whole).
    size_t max_requests_per_commit = 4096;
  };
  struct Stats {
    uint64_t jobs = 0;
    uint64_t commits = 0;
    uint64_t requests = 0;
    uint64_t failed_commits = 0;
    uint64_t reads = 0;
    uint64_t lookups = 0;
    uint64_t store_jobs = 0;
    size_t max_jobs_per_commit = 0;
  };
  // Called on the executor's thread with what one round finished.
  using Deliver = std::function<void(StoreCompletions)>;

  ThreadedExecutor(ExecutorStores stores, Deliver deliver, Options options);
  // An executor whose nodes all come through add_client().
  ThreadedExecutor(ExecutorStores stores, Options options);
  ThreadedExecutor(MessageStore& store, Deliver deliver, Options options)
      : ThreadedExecutor(ExecutorStores{store}, std::move(deliver), options) {}
  ThreadedExecutor(MessageStore& store, Deliver deliver) : ThreadedExecutor(store, std::move(deliver), Options{}) {}
  // Finishes every job handed in (and delivers it), then stops.
  ~ThreadedExecutor() override;

  // Any thread.
  void append(AppendJob job) override;
  void read(ReadJob job) override;
  void lookup(LookupJob job) override;
  void run(StoreJob job) override;
  // Waits until every job handed in so far has been delivered. Any thread
  // but the executor's.
  void drain();
  Stats stats() const;

  // A StoreExecutor for one more node, whose completions go to `deliver`.
  // Call before that node hands in its first job; it lives as long as the
  // executor. Any thread.
  StoreExecutor& add_client(Deliver deliver);

 private:
  // One node's face of the executor: its jobs, tagged with its index.
  class Client final : public StoreExecutor {
   public:
    Client(ThreadedExecutor& owner, size_t index) : owner_(owner), index_(index) {}
    void append(AppendJob job) override { owner_.push(index_, std::move(job)); }
    void read(ReadJob job) override { owner_.push(index_, std::move(job)); }
    void lookup(LookupJob job) override { owner_.push(index_, std::move(job)); }
    void run(StoreJob job) override { owner_.push(index_, std::move(job)); }

   private:
    ThreadedExecutor& owner_;
    size_t index_;
  };
  template <typename Job>
  struct Tagged {
    size_t client;
    Job job;
  };
  void push(size_t client, AppendJob job);
  void push(size_t client, ReadJob job);
  void push(size_t client, LookupJob job);
  void push(size_t client, StoreJob job);
  void loop();
  bool has_work() const {  // with mu_ held
    return !queue_.empty() || !reads_.empty() || !lookups_.empty() || !jobs_.empty();
  }

  ExecutorStores stores_;
  Options options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<std::unique_ptr<Client>> clients_;  // stable addresses; 0: the constructor's deliver
  std::deque<Deliver> delivers_;                 // by client (stable addresses)
  std::deque<Tagged<AppendJob>> queue_;
  std::vector<Tagged<ReadJob>> reads_;
  std::vector<Tagged<LookupJob>> lookups_;
  std::vector<Tagged<StoreJob>> jobs_;
  bool busy_ = false;
  bool stopping_ = false;
  Stats stats_;
  std::thread thread_;  // last: starts after everything above exists
};

// Feeds completions to a node (on the node's thread): the reads, the
// lookups, the store jobs, then the appends.
void complete(Node& node, StoreCompletions completions);

}  // namespace parley
