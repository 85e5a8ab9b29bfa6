// parley_store_*: opening stores and the admin helpers (groups, members,
// history).
#include "store.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "parley/memory_store.hpp"
#include "parley/message.hpp"
#include "parley/store_jobs.hpp"

using parley::Code;
using parley::Status;
using parley::capi::Stores;

namespace {

const parley::Limits kLimits;

Status check_ids(const char* group_id, const char* user_id, const char* user_what) {
  if (Status st = parley::capi::check_id(group_id, "group_id", kLimits); !st) return st;
  return parley::capi::check_id(user_id, user_what, kLimits);
}

Status require_group(Stores& s, const std::string& group_id) {
  parley::Result<bool> exists = s.membership->group_exists(group_id);
  if (!exists) return exists.status();
  if (!*exists) return parley::error(Code::kNotFound, "group '" + group_id + "' does not exist");
  return Status::ok();
}

// One malloc'd block: the array, then every string NUL-terminated.
parley_message* pack(const std::vector<parley::Message>& messages) {
  size_t bytes = messages.size() * sizeof(parley_message);
  for (const parley::Message& m : messages)
    bytes += m.group_id.size() + m.user_id.size() + m.client_msg_id.size() + m.contents.size() + 4;
  char* block = static_cast<char*>(std::malloc(bytes));
  if (block == nullptr) throw std::bad_alloc();
  auto* array = reinterpret_cast<parley_message*>(block);
  char* text = block + messages.size() * sizeof(parley_message);
  auto put = [&text](const std::string& s) {
    char* at = text;
    std::memcpy(at, s.data(), s.size());
    at[s.size()] = '\0';
    text += s.size() + 1;
    return at;
  };
  for (size_t i = 0; i < messages.size(); ++i) {
    const parley::Message& m = messages[i];
    auto* c = new (&array[i]) parley_message();
    c->group_id = put(m.group_id);
    c->msg_id = m.msg_id;
    c->prev_msg_id = m.prev_msg_id;
    c->timestamp_ms = m.timestamp_ms;
    c->user_id = put(m.user_id);
    c->contents_size = m.contents.size();
    c->contents = put(m.contents);
    c->client_msg_id = put(m.client_msg_id);
    c->epoch = m.epoch;
  }
  return array;
}

// One malloc'd block for a page: the page, its entries, their mention
// pointers and reactions, then every string NUL-terminated.
parley_entry_page* pack_page(const std::vector<parley::Message>& entries, const std::vector<parley::Fold>& folds,
                             uint64_t epoch, uint64_t head, uint64_t to) {
  size_t pointers = 0, reactions = 0, text = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const parley::Message& m = entries[i];
    text += m.group_id.size() + m.user_id.size() + m.client_msg_id.size() + m.contents.size() + m.entry.meta.size() + 5;
    pointers += m.entry.mentions.size();
    for (const std::string& u : m.entry.mentions) text += u.size() + 1;
    if (i < folds.size()) {
      reactions += folds[i].reactions.size();
      for (const parley::ReactionCount& r : folds[i].reactions) text += r.key.size() + 1;
    }
  }
  const size_t head_bytes = sizeof(parley_entry_page) + entries.size() * sizeof(parley_entry);
  const size_t bytes = head_bytes + pointers * sizeof(const char*) + reactions * sizeof(parley_reaction) + text;
  char* block = static_cast<char*>(std::malloc(bytes));
  if (block == nullptr) throw std::bad_alloc();
  auto* page = new (block) parley_entry_page();
  page->epoch = epoch;
  page->head = head;
  page->to = to;
  page->count = entries.size();
  auto* array = reinterpret_cast<parley_entry*>(block + sizeof(parley_entry_page));
  page->entries = entries.empty() ? nullptr : array;
  auto* ptrs = reinterpret_cast<const char**>(block + head_bytes);
  auto* rx = reinterpret_cast<parley_reaction*>(block + head_bytes + pointers * sizeof(const char*));
  char* chars = reinterpret_cast<char*>(rx + reactions);
  auto put = [&chars](const std::string& str) {
    char* at = chars;
    std::memcpy(at, str.data(), str.size());
    at[str.size()] = '\0';
    chars += str.size() + 1;
    return at;
  };
  for (size_t i = 0; i < entries.size(); ++i) {
    const parley::Message& m = entries[i];
    auto* e = new (&array[i]) parley_entry();
    e->message.group_id = put(m.group_id);
    e->message.msg_id = m.msg_id;
    e->message.prev_msg_id = m.prev_msg_id;
    e->message.timestamp_ms = m.timestamp_ms;
    e->message.user_id = put(m.user_id);
    e->message.contents_size = m.contents.size();
    e->message.contents = put(m.contents);
    e->message.client_msg_id = put(m.client_msg_id);
    e->message.epoch = m.epoch;
    e->kind = static_cast<int>(m.entry.kind);
    e->target = m.entry.target;
    e->reply_to = m.entry.reply_to;
    e->mentions = ptrs;
    e->mention_count = m.entry.mentions.size();
    for (const std::string& u : m.entry.mentions) *ptrs++ = put(u);
    e->meta = put(m.entry.meta);
    e->deleted = m.deleted ? 1 : 0;
    e->removed = m.entry.remove ? 1 : 0;
    if (i < folds.size()) {
      const parley::Fold& f = folds[i];
      e->edited = f.edited;
      e->replies = f.replies;
      e->reactions = rx;
      e->reaction_count = f.reactions.size();
      for (const parley::ReactionCount& r : f.reactions) {
        auto* c = new (rx++) parley_reaction();
        c->key = put(r.key);
        c->count = r.count;
        c->mine = r.mine ? 1 : 0;
      }
    }
  }
  return page;
}

