// The node-to-node batch format (msgpack). Internal to the library; hosts move
// the bytes without looking inside.
//
// batch := [1, from_node_id, [item, ...]]
// item  := [0, group, msg_id, prev_msg_id, ts, user, contents(bin), client_msg_id, epoch]  a message
//        | [1, user, group, status, typing(bool), expires_at_ms]                     presence
//        | [2, group, epoch, head]        the sender started following the group
//        | [3, user, group, epoch, msg_id, head, unread, mentions]  a user's read state moved
// Each item is encoded once and shared by every destination's batch. Ids and
// contents are UTF-8 text, as from clients (docs/decisions.md 37).
#pragma once

#include <string>
#include <vector>

#include "parley/message.hpp"
#include "parley/protocol.hpp"
#include "parley/status.hpp"

namespace parley::detail {

// The sender started following a group, whose head it read as (epoch,
// head): it has every message up to there. Messages after it that a node
// pushed before it learned of the new follower are sent again (decision 48).
// An interest from a node that does not say its head (2 elements) has
// has_head false.
struct Interest {
  std::string group_id;
  uint64_t epoch = 0;
  uint64_t head = 0;
  bool has_head = false;
};

// A device of `user_id` moved its read position: the user's sessions on
// the receiving node are told (decision 49).
struct ReadItem {
  std::string user_id;
  ReadState state;
};

// A session of `user_id` set its notification level in a group: the
// user's sessions on the receiving node are told.
struct NotifyItem {
  std::string user_id;
  std::string group_id;
  NotifyLevel level = NotifyLevel::kAll;
};

struct PeerBatch {
  std::string from;
  std::vector<MessagePtr> messages;
  std::vector<PresenceEv> presence;
  std::vector<Interest> interest;  // groups the sender started following
  std::vector<ReadItem> reads;
  std::vector<NotifyItem> levels;
};

std::string encode_message_item(const Message& m);
std::string encode_presence_item(const PresenceEv& p);
std::string encode_interest_item(const std::string& group_id, uint64_t epoch, uint64_t head);
std::string encode_read_item(const ReadItem& r);
std::string encode_notify_item(const NotifyItem& n);
// Concatenates pre-encoded items into one batch.
std::string encode_batch(const std::string& from, const std::vector<Frame>& items);
// Parses and validates a batch from another node: kInvalidArgument for a
// malformed one (text that is not UTF-8 included), kTooLarge for an id or
// contents over `limits`; nothing of a refused batch is used. Never throws.
Result<PeerBatch> decode_batch(const void* data, size_t size, const Limits& limits);

}  // namespace parley::detail
