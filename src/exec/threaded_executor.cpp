#include "parley/threaded_executor.hpp"

#include <utility>

namespace parley {

ThreadedExecutor::ThreadedExecutor(MessageStore& store, MembershipStore* membership, Deliver deliver,
                                   Options options)
    : store_(store),
      membership_(membership),
      deliver_(std::move(deliver)),
      options_(options),
      thread_([this] { run(); }) {}

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

void ThreadedExecutor::drain() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return !has_work() && !busy_; });
}

ThreadedExecutor::Stats ThreadedExecutor::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void ThreadedExecutor::run() {
  std::vector<AppendJob> jobs;
  std::vector<ReadJob> reads;
  std::vector<LookupJob> lookups;
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
      size_t taken = 0;
      while (!queue_.empty() && (jobs.empty() || taken < options_.max_requests_per_commit)) {
        taken += queue_.front().requests.size();
        jobs.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    StoreCompletions done;
    done.reads.reserve(reads.size());
    for (const ReadJob& r : reads) done.reads.push_back({r.id, run_read(store_, r)});
    done.lookups.reserve(lookups.size());
    for (const LookupJob& l : lookups) {
      LookupResult answer;
      if (membership_ == nullptr) {
        answer.status = error(Code::kInternal, "this store executor was given no membership store");
      } else {
        answer = run_lookup(store_, *membership_, l);
      }
      done.lookups.push_back({l.id, std::move(answer)});
    }
    // One commit for every job taken (moved-from requests keep the count).
    for (AppendJob& j : jobs) {
      for (AppendRequest& r : j.requests) requests.push_back(std::move(r));
    }
    Status st = jobs.empty() ? Status::ok() : store_.append(requests, &outcomes);
    done.appends.reserve(jobs.size());
    if (st && outcomes.size() != requests.size()) {
      st = error(Code::kInternal, "the store answered a different number of outcomes than requests");
    }
    size_t next = 0;
    for (AppendJob& j : jobs) {
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
      if (!jobs.empty()) ++stats_.commits;
      stats_.requests += requests.size();
      if (!st) ++stats_.failed_commits;
      if (jobs.size() > stats_.max_jobs_per_commit) stats_.max_jobs_per_commit = jobs.size();
    }
    jobs.clear();
    reads.clear();
    lookups.clear();
    requests.clear();
    outcomes.clear();
    deliver_(std::move(done));
  }
}

void complete(Node& node, StoreCompletions completions) {
  for (ReadCompletion& c : completions.reads) node.on_read_done(c.job, std::move(c.result));
  for (LookupCompletion& c : completions.lookups) node.on_lookup_done(c.job, std::move(c.result));
  for (AppendCompletion& c : completions.appends) node.on_append_done(c.job, c.status, std::move(c.outcomes));
}

}  // namespace parley
