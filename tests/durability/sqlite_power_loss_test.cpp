// durability/power_loss [full|normal]
//
// Simulated power loss under the SQLite store (docs/durability.md). Each mode,
// Sync::kFull then Sync::kNormal, runs its rounds on one database file opened
// through PowerLossVfs (power_loss_vfs.hpp), in this process:
//
//  1. Open the store and check it (below) against what the test knows.
//  2. Append 1..8 batches of 1..20 messages over four groups, now and then
//     with a resend of a stored key. A batch is acknowledged when append
//     returns ok. Every outcome must carry the id the test predicts, so the
//     appends continue from the head the store recovered.
//  3. Cut the power: after the last batch (a quarter of the rounds), at a
//     random sync (a quarter) or at a random write, truncate or sync of the
//     database or WAL. An append that fails then leaves its batch "in
//     doubt", and the round ends.
//  4. Close the store (SQLite can write nothing more; one round in eight
//     closes it before the cut instead, which checkpoints and deletes the
//     WAL) and reboot: every file keeps what was synced and a random subset
//     of the rest.
//
// The check after reopening: integrity_check passes; each group's ids are
// dense from 1 to its head, epoch 1; every message confirmed by an earlier
// check is still there; each batch of the last round is there whole or not at
// all, the survivors are a prefix of the round's commits, and nothing else is
// stored. With kFull an acknowledged batch must never be lost. With kNormal
// (no fsync before the ack) the run must lose some acknowledged batch: else
// the test could not tell a synced commit from an unsynced one.
//
// The last reopen of each mode uses the default VFS. Every round's connection
// gets a random wal_autocheckpoint (4..1000 pages), so checkpoints and WAL
// restarts happen inside rounds and power cuts land in them.
//
// Environment: PARLEY_POWER_SEED (default: random, printed), PARLEY_POWER_ROUNDS
// (rounds per mode, default 200). Exit status 0 on success.
#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "parley/clock.hpp"
#include "parley/sqlite_store.hpp"
#include "power_loss_vfs.hpp"

