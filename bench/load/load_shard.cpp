#include "load_shard.hpp"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>

#include <rapidjson/document.h>

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif
#include <websocketpp/client.hpp>
#include <websocketpp/concurrency/none.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>

namespace parley::load {
namespace {

namespace ws = websocketpp;

// Masking keys only need to vary; a xorshift is enough and avoids a
// random_device read per frame.
class XorShiftRng {
 public:
  uint32_t operator()() {
    x_ ^= x_ << 13;
    x_ ^= x_ >> 17;
    x_ ^= x_ << 5;
    return x_;
  }

 private:
  uint32_t x_ = 2463534242u;
};

// asio_client without locks: each endpoint is driven by one thread.
struct LoadConfig : ws::config::asio_client {
  using type = LoadConfig;
  using base = ws::config::asio_client;
  using concurrency_type = ws::concurrency::none;
  using request_type = base::request_type;
  using response_type = base::response_type;
  using message_type = base::message_type;
  using con_msg_manager_type = base::con_msg_manager_type;
  using endpoint_msg_manager_type = base::endpoint_msg_manager_type;
  using alog_type = ws::log::basic<concurrency_type, ws::log::alevel>;
  using elog_type = ws::log::basic<concurrency_type, ws::log::elevel>;
  using rng_type = XorShiftRng;
  static const bool enable_multithreading = false;

