// ServerImpl<Ws>, the server behind parley::server::Server: it owns the
// io_context, the websocketpp endpoint (plain or TLS), the node and its
// turns, and puts the other parts together: ServerStores (the stores and the
// store executor), HttpApi (the HTTP routes, over plain values), PeerLink
// (the transport between nodes) and render_metrics (/metrics). The
// WebSocket gateway (NodeHost, turns, WebSocket and HTTP handlers, the idle
// timeout) is defined here; set-up and shutdown are in lifecycle.cpp. One
// ServerImpl is one shard: what the shards of a --threads N process share
// is in shard_set.hpp, and the process of N shards in sharded_server.hpp.
// Internal: included by server.cpp, sharded_server.hpp and lifecycle.cpp.
#pragma once

#include "parley/server/server.hpp"

#include <asio.hpp>
#include <websocketpp/server.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "auth.hpp"
#include "http_api.hpp"
#include "http_target.hpp"
#include "http_util.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "notifiers.hpp"
#include "parley/node.hpp"
#include "parley/version.hpp"
#include "peer_link.hpp"
#include "server_stores.hpp"
#include "shard_set.hpp"
#include "tls.hpp"
#include "ws_config.hpp"

namespace parley::server {

// What Server forwards to.
class Server::Impl {
 public:
  virtual ~Impl() = default;
  virtual int start() = 0;
  virtual int run() = 0;
  virtual void stop() = 0;
  virtual uint16_t port() const = 0;
};

// The server on one kind of websocketpp endpoint: Ws is PlainWsConfig or
// TlsWsConfig (--tls-cert). The endpoint's connection type runs through
// every handler, so the gateway is the template; only start_ws() and
// load_tls() differ between the two. One ServerImpl is one shard; a
// process with --threads 1 has one, and no ShardSet.
template <typename Ws>
class ServerImpl final : public Server::Impl, public NodeHost {
  using WsServer = websocketpp::server<Ws>;
  using ConnPtr = typename WsServer::connection_ptr;
  using WsMessagePtr = typename WsServer::message_ptr;
  static constexpr bool kTls = std::is_same_v<Ws, TlsWsConfig>;

 public:
  explicit ServerImpl(Config config, ShardSet<Ws>* set = nullptr, int index = 0, int count = 1)
      : cfg_(std::move(config)),
        set_(set),
        index_(index),
        count_(count),
        node_id_(shard_node_id(cfg_.node_id, index)) {}

  ~ServerImpl() override {
    peers_.reset();  // stops the listener, whose handlers post here
    worker_.join();
  }

  int start() override;

  void stop() override;
  uint16_t port() const override { return port_; }

  int run() override;

  // Prints the listening line (a sharded process: once every shard listens).
  void announce();
  // Shards after the first listen on the port the first one bound (port 0).
  void listen_on_port(uint16_t port) { cfg_.listen.port = port; }

  // ---- local peers (the other shards of this process) ----------------------

  // A batch from another shard, on its thread: carried over to this one;
  // `done` runs here.
  void accept_local_batch(Frame batch, HttpPoster::Done done) {
    asio::post(io_, [this, batch = std::move(batch), done = std::move(done)] {
      if (finished_) return done(503);
      Status s = node_->on_peer_batch(batch->data(), batch->size());
      schedule_flush();
      done(s ? 204 : http_status_for(s.code()));
    });
  }

  // Another shard's notice (a removal, a disconnect), carried to this one.
  void accept_local_notice(std::function<void(Node&)> fn) {
    asio::post(io_, [this, fn = std::move(fn)] {
      if (finished_) return;
      fn(*node_);
      schedule_flush();
    });
  }

  // This shard's /metrics figures, on its thread, to `done` (any thread).
  void take_metrics(std::function<void(MetricsSources)> done) {
    asio::post(io_, [this, done = std::move(done)] { done(metrics_here()); });
  }

  // ---- NodeHost ------------------------------------------------------------

  void send_to_session(SessionId session, const std::vector<Frame>& frames) override {
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return;
    const ConnPtr& con = it->second;
    for (const Frame& f : frames) {
      con->send(prepared(f));
      con->handed += f->size();
      gw_.frames_out++;
    }
    draining_.insert(session);
  }

