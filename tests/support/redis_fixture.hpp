// Test helpers that run real redis-server processes on 127.0.0.1: one server
// (RedisServer) or a cluster of three masters (RedisCluster), each in its own
// temporary directory, on free ports, stopped and cleaned up by the
// destructor. Setup failures fail the running doctest case (REQUIRE/FAIL).
// Header-only; needs hiredis, doctest, and redis-server on PATH.
//
// Thread rules: one thread at a time; an object belongs to one test case.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace parley::testing {
namespace detail {

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

inline timeval timeval_of(int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = static_cast<suseconds_t>(ms % 1000) * 1000;
  return tv;
}

// A connection to 127.0.0.1:port, or nullptr when it cannot be made.
inline ContextPtr try_connect(int port, int timeout_ms) {
  ContextPtr c(redisConnectWithTimeout("127.0.0.1", port, timeval_of(timeout_ms)));
  if (!c || c->err != 0) return nullptr;
  if (redisSetTimeout(c.get(), timeval_of(timeout_ms)) != REDIS_OK) return nullptr;
  return c;
}

// One command (binary-safe); nullptr on a transport error.
inline ReplyPtr try_command(redisContext* c, const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> sizes;
  for (const std::string& a : argv) {
    args.push_back(a.data());
    sizes.push_back(a.size());
  }
  return ReplyPtr(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), args.data(), sizes.data())));
}

// The text of a reply: a string, status or error as is, an integer in decimal,
// "" for nil and arrays.
inline std::string text_of(const redisReply& r) {
  if (r.type == REDIS_REPLY_INTEGER) return std::to_string(r.integer);
  if (r.str != nullptr) return std::string(r.str, r.len);
  return {};
}

// A blocking connection for test setup and checks. Every failure fails the
// test case.
class Connection {
 public:
  explicit Connection(int port) : port_(port), ctx_(try_connect(port, 10000)) {
    REQUIRE_MESSAGE(ctx_ != nullptr, "cannot connect to redis at 127.0.0.1:" << port);
  }

  // The reply of one command (which may be an error reply).
  ReplyPtr command(const std::vector<std::string>& argv) {
    ReplyPtr reply = try_command(ctx_.get(), argv);
    REQUIRE_MESSAGE(reply != nullptr,
                    "redis at 127.0.0.1:" << port_ << ": " << argv.front() << " failed: " << ctx_->errstr);
    return reply;
  }

  // The text of the reply of one command, which must not be an error.
  std::string ok(const std::vector<std::string>& argv) {
    ReplyPtr reply = command(argv);
    std::string text = text_of(*reply);
    REQUIRE_MESSAGE(reply->type != REDIS_REPLY_ERROR,
                    "redis at 127.0.0.1:" << port_ << ": " << argv.front() << " "
                                          << (argv.size() > 1 ? argv[1] : "") << " answered: " << text);
    return text;
  }

 private:
  int port_;
  ContextPtr ctx_;
};

inline std::string find_on_path(const char* name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// A port nobody listens on now: bind 127.0.0.1:0 and read what it got.
inline int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE_MESSAGE(fd >= 0, "socket(): " << std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t size = sizeof addr;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size) == 0;
  const int saved_errno = errno;
  close(fd);
  REQUIRE_MESSAGE(ok, "cannot find a free port: " << std::strerror(saved_errno));
  return ntohs(addr.sin_port);
}

inline std::string tail_of_file(const std::string& path, size_t max_chars = 2000) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return text.size() > max_chars ? text.substr(text.size() - max_chars) : text;
}

inline bool has_arg(const std::vector<std::string>& args, const char* name) {
  return std::find(args.begin(), args.end(), name) != args.end();
}

// The argument after `name`, or "".
inline std::string arg_value(const std::vector<std::string>& args, const char* name) {
  auto it = std::find(args.begin(), args.end(), name);
  return it != args.end() && it + 1 != args.end() ? *(it + 1) : std::string();
}

}  // namespace detail

// A redis-server child process on 127.0.0.1 on a free port, in its own temp
// dir (its log is redis.log there), started in the constructor (waits until
// PING answers, at most 10 s) and stopped in the destructor (SIGTERM, then
// SIGKILL after 5 s; reaped). With "--cluster-enabled yes" among the extra
// arguments and no "--cluster-port", the cluster bus gets a free port too.
class RedisServer {
 public:
  explicit RedisServer(std::vector<std::string> extra_args = {}) : extra_args_(std::move(extra_args)) {
    binary_ = detail::find_on_path("redis-server");
    if (binary_.empty()) FAIL("redis-server is not on PATH (apt-get install redis-server)");
    char dir[] = "/tmp/parley-redis-XXXXXX";
    REQUIRE_MESSAGE(mkdtemp(dir) != nullptr, "mkdtemp: " << std::strerror(errno));
    dir_ = dir;
    const bool cluster = detail::has_arg(extra_args_, "--cluster-enabled");
    const bool bus_port_given = detail::has_arg(extra_args_, "--cluster-port");
    try {
      // A free port can be taken before redis-server binds it: then try others.
      for (int attempt = 1;; ++attempt) {
        port_ = detail::free_port();
        // The default bus port, port + 10000, is often past 65535.
        if (cluster && !bus_port_given) bus_port_ = detail::free_port();
        if (launch_and_wait(/*may_retry=*/attempt < 3)) break;
      }
    } catch (...) {
      remove_dir();
      throw;
    }
  }

