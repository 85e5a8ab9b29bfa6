// parley_durability_writer DB_PATH SEED
//
// Appends to the SQLite store at DB_PATH (default options: WAL, Sync::kFull)
// until killed: batches of 1..20 messages spread over a few groups, each with
// a unique client_msg_id ("s<SEED>-<n>"), now and then a resend of a key it
// already had acknowledged. After every successful append it writes one line
// per outcome to stdout and flushes:
//
//   ack <group_id> <msg_id> <client_msg_id>
//
// A line on stdout therefore means "the store said this is committed"; the
// driver (sqlite_kill9_test.cpp) kills this process with SIGKILL and checks
// every such line against the reopened store. Exit status 1 and a message on
// stderr if the store fails.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "parley/clock.hpp"
#include "parley/sqlite_store.hpp"

namespace {

constexpr const char* kGroups[] = {"g0", "g1", "g2"};

int fail(const parley::Status& s) {
  std::fprintf(stderr, "durability writer: %s\n", s.to_string().c_str());
  return 1;
}

// One batch: mostly new keys, sometimes a resend of an acknowledged one.
std::vector<parley::AppendRequest> next_batch(parley::Random& random, const std::string& prefix,
                                              uint64_t* counter,
                                              const std::vector<std::string>& acknowledged) {
  std::vector<parley::AppendRequest> batch(random.range(1, 20));
  for (parley::AppendRequest& r : batch) {
    r.group_id = kGroups[random.below(std::size(kGroups))];
    r.user_id = "writer";
    r.timestamp_ms = static_cast<int64_t>(*counter);
    const bool resend = !acknowledged.empty() && random.chance(0.05);
    r.client_msg_id =
        resend ? acknowledged[random.below(acknowledged.size())] : prefix + std::to_string((*counter)++);
    r.contents = std::string(random.range(0, 300), 'a' + static_cast<char>(random.below(26)));
  }
  return batch;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DB_PATH SEED\n", argv[0]);
    return 2;
  }
  const std::string seed = argv[2];
  auto opened = parley::open_sqlite_store(argv[1]);
  if (!opened) return fail(opened.status());
  parley::SqliteStore& store = **opened;

  parley::Random random(std::strtoull(seed.c_str(), nullptr, 10));
  const std::string prefix = "s" + seed + "-";
  uint64_t counter = 0;
  std::vector<std::string> acknowledged;
  for (;;) {
    const std::vector<parley::AppendRequest> batch = next_batch(random, prefix, &counter, acknowledged);
    std::vector<parley::AppendOutcome> out;
    if (parley::Status s = store.append(batch, &out); !s) return fail(s);
    for (const parley::AppendOutcome& o : out) {
      std::printf("ack %s %llu %s\n", o.message.group_id.c_str(),
                  static_cast<unsigned long long>(o.message.msg_id), o.message.client_msg_id.c_str());
      if (!o.duplicate) acknowledged.push_back(o.message.client_msg_id);
    }
    std::fflush(stdout);
  }
}
