// parley-load: a load generator for parley-server.
//
//   parley-load --url http://127.0.0.1:8080 --clients N --groups M --rate R
//               --duration S --warmup S [--server-pid PID] [--json] [...]
//
// Logs in N users (names prefixed by a run id, so reruns against one server do
// not collide), creates M groups and joins client i to group i % M, over the
// HTTP API. Then opens N WebSockets, resumes each client's group and has every
// client send R messages per second on a fixed schedule (random phase per
// client, computed up front) for warm-up + duration seconds. Latency is receive
// time minus *scheduled* send time, so a late sender or a stalled server shows
// (no coordinated omission). Loss = deliveries owed for the measured sends
// (each x members of its group, the sender included when the server echoes a
// sender's own messages) - deliveries received, after waiting (bounded) for
// the tail. With --server-pid, the server's CPU time per delivered message
// and its memory per connection come from /proc.
//
// Threads: the clients are split over --threads shards (default 1), each one
// thread with its own io_context; the main thread only orchestrates.
#include <sys/resource.h>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "http_setup.hpp"
#include "load_shard.hpp"
#include "proc_stats.hpp"

using namespace parley::load;

namespace {

struct Options {
  std::string url = "http://127.0.0.1:8080";
  uint32_t clients = 10;
  uint32_t groups = 1;
  double rate = 1.0;  // messages per second per client
  double duration_s = 20;
  double warmup_s = 5;
  double drain_s = 10;  // longest wait for the tail after the last send
  double connect_timeout_s = 120;
  pid_t server_pid = 0;
  bool json = false;
  int threads = 1;
  int setup_threads = 4;
  size_t max_connecting = 64;
  size_t contents_bytes = 128;
  uint64_t seed = 1;
  std::string run_id;
  std::string password;
  bool mqtt = false;  // the baseline: an MQTT broker over WebSocket
};

void usage(FILE* out) {
  std::fprintf(out,
               "usage: parley-load [options]\n"
               "  --url URL             server base URL (default http://127.0.0.1:8080)\n"
               "  --clients N           simulated clients, one WebSocket each (default 10)\n"
               "  --groups M            groups; client i joins group i %% M (default 1)\n"
               "  --rate R              messages per second per client (default 1)\n"
               "  --duration S          measured seconds (default 20)\n"
               "  --warmup S            seconds of sending before the measured window (default 5)\n"
               "  --drain S             longest wait for the tail after the last send (default 10)\n"
               "  --server-pid PID      report server CPU per delivery and memory per connection\n"
               "  --json                print one JSON line instead of the table\n"
               "  --threads T           client threads, each with its own io_context (default 1)\n"
               "  --setup-threads T     parallel HTTP requests during setup (default 4)\n"
               "  --max-connecting K    WebSocket handshakes in flight per thread (default 64)\n"
               "  --size BYTES          message contents size (default 128)\n"
               "  --seed S              seed of the send phases (default 1)\n"
               "  --run-id ID           prefix of user and group names (default: from time and pid)\n"
               "  --password P          login password (default empty: for a --dev server)\n"
               "  --connect-timeout S   longest wait for all clients to connect (default 120)\n"
               "  --mqtt                speak MQTT 3.1.1 over WebSocket to a broker at --url (the baseline):\n"
               "                        subscribe to the group's topic at QoS 0, publish at QoS 1\n");
}

bool parse_args(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") {
      o.json = true;
      continue;
    }
    if (a == "--mqtt") {
      o.mqtt = true;
      continue;
    }
    if (a == "-h" || a == "--help") {
      usage(stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "parley-load: %s needs a value\n", a.c_str());
      return false;
    }
    const char* v = argv[++i];
    if (a == "--url")
      o.url = v;
    else if (a == "--clients")
      o.clients = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    else if (a == "--groups")
      o.groups = static_cast<uint32_t>(std::strtoul(v, nullptr, 10));
    else if (a == "--rate")
      o.rate = std::strtod(v, nullptr);
    else if (a == "--duration")
      o.duration_s = std::strtod(v, nullptr);
    else if (a == "--warmup")
      o.warmup_s = std::strtod(v, nullptr);
    else if (a == "--drain")
      o.drain_s = std::strtod(v, nullptr);
    else if (a == "--server-pid")
      o.server_pid = static_cast<pid_t>(std::strtol(v, nullptr, 10));
    else if (a == "--threads")
      o.threads = std::atoi(v);
    else if (a == "--setup-threads")
      o.setup_threads = std::atoi(v);
    else if (a == "--max-connecting")
      o.max_connecting = std::strtoul(v, nullptr, 10);
    else if (a == "--size")
      o.contents_bytes = std::strtoul(v, nullptr, 10);
    else if (a == "--seed")
      o.seed = std::strtoull(v, nullptr, 10);
    else if (a == "--run-id")
      o.run_id = v;
    else if (a == "--password")
      o.password = v;
    else if (a == "--connect-timeout")
      o.connect_timeout_s = std::strtod(v, nullptr);
    else {
      std::fprintf(stderr, "parley-load: unknown option %s\n", a.c_str());
      return false;
    }
  }
  if (o.clients == 0 || o.groups == 0 || o.groups > o.clients || o.rate <= 0 || o.duration_s <= 0 ||
      o.warmup_s < 0 || o.threads < 1 || o.setup_threads < 1 || o.max_connecting < 1) {
    std::fprintf(stderr, "parley-load: need clients >= groups >= 1, rate > 0, duration > 0, threads >= 1\n");
    return false;
  }
  if (o.url.rfind("http://", 0) != 0) {
    std::fprintf(stderr, "parley-load: --url must start with http://\n");
    return false;
  }
  while (!o.url.empty() && o.url.back() == '/') o.url.pop_back();
  return true;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void sleep_until_ns(int64_t t) {
  std::this_thread::sleep_until(std::chrono::steady_clock::time_point(std::chrono::nanoseconds(t)));
}