  struct transport_config : base::transport_config {
    using concurrency_type = type::concurrency_type;
    using alog_type = type::alog_type;
    using elog_type = type::elog_type;
    using request_type = type::request_type;
    using response_type = type::response_type;
    using socket_type = ws::transport::asio::basic_socket::endpoint;
    static const bool enable_multithreading = false;
    static const long timeout_open_handshake = 30000;
  };
  using transport_type = ws::transport::asio::endpoint<transport_config>;
  static const long timeout_open_handshake = 30000;
};

using WsClient = ws::client<LoadConfig>;
using Value = rapidjson::Value;

constexpr uint64_t kControlRid = uint64_t{1} << 40;  // rids of resume and pull; sends use seq + 1
constexpr size_t kSamples = 8;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

uint64_t get_u64(const Value& o, const char* key) {
  auto it = o.FindMember(key);
  return it != o.MemberEnd() && it->value.IsUint64() ? it->value.GetUint64() : 0;
}

const char* get_str(const Value& o, const char* key) {
  auto it = o.FindMember(key);
  return it != o.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

bool get_bool(const Value& o, const char* key) {
  auto it = o.FindMember(key);
  return it != o.MemberEnd() && it->value.IsBool() && it->value.GetBool();
}

// Contents are "SENDER:SEQ:SCHEDULED_NS:" then padding.
bool parse_contents(const char* c, uint32_t& sender, uint64_t& seq, int64_t& scheduled) {
  char* end = nullptr;
  sender = static_cast<uint32_t>(std::strtoul(c, &end, 10));
  if (*end != ':') return false;
  seq = std::strtoull(end + 1, &end, 10);
  if (*end != ':') return false;
  scheduled = std::strtoll(end + 1, &end, 10);
  return *end == ':';
}

enum class State { kIdle, kConnecting, kResuming, kReady, kClosed };

// MQTT 3.1.1 packets (only what the load needs).
void mqtt_remaining_length(std::string& out, size_t n) {
  do {
    uint8_t b = n % 128;
    n /= 128;
    if (n > 0) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (n > 0);
}

void mqtt_string(std::string& out, const std::string& s) {
  out.push_back(static_cast<char>(s.size() >> 8));
  out.push_back(static_cast<char>(s.size() & 0xff));
  out.append(s);
}

struct SimClient {
  uint32_t idx = 0;
  uint32_t members = 0;
  const std::string* group = nullptr;
  WsClient::connection_ptr con;
  std::unique_ptr<asio::steady_timer> timer;
  State state = State::kIdle;
  bool ever_ready = false;
  uint64_t last = 0, epoch = 0;
  bool pull_mode = false, pull_inflight = false, resume_pending = false;
  uint64_t pull_head = 0;
  uint64_t seen_base = 1;  // seen[i] is id seen_base + i
  std::vector<bool> seen;
  uint64_t next_seq = 0;
  std::string mqtt_in;                          // bytes of a partial MQTT packet
  std::vector<std::pair<uint32_t, uint64_t>> mqtt_last;  // MQTT: per sender, the next seq expected
};

}  // namespace

void ShardProgress::add(const ShardProgress& o) {
  ready += o.ready;
  failed += o.failed;
  open += o.open;
  sending += o.sending;
  sent += o.sent;
  answered += o.answered;
  expected_with_echo += o.expected_with_echo;
  expected_sender_count += o.expected_sender_count;
  received_measured += o.received_measured;
  self_received += o.self_received;
}

void ShardStats::note(std::string what) {
  if (samples.size() < kSamples) samples.push_back(std::move(what));
}

void ShardStats::merge(const ShardStats& o) {
  latency.merge(o.latency);
  ack_latency.merge(o.ack_latency);
  send_lag.merge(o.send_lag);
  progress.add(o.progress);
  for (auto [mine, theirs] : {std::pair{&received_total, o.received_total},
                              {&received_in_window, o.received_in_window},
                              {&sent_measured, o.sent_measured},
                              {&acked, o.acked},
                              {&acked_measured, o.acked_measured},
                              {&dup_acks, o.dup_acks},
                              {&send_errors, o.send_errors},
                              {&send_errors_measured, o.send_errors_measured},
                              {&sends_skipped, o.sends_skipped},
                              {&send_failures, o.send_failures},
                              {&duplicates, o.duplicates},
                              {&order_errors, o.order_errors},
                              {&pull_overlap, o.pull_overlap},
                              {&bad_contents, o.bad_contents},
                              {&bad_frames, o.bad_frames},
                              {&to_pull, o.to_pull},
                              {&to_push, o.to_push},
                              {&hints, o.hints},
                              {&pulls, o.pulls},
                              {&pulled_msgs, o.pulled_msgs},
                              {&epochs, o.epochs},
                              {&behind, o.behind},
                              {&connect_failures, o.connect_failures},
                              {&unexpected_closes, o.unexpected_closes},
                              {&hello, o.hello},
                              {&presence, o.presence},
                              {&other_frames, o.other_frames}}) {
    *mine += theirs;
  }
  for (const auto& [name, n] : o.error_names) error_names[name] += n;
  for (const auto& s : o.samples) note(s);
}

struct LoadShard::Impl {
  Impl(const LoadPlan& p, const std::vector<uint32_t>& ids, size_t max_conn)
      : plan(p), max_connecting(max_conn), clients(ids.size()) {
    endpoint.clear_access_channels(ws::log::alevel::all);
    endpoint.clear_error_channels(ws::log::elevel::all);
    endpoint.init_asio(&io);
    for (size_t i = 0; i < ids.size(); ++i) {
      SimClient& c = clients[i];
      c.idx = ids[i];
      const uint32_t g = plan.clients[c.idx].group;
      c.group = &plan.groups[g];
      c.members = plan.members[g];
      c.timer = std::make_unique<asio::steady_timer>(io);
    }
    frame.reserve(256 + plan.contents_bytes);
  }

  // --- connecting -----------------------------------------------------------

  void connect_more() {
    while (connecting < max_connecting && next_connect < clients.size()) {
      SimClient& c = clients[next_connect++];
      std::error_code ec;
      c.con = endpoint.get_connection(plan.ws_url + plan.clients[c.idx].token, ec);
      if (ec) {
        stats.note("connect: " + ec.message());
        ++stats.connect_failures;
        ++stats.progress.failed;
        c.state = State::kClosed;
        continue;
      }
      if (plan.mqtt) c.con->add_subprotocol("mqtt", ec);
      c.con->set_open_handler([this, &c](ws::connection_hdl) { on_open(c); });
      c.con->set_fail_handler([this, &c](ws::connection_hdl) { on_fail(c); });
      c.con->set_close_handler([this, &c](ws::connection_hdl) { on_close(c); });
      c.con->set_message_handler([this, &c](ws::connection_hdl, WsClient::message_ptr m) { on_frame(c, m); });
      c.state = State::kConnecting;
      ++connecting;
      endpoint.connect(c.con);
    }
  }

  void on_open(SimClient& c) {
    --connecting;
    ++stats.progress.open;
    c.state = State::kResuming;
    std::error_code ec;
    c.con->get_raw_socket().set_option(asio::ip::tcp::no_delay(true), ec);
    if (plan.mqtt) {
      mqtt_connect(c);
      connect_more();
      return;
    }
    send_resume(c);
    connect_more();
  }

  void on_fail(SimClient& c) {
    --connecting;
    ++stats.connect_failures;
    ++stats.progress.failed;
    stats.note("connect " + plan.clients[c.idx].user + ": " + c.con->get_ec().message() + " (HTTP " +
               std::to_string(static_cast<int>(c.con->get_response_code())) + " " +
               c.con->get_response_msg() + ")");
    c.state = State::kClosed;
    connect_more();
  }

  void on_close(SimClient& c) {
    --stats.progress.open;
    if (!c.ever_ready) ++stats.progress.failed;
    if (!stopping) {
      ++stats.unexpected_closes;
      stats.note("close " + plan.clients[c.idx].user + ": code " +
                 std::to_string(c.con->get_remote_close_code()) + " '" + c.con->get_remote_close_reason() +
                 "' local " + c.con->get_ec().message());
    }
    c.state = State::kClosed;
    c.timer->cancel();
  }

  // --- sending --------------------------------------------------------------

  // Queues `frame` on c's connection; false (counted, first few noted) if
  // websocketpp refuses it.
  bool send_frame(SimClient& c) {
    const std::error_code ec =
        c.con->send(frame, plan.mqtt ? ws::frame::opcode::binary : ws::frame::opcode::text);
    if (!ec) return true;
    ++stats.send_failures;
    stats.note("send: " + ec.message());
    return false;
  }

  void send_resume(SimClient& c) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "\",\"after\":%" PRIu64 ",\"epoch\":%" PRIu64 "}", c.last, c.epoch);
    frame.assign("{\"t\":\"resume\",\"rid\":").append(std::to_string(kControlRid)).append(",\"g\":\"");
    frame.append(*c.group).append(buf);
    send_frame(c);
  }

