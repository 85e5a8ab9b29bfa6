// Notifier: best-effort offline notifications (the seed design's
// notification service).
//
// A member with no live session anywhere, or whose session failed before a
// message reached it, gets a notification; a message already handed to one of
// the user's sessions is never notified. Delivery is best effort: the message
// is in history either way. Implementations: a recording notifier
// (tests), the example server's webhook and log notifiers.
//
// Thread rules: called on the node's thread; must not block (queue and return).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace parley {

struct Notification {
  std::string user_id;  // who to notify
  std::string group_id;
  uint64_t epoch = 0;  // of the group's history msg_id belongs to
  uint64_t msg_id = 0;
  std::string sender_id;
  std::string preview;  // the first bytes of the contents
  std::string reason;   // "offline", or why the user's session failed
  bool mentioned = false;  // the message mentions the user
};

class Notifier {
 public:
  Notifier() = default;
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;
  virtual ~Notifier() = default;
  virtual void notify(const Notification& notification) = 0;
};

// Keeps every notification in memory (tests, examples).
class RecordingNotifier final : public Notifier {
 public:
  void notify(const Notification& notification) override { sent.push_back(notification); }
  std::vector<Notification> sent;
};

}  // namespace parley
