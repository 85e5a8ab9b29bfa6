// The Redis client (see redis_client.hpp) over hiredis' synchronous API.
//
// A Node is one server: its connection (connected lazily) and its reconnect
// backoff. ClientImpl routes commands to nodes, pipelines them per node (all
// nodes are written before any is read, so masters work concurrently), and
// follows MOVED and ASK redirections one command at a time.
#include "store/redis_client.hpp"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <string_view>
#include <unordered_map>

namespace parley::redis {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr int kSlots = 16384;
constexpr int kNoNode = -1;

// CRC16/XMODEM (polynomial 0x1021, initial value 0), as the cluster spec.
constexpr std::array<uint16_t, 256> make_crc16_table() {
  std::array<uint16_t, 256> table{};
  for (int i = 0; i < 256; ++i) {
    uint16_t crc = static_cast<uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
    }
    table[static_cast<size_t>(i)] = crc;
  }
  return table;
}

constexpr std::array<uint16_t, 256> kCrc16Table = make_crc16_table();

uint16_t crc16(const char* data, size_t size) {
  uint16_t crc = 0;
  for (size_t i = 0; i < size; ++i) {
    const auto byte = static_cast<unsigned char>(data[i]);
    crc = static_cast<uint16_t>((crc << 8) ^ kCrc16Table[((crc >> 8) ^ byte) & 0xff]);
  }
  return crc;
}

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

Reply copy_reply(const redisReply& r) {
  Reply out;
  switch (r.type) {
    case REDIS_REPLY_STRING: out.type = Reply::Type::kString; break;
    case REDIS_REPLY_STATUS: out.type = Reply::Type::kStatus; break;
    case REDIS_REPLY_ERROR: out.type = Reply::Type::kError; break;
    case REDIS_REPLY_INTEGER: out.type = Reply::Type::kInteger; break;
    case REDIS_REPLY_ARRAY: out.type = Reply::Type::kArray; break;
    default: out.type = Reply::Type::kNil; break;
  }
  if (out.type == Reply::Type::kInteger) out.integer = r.integer;
  if ((out.type == Reply::Type::kString || out.type == Reply::Type::kStatus ||
       out.type == Reply::Type::kError) &&
      r.str != nullptr) {
    out.str.assign(r.str, r.len);
  }
  if (out.type == Reply::Type::kArray && r.element != nullptr) {
    out.elements.reserve(r.elements);
    for (size_t i = 0; i < r.elements; ++i) {
      out.elements.push_back(r.element[i] != nullptr ? copy_reply(*r.element[i]) : Reply{});
    }
  }
  return out;
}

timeval to_timeval(int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  return tv;
}

std::string endpoint_name(const Endpoint& e) {
  return fmt::format("{}:{}", e.host, e.port);
}

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