  // The WebSocket frame (header + payload) for `frame`, built once per turn
  // and shared by every connection it goes to: websocketpp queues a prepared
  // message as it is, so a delivery costs no copy, allocation or UTF-8 check.
  // (Server frames are unmasked and uncompressed, so they are identical for
  // every connection.) The cache holds the Frame, so its address stays unique.
  WsMessagePtr prepared(const Frame& frame) {
    auto it = prepared_.find(frame.get());
    if (it != prepared_.end()) return it->second.second;
    auto msg = std::make_shared<typename Ws::message_type>(nullptr, websocketpp::frame::opcode::text, 0);
    msg->set_payload(*frame);
    websocketpp::frame::basic_header h(websocketpp::frame::opcode::text, frame->size(), /*fin=*/true,
                                       /*masked=*/false, /*compressed=*/false);
    msg->set_header(
        websocketpp::frame::prepare_header(h, websocketpp::frame::extended_header(frame->size())));
    msg->set_prepared(true);
    prepared_.emplace(frame.get(), std::make_pair(frame, msg));
    return msg;
  }

  void close_session(SessionId session, const Status& reason) override {
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return;
    PARLEY_LOG_INFO("closing session {} of {}: {}", session, it->second->user, reason.to_string());
    if (set_ != nullptr && !reason.is_ok()) {
      remember_failure(it->second->user, reason);
      node_closed_.insert(session);
    }
    websocketpp::lib::error_code ec;
    it->second->close(reason.code() == Code::kBackpressure || reason.code() == Code::kPermissionDenied ||
                              reason.code() == Code::kUnauthenticated
                          ? websocketpp::close::status::policy_violation
                          : websocketpp::close::status::internal_endpoint_error,
                      std::string(code_name(reason.code())), ec);
  }

  void send_to_node(const std::string& node_id, uint64_t call_id, const Frame& batch) override {
    peer_batch_bytes_.observe(static_cast<double>(batch->size()));
    const bool queued = peers_->send_batch(node_id, batch, [this, node_id, call_id](int status) {
      asio::post(io_, [this, node_id, call_id, status] {
        if (status != 204) PARLEY_LOG_DEBUG("peer {} answered {}", node_id, status);
        node_->on_peer_result(node_id, call_id, status == 204);
        schedule_flush();
      });
    });
    if (!queued) {
      asio::post(io_, [this, node_id, call_id] {
        node_->on_peer_result(node_id, call_id, false);
        schedule_flush();
      });
    }
  }

  void set_timer(int64_t at_ms) override {
    const int64_t delay = std::max<int64_t>(0, at_ms - clock_.now_ms());
    node_timer_.expires_after(std::chrono::milliseconds(delay));
    node_timer_.async_wait([this](const std::error_code& ec) {
      if (ec) return;
      node_->on_timer();
      end_turn();
    });
  }

 private:
  // ---- set-up --------------------------------------------------------------

  // Loads and checks every certificate and key before anything else starts,
  // so that a bad one is a startup error (exit 1) naming the file and
  // OpenSSL's reason. The peer files are loaded again by each HttpPoster and
  // by the peer listener, each into its own context.
  int load_tls();

  void make_node();

  void make_api();

  int start_ws();

  // ---- store completions -----------------------------------------------------

  // What one round of the store executor finished (reads, then the appends
  // of one commit), on the I/O thread.
  void on_store_done(StoreCompletions done) {
    check_drains();  // what was written since: the queue bounds see the sockets as they are now
    complete(*node_, std::move(done));
    node_->flush();
    end_turn();
    if (shutting_down_) close_sessions_when_committed();
  }

  // ---- turns ---------------------------------------------------------------

  // Ends the current turn soon: everything that arrives before the posted
  // handler runs is committed and written together.
  void schedule_flush() {
    if (flush_pending_) return;
    flush_pending_ = true;
    asio::post(io_, [this] {
      flush_pending_ = false;
      node_->flush();
      end_turn();
    });
  }

  void end_turn() {
    prepared_.clear();
    check_drains();
  }

