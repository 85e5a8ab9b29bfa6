#include "parley/batching_forwarder.hpp"

#include <algorithm>
#include <climits>

#include "core/peer_codec.hpp"

namespace parley {

BatchingForwarder::BatchingForwarder(std::string self_id, Options options, Random& random, SendFn send)
    : self_id_(std::move(self_id)), options_(options), random_(random), send_(std::move(send)) {}

int64_t BatchingForwarder::jittered_period() {
  const double j = options_.jitter * (2 * random_.unit() - 1);
  return std::max<int64_t>(1, static_cast<int64_t>(options_.period_ms * (1 + j)));
}

size_t BatchingForwarder::queued_items(const std::string& dest) const {
  auto it = dests_.find(dest);
  return it == dests_.end() ? 0 : it->second.queue.size();
}

void BatchingForwarder::enqueue(const std::string& dest, const Frame& item, int64_t now_ms) {
  auto [it, inserted] = dests_.try_emplace(dest);
  Dest& d = it->second;
  if (inserted) d.next_flush = now_ms + static_cast<int64_t>(random_.below(options_.period_ms + 1));
  if (d.queue.empty() && d.next_flush <= now_ms) {
    // An idle queue keeps its phase: its first item waits for the next tick.
    // (A non-empty queue past its tick is flushed by the next poll.)
    d.next_flush += ((now_ms - d.next_flush) / options_.period_ms + 1) * options_.period_ms;
  }
  d.queue.push_back(item);
  d.queued_bytes += item->size();
  while (d.queued_bytes > options_.max_queued_bytes && d.queue.size() > 1) {
    d.queued_bytes -= d.queue.front()->size();
    d.queue.pop_front();
    ++stats_.items_dropped;
  }
  if (d.busy) return;
  const bool full = d.queue.size() >= options_.max_items || d.queued_bytes >= options_.max_bytes;
  if (full || options_.mode == Mode::kAdaptive) flush(dest, d, now_ms);
}

// Takes up to one batch worth of items off the queue and sends it.
void BatchingForwarder::flush(const std::string& dest, Dest& d, int64_t now_ms) {
  if (d.busy || d.queue.empty()) return;
  std::vector<Frame> items;
  size_t bytes = 0;
  while (!d.queue.empty() && items.size() < options_.max_items &&
         (items.empty() || bytes + d.queue.front()->size() <= options_.max_bytes)) {
    bytes += d.queue.front()->size();
    items.push_back(std::move(d.queue.front()));
    d.queue.pop_front();
  }
  d.queued_bytes -= bytes;
  d.batch = std::make_shared<const std::string>(detail::encode_batch(self_id_, items));
  d.batch_items = items.size();
  d.attempts = 0;
  d.busy = true;
  stats_.items_sent += items.size();
  stats_.max_batch_items = std::max(stats_.max_batch_items, items.size());
  transmit(dest, d, now_ms);
}

void BatchingForwarder::transmit(const std::string& dest, Dest& d, int64_t now_ms) {
  ++d.attempts;
  if (d.attempts > 1) ++stats_.retries;
  ++stats_.batches_sent;
  d.call_id = next_call_id_++;
  d.retry_at = 0;
  d.timeout_at = now_ms + options_.call_timeout_ms;
  send_(dest, d.call_id, d.batch);
}

void BatchingForwarder::done(const std::string& dest, Dest& d, int64_t now_ms) {
  d.busy = false;
  d.batch.reset();
  d.timeout_at = 0;
  d.retry_at = 0;
  const bool full = d.queue.size() >= options_.max_items || d.queued_bytes >= options_.max_bytes;
  if (options_.mode == Mode::kAdaptive || full) {
    flush(dest, d, now_ms);
  } else if (d.next_flush <= now_ms) {  // the tick passed while the call was out
    d.next_flush = now_ms + jittered_period();
    flush(dest, d, now_ms);
  }
}

void BatchingForwarder::fail(const std::string& dest, Dest& d, int64_t now_ms) {
  d.timeout_at = 0;
  if (d.attempts >= options_.max_attempts) {
    ++stats_.batches_dropped;
    stats_.items_dropped += d.batch_items;
    done(dest, d, now_ms);
    return;
  }
  const int64_t backoff = options_.backoff_ms << (d.attempts - 1);
  d.retry_at = now_ms + backoff + static_cast<int64_t>(random_.below(backoff / 2 + 1));
}

void BatchingForwarder::on_result(const std::string& dest, uint64_t call_id, bool ok, int64_t now_ms) {
  auto it = dests_.find(dest);
  if (it == dests_.end()) return;
  Dest& d = it->second;
  if (!d.busy || d.timeout_at == 0 || d.call_id != call_id) return;  // stale or timed out
  if (ok) {
    done(dest, d, now_ms);
  } else {
    fail(dest, d, now_ms);
  }
}

void BatchingForwarder::poll(int64_t now_ms) {
  for (auto& [dest, d] : dests_) {
    if (d.timeout_at != 0 && d.timeout_at <= now_ms) {
      ++stats_.timeouts;
      fail(dest, d, now_ms);
    }
    if (d.retry_at != 0 && d.retry_at <= now_ms) transmit(dest, d, now_ms);
    if (options_.mode == Mode::kFixed && !d.busy && d.next_flush <= now_ms) {
      d.next_flush = now_ms + jittered_period();
      flush(dest, d, now_ms);
    }
  }
}

int64_t BatchingForwarder::next_deadline() const {
  int64_t t = INT64_MAX;
  for (const auto& [dest, d] : dests_) {
    if (d.timeout_at != 0) t = std::min(t, d.timeout_at);
    if (d.retry_at != 0) t = std::min(t, d.retry_at);
    if (options_.mode == Mode::kFixed && !d.busy && !d.queue.empty()) t = std::min(t, d.next_flush);
  }
  return t;
}

void BatchingForwarder::forget(const std::string& dest) {
  dests_.erase(dest);
}

}  // namespace parley
