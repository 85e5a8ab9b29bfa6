// What a group's history shows once its entries are applied in order (the
// "folded" view): each message's latest contents, whether it was edited or
// deleted, and its reactions. The simulation folds what a device received
// and what the store holds; the two must agree, whatever text a device got
// before a delete.
#pragma once

#include <fmt/format.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "parley/message.hpp"

namespace parley::sim {

struct Folded {
  std::string contents;
  bool edited = false;
  bool deleted = false;
  std::map<std::string, std::set<std::string>> reactions;  // key -> users
  bool operator==(const Folded& o) const {
    return contents == o.contents && edited == o.edited && deleted == o.deleted && reactions == o.reactions;
  }
};

// msg_id -> the message as folded. Entries that name no held message are ignored.
inline std::map<uint64_t, Folded> fold(const std::vector<const Message*>& history) {
  std::map<uint64_t, Folded> out;
  for (const Message* m : history) {
    if (m->entry.kind == EntryKind::kMessage) {
      out[m->msg_id] = Folded{m->deleted ? std::string() : m->contents, false, m->deleted, {}};
      continue;
    }
    auto it = out.find(m->entry.target);
    if (it == out.end()) continue;
    Folded& f = it->second;
    switch (m->entry.kind) {
      case EntryKind::kEdit:
        if (!f.deleted) f.contents = m->contents, f.edited = true;
        break;
      case EntryKind::kDelete:
        f = Folded{std::string(), false, true, {}};  // nothing of it shows, not even that it was edited
        break;
      case EntryKind::kReaction:
        if (f.deleted) break;
        if (m->entry.remove) {
          f.reactions[m->contents].erase(m->user_id);
          if (f.reactions[m->contents].empty()) f.reactions.erase(m->contents);
        } else {
          f.reactions[m->contents].insert(m->user_id);
        }
        break;
      case EntryKind::kMessage:
      case EntryKind::kJoin:
      case EntryKind::kLeave:
      case EntryKind::kRemoved:
      case EntryKind::kSystem: break;  // membership entries and notices name no message
    }
  }
  return out;
}

// The first difference between two folded views, or "" if they agree.
inline std::string fold_difference(const std::map<uint64_t, Folded>& a, const std::map<uint64_t, Folded>& b) {
  for (const auto& [id, f] : b) {
    auto it = a.find(id);
    if (it == a.end()) return fmt::format("#{} missing", id);
    if (!(it->second == f)) {
      return fmt::format("#{}: '{}' deleted={} edited={} reactions={} vs '{}' deleted={} edited={} reactions={}", id,
                         it->second.contents, it->second.deleted, it->second.edited, it->second.reactions.size(),
                         f.contents, f.deleted, f.edited, f.reactions.size());
    }
  }
  return a.size() == b.size() ? std::string() : fmt::format("{} messages vs {}", a.size(), b.size());
}

}  // namespace parley::sim
