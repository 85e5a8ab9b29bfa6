// Fuzz target: the C API entry points that take bytes from the network,
// parley_node_client_request and parley_node_peer_batch, on a node made with
// the C API on the memory store (groups "general": alice, bob; "ops": carol).
// Alice is session 1, bob session 2.
//
// Input: byte 0 picks the node's codec (bit 0: 1 JSON, 0 msgpack); the rest
// is up to 16 chunks separated by "\n--\n". A chunk starting with 'P' is a
// peer batch (the bytes after the 'P'); any other chunk is a frame from
// alice. After each chunk the host flushes and fires the timer, one virtual
// second later. Checked besides "no crash":
//  - client_request returns PARLEY_OK while the session is open; peer_batch
//    returns what detail::decode_batch says (ok, invalid_argument,
//    too_large); parley_errmsg is "" after a success and names the error
//    after a failure; flush and timer_fired return PARLEY_OK;
//  - every frame the node delivers decodes with its codec (text fields are
//    UTF-8 whatever a client or a peer sent, docs/decisions.md 37); error
//    events carry a known code and a message;
//  - a frame the codec refuses is answered by an error event with the
//    codec's code and message; a decoded send or pull is answered (ack,
//    pulled or error) with its rid in the same turn;
//  - without peer batches, each session receives a group's messages of one
//    epoch in increasing msg_id order (from each resume after an unsub).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include "core/peer_codec.hpp"
#include "fuzz_check.hpp"
#include "parley/parley.h"
#include "parley/protocol.hpp"

namespace {

using parley::fuzz::check;
using parley::fuzz::fail;

constexpr std::string_view kSeparator = "\n--\n";
constexpr size_t kMaxChunks = 16;

struct Host {
  std::vector<std::pair<uint64_t, std::string>> delivered;  // this turn: (session, frame)
  std::vector<uint64_t> closed;
  int64_t now_ms = 1764290000000;
};

void on_deliver(void* user_data, uint64_t session, const parley_bytes* frames, size_t count) {
  auto* host = static_cast<Host*>(user_data);
  for (size_t i = 0; i < count; ++i)
    host->delivered.emplace_back(session,
                                 std::string(static_cast<const char*>(frames[i].data), frames[i].size));
}
void on_close(void* user_data, uint64_t session, int, const char*) {
  static_cast<Host*>(user_data)->closed.push_back(session);
}
int64_t on_clock(void* user_data) {
  return static_cast<Host*>(user_data)->now_ms;
}

void ok(int rc, const char* what) {
  if (rc != PARLEY_OK) fail(std::string(what) + " failed: " + parley_errmsg(nullptr));
}

// The errmsg contract after a call on a live handle.
void check_errmsg(const void* handle, int rc, const char* fn) {
  const std::string msg = parley_errmsg(handle);
  if (rc == PARLEY_OK) check(msg.empty(), "parley_errmsg is not empty after a success");
  if (rc != PARLEY_OK) check(msg.rfind(fn, 0) == 0, "parley_errmsg does not name the failed call");
}

std::vector<std::string_view> split(std::string_view rest) {
  std::vector<std::string_view> chunks;
  while (chunks.size() + 1 < kMaxChunks) {
    size_t at = rest.find(kSeparator);
    if (at == std::string_view::npos) break;
    chunks.push_back(rest.substr(0, at));
    rest.remove_prefix(at + kSeparator.size());
  }
  chunks.push_back(rest);
  return chunks;
}

// The rid of an answer to a send or pull (ack, pulled, error).
std::optional<uint64_t> rid_of(const parley::ServerEvent& ev) {
  if (const auto* e = std::get_if<parley::AckEv>(&ev)) return e->rid;
  if (const auto* e = std::get_if<parley::PullResultEv>(&ev)) return e->rid;
  if (const auto* e = std::get_if<parley::ErrorEv>(&ev)) return e->rid;
  return std::nullopt;
}

class Run {
 public:
  explicit Run(bool json) {
    codec_ = json ? parley::make_json_codec() : parley::make_msgpack_codec();
    ok(parley_store_open_memory(&store_), "parley_store_open_memory");
    ok(parley_store_create_group(store_, "general", "alice"), "create general");
    ok(parley_store_join(store_, "general", "bob"), "join general");
    ok(parley_store_create_group(store_, "ops", "carol"), "create ops");
    parley_node_options* options = nullptr;
    ok(parley_node_options_create(&options), "parley_node_options_create");
    ok(parley_node_options_set_codec(options, json ? PARLEY_CODEC_JSON : PARLEY_CODEC_MSGPACK), "set_codec");
    ok(parley_node_create(options, store_, &node_), "parley_node_create");
    ok(parley_node_options_destroy(options), "parley_node_options_destroy");
    ok(parley_node_set_deliver(node_, on_deliver, &host_, nullptr), "set_deliver");
    ok(parley_node_set_close_session(node_, on_close, &host_, nullptr), "set_close_session");
    ok(parley_node_set_clock(node_, on_clock, &host_, nullptr), "set_clock");
    ok(parley_node_start(node_), "parley_node_start");
    ok(parley_node_session_open(node_, 1, "alice"), "open alice");
    ok(parley_node_session_open(node_, 2, "bob"), "open bob");
  }
  ~Run() {
    ok(parley_node_destroy(node_), "parley_node_destroy");
    ok(parley_store_close(store_), "parley_store_close");
  }
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  void chunk(std::string_view c) {
    ++chunks_;
    host_.delivered.clear();
    if (!c.empty() && c[0] == 'P') {
      peer_batch(c.substr(1));
    } else {
      client_frame(c);
    }
    end_turn();
  }