// Raises the soft open-files limit to the hard one; returns the new soft limit.
rlim_t raise_nofile() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  getrlimit(RLIMIT_NOFILE, &lim);
  return lim.rlim_cur;
}

std::string make_run_id() {
  const uint64_t x = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) ^
                     (static_cast<uint64_t>(getpid()) << 40);
  std::string id = "L";
  for (uint64_t v = std::hash<uint64_t>{}(x); id.size() < 7; v /= 36)
    id += "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
  return id;
}

LoadPlan make_plan(const Options& o) {
  LoadPlan plan;
  plan.http_url = o.url;
  plan.ws_url = "ws://" + o.url.substr(std::strlen("http://")) + (o.mqtt ? "/mqtt" : "/v1/ws?token=");
  plan.mqtt = o.mqtt;
  plan.interval_ns = static_cast<int64_t>(1e9 / o.rate);
  plan.contents_bytes = o.contents_bytes;
  plan.members.assign(o.groups, 0);
  for (uint32_t g = 0; g < o.groups; ++g) plan.groups.push_back(o.run_id + "-g" + std::to_string(g));
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int64_t> phase(0, plan.interval_ns - 1);
  for (uint32_t i = 0; i < o.clients; ++i) {
    ClientPlan c;
    c.user = o.run_id + "-u" + std::to_string(i);
    c.group = i % o.groups;
    c.phase_ns = phase(rng);
    ++plan.members[c.group];
    plan.clients.push_back(std::move(c));
  }
  return plan;
}

ShardProgress total_progress(std::vector<std::unique_ptr<LoadShard>>& shards) {
  ShardProgress total;
  for (auto& s : shards) total.add(s->progress());
  return total;
}

// Figures of the server process over the measured window, if --server-pid.
struct ServerFigures {
  std::optional<uint64_t> rss_before, rss_connected, rss_end;
  std::optional<uint64_t> cpu_begin_us, cpu_end_us;
};

