// ThreadedExecutor: appends and reads on a thread of its own, one commit for
// every job that arrived while the previous commit was in flight, outcomes
// split back per job in order, waiting reads before the next commit. Synchronised on events (a gate the store waits at, the
// executor's drain()), never on sleeps.
#include <doctest/doctest.h>

#include <condition_variable>
#include <functional>
#include <deque>
#include <mutex>

#include "parley/memory_store.hpp"
#include "parley/threaded_executor.hpp"
#include "unit/node_fixture.hpp"

using namespace parley;

namespace {
// A memory store whose first append waits at a gate until the test opens it,
// and which records the size of every append and can be told to fail.
class GateStore final : public MessageStore {
 public:
  Status append(const std::vector<AppendRequest>& requests, std::vector<AppendOutcome>* out) override {
    std::unique_lock<std::mutex> lock(mu_);
    sizes_.push_back(requests.size());
    entered_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
    if (fail_) return error(Code::kUnavailable, "store down");
    return inner_->append(requests, out);
  }
  Status read(const std::string& g, uint64_t after, size_t limit, std::vector<Message>* out) override {
    return inner_->read(g, after, limit, out);
  }
  Status read_folded(const std::string& g, uint64_t after, size_t limit, const std::string& reader,
                     FoldedPage* out) override {
    return inner_->read_folded(g, after, limit, reader, out);
  }
  Status heads(const std::vector<std::string>& ids, std::vector<GroupHead>* out) override {
    return inner_->heads(ids, out);
  }
  Result<uint64_t> reset_group(const std::string& g) override { return inner_->reset_group(g); }
  Status unread(const std::vector<UnreadQuery>& queries, std::vector<UnreadCount>* out) override {
    return inner_->unread(queries, out);
  }

  void wait_entered() {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [this] { return entered_; });
  }
  void open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    changed_.notify_all();
  }
  void set_fail(bool f) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = f;
  }
  std::vector<size_t> sizes() {
    std::lock_guard<std::mutex> lock(mu_);
    return sizes_;
  }

 private:
  std::unique_ptr<MessageStore> inner_ = make_memory_message_store();
  std::mutex mu_;
  std::condition_variable changed_;
  bool entered_ = false;
  bool open_ = false;
  bool fail_ = false;
  std::vector<size_t> sizes_;
};

// What the executor delivered, one entry per commit.
struct Deliveries {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::vector<AppendCompletion>> commits;
  std::vector<ReadCompletion> reads;
  std::vector<LookupCompletion> lookups;
  std::vector<StoreJobCompletion> jobs;

  ThreadedExecutor::Deliver sink() {
    return [this](StoreCompletions c) {
      std::lock_guard<std::mutex> lock(mu);
      if (!c.appends.empty()) commits.push_back(std::move(c.appends));
      for (ReadCompletion& r : c.reads) reads.push_back(std::move(r));
      for (LookupCompletion& l : c.lookups) lookups.push_back(std::move(l));
      for (StoreJobCompletion& j : c.jobs) jobs.push_back(std::move(j));
      cv.notify_all();
    };
  }
  std::vector<StoreJobCompletion> take_jobs() {
    std::lock_guard<std::mutex> lock(mu);
    return std::move(jobs);
  }
  std::vector<LookupCompletion> take_lookups() {
    std::lock_guard<std::mutex> lock(mu);
    return std::move(lookups);
  }
  std::vector<ReadCompletion> take_reads() {
    std::lock_guard<std::mutex> lock(mu);
    return std::move(reads);
  }
  std::vector<std::vector<AppendCompletion>> take() {
    std::lock_guard<std::mutex> lock(mu);
    return std::move(commits);
  }
};

// Job `id` with n requests to group g (client ids "id.i").
AppendJob job(uint64_t id, const std::string& g, size_t n) {
  AppendJob j{id, {}};
  for (size_t i = 0; i < n; ++i) {
    j.requests.push_back({g, "u", std::to_string(id) + "." + std::to_string(i), "x", 0});
  }
  return j;
}