  // Tells the node how much of what it handed each connection has left
  // websocketpp's queue (its backpressure signal).
  void check_drains() {
    for (auto it = draining_.begin(); it != draining_.end();) {
      auto s = sessions_.find(*it);
      if (s == sessions_.end()) {
        it = draining_.erase(it);
        continue;
      }
      ConnData& c = *s->second;
      const size_t buffered = s->second->get_buffered_amount();
      const size_t written = c.handed > buffered ? c.handed - buffered : 0;
      if (written > c.reported) {
        node_->on_session_drained(*it, written - c.reported);
        c.reported = written;
      }
      it = c.reported >= c.handed ? draining_.erase(it) : std::next(it);
    }
    if (!draining_.empty() && !drain_timer_armed_) {
      drain_timer_armed_ = true;
      drain_timer_.expires_after(std::chrono::milliseconds(5));
      drain_timer_.async_wait([this](const std::error_code& ec) {
        drain_timer_armed_ = false;
        if (!ec) check_drains();
      });
    }
  }

  // ---- WebSocket -------------------------------------------------------------

  bool on_validate(Hdl h) {
    ConnPtr con = ws_.get_con_from_hdl(h);
    Target t = parse_target(con->get_resource());
    if (shutting_down_) return reject(con, error(Code::kUnavailable, "the server is shutting down"));
    // RFC 6455 only (websocketpp would also speak the old hixie-76 drafts),
    // with a well-formed key: 16 bytes in base64.
    if (con->get_request_header("Sec-WebSocket-Version") != "13") {
      con->replace_header("Sec-WebSocket-Version", "13");
      return reject(con, error(Code::kInvalidArgument, "Sec-WebSocket-Version must be 13"));
    }
    const std::string key = con->get_request_header("Sec-WebSocket-Key");
    if (key.size() != 24 || key.compare(22, 2, "==") != 0 ||
        key.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") !=
            std::string::npos ||
        key.find('=') != 22) {
      return reject(con, error(Code::kInvalidArgument, "malformed Sec-WebSocket-Key"));
    }
    if (t.segments != std::vector<std::string>{"v1", "ws"}) {
      return reject(con, error(Code::kNotFound, "WebSocket endpoint is /v1/ws"));
    }
    std::string token =
        t.query.count("token") ? t.query["token"] : bearer_token(con->get_request_header("Authorization"));
    Result<TokenClaims> claims = auth_->verify(token, clock_.now_ms());
    if (!claims) {
      ++gw_.auth_failures;
      return reject(con, claims.status());
    }
    con->user = claims->user;
    con->expires_at_ms = claims->valid_until_ms;
    return true;
  }

  bool reject(const ConnPtr& con, const Status& st) {
    con->set_status(static_cast<websocketpp::http::status_code::value>(http_status_for(st.code())));
    con->replace_header("Content-Type", "application/json");
    con->replace_header("Connection", "close");
    con->set_body(error_json(st));
    return false;
  }

  void on_open(Hdl h) {
    ConnPtr con = ws_.get_con_from_hdl(h);
    // TCP_NODELAY: a turn's frames for a socket already leave in one write,
    // and with Nagle a write issued while the previous one is unacknowledged
    // waits for the client's delayed ACK (40 ms on Linux).
    std::error_code nodelay_ec;
    con->get_raw_socket().set_option(asio::ip::tcp::no_delay(true), nodelay_ec);
    // The handshake is done with (the user was taken from it at validation).
    const_cast<Request&>(con->get_request()).shed();
    const_cast<Response&>(con->get_response()).shed();
    const SessionId id = ++next_session_ * static_cast<SessionId>(count_) + static_cast<SessionId>(index_);
    con->session = id;
    std::string hello = Json()
                            .str("t", "hello")
                            .str("u", con->user)
                            .str("node", cfg_.node_id)
                            .u64("session", id)
                            .u64("shard", static_cast<uint64_t>(index_))
                            .u64("max_contents", cfg_.max_contents_bytes)
                            .done();
    con->send(hello, websocketpp::frame::opcode::text);
    Status st = claim_connection(con->user);
    if (st) {
      st = node_->open_session(id, con->user);
      if (!st) release_connection(con->user);
    }
    if (!st) {
      websocketpp::lib::error_code ec;
      if (st.code() == Code::kLimitExceeded) {
        // The client is told why (error event), then closed as a policy violation.
        con->send(error_event_json(st), websocketpp::frame::opcode::text);
        con->close(websocketpp::close::status::policy_violation, code_name(st.code()), ec);
        return;
      }
      PARLEY_LOG_WARN("cannot open a session for {}: {}", con->user, st.to_string());
      con->close(websocketpp::close::status::internal_endpoint_error, code_name(st.code()), ec);
      return;
    }
    report_failure(id, con->user);
    sessions_[id] = con;
    heard(con);
    arm_idle_sweep();
    expiries_.emplace(con->expires_at_ms, id);
    arm_expiry_sweep();
    ++gw_.connections_opened;
    PARLEY_LOG_DEBUG("session {} opened for {}", id, con->user);
    schedule_flush();
  }