struct Report {
  const Options* o = nullptr;
  std::string run_id;
  double setup_s = 0, connect_s = 0, drain_s = 0;
  uint64_t connected = 0;
  bool echo = false;
  bool tail_complete = false;
  uint64_t expected = 0;
  ShardStats stats;
  ServerFigures server;
  uint64_t client_cpu_us = 0;
  std::optional<double> pressure;  // share of the window some task waited for a CPU
  double loadavg = 0;              // 1-minute load average at the end of the window

  double window_s() const { return o->duration_s; }
  double ms(uint64_t ns) const { return static_cast<double>(ns) / 1e6; }
  int64_t loss() const {
    return static_cast<int64_t>(expected) - static_cast<int64_t>(stats.progress.received_measured);
  }
  std::optional<double> server_cpu_s() const {
    if (!server.cpu_begin_us || !server.cpu_end_us) return std::nullopt;
    return static_cast<double>(*server.cpu_end_us - *server.cpu_begin_us) / 1e6;
  }
  std::optional<double> server_us_per_delivery() const {
    auto cpu = server_cpu_s();
    if (!cpu || stats.received_in_window == 0) return std::nullopt;
    return *cpu * 1e6 / static_cast<double>(stats.received_in_window);
  }
  std::optional<double> server_bytes_per_connection() const {
    if (!server.rss_before || !server.rss_connected || connected == 0) return std::nullopt;
    return (static_cast<double>(*server.rss_connected) - static_cast<double>(*server.rss_before)) /
           static_cast<double>(connected);
  }
  uint64_t errors() const {
    uint64_t n = stats.connect_failures + stats.unexpected_closes + stats.send_failures + stats.bad_frames +
                 stats.bad_contents + stats.behind + stats.epochs;
    for (const auto& [name, count] : stats.error_names) n += count;
    return n;
  }
};

std::string error_list(const ShardStats& s) {
  std::string out;
  for (const auto& [name, n] : s.error_names) {
    out += (out.empty() ? "" : ", ") + name + " " + std::to_string(n);
  }
  return out.empty() ? "none" : out;
}

