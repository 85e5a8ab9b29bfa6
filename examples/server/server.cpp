#include "server.hpp"

#include <httplib.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <asio.hpp>
#include <websocketpp/concurrency/none.hpp>
#include <websocketpp/config/asio.hpp>
#include <websocketpp/server.hpp>

#include <openssl/crypto.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include "auth.hpp"
#include "http_poster.hpp"
#include "http_target.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "notifiers.hpp"
#include "parley/memory_store.hpp"
#include "parley/node.hpp"
#include "parley/sqlite_store.hpp"
#include "parley/threaded_executor.hpp"
#ifdef PARLEY_WITH_REDIS
#include "parley/redis_store.hpp"
#endif
#include "parley/version.hpp"
#include "timed_store.hpp"
#include "tls.hpp"
#include "web_assets.hpp"

namespace parley::server {
namespace {

// Per-connection state kept inside websocketpp's connection object.
struct ConnData {
  SessionId session = 0;  // 0: not a chat session (plain HTTP)
  std::string user;
  size_t handed = 0;         // payload bytes given to websocketpp
  size_t reported = 0;       // of those, reported drained to the node
  int64_t heard_ms = 0;      // when the client last sent a frame (data, ping or pong)
  bool pinged = false;       // a ping went out since then
  bool idle_closed = false;  // closed by the idle timeout
};

// websocketpp's request, except that an upgrade without Sec-WebSocket-Version
// reads as an unparsable version (answered 400 "can't determine version")
// instead of selecting the hixie-76 draft, whose handshake websocketpp
// answers with a 500 when its 8 trailing key bytes are missing. Shadowing
// works because websocketpp's processor functions are templates on the type.
class Request : public websocketpp::http::parser::request {
 public:
  const std::string& get_header(const std::string& key) const {
    const std::string& value = websocketpp::http::parser::request::get_header(key);
    if (value.empty() && key == "Sec-WebSocket-Version") {
      static const std::string kNone = "none";
      return kNone;
    }
    return value;
  }
};

// websocketpp on standalone Asio, single-threaded: no locks, no strands; a
// small read buffer per connection (most frames are small). SocketType is
// plain TCP (as in websocketpp::config::asio) or TLS (as in
// websocketpp::config::asio_tls); the server is built for each.
template <typename SocketType>
struct WsConfig : public websocketpp::config::asio {
  typedef WsConfig type;
  typedef websocketpp::config::asio base;
  typedef websocketpp::concurrency::none concurrency_type;
  typedef Request request_type;
  typedef base::response_type response_type;
  typedef base::message_type message_type;
  typedef base::con_msg_manager_type con_msg_manager_type;
  typedef base::endpoint_msg_manager_type endpoint_msg_manager_type;
  typedef base::alog_type alog_type;
  typedef base::elog_type elog_type;
  typedef base::rng_type rng_type;
  typedef ConnData connection_base;
  struct transport_config : public base::transport_config {
    typedef typename type::concurrency_type concurrency_type;
    typedef typename type::alog_type alog_type;
    typedef typename type::elog_type elog_type;
    typedef typename type::request_type request_type;
    typedef typename type::response_type response_type;
    typedef SocketType socket_type;
    static const bool enable_multithreading = false;
    // Ending a TLS connection waits for the client's close_notify, which
    // Asio's TLS shutdown never sees while websocketpp still has a read
    // pending (as it has on every WebSocket), so each WSS close would last
    // this whole timeout (websocketpp's default is 5 s) before the session
    // ends. The WebSocket close handshake is complete by then. Plain TCP
    // shuts down at once and never waits.
    static const long timeout_socket_shutdown = 250;
  };
  typedef websocketpp::transport::asio::endpoint<transport_config> transport_type;
  static const size_t connection_read_buffer_size = 1024;
  static const websocketpp::log::level elog_level = websocketpp::log::elevel::none;
  static const websocketpp::log::level alog_level = websocketpp::log::alevel::none;
};

using PlainWsConfig = WsConfig<websocketpp::transport::asio::basic_socket::endpoint>;
using TlsWsConfig = WsConfig<websocketpp::transport::asio::tls_socket::endpoint>;
using Hdl = websocketpp::connection_hdl;

int http_status_for(Code code) {
  switch (code) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument: return 400;
    case Code::kNotFound: return 404;
    case Code::kPermissionDenied: return 403;
    case Code::kAlreadyExists: return 409;
    case Code::kTooLarge: return 413;
    case Code::kUnavailable: return 503;
    case Code::kTimeout: return 504;
    case Code::kEpochMismatch: return 409;
    case Code::kBackpressure: return 429;
    case Code::kCorruption: return 500;
    case Code::kInternal: return 500;
    case Code::kUnauthenticated: return 401;
    case Code::kClosed: return 503;
    case Code::kTrimmed: return 410;
    case Code::kLimitExceeded: return 429;
  }
  return 500;
}

// A small JSON object builder over RapidJSON's writer.
class Json {
 public:
  Json() { w_.StartObject(); }
  Json& str(const char* k, std::string_view v) {
    w_.Key(k);
    w_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    return *this;
  }
  Json& num(const char* k, int64_t v) {
    w_.Key(k);
    w_.Int64(v);
    return *this;
  }
  Json& u64(const char* k, uint64_t v) {
    w_.Key(k);
    w_.Uint64(v);
    return *this;
  }
  // Starts an array of objects under k; each item via item_begin/item_end.
  Json& array(const char* k) {
    w_.Key(k);
    w_.StartArray();
    return *this;
  }
  Json& item_begin() {
    w_.StartObject();
    return *this;
  }
  Json& item_end() {
    w_.EndObject();
    return *this;
  }
  Json& array_end() {
    w_.EndArray();
    return *this;
  }
  // A value that is already JSON text.
  Json& raw(std::string_view json) {
    w_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
    return *this;
  }
  std::string done() {
    w_.EndObject();
    return std::string(buf_.GetString(), buf_.GetSize());
  }