  ~RedisServer() {
    stop();
    remove_dir();
  }

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

  // SIGTERM and wait (SIGKILL after 5 s). The port stays this server's for
  // start(). No-op when not running.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      if (reaped()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill9();
  }

  // SIGKILL and wait. No-op when not running.
  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  // Starts again on the same port and dir; waits for PING (at most 10 s).
  void start() {
    REQUIRE_MESSAGE(!running(), "redis at " << endpoint() << " is already running");
    launch_and_wait(/*may_retry=*/false);
  }

  bool running() const { return pid_ > 0 && !reaped(); }

 private:
  // True once the child has exited (and is reaped).
  bool reaped() const {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
    pid_ = -1;
    return true;
  }

  // Starts redis-server and waits until it answers PING. False if it exited
  // at once and may_retry (e.g. its port was taken); fails the test otherwise.
  bool launch_and_wait(bool may_retry) {
    std::vector<std::string> args = {
        binary_,        "--bind", "127.0.0.1", "--port", std::to_string(port_), "--save", "",
        "--appendonly", "no",     "--dir",     dir_,     "--daemonize",         "no"};
    if (bus_port_ > 0) {
      args.push_back("--cluster-port");
      args.push_back(std::to_string(bus_port_));
    }
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log = dir_ + "/redis.log";
    const pid_t parent = getpid();

    const pid_t pid = fork();
    REQUIRE_MESSAGE(pid >= 0, "fork: " << std::strerror(errno));
    if (pid == 0) {
      // The child: async-signal-safe calls only.
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // no stray server when the test dies
      if (getppid() != parent) _exit(126);
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
      }
      close_range(3, ~0U, 0);
      execv(argv[0], argv.data());
      _exit(127);
    }
    pid_ = pid;

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (true) {
      if (reaped()) {
        if (may_retry) return false;
        FAIL("redis-server on port " << port_ << " exited at start; its log:\n" << detail::tail_of_file(log));
      }
      if (answers_ping()) return true;
      if (std::chrono::steady_clock::now() > deadline) {
        kill9();
        FAIL("redis-server on port " << port_ << " did not answer PING within 10 s; its log:\n"
                                     << detail::tail_of_file(log));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // PING answered by our child (not by another process on the same port),
  // after AUTH when the arguments hold --requirepass.
  bool answers_ping() const {
    detail::ContextPtr c = detail::try_connect(port_, 500);
    if (!c) return false;
    if (const std::string password = detail::arg_value(extra_args_, "--requirepass"); !password.empty()) {
      detail::ReplyPtr auth = detail::try_command(c.get(), {"AUTH", password});
      if (!auth || auth->type == REDIS_REPLY_ERROR) return false;
    }
    detail::ReplyPtr pong = detail::try_command(c.get(), {"PING"});
    if (!pong || pong->type != REDIS_REPLY_STATUS || detail::text_of(*pong) != "PONG") return false;
    detail::ReplyPtr info = detail::try_command(c.get(), {"INFO", "server"});
    if (!info || info->type != REDIS_REPLY_STRING) return false;
    return detail::text_of(*info).find("process_id:" + std::to_string(pid_) + "\r") != std::string::npos;
  }

  void remove_dir() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  std::vector<std::string> extra_args_;
  std::string binary_;
  std::string dir_;
  int port_ = 0;
  int bus_port_ = 0;  // 0: not set by us
  mutable pid_t pid_ = -1;
};

// Three masters with cluster-enabled on loopback. Slots are assigned like
// redis-cli --cluster create does: master 0 owns 0-5460, master 1 5461-10922,
// master 2 10923-16383. The constructor waits (at most 30 s) until every
// master says cluster_state:ok and knows the three.
class RedisCluster {
 public:
  static constexpr size_t kMasters = 3;

  RedisCluster() {
    for (size_t i = 0; i < kMasters; ++i) {
      masters_.push_back(std::make_unique<RedisServer>(std::vector<std::string>{"--cluster-enabled", "yes"}));
    }
    const int ranges[kMasters][2] = {{0, 5460}, {5461, 10922}, {10923, 16383}};
    for (size_t i = 0; i < kMasters; ++i) {
      detail::Connection c(masters_[i]->port());
      c.ok({"CLUSTER", "SET-CONFIG-EPOCH", std::to_string(i + 1)});
      c.ok({"CLUSTER", "ADDSLOTSRANGE", std::to_string(ranges[i][0]), std::to_string(ranges[i][1])});
    }
    detail::Connection first(masters_[0]->port());
    for (size_t i = 1; i < kMasters; ++i) {
      first.ok({"CLUSTER", "MEET", "127.0.0.1", std::to_string(masters_[i]->port()), bus_port(i)});
    }
    wait_until("cluster_state:ok on every master", [this] {
      for (const auto& m : masters_) {
        const std::string info = detail::Connection(m->port()).ok({"CLUSTER", "INFO"});
        if (info.find("cluster_state:ok") == std::string::npos ||
            info.find("cluster_known_nodes:3") == std::string::npos) {
          return false;
        }
      }
      return true;
    });
  }

  std::string seeds() const {
    std::string out;
    for (const auto& m : masters_) out += (out.empty() ? "" : ",") + m->endpoint();
    return out;
  }

  RedisServer& master(size_t i) {
    REQUIRE(i < kMasters);
    return *masters_[i];
  }

  // Moves one slot from the master owning it to master `to_master` with the
  // documented steps: SETSLOT IMPORTING on the target, SETSLOT MIGRATING on
  // the source, MIGRATE of every key, SETSLOT NODE on all masters (then waits
  // until all agree). finish=false stops before SETSLOT NODE: the slot stays
  // migrating, and clients asking the source for a moved key get ASK.
  void move_slot(uint16_t slot, size_t to_master, bool finish = true) {
    REQUIRE(to_master < kMasters);
    const size_t from = owner_of(slot);
    if (from == to_master) return;
    const std::string s = std::to_string(slot);
    const std::string to_id = node_id(to_master);
    detail::Connection src(masters_[from]->port());
    detail::Connection dst(masters_[to_master]->port());
    dst.ok({"CLUSTER", "SETSLOT", s, "IMPORTING", node_id(from)});
    src.ok({"CLUSTER", "SETSLOT", s, "MIGRATING", to_id});
    while (true) {
      detail::ReplyPtr keys = src.command({"CLUSTER", "GETKEYSINSLOT", s, "100"});
      REQUIRE(keys->type == REDIS_REPLY_ARRAY);
      if (keys->elements == 0) break;
      std::vector<std::string> migrate = {
          "MIGRATE", "127.0.0.1", std::to_string(masters_[to_master]->port()), "", "0", "5000", "KEYS"};
      for (size_t k = 0; k < keys->elements; ++k) migrate.push_back(detail::text_of(*keys->element[k]));
      src.ok(migrate);
    }
    if (!finish) return;
    // The target first, then the source, then the others (as the docs advise).
    dst.ok({"CLUSTER", "SETSLOT", s, "NODE", to_id});
    src.ok({"CLUSTER", "SETSLOT", s, "NODE", to_id});
    for (size_t i = 0; i < kMasters; ++i) {
      if (i != from && i != to_master)
        detail::Connection(masters_[i]->port()).ok({"CLUSTER", "SETSLOT", s, "NODE", to_id});
    }
    wait_until("every master to agree on the slot's new owner", [&] {
      for (size_t i = 0; i < kMasters; ++i) {
        if (owner_seen_by(i, slot) != masters_[to_master]->port()) return false;
      }
      return true;
    });
  }

 private:
  template <typename Pred>
  static void wait_until(const char* what, Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) FAIL("redis cluster: gave up waiting for " << what);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  std::string node_id(size_t i) { return detail::Connection(masters_[i]->port()).ok({"CLUSTER", "MYID"}); }

  std::string bus_port(size_t i) {
    detail::Connection c(masters_[i]->port());
    detail::ReplyPtr r = c.command({"CONFIG", "GET", "cluster-port"});
    REQUIRE((r->type == REDIS_REPLY_ARRAY && r->elements == 2));
    const std::string port = detail::text_of(*r->element[1]);
    return port == "0" ? std::to_string(masters_[i]->port() + 10000) : port;
  }

  // The master that says it owns the slot (each is the authority on its own).
  size_t owner_of(uint16_t slot) {
    for (size_t i = 0; i < kMasters; ++i) {
      if (owner_seen_by(i, slot) == masters_[i]->port()) return i;
    }
    FAIL("redis cluster: no master owns slot " << slot);
    return 0;
  }

  // The port of the master owning the slot in master i's CLUSTER SLOTS (0: none).
  int owner_seen_by(size_t i, uint16_t slot) {
    detail::Connection c(masters_[i]->port());
    detail::ReplyPtr r = c.command({"CLUSTER", "SLOTS"});
    REQUIRE(r->type == REDIS_REPLY_ARRAY);
    for (size_t k = 0; k < r->elements; ++k) {
      const redisReply& range = *r->element[k];
      if (range.elements < 3 || range.element[2]->elements < 2) continue;
      if (range.element[0]->integer <= slot && slot <= range.element[1]->integer) {
        return static_cast<int>(range.element[2]->element[1]->integer);
      }
    }
    return 0;
  }

  std::vector<std::unique_ptr<RedisServer>> masters_;
};

}  // namespace parley::testing
