#include "parley/threaded_executor.hpp"

#include <utility>

namespace parley {

ThreadedExecutor::ThreadedExecutor(ExecutorStores stores, Deliver deliver, Options options)
    : stores_(stores), options_(options) {
  clients_.push_back(std::make_unique<Client>(*this, 0));
  delivers_.push_back(std::move(deliver));
  thread_ = std::thread([this] { loop(); });
}

ThreadedExecutor::ThreadedExecutor(ExecutorStores stores, Options options) : stores_(stores), options_(options) {
  thread_ = std::thread([this] { loop(); });
}

ThreadedExecutor::~ThreadedExecutor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

StoreExecutor& ThreadedExecutor::add_client(Deliver deliver) {
  std::lock_guard<std::mutex> lock(mu_);
  clients_.push_back(std::make_unique<Client>(*this, clients_.size()));
  delivers_.push_back(std::move(deliver));
  return *clients_.back();
}

// The executor's own face is its first client's (the constructor's deliver).
void ThreadedExecutor::append(AppendJob job) {
  push(0, std::move(job));
}
void ThreadedExecutor::read(ReadJob job) {
  push(0, std::move(job));
}
void ThreadedExecutor::lookup(LookupJob job) {
  push(0, std::move(job));
}
void ThreadedExecutor::run(StoreJob job) {
  push(0, std::move(job));
}

void ThreadedExecutor::push(size_t client, AppendJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back({client, std::move(job)});
    ++stats_.jobs;
  }
  wake_.notify_one();
}

void ThreadedExecutor::push(size_t client, ReadJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    reads_.push_back({client, std::move(job)});
  }
  wake_.notify_one();
}

void ThreadedExecutor::push(size_t client, LookupJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    lookups_.push_back({client, std::move(job)});
  }
  wake_.notify_one();
}

void ThreadedExecutor::push(size_t client, StoreJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back({client, std::move(job)});
  }
  wake_.notify_one();
}

void ThreadedExecutor::drain() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return !has_work() && !busy_; });
}

ThreadedExecutor::Stats ThreadedExecutor::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

namespace {
Status missing(const char* what) {
  return error(Code::kInternal, std::string("this store executor was given no ") + what + " store");
}
}  // namespace

void ThreadedExecutor::loop() {
  std::vector<Tagged<AppendJob>> appends;
  std::vector<Tagged<ReadJob>> reads;
  std::vector<Tagged<LookupJob>> lookups;
  std::vector<Tagged<StoreJob>> jobs;
  std::vector<AppendRequest> requests;
  std::vector<AppendOutcome> outcomes;
  std::vector<StoreCompletions> done;  // by client
  std::vector<Deliver*> deliver;       // by client, as of this round
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      busy_ = false;
      if (!has_work()) idle_.notify_all();
      wake_.wait(lock, [this] { return stopping_ || has_work(); });
      if (!has_work()) return;  // stopping, nothing left
      busy_ = true;
      reads.swap(reads_);
      lookups.swap(lookups_);
      jobs.swap(jobs_);
      size_t taken = 0;
      while (!queue_.empty() && (appends.empty() || taken < options_.max_requests_per_commit)) {
        taken += queue_.front().job.requests.size();
        appends.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      deliver.clear();
      for (Deliver& d : delivers_) deliver.push_back(&d);  // a deque: stable while clients are added
    }
    done.clear();
    done.resize(deliver.size());
    // What the nodes wait on first: reads, lookups, bookkeeping, in order.
    for (const auto& [client, r] : reads) done[client].reads.push_back({r.id, run_read(stores_.messages, r)});
    for (const auto& [client, l] : lookups) {
      LookupResult answer;
      if (stores_.membership == nullptr) {
        answer.status = missing("membership");
      } else {
        answer = run_lookup(stores_.messages, *stores_.membership, l);
      }
      done[client].lookups.push_back({l.id, std::move(answer)});
    }
    for (const auto& [client, j] : jobs) {
      std::vector<StoreOpResult> results;
      if (stores_.membership == nullptr || stores_.directory == nullptr) {
        results.resize(j.ops.size());
        for (StoreOpResult& r : results) r.status = missing("membership or directory");
      } else {
        results = run_store_job(JobStores{stores_.messages, *stores_.membership, *stores_.directory,
                                          stores_.presence},
                                j);
      }
      done[client].jobs.push_back({j.id, std::move(results)});
    }
    // One commit for every append job taken, of every client (moved-from
    // requests keep the count).
    for (auto& [client, j] : appends) {
      for (AppendRequest& r : j.requests) requests.push_back(std::move(r));
    }
    Status st = appends.empty() ? Status::ok() : run_append(stores_.messages, stores_.membership, requests, &outcomes);
    if (st && outcomes.size() != requests.size()) {
      st = error(Code::kInternal, "the store answered a different number of outcomes than requests");
    }
    size_t next = 0;
    for (auto& [client, j] : appends) {
      const size_t n = j.requests.size();
      AppendCompletion c{j.id, st, {}};
      if (st) {
        c.outcomes.assign(std::make_move_iterator(outcomes.begin() + static_cast<ptrdiff_t>(next)),
                          std::make_move_iterator(outcomes.begin() + static_cast<ptrdiff_t>(next + n)));
      }
      next += n;
      done[client].appends.push_back(std::move(c));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.reads += reads.size();
      stats_.lookups += lookups.size();
      stats_.store_jobs += jobs.size();
      if (!appends.empty()) ++stats_.commits;
      stats_.requests += requests.size();
      if (!st) ++stats_.failed_commits;
      if (appends.size() > stats_.max_jobs_per_commit) stats_.max_jobs_per_commit = appends.size();
    }
    appends.clear();
    reads.clear();
    lookups.clear();
    jobs.clear();
    requests.clear();
    outcomes.clear();
    for (size_t c = 0; c < done.size(); ++c) {
      if (!done[c].empty()) (*deliver[c])(std::move(done[c]));
    }
  }
}

void complete(Node& node, StoreCompletions completions) {
  for (ReadCompletion& c : completions.reads) node.on_read_done(c.job, std::move(c.result));
  for (LookupCompletion& c : completions.lookups) node.on_lookup_done(c.job, std::move(c.result));
  for (StoreJobCompletion& c : completions.jobs) node.on_store_done(c.job, std::move(c.results));
  for (AppendCompletion& c : completions.appends) node.on_append_done(c.job, c.status, std::move(c.outcomes));
}

}  // namespace parley