std::vector<uint64_t> ids_of(const AppendCompletion& c) {
  std::vector<uint64_t> out;
  for (const AppendOutcome& o : c.outcomes) out.push_back(o.message.msg_id);
  return out;
}
}  // namespace

TEST_CASE("jobs that arrive during a commit are committed together and split back per job, in order") {
  GateStore store;
  Deliveries got;
  {
    ThreadedExecutor ex(store, got.sink());
    ex.append(job(1, "g", 2));
    store.wait_entered();  // job 1's commit is in flight
    ex.append(job(2, "g", 1));
    ex.append(job(3, "g", 3));
    store.open();
    ex.drain();
    CHECK(ex.stats().commits == 2);
    CHECK(ex.stats().max_jobs_per_commit == 2);
  }
  CHECK(store.sizes() == std::vector<size_t>{2, 4});
  auto commits = got.take();
  REQUIRE(commits.size() == 2);
  REQUIRE(commits[0].size() == 1);
  CHECK(commits[0][0].job == 1);
  CHECK(ids_of(commits[0][0]) == std::vector<uint64_t>{1, 2});
  REQUIRE(commits[1].size() == 2);
  CHECK(commits[1][0].job == 2);
  CHECK(commits[1][0].status.is_ok());
  CHECK(ids_of(commits[1][0]) == std::vector<uint64_t>{3});
  CHECK(commits[1][1].job == 3);
  CHECK(ids_of(commits[1][1]) == std::vector<uint64_t>{4, 5, 6});
  CHECK(commits[1][1].outcomes[2].message.client_msg_id == "3.2");
}

TEST_CASE("nodes sharing one executor: one commit holds both nodes' appends, each node gets only its own completions") {
  GateStore store;
  Deliveries first, second, third;
  {
    ThreadedExecutor ex(ExecutorStores{store}, ThreadedExecutor::Options{});
    StoreExecutor& a = ex.add_client(first.sink());
    StoreExecutor& b = ex.add_client(second.sink());
    a.append(job(1, "g", 2));
    store.wait_entered();  // a's job 1 is in flight
    b.append(AppendJob{1, {{"g", "v", "b.0", "x", 0}}});  // job ids are each node's own: the same id from b
    a.append(job(2, "g", 1));
    StoreExecutor& c = ex.add_client(third.sink());  // a node that comes later
    c.read(ReadJob{7, "g", 0, 10});
    store.open();
    ex.drain();
    CHECK(ex.stats().commits == 2);
  }
  CHECK(store.sizes() == std::vector<size_t>{2, 2});
  auto mine = first.take();
  auto theirs = second.take();
  REQUIRE(mine.size() == 2);
  REQUIRE(mine[0].size() == 1);
  CHECK(ids_of(mine[0][0]) == std::vector<uint64_t>{1, 2});
  REQUIRE(mine[1].size() == 1);
  CHECK(mine[1][0].job == 2);
  REQUIRE(theirs.size() == 1);
  REQUIRE(theirs[0].size() == 1);
  CHECK(theirs[0][0].job == 1);
  CHECK(theirs[0][0].outcomes[0].message.client_msg_id == "b.0");
  // Both nodes' appends were in the second commit, in the order they came.
  CHECK(ids_of(theirs[0][0]) == std::vector<uint64_t>{3});
  CHECK(ids_of(mine[1][0]) == std::vector<uint64_t>{4});
  CHECK(first.take_reads().empty());
  CHECK(second.take_reads().empty());
  auto reads = third.take_reads();
  REQUIRE(reads.size() == 1);
  CHECK(reads[0].job == 7);
  CHECK(third.take().empty());
}

