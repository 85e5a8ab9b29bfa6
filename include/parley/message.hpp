// Message: one entry of a group's ordered history, and the limits every input
// is checked against.
//
// msg_id is dense per group and starts at 1; it is assigned by the
// MessageStore at append (never by a node), so prev_msg_id == msg_id - 1 for
// every stored message. (group_id, epoch, msg_id) names one message for good:
// after a group's history is reset, ids start again in a new epoch. Plain
// value type; no thread rules.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "parley/status.hpp"

namespace parley {

struct Message {
  std::string group_id;
  uint64_t msg_id = 0;        // 1, 2, 3 ... per group
  uint64_t prev_msg_id = 0;   // msg_id - 1; carried so receivers can detect gaps
  int64_t timestamp_ms = 0;   // server clock at append
  std::string user_id;        // the sender
  std::string contents;       // UTF-8 text (checked by validate_submission)
  std::string client_msg_id;  // sender's idempotency key; may be empty (no dedup)
  uint64_t epoch = 0;         // the group log's epoch (>= 1 once stored); 0: unknown
};

using MessagePtr = std::shared_ptr<const Message>;

// Size limits. Defaults suit chat; hosts may tighten or widen them.
struct Limits {
  size_t max_id_bytes = 128;  // group_id, user_id, client_msg_id, node ids
  size_t max_contents_bytes = 64 * 1024;
  size_t max_batch_messages = 4096;  // messages in one peer batch
  size_t max_read_limit = 1000;      // messages in one read/pull answer
};

// Checks an identifier: non-empty, at most limits.max_id_bytes (else
// kTooLarge), UTF-8 without control characters (else kInvalidArgument).
// `what` names it in the error.
Status validate_id(const std::string& id, const char* what, const Limits& limits);

// Checks what a client or a peer node may submit: group and user ids,
// client_msg_id (may be empty) as validate_id, contents UTF-8 and at most
// limits.max_contents_bytes. Returns kInvalidArgument or kTooLarge with a
// message naming the field.
Status validate_submission(const std::string& group_id, const std::string& user_id,
                           const std::string& client_msg_id, const std::string& contents,
                           const Limits& limits);

}  // namespace parley