  void maybe_pull(SimClient& c) {
    if (!c.pull_mode || c.pull_inflight || c.last >= c.pull_head || c.state != State::kReady) return;
    char buf[96];
    std::snprintf(buf, sizeof buf, "\",\"after\":%" PRIu64 ",\"limit\":1000,\"epoch\":%" PRIu64 "}", c.last,
                  c.epoch);
    frame.assign("{\"t\":\"pull\",\"rid\":").append(std::to_string(kControlRid + 1)).append(",\"g\":\"");
    frame.append(*c.group).append(buf);
    c.pull_inflight = true;
    ++stats.pulls;
    send_frame(c);
  }

  void start(const RunWindow& w) {
    window = w;
    for (SimClient& c : clients) {
      if (c.state != State::kReady) continue;
      ++stats.progress.sending;
      on_timer(c);
    }
  }

  // A client is counted in progress.sending from start() until its schedule
  // ends or its timer is cancelled (its connection closed).
  void arm(SimClient& c, int64_t at_ns) {
    c.timer->expires_at(asio::steady_timer::time_point(std::chrono::nanoseconds(at_ns)));
    c.timer->async_wait([this, &c](const std::error_code& ec) {
      if (ec) return void(--stats.progress.sending);
      on_timer(c);
    });
  }

  // Sends every message of `c` that is due (late ones too, with their
  // original scheduled time), then waits for the next.
  void on_timer(SimClient& c) {
    const int64_t now = now_ns();
    for (;;) {
      const int64_t scheduled = plan.scheduled_ns(window.start_ns, c.idx, c.next_seq);
      if (scheduled >= window.end_ns) return void(--stats.progress.sending);
      if (scheduled > now) return arm(c, scheduled);
      send_message(c, c.next_seq++, scheduled, now);
    }
  }

