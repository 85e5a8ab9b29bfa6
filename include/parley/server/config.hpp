// parley-server's configuration: command-line flags, optionally read from a
// config file (TOML or INI, parsed by CLI11; flags given on the command line
// win). `parley-server --help` lists every option with its default.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace parley::server {

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const;
};
// Parses "host:port" or "[v6]:port".
bool parse_endpoint(const std::string& text, Endpoint* out);

struct PeerConfig {
  std::string node_id;
  Endpoint address;  // the peer's --peer-listen address
};

struct Config {
  Endpoint listen{"127.0.0.1", 8080};
  std::string node_id = "node-1";
  std::string data_dir = "./parley-data";
  std::string db;                // SQLite file; default DATA_DIR/parley.db
  std::string store = "sqlite";  // or "memory", or "redis"
  std::string sync = "full";     // SQLite synchronous: full or normal
  // Where appends run: "thread" (a store connection on a thread of its own,
  // group-committing across turns) or "inline" (on the serving thread). The
  // memory store always appends inline.
  std::string store_executor = "thread";
  // Serving threads: one shard (a node with its own loop, sockets and store
  // connections) per thread, sharing the listening port (SO_REUSEPORT) and
  // linked in process (docs/decisions.md 46). 0: one per core. The memory
  // store has one shard (a memory store is one node's).
  int threads = 1;

  // Redis (--store redis): one server, or any masters of a Redis Cluster.
  std::string redis = "redis://127.0.0.1:6379";
  std::string redis_password;
  std::string redis_prefix = "parley";
  int64_t redis_timeout_ms = 2000;
  int64_t redis_dedup_ttl_s = 24 * 3600;
  uint64_t retain_messages = 0;  // per group; 0: keep all
  int64_t retain_ms = 0;         // 0: keep forever

  // Accounts and tokens.
  bool dev = false;        // any user name logs in
  std::string users_file;  // name:pbkdf2-sha256$iter$salt$hash lines
  std::string secret;      // token HMAC key; default: DATA_DIR/secret (made once)
  std::string api_key;     // the server API's key; default: DATA_DIR/api-key (made once)
  int64_t token_ttl_s = 86400;
  // The app's own tokens (JWTs, docs/server.md): HS256 with jwt_secret,
  // RS256/ES256 with the public keys of the jwks file (read again when it
  // changes); the user is the jwt_user_claim claim; jwt_audience and
  // jwt_issuer, when set, must match "aud" and "iss".
  std::string jwt_secret;
  std::string jwks_file;
  std::string jwt_user_claim = "sub";
  std::string jwt_audience;
  std::string jwt_issuer;
  int64_t jwt_leeway_s = 30;  // clock skew allowed on exp and nbf

  // Cluster.
  Endpoint peer_listen;  // port 0 with empty host: no peer listener
  std::vector<PeerConfig> peers;
  std::string cluster_secret;
  int64_t peer_timeout_ms = 2000;
  std::string forward = "adaptive";  // or "fixed"
  int64_t batch_ms = 50;
  int64_t gap_grace_ms = 150;  // how long an early message waits for the one before it

  // TLS (docs/server.md#tls). With tls_cert and tls_key, --listen speaks
  // only HTTPS and WSS. With peer_tls_cert, peer_tls_key and peer_tls_ca,
  // peer links are TLS both ways: the peer listener serves that certificate
  // and asks callers for one; calls to peers show it and check theirs.
  std::string tls_cert;  // PEM certificate chain
  std::string tls_key;   // PEM private key
  std::string peer_tls_cert;
  std::string peer_tls_key;
  std::string peer_tls_ca;  // PEM CA bundle that peers' certificates must chain to
  bool tls() const { return !tls_cert.empty(); }
  bool peer_tls() const { return !peer_tls_cert.empty(); }

  // Notifications.
  std::string webhook;  // http://host:port/path; empty: log notifier only
  int64_t webhook_timeout_ms = 2000;
  size_t webhook_queue = 10000;

  // Limits and behaviour.
  size_t session_queue_bytes = 1 << 20;
  size_t max_contents_bytes = 64 * 1024;
  size_t max_frame_bytes = 0;  // 0: 4 x max contents + 64 KiB
  size_t max_http_body_bytes = 1 << 20;
  size_t pull_min_members = 100;
  double pull_enter_rate = 20.0;
  double pull_exit_rate = 5.0;
  size_t tail_per_group = 1024;

  // Per-user limits (limit_exceeded, HTTP 429). 0: none.
  size_t max_connections_per_user = 32;  // on this node
  double send_rate = 0;                  // sends a second per user on this node (0: off)
  double send_burst = 50;
  size_t max_groups_per_user = 1000;    // create + join
  // Joins, leaves and removals through the HTTP API become entries of the
  // group's log (join / leave / removed), so rosters stay live in clients.
  bool membership_entries = false;
  int64_t handshake_timeout_ms = 5000;  // HTTP request or WebSocket upgrade read in full
  int64_t idle_timeout_ms = 60000;      // silent session: pinged at half, closed at whole (0: off)

  std::string web_root;  // serve the web client from here instead of the built-in copy
  std::string log_level = "info";
  std::string hash_password_user;
  bool handle_signals = true;  // SIGINT/SIGTERM stop the server (off when embedded)  // --hash-password NAME:
                               // print a users-file line and exit
};

// Parses argv (and the --config file). False when the process should exit
// now with *exit_code (after --help, --version or an error, already printed).
bool parse_config(int argc, char** argv, Config* out, int* exit_code);

}  // namespace parley::server