// hiredis writes with write(2): a peer that reset the connection raises
// SIGPIPE, which kills a process that did not ignore it. While a guard lives,
// SIGPIPE is blocked in this thread; one raised meanwhile is consumed (the
// write itself fails with EPIPE). The approach of libpq.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    blocked_ = pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_mask_) == 0;
    sigset_t pending;
    was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeGuard() {
    if (!blocked_) return;
    sigset_t pending;
    if (!was_pending_ && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
      const timespec zero{};
      while (sigtimedwait(&pipe_set_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_set_;
  sigset_t old_mask_;
  bool blocked_ = false;
  bool was_pending_ = false;
};

// One server: a lazily made connection and the backoff of its reconnects.
// Every failure drops the connection: a reply may still be on its way.
class Node {
 public:
  Node(Endpoint endpoint, const Options* options)
      : endpoint_(std::move(endpoint)), name_(endpoint_name(endpoint_)), options_(options) {}

  const Endpoint& endpoint() const { return endpoint_; }
  const std::string& name() const { return name_; }
  bool connected() const { return ctx_ != nullptr; }
  // Replies appended for but not read yet.
  size_t pending() const { return pending_; }
  // If the last failure was of a connection that had answered before, clears
  // it and the backoff, so the next ensure() connects at once. Once per
  // connection: a fresh one that fails is not stale.
  bool forgive_if_stale() {
    if (!stale_) return false;
    stale_ = false;
    backoff_ms_ = 0;
    return true;
  }

  // Connects (and AUTHs) unless connected. Inside the backoff delay after a
  // failure, fails at once with kUnavailable.
  Status ensure() {
    if (ctx_) return Status::ok();
    const SteadyClock::time_point now = SteadyClock::now();
    if (backoff_ms_ > 0 && now < retry_at_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(retry_at_ - now).count();
      return error(Code::kUnavailable, fmt::format("redis at {} is down (retrying in {} ms): {}", name_,
                                                   std::max<long long>(left, 1), last_error_));
    }
    redisContext* raw = options_->connect_timeout_ms > 0
                            ? redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port,
                                                      to_timeval(options_->connect_timeout_ms))
                            : redisConnect(endpoint_.host.c_str(), endpoint_.port);
    if (raw == nullptr) return failed(Code::kUnavailable, "connect failed: out of memory");
    ContextPtr ctx(raw);
    if (ctx->err != 0) return failed(Code::kUnavailable, fmt::format("connect failed: {}", ctx->errstr));
    if (options_->command_timeout_ms > 0 &&
        redisSetTimeout(ctx.get(), to_timeval(options_->command_timeout_ms)) != REDIS_OK) {
      return failed(Code::kUnavailable, fmt::format("cannot set the command timeout: {}", ctx->errstr));
    }
    ctx_ = std::move(ctx);
    if (!options_->password.empty()) {
      Reply reply;
      if (Status st = exchange1({"AUTH", options_->password}, &reply); !st) return st;
      if (reply.is_error()) return failed(Code::kUnauthenticated, fmt::format("AUTH refused: {}", reply.str));
    }
    backoff_ms_ = 0;
    return Status::ok();
  }

  // REQUIRES: connected(). Queues a command in the output buffer.
  Status append(const std::vector<std::string>& argv) {
    std::vector<const char*> args;
    std::vector<size_t> sizes;
    args.reserve(argv.size());
    sizes.reserve(argv.size());
    for (const std::string& a : argv) {
      args.push_back(a.data());
      sizes.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(args.size()), args.data(), sizes.data()) !=
        REDIS_OK) {
      return transport_failure("cannot queue a command");
    }
    ++pending_;
    return Status::ok();
  }

  // REQUIRES: connected(). Writes the whole output buffer.
  Status flush() {
    int done = 0;
    while (done == 0) {
      if (redisBufferWrite(ctx_.get(), &done) != REDIS_OK) return transport_failure("write failed");
    }
    return Status::ok();
  }

  // REQUIRES: connected() and pending() > 0. Reads the next reply.
  Status read(Reply* out) {
    void* raw = nullptr;
    if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) {
      ReplyPtr discard(static_cast<redisReply*>(raw));
      return transport_failure("read failed");
    }
    ReplyPtr reply(static_cast<redisReply*>(raw));
    --pending_;
    answered_ = true;
    *out = copy_reply(*reply);
    return Status::ok();
  }

  // REQUIRES: connected(). Sends commands and reads one reply each.
  Status exchange(const std::vector<const std::vector<std::string>*>& commands, std::vector<Reply>* replies) {
    for (const std::vector<std::string>* argv : commands) {
      if (Status st = append(*argv); !st) return st;
    }
    if (Status st = flush(); !st) return st;
    replies->resize(commands.size());
    for (Reply& r : *replies) {
      if (Status st = read(&r); !st) return st;
    }
    return Status::ok();
  }

  Status exchange1(const std::vector<std::string>& argv, Reply* reply) {
    std::vector<Reply> replies;
    if (Status st = exchange({&argv}, &replies); !st) return st;
    *reply = std::move(replies[0]);
    return Status::ok();
  }

  // Drops the connection without blaming the server (its replies were left
  // unread because another server failed).
  void close() {
    ctx_.reset();
    pending_ = 0;
    answered_ = false;
  }

 private:
  // Drops the connection after a transport error of hiredis and starts the
  // backoff. kTimeout when the socket timed out, else kUnavailable.
  Status transport_failure(const char* what) {
    const int saved_errno = errno;
    const bool timed_out = ctx_ && ctx_->err == REDIS_ERR_IO &&
                           (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK ||
                            std::strstr(ctx_->errstr, "timed out") != nullptr ||
                            std::strstr(ctx_->errstr, "Resource temporarily unavailable") != nullptr);
    if (timed_out) {
      return failed(Code::kTimeout,
                    fmt::format("command timed out after {} ms", options_->command_timeout_ms));
    }
    const char* detail = ctx_ && ctx_->errstr[0] != '\0' ? ctx_->errstr : "unknown error";
    return failed(Code::kUnavailable, fmt::format("{}: {}", what, detail));
  }

  Status failed(Code code, std::string what) {
    stale_ = answered_ && ctx_ != nullptr;
    close();
    const int min_ms = std::max(options_->reconnect_min_ms, 0);
    const int max_ms = std::max(options_->reconnect_max_ms, min_ms);
    if (backoff_ms_ == 0) {
      backoff_ms_ = min_ms;
    } else {
      backoff_ms_ = backoff_ms_ > max_ms / 2 ? max_ms : backoff_ms_ * 2;
    }
    retry_at_ = SteadyClock::now() + std::chrono::milliseconds(backoff_ms_);
    last_error_ = std::move(what);
    return error(code, fmt::format("redis at {}: {}", name_, last_error_));
  }

  Endpoint endpoint_;
  std::string name_;
  const Options* options_;
  ContextPtr ctx_;
  size_t pending_ = 0;
  bool answered_ = false;  // the connection answered at least once
  bool stale_ = false;     // the last failure was of a connection that had answered
  int backoff_ms_ = 0;     // 0: the last attempt did not fail
  SteadyClock::time_point retry_at_;
  std::string last_error_;
};