  void send_message(SimClient& c, uint64_t seq, int64_t scheduled, int64_t now) {
    if (c.state != State::kReady) {
      ++stats.sends_skipped;
      return;
    }
    if (plan.mqtt) {
      mqtt_publish(c, seq, scheduled);
    } else {
      parley_send(c, seq, scheduled);
    }
    if (!send_frame(c)) return;
    ++stats.progress.sent;
    stats.send_lag.record(now - scheduled);
    if (window.measured(scheduled)) {
      ++stats.sent_measured;
      ++stats.progress.expected_sender_count;
      stats.progress.expected_with_echo += c.members;
    }
  }

  // The send frame of Parley's protocol, into `frame`.
  void parley_send(SimClient& c, uint64_t seq, int64_t scheduled) {
    char head[160];
    std::snprintf(head, sizeof head,
                  "\",\"cid\":\"%" PRIu32 "-%" PRIu64 "\",\"c\":\"%" PRIu32 ":%" PRIu64 ":%" PRId64 ":",
                  c.idx, seq, c.idx, seq, scheduled);
    frame.assign("{\"t\":\"send\",\"rid\":").append(std::to_string(seq + 1)).append(",\"g\":\"");
    frame.append(*c.group).append(head);
    const size_t contents_start = frame.find("\"c\":\"") + 5;
    const size_t contents_len = frame.size() - contents_start;
    if (contents_len < plan.contents_bytes) frame.append(plan.contents_bytes - contents_len, 'x');
    frame.append("\"}");
  }

  // --- MQTT -----------------------------------------------------------------

  void mqtt_connect(SimClient& c) {
    std::string body;
    mqtt_string(body, "MQTT");
    body.push_back(4);     // protocol level 3.1.1
    body.push_back(0x02);  // clean session
    body.push_back(0);
    body.push_back(0);  // keep alive: off
    mqtt_string(body, plan.clients[c.idx].user);
    frame.assign(1, static_cast<char>(0x10));
    mqtt_remaining_length(frame, body.size());
    frame.append(body);
    send_frame(c);
  }

  void mqtt_subscribe(SimClient& c) {
    std::string body;
    body.push_back(0);
    body.push_back(1);  // packet id 1
    mqtt_string(body, *c.group);
    body.push_back(0);  // QoS 0
    frame.assign(1, static_cast<char>(0x82));
    mqtt_remaining_length(frame, body.size());
    frame.append(body);
    send_frame(c);
  }

  // PUBLISH at QoS 1 to the group's topic; the packet id is seq + 1.
  void mqtt_publish(SimClient& c, uint64_t seq, int64_t scheduled) {
    char head[96];
    const int n = std::snprintf(head, sizeof head, "%" PRIu32 ":%" PRIu64 ":%" PRId64 ":", c.idx, seq, scheduled);
    std::string payload(head, static_cast<size_t>(n));
    if (payload.size() < plan.contents_bytes) payload.append(plan.contents_bytes - payload.size(), 'x');
    const uint16_t pid = static_cast<uint16_t>(seq % 65535 + 1);
    std::string body;
    mqtt_string(body, *c.group);
    body.push_back(static_cast<char>(pid >> 8));
    body.push_back(static_cast<char>(pid & 0xff));
    body.append(payload);
    frame.assign(1, static_cast<char>(0x32));  // PUBLISH, QoS 1
    mqtt_remaining_length(frame, body.size());
    frame.append(body);
  }

  // Splits the bytes of a binary frame into MQTT packets (a packet may span
  // frames, a frame may hold several).
  void on_mqtt_bytes(SimClient& c, const std::string& bytes, int64_t now) {
    c.mqtt_in.append(bytes);
    size_t off = 0;
    for (;;) {
      if (c.mqtt_in.size() - off < 2) break;
      size_t len = 0, mult = 1, i = off + 1;
      bool complete = false;
      for (; i < c.mqtt_in.size() && i < off + 5; ++i) {
        const uint8_t b = static_cast<uint8_t>(c.mqtt_in[i]);
        len += (b & 127) * mult;
        mult *= 128;
        if ((b & 128) == 0) {
          complete = true;
          ++i;
          break;
        }
      }
      if (!complete || c.mqtt_in.size() - i < len) break;
      on_mqtt_packet(c, static_cast<uint8_t>(c.mqtt_in[off]), c.mqtt_in.data() + i, len, now);
      off = i + len;
    }
    c.mqtt_in.erase(0, off);
  }