void print_table(const Report& r) {
  const Options& o = *r.o;
  const ShardStats& s = r.stats;
  const double w = r.window_s();
  std::printf(
      "parley-load run %s: %u clients in %u groups (%u-%u members), %.3g msg/s per client, %zu-byte "
      "contents, %d client thread%s\n",
      r.run_id.c_str(), o.clients, o.groups, o.clients / o.groups, (o.clients + o.groups - 1) / o.groups,
      o.rate, o.contents_bytes, o.threads, o.threads == 1 ? "" : "s");
  std::printf("  %-22s setup %.1f s, connect %.1f s (%" PRIu64
              " of %u ready), window %.1f s after %.1f s "
              "warm-up, tail wait %.2f s%s\n",
              "phases", r.setup_s, r.connect_s, r.connected, o.clients, w, o.warmup_s, r.drain_s,
              r.tail_complete ? "" : " (timed out)");
  std::printf("  %-22s %" PRIu64 " measured, %.1f msgs/s; acked %" PRIu64 " (dup %" PRIu64
              "), refused %" PRIu64 ", skipped %" PRIu64 "\n",
              "sent", s.sent_measured, static_cast<double>(s.sent_measured) / w, s.acked_measured, s.dup_acks,
              s.send_errors_measured, s.sends_skipped);
  std::printf("  %-22s %.1f msgs/s in the window; of measured sends: expected %" PRIu64 ", received %" PRIu64
              ", loss %" PRId64 "\n",
              "delivered", static_cast<double>(s.received_in_window) / w, r.expected,
              s.progress.received_measured, r.loss());
  std::printf("  %-22s p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%" PRIu64 " samples)\n", "latency ms",
              r.ms(s.latency.percentile(50)), r.ms(s.latency.percentile(99)),
              r.ms(s.latency.percentile(99.9)), r.ms(s.latency.max()), s.latency.count());
  std::printf("  %-22s p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", "ack latency ms",
              r.ms(s.ack_latency.percentile(50)), r.ms(s.ack_latency.percentile(99)),
              r.ms(s.ack_latency.percentile(99.9)), r.ms(s.ack_latency.max()));
  std::printf("  %-22s p99 %.3f  max %.3f  (client lateness, included in the latencies)\n", "send lag ms",
              r.ms(s.send_lag.percentile(99)), r.ms(s.send_lag.max()));
  std::printf("  %-22s order errors %" PRIu64 ", duplicates %" PRIu64 ", server echoes sender: %s\n",
              "correctness", s.order_errors, s.duplicates, r.echo ? "yes" : "no");
  std::printf("  %-22s %" PRIu64 " (%s); connect failures %" PRIu64 ", unexpected closes %" PRIu64
              ", behind %" PRIu64 ", send failures %" PRIu64 ", bad frames %" PRIu64 "\n",
              "errors", r.errors(), error_list(s).c_str(), s.connect_failures, s.unexpected_closes, s.behind,
              s.send_failures, s.bad_frames + s.bad_contents);
  std::printf("  %-22s to pull %" PRIu64 ", to push %" PRIu64 ", hints %" PRIu64 ", pulls %" PRIu64
              ", pulled msgs %" PRIu64 "\n",
              "pull mode", s.to_pull, s.to_push, s.hints, s.pulls, s.pulled_msgs);
  std::printf("  %-22s hello %" PRIu64 ", presence %" PRIu64 ", unexpected %" PRIu64 "\n", "other frames",
              s.hello, s.presence, s.other_frames);
  if (auto cpu = r.server_cpu_s()) {
    std::printf("  %-22s %.2f s in the window (%.0f%% of a core): %.2f us per delivered message\n",
                "server CPU", *cpu, *cpu / w * 100, r.server_us_per_delivery().value_or(0));
  }
  if (auto per = r.server_bytes_per_connection()) {
    std::printf(
        "  %-22s RSS %.1f MB before connecting, %.1f MB connected, %.1f MB at end: %.2f KB per "
        "connection\n",
        "server memory", static_cast<double>(*r.server.rss_before) / 1e6,
        static_cast<double>(*r.server.rss_connected) / 1e6,
        static_cast<double>(r.server.rss_end.value_or(0)) / 1e6, *per / 1e3);
  }
  if (o.server_pid && !r.server.rss_end) {
    std::printf("  %-22s process %d was gone at the end of the window\n", "server",
                static_cast<int>(o.server_pid));
  }
  std::printf("  %-22s %.0f%% of a core in the window\n", "client CPU",
              static_cast<double>(r.client_cpu_us) / 1e6 / w * 100);
  std::printf("  %-22s load average %.2f; CPU pressure %s\n", "machine", r.loadavg,
              r.pressure
                  ? (std::to_string(static_cast<int>(*r.pressure * 100 + 0.5)) +
                     "% of the window some task waited for a CPU (other work on the machine skews latency)")
                        .c_str()
                  : "unknown");
  for (const auto& line : s.samples) std::printf("  %-22s %s\n", "sample", line.c_str());
}