struct Redirect {
  bool ask = false;
  int slot = 0;
  Endpoint target;
};

// "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381".
bool parse_redirect(const Reply& reply, Redirect* out) {
  if (!reply.is_error()) return false;
  const std::string& s = reply.str;
  size_t pos = 0;
  if (starts_with(s, "MOVED ")) {
    out->ask = false;
    pos = 6;
  } else if (starts_with(s, "ASK ")) {
    out->ask = true;
    pos = 4;
  } else {
    return false;
  }
  const size_t space = s.find(' ', pos);
  const size_t colon = s.rfind(':');
  if (space == std::string::npos || colon == std::string::npos || colon < space) return false;
  char* end = nullptr;
  const long slot = std::strtol(s.c_str() + pos, &end, 10);
  if (end != s.c_str() + space || slot < 0 || slot >= kSlots) return false;
  const long port = std::strtol(s.c_str() + colon + 1, &end, 10);
  if (end != s.c_str() + s.size() || port <= 0 || port > 65535) return false;
  out->slot = static_cast<int>(slot);
  out->target.host = s.substr(space + 1, colon - space - 1);
  out->target.port = static_cast<int>(port);
  return !out->target.host.empty();
}

class ClientImpl final : public Client {
 public:
  explicit ClientImpl(const Options& options) : options_(options) { slots_.fill(kNoNode); }

  // Tries the seeds in order; see Client::connect.
  Status start() {
    if (options_.seeds.empty()) return error(Code::kInvalidArgument, "no redis endpoint given");
    std::string failures;
    for (const Endpoint& seed : options_.seeds) {
      const int index = node_index(seed);
      Status st = probe(index);
      if (st || st.code() == Code::kUnauthenticated) return st;
      failures += failures.empty() ? st.message() : "; " + st.message();
    }
    return error(Code::kUnavailable, fmt::format("no redis server answers: {}", failures));
  }

  Status run(const std::vector<Command>& commands, std::vector<Reply>* out) override {
    Status st = run_once(commands, out);
    if (st || st.code() != Code::kUnavailable) return st;
    // A connection that had worked failed: the server most likely dropped it
    // while it was idle (a restart, a timeout). One more try, on a fresh one.
    bool stale = false;
    for (const std::unique_ptr<Node>& node : nodes_) stale |= node->forgive_if_stale();
    return stale ? run_once(commands, out) : st;
  }