  void on_close(Hdl h, bool failed) {
    ConnPtr con = ws_.get_con_from_hdl(h);
    if (con->session == 0) return;
    const SessionId id = con->session;
    con->session = 0;
    if (sessions_.erase(id) == 0) return;
    for (auto [at, end] = expiries_.equal_range(con->expires_at_ms); at != end; ++at) {
      if (at->second == id) {
        expiries_.erase(at);
        break;
      }
    }
    release_connection(con->user);
    ++gw_.connections_closed;
    // A clean close (normal / going away, either side) ends the session; any
    // other end is a failure whose reason the user hears about.
    const auto code = con->get_remote_close_code();
    const bool clean = !failed && (code == websocketpp::close::status::normal ||
                                   code == websocketpp::close::status::going_away ||
                                   con->get_local_close_code() == websocketpp::close::status::going_away);
    Status reason = Status::ok();
    if (con->idle_closed) {
      reason = error(Code::kUnavailable, "idle timeout: no frame and no pong");
    } else if (!clean) {
      std::string why = failed ? con->get_ec().message()
                               : fmt::format("connection closed with code {} {}", static_cast<int>(code),
                                             con->get_remote_close_reason());
      reason = error(Code::kUnavailable, why);
    }
    PARLEY_LOG_DEBUG("session {} of {} ended: {}", id, con->user, reason.to_string());
    if (node_closed_.erase(id) == 0 && set_ != nullptr && !reason.is_ok()) remember_failure(con->user, reason);
    node_->close_session(id, reason);
    schedule_flush();
    if (shutting_down_ && sessions_.empty()) finish_shutdown();
  }

  void on_message(Hdl h, WsMessagePtr msg) {
    ConnPtr con = ws_.get_con_from_hdl(h);
    if (con->session == 0 || shutting_down_) return;  // refused: the client resends after reconnecting
    heard(con);
    ++gw_.frames_in;
    const std::string& payload = msg->get_payload();
    if (msg->get_opcode() != websocketpp::frame::opcode::text) {
      std::string e = codec_->encode_event(ErrorEv{
          0, Code::kInvalidArgument, "binary frames are not supported: send JSON text frames", "", ""});
      con->send(e, websocketpp::frame::opcode::text);
      return;
    }
    node_->on_client_frame(con->session, payload.data(), payload.size());
    schedule_flush();
  }

  // With shards, --max-connections-per-user counts the user's connections
  // in every shard of the process (each node counts only its own).
  Status claim_connection(const std::string& user) {
    if (set_ == nullptr || cfg_.max_connections_per_user == 0) return Status::ok();
    std::lock_guard<std::mutex> lock(set_->users_mu);
    size_t& n = set_->users[user];
    if (n >= cfg_.max_connections_per_user) {
      return error(Code::kLimitExceeded, fmt::format("'{}' has {} connections to this node; the limit is {}",
                                                     user, n, cfg_.max_connections_per_user));
    }
    ++n;
    return Status::ok();
  }

  void release_connection(const std::string& user) {
    if (set_ == nullptr || cfg_.max_connections_per_user == 0) return;
    std::lock_guard<std::mutex> lock(set_->users_mu);
    auto it = set_->users.find(user);
    if (it != set_->users.end() && --it->second == 0) set_->users.erase(it);
  }

  // With shards, the user's next connection is told why the last one
  // failed, whichever shard it reaches (the node's own report is off).
  void remember_failure(const std::string& user, const Status& reason) {
    std::lock_guard<std::mutex> lock(set_->users_mu);
    set_->failures[user] = reason;
  }

  void report_failure(SessionId id, const std::string& user) {
    if (set_ == nullptr) return;
    Status reason;
    {
      std::lock_guard<std::mutex> lock(set_->users_mu);
      auto it = set_->failures.find(user);
      if (it == set_->failures.end()) return;
      reason = it->second;
      set_->failures.erase(it);
    }
    node_->report_previous_failure(id, reason);
  }

