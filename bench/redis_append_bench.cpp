// RedisStore::append against a running redis-server: appends per second and
// per-call latency percentiles, for the shapes a node produces:
//   single   one message per call (a quiet node: one send per loop turn)
//   turn     one call = one loop turn of a busy node: --batch messages over
//            --groups groups, one pipeline of one script per group
//   nodes    --nodes stores in parallel threads (several nodes on one Redis),
//            each doing `turn` calls
// bench/redis/run.sh starts Redis, runs this and redis-benchmark on the same
// server for the equivalent raw commands, and prints the medians side by side.
//
//   parley_bench_redis --redis 127.0.0.1:6390 [--seconds 3] [--batch 100]
//                      [--groups 10] [--nodes 4] [--bytes 128] [--shape all]
// Output: one CSV line per shape: shape,calls_per_s,msgs_per_s,p50_ms,p99_ms
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "parley/redis_store.hpp"

using namespace parley;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string redis = "127.0.0.1:6379";
  double seconds = 3;
  int batch = 100;
  int groups = 10;
  int nodes = 4;
  size_t bytes = 128;
  std::string shape = "all";
};

struct Run {
  uint64_t calls = 0;
  uint64_t msgs = 0;
  double elapsed_s = 0;
  std::vector<double> latency_ms;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "parley_bench_redis: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<RedisStore> open_store(const Args& a, const std::string& prefix) {
  RedisStoreOptions o;
  o.endpoints = a.redis;
  o.key_prefix = prefix;
  auto s = open_redis_store(o);
  if (!s) die(s.status().to_string());
  return std::move(*s);
}

// Appends `per_call` messages spread over `groups` groups per call, until
// `seconds` ran out.
Run drive(RedisStore& store, const Args& a, int per_call, int groups, const std::string& tag) {
  Run r;
  const std::string body(a.bytes, 'x');
  std::vector<AppendRequest> batch(per_call);
  std::vector<AppendOutcome> out;
  uint64_t seq = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(a.seconds);
  while (Clock::now() < end) {
    for (int i = 0; i < per_call; ++i) {
      AppendRequest& q = batch[i];
      q.group_id = tag + "-g" + std::to_string(i % groups);
      q.user_id = "user" + std::to_string(i % 50);
      q.client_msg_id = tag + "-" + std::to_string(++seq);
      q.contents = body;
      q.timestamp_ms = 1;
    }
    const auto t0 = Clock::now();
    if (Status st = store.append(batch, &out); !st) die(st.to_string());
    r.latency_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    ++r.calls;
    r.msgs += per_call;
  }
  r.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

void print(const char* shape, const Run& r) {
  std::printf("%s,%.0f,%.0f,%.3f,%.3f\n", shape, r.calls / r.elapsed_s, r.msgs / r.elapsed_s,
              percentile(r.latency_ms, 0.50), percentile(r.latency_ms, 0.99));
  std::fflush(stdout);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) die("missing value for " + k);
    std::string v = argv[++i];
    if (k == "--redis") {
      a.redis = v;
    } else if (k == "--seconds") {
      a.seconds = std::atof(v.c_str());
    } else if (k == "--batch") {
      a.batch = std::max(1, std::atoi(v.c_str()));
    } else if (k == "--groups") {
      a.groups = std::max(1, std::atoi(v.c_str()));
    } else if (k == "--nodes") {
      a.nodes = std::max(1, std::atoi(v.c_str()));
    } else if (k == "--bytes") {
      a.bytes = static_cast<size_t>(std::max(0, std::atoi(v.c_str())));
    } else if (k == "--shape") {
      a.shape = v;
    } else {
      die("unknown option " + k);
    }
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const std::string run_tag = std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  auto store = open_store(a, "bench" + run_tag);
  std::printf("shape,calls_per_s,msgs_per_s,p50_ms,p99_ms\n");
  if (a.shape == "all" || a.shape == "single") print("single", drive(*store, a, 1, 1, "s"));
  if (a.shape == "all" || a.shape == "turn") {
    print("turn", drive(*store, a, a.batch, std::min(a.batch, a.groups), "t"));
  }
  if (a.shape == "all" || a.shape == "nodes") {
    std::vector<Run> runs(a.nodes);
    std::vector<std::thread> threads;
    for (int n = 0; n < a.nodes; ++n) {
      threads.emplace_back([&, n] {
        auto s = open_store(a, "bench" + run_tag);
        runs[n] = drive(*s, a, a.batch, std::min(a.batch, a.groups), "n" + std::to_string(n));
      });
    }
    for (std::thread& t : threads) t.join();
    Run all;
    for (Run& r : runs) {
      all.calls += r.calls;
      all.msgs += r.msgs;
      all.elapsed_s = std::max(all.elapsed_s, r.elapsed_s);
      all.latency_ms.insert(all.latency_ms.end(), r.latency_ms.begin(), r.latency_ms.end());
    }
    print("nodes", all);
  }
  return 0;
}