  Status run_once(const std::vector<Command>& commands, std::vector<Reply>* out) {
    out->clear();
    if (commands.empty()) return Status::ok();
    SigpipeGuard sigpipe_guard;
    refreshed_this_run_ = false;
    if (cluster_ && refresh_needed_) refresh_slots();
    std::vector<std::vector<size_t>> batches;
    Status st = connect_targets(commands, &batches);
    // A master is down: its slots may have moved to another (failover).
    if (!st && cluster_ && !refreshed_this_run_ && refresh_slots()) st = connect_targets(commands, &batches);
    std::vector<Reply> replies(commands.size());
    if (st) st = send_batches(commands, batches, &replies);
    if (st) st = follow_redirects(commands, &replies);
    if (!st) {
      for (const std::unique_ptr<Node>& node : nodes_) {
        if (node->pending() > 0) node->close();
      }
      return st;
    }
    *out = std::move(replies);
    return Status::ok();
  }

  bool cluster_mode() const override { return cluster_; }
  size_t masters() const override { return cluster_ ? masters_.size() : 1; }

 private:
  // Connects to a seed and learns whether it is a cluster (and its slot map).
  Status probe(int index) {
    Node& node = *nodes_[static_cast<size_t>(index)];
    if (Status st = node.ensure(); !st) return st;
    Reply reply;
    if (Status st = node.exchange1({"CLUSTER", "SLOTS"}, &reply); !st) return st;
    if (reply.is_error()) {
      if (starts_with(reply.str, "NOAUTH") || starts_with(reply.str, "WRONGPASS")) {
        node.close();
        return error(Code::kUnauthenticated, fmt::format("redis at {}: {}", node.name(), reply.str));
      }
      // "ERR This instance has cluster support disabled" (or a server without
      // CLUSTER at all): a standalone server.
      cluster_ = false;
      standalone_ = index;
      return Status::ok();
    }
    cluster_ = true;
    if (!install_slots(reply, node.endpoint())) refresh_needed_ = true;
    return Status::ok();
  }

  // The node of an endpoint, made on first use.
  int node_index(const Endpoint& endpoint) {
    const std::string name = endpoint_name(endpoint);
    auto it = by_name_.find(name);
    if (it != by_name_.end()) return it->second;
    nodes_.push_back(std::make_unique<Node>(endpoint, &options_));
    const int index = static_cast<int>(nodes_.size() - 1);
    by_name_.emplace(name, index);
    return index;
  }

  // Replaces the slot map by a CLUSTER SLOTS reply (masters only). False if
  // the reply holds no slot.
  bool install_slots(const Reply& reply, const Endpoint& asked) {
    if (reply.type != Reply::Type::kArray) return false;
    std::array<int, kSlots> slots;
    slots.fill(kNoNode);
    bool any = false;
    for (const Reply& range : reply.elements) {
      if (range.type != Reply::Type::kArray || range.elements.size() < 3) continue;
      const Reply& master = range.elements[2];
      if (range.elements[0].type != Reply::Type::kInteger ||
          range.elements[1].type != Reply::Type::kInteger || master.type != Reply::Type::kArray ||
          master.elements.size() < 2 || master.elements[1].type != Reply::Type::kInteger) {
        continue;
      }
      const long long first = range.elements[0].integer;
      const long long last = range.elements[1].integer;
      if (first < 0 || last >= kSlots || first > last) continue;
      Endpoint endpoint{master.elements[0].str, static_cast<int>(master.elements[1].integer)};
      // An empty or "?" address: the node does not know it; it is the one asked.
      if (endpoint.host.empty() || endpoint.host == "?") endpoint.host = asked.host;
      const int index = node_index(endpoint);
      std::fill(slots.begin() + first, slots.begin() + last + 1, index);
      any = true;
    }
    if (!any) return false;
    slots_ = slots;
    update_masters();
    return true;
  }

