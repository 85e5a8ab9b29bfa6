// Offline notifications for parley-server (the seed design's notification
// service): the core hands a Notification for every message a member did
// not get live; these notifiers pass it on.
//  - LogNotifier writes one log line per notification.
//  - WebhookNotifier POSTs it as JSON to a push gateway, from a worker thread
//    with a bounded queue and a timeout; when the queue is full the
//    notification is dropped and counted (the message stays in history).
// Both are called on the node's thread and never block it.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "http_poster.hpp"
#include "parley/notifier.hpp"
#include "parley/status.hpp"

namespace parley::server {

struct NotifierStats {
  std::atomic<uint64_t> queued{0};
  std::atomic<uint64_t> delivered{0};  // webhook answered 2xx
  std::atomic<uint64_t> failed{0};     // webhook error or non-2xx
  std::atomic<uint64_t> dropped{0};    // queue full
};

// The JSON body: {"user","group","epoch","msg_id","sender","preview","reason"}.
std::string notification_json(const Notification& n);

class LogNotifier final : public Notifier {
 public:
  explicit LogNotifier(NotifierStats& stats) : stats_(stats) {}
  void notify(const Notification& n) override;

 private:
  NotifierStats& stats_;
};

class WebhookNotifier final : public Notifier {
 public:
  // url: http://HOST[:PORT]/PATH. kInvalidArgument if it is not one.
  static Result<std::unique_ptr<WebhookNotifier>> create(const std::string& url, int64_t timeout_ms,
                                                         size_t max_queued, NotifierStats& stats);
  void notify(const Notification& n) override;

 private:
  WebhookNotifier(HttpPoster::Options options, std::string path, NotifierStats& stats);
  std::string path_;
  NotifierStats& stats_;
  HttpPoster poster_;
};

}  // namespace parley::server