  // ---- idle timeout and token expiry (lifecycle.cpp) -------------------------

  // A client that sends nothing (no frame, no ping, no pong) for half of
  // --idle-timeout-ms is pinged; one still silent after the whole timeout is
  // closed with 1001 "idle_timeout" and its session ends as a failure
  // (unavailable). Browsers and WebSocket libraries answer pings by
  // themselves, so a live client that only listens is never cut off. One
  // sweep over the sessions every quarter of the timeout, while any is open.
  static int64_t steady_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
  }

  void heard(const ConnPtr& con) {
    con->heard_ms = steady_ms();
    con->pinged = false;
  }

  // A session lives as long as its token: once a second (while any session
  // is open) the sessions whose token expired are told and closed.
  void arm_expiry_sweep();
  void arm_idle_sweep();
  void sweep_idle();

  // ---- HTTP ------------------------------------------------------------------

  // A plain HTTP request: answered by the route table, at once or later
  // (deferred: login).
  void on_http(Hdl h) {
    ConnPtr con = ws_.get_con_from_hdl(h);
    HttpRequest req{con->get_request().get_method(), con->get_resource(),
                    con->get_request_header("Authorization"), con->get_request_header("If-None-Match"),
                    con->get_request_body()};
    auto answered = std::make_shared<bool>(false);
    auto deferred = std::make_shared<bool>(false);
    api_->handle(req, [this, con, answered, deferred](HttpResponse r) {
      *answered = true;
      write_response(con, r);
      if (*deferred) {
        websocketpp::lib::error_code ec;
        con->send_http_response(ec);
      }
    });
    if (!*answered) {
      *deferred = true;
      con->defer_http_response();
    }
  }

  void write_response(const ConnPtr& con, const HttpResponse& r) {
    con->set_status(static_cast<websocketpp::http::status_code::value>(r.status));
    con->replace_header("Content-Type", r.content_type);
    con->replace_header("Cache-Control", "no-store");
    // websocketpp ends plain HTTP connections after one response; say so, so
    // keep-alive clients do not reuse a closed connection.
    con->replace_header("Connection", "close");
    for (const auto& [k, v] : r.headers) con->replace_header(k, v);
    con->set_body(r.body);
    ++gw_.http_responses[r.status];
  }

  // The app ends a user's sessions: here, on this process's other shards,
  // and on every peer (best effort).
  void disconnect_everywhere(const std::string& u, const std::string& why) {
    const size_t n = node_->disconnect_user(u, why);
    PARLEY_LOG_INFO("the app disconnected {} ({} sessions here)", u, n);
    schedule_flush();
    peers_->broadcast_disconnect(u, why);
  }

  // A member is gone: its sessions here stop receiving the group at once,
  // and every peer is told (best effort; head sync does not need it).
  void propagate_removal(const std::string& g, const std::string& user) {
    node_->member_removed(g, user);
    schedule_flush();
    peers_->broadcast_member_removed(g, user);
  }

  MetricsSources metrics_here() {
    MetricsSources m;
    m.node = node_->stats();
    m.forwarder = node_->forwarder_stats();
    m.notifications_delivered = notify_stats_.delivered.load();
    m.notifications_failed = notify_stats_.failed.load();
    m.notifications_dropped = notify_stats_.dropped.load();
    m.gateway = gw_;
    m.connections = sessions_.size();
    m.http_auth_failures = api_->auth_failures();
    m.appends_in_flight = node_->appends_in_flight();
    m.reads_in_flight = node_->reads_in_flight();
    m.lookups_in_flight = node_->lookups_in_flight();
    m.store_jobs_in_flight = node_->store_jobs_in_flight();
    // A shared executor's timings are counted once, by shard 0.
    const TimedMessageStore* timings = &stores_.appends();
    if (stores_.shares_executor()) timings = index_ == 0 ? &set_->executor_stores->appends() : nullptr;
    if (timings != nullptr) {
      m.append_seconds = timings->append_seconds().counts();
      m.read_seconds = timings->read_seconds().counts();
      m.append_batch = timings->append_batch().counts();
    }
    m.peer_batch_bytes = peer_batch_bytes_.counts();
    peers_->for_each_peer([&](const std::string& id, size_t calls) {
      m.peers.push_back({id, node_->peer_queued_items(id), calls});
    });
    return m;
  }