  void update_masters() {
    masters_.clear();
    for (int index : slots_) {
      if (index != kNoNode && std::find(masters_.begin(), masters_.end(), index) == masters_.end()) {
        masters_.push_back(index);
      }
    }
  }

  // Asks the known nodes (masters first, then the other seeds and nodes), one
  // after the other, for CLUSTER SLOTS until one answers with a map.
  bool refresh_slots() {
    refreshed_this_run_ = true;
    std::vector<int> order = masters_;
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
      if (std::find(order.begin(), order.end(), i) == order.end()) order.push_back(i);
    }
    for (int index : order) {
      Node& node = *nodes_[static_cast<size_t>(index)];
      if (!node.ensure()) continue;
      Reply reply;
      if (!node.exchange1({"CLUSTER", "SLOTS"}, &reply)) continue;
      if (install_slots(reply, node.endpoint())) {
        refresh_needed_ = false;
        return true;
      }
    }
    refresh_needed_ = true;
    return false;
  }

  // The node a command goes to.
  int route(const Command& command) const {
    if (!cluster_) return standalone_;
    if (command.key_index >= 0 && static_cast<size_t>(command.key_index) < command.argv.size()) {
      const int index = slots_[key_slot(command.argv[static_cast<size_t>(command.key_index)])];
      if (index != kNoNode) return index;
    }
    return any_master();
  }

  // A master, preferring a connected one; a seed when the map is empty.
  int any_master() const {
    for (int index : masters_) {
      if (nodes_[static_cast<size_t>(index)]->connected()) return index;
    }
    if (!masters_.empty()) return masters_.front();
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
      if (nodes_[static_cast<size_t>(i)]->connected()) return i;
    }
    return 0;
  }

  // A node failed: in cluster mode its slots may have moved (failover), so the
  // next run() asks the others for the map first.
  Status node_failed(Status st) {
    if (cluster_) refresh_needed_ = true;
    return st;
  }

  // Groups the commands by node (batches[node] lists command indexes, in
  // order) and connects the nodes that get some.
  Status connect_targets(const std::vector<Command>& commands, std::vector<std::vector<size_t>>* batches) {
    batches->assign(nodes_.size(), {});
    for (size_t i = 0; i < commands.size(); ++i) {
      (*batches)[static_cast<size_t>(route(commands[i]))].push_back(i);
    }
    for (size_t n = 0; n < batches->size(); ++n) {
      if ((*batches)[n].empty()) continue;
      if (Status st = nodes_[n]->ensure(); !st) return node_failed(st);
    }
    return Status::ok();
  }

  // Sends every batch to its node: all nodes are written before any is read.
  Status send_batches(const std::vector<Command>& commands, const std::vector<std::vector<size_t>>& batches,
                      std::vector<Reply>* replies) {
    for (size_t n = 0; n < batches.size(); ++n) {
      for (size_t i : batches[n]) {
        if (Status st = nodes_[n]->append(commands[i].argv); !st) return node_failed(st);
      }
    }
    Status first_failure;
    for (size_t n = 0; n < batches.size(); ++n) {
      if (batches[n].empty()) continue;
      if (Status st = nodes_[n]->flush(); !st && first_failure) first_failure = st;
    }
    for (size_t n = 0; n < batches.size(); ++n) {
      if (batches[n].empty() || !nodes_[n]->connected()) continue;
      for (size_t i : batches[n]) {
        if (Status st = nodes_[n]->read(&(*replies)[i]); !st) {
          if (first_failure) first_failure = st;
          break;
        }
      }
    }
    if (!first_failure) return node_failed(first_failure);
    return Status::ok();
  }

  // Follows the MOVED and ASK replies, one command at a time.
  Status follow_redirects(const std::vector<Command>& commands, std::vector<Reply>* replies) {
    if (!cluster_) return Status::ok();
    for (size_t i = 0; i < commands.size(); ++i) {
      Redirect redirect;
      for (int hops = 0; hops < options_.max_redirects && parse_redirect((*replies)[i], &redirect); ++hops) {
        if (Status st = resend(commands[i], redirect, &(*replies)[i]); !st) return st;
      }
    }
    return Status::ok();
  }

  Status resend(const Command& command, const Redirect& redirect, Reply* reply) {
    const int target = node_index(redirect.target);
    if (!redirect.ask) moved(redirect.slot, target);
    Node& node = *nodes_[static_cast<size_t>(target)];
    if (Status st = node.ensure(); !st) return node_failed(st);
    static const std::vector<std::string> kAsking = {"ASKING"};
    std::vector<const std::vector<std::string>*> argvs;
    if (redirect.ask) argvs.push_back(&kAsking);
    argvs.push_back(&command.argv);
    std::vector<Reply> got;
    if (Status st = node.exchange(argvs, &got); !st) return node_failed(st);
    *reply = std::move(got.back());
    return Status::ok();
  }

  // A MOVED: the whole map is refreshed (once per run), else just this slot.
  void moved(int slot, int target) {
    if (slots_[static_cast<size_t>(slot)] == target) return;
    if (!refreshed_this_run_) refresh_slots();
    if (slots_[static_cast<size_t>(slot)] == target) return;
    slots_[static_cast<size_t>(slot)] = target;
    update_masters();
  }

  Options options_;
  std::vector<std::unique_ptr<Node>> nodes_;  // seeds and masters; never removed
  std::unordered_map<std::string, int> by_name_;
  bool cluster_ = false;
  int standalone_ = 0;             // the node of a standalone server
  std::array<int, kSlots> slots_;  // slot -> node (kNoNode: unassigned)
  std::vector<int> masters_;       // the distinct nodes of slots_
  bool refresh_needed_ = false;    // ask for CLUSTER SLOTS before the next run
  bool refreshed_this_run_ = false;
};

