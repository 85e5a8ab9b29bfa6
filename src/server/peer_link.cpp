#include "peer_link.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <rapidjson/document.h>

#include "http_util.hpp"
#include "log.hpp"
#include "tls.hpp"

namespace parley::server {
namespace {

TlsFiles peer_tls_files(const Config& cfg) {
  return {"--peer-tls-", cfg.peer_tls_cert, cfg.peer_tls_key, cfg.peer_tls_ca};
}

void answer(httplib::Response& res, const Status& st) {
  res.status = st ? 204 : http_status_for(st.code());
  if (!st) res.set_content(error_json(st), "application/json");
}

}  // namespace

std::string shard_node_id(const std::string& node_id, int index) {
  return index == 0 ? node_id : node_id + "#" + std::to_string(index);
}

std::string process_of(const std::string& node_id) {
  return node_id.substr(0, node_id.rfind('#'));
}

int shard_of(const std::string& node_id) {
  const size_t hash = node_id.rfind('#');
  if (hash == std::string::npos) return 0;
  const std::string k = node_id.substr(hash + 1);
  if (k.empty() || k.size() > 3 || k.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoi(k);
}

PeerLink::PeerLink(const Config& cfg) : cfg_(cfg) {
  for (const PeerConfig& p : cfg_.peers) {
    if (p.node_id == cfg_.node_id) continue;
    HttpPoster::Options o;
    o.host = p.address.host;
    o.port = p.address.port;
    o.timeout_ms = cfg_.peer_timeout_ms;
    o.max_queued = 1024;
    o.authorization = "Bearer " + cfg_.cluster_secret;
    o.use_tls = cfg_.peer_tls();
    o.tls = peer_tls_files(cfg_);
    posters_[p.node_id] = std::make_unique<HttpPoster>(std::move(o));
  }
}

PeerLink::~PeerLink() {
  stop_listening();
  if (listener_thread_.joinable()) listener_thread_.join();
  posters_.clear();
}

void PeerLink::stop_listening() {
  if (listener_) listener_->stop();
}

int PeerLink::listen(Handlers handlers) {
  if (cfg_.peer_listen.host.empty()) return 0;
  if (cfg_.cluster_secret.empty()) {
    PARLEY_LOG_ERROR("--peer-listen needs --cluster-secret");
    return 2;
  }
  if (cfg_.peer_tls()) {
    // HTTPS; a caller must show a certificate that chains to --peer-tls-ca.
    Status st;
    listener_ = std::make_unique<httplib::SSLServer>([this, &st](SSL_CTX& ctx) {
      st = configure_tls_server(&ctx, peer_tls_files(cfg_));
      return st.is_ok();
    });
    if (!listener_->is_valid()) {
      PARLEY_LOG_ERROR("{}", st.message());
      return 1;
    }
  } else {
    listener_ = std::make_unique<httplib::Server>();
  }
  listener_->set_payload_max_length(64u << 20);
  listener_->set_read_timeout(static_cast<time_t>(cfg_.peer_timeout_ms / 1000 + 5), 0);
  // Idle peer connections are closed after 1 s (a sender reconnects when it
  // next has a batch: one TCP handshake). This also bounds how long stop()
  // waits for them, and so a node's shutdown in a cluster.
  listener_->set_keep_alive_timeout(1);
  listener_->set_tcp_nodelay(true);  // the answer is headers and body too (decision 42)
  const std::string expected = "Bearer " + cfg_.cluster_secret;
  auto authorized = [expected](const httplib::Request& req, httplib::Response& res) {
    if (constant_time_equal(req.get_header_value("Authorization"), expected)) return true;
    res.status = 403;
    res.set_content(error_json(error(Code::kPermissionDenied, "wrong cluster secret")), "application/json");
    return false;
  };
  listener_->Post("/v1/peer/batch", [authorized, h = handlers.batch](const httplib::Request& req,
                                                                      httplib::Response& res) {
    if (!authorized(req, res)) return;
    int shard = 0;
    if (req.has_param("shard")) {
      const std::string k = req.get_param_value("shard");
      if (k.empty() || k.size() > 3 || k.find_first_not_of("0123456789") != std::string::npos) {
        return answer(res, error(Code::kInvalidArgument, "shard must be a number"));
      }
      shard = std::stoi(k);
    }
    answer(res, h(req.body, shard));
  });
  // A notice of two string fields {a, b}, handed to `h`.
  auto notice = [this, authorized](const char* path, const char* a, const char* b,
                                   std::function<Status(const std::string&, const std::string&)> h) {
    const std::string want = fmt::format("want {{\"{}\",\"{}\"}}", a, b);
    listener_->Post(path, [authorized, a, b, want, h](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req, res)) return;
      rapidjson::Document doc;
      doc.Parse(req.body.data(), req.body.size());
      std::string x, y;
      Status st = doc.HasParseError() || !doc.IsObject() ? error(Code::kInvalidArgument, want)
                                                         : json_string_field(doc, a, &x);
      if (st) st = json_string_field(doc, b, &y);
      if (st) st = h(x, y);
      answer(res, st);
    });
  };
  notice("/v1/peer/member-removed", "g", "u", handlers.member_removed);
  notice("/v1/peer/disconnect", "u", "why", handlers.disconnect);
  if (!listener_->bind_to_port(cfg_.peer_listen.host, cfg_.peer_listen.port)) {
    PARLEY_LOG_ERROR("cannot listen for peers on {}", cfg_.peer_listen.to_string());
    return 1;
  }
  listener_thread_ = std::thread([this] { listener_->listen_after_bind(); });
  PARLEY_LOG_INFO("peer transport on {}{}", cfg_.peer_listen.to_string(),
                  cfg_.peer_tls() ? " (TLS; peers' certificates checked against --peer-tls-ca)" : "");
  return 0;
}