void print_json(const Report& r) {
  const Options& o = *r.o;
  const ShardStats& s = r.stats;
  const double w = r.window_s();
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> j(out);
  auto num = [&](const char* key, double v) {
    j.Key(key);
    j.Double(std::round(v * 1000) / 1000);
  };
  auto count = [&](const char* key, uint64_t v) {
    j.Key(key);
    j.Uint64(v);
  };
  auto maybe = [&](const char* key, std::optional<double> v) {
    j.Key(key);
    if (v)
      j.Double(std::round(*v * 1000) / 1000);
    else
      j.Null();
  };
  j.StartObject();
  j.Key("run_id");
  j.String(r.run_id.c_str());
  count("clients", o.clients);
  count("groups", o.groups);
  num("rate", o.rate);
  count("size", o.contents_bytes);
  count("threads", static_cast<uint64_t>(o.threads));
  num("duration_s", o.duration_s);
  num("warmup_s", o.warmup_s);
  count("connected", r.connected);
  count("sent", s.sent_measured);
  num("sent_per_s", static_cast<double>(s.sent_measured) / w);
  count("acked", s.acked_measured);
  count("refused", s.send_errors_measured);
  count("skipped", s.sends_skipped);
  num("delivered_per_s", static_cast<double>(s.received_in_window) / w);
  count("expected", r.expected);
  count("received", s.progress.received_measured);
  j.Key("loss");
  j.Int64(r.loss());
  j.Key("tail_complete");
  j.Bool(r.tail_complete);
  num("p50_ms", r.ms(s.latency.percentile(50)));
  num("p99_ms", r.ms(s.latency.percentile(99)));
  num("p999_ms", r.ms(s.latency.percentile(99.9)));
  num("max_ms", r.ms(s.latency.max()));
  num("ack_p50_ms", r.ms(s.ack_latency.percentile(50)));
  num("ack_p99_ms", r.ms(s.ack_latency.percentile(99)));
  num("send_lag_p99_ms", r.ms(s.send_lag.percentile(99)));
  count("order_errors", s.order_errors);
  count("duplicates", s.duplicates);
  j.Key("echo");
  j.Bool(r.echo);
  count("errors", r.errors());
  j.Key("error_names");
  j.StartObject();
  for (const auto& [name, n] : s.error_names) count(name.c_str(), n);
  j.EndObject();
  count("connect_failures", s.connect_failures);
  count("unexpected_closes", s.unexpected_closes);
  count("behind", s.behind);
  count("to_pull", s.to_pull);
  count("to_push", s.to_push);
  count("hints", s.hints);
  count("pulls", s.pulls);
  count("pulled_msgs", s.pulled_msgs);
  maybe("server_cpu_s", r.server_cpu_s());
  maybe("server_us_per_delivery", r.server_us_per_delivery());
  auto per = r.server_bytes_per_connection();
  maybe("server_kb_per_connection", per ? std::optional<double>(*per / 1e3) : std::nullopt);
  num("client_cpu_pct", static_cast<double>(r.client_cpu_us) / 1e6 / w * 100);
  maybe("cpu_pressure_pct", r.pressure ? std::optional<double>(*r.pressure * 100) : std::nullopt);
  num("loadavg", r.loadavg);
  j.EndObject();
  std::printf("%s\n", out.GetString());
}

