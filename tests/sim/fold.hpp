// What a group's history shows once its entries are applied in order (the
// "folded" view): each message's latest contents, its latest edit, whether it
// was deleted, its reactions and its replies (answers not deleted). The simulation folds what a device received
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
  uint64_t edited = 0;  // the latest edit's id (0: never edited)
  bool deleted = false;
  std::map<std::string, std::set<std::string>> reactions;  // key -> users
  uint64_t replies = 0;
  bool operator==(const Folded& o) const {
    return contents == o.contents && edited == o.edited && deleted == o.deleted && reactions == o.reactions &&
           replies == o.replies;
  }
};

// msg_id -> the message as folded. Entries that name no held message are ignored.
inline std::map<uint64_t, Folded> fold(const std::vector<const Message*>& history) {
  std::map<uint64_t, Folded> out;
  std::map<uint64_t, uint64_t> answers;  // a counted reply -> the message it answers
  // The message a reply answers, if it is held and not deleted.
  auto answered = [&out](uint64_t id) -> Folded* {
    auto it = out.find(id);
    return it == out.end() || it->second.deleted ? nullptr : &it->second;
  };
  for (const Message* m : history) {
    if (m->entry.kind == EntryKind::kMessage) {
      out[m->msg_id] = Folded{m->deleted ? std::string() : m->contents, 0, m->deleted, {}, 0};
      if (Folded* t = m->deleted ? nullptr : answered(m->entry.reply_to)) {
        ++t->replies;
        answers[m->msg_id] = m->entry.reply_to;
      }
      continue;
    }
    auto it = out.find(m->entry.target);
    if (it == out.end()) continue;
    Folded& f = it->second;
    switch (m->entry.kind) {
      case EntryKind::kEdit:
        if (!f.deleted) f.contents = m->contents, f.edited = m->msg_id;
        break;
      case EntryKind::kDelete:
        if (auto a = answers.find(m->entry.target); a != answers.end()) {  // a deleted reply stops counting
          if (Folded* t = answered(a->second)) --t->replies;
          answers.erase(a);
        }
        f = Folded{std::string(), 0, true, {}, 0};  // nothing of it shows, not even that it was edited
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
      return fmt::format("#{}: '{}' deleted={} edited={} reactions={} replies={} vs '{}' deleted={} edited={} "
                         "reactions={} replies={}", id, it->second.contents, it->second.deleted, it->second.edited,
                         it->second.reactions.size(), it->second.replies, f.contents, f.deleted, f.edited,
                         f.reactions.size(), f.replies);
    }
  }
  return a.size() == b.size() ? std::string() : fmt::format("{} messages vs {}", a.size(), b.size());
}

}  // namespace parley::sim
