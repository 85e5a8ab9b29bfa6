#include "http_poster.hpp"

#include <httplib.h>

namespace parley::server {

HttpPoster::HttpPoster(Options options) : options_(std::move(options)), worker_([this] { run(); }) {}

HttpPoster::~HttpPoster() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    jobs_.clear();
  }
  cv_.notify_all();
  worker_.join();
}

bool HttpPoster::post(std::string path, std::shared_ptr<const std::string> body, std::string content_type,
                      Done done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || jobs_.size() >= options_.max_queued) return false;
    jobs_.push_back(Job{std::move(path), std::move(body), std::move(content_type), std::move(done)});
  }
  cv_.notify_one();
  return true;
}

size_t HttpPoster::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return jobs_.size();
}

void HttpPoster::run() {
  httplib::Client client(options_.host, options_.port);
  client.set_keep_alive(true);
  const time_t sec = static_cast<time_t>(options_.timeout_ms / 1000);
  const time_t usec = static_cast<time_t>((options_.timeout_ms % 1000) * 1000);
  client.set_connection_timeout(sec, usec);
  client.set_read_timeout(sec, usec);
  client.set_write_timeout(sec, usec);
  httplib::Headers headers;
  if (!options_.authorization.empty()) headers.emplace("Authorization", options_.authorization);
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    httplib::Result res =
        client.Post(job.path.c_str(), headers, job.body->data(), job.body->size(), job.content_type.c_str());
    if (job.done) job.done(res ? res->status : 0);
  }
}

}  // namespace parley::server
