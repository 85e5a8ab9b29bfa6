// Presence: who is online, away or typing.
//
// A node keeps the status of its own users (set when their first session
// opens, changed by the client, offline when the last session closes) and a
// cache of what peers told it about theirs; cached entries expire, so a dead
// node's users fade to offline. Typing is throttled per (user, group): a
// client that reports typing on every keystroke causes at most one update per
// typing_throttle_ms, each valid until expires_at_ms. Who receives updates
// (online co-members who asked for presence) is the Node's job.
//
// Pure state, time passed in. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>

#include "parley/protocol.hpp"

namespace parley {

class Presence {
 public:
  struct Options {
    int64_t typing_ttl_ms = 5000;
    int64_t typing_throttle_ms = 2000;
    int64_t remote_ttl_ms = 60000;  // a peer's update is believed this long
  };
  explicit Presence(Options options) : options_(options) {}

  // Sets a local user's status; true if it changed.
  bool set_local(const std::string& user_id, PresenceStatus status);
  // Records a typing report; true if it should be broadcast now, with the
  // time it stops showing in *expires_at_ms.
  bool typing(const std::string& user_id, const std::string& group_id, int64_t now_ms,
              int64_t* expires_at_ms);
  // Records an update from another node.
  void observe_remote(const PresenceEv& ev, int64_t now_ms);
  // Local status if the user is local, else an unexpired remote one, else offline.
  PresenceStatus status(const std::string& user_id, int64_t now_ms) const;
  // Drops expired remote entries and typing throttles.
  void expire(int64_t now_ms);

 private:
  struct Remote {
    PresenceStatus status;
    int64_t expires_at_ms;
  };
  Options options_;
  std::unordered_map<std::string, PresenceStatus> local_;
  std::unordered_map<std::string, Remote> remote_;
  std::map<std::pair<std::string, std::string>, int64_t> last_typing_;
};

}  // namespace parley
