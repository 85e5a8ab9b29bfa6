// parley_sim: runs the deterministic cluster simulation over many seeds.
//
//   parley_sim --seeds N [--from S]     run seeds S..S+N-1 (default S=1); fail on any violation
//   parley_sim --seed S                 replay one seed, printing its summary and violations
//   parley_sim ... --verbose            print every seed's summary, not only failures
//   parley_sim ... --sqlite             run on a SQLite file (one connection per node)
//   parley_sim ... --reads              devices report reads; unread counts and read positions checked
//                                       instead of the memory stores
//   parley_sim --mutant NAME --seeds N  expect the checker to catch the named bug
//                                       within N seeds (no_gap_detection, no_head_sync,
//                                       no_dedup, ack_before_commit, ignore_epochs,
//                                       ack_before_completion)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <unistd.h>

#include "cluster_sim.hpp"

using parley::sim::SimConfig;
using parley::sim::SimResult;

namespace {

bool set_mutant(const std::string& name, parley::detail::Mutations* m) {
  if (name == "no_gap_detection")
    m->no_gap_detection = true;
  else if (name == "no_head_sync")
    m->no_head_sync = true;
  else if (name == "no_dedup")
    m->no_dedup = true;
  else if (name == "ack_before_commit")
    m->ack_before_commit = true;
  else if (name == "ack_before_completion")
    m->ack_before_completion = true;
  else if (name == "ignore_epochs")
    m->ignore_epochs = true;
  else
    return false;
  return true;
}

int usage() {
  std::fprintf(
      stderr, "usage: parley_sim (--seeds N [--from S] | --seed S) [--mutant NAME] [--sqlite] [--reads] [--verbose]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t from = 1, count = 0;
  bool single = false, verbose = false, sqlite = false, reads = false;
  std::string mutant;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--seeds" && (v = next()))
      count = std::strtoull(v, nullptr, 10);
    else if (a == "--from" && (v = next()))
      from = std::strtoull(v, nullptr, 10);
    else if (a == "--seed" && (v = next()))
      from = std::strtoull(v, nullptr, 10), count = 1, single = true;
    else if (a == "--mutant" && (v = next()))
      mutant = v;
    else if (a == "--verbose")
      verbose = true;
    else if (a == "--sqlite")
      sqlite = true;
    else if (a == "--reads")
      reads = true;
    else
      return usage();
  }
  if (count == 0) return usage();
  SimConfig base;
  base.read_reports = reads;
  if (!mutant.empty() && !set_mutant(mutant, &base.mutations)) {
    std::fprintf(stderr, "unknown mutant '%s'\n", mutant.c_str());
    return 2;
  }
  std::string dir;
  if (sqlite) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/parley-sim-XXXXXX";
    if (!mkdtemp(tmpl.data())) {
      std::perror("mkdtemp");
      return 2;
    }
    dir = tmpl;
  }
  auto remove_db = [](const std::string& path) {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::remove((path + suffix).c_str());
  };
  uint64_t passed = 0, failed = 0;
  for (uint64_t seed = from; seed < from + count; ++seed) {
    SimConfig config = base;
    config.seed = seed;
    config.stop_at_first_violation = !mutant.empty();
    if (sqlite) config.sqlite_path = dir + "/seed-" + std::to_string(seed) + ".db";
    SimResult r = run_simulation(config);
    if (sqlite) remove_db(config.sqlite_path);
    if (r.violations.empty()) {
      ++passed;
      if (single || verbose) std::printf("%s\n", r.summary().c_str());
      continue;
    }
    ++failed;
    if (!mutant.empty()) {
      std::printf("mutant %s caught by seed %llu: %s\n", mutant.c_str(), (unsigned long long)seed,
                  r.violations.front().c_str());
      std::printf("1 passed, 0 failed\n");
      if (sqlite) rmdir(dir.c_str());
      return 0;
    }
    std::printf("FAILED %s\n", r.summary().c_str());
    for (const std::string& v : r.violations) std::printf("  %s\n", v.c_str());
    std::printf("  replay: scripts/sim.sh --seed %llu%s\n", (unsigned long long)seed,
                sqlite ? " --sqlite" : "");
  }
  if (sqlite) rmdir(dir.c_str());
  if (!mutant.empty()) {
    std::printf("mutant %s survived %llu seeds: the checker missed it\n", mutant.c_str(),
                (unsigned long long)count);
    std::printf("0 passed, 1 failed\n");
    return 1;
  }
  std::printf("simulation seeds %llu..%llu\n", (unsigned long long)from,
              (unsigned long long)(from + count - 1));
  std::printf("%llu passed, %llu failed\n", (unsigned long long)passed, (unsigned long long)failed);
  return failed == 0 ? 0 : 1;
}
