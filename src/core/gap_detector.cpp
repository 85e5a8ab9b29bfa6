#include "parley/gap_detector.hpp"

#include <climits>

namespace parley {

void GapDetector::track(const std::string& group_id, uint64_t delivered) {
  auto [it, inserted] = groups_.try_emplace(group_id);
  if (!inserted) return;
  it->second.delivered = delivered;
  it->second.known_head = delivered;
}

void GapDetector::untrack(const std::string& group_id) {
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return;
  if (it->second.deadline != 0) deadlines_.erase({it->second.deadline, group_id});
  groups_.erase(it);
}

uint64_t GapDetector::delivered(const std::string& group_id) const {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? 0 : it->second.delivered;
}

uint64_t GapDetector::known_head(const std::string& group_id) const {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? 0 : it->second.known_head;
}

size_t GapDetector::held(const std::string& group_id) const {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? 0 : it->second.held.size();
}

void GapDetector::schedule(const std::string& group_id, Group& g, int64_t at) {
  if (g.deadline != 0) {
    if (g.deadline <= at) return;
    deadlines_.erase({g.deadline, group_id});
  }
  g.deadline = at;
  deadlines_.insert({at, group_id});
}

// Clears the catch-up once nothing is missing any more.
void GapDetector::settle(const std::string& group_id, Group& g) {
  if (g.delivered < g.known_head || g.deadline == 0) return;
  deadlines_.erase({g.deadline, group_id});
  g.deadline = 0;
}

GapDetector::Offer GapDetector::offer(const MessagePtr& message, int64_t now_ms,
                                      std::vector<MessagePtr>* ready) {
  auto it = groups_.find(message->group_id);
  if (it == groups_.end()) return Offer::kUntracked;
  Group& g = it->second;
  const uint64_t id = message->msg_id;
  if (id <= g.delivered) return Offer::kDuplicate;
  if (id > g.known_head) g.known_head = id;
  if (id != g.delivered + 1) {
    if (!g.held.emplace(id, message).second) return Offer::kDuplicate;
    if (g.held.size() > options_.max_held) {
      g.held.clear();
      schedule(message->group_id, g, now_ms);
      return Offer::kOverflow;
    }
    schedule(message->group_id, g, now_ms + options_.grace_ms);
    return Offer::kHeld;
  }
  ready->push_back(message);
  g.delivered = id;
  for (auto h = g.held.begin(); h != g.held.end() && h->first == g.delivered + 1; h = g.held.erase(h)) {
    ready->push_back(std::move(h->second));
    g.delivered = h->first;
  }
  settle(message->group_id, g);
  return Offer::kDelivered;
}

void GapDetector::skip_to(const std::string& group_id, uint64_t id, std::vector<MessagePtr>* ready) {
  auto it = groups_.find(group_id);
  if (it == groups_.end() || id <= it->second.delivered) return;
  Group& g = it->second;
  g.delivered = id;
  if (id > g.known_head) g.known_head = id;
  g.held.erase(g.held.begin(), g.held.upper_bound(id));
  for (auto h = g.held.begin(); h != g.held.end() && h->first == g.delivered + 1; h = g.held.erase(h)) {
    ready->push_back(std::move(h->second));
    g.delivered = h->first;
  }
  settle(group_id, g);
}

void GapDetector::note_head(const std::string& group_id, uint64_t head, int64_t now_ms) {
  auto it = groups_.find(group_id);
  if (it == groups_.end() || head <= it->second.delivered) return;
  Group& g = it->second;
  if (head > g.known_head) g.known_head = head;
  schedule(group_id, g, now_ms + options_.grace_ms);
}

void GapDetector::due(int64_t now_ms, std::vector<CatchUpRequest>* out) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now_ms) {
    std::string group_id = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    Group& g = groups_.at(group_id);
    g.deadline = 0;
    if (g.delivered >= g.known_head) continue;
    out->push_back({group_id, g.delivered, g.known_head});
    schedule(group_id, g, now_ms + options_.retry_ms);
  }
}

int64_t GapDetector::next_deadline() const {
  return deadlines_.empty() ? INT64_MAX : deadlines_.begin()->first;
}

}  // namespace parley