 private:
  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> w_{buf_};
};

// An error event as a WebSocket client receives it.
std::string error_event_json(const Status& st) {
  return Json()
      .str("t", "error")
      .num("rid", 0)
      .num("code", static_cast<int>(st.code()))
      .str("name", code_name(st.code()))
      .str("msg", st.message())
      .done();
}

std::string error_json(const Status& st) {
  return Json()
      .num("code", static_cast<int>(st.code()))
      .str("name", code_name(st.code()))
      .str("msg", st.message())
      .done();
}

std::string bearer_token(const std::string& header) {
  const std::string prefix = "Bearer ";
  return header.compare(0, prefix.size(), prefix) == 0 ? header.substr(prefix.size()) : std::string();
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

const char* role_name(Role r) {
  return r == Role::kOwner ? "owner" : "member";
}

// The token secret: --secret, else DATA_DIR/secret (made once, mode 0600).
Result<std::string> load_or_make_secret(const Config& c) {
  if (!c.secret.empty()) return c.secret;
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(c.data_dir, ec);
  const fs::path path = fs::path(c.data_dir) / "secret";
  std::ifstream in(path);
  std::string secret;
  if (in && std::getline(in, secret) && secret.size() >= 32) return secret;
  secret = random_hex(32);
  std::ofstream out(path, std::ios::trunc);
  out << secret << "\n";
  out.close();
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write, ec);
  if (!out) return error(Code::kUnavailable, fmt::format("cannot write {}", path.string()));
  return secret;
}

}  // namespace

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
// every handler, so the whole server is the template; only start_ws() and
// load_tls() differ between the two.
template <typename Ws>
class ServerImpl final : public Server::Impl, public NodeHost {
  using WsServer = websocketpp::server<Ws>;
  using ConnPtr = typename WsServer::connection_ptr;
  using WsMessagePtr = typename WsServer::message_ptr;
  static constexpr bool kTls = std::is_same_v<Ws, TlsWsConfig>;

 public:
  explicit ServerImpl(Config config) : cfg_(std::move(config)) {}

  ~ServerImpl() override {
    if (peer_http_) peer_http_->stop();
    if (peer_thread_.joinable()) peer_thread_.join();
    posters_.clear();
    worker_.join();
  }

