#include "parley/presence.hpp"

namespace parley {

bool Presence::set_local(const std::string& user_id, PresenceStatus status) {
  if (status == PresenceStatus::kOffline) return local_.erase(user_id) != 0;
  auto [it, inserted] = local_.try_emplace(user_id, status);
  if (inserted) return true;
  if (it->second == status) return false;
  it->second = status;
  return true;
}

bool Presence::typing(const std::string& user_id, const std::string& group_id, int64_t now_ms,
                      int64_t* expires_at_ms) {
  auto [it, inserted] = last_typing_.try_emplace({user_id, group_id}, now_ms);
  if (!inserted) {
    if (now_ms - it->second < options_.typing_throttle_ms) return false;
    it->second = now_ms;
  }
  *expires_at_ms = now_ms + options_.typing_ttl_ms;
  return true;
}

void Presence::observe_remote(const PresenceEv& ev, int64_t now_ms) {
  if (ev.typing) return;  // typing is passed on, not remembered
  remote_[ev.user_id] = Remote{ev.status, now_ms + options_.remote_ttl_ms};
}

PresenceStatus Presence::status(const std::string& user_id, int64_t now_ms) const {
  if (auto it = local_.find(user_id); it != local_.end()) return it->second;
  if (auto it = remote_.find(user_id); it != remote_.end() && it->second.expires_at_ms > now_ms) {
    return it->second.status;
  }
  return PresenceStatus::kOffline;
}

void Presence::expire(int64_t now_ms) {
  for (auto it = remote_.begin(); it != remote_.end();) {
    it = it->second.expires_at_ms <= now_ms ? remote_.erase(it) : std::next(it);
  }
  for (auto it = last_typing_.begin(); it != last_typing_.end();) {
    it = now_ms - it->second >= options_.typing_throttle_ms ? last_typing_.erase(it) : std::next(it);
  }
}

}  // namespace parley
