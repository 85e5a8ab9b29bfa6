// ServerImpl's lifecycle: set-up (TLS, stores, node, HTTP API, peer link,
// WebSocket listener), run, and the clean shutdown (commit what was
// received, wait for the appends in flight, close every session).
#include "server_impl.hpp"

#include <filesystem>

namespace parley::server {

template <typename Ws>
int ServerImpl<Ws>::start() {
  LogLevel level = LogLevel::kInfo;
  parse_log_level(cfg_.log_level, &level);
  if (index_ == 0) {
    set_log_level(level);
    set_log_node(cfg_.node_id);
  }
  if (int rc = load_tls(); rc != 0) return rc;
  Status opened = stores_.open(
      cfg_,
      [this](StoreCompletions done) {
        asio::post(io_, [this, done = std::move(done)]() mutable { on_store_done(std::move(done)); });
      },
      set_ != nullptr ? set_->executor_stores.get() : nullptr);
  if (!opened) {
    PARLEY_LOG_ERROR("cannot open the store: {}", opened.to_string());
    return 1;
  }
  Result<std::string> secret = load_or_make_secret(cfg_.secret, cfg_.data_dir);
  if (!secret) {
    PARLEY_LOG_ERROR("{}", secret.status().to_string());
    return 1;
  }
  auth_ = std::make_unique<Auth>(*secret, cfg_.token_ttl_s * 1000, cfg_.dev);
  Result<std::string> api_key = load_or_make_secret(cfg_.api_key, cfg_.data_dir, "api-key");
  if (!api_key) {
    PARLEY_LOG_ERROR("{}", api_key.status().to_string());
    return 1;
  }
  auth_->set_api_key(*api_key);
  if (!cfg_.jwt_secret.empty() || !cfg_.jwks_file.empty()) {
    Result<std::unique_ptr<JwtVerifier>> jwt = JwtVerifier::make(JwtOptions{
        cfg_.jwt_secret, cfg_.jwks_file, cfg_.jwt_user_claim, cfg_.jwt_audience, cfg_.jwt_issuer,
        cfg_.jwt_leeway_s * 1000});
    if (!jwt) {
      PARLEY_LOG_ERROR("{}", jwt.status().to_string());
      return 1;
    }
    auth_->set_jwt(std::move(*jwt));
  }
  if (!cfg_.users_file.empty()) {
    if (Status st = auth_->load_users(cfg_.users_file); !st) {
      PARLEY_LOG_ERROR("{}", st.to_string());
      return 1;
    }
  } else if (!cfg_.dev) {
    PARLEY_LOG_WARN("neither --dev nor --users: nobody can log in");
  }
  if (!cfg_.webhook.empty()) {
    auto hook =
        WebhookNotifier::create(cfg_.webhook, cfg_.webhook_timeout_ms, cfg_.webhook_queue, notify_stats_);
    if (!hook) {
      PARLEY_LOG_ERROR("{}", hook.status().to_string());
      return 2;
    }
    notifier_ = std::move(*hook);
  } else {
    notifier_ = std::make_unique<LogNotifier>(notify_stats_);
  }
  peers_ = std::make_unique<PeerLink>(cfg_);
  if (set_ != nullptr) {
    for (auto& shard : set_->shards) {
      if (shard.get() == this) continue;
      ServerImpl* other = shard.get();
      peers_->add_local(other->node_id_, {[other](Frame batch, HttpPoster::Done done) {
                                            other->accept_local_batch(std::move(batch), std::move(done));
                                          },
                                          [other](const std::string& g, const std::string& u) {
                                            other->accept_local_notice(
                                                [g, u](Node& node) { node.member_removed(g, u); });
                                          },
                                          [other](const std::string& u, const std::string& why) {
                                            other->accept_local_notice(
                                                [u, why](Node& node) { node.disconnect_user(u, why); });
                                          }});
    }
  }
  make_node();
  if (Status st = node_->start(); !st) {
    PARLEY_LOG_ERROR("cannot start the node: {}", st.to_string());
    return 1;
  }
  make_api();
  if (cfg_.handle_signals) {
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    signals_.async_wait([this](const std::error_code& ec, int sig) {
      if (!ec) begin_shutdown(sig);
    });
  }
  if (int rc = start_peer_listener(); rc != 0) return rc;
  if (int rc = start_ws(); rc != 0) return rc;
  return 0;
}

template <typename Ws>
void ServerImpl<Ws>::stop() {
  asio::post(io_, [this] { begin_shutdown(0); });
}

template <typename Ws>
int ServerImpl<Ws>::run() {
  io_.run();
  PARLEY_LOG_INFO("stopped");
  return 0;
}

template <typename Ws>
int ServerImpl<Ws>::load_tls() {
  if constexpr (kTls) {
    tls_context_ = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    const TlsFiles files{"--tls-", cfg_.tls_cert, cfg_.tls_key, ""};
    if (Status st = configure_tls_server(tls_context_->native_handle(), files); !st) {
      PARLEY_LOG_ERROR("{}", st.message());
      return 1;
    }
  }
  if (cfg_.peer_tls()) {
    if (Status st = check_tls_files({"--peer-tls-", cfg_.peer_tls_cert, cfg_.peer_tls_key, cfg_.peer_tls_ca});
        !st) {
      PARLEY_LOG_ERROR("{}", st.message());
      return 1;
    }
  }
  return 0;
}

template <typename Ws>
void ServerImpl<Ws>::make_node() {
  NodeOptions o;
  o.node_id = node_id_;
  o.limits.max_contents_bytes = cfg_.max_contents_bytes;
  o.forward.mode =
      cfg_.forward == "fixed" ? BatchingForwarder::Mode::kFixed : BatchingForwarder::Mode::kAdaptive;
  o.forward.period_ms = cfg_.batch_ms;
  o.forward.call_timeout_ms = cfg_.peer_timeout_ms + 500;
  o.gap.grace_ms = cfg_.gap_grace_ms;
  o.policy.pull_min_members = cfg_.pull_min_members;
  o.policy.pull_enter_rate = cfg_.pull_enter_rate;
  o.policy.pull_exit_rate = cfg_.pull_exit_rate;
  o.session_queue_bytes = cfg_.session_queue_bytes;
  o.tail_per_group = cfg_.tail_per_group;
  o.max_sessions_per_user = cfg_.max_connections_per_user;
  o.send_rate_per_user = cfg_.send_rate;
  o.send_burst_per_user = cfg_.send_burst;
  o.report_last_failure = set_ == nullptr;  // shards: the gateway reports it (ShardSet::failures)
  o.seed = std::hash<std::string>()(node_id_) ^ static_cast<uint64_t>(clock_.now_ms());
  codec_ = std::shared_ptr<const ClientCodec>(make_json_codec());
  node_ = std::make_unique<Node>(o, stores_.node_stores(), *this, clock_, notifier_.get(), codec_);
  limits_ = o.limits;
}

template <typename Ws>
void ServerImpl<Ws>::make_api() {
  HttpApi::Context ctx{cfg_,
                       clock_,
                       *node_,
                       *auth_,
                       *codec_,
                       limits_,
                       [this](HttpApi::Task t) { asio::post(worker_, std::move(t)); },
                       [this](HttpApi::Task t) { asio::post(io_, std::move(t)); },
                       [this](const std::string& g, const std::string& u) { propagate_removal(g, u); },
                       [this](const std::string& g, EntryKind kind, const std::string& u, const std::string& subject) {
                         if (!cfg_.membership_entries) return;
                         if (Status st = node_->record_membership(g, kind, u, subject); !st) {
                           PARLEY_LOG_WARN("cannot record {} of {} in {}: {}", entry_kind_name(kind), u, g,
                                           st.to_string());
                         }
                         schedule_flush();
                       },
                       [this](const std::string& user, const SendReq& r, Node::RequestDone done) {
                         node_->send_as(user, r, std::move(done));
                         schedule_flush();
                       },
                       [this](const std::string& user, const ReadReq& r, Node::RequestDone done) {
                         node_->read_as(user, r, std::move(done));
                         schedule_flush();
                       },
                       [this](const std::string& g, const std::string& author, const std::string& cid,
                              const std::string& text, const std::string& meta, Node::RequestDone done) {
                         Status st = node_->record_system(g, author, cid, text, meta, std::move(done));
                         schedule_flush();
                         return st;
                       },
                       [this](const std::string& u, const std::string& why) { disconnect_everywhere(u, why); },
                       [this](std::function<void(std::string)> done) { metrics(std::move(done)); }};
  api_ = std::make_unique<HttpApi>(std::move(ctx));
}

template <typename Ws>
int ServerImpl<Ws>::start_ws() {
  ws_.init_asio(&io_);
  ws_.set_reuse_addr(true);
  ws_.set_max_message_size(cfg_.max_frame_bytes);
  ws_.set_max_http_body_size(cfg_.max_http_body_bytes);
  ws_.set_listen_backlog(4096);
  if (count_ > 1) {
    // Every shard listens on the same port; the kernel spreads the
    // connections between them.
    ws_.set_tcp_pre_bind_handler([](const auto& acceptor) {
      websocketpp::lib::error_code ec;
      acceptor->set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
      return ec;
    });
  }
  ws_.set_open_handshake_timeout(cfg_.handshake_timeout_ms);
  ws_.set_validate_handler([this](Hdl h) { return on_validate(h); });
  ws_.set_open_handler([this](Hdl h) { on_open(h); });
  ws_.set_close_handler([this](Hdl h) { on_close(h, false); });
  ws_.set_fail_handler([this](Hdl h) { on_close(h, true); });
  ws_.set_message_handler([this](Hdl h, WsMessagePtr m) { on_message(h, m); });
  ws_.set_pong_handler([this](Hdl h, std::string) { heard(ws_.get_con_from_hdl(h)); });
  ws_.set_ping_handler([this](Hdl h, std::string) {
    heard(ws_.get_con_from_hdl(h));
    return true;  // websocketpp answers with a pong
  });
  ws_.set_http_handler([this](Hdl h) { on_http(h); });
  if constexpr (kTls) {
    ws_.set_tls_init_handler([this](Hdl) { return tls_context_; });
  }
  websocketpp::lib::error_code ec;
  asio::ip::tcp::endpoint ep(asio::ip::make_address(cfg_.listen.host, ec), cfg_.listen.port);
  if (ec) {
    PARLEY_LOG_ERROR("--listen: bad address '{}': {}", cfg_.listen.host, ec.message());
    return 2;
  }
  ws_.listen(ep, ec);
  if (ec) {
    PARLEY_LOG_ERROR("cannot listen on {}: {}", cfg_.listen.to_string(), ec.message());
    return 1;
  }
  ws_.start_accept(ec);
  asio::ip::tcp::endpoint local = ws_.get_local_endpoint(ec);
  port_ = local.port();
  if (set_ == nullptr) announce();
  return 0;
}

template <typename Ws>
void ServerImpl<Ws>::announce() {
  Endpoint shown{cfg_.listen.host, port_};
  fmt::print("parley-server {} node {} listening on {}://{}/ (web client; WebSocket at /v1/ws)\n",
             PARLEY_VERSION_STRING, cfg_.node_id, kTls ? "https" : "http", shown.to_string());
  std::fflush(stdout);
  PARLEY_LOG_INFO("store: {}; login: {}; server API key: {}; notifications: {}; peers: {}; threads: {}",
                  cfg_.store == "memory"  ? std::string("memory")
                  : cfg_.store == "redis" ? "redis at " + cfg_.redis
                                          : cfg_.db,
                  cfg_.dev ? "dev (any name)" : "users file",
                  cfg_.api_key.empty() ? (std::filesystem::path(cfg_.data_dir) / "api-key").string()
                                       : std::string("--api-key"),
                  cfg_.webhook.empty() ? std::string("log") : cfg_.webhook, peers_->peers(), count_);
}

template <typename Ws>
int ServerImpl<Ws>::start_peer_listener() {
  PeerLink::Handlers h;
  // One listener per process (shard 0's): a batch goes to the shard it
  // names, a removal to every shard.
  h.batch = [this](const std::string& body, int shard) {
    ServerImpl* to = this;
    if (shard != index_) {
      if (set_ == nullptr || shard < 0 || static_cast<size_t>(shard) >= set_->shards.size()) {
        return error(Code::kNotFound, fmt::format("node {} has no shard {}", cfg_.node_id, shard));
      }
      to = set_->shards[static_cast<size_t>(shard)].get();
    }
    return to->template on_io<Status>([to, &body] {
      Status s = to->node_->on_peer_batch(body.data(), body.size());
      to->schedule_flush();
      return s;
    });
  };
  // A peer's notice for every shard of this process, each on its own thread.
  auto on_every_shard = [this](std::function<void(Node&)> fn) {
    std::vector<ServerImpl*> all{this};
    if (set_ != nullptr) {
      all.clear();
      for (auto& shard : set_->shards) all.push_back(shard.get());
    }
    Status result = Status::ok();
    for (ServerImpl* to : all) {
      Status s = to->template on_io<Status>([to, fn] {  // copies: on_io may give up before it runs
        fn(*to->node_);
        to->schedule_flush();
        return Status::ok();
      });
      if (!s && result) result = s;
    }
    return result;
  };
  h.member_removed = [on_every_shard](const std::string& g, const std::string& u) {
    return on_every_shard([g, u](Node& node) { node.member_removed(g, u); });
  };
  h.disconnect = [on_every_shard](const std::string& u, const std::string& why) {
    return on_every_shard([u, why](Node& node) { node.disconnect_user(u, why); });
  };
  return peers_->listen(std::move(h));
}

template <typename Ws>
void ServerImpl<Ws>::begin_shutdown(int sig) {
  if (shutting_down_) return;
  shutting_down_ = true;
  if (sig != 0) {
    PARLEY_LOG_INFO("signal {}: shutting down", sig);
  } else {
    PARLEY_LOG_INFO("shutting down");
  }
  websocketpp::lib::error_code ec;
  ws_.stop_listening(ec);
  // Commit what was received and queue its acks; once every append is
  // back, close every session after its queued frames. Frames arriving from
  // now on are refused. Whatever is still open after 3 s is cut.
  node_->flush();
  end_turn();
  shutdown_timer_.expires_after(std::chrono::seconds(3));
  shutdown_timer_.async_wait([this](const std::error_code& e) {
    if (!e) finish_shutdown();
  });
  close_sessions_when_committed();
}

template <typename Ws>
void ServerImpl<Ws>::close_sessions_when_committed() {
  if (sessions_closing_ || node_->appends_in_flight() > 0) return;
  sessions_closing_ = true;
  websocketpp::lib::error_code ec;
  for (auto& [id, con] : sessions_)
    con->close(websocketpp::close::status::going_away, "server shutting down", ec);
  check_drains();
  if (sessions_.empty()) finish_shutdown();
}

template <typename Ws>
void ServerImpl<Ws>::finish_shutdown() {
  if (finished_) return;
  finished_ = true;
  io_stopped_ = true;
  peers_->stop_listening();
  node_timer_.cancel();
  idle_timer_.cancel();
  expiry_timer_.cancel();
  drain_timer_.cancel();
  shutdown_timer_.cancel();
  signals_.cancel();
  std::vector<ConnPtr> open;  // terminate() runs on_close, which edits sessions_
  for (auto& [id, con] : sessions_) open.push_back(con);
  for (const ConnPtr& con : open) con->terminate(websocketpp::lib::error_code());
  io_.stop();
}

// ---- idle timeout and token expiry --------------------------------------------

template <typename Ws>
void ServerImpl<Ws>::arm_expiry_sweep() {
  if (expiry_sweep_armed_ || expiries_.empty() || shutting_down_) return;
  expiry_sweep_armed_ = true;
  const int64_t wait = std::clamp<int64_t>(expiries_.begin()->first - clock_.now_ms(), 0, 1000);
  expiry_timer_.expires_after(std::chrono::milliseconds(wait));
  expiry_timer_.async_wait([this](const std::error_code& ec) {
    expiry_sweep_armed_ = false;
    if (ec || shutting_down_) return;
    const int64_t now = clock_.now_ms();
    while (!expiries_.empty() && expiries_.begin()->first <= now) {
      const SessionId id = expiries_.begin()->second;
      expiries_.erase(expiries_.begin());
      if (sessions_.count(id) == 0) continue;  // closed before its token expired
      node_->end_session(id, error(Code::kUnauthenticated, "token expired"), "token_expired");
    }
    schedule_flush();
    arm_expiry_sweep();
  });
}

template <typename Ws>
void ServerImpl<Ws>::arm_idle_sweep() {
  if (cfg_.idle_timeout_ms <= 0 || idle_sweep_armed_ || shutting_down_) return;
  idle_sweep_armed_ = true;
  idle_timer_.expires_after(std::chrono::milliseconds(std::max<int64_t>(cfg_.idle_timeout_ms / 4, 25)));
  idle_timer_.async_wait([this](const std::error_code& ec) {
    idle_sweep_armed_ = false;
    if (ec || shutting_down_) return;
    sweep_idle();
    if (!sessions_.empty()) arm_idle_sweep();
  });
}

template <typename Ws>
void ServerImpl<Ws>::sweep_idle() {
  const int64_t now = steady_ms();
  std::vector<ConnPtr> silent;
  for (auto& [id, con] : sessions_) {
    const int64_t quiet = now - con->heard_ms;
    if (quiet >= cfg_.idle_timeout_ms && !con->idle_closed) {
      silent.push_back(con);
    } else if (quiet >= cfg_.idle_timeout_ms / 2 && !con->pinged) {
      con->pinged = true;
      websocketpp::lib::error_code ec;
      con->ping("", ec);
    }
  }
  for (const ConnPtr& con : silent) {
    PARLEY_LOG_INFO("session {} of {}: nothing heard for {} ms, closing", con->session, con->user,
                    now - con->heard_ms);
    con->idle_closed = true;
    ++gw_.idle_closed;
    websocketpp::lib::error_code ec;
    con->close(websocketpp::close::status::going_away, "idle_timeout", ec);
  }
}

template class ServerImpl<PlainWsConfig>;
template class ServerImpl<TlsWsConfig>;

}  // namespace parley::server
