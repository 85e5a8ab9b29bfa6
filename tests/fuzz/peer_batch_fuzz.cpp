// Fuzz target: the peer batch decoder (detail::decode_batch, default Limits),
// which reads what another node POSTs to /v1/peer/batch or hands to
// parley_node_peer_batch. One input = one batch. Checked:
//  - it never throws; a refused batch gets invalid_argument or too_large
//    with a message;
//  - a decoded batch is valid: ids pass validate_id, messages pass
//    validate_submission with msg_id == prev_msg_id + 1 >= 1, presence
//    statuses are known, at most max_batch_messages items;
//  - re-encoding it with the encoders a node sends with gives a batch that
//    decodes and re-encodes to the same bytes.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/peer_codec.hpp"
#include "fuzz_check.hpp"

namespace {

using parley::fuzz::check;

std::string encode(const parley::detail::PeerBatch& b) {
  std::vector<parley::Frame> items;
  for (const parley::MessagePtr& m : b.messages)
    items.push_back(std::make_shared<const std::string>(parley::detail::encode_message_item(*m)));
  for (const parley::PresenceEv& p : b.presence)
    items.push_back(std::make_shared<const std::string>(parley::detail::encode_presence_item(p)));
  for (const parley::detail::Interest& in : b.interest)
    items.push_back(
        std::make_shared<const std::string>(parley::detail::encode_interest_item(in.group_id, in.epoch, in.head)));
  return parley::detail::encode_batch(b.from, items);
}

void check_valid(const parley::detail::PeerBatch& b, const parley::Limits& limits) {
  check(parley::validate_id(b.from, "from", limits).is_ok(), "a batch from an invalid node id");
  check(b.messages.size() + b.presence.size() + b.interest.size() <= limits.max_batch_messages,
        "more items than max_batch_messages");
  for (const parley::MessagePtr& m : b.messages) {
    check(m->msg_id >= 1 && m->msg_id == m->prev_msg_id + 1, "a message with msg_id != prev_msg_id + 1");
    check(parley::validate_submission(m->group_id, m->user_id, m->client_msg_id, m->contents, limits).is_ok(),
          "a message that fails validate_submission");
  }
  for (const parley::PresenceEv& p : b.presence) {
    check(p.status == parley::PresenceStatus::kOffline || p.status == parley::PresenceStatus::kOnline ||
              p.status == parley::PresenceStatus::kAway,
          "an unknown presence status");
    check(parley::validate_id(p.user_id, "user_id", limits).is_ok() &&
              parley::validate_id(p.group_id, "group_id", limits).is_ok(),
          "presence with an invalid id");
  }
  for (const parley::detail::Interest& in : b.interest)
    check(parley::validate_id(in.group_id, "group_id", limits).is_ok(), "interest in an invalid group id");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const parley::Limits limits;
  auto decode = [&limits](const void* p, size_t n) {
    return parley::fuzz::no_throw("decode_batch", [&] { return parley::detail::decode_batch(p, n, limits); });
  };
  parley::Result<parley::detail::PeerBatch> batch = decode(data, size);
  if (!batch) {
    parley::fuzz::check_error(batch.status(), {parley::Code::kInvalidArgument, parley::Code::kTooLarge},
                              "decode_batch");
    return 0;
  }
  check_valid(*batch, limits);
  const std::string e1 = encode(*batch);
  parley::Result<parley::detail::PeerBatch> again = decode(e1.data(), e1.size());
  if (!again) parley::fuzz::fail("a re-encoded batch does not decode: " + again.status().to_string());
  check(encode(*again) == e1, "a re-encoded batch is not a fixed point");
  return 0;
}
