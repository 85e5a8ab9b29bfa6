#include "parley/threaded_executor.hpp"

#include <utility>

namespace parley {

ThreadedExecutor::ThreadedExecutor(ExecutorStores stores, Deliver deliver, Options options)
    : stores_(stores), deliver_(std::move(deliver)), options_(options), thread_([this] { loop(); }) {}

ThreadedExecutor::~ThreadedExecutor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void ThreadedExecutor::append(AppendJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
    ++stats_.jobs;
  }
  wake_.notify_one();
}

void ThreadedExecutor::read(ReadJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    reads_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void ThreadedExecutor::lookup(LookupJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    lookups_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void ThreadedExecutor::run(StoreJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
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
  std::vector<AppendJob> appends;
  std::vector<ReadJob> reads;
  std::vector<LookupJob> lookups;
  std::vector<StoreJob> jobs;
  std::vector<AppendRequest> requests;
  std::vector<AppendOutcome> outcomes;
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
        taken += queue_.front().requests.size();
        appends.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    StoreCompletions done;
    // What the node waits on first: reads, lookups, bookkeeping, in order.
    done.reads.reserve(reads.size());
    for (const ReadJob& r : reads) done.reads.push_back({r.id, run_read(stores_.messages, r)});
    done.lookups.reserve(lookups.size());
    for (const LookupJob& l : lookups) {
      LookupResult answer;
      if (stores_.membership == nullptr) {
        answer.status = missing("membership");
      } else {
        answer = run_lookup(stores_.messages, *stores_.membership, l);
      }
      done.lookups.push_back({l.id, std::move(answer)});
    }
    done.jobs.reserve(jobs.size());
    for (const StoreJob& j : jobs) {
      std::vector<StoreOpResult> results;
      if (stores_.membership == nullptr || stores_.directory == nullptr) {
        results.resize(j.ops.size());
        for (StoreOpResult& r : results) r.status = missing("membership or directory");
      } else {
        results = run_store_job(JobStores{stores_.messages, *stores_.membership, *stores_.directory,
                                          stores_.presence},
                                j);
      }
      done.jobs.push_back({j.id, std::move(results)});
    }
    // One commit for every append job taken (moved-from requests keep the count).
    for (AppendJob& j : appends) {
      for (AppendRequest& r : j.requests) requests.push_back(std::move(r));
    }
    Status st = appends.empty() ? Status::ok() : stores_.messages.append(requests, &outcomes);
    done.appends.reserve(appends.size());
    if (st && outcomes.size() != requests.size()) {
      st = error(Code::kInternal, "the store answered a different number of outcomes than requests");
    }
    size_t next = 0;
    for (AppendJob& j : appends) {
      const size_t n = j.requests.size();
      AppendCompletion c{j.id, st, {}};
      if (st) {
        c.outcomes.assign(std::make_move_iterator(outcomes.begin() + static_cast<ptrdiff_t>(next)),
                          std::make_move_iterator(outcomes.begin() + static_cast<ptrdiff_t>(next + n)));
      }
      next += n;
      done.appends.push_back(std::move(c));
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
    deliver_(std::move(done));
  }
}

void complete(Node& node, StoreCompletions completions) {
  for (ReadCompletion& c : completions.reads) node.on_read_done(c.job, std::move(c.result));
  for (LookupCompletion& c : completions.lookups) node.on_lookup_done(c.job, std::move(c.result));
  for (StoreJobCompletion& c : completions.jobs) node.on_store_done(c.job, std::move(c.results));
  for (AppendCompletion& c : completions.appends) node.on_append_done(c.job, c.status, std::move(c.outcomes));
}

}  // namespace parley
