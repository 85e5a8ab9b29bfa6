// The simulation's checks of read state (docs/decisions.md 49), with
// --reads: every unread count a store gives equals a count over its log the
// long way, taken in the same store call (nothing can change between them).
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "parley/store.hpp"

namespace parley::sim {

// Compares got[from + i] with a brute-force count for queries[i]; each
// difference is described in *errors.
inline void check_unread_counts(MessageStore& log, const std::vector<UnreadQuery>& queries,
                                const std::vector<UnreadCount>& got, size_t from, std::vector<std::string>* errors) {
  for (size_t i = 0; i < queries.size() && from + i < got.size(); ++i) {
    const UnreadQuery& q = queries[i];
    const UnreadCount& c = got[from + i];
    std::vector<GroupHead> heads;
    std::vector<Message> all;
    if (!log.heads({q.group_id}, &heads) || !log.read(q.group_id, 0, 1u << 30, &all)) {
      errors->push_back(fmt::format("unread check: cannot read '{}' back", q.group_id));
      continue;
    }
    const uint64_t after = std::min(q.read.epoch == heads[0].epoch ? q.read.msg_id : 0, heads[0].head);
    uint64_t unread = 0, mentions = 0;
    for (const Message& m : all) {
      if (m.msg_id <= after || m.entry.kind != EntryKind::kMessage || m.user_id == q.user_id || m.deleted) continue;
      ++unread;
      const std::vector<std::string>& mn = m.entry.mentions;
      if (std::find(mn.begin(), mn.end(), q.user_id) != mn.end()) ++mentions;
    }
    if (c.epoch != heads[0].epoch || c.head != heads[0].head || c.after != after || c.unread != unread ||
        c.mentions != mentions) {
      errors->push_back(fmt::format(
          "unread of {} in '{}' from ({}, {}): store says epoch {} head {} after {} unread {} mentions {}, "
          "the log says epoch {} head {} after {} unread {} mentions {}",
          q.user_id, q.group_id, q.read.epoch, q.read.msg_id, c.epoch, c.head, c.after, c.unread, c.mentions,
          heads[0].epoch, heads[0].head, after, unread, mentions));
    }
  }
}

}  // namespace parley::sim