  void on_mqtt_packet(SimClient& c, uint8_t type, const char* p, size_t len, int64_t now) {
    switch (type >> 4) {
      case 2:  // CONNACK
        if (len < 2 || p[1] != 0) {
          stats.note("mqtt connack refused");
          return void(++stats.bad_frames);
        }
        return mqtt_subscribe(c);
      case 9:  // SUBACK
        if (c.state == State::kResuming) {
          c.state = State::kReady;
          if (!c.ever_ready) ++stats.progress.ready;
          c.ever_ready = true;
        }
        return;
      case 4: {  // PUBACK
        if (len < 2) return void(++stats.bad_frames);
        const uint64_t seq = ((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1])) - 1;
        ++stats.acked;
        ++stats.progress.answered;
        const int64_t scheduled = plan.scheduled_ns(window.start_ns, c.idx, seq);
        if (!window.measured(scheduled)) return;
        ++stats.acked_measured;
        stats.ack_latency.record(now - scheduled);
        return;
      }
      case 3: {  // PUBLISH (QoS 0: no packet id)
        if (len < 2) return void(++stats.bad_frames);
        const size_t topic = (static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]);
        const size_t skip = 2 + topic + (((type >> 1) & 3) != 0 ? 2 : 0);
        if (skip > len) return void(++stats.bad_frames);
        std::string payload(p + skip, len - skip);
        return on_mqtt_message(c, payload, now);
      }
      default: ++stats.other_frames;
    }
  }

  // One delivery: in order per sender (MQTT has no group sequence).
  void on_mqtt_message(SimClient& c, const std::string& payload, int64_t now) {
    uint32_t sender = 0;
    uint64_t seq = 0;
    int64_t scheduled = 0;
    if (!parse_contents(payload.c_str(), sender, seq, scheduled)) return void(++stats.bad_contents);
    auto it = std::find_if(c.mqtt_last.begin(), c.mqtt_last.end(), [&](const auto& e) { return e.first == sender; });
    if (it == c.mqtt_last.end()) it = c.mqtt_last.insert(c.mqtt_last.end(), {sender, 0});
    if (seq < it->second) return void(++stats.duplicates);
    if (seq != it->second && stats.order_errors++ < 3) {
      stats.note("order " + plan.clients[c.idx].user + ": from " + std::to_string(sender) + " got " +
                 std::to_string(seq) + " expecting " + std::to_string(it->second));
    }
    it->second = seq + 1;
    ++stats.received_total;
    if (now >= window.measure_begin_ns && now < window.end_ns) ++stats.received_in_window;
    if (sender == c.idx) ++stats.progress.self_received;
    if (!window.measured(scheduled)) return;
    ++stats.progress.received_measured;
    stats.latency.record(now - scheduled);
  }

  // --- receiving ------------------------------------------------------------

  void on_frame(SimClient& c, const WsClient::message_ptr& m) {
    const int64_t now = now_ns();
    if (plan.mqtt && m->get_opcode() == ws::frame::opcode::binary) return on_mqtt_bytes(c, m->get_payload(), now);
    if (m->get_opcode() != ws::frame::opcode::text) {
      ++stats.bad_frames;
      return;
    }
    std::string& payload = m->get_raw_payload();
    value_alloc.Clear();
    parse_alloc.Clear();
    doc.ParseInsitu(&payload[0]);
    if (doc.HasParseError() || !doc.IsObject()) {
      ++stats.bad_frames;
      return;
    }
    const char* t = get_str(doc, "t");
    if (std::strcmp(t, "msg") == 0) return on_msg(c, doc, false, now);
    if (std::strcmp(t, "ack") == 0) return on_ack(c, doc, now);
    if (std::strcmp(t, "hint") == 0) return on_hint(c, doc);
    if (std::strcmp(t, "pulled") == 0) return on_pulled(c, doc, now);
    if (std::strcmp(t, "resumed") == 0) return on_resumed(c, doc);
    if (std::strcmp(t, "mode") == 0) return on_mode(c, doc);
    if (std::strcmp(t, "presence") == 0) return void(++stats.presence);
    if (std::strcmp(t, "hello") == 0) return void(++stats.hello);
    if (std::strcmp(t, "error") == 0) return on_error(c, doc);
    if (std::strcmp(t, "epoch") == 0) return on_epoch(c, doc);
    if (std::strcmp(t, "behind") == 0) {
      ++stats.behind;
      return stats.note("behind " + plan.clients[c.idx].user + ": queued " +
                        std::to_string(get_u64(doc, "queued")));
    }
    ++stats.other_frames;
  }

  // One message, pushed or pulled.
  void on_msg(SimClient& c, const Value& m, bool pulled, int64_t now) {
    const uint64_t id = get_u64(m, "id");
    if (pulled && id <= c.last) return void(++stats.pull_overlap);
    if (id < c.seen_base) return void(++stats.duplicates);
    const size_t slot = id - c.seen_base;
    if (slot >= c.seen.size()) c.seen.resize(std::max<size_t>(slot + 1, c.seen.size() * 2 + 1024));
    if (c.seen[slot]) return void(++stats.duplicates);
    c.seen[slot] = true;
    if (id != c.last + 1) {
      if (stats.order_errors++ < 3)
        stats.note("order " + plan.clients[c.idx].user + ": got id " + std::to_string(id) + " after " +
                   std::to_string(c.last));
    }
    c.last = std::max(c.last, id);

    ++stats.received_total;
    if (now >= window.measure_begin_ns && now < window.end_ns) ++stats.received_in_window;
    uint32_t sender = 0;
    uint64_t seq = 0;
    int64_t scheduled = 0;
    if (!parse_contents(get_str(m, "c"), sender, seq, scheduled)) return void(++stats.bad_contents);
    if (sender == c.idx) ++stats.progress.self_received;
    if (!window.measured(scheduled)) return;
    ++stats.progress.received_measured;
    stats.latency.record(now - scheduled);
  }

  void on_ack(SimClient& c, const Value& a, int64_t now) {
    const uint64_t rid = get_u64(a, "rid");
    if (rid == 0 || rid >= kControlRid) return void(++stats.other_frames);
    ++stats.acked;
    ++stats.progress.answered;
    if (get_bool(a, "dup")) ++stats.dup_acks;
    const int64_t scheduled = plan.scheduled_ns(window.start_ns, c.idx, rid - 1);
    if (!window.measured(scheduled)) return;
    ++stats.acked_measured;
    stats.ack_latency.record(now - scheduled);
  }

  void on_error(SimClient& c, const Value& e) {
    ++stats.error_names[get_str(e, "name")];
    if (stats.error_names.size() <= kSamples)
      stats.note(std::string("error ") + get_str(e, "name") + ": " + get_str(e, "msg"));
    const uint64_t rid = get_u64(e, "rid");
    if (rid == kControlRid + 1) c.pull_inflight = false;
    if (rid == 0 || rid >= kControlRid) return;
    ++stats.send_errors;
    ++stats.progress.answered;
    if (!window.measured(plan.scheduled_ns(window.start_ns, c.idx, rid - 1))) return;
    ++stats.send_errors_measured;
    --stats.progress.expected_sender_count;
    stats.progress.expected_with_echo -= c.members;
  }

  void on_resumed(SimClient& c, const Value& r) {
    c.epoch = get_u64(r, "epoch");
    if (c.state == State::kResuming) {
      c.state = State::kReady;
      if (!c.ever_ready) ++stats.progress.ready;
      c.ever_ready = true;
    }
    c.pull_mode = std::strcmp(get_str(r, "mode"), "pull") == 0;
    c.pull_head = std::max(c.pull_head, get_u64(r, "head"));
    maybe_pull(c);
  }

  void on_mode(SimClient& c, const Value& m) {
    const bool to_pull = std::strcmp(get_str(m, "mode"), "pull") == 0;
    ++(to_pull ? stats.to_pull : stats.to_push);
    c.pull_mode = to_pull;
    c.pull_head = std::max(c.pull_head, get_u64(m, "head"));
    if (to_pull) return maybe_pull(c);
    // Back to push: resume from our last id, once an outstanding pull is in.
    if (c.pull_inflight) return void(c.resume_pending = true);
    send_resume(c);
  }

  void on_hint(SimClient& c, const Value& h) {
    ++stats.hints;
    c.pull_head = std::max(c.pull_head, get_u64(h, "head"));
    maybe_pull(c);
  }

  void on_pulled(SimClient& c, const Value& p, int64_t now) {
    c.pull_inflight = false;
    c.pull_head = std::max(c.pull_head, get_u64(p, "head"));
    auto msgs = p.FindMember("msgs");
    if (msgs != p.MemberEnd() && msgs->value.IsArray()) {
      for (const Value& m : msgs->value.GetArray()) {
        ++stats.pulled_msgs;
        on_msg(c, m, true, now);
      }
    }
    if (c.resume_pending) {
      c.resume_pending = false;
      return send_resume(c);
    }
    maybe_pull(c);
  }

  void on_epoch(SimClient& c, const Value& e) {
    const uint64_t epoch = get_u64(e, "epoch");
    if (epoch == c.epoch) return;
    ++stats.epochs;
    stats.note("epoch " + *c.group + " -> " + std::to_string(epoch));
    c.epoch = epoch;
    c.last = 0;
    c.seen_base = 1;
    c.seen.clear();
    send_resume(c);
  }

  const LoadPlan& plan;
  const size_t max_connecting;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  WsClient endpoint;
  std::vector<SimClient> clients;
  size_t next_connect = 0;
  size_t connecting = 0;
  bool stopping = false;
  RunWindow window;
  ShardStats stats;
  std::string frame;  // the frame being sent

  // One in-situ parse per frame into fixed buffers (cleared per frame).
  char value_buf[16384];
  char parse_buf[8192];
  rapidjson::MemoryPoolAllocator<> value_alloc{value_buf, sizeof value_buf};
  rapidjson::MemoryPoolAllocator<> parse_alloc{parse_buf, sizeof parse_buf};
  rapidjson::GenericDocument<rapidjson::UTF8<>, rapidjson::MemoryPoolAllocator<>,
                             rapidjson::MemoryPoolAllocator<>>
      doc{&value_alloc, 1024, &parse_alloc};
};