// What parley_store_history and parley_store_entries check before reading:
// the ids, the limit, the group, and that `as_user` (if given) is a member.
Status check_read(Stores& s, const char* group_id, const char* as_user, uint32_t limit) {
  if (Status st = parley::capi::check_id(group_id, "group_id", kLimits); !st) return st;
  if (as_user != nullptr) {
    if (Status st = parley::capi::check_id(as_user, "as_user", kLimits); !st) return st;
  }
  if (limit == 0 || limit > kLimits.max_read_limit) {
    return parley::error(Code::kInvalidArgument, "limit must be 1.." + std::to_string(kLimits.max_read_limit));
  }
  if (Status st = require_group(s, group_id); !st) return st;
  if (as_user == nullptr) return Status::ok();
  auto role = s.membership->role_of(group_id, as_user);
  if (!role) return role.status();
  if (!role->has_value()) {
    return parley::error(Code::kPermissionDenied, std::string(as_user) + " is not a member of '" + group_id + "'");
  }
  return Status::ok();
}

Status open(std::unique_ptr<Stores> stores, parley_store** out) {
  return parley::capi::publish(std::make_unique<parley_store>(std::move(stores)), out);
}

}  // namespace

extern "C" {

PARLEY_EXPORT int parley_store_open_memory(parley_store** out) {
  return parley::capi::call_free("parley_store_open_memory", [&]() -> Status {
    if (out == nullptr) return parley::capi::null_argument("out");
    auto s = std::make_unique<Stores>();
    s->own_messages = parley::make_memory_message_store();
    s->own_membership = parley::make_memory_membership_store();
    s->own_directory = parley::make_memory_session_directory();
    s->messages = s->own_messages.get();
    s->membership = s->own_membership.get();
    s->directory = s->own_directory.get();
    return open(std::move(s), out);
  });
}

PARLEY_EXPORT int parley_store_open_sqlite(const char* path, uint32_t flags, parley_store** out) {
  return parley::capi::call_free("parley_store_open_sqlite", [&]() -> Status {
    if (path == nullptr) return parley::capi::null_argument("path");
    if (out == nullptr) return parley::capi::null_argument("out");
    if ((flags & ~uint32_t{PARLEY_SQLITE_SYNC_NORMAL}) != 0)
      return parley::error(Code::kInvalidArgument, "unknown flags " + std::to_string(flags));
    parley::SqliteOptions o;
    if ((flags & PARLEY_SQLITE_SYNC_NORMAL) != 0) o.sync = parley::SqliteOptions::Sync::kNormal;
    auto opened = parley::open_sqlite_store(path, o);
    if (!opened) return opened.status();
    auto s = std::make_unique<Stores>();
    s->sqlite = std::move(*opened);
    s->messages = s->sqlite.get();
    s->membership = s->sqlite.get();
    s->directory = s->sqlite.get();
    return open(std::move(s), out);
  });
}

PARLEY_EXPORT int parley_store_close(parley_store* store) {
  return parley::capi::release("parley_store_close", store);
}

PARLEY_EXPORT int parley_store_create_group(parley_store* store, const char* group_id, const char* owner_id) {
  return parley::capi::call("parley_store_create_group", store, [&](parley_store& h) -> Status {
    if (Status st = check_ids(group_id, owner_id, "owner_id"); !st) return st;
    return h.stores->membership->create_group(group_id, owner_id);
  });
}

namespace {
Status join_as(parley_store& h, const char* group_id, const char* user_id, parley::Admission how) {
  if (Status st = check_ids(group_id, user_id, "user_id"); !st) return st;
  return h.stores->membership->join(group_id, user_id, how).status();
}

// The settings of a C argument (NULL: the defaults), checked.
Status settings_of(const parley_group_info* in, parley::GroupSettings* out) {
  *out = parley::GroupSettings{};
  if (in == nullptr) return Status::ok();
  if (in->kind != PARLEY_GROUP_PUBLIC && in->kind != PARLEY_GROUP_PRIVATE) {
    return parley::error(Code::kInvalidArgument, "kind must be PARLEY_GROUP_PUBLIC or PARLEY_GROUP_PRIVATE");
  }
  out->kind = static_cast<parley::GroupKind>(in->kind);
  out->title = in->title != nullptr ? in->title : "";
  out->topic = in->topic != nullptr ? in->topic : "";
  out->member_limit = in->member_limit;
  return parley::validate_group_settings(*out);
}

// One malloc'd block: the infos, then their strings NUL-terminated.
parley_group_info* pack_infos(const std::vector<parley::GroupListing>& groups) {
  size_t bytes = groups.size() * sizeof(parley_group_info);
  for (const parley::GroupListing& g : groups)
    bytes += g.group_id.size() + g.settings.title.size() + g.settings.topic.size() + 3;
  char* block = static_cast<char*>(std::malloc(bytes));
  if (block == nullptr) throw std::bad_alloc();
  auto* array = reinterpret_cast<parley_group_info*>(block);
  char* text = block + groups.size() * sizeof(parley_group_info);
  auto put = [&text](const std::string& s) {
    char* at = text;
    std::memcpy(at, s.c_str(), s.size() + 1);
    text += s.size() + 1;
    return at;
  };
  for (size_t i = 0; i < groups.size(); ++i) {
    const parley::GroupListing& g = groups[i];
    new (&array[i]) parley_group_info{put(g.group_id), static_cast<int>(g.settings.kind), put(g.settings.title),
                                      put(g.settings.topic), g.settings.member_limit, g.members};
  }
  return array;
}
}  // namespace

PARLEY_EXPORT int parley_store_join(parley_store* store, const char* group_id, const char* user_id) {
  return parley::capi::call("parley_store_join", store, [&](parley_store& h) {
    return join_as(h, group_id, user_id, parley::Admission::kAdmitted);
  });
}

PARLEY_EXPORT int parley_store_ask_to_join(parley_store* store, const char* group_id, const char* user_id) {
  return parley::capi::call("parley_store_ask_to_join", store, [&](parley_store& h) {
    return join_as(h, group_id, user_id, parley::Admission::kAsked);
  });
}

PARLEY_EXPORT int parley_store_create_group_with(parley_store* store, const char* group_id, const char* owner_id,
                                                 const parley_group_info* settings) {
  return parley::capi::call("parley_store_create_group_with", store, [&](parley_store& h) -> Status {
    if (Status st = check_ids(group_id, owner_id, "owner_id"); !st) return st;
    parley::GroupSettings s;
    if (Status st = settings_of(settings, &s); !st) return st;
    return h.stores->membership->create_group_with(group_id, owner_id, s);
  });
}

PARLEY_EXPORT int parley_store_group_info(parley_store* store, const char* group_id, parley_group_info** out) {
  return parley::capi::call("parley_store_group_info", store, [&](parley_store& h) -> Status {
    if (out == nullptr) return parley::capi::null_argument("out");
    *out = nullptr;
    if (Status st = parley::capi::check_id(group_id, "group_id", kLimits); !st) return st;
    parley::Result<parley::GroupSettings> settings = h.stores->membership->settings(group_id);
    if (!settings) return settings.status();
    parley::Result<std::vector<parley::Member>> members = h.stores->membership->members(group_id);
    if (!members) return members.status();
    *out = pack_infos({parley::GroupListing{group_id, std::move(*settings), members->size()}});
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_store_set_group_settings(parley_store* store, const char* group_id,
                                                  const parley_group_info* settings) {
  return parley::capi::call("parley_store_set_group_settings", store, [&](parley_store& h) -> Status {
    if (Status st = parley::capi::check_id(group_id, "group_id", kLimits); !st) return st;
    if (settings == nullptr) return parley::capi::null_argument("settings");
    parley::GroupSettings s;
    if (Status st = settings_of(settings, &s); !st) return st;
    return h.stores->membership->set_settings(group_id, s);
  });
}

PARLEY_EXPORT int parley_store_invite(parley_store* store, const char* group_id, const char* user_id) {
  return parley::capi::call("parley_store_invite", store, [&](parley_store& h) -> Status {
    if (Status st = check_ids(group_id, user_id, "user_id"); !st) return st;
    return h.stores->membership->invite(group_id, user_id);
  });
}

PARLEY_EXPORT int parley_store_public_groups(parley_store* store, const char* prefix, const char* after,
                                             uint32_t limit, parley_group_info** out, size_t* count) {
  return parley::capi::call("parley_store_public_groups", store, [&](parley_store& h) -> Status {
    if (out == nullptr) return parley::capi::null_argument("out");
    if (count == nullptr) return parley::capi::null_argument("count");
    *out = nullptr;
    *count = 0;
    if (limit == 0 || limit > kLimits.max_read_limit) {
      return parley::error(Code::kInvalidArgument, "limit must be 1 to 1000");
    }
    std::vector<parley::GroupListing> page;
    if (Status st = h.stores->membership->public_groups(prefix != nullptr ? prefix : "",
                                                        after != nullptr ? after : "", limit, &page);
        !st) {
      return st;
    }
    *count = page.size();
    if (!page.empty()) *out = pack_infos(page);
    return Status::ok();
  });
}

PARLEY_EXPORT void parley_group_infos_free(parley_group_info* infos) { std::free(infos); }

PARLEY_EXPORT int parley_store_leave(parley_store* store, const char* group_id, const char* user_id) {
  return parley::capi::call("parley_store_leave", store, [&](parley_store& h) -> Status {
    if (Status st = check_ids(group_id, user_id, "user_id"); !st) return st;
    return h.stores->membership->remove(group_id, user_id);
  });
}

PARLEY_EXPORT int parley_store_history(parley_store* store, const char* group_id, const char* as_user,
                                       uint64_t after, uint32_t limit, parley_message** out, size_t* count) {
  return parley::capi::call("parley_store_history", store, [&](parley_store& h) -> Status {
    if (out == nullptr) return parley::capi::null_argument("out");
    if (count == nullptr) return parley::capi::null_argument("count");
    Stores& s = *h.stores;
    if (Status st = check_read(s, group_id, as_user, limit); !st) return st;
    std::vector<parley::Message> messages;
    if (Status st = s.messages->read(group_id, after, limit, &messages); !st) return st;
    *out = messages.empty() ? nullptr : pack(messages);
    *count = messages.size();
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_store_entries(parley_store* store, const char* group_id, const char* as_user, uint64_t after,
                                       uint32_t limit, int fold, parley_entry_page** out) {
  return parley::capi::call("parley_store_entries", store, [&](parley_store& h) -> Status {
    if (out == nullptr) return parley::capi::null_argument("out");
    Stores& s = *h.stores;
    if (Status st = check_read(s, group_id, as_user, limit); !st) return st;
    if (fold != 0) {
      parley::FoldedPage page;
      Status st = s.messages->read_folded(group_id, after, limit, as_user != nullptr ? as_user : "", &page);
      if (!st) return st;
      *out = pack_page(page.messages, page.folds, page.epoch, page.head, page.to);
      return Status::ok();
    }
    std::vector<parley::GroupHead> heads;
    if (Status st = s.messages->heads({group_id}, &heads); !st) return st;
    std::vector<parley::Message> entries;
    if (after < heads[0].head) {
      if (Status st = s.messages->read(group_id, after, limit, &entries); !st) return st;
    }
    const uint64_t to = entries.empty() ? after : entries.back().msg_id;
    *out = pack_page(entries, {}, heads[0].epoch, heads[0].head, to);
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_store_read_states(parley_store* store, const char* user_id, parley_read_state** out,
                                           size_t* count) {
  return parley::capi::call("parley_store_read_states", store, [&](parley_store& h) -> Status {
    if (out == nullptr) return parley::capi::null_argument("out");
    if (count == nullptr) return parley::capi::null_argument("count");
    if (Status st = parley::capi::check_id(user_id, "user_id", kLimits); !st) return st;
    Stores& s = *h.stores;
    parley::StoreOpResult r;
    if (Status st = parley::run_unread(*s.messages, *s.membership, parley::UnreadOp{user_id, {}, std::nullopt}, &r);
        !st) {
      return st;
    }
    size_t bytes = r.reads.size() * sizeof(parley_read_state);
    for (const parley::ReadState& st : r.reads) bytes += st.group_id.size() + 1;
    *out = nullptr;
    *count = r.reads.size();
    if (r.reads.empty()) return Status::ok();
    char* block = static_cast<char*>(std::malloc(bytes));
    if (block == nullptr) throw std::bad_alloc();
    auto* array = reinterpret_cast<parley_read_state*>(block);
    char* text = block + r.reads.size() * sizeof(parley_read_state);
    for (size_t i = 0; i < r.reads.size(); ++i) {
      const parley::ReadState& st = r.reads[i];
      std::memcpy(text, st.group_id.c_str(), st.group_id.size() + 1);
      new (&array[i]) parley_read_state{text, st.epoch, st.msg_id, st.head, st.unread, st.mentions};
      text += st.group_id.size() + 1;
    }
    *out = array;
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_store_mark_read(parley_store* store, const char* group_id, const char* user_id,
                                         uint64_t epoch, uint64_t msg_id, parley_read_state* out) {
  return parley::capi::call("parley_store_mark_read", store, [&](parley_store& h) -> Status {
    if (out == nullptr) return parley::capi::null_argument("out");
    if (Status st = parley::capi::check_id(group_id, "group_id", kLimits); !st) return st;
    if (Status st = parley::capi::check_id(user_id, "user_id", kLimits); !st) return st;
    if (epoch == 0) return parley::error(Code::kInvalidArgument, "epoch must be the group's epoch, not 0");
    Stores& s = *h.stores;
    parley::StoreOpResult r;
    parley::UnreadOp op{user_id, {group_id}, parley::ReadPosition{epoch, msg_id}};
    if (Status st = parley::run_unread(*s.messages, *s.membership, op, &r); !st) return st;
    const parley::ReadState& st = r.reads.at(0);
    *out = parley_read_state{group_id, st.epoch, st.msg_id, st.head, st.unread, st.mentions};
    return Status::ok();
  });
}

PARLEY_EXPORT void parley_read_states_free(parley_read_state* states) { std::free(states); }

namespace {
// A NotifyLevelOp on the handle's membership: sets `level` when given, reads it back.
Status notify_level(parley_store& h, const char* group_id, const char* user_id, std::optional<parley::NotifyLevel> level,
                    int* out) {
  if (Status st = parley::capi::check_id(group_id, "group_id", kLimits); !st) return st;
  if (Status st = parley::capi::check_id(user_id, "user_id", kLimits); !st) return st;
  parley::StoreOpResult r;
  if (Status st = parley::run_notify_level(*h.stores->membership, parley::NotifyLevelOp{user_id, group_id, level}, &r);
      !st) {
    return st;
  }
  if (out != nullptr) *out = static_cast<int>(r.levels.at(0));
  return Status::ok();
}
}  // namespace

PARLEY_EXPORT int parley_store_set_notify_level(parley_store* store, const char* group_id, const char* user_id,
                                                int level) {
  return parley::capi::call("parley_store_set_notify_level", store, [&](parley_store& h) -> Status {
    if (level < PARLEY_NOTIFY_ALL || level > PARLEY_NOTIFY_NONE) {
      return parley::error(Code::kInvalidArgument,
                           "level " + std::to_string(level) + " is not PARLEY_NOTIFY_ALL, _MENTIONS or _NONE");
    }
    return notify_level(h, group_id, user_id, static_cast<parley::NotifyLevel>(level), nullptr);
  });
}

PARLEY_EXPORT int parley_store_notify_level(parley_store* store, const char* group_id, const char* user_id,
                                            int* level) {
  return parley::capi::call("parley_store_notify_level", store, [&](parley_store& h) -> Status {
    if (level == nullptr) return parley::capi::null_argument("level");
    return notify_level(h, group_id, user_id, std::nullopt, level);
  });
}

PARLEY_EXPORT void parley_messages_free(parley_message* messages) {
  std::free(messages);
}

PARLEY_EXPORT void parley_entry_page_free(parley_entry_page* page) {
  std::free(page);
}

}  // extern "C"