bool parse_port(const std::string& text, int* port) {
  if (text.empty() || text.size() > 5) return false;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  if (value < 1 || value > 65535) return false;
  *port = value;
  return true;
}

// "host:port" or "[v6 address]:port".
bool parse_endpoint(const std::string& text, Endpoint* out) {
  size_t colon = 0;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    out->host = text.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string::npos) return false;
    out->host = text.substr(0, colon);
    if (out->host.find(':') != std::string::npos) return false;
  }
  if (out->host.empty()) return false;
  for (char c : out->host) {
    if (c == ' ' || c == '/' || c == '@' || c == '[' || c == ']' || static_cast<unsigned char>(c) < 0x20) {
      return false;
    }
  }
  return parse_port(text.substr(colon + 1), &out->port);
}

}  // namespace

Result<std::vector<Endpoint>> parse_endpoints(const std::string& text) {
  const std::string_view kScheme = "redis://";
  std::string rest = text;
  if (rest.compare(0, kScheme.size(), kScheme) == 0) rest.erase(0, kScheme.size());
  std::vector<Endpoint> endpoints;
  size_t begin = 0;
  while (true) {
    const size_t comma = rest.find(',', begin);
    const std::string item =
        rest.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
    Endpoint endpoint;
    if (!parse_endpoint(item, &endpoint)) {
      return error(Code::kInvalidArgument,
                   fmt::format("bad redis endpoint '{}' in '{}' (want [redis://]host:port[,host:port...])",
                               item, text));
    }
    endpoints.push_back(std::move(endpoint));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return endpoints;
}

uint16_t key_slot(const std::string& key) {
  const size_t open = key.find('{');
  if (open != std::string::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string::npos && close > open + 1) {
      return crc16(key.data() + open + 1, close - open - 1) & (kSlots - 1);
    }
  }
  return crc16(key.data(), key.size()) & (kSlots - 1);
}

Result<Reply> Client::call(Command command) {
  std::vector<Command> commands;
  commands.push_back(std::move(command));
  std::vector<Reply> replies;
  if (Status st = run(commands, &replies); !st) return st;
  return std::move(replies[0]);
}

Result<std::unique_ptr<Client>> Client::connect(const Options& options) {
  auto client = std::make_unique<ClientImpl>(options);
  SigpipeGuard sigpipe_guard;
  if (Status st = client->start(); !st) return st;
  return std::unique_ptr<Client>(std::move(client));
}

}  // namespace parley::redis
