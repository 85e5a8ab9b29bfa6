// The properties every ClientCodec has on untrusted bytes, checked by the
// json_frame and msgpack_frame targets (one input = one frame):
//  - decode_request, peek_ids and decode_event never throw;
//  - a refused frame gets invalid_argument or too_large with a message (too
//    large exactly when over the codec's frame limit, where that is public),
//    and peek_ids echoes no id over the limit;
//  - a decoded request obeys the limits it was decoded with (pull limit,
//    presence status);
//  - what decodes re-encodes to a canonical frame that decodes to the same
//    request or event: encode(decode(encode(x))) == encode(x).
// Each frame is decoded with the default limits and with small ones, so the
// size limits are reached with small inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "fuzz_check.hpp"
#include "parley/protocol.hpp"

namespace parley::fuzz {

inline Limits small_limits() {
  Limits l;
  l.max_id_bytes = 8;
  l.max_contents_bytes = 64;
  l.max_read_limit = 10;
  return l;
}

// A decoded request as the node will see it.
inline void check_request(const ClientRequest& r, const Limits& limits) {
  if (const auto* pull = std::get_if<PullReq>(&r)) {
    check(pull->limit >= 1 && pull->limit <= limits.max_read_limit, "pull limit outside 1..max_read_limit");
  }
  if (const auto* presence = std::get_if<PresenceReq>(&r)) {
    check(presence->status != PresenceStatus::kOffline, "a presence request decoded as offline");
  }
}

// encode(decode(e1)) must give e1 back, e1 being a codec's own encoding.
// Limits roomy enough that the canonical frame is never too large.
inline void check_request_fixed_point(const ClientCodec& codec, const ClientRequest& r,
                                      const Limits& limits) {
  const std::string e1 = codec.encode_request(r);
  Limits roomy = limits;
  roomy.max_contents_bytes += e1.size();
  Result<ClientRequest> again =
      no_throw("decode_request", [&] { return codec.decode_request(e1.data(), e1.size(), roomy); });
  if (!again) fail("a re-encoded request does not decode: " + again.status().to_string());
  check(again->index() == r.index(), "a re-encoded request decodes as another type");
  check(codec.encode_request(*again) == e1, "a re-encoded request is not a fixed point");
}

inline void check_event_fixed_point(const ClientCodec& codec, const ServerEvent& ev) {
  const std::string e1 = codec.encode_event(ev);
  Result<ServerEvent> again =
      no_throw("decode_event", [&] { return codec.decode_event(e1.data(), e1.size()); });
  if (!again) fail("a re-encoded event does not decode: " + again.status().to_string());
  check(again->index() == ev.index(), "a re-encoded event decodes as another type");
  check(codec.encode_event(*again) == e1, "a re-encoded event is not a fixed point");
}

// The codec's frame size limit, if public (json_max_frame_bytes).
using MaxFrameFn = size_t (*)(const Limits&);

inline void fuzz_request(const ClientCodec& codec, const uint8_t* data, size_t size, const Limits& limits,
                         MaxFrameFn max_frame) {
  Result<ClientRequest> r =
      no_throw("decode_request", [&] { return codec.decode_request(data, size, limits); });
  if (max_frame != nullptr) {
    const bool too_large = !r && r.status().code() == Code::kTooLarge;
    check(too_large == (size > max_frame(limits)), "too_large does not match the frame limit");
  }
  if (r) {
    check_request(*r, limits);
    check_request_fixed_point(codec, *r, limits);
    return;
  }
  check_error(r.status(), {Code::kInvalidArgument, Code::kTooLarge}, "decode_request");
  const std::string unset = "\x01unset";
  uint64_t rid = 0;
  std::string group_id = unset, client_msg_id = unset;
  no_throw("peek_ids", [&] { codec.peek_ids(data, size, limits, &rid, &group_id, &client_msg_id); });
  check(group_id == unset || group_id.size() <= limits.max_id_bytes, "peek_ids echoes an oversized group id");
  check(client_msg_id == unset || client_msg_id.size() <= limits.max_id_bytes,
        "peek_ids echoes an oversized client_msg_id");
}

// One frame, as a client request (both limits) and as a server event.
inline void fuzz_client_codec(const ClientCodec& codec, const uint8_t* data, size_t size,
                              MaxFrameFn max_frame = nullptr) {
  fuzz_request(codec, data, size, Limits(), max_frame);
  fuzz_request(codec, data, size, small_limits(), max_frame);
  Result<ServerEvent> ev = no_throw("decode_event", [&] { return codec.decode_event(data, size); });
  if (ev) {
    check_event_fixed_point(codec, *ev);
  } else {
    check_error(ev.status(), {Code::kInvalidArgument}, "decode_event");
  }
}

}  // namespace parley::fuzz