  // The /metrics text, of the whole process: with shards, every shard's
  // figures are taken on its own thread and added up here.
  void metrics(std::function<void(std::string)> done) {
    if (set_ == nullptr) return done(render_metrics(metrics_here()));
    struct Gather {
      std::mutex mu;
      MetricsSources sum;
      size_t left;
    };
    auto gather = std::make_shared<Gather>();
    gather->left = set_->shards.size();
    for (auto& shard : set_->shards) {
      shard->take_metrics([this, gather, done](MetricsSources m) {
        std::lock_guard<std::mutex> lock(gather->mu);
        gather->sum.add(m);
        if (--gather->left == 0) {
          asio::post(io_, [gather, done] { done(render_metrics(gather->sum)); });
        }
      });
    }
  }

  // ---- peers -----------------------------------------------------------------

  // Incoming peer requests run on the listener's threads; each is carried
  // over to the I/O thread, and its answer waited for.
  int start_peer_listener();

  // Runs fn on the I/O thread and waits for its result (peer listener threads).
  template <typename T, typename Fn>
  T on_io(Fn fn) {
    auto done = std::make_shared<std::promise<T>>();
    std::future<T> result = done->get_future();
    asio::post(io_, [done, fn = std::move(fn)]() mutable { done->set_value(fn()); });
    // Waits in slices so that a node that stops answers at once instead of
    // holding the caller (another node) for the whole timeout.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg_.peer_timeout_ms);
    while (result.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
      if (io_stopped_.load() || std::chrono::steady_clock::now() >= deadline)
        return error(Code::kUnavailable, "the node is busy or stopping");
    }
    return result.get();
  }

  // ---- shutdown --------------------------------------------------------------

  void begin_shutdown(int sig);

  void close_sessions_when_committed();

  void finish_shutdown();

  Config cfg_;
  ShardSet<Ws>* set_ = nullptr;  // with --threads > 1
  const int index_ = 0;          // this shard's, of count_
  const int count_ = 1;
  const std::string node_id_;  // the node's id: --node-id, or ID#K for shard K > 0
  SystemClock clock_;
  asio::io_context io_{1};
  asio::thread_pool worker_{1};  // password hashing
  WsServer ws_;
  asio::steady_timer node_timer_{io_};
  asio::steady_timer drain_timer_{io_};
  asio::steady_timer idle_timer_{io_};
  bool idle_sweep_armed_ = false;
  asio::steady_timer expiry_timer_{io_};
  bool expiry_sweep_armed_ = false;
  std::multimap<int64_t, SessionId> expiries_;  // token expiry (ms) -> open session
  std::atomic<bool> io_stopped_{false};  // finish_shutdown ran: on_io waits no more
  asio::steady_timer shutdown_timer_{io_};
  asio::signal_set signals_{io_};
  std::shared_ptr<asio::ssl::context> tls_context_;  // TLS: every connection's, made by load_tls()

  ServerStores stores_;  // its executor posts to io_: joined before io_ goes
  std::unique_ptr<Auth> auth_;
  NotifierStats notify_stats_;
  std::unique_ptr<Notifier> notifier_;
  std::shared_ptr<const ClientCodec> codec_;
  Limits limits_;
  std::unique_ptr<Node> node_;
  std::unique_ptr<HttpApi> api_;
  std::unique_ptr<PeerLink> peers_;  // after node_: stopped first

  std::unordered_map<SessionId, ConnPtr> sessions_;
  std::set<SessionId> draining_;
  std::set<SessionId> node_closed_;  // shards: closed by the node, its reason already remembered
  std::unordered_map<const std::string*, std::pair<Frame, WsMessagePtr>> prepared_;  // this turn's
  SessionId next_session_ = 0;
  bool flush_pending_ = false;
  bool drain_timer_armed_ = false;
  bool shutting_down_ = false;
  bool sessions_closing_ = false;
  bool finished_ = false;
  uint16_t port_ = 0;

  GatewayCounters gw_;
  Histogram peer_batch_bytes_{{256, 1024, 4096, 16384, 65536, 262144, 1048576}};
};

// Instantiated once each, in lifecycle.cpp (where the set-up and shutdown
// members are defined); the gateway members are defined above.
extern template class ServerImpl<PlainWsConfig>;
extern template class ServerImpl<TlsWsConfig>;

}  // namespace parley::server
