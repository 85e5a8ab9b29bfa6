// A small synchronous Redis client over hiredis 0.14 for the Redis stores:
// pipelines, timeouts, reconnect with backoff, and Redis Cluster routing
// (slot map from CLUSTER SLOTS, MOVED and ASK redirections).
//
// One Client talks to one standalone Redis or to one Redis Cluster; which of
// the two is found out at connect (CLUSTER SLOTS is refused by a standalone
// server). In cluster mode each command goes to the master owning the slot of
// its key (the hash tag {...} rule of the cluster spec); commands without a
// key go to any master.
//
// Failures: a transport failure (refused, reset, timed out) fails the whole
// run() with kUnavailable or kTimeout and drops the connection; the next run()
// reconnects, but not before a backoff delay (doubling from
// reconnect_min_ms to reconnect_max_ms) has passed since the last failed
// attempt: inside it, run() fails at once instead of blocking the caller
// again. Commands of a failed run() may or may not have been executed.
// Redis error replies (e.g. "ERR ...", "NOSCRIPT ...") are not failures of
// run(): they come back as replies of type kError.
//
// Thread rules: one thread at a time. Internal header (not installed).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "parley/status.hpp"

namespace parley::redis {

// An owned copy of a hiredis reply.
struct Reply {
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<Reply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
  bool is_nil() const { return type == Type::kNil; }
};

// One command: its arguments (binary-safe) and which argument is the key that
// routes it in cluster mode (-1: no key, any master will do). For EVALSHA and
// EVAL the key is argv[3], the first of KEYS.
struct Command {
  std::vector<std::string> argv;
  int key_index = -1;
};

struct Endpoint {
  std::string host;
  int port = 6379;
};

struct Options {
  // Where to connect: one standalone server, or any masters of a cluster.
  std::vector<Endpoint> seeds;
  int connect_timeout_ms = 1000;
  int command_timeout_ms = 2000;
  int reconnect_min_ms = 100;
  int reconnect_max_ms = 5000;
  std::string password;   // AUTH after connect when not empty
  int max_redirects = 5;  // MOVED/ASK hops per command
};

// Parses "redis://host:port[,host:port...]" or "host:port[,...]".
// kInvalidArgument for anything else.
Result<std::vector<Endpoint>> parse_endpoints(const std::string& text);

// The cluster hash slot (0..16383) of a key: CRC16/XMODEM of the key, or of
// the part between the first '{' and the next '}' when that part is not empty.
uint16_t key_slot(const std::string& key);

class Client {
 public:
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  virtual ~Client() = default;

  // Connects to the first reachable seed and learns whether it is a cluster.
  // kUnavailable if no seed answers.
  static Result<std::unique_ptr<Client>> connect(const Options& options);

  // Sends every command, pipelined (per master in cluster mode), and puts one
  // reply per command, in order, into *out (cleared first). MOVED and ASK
  // replies are followed (at most max_redirects times per command); a MOVED
  // also refreshes the slot map.
  virtual Status run(const std::vector<Command>& commands, std::vector<Reply>* out) = 0;

  // run() of one command.
  Result<Reply> call(Command command);

  virtual bool cluster_mode() const = 0;
  // Number of masters it knows (1 when standalone).
  virtual size_t masters() const = 0;

 protected:
  Client() = default;
};

}  // namespace parley::redis
