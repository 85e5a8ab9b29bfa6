// LoadPlan: who the simulated clients are, which group each is in and when
// each one sends. Built by the main thread before any connection is opened,
// then read-only for the shards (their threads start after it is complete,
// and the start time is handed to them with the start call).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace parley::load {

struct ClientPlan {
  std::string user;
  std::string token;  // filled by the HTTP setup
  uint32_t group = 0;
  int64_t phase_ns = 0;  // first send at start + phase_ns, then every interval
};

struct LoadPlan {
  std::string http_url;  // http://HOST:PORT
  std::string ws_url;    // ws://HOST:PORT/v1/ws?token=
  std::vector<ClientPlan> clients;
  std::vector<std::string> groups;
  std::vector<uint32_t> members;  // per group
  int64_t interval_ns = 0;        // between two sends of one client
  // MQTT 3.1.1 over WebSocket (a broker such as Mosquitto, the baseline)
  // instead of Parley's protocol: each client subscribes to its group's
  // topic at QoS 0 and publishes at QoS 1 (PUBACK is the ack).
  bool mqtt = false;
  size_t contents_bytes = 128;

  // Scheduled send time of message `seq` (0-based) of client `idx`, on the
  // steady clock in ns, once the start time is known.
  int64_t scheduled_ns(int64_t start_ns, uint32_t idx, uint64_t seq) const {
    return start_ns + clients[idx].phase_ns + static_cast<int64_t>(seq) * interval_ns;
  }
};

// Times of one run on the steady clock (ns): sends are scheduled in
// [start, end); a message counts in the measured figures when scheduled in
// [measure_begin, end).
struct RunWindow {
  int64_t start_ns = 0;
  int64_t measure_begin_ns = 0;
  int64_t end_ns = 0;
  bool measured(int64_t scheduled) const { return scheduled >= measure_begin_ns && scheduled < end_ns; }
};

}  // namespace parley::load