TEST_CASE("a read that arrives during a commit is answered before the next commit, and a read alone commits nothing") {
  GateStore store;
  Deliveries got;
  ThreadedExecutor ex(store, got.sink());
  ex.append(job(1, "g", 2));
  store.wait_entered();  // job 1's commit is in flight
  ex.read(ReadJob{10, "g", 0, 100});
  ex.append(job(2, "g", 1));
  store.open();
  ex.drain();
  auto reads = got.take_reads();
  REQUIRE(reads.size() == 1);
  CHECK(reads[0].job == 10);
  CHECK(reads[0].result.status.is_ok());
  // Read before job 2's commit: job 1's two messages, not job 2's.
  REQUIRE(reads[0].result.messages.size() == 2);
  CHECK(reads[0].result.messages[1].msg_id == 2);
  CHECK(got.take().size() == 2);
  ex.read(ReadJob{11, "g", 2, 100});
  ex.drain();
  reads = got.take_reads();
  REQUIRE(reads.size() == 1);
  CHECK(reads[0].job == 11);
  REQUIRE(reads[0].result.messages.size() == 1);
  CHECK(reads[0].result.messages[0].msg_id == 3);
  CHECK(got.take().empty());
  CHECK(ex.stats().commits == 2);
  CHECK(ex.stats().reads == 2);
  CHECK(store.sizes() == std::vector<size_t>{2, 1});
}

TEST_CASE("a commit takes whole jobs up to max_requests_per_commit") {
  GateStore store;
  Deliveries got;
  {
    ThreadedExecutor ex(store, got.sink(), ThreadedExecutor::Options{2});
    ex.append(job(1, "g", 1));
    store.wait_entered();
    ex.append(job(2, "g", 1));
    ex.append(job(3, "g", 1));
    ex.append(job(4, "g", 3));  // larger than the bound: taken whole, alone
    store.open();
    ex.drain();
  }
  CHECK(store.sizes() == std::vector<size_t>{1, 2, 3});
  auto commits = got.take();
  REQUIRE(commits.size() == 3);
  CHECK(commits[1].size() == 2);
  CHECK(commits[2][0].job == 4);
  CHECK(ids_of(commits[2][0]) == std::vector<uint64_t>{4, 5, 6});
}

TEST_CASE("a failed commit answers every job in it with the error and stores nothing") {
  GateStore store;
  Deliveries got;
  {
    ThreadedExecutor ex(store, got.sink());
    store.set_fail(true);
    ex.append(job(1, "g", 1));
    store.wait_entered();
    ex.append(job(2, "g", 2));
    ex.append(job(3, "h", 1));
    store.open();
    ex.drain();
    CHECK(ex.stats().failed_commits == 2);
    store.set_fail(false);
    ex.append(job(4, "g", 1));
    ex.drain();
  }
  auto commits = got.take();
  REQUIRE(commits.size() == 3);
  REQUIRE(commits[1].size() == 2);
  for (const AppendCompletion& c : commits[1]) {
    CHECK(c.status.code() == Code::kUnavailable);
    CHECK(c.outcomes.empty());
  }
  CHECK(commits[0][0].status.code() == Code::kUnavailable);
  REQUIRE(commits[2].size() == 1);
  CHECK(commits[2][0].status.is_ok());
  CHECK(ids_of(commits[2][0]) == std::vector<uint64_t>{1});  // nothing of the failed commits was stored
}

TEST_CASE("destroying the executor delivers every job handed in") {
  GateStore store;
  Deliveries got;
  {
    ThreadedExecutor ex(store, got.sink());
    ex.append(job(1, "g", 1));
    store.wait_entered();
    ex.append(job(2, "g", 1));
    store.open();
  }  // no drain(): the destructor finishes the queue
  auto commits = got.take();
  size_t jobs = 0;
  for (const auto& c : commits) jobs += c.size();
  CHECK(jobs == 2);
}