namespace {

using parley::durability::PowerLossVfs;
using Sync = parley::SqliteOptions::Sync;

constexpr const char* kGroups[] = {"g0", "g1", "g2", "g3"};
constexpr size_t kGroupCount = std::size(kGroups);
constexpr const char* kUser = "writer";
constexpr int kCheckpointPages[] = {4, 32, 250, 1000};
// A cut in the middle of a round comes at one of this many VFS calls or syncs.
constexpr uint64_t kMaxCutCalls = 150;
constexpr uint64_t kMaxCutSyncs = 10;

// The connection this process opened last. The store does not expose its
// handle, so an auto extension (run inside every sqlite3_open_v2) records it;
// it cannot set wal_autocheckpoint itself, as SQLite sets the default after
// running auto extensions.
sqlite3* last_opened = nullptr;

int record_connection(sqlite3* db, char**, const sqlite3_api_routines*) {
  last_opened = db;
  return SQLITE_OK;
}

// A message as the test expects to read it back.
struct Expected {
  std::string client_msg_id;
  std::string contents;
};

// A message of a batch and the id the store gave it (or would have).
struct Slot {
  size_t group = 0;
  uint64_t msg_id = 0;
  Expected message;
};

struct Batch {
  std::vector<Slot> fresh;  // new messages only: a resend writes nothing
  bool acknowledged = false;
};

// What the test knows about the store.
struct Model {
  // Per group, read back after a power loss: [msg_id - 1].
  std::array<std::vector<Expected>, kGroupCount> confirmed;
  std::vector<Batch> unconfirmed;  // appended since the last power loss, in commit order
  uint64_t next_key = 0;
};

struct Totals {
  uint64_t acked_batches = 0;
  uint64_t acked_messages = 0;
  uint64_t in_doubt = 0;       // batches in flight at a power cut (append failed)
  uint64_t in_doubt_kept = 0;  // ... that survived anyway
  uint64_t lost_rounds = 0;    // rounds that lost an acknowledged batch
  uint64_t lost_batches = 0;
  uint64_t lost_messages = 0;
  uint64_t compared = 0;      // stored messages compared with the model, over all reopens
  uint64_t clean_closes = 0;  // rounds that closed the store before the power cut
};

// One mode's run.
struct Run {
  Sync sync;
  std::string db_path;
  parley::Random random;
  Model model;
  Totals totals;
};

const char* name_of(Sync sync) {
  return sync == Sync::kFull ? "full" : "normal";
}

std::string where(size_t group, uint64_t msg_id) {
  return std::string(kGroups[group]) + "/" + std::to_string(msg_id);
}

std::string expect_message(const parley::Message& m, const Expected& e, const std::string& at) {
  if (m.client_msg_id != e.client_msg_id || m.user_id != kUser) {
    return at + " holds '" + m.client_msg_id + "' from '" + m.user_id + "', expected '" + e.client_msg_id +
           "'";
  }
  if (m.contents != e.contents) return at + " ('" + e.client_msg_id + "'): contents differ";
  return "";
}

// Reads a group whole: ids dense 1..head, epoch 1 (0 while empty).
std::string read_group(parley::SqliteStore& store, size_t group, std::vector<parley::Message>* messages) {
  std::vector<parley::GroupHead> heads;
  if (parley::Status s = store.heads({kGroups[group]}, &heads); !s) return s.to_string();
  if (parley::Status s = store.read(kGroups[group], 0, SIZE_MAX, messages); !s) return s.to_string();
  const std::string at = std::string("group ") + kGroups[group] + ": ";
  const parley::GroupHead& head = heads[0];
  if (head.head > 0 ? head.epoch != 1 : head.epoch > 1) return at + "epoch " + std::to_string(head.epoch);
  if (messages->size() != head.head) {
    return at + std::to_string(messages->size()) + " messages, head " + std::to_string(head.head);
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    const uint64_t id = (*messages)[i].msg_id;
    if (id != i + 1) return at + "id " + std::to_string(id) + " at position " + std::to_string(i + 1);
  }
  return "";
}

using Stored = std::array<std::vector<parley::Message>, kGroupCount>;

// Decides which batches of the last round survived: each whole or not at all,
// the survivors a prefix of the round, nothing stored beyond them. Moves the
// survivors into `confirmed`.
std::string absorb_round(const Stored& stored, Run* run) {
  Model& model = run->model;
  Totals& totals = run->totals;
  bool lost_earlier = false;
  bool lost_acked = false;
  for (size_t b = 0; b < model.unconfirmed.size(); ++b) {
    const Batch& batch = model.unconfirmed[b];
    if (batch.fresh.empty()) continue;
    size_t present = 0;
    for (const Slot& slot : batch.fresh) {
      const std::vector<parley::Message>& messages = stored[slot.group];
      if (slot.msg_id > messages.size()) continue;
      const std::string at = where(slot.group, slot.msg_id);
      if (std::string e = expect_message(messages[slot.msg_id - 1], slot.message, at); !e.empty()) return e;
      ++present;
    }
    const std::string which =
        "batch " + std::to_string(b + 1) + " of " + std::to_string(model.unconfirmed.size()) +
        (batch.acknowledged ? " (acknowledged, " : " (in doubt, ") + std::to_string(batch.fresh.size()) +
        " messages, first " + where(batch.fresh[0].group, batch.fresh[0].msg_id) + ")";
    if (present == 0) {
      lost_earlier = true;
      if (!batch.acknowledged) continue;
      if (run->sync == Sync::kFull) return which + " lost";
      lost_acked = true;
      ++totals.lost_batches;
      totals.lost_messages += batch.fresh.size();
      continue;
    }
    if (present < batch.fresh.size()) return which + " torn: " + std::to_string(present) + " survived";
    if (lost_earlier) return which + " survived, but an earlier batch was lost";
    if (!batch.acknowledged) ++totals.in_doubt_kept;
    for (const Slot& slot : batch.fresh) model.confirmed[slot.group].push_back(slot.message);
  }
  if (lost_acked) ++totals.lost_rounds;
  model.unconfirmed.clear();
  for (size_t g = 0; g < kGroupCount; ++g) {
    if (stored[g].size() != model.confirmed[g].size()) {
      return std::string("group ") + kGroups[g] + ": " + std::to_string(stored[g].size()) +
             " messages stored, " + std::to_string(model.confirmed[g].size()) + " expected";
    }
  }
  return "";
}

// Checks a store just reopened after a power loss and updates the model.
std::string check_store(parley::SqliteStore& store, Run* run) {
  if (parley::Status s = store.integrity_check(); !s) return s.to_string();
  Stored stored;
  for (size_t g = 0; g < kGroupCount; ++g) {
    if (std::string e = read_group(store, g, &stored[g]); !e.empty()) return e;
    const std::vector<Expected>& confirmed = run->model.confirmed[g];
    if (stored[g].size() < confirmed.size()) {
      return "confirmed " + where(g, stored[g].size() + 1) + " lost";
    }
    for (size_t i = 0; i < confirmed.size(); ++i) {
      if (std::string e = expect_message(stored[g][i], confirmed[i], where(g, i + 1)); !e.empty()) return e;
    }
    run->totals.compared += stored[g].size();
  }
  return absorb_round(stored, run);
}

std::string random_contents(parley::Random& random) {
  std::string contents(static_cast<size_t>(random.range(0, 300)), ' ');
  for (char& c : contents) c = static_cast<char>('a' + random.below(26));
  return contents;
}

// A request and the outcome it must get.
struct Planned {
  Slot slot;
  bool resend = false;
};

// Mostly a new message (its id: the group's next), sometimes a resend of a
// confirmed one.
Planned plan(Run* run, std::array<uint64_t, kGroupCount>* heads) {
  Model& model = run->model;
  parley::Random& random = run->random;
  const size_t g = random.below(kGroupCount);
  const std::vector<Expected>& confirmed = model.confirmed[g];
  if (!confirmed.empty() && random.chance(0.05)) {
    const size_t i = random.below(confirmed.size());
    return {{g, i + 1, confirmed[i]}, true};
  }
  Expected fresh{"k" + std::to_string(model.next_key++), random_contents(random)};
  return {{g, ++(*heads)[g], std::move(fresh)}, false};
}

std::string check_outcomes(const std::vector<Planned>& planned,
                           const std::vector<parley::AppendOutcome>& out) {
  if (out.size() != planned.size()) return "append returned " + std::to_string(out.size()) + " outcomes";
  for (size_t i = 0; i < out.size(); ++i) {
    const Slot& slot = planned[i].slot;
    const parley::Message& m = out[i].message;
    const std::string at = "outcome " + std::to_string(i) + " (" + slot.message.client_msg_id + ")";
    if (out[i].duplicate != planned[i].resend) return at + ": duplicate flag wrong";
    if (m.group_id != kGroups[slot.group] || m.msg_id != slot.msg_id) {
      return at + ": id " + m.group_id + "/" + std::to_string(m.msg_id) + ", expected " +
             where(slot.group, slot.msg_id) + " (the store does not continue from its head)";
    }
    if (std::string e = expect_message(m, slot.message, at); !e.empty()) return e;
  }
  return "";
}

// Appends this round's batches until they are done or the power is off.
std::string append_batches(parley::SqliteStore& store, const PowerLossVfs& vfs, Run* run) {
  std::array<uint64_t, kGroupCount> heads{};
  for (size_t g = 0; g < kGroupCount; ++g) heads[g] = run->model.confirmed[g].size();
  const int64_t batches = run->random.range(1, 8);
  for (int64_t b = 0; b < batches && vfs.power_is_on(); ++b) {
    std::vector<Planned> planned(static_cast<size_t>(run->random.range(1, 20)));
    std::vector<parley::AppendRequest> requests;
    Batch batch;
    for (Planned& p : planned) {
      p = plan(run, &heads);
      requests.push_back({kGroups[p.slot.group], kUser, p.slot.message.client_msg_id, p.slot.message.contents,
                          static_cast<int64_t>(run->model.next_key)});
      if (!p.resend) batch.fresh.push_back(p.slot);
    }
    std::vector<parley::AppendOutcome> out;
    const parley::Status s = store.append(requests, &out);
    if (!s && vfs.power_is_on()) return "append failed with the power on: " + s.to_string();
    batch.acknowledged = s.is_ok();
    if (!s) {
      ++run->totals.in_doubt;
    } else {
      if (std::string e = check_outcomes(planned, out); !e.empty()) return e;
      ++run->totals.acked_batches;
      run->totals.acked_messages += batch.fresh.size();
    }
    run->model.unconfirmed.push_back(std::move(batch));
  }
  return "";
}

parley::SqliteOptions options_for(Sync sync, const char* vfs) {
  parley::SqliteOptions options;
  options.sync = sync;
  options.vfs = vfs;
  return options;
}

// How likely an unsynced write is to survive this power loss: in a quarter of
// the rounds every one does (the cache had been written back, so a batch in
// doubt survives), in a quarter none does whole, otherwise uniform.
double keep_probability(parley::Random& random) {
  switch (random.below(4)) {
    case 0: return 1.0;
    case 1: return 0.0;
    default: return random.unit();
  }
}

// One round: reopen and check, append, cut the power, reboot.
std::string run_round(PowerLossVfs& vfs, Run* run) {
  parley::Random& random = run->random;
  auto opened = parley::open_sqlite_store(run->db_path, options_for(run->sync, PowerLossVfs::kName));
  if (!opened) return "reopen: " + opened.status().to_string();
  const int pages = kCheckpointPages[random.below(std::size(kCheckpointPages))];
  if (sqlite3_wal_autocheckpoint(last_opened, pages) != SQLITE_OK) return "wal_autocheckpoint failed";
  if (std::string e = check_store(**opened, run); !e.empty()) return e;
  switch (random.below(4)) {
    case 0: break;  // after the last batch
    case 1: vfs.power_off_after(static_cast<uint64_t>(random.range(1, kMaxCutSyncs)), true); break;
    default: vfs.power_off_after(static_cast<uint64_t>(random.range(1, kMaxCutCalls)));
  }
  // Usually the power goes before the store is closed, so SQLite's attempts to
  // checkpoint on close fail. Now and then the store is closed first, which
  // checkpoints and deletes the WAL (unless the cut comes in the middle), and
  // the next round starts a new WAL.
  const bool clean_close = random.chance(0.125);
  const std::string failure = append_batches(**opened, vfs, run);
  if (!clean_close) vfs.power_off();
  if (vfs.power_is_on()) ++run->totals.clean_closes;
  opened->reset();
  vfs.power_off();
  if (!failure.empty()) return failure;
  if (!vfs.error().empty()) return "power-loss VFS: " + vfs.error();
  return vfs.reboot(random, keep_probability(random));
}

// The last reopen, through the default VFS; closing it checkpoints cleanly.
std::string final_check(Run* run) {
  auto opened = parley::open_sqlite_store(run->db_path, options_for(run->sync, ""));
  if (!opened) return "final reopen: " + opened.status().to_string();
  return check_store(**opened, run);
}

void print_figures(const Run& run, uint64_t rounds, double seconds,
                   const parley::durability::PowerLossStats& st) {
  const Totals& t = run.totals;
  const auto n = [](uint64_t v) { return std::to_string(v); };
  char time[32];
  std::snprintf(time, sizeof time, "%.1f", seconds);
  std::string text = "ok: sync=" + std::string(name_of(run.sync)) + ", " + n(rounds) + " rounds in " + time +
                     " s: " + n(t.acked_messages) + " acknowledged messages in " + n(t.acked_batches) +
                     " batches";
  if (run.sync == Sync::kFull) {
    text += ", none lost";
  } else {
    text += "; acknowledged messages lost in " + n(t.lost_rounds) + " rounds (" + n(t.lost_messages) +
            " messages in " + n(t.lost_batches) + " batches), as expected without an fsync before the ack";
  }
  text += "\n    " + n(t.in_doubt) + " power cuts failed an append (" + n(t.in_doubt_kept) +
          " of those batches were kept anyway), " + n(st.losses_in_checkpoint) + " cut a checkpoint short, " +
          n(t.clean_closes) + " rounds closed the store first; " + n(t.compared) +
          " stored messages compared after reopening";
  text += "\n    unsynced writes at the cuts: " + n(st.writes_kept) + " kept, " + n(st.writes_torn) +
          " torn, " + n(st.writes_dropped) + " dropped; " + n(st.syncs) + " syncs; " + n(st.files_vanished) +
          " never-synced files vanished\n";
  std::fputs(text.c_str(), stdout);
}

// Runs one mode's rounds; returns the exit status.
int run_mode(Sync sync, uint64_t seed, uint64_t rounds, const std::string& dir, const char* exe) {
  PowerLossVfs& vfs = PowerLossVfs::install();
  vfs.reset();
  Run run{sync, dir + "/" + name_of(sync) + ".db", parley::Random(seed), {}, {}};
  const auto start = std::chrono::steady_clock::now();
  std::string failure;
  uint64_t round = 0;
  for (; round < rounds; ++round) {
    failure = run_round(vfs, &run);
    if (!failure.empty()) break;
  }
  if (failure.empty()) failure = final_check(&run);
  if (failure.empty() && sync == Sync::kNormal && run.totals.lost_batches == 0) {
    failure =
        "Sync::kNormal lost no acknowledged message: the test cannot tell a synced commit from an "
        "unsynced one";
  }
  if (!failure.empty()) {
    const std::string at = round < rounds ? "round " + std::to_string(round) : "the final reopen";
    std::fprintf(stderr,
                 "sync=%s, %s: %s\n"
                 "reproduce: PARLEY_POWER_SEED=%llu PARLEY_POWER_ROUNDS=%llu %s %s\n"
                 "database kept in %s\n",
                 name_of(sync), at.c_str(), failure.c_str(), static_cast<unsigned long long>(seed),
                 static_cast<unsigned long long>(rounds), exe, name_of(sync), dir.c_str());
    return 1;
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  print_figures(run, rounds, elapsed.count(), vfs.stats());
  vfs.reset();
  return 0;
}

uint64_t env_or(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoull(v, nullptr, 10) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Sync> modes = {Sync::kFull, Sync::kNormal};
  if (argc == 2 && std::strcmp(argv[1], "full") == 0) modes = {Sync::kFull};
  if (argc == 2 && std::strcmp(argv[1], "normal") == 0) modes = {Sync::kNormal};
  if (argc > 2 || (argc == 2 && modes.size() != 1)) {
    std::fprintf(stderr, "usage: %s [full|normal]\n", argv[0]);
    return 2;
  }
  const uint64_t seed = env_or("PARLEY_POWER_SEED", std::random_device{}());
  const uint64_t rounds = env_or("PARLEY_POWER_ROUNDS", 200);
  std::printf("durability/power_loss: seed %llu, %llu rounds per mode\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(rounds));
  std::fflush(stdout);
  sqlite3_auto_extension(reinterpret_cast<void (*)()>(record_connection));

  std::string dir = std::filesystem::temp_directory_path().string() + "/parley-power-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return 2;
  for (Sync sync : modes) {
    if (int status = run_mode(sync, seed, rounds, dir, argv[0]); status != 0) return status;
  }
  std::filesystem::remove_all(dir);
  return 0;
}