double seconds_since(int64_t t0) {
  return static_cast<double>(now_ns() - t0) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_args(argc, argv, o)) {
    usage(stderr);
    return 2;
  }
  if (o.run_id.empty()) o.run_id = make_run_id();
  const rlim_t nofile = raise_nofile();
  if (nofile < o.clients + 64) {
    std::fprintf(stderr, "parley-load: open-files limit %llu is too low for %u clients (raise ulimit -Hn)\n",
                 static_cast<unsigned long long>(nofile), o.clients);
    return 2;
  }
  Report r;
  r.o = &o;
  r.run_id = o.run_id;
  LoadPlan plan = make_plan(o);

  int64_t t = now_ns();
  std::string error;
  if (o.mqtt) {
    std::fprintf(stderr, "parley-load: run %s: MQTT, %u clients on %u topics\n", o.run_id.c_str(), o.clients,
                 o.groups);
  } else {
    std::fprintf(stderr, "parley-load: run %s: setting up %u users and %u groups over HTTP\n", o.run_id.c_str(),
                 o.clients, o.groups);
    if (!run_http_setup(plan, o.password, o.setup_threads, error)) {
      std::fprintf(stderr, "parley-load: setup failed: %s\n", error.c_str());
      return 1;
    }
  }
  r.setup_s = seconds_since(t);

  auto rss = [&]() -> std::optional<uint64_t> {
    return o.server_pid ? process_rss_bytes(o.server_pid) : std::nullopt;
  };
  auto cpu = [&]() -> std::optional<uint64_t> {
    return o.server_pid ? process_cpu_us(o.server_pid) : std::nullopt;
  };
  if (o.server_pid && !cpu()) std::fprintf(stderr, "parley-load: cannot read /proc/%d\n", o.server_pid);
  r.server.rss_before = rss();

  std::vector<std::unique_ptr<LoadShard>> shards;
  for (int s = 0; s < o.threads; ++s) {
    std::vector<uint32_t> ids;
    for (uint32_t i = static_cast<uint32_t>(s); i < o.clients; i += static_cast<uint32_t>(o.threads))
      ids.push_back(i);
    shards.push_back(std::make_unique<LoadShard>(plan, std::move(ids), o.max_connecting));
  }
  t = now_ns();
  for (auto& s : shards) s->connect_all();
  ShardProgress p;
  for (;;) {
    p = total_progress(shards);
    if (p.ready + p.failed >= o.clients || seconds_since(t) > o.connect_timeout_s) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  r.connect_s = seconds_since(t);
  r.connected = p.ready;
  std::fprintf(stderr, "parley-load: %" PRIu64 " of %u clients ready in %.1f s (%" PRIu64 " failed)\n",
               p.ready, o.clients, r.connect_s, p.failed);
  if (p.ready == 0) {
    for (auto& s : shards) s->stop();
    for (auto& s : shards) r.stats.merge(s->stats());
    for (const auto& line : r.stats.samples) std::fprintf(stderr, "  %s\n", line.c_str());
    std::fprintf(stderr, "parley-load: no client connected\n");
    return 1;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the server settle
  r.server.rss_connected = rss();

  RunWindow window;
  window.start_ns = now_ns() + 200'000'000;
  window.measure_begin_ns = window.start_ns + static_cast<int64_t>(o.warmup_s * 1e9);
  window.end_ns = window.measure_begin_ns + static_cast<int64_t>(o.duration_s * 1e9);
  for (auto& s : shards) s->start(window);
  std::fprintf(stderr, "parley-load: sending for %.1f s + %.1f s\n", o.warmup_s, o.duration_s);

  sleep_until_ns(window.measure_begin_ns);
  r.server.cpu_begin_us = cpu();
  const uint64_t self_begin = self_cpu_us();
  const std::optional<uint64_t> pressure_begin = cpu_pressure_us();
  sleep_until_ns(window.end_ns);
  r.server.cpu_end_us = cpu();
  r.client_cpu_us = self_cpu_us() - self_begin;
  const std::optional<uint64_t> pressure_end = cpu_pressure_us();
  if (pressure_begin && pressure_end)
    r.pressure = static_cast<double>(*pressure_end - *pressure_begin) / (o.duration_s * 1e6);
  double loads[1] = {0};
  if (getloadavg(loads, 1) == 1) r.loadavg = loads[0];
  r.server.rss_end = rss();

  // The tail: every send answered and every owed delivery in, or the bound.
  t = now_ns();
  for (;;) {
    p = total_progress(shards);
    r.echo = p.self_received > 0;
    r.expected = p.expected(r.echo);
    r.tail_complete = p.sending == 0 && p.answered >= p.sent && p.received_measured >= r.expected;
    if (r.tail_complete || seconds_since(t) > o.drain_s) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  r.drain_s = seconds_since(t);

  for (auto& s : shards) s->close_all();
  t = now_ns();
  while (total_progress(shards).open > 0 && seconds_since(t) < 3) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& s : shards) s->stop();
  for (auto& s : shards) r.stats.merge(s->stats());
  r.echo = r.stats.progress.self_received > 0;
  r.expected = r.stats.progress.expected(r.echo);

  if (o.json)
    print_json(r);
  else
    print_table(r);
  return 0;
}
