// Counters and histograms of parley-server, written in the Prometheus text
// format at GET /metrics. Histograms have fixed buckets (cumulative counts,
// as Prometheus wants them). Used on the server's I/O thread, except
// NotifierStats (atomics, from the webhook thread) and Histogram (locked: the
// store executor's thread times its appends).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace parley::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1) {}
  // Thread-safe: the store executor's thread observes what the serving thread writes.
  void observe(double v);
  // Appends "# TYPE" and the _bucket/_sum/_count lines for `name`.
  void write(std::string* out, const std::string& name, const std::string& help) const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

void write_counter(std::string* out, const std::string& name, const std::string& help, double value,
                   const char* type = "counter");

}  // namespace parley::server
