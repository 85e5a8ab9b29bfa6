#include "notifiers.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "parley/server/config.hpp"
#include "log.hpp"

namespace parley::server {

std::string notification_json(const Notification& n) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto str = [&w](const char* k, const std::string& v) {
    w.Key(k);
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  };
  w.StartObject();
  str("user", n.user_id);
  str("group", n.group_id);
  w.Key("epoch"), w.Uint64(n.epoch);
  w.Key("msg_id"), w.Uint64(n.msg_id);
  str("sender", n.sender_id);
  str("preview", n.preview);
  str("reason", n.reason);
  w.Key("mentioned"), w.Bool(n.mentioned);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

void LogNotifier::notify(const Notification& n) {
  ++stats_.queued;
  ++stats_.delivered;
  PARLEY_LOG_INFO("notify {} ({}{}): {}#{} from {}", n.user_id, n.reason, n.mentioned ? ", mentioned" : "",
                  n.group_id, n.msg_id, n.sender_id);
}

Result<std::unique_ptr<WebhookNotifier>> WebhookNotifier::create(const std::string& url, int64_t timeout_ms,
                                                                 size_t max_queued, NotifierStats& stats) {
  const std::string scheme = "http://";
  if (url.compare(0, scheme.size(), scheme) != 0) {
    return error(Code::kInvalidArgument, "--webhook must be an http:// URL");
  }
  size_t slash = url.find('/', scheme.size());
  std::string authority =
      url.substr(scheme.size(), slash == std::string::npos ? std::string::npos : slash - scheme.size());
  std::string path = slash == std::string::npos ? "/" : url.substr(slash);
  Endpoint ep;
  if (authority.find(':') == std::string::npos || authority.back() == ']') authority += ":80";
  if (!parse_endpoint(authority, &ep)) return error(Code::kInvalidArgument, "--webhook: bad host or port");
  HttpPoster::Options o;
  o.host = ep.host;
  o.port = ep.port;
  o.timeout_ms = timeout_ms;
  o.max_queued = max_queued;
  return std::unique_ptr<WebhookNotifier>(new WebhookNotifier(std::move(o), std::move(path), stats));
}

WebhookNotifier::WebhookNotifier(HttpPoster::Options options, std::string path, NotifierStats& stats)
    : path_(std::move(path)), stats_(stats), poster_(std::move(options)) {}

void WebhookNotifier::notify(const Notification& n) {
  auto body = std::make_shared<const std::string>(notification_json(n));
  NotifierStats* stats = &stats_;
  bool queued = poster_.post(path_, body, "application/json", [stats](int status) {
    if (status >= 200 && status < 300) {
      ++stats->delivered;
    } else {
      ++stats->failed;
      PARLEY_LOG_WARN("webhook answered {}",
                      status == 0 ? std::string("nothing (timeout or refused)") : std::to_string(status));
    }
  });
  if (queued) {
    ++stats_.queued;
  } else {
    ++stats_.dropped;
    PARLEY_LOG_WARN("webhook queue full: notification for {} dropped", n.user_id);
  }
}

}  // namespace parley::server
