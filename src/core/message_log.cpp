#include "parley/message_log.hpp"

namespace parley {

void MessageLog::append(Entry entry) {
  std::deque<Entry>& tail = tails_[entry.message->group_id];
  if (!tail.empty() && tail.back().message->msg_id + 1 != entry.message->msg_id) tail.clear();
  tail.push_back(std::move(entry));
  if (tail.size() > tail_per_group_) tail.pop_front();
}

void MessageLog::erase(const std::string& group_id, uint64_t target) {
  auto it = tails_.find(group_id);
  if (it == tails_.end()) return;
  for (Entry& e : it->second) {
    const Message& m = *e.message;
    const bool of_target = m.msg_id == target || (m.entry.kind == EntryKind::kEdit && m.entry.target == target);
    if (!of_target || m.deleted) continue;
    auto tomb = std::make_shared<Message>(m);
    erase_contents(tomb.get());
    e.message = std::move(tomb);
    e.frame = nullptr;
  }
}

uint64_t MessageLog::cached_head(const std::string& group_id) const {
  auto it = tails_.find(group_id);
  return it == tails_.end() || it->second.empty() ? 0 : it->second.back().message->msg_id;
}

bool MessageLog::covers(const std::string& group_id, uint64_t after) const {
  auto it = tails_.find(group_id);
  return it != tails_.end() && !it->second.empty() && after + 1 >= it->second.front().message->msg_id;
}

bool MessageLog::read_cached(const std::string& group_id, uint64_t after, size_t limit, std::vector<Entry>* out) {
  if (!covers(group_id, after)) return false;
  const std::deque<Entry>& tail = tails_.find(group_id)->second;
  const uint64_t first = tail.front().message->msg_id;
  ++stats_.cache_reads;
  for (size_t i = after + 1 - first; i < tail.size() && limit > 0; ++i, --limit) out->push_back(tail[i]);
  return true;
}

Status MessageLog::read(const std::string& group_id, uint64_t after, size_t limit, std::vector<Entry>* out) {
  if (read_cached(group_id, after, limit, out)) return Status::ok();
  ++stats_.store_reads;
  std::vector<Message> messages;
  if (Status s = store_.read(group_id, after, limit, &messages); !s) return s;
  for (Message& m : messages) out->push_back({std::make_shared<Message>(std::move(m)), nullptr});
  return Status::ok();
}

}  // namespace parley