 private:
  void peer_batch(std::string_view bytes) {
    had_peer_batch_ = true;
    const int rc = parley_node_peer_batch(node_, bytes.data(), bytes.size());
    const parley::Status want =
        parley::detail::decode_batch(bytes.data(), bytes.size(), parley::Limits()).status();
    check(rc == static_cast<int>(want.code()), "parley_node_peer_batch disagrees with decode_batch");
    check_errmsg(node_, rc, "parley_node_peer_batch");
  }

  void client_frame(std::string_view frame) {
    const bool open = std::find(host_.closed.begin(), host_.closed.end(), 1) == host_.closed.end();
    const int rc = parley_node_client_request(node_, 1, frame.data(), frame.size());
    check(rc == (open ? PARLEY_OK : PARLEY_ERR_NOT_FOUND), "parley_node_client_request: unexpected code");
    check_errmsg(node_, rc, "parley_node_client_request");
    if (!open) return;
    expected_ = codec_->decode_request(frame.data(), frame.size(), parley::Limits());
    if (*expected_) {
      // A new subscription after an unsub starts again from the resume's `after`.
      if (const auto* unsub = std::get_if<parley::UnsubscribeReq>(&expected_->value()))
        forget_order(1, unsub->group_id);
    }
  }

  void end_turn() {
    ok(parley_node_flush(node_), "parley_node_flush");
    check_deliveries();
    expected_.reset();
    host_.now_ms += 1000;
    host_.delivered.clear();
    ok(parley_node_timer_fired(node_), "parley_node_timer_fired");
    check_deliveries();
  }

  void check_deliveries() {
    bool answered = false;
    for (const auto& [session, frame] : host_.delivered) {
      parley::Result<parley::ServerEvent> ev = codec_->decode_event(frame.data(), frame.size());
      if (!ev) fail("the node delivered a frame its codec cannot decode: " + ev.status().to_string());
      if (const auto* e = std::get_if<parley::ErrorEv>(&*ev)) {
        check(static_cast<int>(e->code) >= PARLEY_ERR_INVALID_ARGUMENT &&
                  static_cast<int>(e->code) <= PARLEY_ERR_LIMIT_EXCEEDED,
              "an error event with an unknown code");
        check(!e->message.empty(), "an error event without a message");
      }
      if (session == 1) answered = answered || answers(*ev);
      if (const auto* m = std::get_if<parley::MessageEv>(&*ev)) check_order(session, *m->message);
    }
    if (expected_ && needs_answer() && !answered) {
      fail("request " + std::to_string(chunks_) + " was not answered in its turn: " +
           (*expected_ ? codec_->encode_request(expected_->value()) : expected_->status().to_string()));
    }
  }

  // Whether ev is the answer the current client frame needs.
  bool answers(const parley::ServerEvent& ev) const {
    if (!expected_) return false;
    if (!*expected_) {
      const auto* e = std::get_if<parley::ErrorEv>(&ev);
      return e != nullptr && e->code == expected_->status().code() &&
             e->message == expected_->status().message();
    }
    const uint64_t rid = std::visit([](const auto& r) { return r.rid; }, expected_->value());
    return rid_of(ev) == std::optional<uint64_t>(rid);
  }
  bool needs_answer() const {
    if (!*expected_) return true;
    return std::holds_alternative<parley::SendReq>(expected_->value()) ||
           std::holds_alternative<parley::PullReq>(expected_->value());
  }

  void forget_order(uint64_t session, const std::string& group_id) {
    for (auto it = last_id_.begin(); it != last_id_.end();) {
      const bool same = std::get<0>(it->first) == session && std::get<1>(it->first) == group_id;
      it = same ? last_id_.erase(it) : std::next(it);
    }
  }

  void check_order(uint64_t session, const parley::Message& m) {
    if (had_peer_batch_) return;
    uint64_t& last = last_id_[std::make_tuple(session, m.group_id, m.epoch)];
    check(m.msg_id > last, "a session received a group's messages out of order or twice");
    last = m.msg_id;
  }

  std::unique_ptr<parley::ClientCodec> codec_;
  Host host_;
  parley_store* store_ = nullptr;
  parley_node* node_ = nullptr;
  bool had_peer_batch_ = false;
  int chunks_ = 0;  // fed so far, for failure messages
  std::optional<parley::Result<parley::ClientRequest>> expected_;
  std::map<std::tuple<uint64_t, std::string, uint64_t>, uint64_t> last_id_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  parley::fuzz::no_throw("the C API", [&] {
    Run run((data[0] & 1) != 0);
    for (std::string_view c : split(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1)))
      run.chunk(c);
  });
  return 0;
}
