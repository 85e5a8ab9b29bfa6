// durability/sqlite_kill9 WRITER_EXE
//
// 100 rounds on one database file: start parley_durability_writer, wait until
// it has acknowledged a random number (1..200) of messages on its stdout pipe,
// SIGKILL it (usually in the middle of a transaction), then reopen the store
// and check that every message ever acknowledged is there with the same
// msg_id and client_msg_id, that each group's ids are dense 1..head, that no
// key is stored twice, and that integrity_check passes.
//
// What this proves and what it cannot: docs/durability.md. In short, the page
// cache survives kill -9, so this checks transactions and recovery, not fsync.
//
// Environment: PARLEY_DURABILITY_SEED (default: random, printed),
// PARLEY_DURABILITY_ROUNDS (default 100). Exit status 0 on success.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "parley/clock.hpp"
#include "parley/sqlite_store.hpp"

namespace {

constexpr int kPollTimeoutMs = 30000;  // a writer silent this long has hung

struct Ack {
  std::string group_id;
  uint64_t msg_id = 0;
  std::string client_msg_id;
};

// A running writer process whose stdout is a pipe to us.
class Writer {
 public:
  Writer(const std::string& exe, const std::string& db_path, uint64_t seed) {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      const std::string seed_text = std::to_string(seed);
      execl(exe.c_str(), exe.c_str(), db_path.c_str(), seed_text.c_str(), nullptr);
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  ~Writer() {
    kill_and_drain(nullptr);
    if (fd_ >= 0) close(fd_);
  }

  bool started() const { return pid_ > 0 && fd_ >= 0; }

  // Reads acknowledgements until *acks holds `count`. Returns "" or why not.
  std::string read_until(size_t count, std::vector<Ack>* acks) {
    while (acks->size() < count) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, kPollTimeoutMs) <= 0) return "writer silent for 30 s";
      if (!read_some(acks)) return "writer exited early: " + reap();
    }
    return "";
  }

  // SIGKILLs the writer and collects what it acknowledged before dying.
  // Does nothing once the writer has been reaped.
  void kill_and_drain(std::vector<Ack>* acks) {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    std::vector<Ack> ignored;
    while (read_some(acks != nullptr ? acks : &ignored)) {
    }
    reap();
  }

 private:
  // Reads once; false at end of file (or on error).
  bool read_some(std::vector<Ack>* acks) {
    char chunk[4096];
    const ssize_t n = read(fd_, chunk, sizeof chunk);
    if (n <= 0) return false;
    pending_.append(chunk, static_cast<size_t>(n));
    for (size_t end; (end = pending_.find('\n')) != std::string::npos; pending_.erase(0, end + 1)) {
      std::istringstream line(pending_.substr(0, end));
      std::string word;
      Ack ack;
      if (line >> word >> ack.group_id >> ack.msg_id >> ack.client_msg_id && word == "ack") {
        acks->push_back(std::move(ack));
      }
    }
    return true;
  }

  std::string reap() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
    return "exit status " + std::to_string(WEXITSTATUS(status));
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  std::string pending_;  // an incomplete last line
};

// Every acknowledgement so far: group -> msg_id -> client_msg_id.
using Acked = std::map<std::string, std::map<uint64_t, std::string>>;

// Adds `ack`; an ack must never contradict an earlier one.
std::string record(const Ack& ack, Acked* acked) {
  auto [it, inserted] =
      acked->try_emplace(ack.group_id).first->second.try_emplace(ack.msg_id, ack.client_msg_id);
  if (inserted || it->second == ack.client_msg_id) return "";
  return "acks disagree on " + ack.group_id + "/" + std::to_string(ack.msg_id) + ": '" + it->second +
         "' vs '" + ack.client_msg_id + "'";
}