  int start() override {
    LogLevel level = LogLevel::kInfo;
    parse_log_level(cfg_.log_level, &level);
    set_log_level(level);
    set_log_node(cfg_.node_id);
    if (int rc = load_tls(); rc != 0) return rc;
    if (Status st = open_stores(); !st) {
      PARLEY_LOG_ERROR("cannot open the store: {}", st.to_string());
      return 1;
    }
    Result<std::string> secret = load_or_make_secret(cfg_);
    if (!secret) {
      PARLEY_LOG_ERROR("{}", secret.status().to_string());
      return 1;
    }
    auth_ = std::make_unique<Auth>(*secret, cfg_.token_ttl_s * 1000, cfg_.dev);
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
    for (const PeerConfig& p : cfg_.peers) {
      if (p.node_id == cfg_.node_id) continue;
      HttpPoster::Options o;
      o.host = p.address.host;
      o.port = p.address.port;
      o.timeout_ms = cfg_.peer_timeout_ms;
      o.max_queued = 1024;
      o.authorization = "Bearer " + cfg_.cluster_secret;
      o.use_tls = cfg_.peer_tls();
      o.tls = peer_tls_files();
      posters_[p.node_id] = std::make_unique<HttpPoster>(std::move(o));
    }
    make_node();
    if (Status st = node_->start(); !st) {
      PARLEY_LOG_ERROR("cannot start the node: {}", st.to_string());
      return 1;
    }
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

  void stop() override {
    asio::post(io_, [this] { begin_shutdown(0); });
  }
  uint16_t port() const override { return port_; }

  int run() override {
    io_.run();
    PARLEY_LOG_INFO("stopped");
    return 0;
  }

  // ---- NodeHost ------------------------------------------------------------

  void send_to_session(SessionId session, const std::vector<Frame>& frames) override {
    auto it = sessions_.find(session);
    if (it == sessions_.end()) return;
    const ConnPtr& con = it->second;
    for (const Frame& f : frames) {
      con->send(prepared(f));
      con->handed += f->size();
      frames_out_++;
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
    websocketpp::lib::error_code ec;
    it->second->close(reason.code() == Code::kBackpressure
                          ? websocketpp::close::status::policy_violation
                          : websocketpp::close::status::internal_endpoint_error,
                      std::string(code_name(reason.code())), ec);
  }

  void send_to_node(const std::string& node_id, uint64_t call_id, const Frame& batch) override {
    peer_batch_bytes_.observe(static_cast<double>(batch->size()));
    auto it = posters_.find(node_id);
    bool queued = false;
    if (it != posters_.end()) {
      queued = it->second->post("/v1/peer/batch", batch, "application/msgpack",
                                [this, node_id, call_id](int status) {
                                  asio::post(io_, [this, node_id, call_id, status] {
                                    if (status != 204)
                                      PARLEY_LOG_DEBUG("peer {} answered {}", node_id, status);
                                    node_->on_peer_result(node_id, call_id, status == 204);
                                    schedule_flush();
                                  });
                                });
    } else {
      PARLEY_LOG_WARN("no address for peer node '{}' (add --peer {}=HOST:PORT)", node_id, node_id);
    }
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

  Status open_stores() {
    if (cfg_.store == "memory") {
      memory_messages_ = make_memory_message_store();
      memory_membership_ = make_memory_membership_store();
      memory_directory_ = make_memory_session_directory();
      messages_ = std::make_unique<TimedMessageStore>(*memory_messages_);
      membership_ = memory_membership_.get();
      directory_ = memory_directory_.get();
      return Status::ok();
    }
    if (cfg_.store == "redis") {
#ifdef PARLEY_WITH_REDIS
      RedisStoreOptions o;
      o.endpoints = cfg_.redis;
      o.password = cfg_.redis_password;
      o.key_prefix = cfg_.redis_prefix;
      o.connect_timeout_ms = static_cast<int>(cfg_.redis_timeout_ms);
      o.command_timeout_ms = static_cast<int>(cfg_.redis_timeout_ms);
      o.dedup_ttl_s = cfg_.redis_dedup_ttl_s;
      o.retain_messages = cfg_.retain_messages;
      o.retain_ms = cfg_.retain_ms;
      auto store = open_redis_store(o);
      if (!store) return store.status();
      redis_ = std::move(*store);
      PARLEY_LOG_INFO("store: redis at {}{}", cfg_.redis, redis_->cluster_mode() ? " (cluster)" : "");
      messages_ = std::make_unique<TimedMessageStore>(*redis_);
      if (cfg_.store_executor == "thread") {
        auto appender = open_redis_store(o);  // a connection of the executor's own
        if (!appender) return appender.status();
        append_redis_ = std::move(*appender);
        start_executor(*append_redis_);
      }
      membership_ = redis_.get();
      directory_ = redis_.get();
      presence_store_ = redis_.get();
      return Status::ok();
#else
      return error(Code::kInvalidArgument, "this parley-server was built without Redis (PARLEY_WITH_REDIS)");
#endif
    }
    std::error_code ec;
    std::filesystem::path db(cfg_.db);
    if (db.has_parent_path()) std::filesystem::create_directories(db.parent_path(), ec);
    SqliteOptions o;
    o.sync = cfg_.sync == "normal" ? SqliteOptions::Sync::kNormal : SqliteOptions::Sync::kFull;
    auto store = open_sqlite_store(cfg_.db, o);
    if (!store) return store.status();
    sqlite_ = std::move(*store);
    messages_ = std::make_unique<TimedMessageStore>(*sqlite_);
    if (cfg_.store_executor == "thread") {
      auto appender = open_sqlite_store(cfg_.db, o);  // a connection of the executor's own
      if (!appender) return appender.status();
      append_sqlite_ = std::move(*appender);
      start_executor(*append_sqlite_);
    }
    membership_ = sqlite_.get();
    directory_ = sqlite_.get();
    return Status::ok();
  }

  // Appends run on a thread of their own, on `store` (a connection used by
  // nothing else); each commit's completions come back to the I/O thread.
  void start_executor(MessageStore& store) {
    append_messages_ = std::make_unique<TimedMessageStore>(store);
    executor_ = std::make_unique<ThreadedExecutor>(*append_messages_, [this](std::vector<AppendCompletion> done) {
      asio::post(io_, [this, done = std::move(done)]() mutable { on_appends_done(std::move(done)); });
    });
  }

  void on_appends_done(std::vector<AppendCompletion> done) {
    check_drains();  // what was written since: the queue bounds see the sockets as they are now
    complete_appends(*node_, std::move(done));
    node_->flush();
    end_turn();
    if (shutting_down_) close_sessions_when_committed();
  }

  // The store timings of appends (the executor's store when there is one).
  const TimedMessageStore& appends() const { return append_messages_ ? *append_messages_ : *messages_; }

  // Loads and checks every certificate and key before anything else starts,
  // so that a bad one is a startup error (exit 1) naming the file and
  // OpenSSL's reason. The peer files are loaded again by each HttpPoster and
  // by the peer listener, each into its own context.
  int load_tls() {
    if constexpr (kTls) {
      tls_context_ = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
      const TlsFiles files{"--tls-", cfg_.tls_cert, cfg_.tls_key, ""};
      if (Status st = configure_tls_server(tls_context_->native_handle(), files); !st) {
        PARLEY_LOG_ERROR("{}", st.message());
        return 1;
      }
    }
    if (cfg_.peer_tls()) {
      if (Status st = check_tls_files(peer_tls_files()); !st) {
        PARLEY_LOG_ERROR("{}", st.message());
        return 1;
      }
    }
    return 0;
  }

  TlsFiles peer_tls_files() const {
    return {"--peer-tls-", cfg_.peer_tls_cert, cfg_.peer_tls_key, cfg_.peer_tls_ca};
  }

  void make_node() {
    NodeOptions o;
    o.node_id = cfg_.node_id;
    o.limits.max_contents_bytes = cfg_.max_contents_bytes;
    o.forward.mode =
        cfg_.forward == "fixed" ? BatchingForwarder::Mode::kFixed : BatchingForwarder::Mode::kAdaptive;
    o.forward.period_ms = cfg_.batch_ms;
    o.forward.call_timeout_ms = cfg_.peer_timeout_ms + 500;
    o.policy.pull_min_members = cfg_.pull_min_members;
    o.policy.pull_enter_rate = cfg_.pull_enter_rate;
    o.policy.pull_exit_rate = cfg_.pull_exit_rate;
    o.session_queue_bytes = cfg_.session_queue_bytes;
    o.tail_per_group = cfg_.tail_per_group;
    o.max_sessions_per_user = cfg_.max_connections_per_user;
    o.send_rate_per_user = cfg_.send_rate;
    o.send_burst_per_user = cfg_.send_burst;
    o.seed = std::hash<std::string>()(cfg_.node_id) ^ static_cast<uint64_t>(clock_.now_ms());
    codec_ = std::shared_ptr<const ClientCodec>(make_json_codec());
    node_ = std::make_unique<Node>(
        o, NodeStores{*messages_, *membership_, *directory_, presence_store_, executor_.get()}, *this, clock_,
        notifier_.get(), codec_);
    limits_ = o.limits;
  }

  int start_ws() {
    ws_.init_asio(&io_);
    ws_.set_reuse_addr(true);
    ws_.set_max_message_size(cfg_.max_frame_bytes);
    ws_.set_max_http_body_size(cfg_.max_http_body_bytes);
    ws_.set_listen_backlog(4096);
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
    Endpoint shown{cfg_.listen.host, local.port()};
    fmt::print("parley-server {} node {} listening on {}://{}/ (web client; WebSocket at /v1/ws)\n",
               PARLEY_VERSION_STRING, cfg_.node_id, kTls ? "https" : "http", shown.to_string());
    std::fflush(stdout);
    PARLEY_LOG_INFO("store: {}; login: {}; notifications: {}; peers: {}",
                    cfg_.store == "memory"  ? std::string("memory")
                    : cfg_.store == "redis" ? "redis at " + cfg_.redis
                                            : cfg_.db,
                    cfg_.dev ? "dev (any name)" : "users file",
                    cfg_.webhook.empty() ? std::string("log") : cfg_.webhook, posters_.size());
    return 0;
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
      ++auth_failures_;
      return reject(con, claims.status());
    }
    con->user = claims->user;
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
    const SessionId id = ++next_session_;
    con->session = id;
    std::string hello = Json()
                            .str("t", "hello")
                            .str("u", con->user)
                            .str("node", cfg_.node_id)
                            .u64("session", id)
                            .u64("max_contents", cfg_.max_contents_bytes)
                            .done();
    con->send(hello, websocketpp::frame::opcode::text);
    if (Status st = node_->open_session(id, con->user); !st) {
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
    sessions_[id] = con;
    heard(con);
    arm_idle_sweep();
    ++connections_opened_;
    PARLEY_LOG_DEBUG("session {} opened for {}", id, con->user);
    schedule_flush();
  }

  void on_close(Hdl h, bool failed) {
    ConnPtr con = ws_.get_con_from_hdl(h);
    if (con->session == 0) return;
    const SessionId id = con->session;
    con->session = 0;
    if (sessions_.erase(id) == 0) return;
    ++connections_closed_;
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
    node_->close_session(id, reason);
    schedule_flush();
    if (shutting_down_ && sessions_.empty()) finish_shutdown();
  }

  void on_message(Hdl h, WsMessagePtr msg) {
    ConnPtr con = ws_.get_con_from_hdl(h);
    if (con->session == 0 || shutting_down_) return;  // refused: the client resends after reconnecting
    heard(con);
    ++frames_in_;
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

  // ---- idle timeout ----------------------------------------------------------

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

  void arm_idle_sweep() {
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

  void sweep_idle() {
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
      ++idle_closed_;
      websocketpp::lib::error_code ec;
      con->close(websocketpp::close::status::going_away, "idle_timeout", ec);
    }
  }

  // ---- HTTP ------------------------------------------------------------------

  void respond(const ConnPtr& con, int status, const std::string& body,
               const char* type = "application/json") {
    con->set_status(static_cast<websocketpp::http::status_code::value>(status));
    con->replace_header("Content-Type", type);
    con->replace_header("Cache-Control", "no-store");
    // websocketpp ends plain HTTP connections after one response; say so, so
    // keep-alive clients do not reuse a closed connection.
    con->replace_header("Connection", "close");
    con->set_body(body);
    ++http_responses_[status];
  }
  void respond_error(const ConnPtr& con, const Status& st) {
    respond(con, http_status_for(st.code()), error_json(st));
  }

  void on_http(Hdl h) {
    ConnPtr con = ws_.get_con_from_hdl(h);
    const std::string& method = con->get_request().get_method();
    Target t = parse_target(con->get_resource());
    const auto& seg = t.segments;
    try {
      if (method == "GET" && (seg.empty() || (seg.size() == 1 && seg[0] == "index.html")))
        return serve_index(con);
      const bool probe = seg.size() == 1 && (seg[0] == "healthz" || seg[0] == "metrics");
      if (probe && method != "GET")
        return respond_error(con, error(Code::kInvalidArgument, "use GET for this route"));
      if (probe && seg[0] == "healthz") return healthz(con);
      if (probe) return respond(con, 200, metrics(), "text/plain; version=0.0.4");
      if (seg.size() >= 2 && seg[0] == "v1") return api(con, method, t);
      respond_error(con,
                    error(Code::kNotFound, fmt::format("no route for {} {}", method, con->get_resource())));
    } catch (const std::exception& e) {
      PARLEY_LOG_ERROR("HTTP {} {}: {}", method, con->get_resource(), e.what());
      respond_error(con, error(Code::kInternal, "internal error"));
    }
  }

  void serve_index(const ConnPtr& con) {
    if (!cfg_.web_root.empty()) {
      std::ifstream in(std::filesystem::path(cfg_.web_root) / "index.html", std::ios::binary);
      if (!in) return respond_error(con, error(Code::kNotFound, "index.html not found in --web-root"));
      std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      return respond(con, 200, body, "text/html; charset=utf-8");
    }
    respond(con, 200, std::string(web_index_html()), "text/html; charset=utf-8");
  }

  void healthz(const ConnPtr& con) {
    Result<bool> probe = membership_->group_exists("healthz");
    if (!probe)
      return respond(con, 503, Json().str("status", "unavailable").str("node", cfg_.node_id).done());
    respond(con, 200, Json().str("status", "ok").str("node", cfg_.node_id).done());
  }

  Result<TokenClaims> authenticate(const ConnPtr& con) {
    Result<TokenClaims> claims =
        auth_->verify(bearer_token(con->get_request_header("Authorization")), clock_.now_ms());
    if (!claims) ++auth_failures_;
    return claims;
  }

  // Parses the request body as a JSON object.
  Status json_body(const ConnPtr& con, rapidjson::Document* doc) {
    const std::string& body = con->get_request_body();
    doc->Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(body.data(),
                                                                                       body.size());
    if (doc->HasParseError() || !doc->IsObject()) {
      return error(Code::kInvalidArgument, "the body must be a JSON object");
    }
    return Status::ok();
  }
  static Status body_str(const rapidjson::Document& doc, const char* key, std::string* out) {
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd() || !it->value.IsString()) {
      return error(Code::kInvalidArgument, fmt::format("field '{}' (a string) is required", key));
    }
    out->assign(it->value.GetString(), it->value.GetStringLength());
    return Status::ok();
  }

  void api(const ConnPtr& con, const std::string& method, const Target& t) {
    const auto& seg = t.segments;
    auto need = [&](const char* m) {
      if (method == m) return true;
      respond_error(con, error(Code::kInvalidArgument, fmt::format("use {} for this route", m)));
      return false;
    };
    if (seg.size() == 2 && seg[1] == "login") return need("POST") ? login(con) : void();
    if (seg.size() >= 2 && seg[1] == "peer") {
      return respond_error(con, error(Code::kNotFound, "the peer transport listens on --peer-listen"));
    }
    if (seg.size() == 2 && seg[1] == "ws") {
      return respond_error(con, error(Code::kInvalidArgument, "/v1/ws needs a WebSocket upgrade"));
    }
    Result<TokenClaims> who = authenticate(con);
    if (!who) return respond_error(con, who.status());
    const std::string& user = who->user;
    if (seg.size() == 2 && seg[1] == "me") {
      if (!need("GET")) return;
      return respond(
          con, 200,
          Json().str("user", user).num("expires_at", who->expires_at_ms).str("node", cfg_.node_id).done());
    }
    if (seg.size() == 2 && seg[1] == "groups") {
      if (method == "GET") return list_groups(con, user);
      return need("POST") ? create_group(con, user) : void();
    }
    if (seg.size() == 4 && seg[1] == "groups") {
      const std::string& g = seg[2];
      const std::string& what = seg[3];
      if (Status st = validate_id(g, "group_id", limits_); !st) return respond_error(con, st);
      if (what == "join") return need("POST") ? join(con, user, g) : void();
      if (what == "leave") return need("POST") ? leave(con, user, g) : void();
      if (!need("GET")) return;
      if (what == "members") return members(con, user, g, false);
      if (what == "presence") return members(con, user, g, true);
      if (what == "messages") return history(con, user, g, t);
      if (what == "pull") return pull(con, user, g, t);
    }
    if (seg.size() == 5 && seg[1] == "groups" && seg[3] == "members") {
      const std::string& g = seg[2];
      if (Status st = validate_id(g, "group_id", limits_); !st) return respond_error(con, st);
      if (Status st = validate_id(seg[4], "user", limits_); !st) return respond_error(con, st);
      return need("DELETE") ? remove_member(con, user, g, seg[4]) : void();
    }
    respond_error(con,
                  error(Code::kNotFound, fmt::format("no route for {} {}", method, con->get_resource())));
  }

  void login(const ConnPtr& con) {
    rapidjson::Document doc;
    std::string user, password;
    Status st = json_body(con, &doc);
    if (st) st = body_str(doc, "user", &user);
    if (st && doc.HasMember("password")) st = body_str(doc, "password", &password);
    if (st) st = validate_id(user, "user", limits_);
    if (!st) return respond_error(con, st);
    // Password hashing is slow on purpose: do it off the I/O thread.
    con->defer_http_response();
    const int64_t now = clock_.now_ms();
    asio::post(worker_, [this, con, user, password, now] {
      TokenClaims claims;
      Result<std::string> token = auth_->login(user, password, now, &claims);
      asio::post(io_, [this, con, token, claims] {
        if (!token) {
          ++auth_failures_;
          respond_error(con, token.status());
        } else {
          respond(con, 200,
                  Json()
                      .str("token", *token)
                      .str("user", claims.user)
                      .num("expires_at", claims.expires_at_ms)
                      .done());
        }
        websocketpp::lib::error_code ec;
        con->send_http_response(ec);
      });
    });
  }

  void list_groups(const ConnPtr& con, const std::string& user) {
    Result<std::vector<std::string>> groups = membership_->groups_of(user);
    if (!groups) return respond_error(con, groups.status());
    Json j;
    j.array("groups");
    for (const std::string& g : *groups) {
      Result<std::optional<Role>> role = membership_->role_of(g, user);
      j.item_begin().str("group", g).str("role", role && *role ? role_name(**role) : "member").item_end();
    }
    respond(con, 200, j.array_end().done());
  }

  // --max-groups-per-user, checked before a create or a join.
  Status check_group_limit(const std::string& user) {
    if (cfg_.max_groups_per_user == 0) return Status::ok();
    Result<std::vector<std::string>> groups = membership_->groups_of(user);
    if (!groups) return groups.status();
    if (groups->size() < cfg_.max_groups_per_user) return Status::ok();
    return error(Code::kLimitExceeded, fmt::format("'{}' is in {} groups; the limit is {}", user,
                                                   groups->size(), cfg_.max_groups_per_user));
  }

  void create_group(const ConnPtr& con, const std::string& user) {
    rapidjson::Document doc;
    std::string g;
    Status st = json_body(con, &doc);
    if (st) st = body_str(doc, "group", &g);
    if (st) st = validate_id(g, "group", limits_);
    if (st) st = check_group_limit(user);
    if (st) st = membership_->create_group(g, user);
    if (!st) return respond_error(con, st);
    PARLEY_LOG_INFO("{} created group {}", user, g);
    respond(con, 201, Json().str("group", g).str("role", "owner").done());
  }

  void join(const ConnPtr& con, const std::string& user, const std::string& g) {
    Result<bool> exists = membership_->group_exists(g);
    if (!exists) return respond_error(con, exists.status());
    if (!*exists)
      return respond_error(con, error(Code::kNotFound, fmt::format("group '{}' does not exist", g)));
    Result<std::optional<Role>> role = membership_->role_of(g, user);
    if (!role) return respond_error(con, role.status());
    if (!*role) {
      if (Status st = check_group_limit(user); !st) return respond_error(con, st);
      if (Status st = membership_->add(g, user, Role::kMember); !st) return respond_error(con, st);
    }
    respond(con, 200, Json().str("group", g).str("role", *role ? role_name(**role) : "member").done());
  }

  void leave(const ConnPtr& con, const std::string& user, const std::string& g) {
    if (Status st = membership_->remove(g, user); !st) return respond_error(con, st);
    propagate_removal(g, user);
    respond(con, 200, Json().str("group", g).done());
  }

  // DELETE /v1/groups/{g}/members/{user}: the owner removes a member.
  void remove_member(const ConnPtr& con, const std::string& owner, const std::string& g,
                     const std::string& user) {
    Result<std::optional<Role>> role = membership_->role_of(g, owner);
    if (!role) return respond_error(con, role.status());
    if (*role != std::optional<Role>(Role::kOwner)) {
      if (Status st = node_->authorize(owner, g); !st)
        return respond_error(con, st);  // not_found / not a member
      return respond_error(
          con, error(Code::kPermissionDenied, fmt::format("only the owner of '{}' removes members", g)));
    }
    if (user == owner) {
      return respond_error(con, error(Code::kInvalidArgument, "the owner cannot remove itself; use leave"));
    }
    if (Status st = membership_->remove(g, user); !st) return respond_error(con, st);
    propagate_removal(g, user);
    respond(con, 200, Json().str("group", g).str("removed", user).done());
  }

  // A member is gone: its sessions here stop receiving the group at once,
  // and every peer is told (best effort; head sync does not need it).
  void propagate_removal(const std::string& g, const std::string& user) {
    node_->member_removed(g, user);
    schedule_flush();
    auto body = std::make_shared<const std::string>(Json().str("g", g).str("u", user).done());
    for (auto& [id, poster] : posters_) {
      std::string peer = id;
      poster->post("/v1/peer/member-removed", body, "application/json", [peer](int status) {
        if (status != 204) PARLEY_LOG_WARN("peer {} did not take member-removed ({})", peer, status);
      });
    }
  }

  void members(const ConnPtr& con, const std::string& user, const std::string& g, bool presence_only) {
    if (Status st = node_->authorize(user, g); !st) return respond_error(con, st);
    Result<std::vector<Member>> list = membership_->members(g);
    if (!list) return respond_error(con, list.status());
    std::vector<std::string> users;
    users.reserve(list->size());
    for (const Member& m : *list) users.push_back(m.user_id);
    Result<std::vector<PresenceStatus>> status = node_->presence_of(users);
    if (!status) return respond_error(con, status.status());
    Json j;
    j.array(presence_only ? "presence" : "members");
    for (size_t i = 0; i < list->size(); ++i) {
      const Member& m = (*list)[i];
      j.item_begin().str("user", m.user_id);
      if (!presence_only) j.str("role", role_name(m.role));
      j.str("status", presence_status_name((*status)[i])).item_end();
    }
    respond(con, 200, j.array_end().done());
  }

  // {"group","epoch","head","messages":[msg objects]}
  std::string messages_json(const std::string& g, uint64_t epoch, uint64_t head,
                            const std::vector<MessagePtr>& msgs) {
    Json j;
    j.str("group", g).u64("epoch", epoch).u64("head", head).array("messages");
    for (const MessagePtr& m : msgs) j.raw(codec_->encode_event(MessageEv{m}));
    return j.array_end().done();
  }

  void history(const ConnPtr& con, const std::string& user, const std::string& g, const Target& t) {
    uint64_t after = 0, before = 0, limit = 50;
    Status st = node_->authorize(user, g);
    if (st) st = query_u64(t, "after", 0, &after);
    if (st) st = query_u64(t, "before", 0, &before);
    if (st) st = query_u64(t, "limit", 50, &limit);
    if (st && (limit == 0 || limit > limits_.max_read_limit)) {
      st = error(Code::kInvalidArgument, fmt::format("limit must be 1..{}", limits_.max_read_limit));
    }
    if (st && before != 0 && after != 0)
      st = error(Code::kInvalidArgument, "give either before or after, not both");
    std::vector<GroupHead> heads;
    if (st) st = messages_->heads({g}, &heads);
    if (!st) return respond_error(con, st);
    const uint64_t head = heads[0].head;
    std::vector<Message> rows;
    if (before != 0) {
      const uint64_t end = std::min(before, head + 1);  // exclusive
      const uint64_t from = end > limit + 1 ? end - 1 - limit : 0;
      if (end > 1) st = messages_->read(g, from, static_cast<size_t>(end - 1 - from), &rows);
    } else if (after < head) {
      st = messages_->read(g, after, static_cast<size_t>(limit), &rows);
    }
    if (!st) return respond_error(con, st);
    std::vector<MessagePtr> msgs;
    msgs.reserve(rows.size());
    for (Message& m : rows) msgs.push_back(std::make_shared<const Message>(std::move(m)));
    respond(con, 200, messages_json(g, heads[0].epoch, head, msgs));
  }

  void pull(const ConnPtr& con, const std::string& user, const std::string& g, const Target& t) {
    PullReq r;
    r.group_id = g;
    uint64_t limit = 100;
    Status st = query_u64(t, "after", 0, &r.after);
    if (st) st = query_u64(t, "epoch", 0, &r.epoch);
    if (st) st = query_u64(t, "limit", 100, &limit);
    if (st && (limit == 0 || limit > limits_.max_read_limit)) {
      st = error(Code::kInvalidArgument, fmt::format("limit must be 1..{}", limits_.max_read_limit));
    }
    if (!st) return respond_error(con, st);
    r.limit = static_cast<uint32_t>(limit);
    Result<PullResultEv> ev = node_->pull(user, r);
    if (!ev) return respond_error(con, ev.status());
    const std::string etag = fmt::format("\"{}-{}-{}-{}\"", ev->epoch, ev->head, r.after, limit);
    con->replace_header("ETag", etag);
    if (con->get_request_header("If-None-Match") == etag) return respond(con, 304, "");
    respond(con, 200, messages_json(g, ev->epoch, ev->head, ev->messages));
  }

  std::string metrics() {
    const NodeStats& s = node_->stats();
    const BatchingForwarder::Stats& f = node_->forwarder_stats();
    std::string out;
    auto c = [&out](const char* name, const char* help, double v) { write_counter(&out, name, help, v); };
    auto g = [&out](const char* name, const char* help, double v) {
      write_counter(&out, name, help, v, "gauge");
    };
    g("parley_connections", "open WebSocket chat sessions", static_cast<double>(sessions_.size()));
    c("parley_connections_opened_total", "chat sessions opened", static_cast<double>(connections_opened_));
    c("parley_connections_closed_total", "chat sessions ended", static_cast<double>(connections_closed_));
    c("parley_idle_closed_total", "chat sessions closed by --idle-timeout-ms",
      static_cast<double>(idle_closed_));
    c("parley_frames_in_total", "WebSocket frames received from clients", static_cast<double>(frames_in_));
    c("parley_frames_out_total", "WebSocket frames written to clients", static_cast<double>(frames_out_));
    c("parley_messages_in_total", "sends received from clients", static_cast<double>(s.sends));
    c("parley_acks_total", "sends acknowledged", static_cast<double>(s.acks));
    c("parley_duplicate_sends_total", "resends answered with the stored id",
      static_cast<double>(s.duplicate_sends));
    c("parley_send_errors_total", "sends refused", static_cast<double>(s.send_errors));
    c("parley_messages_out_total", "message frames queued to sessions", static_cast<double>(s.deliveries));
    c("parley_commits_total", "store transactions (group commits)", static_cast<double>(s.commits));
    c("parley_peer_batches_in_total", "peer batches received", static_cast<double>(s.peer_batches_in));
    c("parley_peer_messages_in_total", "messages received in peer batches",
      static_cast<double>(s.peer_messages_in));
    c("parley_peer_batches_out_total", "peer calls made (retries included)",
      static_cast<double>(f.batches_sent));
    c("parley_peer_retries_total", "peer call retries", static_cast<double>(f.retries));
    c("parley_peer_items_dropped_total", "peer items given up on (healed from the store)",
      static_cast<double>(f.items_dropped));
    c("parley_catch_ups_total", "gap catch-up reads", static_cast<double>(s.catch_ups));
    c("parley_catch_up_messages_total", "messages read by catch-ups",
      static_cast<double>(s.catch_up_messages));
    c("parley_head_syncs_total", "group-head syncs", static_cast<double>(s.head_syncs));
    c("parley_mode_switches_total", "push/pull mode switches", static_cast<double>(s.mode_switches));
    c("parley_pulls_total", "pull requests", static_cast<double>(s.pulls));
    c("parley_notifications_total", "offline notifications raised", static_cast<double>(s.notifications));
    c("parley_notifications_delivered_total", "notifications the notifier delivered",
      static_cast<double>(notify_stats_.delivered.load()));
    c("parley_notifications_failed_total", "notifications the webhook refused or timed out",
      static_cast<double>(notify_stats_.failed.load()));
    c("parley_notifications_dropped_total", "notifications dropped (queue full)",
      static_cast<double>(notify_stats_.dropped.load()));
    c("parley_fell_behind_total", "sessions cut off at their queue bound",
      static_cast<double>(s.fell_behind));
    c("parley_bad_frames_total", "client frames refused as malformed", static_cast<double>(s.bad_frames));
    c("parley_store_errors_total", "store operations that failed", static_cast<double>(s.store_errors));
    c("parley_auth_failures_total", "requests refused for a bad or missing token",
      static_cast<double>(auth_failures_));
    out +=
        "# HELP parley_http_responses_total HTTP answers by status code\n"
        "# TYPE parley_http_responses_total counter\n";
    for (const auto& [status, n] : http_responses_) {
      fmt::format_to(std::back_inserter(out), "parley_http_responses_total{{code=\"{}\"}} {}\n", status, n);
    }
    appends().append_seconds().write(&out, "parley_store_append_seconds",
                                      "store append (group commit) latency");
    messages_->read_seconds().write(&out, "parley_store_read_seconds", "store read latency");
    appends().append_batch().write(&out, "parley_commit_batch_messages", "messages per group commit");
    peer_batch_bytes_.write(&out, "parley_peer_batch_bytes", "bytes per peer batch sent");
    // Per peer node: what waits for it (both bounded; see docs/server.md).
    out +=
        "# HELP parley_peer_queued_items messages waiting to be batched to a peer node\n"
        "# TYPE parley_peer_queued_items gauge\n";
    for (const auto& [id, poster] : posters_)
      fmt::format_to(std::back_inserter(out), "parley_peer_queued_items{{peer=\"{}\"}} {}\n", id,
                     node_->peer_queued_items(id));
    out +=
        "# HELP parley_peer_calls_queued peer calls waiting for the connection to a peer node\n"
        "# TYPE parley_peer_calls_queued gauge\n";
    for (const auto& [id, poster] : posters_)
      fmt::format_to(std::back_inserter(out), "parley_peer_calls_queued{{peer=\"{}\"}} {}\n", id,
                     poster->queued());
    return out;
  }

  // ---- peers -----------------------------------------------------------------

  int start_peer_listener() {
    if (cfg_.peer_listen.host.empty()) return 0;
    if (cfg_.cluster_secret.empty()) {
      PARLEY_LOG_ERROR("--peer-listen needs --cluster-secret");
      return 2;
    }
    if (cfg_.peer_tls()) {
      // HTTPS; a caller must show a certificate that chains to --peer-tls-ca.
      Status st;
      peer_http_ = std::make_unique<httplib::SSLServer>([this, &st](SSL_CTX& ctx) {
        st = configure_tls_server(&ctx, peer_tls_files());
        return st.is_ok();
      });
      if (!peer_http_->is_valid()) {
        PARLEY_LOG_ERROR("{}", st.message());
        return 1;
      }
    } else {
      peer_http_ = std::make_unique<httplib::Server>();
    }
    peer_http_->set_payload_max_length(64u << 20);
    peer_http_->set_read_timeout(static_cast<time_t>(cfg_.peer_timeout_ms / 1000 + 5), 0);
    // Idle peer connections are closed after 1 s (a sender reconnects when it
    // next has a batch: one TCP handshake). This also bounds how long stop()
    // waits for them, and so a node's shutdown in a cluster.
    peer_http_->set_keep_alive_timeout(1);
    const std::string expected = "Bearer " + cfg_.cluster_secret;
    auto authorized = [expected](const httplib::Request& req, httplib::Response& res) {
      if (constant_time_equal(req.get_header_value("Authorization"), expected)) return true;
      res.status = 403;
      res.set_content(error_json(error(Code::kPermissionDenied, "wrong cluster secret")), "application/json");
      return false;
    };
    peer_http_->Post("/v1/peer/batch",
                     [this, authorized](const httplib::Request& req, httplib::Response& res) {
                       if (!authorized(req, res)) return;
                       Status st = on_io<Status>([this, &req] {
                         Status s = node_->on_peer_batch(req.body.data(), req.body.size());
                         schedule_flush();
                         return s;
                       });
                       if (st) {
                         res.status = 204;
                       } else {
                         res.status = http_status_for(st.code());
                         res.set_content(error_json(st), "application/json");
                       }
                     });
    peer_http_->Post("/v1/peer/member-removed", [this, authorized](const httplib::Request& req,
                                                                   httplib::Response& res) {
      if (!authorized(req, res)) return;
      rapidjson::Document doc;
      doc.Parse(req.body.data(), req.body.size());
      std::string g, u;
      Status st = doc.HasParseError() || !doc.IsObject() ? error(Code::kInvalidArgument, "want {\"g\",\"u\"}")
                                                         : body_str(doc, "g", &g);
      if (st) st = body_str(doc, "u", &u);
      if (st) {
        st = on_io<Status>([this, g, u] {
          node_->member_removed(g, u);
          schedule_flush();
          return Status::ok();
        });
      }
      res.status = st ? 204 : http_status_for(st.code());
      if (!st) res.set_content(error_json(st), "application/json");
    });
    if (!peer_http_->bind_to_port(cfg_.peer_listen.host, cfg_.peer_listen.port)) {
      PARLEY_LOG_ERROR("cannot listen for peers on {}", cfg_.peer_listen.to_string());
      return 1;
    }
    peer_thread_ = std::thread([this] { peer_http_->listen_after_bind(); });
    PARLEY_LOG_INFO("peer transport on {}{}", cfg_.peer_listen.to_string(),
                    cfg_.peer_tls() ? " (TLS; peers' certificates checked against --peer-tls-ca)" : "");
    return 0;
  }

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

  void begin_shutdown(int sig) {
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

  void close_sessions_when_committed() {
    if (sessions_closing_ || node_->appends_in_flight() > 0) return;
    sessions_closing_ = true;
    websocketpp::lib::error_code ec;
    for (auto& [id, con] : sessions_)
      con->close(websocketpp::close::status::going_away, "server shutting down", ec);
    check_drains();
    if (sessions_.empty()) finish_shutdown();
  }

  void finish_shutdown() {
    if (finished_) return;
    finished_ = true;
    io_stopped_ = true;
    if (peer_http_) peer_http_->stop();
    node_timer_.cancel();
    idle_timer_.cancel();
    drain_timer_.cancel();
    shutdown_timer_.cancel();
    signals_.cancel();
    std::vector<ConnPtr> open;  // terminate() runs on_close, which edits sessions_
    for (auto& [id, con] : sessions_) open.push_back(con);
    for (const ConnPtr& con : open) con->terminate(websocketpp::lib::error_code());
    io_.stop();
  }

  Config cfg_;
  SystemClock clock_;
  asio::io_context io_{1};
  asio::thread_pool worker_{1};  // password hashing
  WsServer ws_;
  asio::steady_timer node_timer_{io_};
  asio::steady_timer drain_timer_{io_};
  asio::steady_timer idle_timer_{io_};
  bool idle_sweep_armed_ = false;
  std::atomic<bool> io_stopped_{false};  // finish_shutdown ran: on_io waits no more
  asio::steady_timer shutdown_timer_{io_};
  asio::signal_set signals_{io_};
  std::shared_ptr<asio::ssl::context> tls_context_;  // TLS: every connection's, made by load_tls()

  std::unique_ptr<SqliteStore> sqlite_;
#ifdef PARLEY_WITH_REDIS
  std::unique_ptr<RedisStore> redis_;
#endif
  PresenceStore* presence_store_ = nullptr;
  std::unique_ptr<MessageStore> memory_messages_;
  std::unique_ptr<MembershipStore> memory_membership_;
  std::unique_ptr<SessionDirectory> memory_directory_;
  std::unique_ptr<TimedMessageStore> messages_;
  // The executor's own store connection (--store-executor thread).
  std::unique_ptr<SqliteStore> append_sqlite_;
#ifdef PARLEY_WITH_REDIS
  std::unique_ptr<RedisStore> append_redis_;
#endif
  std::unique_ptr<TimedMessageStore> append_messages_;
  std::unique_ptr<ThreadedExecutor> executor_;  // before node_, after its stores: joined in between
  MembershipStore* membership_ = nullptr;
  SessionDirectory* directory_ = nullptr;
  std::unique_ptr<Auth> auth_;
  NotifierStats notify_stats_;
  std::unique_ptr<Notifier> notifier_;
  std::shared_ptr<const ClientCodec> codec_;
  Limits limits_;
  std::unique_ptr<Node> node_;
  std::map<std::string, std::unique_ptr<HttpPoster>> posters_;  // after node_: stopped first
  std::unique_ptr<httplib::Server> peer_http_;
  std::thread peer_thread_;

  std::unordered_map<SessionId, ConnPtr> sessions_;
  std::set<SessionId> draining_;
  std::unordered_map<const std::string*, std::pair<Frame, WsMessagePtr>> prepared_;  // this turn's
  SessionId next_session_ = 0;
  bool flush_pending_ = false;
  bool drain_timer_armed_ = false;
  bool shutting_down_ = false;
  bool sessions_closing_ = false;
  bool finished_ = false;
  uint16_t port_ = 0;

  uint64_t connections_opened_ = 0;
  uint64_t connections_closed_ = 0;
  uint64_t idle_closed_ = 0;
  uint64_t frames_in_ = 0;
  uint64_t frames_out_ = 0;
  uint64_t auth_failures_ = 0;
  std::map<int, uint64_t> http_responses_;
  Histogram peer_batch_bytes_{{256, 1024, 4096, 16384, 65536, 262144, 1048576}};
};

Server::Server(Config config) {
  if (config.tls()) {
    impl_ = std::make_unique<ServerImpl<TlsWsConfig>>(std::move(config));
  } else {
    impl_ = std::make_unique<ServerImpl<PlainWsConfig>>(std::move(config));
  }
}
Server::~Server() = default;
int Server::start() {
  return impl_->start();
}
int Server::run() {
  return impl_->run();
}
void Server::stop() {
  impl_->stop();
}
uint16_t Server::port() const {
  return impl_->port();
}

}  // namespace parley::server
