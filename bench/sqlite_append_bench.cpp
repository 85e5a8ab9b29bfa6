// SqliteStore::append against the cheapest possible way to write the same
// rows: a prepared INSERT in a loop, one transaction per batch, into the same
// messages table (schema and indexes created by the store itself), with the
// same WAL + synchronous=FULL settings. The difference is what sequencing
// (head read and update), dedup (ON CONFLICT) and the interface cost.
//
// Each benchmark run uses a fresh database file in a temporary directory.
// Defaults: 5 repetitions in random interleaving, aggregates only (pass other
// --benchmark_* flags to override). After the runs a table gives, per batch
// size, the store/bare ratio of the median real time (fsync included) and of
// the median CPU time (what the store's own work costs).
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "parley/sqlite_store.hpp"

namespace {

constexpr size_t kContentsBytes = 100;

// A database path in a fresh temporary directory, removed afterwards.
class TempDb {
 public:
  TempDb() {
    std::string pattern = std::filesystem::temp_directory_path().string() + "/parley-bench-XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) dir_ = pattern;
  }
  TempDb(const TempDb&) = delete;
  TempDb& operator=(const TempDb&) = delete;
  ~TempDb() {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  bool ok() const { return !dir_.empty(); }
  std::string path() const { return dir_ + "/bench.db"; }

 private:
  std::string dir_;
};

// The client_msg_id of the n-th message; both variants build it the same way.
void set_key(std::string* key, uint64_t n) {
  key->assign("k").append(std::to_string(n));
}

void store_append(benchmark::State& state) {
  const auto batch_size = static_cast<size_t>(state.range(0));
  TempDb db;
  auto opened = parley::open_sqlite_store(db.path());
  if (!db.ok() || !opened) return state.SkipWithError("cannot open the store");
  parley::SqliteStore& store = **opened;

  std::vector<parley::AppendRequest> batch(
      batch_size, parley::AppendRequest{"g", "u", "", std::string(kContentsBytes, 'x'), 0});
  std::vector<parley::AppendOutcome> out;
  uint64_t n = 0;
  for (auto _ : state) {
    for (parley::AppendRequest& r : batch) {
      r.timestamp_ms = static_cast<int64_t>(n);
      set_key(&r.client_msg_id, n++);
    }
    if (parley::Status s = store.append(batch, &out); !s) {
      return state.SkipWithError(s.to_string().c_str());
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch_size));
}

// A raw connection to a file whose schema the store created.
class BareDb {
 public:
  explicit BareDb(const std::string& path) {
    if (!parley::open_sqlite_store(path)) return;  // creates the schema, sets WAL
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) return;
    ok_ = sqlite3_exec(db_, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr) == SQLITE_OK &&
          prepare("BEGIN IMMEDIATE", &begin_) && prepare("COMMIT", &commit_) &&
          prepare(
              "INSERT INTO messages(group_id, msg_id, timestamp_ms, user_id, client_msg_id, "
              "contents) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
              &insert_);
  }
  BareDb(const BareDb&) = delete;
  BareDb& operator=(const BareDb&) = delete;
  ~BareDb() {
    for (sqlite3_stmt* s : {begin_, commit_, insert_}) sqlite3_finalize(s);
    sqlite3_close(db_);
  }
  bool ok() const { return ok_; }

  // Inserts msg_ids first..first+count-1 into group "g" in one transaction.
  bool insert_batch(uint64_t first, size_t count, const std::string& contents, std::string* key) {
    if (!run(begin_)) return false;
    for (uint64_t id = first; id < first + count; ++id) {
      set_key(key, id - 1);
      sqlite3_bind_text(insert_, 1, "g", 1, SQLITE_STATIC);
      sqlite3_bind_int64(insert_, 2, static_cast<sqlite3_int64>(id));
      sqlite3_bind_int64(insert_, 3, static_cast<sqlite3_int64>(id - 1));
      sqlite3_bind_text(insert_, 4, "u", 1, SQLITE_STATIC);
      sqlite3_bind_text(insert_, 5, key->data(), static_cast<int>(key->size()), SQLITE_STATIC);
      sqlite3_bind_blob(insert_, 6, contents.data(), static_cast<int>(contents.size()), SQLITE_STATIC);
      if (!run(insert_)) return false;
    }
    return run(commit_);
  }

 private:
  bool prepare(const char* sql, sqlite3_stmt** stmt) {
    return sqlite3_prepare_v2(db_, sql, -1, stmt, nullptr) == SQLITE_OK;
  }
  static bool run(sqlite3_stmt* stmt) {
    const int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    return rc == SQLITE_DONE;
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* begin_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  bool ok_ = false;
};

void bare_insert(benchmark::State& state) {
  const auto batch_size = static_cast<size_t>(state.range(0));
  TempDb db;
  BareDb bare(db.path());
  if (!db.ok() || !bare.ok()) return state.SkipWithError("cannot open the database");

  const std::string contents(kContentsBytes, 'x');
  std::string key;
  uint64_t next_id = 1;
  for (auto _ : state) {
    if (!bare.insert_batch(next_id, batch_size, contents, &key)) {
      return state.SkipWithError("insert failed");
    }
    next_id += batch_size;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch_size));
}

void batch_sizes(benchmark::internal::Benchmark* b) {
  for (int size : {1, 10, 100, 1000}) b->Arg(size);
  b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(store_append)->Apply(batch_sizes);
BENCHMARK(bare_insert)->Apply(batch_sizes);

// The console report, then the store/bare ratio of median time per batch
// (of the single run's time when there is one repetition).
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  RatioReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_ColorTabular : OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      const bool single = run.run_type == Run::RT_Iteration && run.repetitions <= 1;
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if (!single && !median) continue;
      medians_[run.run_name.args][run.run_name.function_name] = {run.GetAdjustedRealTime(),
                                                                 run.GetAdjustedCPUTime()};
    }
  }

  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\n%-6s %12s %12s %8s %12s %12s %8s\n", "batch", "store real", "bare real", "ratio",
                "store cpu", "bare cpu", "ratio");
    for (const auto& [batch, times] : medians_) {
      auto store = times.find("store_append");
      auto bare = times.find("bare_insert");
      if (store == times.end() || bare == times.end()) continue;
      const Times& s = store->second;
      const Times& b = bare->second;
      std::printf("%-6s %12.1f %12.1f %8.2f %12.1f %12.1f %8.2f\n", batch.c_str(), s.real, b.real,
                  s.real / b.real, s.cpu, b.cpu, s.cpu / b.cpu);
    }
    std::printf("(medians, microseconds per batch)\n");
  }

 private:
  struct Times {
    double real = 0;
    double cpu = 0;
  };
  std::map<std::string, std::map<std::string, Times>> medians_;  // args -> name -> times
};

}  // namespace

int main(int argc, char** argv) {
  // Defaults first, so flags given on the command line win.
  // Interleaving spreads the disk's changing fsync latency over both variants.
  std::vector<char*> args{argv[0], const_cast<char*>("--benchmark_repetitions=5"),
                          const_cast<char*>("--benchmark_report_aggregates_only=true"),
                          const_cast<char*>("--benchmark_enable_random_interleaving=true")};
  args.insert(args.end(), argv + 1, argv + argc);
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
