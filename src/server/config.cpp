#include "parley/server/config.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <thread>

#include "parley/version.hpp"

namespace parley::server {

std::string Endpoint::to_string() const {
  return host.find(':') != std::string::npos ? "[" + host + "]:" + std::to_string(port)
                                             : host + ":" + std::to_string(port);
}

bool parse_endpoint(const std::string& text, Endpoint* out) {
  std::string host;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return false;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  unsigned long p = std::stoul(port);
  if (p > 65535) return false;
  out->host = host;
  out->port = static_cast<uint16_t>(p);
  return true;
}

bool parse_config(int argc, char** argv, Config* out, int* exit_code) {
  *exit_code = 2;
  Config& c = *out;
  CLI::App app{"parley-server: group chat over WebSocket and HTTP, on the Parley engine"};
  app.set_version_flag("--version", PARLEY_VERSION_STRING);
  app.set_config("--config", "", "read options from this file (TOML or INI; command-line flags win)");
  app.get_formatter()->column_width(34);

  std::string listen = c.listen.to_string();
  std::string peer_listen;
  std::vector<std::string> peers;
  app.add_option("--listen", listen, "HTTP + WebSocket address (port 0: pick one and print it)")
      ->capture_default_str();
  app.add_option("--node-id", c.node_id, "this node's id in the cluster")->capture_default_str();
  app.add_option("--data-dir", c.data_dir, "directory for the SQLite file and the token secret")
      ->capture_default_str();
  app.add_option("--db", c.db, "SQLite file (default DATA_DIR/parley.db); nodes may share one");
  app.add_option("--store", c.store, "message, membership and session stores")
      ->check(CLI::IsMember({"sqlite", "memory", "redis"}))
      ->capture_default_str();
  app.add_option("--redis", c.redis,
                 "--store redis: redis://HOST:PORT, or several masters of a cluster (comma-separated)")
      ->capture_default_str();
  app.add_option("--redis-password", c.redis_password, "Redis AUTH password");
  app.add_option("--redis-prefix", c.redis_prefix,
                 "prefix of every Redis key (several deployments on one Redis)")
      ->capture_default_str();
  app.add_option("--redis-timeout-ms", c.redis_timeout_ms, "Redis connect and command timeout")
      ->check(CLI::Range(int64_t{1}, int64_t{600000}))
      ->capture_default_str();
  app.add_option("--redis-dedup-ttl", c.redis_dedup_ttl_s,
                 "seconds a resend (same cid) is recognised on Redis")
      ->check(CLI::Range(int64_t{1}, int64_t{365} * 86400))
      ->capture_default_str();
  app.add_option("--retain-messages", c.retain_messages,
                 "Redis: keep this many messages per group, trim older ones (0: keep all)")
      ->capture_default_str();
  app.add_option("--retain-ms", c.retain_ms, "Redis: trim messages older than this (0: keep forever)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--sync", c.sync, "SQLite durability: full (fsync per commit) or normal")
      ->check(CLI::IsMember({"full", "normal"}))
      ->capture_default_str();

  app.add_option("--store-executor", c.store_executor,
                 "sqlite/redis store work (appends, reads, lookups, directory): on a thread of its own (thread) or on the serving thread (inline)")
      ->check(CLI::IsMember({"thread", "inline"}))
      ->capture_default_str();

  int threads = 0;
  app.add_option("--threads", threads,
                 "serving threads, one shard (node, sockets, store connections) each, on one port (0: one per core; --store memory: 1)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();

  app.add_flag("--dev", c.dev, "development login: any user name, no password");
  app.add_option("--users", c.users_file, "users file: NAME:pbkdf2-sha256$ITER$SALT$HASH per line");
  app.add_option("--secret", c.secret, "token signing secret (default: DATA_DIR/secret, made once)");
  app.add_option("--api-key", c.api_key,
                 "the server API's key (Authorization: ApiKey KEY on /v1/server/...; default: DATA_DIR/api-key, "
                 "made once)");
  app.add_option("--token-ttl", c.token_ttl_s, "token lifetime in seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--jwt-secret", c.jwt_secret, "accept the app's HS256 JWTs signed with this secret (32+ bytes)");
  app.add_option("--jwks", c.jwks_file, "accept the app's RS256/ES256 JWTs: its public keys, a JWKS file (re-read when it changes)");
  app.add_option("--jwt-user-claim", c.jwt_user_claim, "the JWT claim that names the user")->capture_default_str();
  app.add_option("--jwt-audience", c.jwt_audience, "the \"aud\" a JWT must carry");
  app.add_option("--jwt-issuer", c.jwt_issuer, "the \"iss\" a JWT must carry");
  app.add_option("--jwt-leeway", c.jwt_leeway_s, "seconds of clock skew allowed on a JWT's exp and nbf")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();

  app.add_option("--peer-listen", peer_listen, "peer transport address (POST /v1/peer/batch)");
  app.add_option("--peer", peers, "a peer node: ID=HOST:PORT (its --peer-listen); repeat per peer");
  app.add_option("--cluster-secret", c.cluster_secret, "shared secret of the peer transport");
  app.add_option("--peer-timeout-ms", c.peer_timeout_ms, "peer call timeout")->capture_default_str();
  app.add_option("--forward", c.forward,
                 "peer batching: adaptive (send when idle) or fixed (every --batch-ms)")
      ->check(CLI::IsMember({"adaptive", "fixed"}))
      ->capture_default_str();
  app.add_option("--batch-ms", c.batch_ms, "fixed batching period (random phase and jitter added)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--gap-grace-ms", c.gap_grace_ms,
                 "how long a message that arrives early waits for the ones before it (then: read from the store)")
      ->check(CLI::Range(1, 60000))
      ->capture_default_str();

  app.add_option("--tls-cert", c.tls_cert,
                 "serve HTTPS + WSS only, with this PEM certificate chain (and --tls-key)");
  app.add_option("--tls-key", c.tls_key, "PEM private key of --tls-cert");
  app.add_option("--peer-tls-cert", c.peer_tls_cert,
                 "peer links over TLS both ways, with this node's PEM certificate (and the next two)");
  app.add_option("--peer-tls-key", c.peer_tls_key, "PEM private key of --peer-tls-cert");
  app.add_option("--peer-tls-ca", c.peer_tls_ca,
                 "PEM CA certificate(s) that peers' certificates must chain to");

  app.add_option("--webhook", c.webhook, "POST offline notifications as JSON to this http:// URL");
  app.add_option("--webhook-timeout-ms", c.webhook_timeout_ms, "webhook request timeout")
      ->capture_default_str();
  app.add_option("--webhook-queue", c.webhook_queue, "notifications queued at most (then dropped)")
      ->capture_default_str();

  app.add_option("--session-queue", c.session_queue_bytes,
                 "unwritten bytes per connection before it is cut off")
      ->capture_default_str();
  app.add_option("--max-contents", c.max_contents_bytes, "largest message contents in bytes")
      ->check(CLI::Range(size_t{1}, size_t{16} << 20))
      ->capture_default_str();
  app.add_option("--max-frame", c.max_frame_bytes,
                 "largest WebSocket frame read (0: 4 x max-contents + 64 KiB)");
  app.add_option("--max-http-body", c.max_http_body_bytes, "largest HTTP request body")
      ->capture_default_str();
  app.add_option("--pull-min-members", c.pull_min_members, "groups this large may switch to pull mode")
      ->capture_default_str();
  app.add_option("--pull-enter-rate", c.pull_enter_rate,
                 "messages/s above which such a group switches to pull")
      ->capture_default_str();
  app.add_option("--pull-exit-rate", c.pull_exit_rate, "messages/s below which it switches back to push")
      ->capture_default_str();
  app.add_option("--max-connections-per-user", c.max_connections_per_user,
                 "WebSocket connections one user may hold on this node (0: no limit)")
      ->capture_default_str();
  app.add_option("--send-rate", c.send_rate, "sends a second one user may make on this node (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--send-burst", c.send_burst, "sends beyond --send-rate allowed in a burst")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-groups-per-user", c.max_groups_per_user, "groups one user may be in (0: no limit)")
      ->capture_default_str();
  app.add_flag("--membership-entries", c.membership_entries,
               "joins, leaves and removals become entries of the group's log (ids then count them too)");
  app.add_option("--handshake-timeout-ms", c.handshake_timeout_ms,
                 "a connection must send its whole HTTP request or upgrade within this (slowloris)")
      ->check(CLI::Range(int64_t{100}, int64_t{600000}))
      ->capture_default_str();
  app.add_option("--idle-timeout-ms", c.idle_timeout_ms,
                 "a WebSocket session silent this long (no frame, no pong to the ping sent at half "
                 "of it) is closed (0: never)")
      ->check(CLI::Range(int64_t{0}, int64_t{86400000}))
      ->capture_default_str();
  app.add_option("--tail-per-group", c.tail_per_group, "messages cached in memory per group")
      ->capture_default_str();

  app.add_option("--web-root", c.web_root, "serve the web client from this directory (default: built in)");
  app.add_option("--log-level", c.log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--hash-password", c.hash_password_user,
                 "read a password on stdin, print a users-file line for NAME and exit");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return false;
  }
  if (!parse_endpoint(listen, &c.listen)) {
    fmt::print(stderr, "--listen: '{}' is not HOST:PORT\n", listen);
    return false;
  }
  if (!peer_listen.empty() && !parse_endpoint(peer_listen, &c.peer_listen)) {
    fmt::print(stderr, "--peer-listen: '{}' is not HOST:PORT\n", peer_listen);
    return false;
  }
  for (const std::string& p : peers) {
    size_t eq = p.find('=');
    PeerConfig pc;
    if (eq == std::string::npos || eq == 0 || !parse_endpoint(p.substr(eq + 1), &pc.address)) {
      fmt::print(stderr, "--peer: '{}' is not ID=HOST:PORT\n", p);
      return false;
    }
    pc.node_id = p.substr(0, eq);
    c.peers.push_back(std::move(pc));
  }
  if (!c.api_key.empty() && c.api_key.size() < 16) {
    fmt::print(stderr, "--api-key: at least 16 characters (it is {})\n", c.api_key.size());
    return false;
  }
  if (!c.peers.empty() && c.cluster_secret.empty()) {
    fmt::print(stderr, "--cluster-secret is required with --peer\n");
    return false;
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    fmt::print(stderr, "--tls-cert and --tls-key go together\n");
    return false;
  }
  const bool any_peer_tls = !c.peer_tls_cert.empty() || !c.peer_tls_key.empty() || !c.peer_tls_ca.empty();
  if (any_peer_tls && (c.peer_tls_cert.empty() || c.peer_tls_key.empty() || c.peer_tls_ca.empty())) {
    fmt::print(stderr, "--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together\n");
    return false;
  }
  if (c.node_id.empty() || c.node_id.find('#') != std::string::npos) {
    fmt::print(stderr, "--node-id: '{}' must be non-empty and without '#' (shards are ID#K)\n", c.node_id);
    return false;
  }
  if (c.store == "memory") {
    if (threads > 1) {
      fmt::print(stderr, "--threads {}: the memory store serves one shard (use --store sqlite or redis)\n", threads);
      return false;
    }
    threads = 1;
  }
  c.threads = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (c.db.empty()) c.db = c.data_dir + "/parley.db";
  if (c.max_frame_bytes == 0) c.max_frame_bytes = 4 * c.max_contents_bytes + 64 * 1024;
  return true;
}

}  // namespace parley::server