LoadShard::LoadShard(const LoadPlan& plan, std::vector<uint32_t> clients, size_t max_connecting)
    : impl_(std::make_unique<Impl>(plan, clients, max_connecting)) {}

LoadShard::~LoadShard() {
  stop();
}

void LoadShard::connect_all() {
  asio::post(impl_->io, [this] { impl_->connect_more(); });
  thread_ = std::thread([this] { impl_->io.run(); });
}

void LoadShard::start(const RunWindow& window) {
  asio::post(impl_->io, [this, window] { impl_->start(window); });
}

ShardProgress LoadShard::progress() {
  std::promise<ShardProgress> answer;
  auto result = answer.get_future();
  asio::post(impl_->io, [this, &answer] { answer.set_value(impl_->stats.progress); });
  return result.get();
}

void LoadShard::close_all() {
  asio::post(impl_->io, [this] {
    impl_->stopping = true;
    for (SimClient& c : impl_->clients) {
      c.timer->cancel();
      if (c.state != State::kResuming && c.state != State::kReady) continue;
      std::error_code ec;
      c.con->close(ws::close::status::normal, "done", ec);
    }
  });
}

void LoadShard::stop() {
  if (!thread_.joinable()) return;
  impl_->io.stop();
  thread_.join();
}

const ShardStats& LoadShard::stats() const {
  return impl_->stats;
}

}  // namespace parley::load