std::string check_group(parley::SqliteStore& store, const std::string& group_id,
                        const std::map<uint64_t, std::string>& acked, std::set<std::string>* keys) {
  std::vector<parley::GroupHead> heads;
  std::vector<parley::Message> messages;
  if (parley::Status s = store.heads({group_id}, &heads); !s) return s.to_string();
  if (parley::Status s = store.read(group_id, 0, SIZE_MAX, &messages); !s) return s.to_string();
  const std::string where = "group " + group_id + ": ";
  if (heads[0].epoch != 1) return where + "epoch " + std::to_string(heads[0].epoch);
  if (messages.size() != heads[0].head) {
    return where + std::to_string(messages.size()) + " messages, head " + std::to_string(heads[0].head);
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const parley::Message& m = messages[i];
    if (m.msg_id != i + 1)
      return where + "id " + std::to_string(m.msg_id) + " at position " + std::to_string(i + 1);
    if (!keys->insert(m.client_msg_id).second) return where + "key stored twice: " + m.client_msg_id;
  }
  for (const auto& [msg_id, key] : acked) {
    if (msg_id > messages.size()) return where + "acknowledged id " + std::to_string(msg_id) + " lost";
    if (messages[msg_id - 1].client_msg_id != key) {
      return where + "id " + std::to_string(msg_id) + " holds '" + messages[msg_id - 1].client_msg_id +
             "', acknowledged as '" + key + "'";
    }
  }
  return "";
}

// Reopens the store and checks everything acknowledged so far.
std::string check_store(const std::string& db_path, const Acked& acked) {
  auto opened = parley::open_sqlite_store(db_path);
  if (!opened) return "reopen: " + opened.status().to_string();
  parley::SqliteStore& store = **opened;
  if (parley::Status s = store.integrity_check(); !s) return s.to_string();
  std::set<std::string> keys;
  for (const auto& [group_id, ids] : acked) {
    if (std::string e = check_group(store, group_id, ids, &keys); !e.empty()) return e;
  }
  return "";
}

uint64_t env_or(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoull(v, nullptr, 10) : fallback;
}

// One round: returns "" or what went wrong.
std::string run_round(const std::string& writer_exe, const std::string& db_path, uint64_t seed, size_t target,
                      Acked* acked, size_t* acked_this_round) {
  std::vector<Ack> acks;
  Writer writer(writer_exe, db_path, seed);
  if (!writer.started()) return "could not start the writer";
  std::string failure = writer.read_until(target, &acks);
  writer.kill_and_drain(&acks);
  *acked_this_round = acks.size();
  if (!failure.empty()) return failure;
  for (const Ack& ack : acks) {
    if (std::string e = record(ack, acked); !e.empty()) return e;
  }
  return check_store(db_path, *acked);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PATH_TO_parley_durability_writer\n", argv[0]);
    return 2;
  }
  const uint64_t seed = env_or("PARLEY_DURABILITY_SEED", std::random_device{}());
  const uint64_t rounds = env_or("PARLEY_DURABILITY_ROUNDS", 100);
  std::printf("durability/sqlite_kill9: seed %llu, %llu rounds\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(rounds));
  std::fflush(stdout);

  std::string dir = std::filesystem::temp_directory_path().string() + "/parley-kill9-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return 2;
  const std::string db_path = dir + "/parley.db";

  parley::Random random(seed);
  Acked acked;
  size_t total = 0;
  int status = 0;
  for (uint64_t round = 0; round < rounds && status == 0; ++round) {
    const size_t target = static_cast<size_t>(random.range(1, 200));
    size_t got = 0;
    const std::string failure = run_round(argv[1], db_path, seed + round, target, &acked, &got);
    total += got;
    if (!failure.empty()) {
      std::fprintf(stderr,
                   "round %llu (target %zu acks, got %zu): %s\n"
                   "reproduce: PARLEY_DURABILITY_SEED=%llu %s %s\n",
                   static_cast<unsigned long long>(round), target, got, failure.c_str(),
                   static_cast<unsigned long long>(seed), argv[0], argv[1]);
      status = 1;
    }
  }
  if (status != 0) {
    std::fprintf(stderr, "database kept in %s\n", dir.c_str());
    return status;
  }
  std::filesystem::remove_all(dir);
  std::printf("ok: %zu acknowledged messages checked over %llu kills\n", total,
              static_cast<unsigned long long>(rounds));
  return 0;
}