TEST_CASE("a node on a ThreadedExecutor waits for its lookup and acknowledges when the completion is fed back on its thread") {
  Deliveries got;
  auto owned = make_memory_message_store();
  auto owned_members = make_memory_membership_store();
  auto owned_directory = make_memory_session_directory();
  MessageStore* store = owned.get();  // the executor's; the node reads it only for what it does inline
  // The executor's thread and the test's take turns with the memory stores
  // (they are not thread-safe): the test touches the node only between drains.
  ThreadedExecutor ex(ExecutorStores{*store, owned_members.get(), owned_directory.get()}, got.sink(), {});
  parley::test::Fixture f({}, std::move(owned), &ex, std::move(owned_members), std::move(owned_directory));
  std::function<void()> settle = [&] {
    for (int round = 0; round < 10; ++round) {
      f.node->flush();
      ex.drain();
      StoreCompletions all;
      for (auto& commit : got.take()) {
        for (AppendCompletion& c : commit) all.appends.push_back(std::move(c));
      }
      all.reads = got.take_reads();
      all.lookups = got.take_lookups();
      all.jobs = got.take_jobs();
      if (all.empty()) return;
      complete(*f.node, std::move(all));
    }
  };
  REQUIRE(f.node->open_session(1, "alice").is_ok());
  REQUIRE(f.node->open_session(2, "bob").is_ok());
  f.node->flush();
  CHECK(f.node->store_jobs_in_flight() == 4);  // the directory puts, the reads of their groups
  settle();
  f.node->on_client_request(2, ResumeReq{0, "g", 0, 0});
  f.send(1, "c1", "one");
  f.send(1, "c2", "two");
  f.node->flush();
  CHECK(f.node->lookups_in_flight() == 2);  // bob's resume, alice's first send
  CHECK(f.node->appends_in_flight() == 0);
  settle();
  CHECK(f.node->lookups_in_flight() == 0);
  CHECK(f.node->appends_in_flight() == 0);
  CHECK(ex.stats().lookups == 2);
  auto acks = f.host.of<AckEv>(1);
  REQUIRE(acks.size() == 2);
  CHECK(acks[0].msg_id == 1);
  CHECK(acks[1].msg_id == 2);
  CHECK(f.host.of<ResumedEv>(2).size() == 1);
  CHECK(f.host.of<MessageEv>(2).size() == 2);
  std::vector<Message> stored;
  REQUIRE(store->read("g", 0, 10, &stored).is_ok());
  CHECK(stored.size() == 2);
}

TEST_CASE("a lookup is answered from the executor's stores: membership and head, or what refuses") {
  auto messages = make_memory_message_store();
  auto members = make_memory_membership_store();
  REQUIRE(members->create_group("g", "alice").is_ok());
  std::vector<AppendOutcome> out;
  REQUIRE(messages->append({{"g", "alice", "c", "x", 0}}, &out).is_ok());
  Deliveries got;
  ThreadedExecutor ex(ExecutorStores{*messages, members.get()}, got.sink(), {});
  ex.lookup(LookupJob{1, "g", "alice", 0, 10});
  ex.lookup(LookupJob{2, "g", "mallory", 0, 0});
  ex.lookup(LookupJob{3, "nope", "alice", 0, 0});
  ex.drain();
  auto answers = got.take_lookups();
  REQUIRE(answers.size() == 3);
  CHECK(answers[0].job == 1);
  CHECK(answers[0].result.status.is_ok());
  CHECK(answers[0].result.member);
  CHECK(answers[0].result.head.head == 1);
  CHECK(answers[0].result.head.epoch == 1);
  REQUIRE(answers[0].result.messages.size() == 1);
  CHECK(answers[0].result.messages[0].contents == "x");
  CHECK_FALSE(answers[1].result.member);
  CHECK(answers[1].result.group_exists);
  CHECK_FALSE(answers[2].result.member);
  CHECK_FALSE(answers[2].result.group_exists);
  CHECK(ex.stats().lookups == 3);
  CHECK(ex.stats().commits == 0);
  // An executor given no membership store says so rather than guess.
  ThreadedExecutor bare(*messages, got.sink());
  bare.lookup(LookupJob{4, "g", "alice", 0, 0});
  bare.drain();
  answers = got.take_lookups();
  REQUIRE(answers.size() == 1);
  CHECK(answers[0].result.status.code() == Code::kInternal);
}