void PeerLink::add_local(const std::string& node_id, LocalPeer peer) {
  locals_[node_id] = std::move(peer);
}

bool PeerLink::send_batch(const std::string& node_id, Frame batch, HttpPoster::Done done) {
  if (auto local = locals_.find(node_id); local != locals_.end()) {
    local->second.batch(std::move(batch), std::move(done));
    return true;
  }
  const std::string process = process_of(node_id);
  const int shard = shard_of(node_id);
  auto it = posters_.find(process);
  if (it == posters_.end() || shard < 0) {
    PARLEY_LOG_WARN("no address for peer node '{}' (add --peer {}=HOST:PORT)", node_id, process);
    return false;
  }
  std::string path = shard == 0 ? "/v1/peer/batch" : "/v1/peer/batch?shard=" + std::to_string(shard);
  return it->second->post(std::move(path), std::move(batch), "application/msgpack", std::move(done));
}

void PeerLink::broadcast_member_removed(const std::string& group, const std::string& user) {
  for (auto& [id, local] : locals_) local.member_removed(group, user);
  broadcast("/v1/peer/member-removed", Json().str("g", group).str("u", user).done());
}

void PeerLink::broadcast_disconnect(const std::string& user, const std::string& why) {
  for (auto& [id, local] : locals_) local.disconnect(user, why);
  broadcast("/v1/peer/disconnect", Json().str("u", user).str("why", why).done());
}

void PeerLink::broadcast(const std::string& path, std::string json) {
  auto body = std::make_shared<const std::string>(std::move(json));
  for (auto& [id, poster] : posters_) {
    poster->post(path, body, "application/json", [peer = id, path](int status) {
      if (status != 204) PARLEY_LOG_WARN("peer {} did not take {} ({})", peer, path, status);
    });
  }
}

void PeerLink::for_each_peer(const std::function<void(const std::string&, size_t)>& fn) const {
  for (const auto& [id, poster] : posters_) fn(id, poster->queued());
  for (const auto& [id, local] : locals_) fn(id, 0);
}

}  // namespace parley::server
