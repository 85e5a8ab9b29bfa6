// GapDetector: per-group reorder buffer in front of local delivery.
//
// Every message carries prev_msg_id, so a receiver knows when one is missing.
// The detector delivers strictly in msg_id order with no duplicates, holds
// messages that arrive early, and - if the gap is still open after a grace
// period - asks its owner to read the missing range from the store. It is
// bounded: holding more than max_held messages of a group drops them and asks
// for a catch-up at once. A head learned elsewhere (head sync) opens a gap
// too, so a lost last message is caught up as well.
//
// Pure state machine: no I/O, time passed in. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "parley/message.hpp"

namespace parley {

// Read (after, until] of a group from the store and offer the result.
struct CatchUpRequest {
  std::string group_id;
  uint64_t after = 0;
  uint64_t until = 0;
};

class GapDetector {
 public:
  struct Options {
    int64_t grace_ms = 150;  // how long an early message waits for the gap to fill
    int64_t retry_ms = 250;  // re-ask while a gap stays open (failed or short read)
    size_t max_held = 1024;  // per group; overflow -> immediate catch-up
  };
  enum class Offer { kDelivered, kDuplicate, kHeld, kOverflow, kUntracked };

  explicit GapDetector(Options options) : options_(options) {}

  // Starts tracking a group whose messages up to `delivered` count as
  // delivered. No-op if tracked already.
  void track(const std::string& group_id, uint64_t delivered);
  void untrack(const std::string& group_id);
  bool tracking(const std::string& group_id) const { return groups_.count(group_id) != 0; }
  // Highest msg_id delivered in order; 0 if untracked or nothing yet.
  uint64_t delivered(const std::string& group_id) const;
  // Highest msg_id known to exist (held or noted); >= delivered.
  uint64_t known_head(const std::string& group_id) const;
  size_t held(const std::string& group_id) const;

  // Offers one message. Messages that became deliverable, in order, are
  // appended to *ready (the offered one and any held ones it unblocked).
  Offer offer(const MessagePtr& message, int64_t now_ms, std::vector<MessagePtr>* ready);

  // Ids up to `id` are gone for good (trimmed by the store's retention): the
  // delivered point moves up to `id` and held messages that now follow are
  // appended to *ready, in order.
  void skip_to(const std::string& group_id, uint64_t id, std::vector<MessagePtr>* ready);

  // `head` is known to be stored. If it is beyond what was delivered, a
  // catch-up becomes due after the grace period (unless one is due sooner).
  void note_head(const std::string& group_id, uint64_t head, int64_t now_ms);

  // Catch-ups whose time has come, appended to *out; each is asked again
  // every retry_ms until its gap closes.
  void due(int64_t now_ms, std::vector<CatchUpRequest>* out);
  // Earliest time due() has work; INT64_MAX if none.
  int64_t next_deadline() const;

 private:
  struct Group {
    uint64_t delivered = 0;
    uint64_t known_head = 0;
    std::map<uint64_t, MessagePtr> held;
    int64_t deadline = 0;  // 0: no catch-up scheduled
  };
  void schedule(const std::string& group_id, Group& g, int64_t at);
  void settle(const std::string& group_id, Group& g);

  Options options_;
  std::unordered_map<std::string, Group> groups_;
  std::set<std::pair<int64_t, std::string>> deadlines_;
};

}  // namespace parley
