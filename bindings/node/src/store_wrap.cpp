#include "store_wrap.hpp"

#include <algorithm>
#include <memory>
#include <string>

namespace parley::addon {

Napi::Function StoreWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeStore",
                     {
                         member_method<StoreWrap, &StoreWrap::close>("close"),
                         member_getter<StoreWrap, &StoreWrap::closed>("closed"),
                         member_method<StoreWrap, &StoreWrap::create_group>("createGroup"),
                         member_method<StoreWrap, &StoreWrap::join>("join"),
                         member_method<StoreWrap, &StoreWrap::leave>("leave"),
                         member_method<StoreWrap, &StoreWrap::history>("history"),
                         member_method<StoreWrap, &StoreWrap::entries>("entries"),
                         member_method<StoreWrap, &StoreWrap::read_states>("readStates"),
                         member_method<StoreWrap, &StoreWrap::mark_read>("markRead"),
                         member_method<StoreWrap, &StoreWrap::set_notify_level>("setNotifyLevel"),
                         member_method<StoreWrap, &StoreWrap::notify_level>("notifyLevel"),
                         member_method<StoreWrap, &StoreWrap::create_group_with>("createGroupWith"),
                         member_method<StoreWrap, &StoreWrap::group_info>("groupInfo"),
                         member_method<StoreWrap, &StoreWrap::set_group_settings>("setGroupSettings"),
                         member_method<StoreWrap, &StoreWrap::invite>("invite"),
                         member_method<StoreWrap, &StoreWrap::ask_to_join>("askToJoin"),
                         member_method<StoreWrap, &StoreWrap::public_groups>("publicGroups"),
                     });
}

StoreWrap::StoreWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StoreWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() == 0 || info[0].IsUndefined()) {
    check(env, parley_store_open_memory(&store_), nullptr);
    return;
  }
  std::string path;
  int64_t flags = 0;
  if (!get_string(env, info[0], "path", &path)) return;
  if (info.Length() > 1 && !get_i64(env, info[1], "flags", &flags)) return;
  check(env, parley_store_open_sqlite(path.c_str(), static_cast<uint32_t>(flags), &store_), nullptr);
}

StoreWrap::~StoreWrap() {
  parley_store_close(store_);
}

StoreWrap* StoreWrap::unwrap(Napi::Env env, const Napi::Value& v) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(addon_data(env).store_class.Value())) {
    throw_type_error(env, "expected a Store");
    return nullptr;
  }
  return Unwrap(v.As<Napi::Object>());
}

bool StoreWrap::open(Napi::Env env) {
  if (store_ != nullptr) return true;
  throw_error(env, PARLEY_ERR_CLOSED, "the Store is closed");
  return false;
}

Napi::Value StoreWrap::close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (store_ != nullptr && check(env, parley_store_close(store_), store_)) store_ = nullptr;
  return env.Undefined();
}

Napi::Value StoreWrap::closed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), store_ == nullptr);
}

Napi::Value StoreWrap::create_group(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string group;
  std::string owner;
  if (open(env) && get_string(env, info[0], "groupId", &group) && get_string(env, info[1], "ownerId", &owner))
    check(env, parley_store_create_group(store_, group.c_str(), owner.c_str()), store_);
  return env.Undefined();
}

// (groupId, userId) -> undefined, for the C calls of that shape.
Napi::Value StoreWrap::member_call(const Napi::CallbackInfo& info,
                                   int (*fn)(parley_store*, const char*, const char*)) {
  Napi::Env env = info.Env();
  std::string group;
  std::string user;
  if (open(env) && get_string(env, info[0], "groupId", &group) && get_string(env, info[1], "userId", &user))
    check(env, fn(store_, group.c_str(), user.c_str()), store_);
  return env.Undefined();
}

Napi::Value StoreWrap::join(const Napi::CallbackInfo& info) { return member_call(info, parley_store_join); }
Napi::Value StoreWrap::leave(const Napi::CallbackInfo& info) { return member_call(info, parley_store_leave); }
Napi::Value StoreWrap::invite(const Napi::CallbackInfo& info) { return member_call(info, parley_store_invite); }
Napi::Value StoreWrap::ask_to_join(const Napi::CallbackInfo& info) {
  return member_call(info, parley_store_ask_to_join);
}

namespace {
Napi::Object group_info_object(Napi::Env env, const parley_group_info& g) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("groupId", g.group_id);
  o.Set("kind", g.kind == PARLEY_GROUP_PRIVATE ? "private" : "public");
  o.Set("title", g.title);
  o.Set("topic", g.topic);
  o.Set("memberLimit", Napi::Number::New(env, g.member_limit));
  o.Set("members", from_u64(env, g.members));
  return o;
}

using InfoArray = std::unique_ptr<parley_group_info, void (*)(parley_group_info*)>;
}  // namespace

// Reads (kind number, title, topic, memberLimit) from info[first..].
bool StoreWrap::settings_args(const Napi::CallbackInfo& info, size_t first, parley_group_info* out,
                              std::string* title, std::string* topic) {
  Napi::Env env = info.Env();
  int64_t kind = 0;
  uint64_t limit = 0;
  if (!get_i64(env, info[first], "kind", &kind) || !get_string(env, info[first + 1], "title", title) ||
      !get_string(env, info[first + 2], "topic", topic) || !get_u64(env, info[first + 3], "memberLimit", &limit))
    return false;
  if (limit > UINT32_MAX) {
    throw_error(env, PARLEY_ERR_INVALID_ARGUMENT, "memberLimit is too large");
    return false;
  }
  *out = parley_group_info{nullptr, static_cast<int>(kind), title->c_str(), topic->c_str(),
                           static_cast<uint32_t>(limit), 0};
  return true;
}

// createGroupWith(groupId, ownerId, kind, title, topic, memberLimit)
Napi::Value StoreWrap::create_group_with(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string group, owner, title, topic;
  parley_group_info s{};
  if (open(env) && get_string(env, info[0], "groupId", &group) && get_string(env, info[1], "ownerId", &owner) &&
      settings_args(info, 2, &s, &title, &topic))
    check(env, parley_store_create_group_with(store_, group.c_str(), owner.c_str(), &s), store_);
  return env.Undefined();
}

// setGroupSettings(groupId, kind, title, topic, memberLimit)
Napi::Value StoreWrap::set_group_settings(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string group, title, topic;
  parley_group_info s{};
  if (open(env) && get_string(env, info[0], "groupId", &group) && settings_args(info, 1, &s, &title, &topic))
    check(env, parley_store_set_group_settings(store_, group.c_str(), &s), store_);
  return env.Undefined();
}

// groupInfo(groupId) -> {groupId, kind, title, topic, memberLimit, members}
Napi::Value StoreWrap::group_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string group;
  if (!open(env) || !get_string(env, info[0], "groupId", &group)) return env.Undefined();
  parley_group_info* out = nullptr;
  if (!check(env, parley_store_group_info(store_, group.c_str(), &out), store_)) return env.Undefined();
  InfoArray owned(out, parley_group_infos_free);
  return group_info_object(env, *out);
}

// publicGroups(prefix, after, limit) -> [groupInfo]
Napi::Value StoreWrap::public_groups(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string prefix, after;
  uint64_t limit = 0;
  if (!open(env) || !get_string(env, info[0], "prefix", &prefix) || !get_string(env, info[1], "after", &after) ||
      !get_u64(env, info[2], "limit", &limit))
    return env.Undefined();
  parley_group_info* out = nullptr;
  size_t count = 0;
  const auto n = static_cast<uint32_t>(std::min<uint64_t>(limit, UINT32_MAX));
  if (!check(env, parley_store_public_groups(store_, prefix.c_str(), after.c_str(), n, &out, &count), store_))
    return env.Undefined();
  InfoArray owned(out, parley_group_infos_free);
  Napi::Array list = Napi::Array::New(env, count);
  for (size_t i = 0; i < count; ++i) list.Set(static_cast<uint32_t>(i), group_info_object(env, out[i]));
  return list;
}

namespace {
Napi::Object message_object(Napi::Env env, const parley_message& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("groupId", m.group_id);
  o.Set("epoch", from_u64(env, m.epoch));
  o.Set("msgId", from_u64(env, m.msg_id));
  o.Set("prevMsgId", from_u64(env, m.prev_msg_id));
  o.Set("timestampMs", Napi::Number::New(env, static_cast<double>(m.timestamp_ms)));
  o.Set("userId", m.user_id);
  o.Set("contents", Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(m.contents), m.contents_size));
  o.Set("clientMsgId", m.client_msg_id);
  return o;
}

// The arguments history and entries share: (groupId, asUser | null, after, limit).
struct ReadArgs {
  std::string group;
  std::string as_user;
  bool admin = false;
  uint64_t after = 0;
  uint32_t limit = 0;
  const char* reader() const { return admin ? nullptr : as_user.c_str(); }
};

bool read_args(Napi::Env env, const Napi::CallbackInfo& info, ReadArgs* a) {
  uint64_t limit = 0;
  a->admin = info[1].IsNull() || info[1].IsUndefined();
  if (!get_string(env, info[0], "groupId", &a->group) ||
      (!a->admin && !get_string(env, info[1], "asUser", &a->as_user)) || !get_u64(env, info[2], "after", &a->after) ||
      !get_u64(env, info[3], "limit", &limit))
    return false;
  a->limit = static_cast<uint32_t>(std::min<uint64_t>(limit, UINT32_MAX));  // the C API says which limits it accepts
  return true;
}
}  // namespace

// history(groupId, asUser | null, after, limit) -> [{groupId, msgId, ...}]
Napi::Value StoreWrap::history(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReadArgs a;
  if (!open(env) || !read_args(env, info, &a)) return env.Undefined();
  parley_message* messages = nullptr;
  size_t count = 0;
  if (!check(env, parley_store_history(store_, a.group.c_str(), a.reader(), a.after, a.limit, &messages, &count),
             store_))
    return env.Undefined();
  std::unique_ptr<parley_message, void (*)(parley_message*)> owned(messages, parley_messages_free);
  Napi::Array out = Napi::Array::New(env, count);
  for (size_t i = 0; i < count; ++i) out.Set(static_cast<uint32_t>(i), message_object(env, messages[i]));
  return out;
}

// entries(groupId, asUser | null, after, limit, fold) -> {epoch, head, to, entries: [...]}
Napi::Value StoreWrap::entries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReadArgs a;
  if (!open(env) || !read_args(env, info, &a)) return env.Undefined();
  const bool fold = info[4].ToBoolean().Value();
  parley_entry_page* page = nullptr;
  if (!check(env, parley_store_entries(store_, a.group.c_str(), a.reader(), a.after, a.limit, fold ? 1 : 0, &page),
             store_))
    return env.Undefined();
  std::unique_ptr<parley_entry_page, void (*)(parley_entry_page*)> owned(page, parley_entry_page_free);
  static const char* const kKinds[] = {"message", "edit", "delete", "reaction", "join", "leave", "removed", "system"};
  Napi::Array list = Napi::Array::New(env, page->count);
  for (size_t i = 0; i < page->count; ++i) {
    const parley_entry& e = page->entries[i];
    Napi::Object o = message_object(env, e.message);
    o.Set("kind", e.kind >= 0 && e.kind <= 7 ? kKinds[e.kind] : "unknown");
    o.Set("target", from_u64(env, e.target));
    o.Set("replyTo", from_u64(env, e.reply_to));
    Napi::Array mentions = Napi::Array::New(env, e.mention_count);
    for (size_t k = 0; k < e.mention_count; ++k) mentions.Set(static_cast<uint32_t>(k), e.mentions[k]);
    o.Set("mentions", mentions);
    o.Set("meta", e.meta);  // JSON text; index.js parses it
    o.Set("deleted", Napi::Boolean::New(env, e.deleted != 0));
    o.Set("removed", Napi::Boolean::New(env, e.removed != 0));
    o.Set("edited", from_u64(env, e.edited));
    o.Set("replies", from_u64(env, e.replies));
    Napi::Array reactions = Napi::Array::New(env, e.reaction_count);
    for (size_t k = 0; k < e.reaction_count; ++k) {
      Napi::Object r = Napi::Object::New(env);
      r.Set("key", e.reactions[k].key);
      r.Set("count", from_u64(env, e.reactions[k].count));
      r.Set("mine", Napi::Boolean::New(env, e.reactions[k].mine != 0));
      reactions.Set(static_cast<uint32_t>(k), r);
    }
    o.Set("reactions", reactions);
    list.Set(static_cast<uint32_t>(i), o);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("epoch", from_u64(env, page->epoch));
  out.Set("head", from_u64(env, page->head));
  out.Set("to", from_u64(env, page->to));
  out.Set("entries", list);
  return out;
}

namespace {
Napi::Object read_state(Napi::Env env, const parley_read_state& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("groupId", s.group_id);
  o.Set("epoch", from_u64(env, s.epoch));
  o.Set("msgId", from_u64(env, s.msg_id));
  o.Set("head", from_u64(env, s.head));
  o.Set("unread", from_u64(env, s.unread));
  o.Set("mentions", from_u64(env, s.mentions));
  return o;
}
}  // namespace

// readStates(userId) -> [{groupId, epoch, msgId, head, unread, mentions}]
Napi::Value StoreWrap::read_states(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string user;
  if (!open(env) || !get_string(env, info[0], "userId", &user)) return env.Undefined();
  parley_read_state* states = nullptr;
  size_t count = 0;
  if (!check(env, parley_store_read_states(store_, user.c_str(), &states, &count), store_)) return env.Undefined();
  std::unique_ptr<parley_read_state, void (*)(parley_read_state*)> owned(states, parley_read_states_free);
  Napi::Array out = Napi::Array::New(env, count);
  for (size_t i = 0; i < count; ++i) out.Set(static_cast<uint32_t>(i), read_state(env, states[i]));
  return out;
}

// markRead(groupId, userId, epoch, msgId) -> {groupId, epoch, msgId, head, unread, mentions}
Napi::Value StoreWrap::mark_read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string group;
  std::string user;
  uint64_t epoch = 0;
  uint64_t msg_id = 0;
  if (!open(env) || !get_string(env, info[0], "groupId", &group) || !get_string(env, info[1], "userId", &user) ||
      !get_u64(env, info[2], "epoch", &epoch) || !get_u64(env, info[3], "msgId", &msg_id))
    return env.Undefined();
  parley_read_state s{};
  if (!check(env, parley_store_mark_read(store_, group.c_str(), user.c_str(), epoch, msg_id, &s), store_))
    return env.Undefined();
  return read_state(env, s);
}

// setNotifyLevel(groupId, userId, level) with level a PARLEY_NOTIFY_* number.
Napi::Value StoreWrap::set_notify_level(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string group;
  std::string user;
  int64_t level = 0;
  if (!open(env) || !get_string(env, info[0], "groupId", &group) || !get_string(env, info[1], "userId", &user) ||
      !get_i64(env, info[2], "level", &level))
    return env.Undefined();
  check(env, parley_store_set_notify_level(store_, group.c_str(), user.c_str(), static_cast<int>(level)), store_);
  return env.Undefined();
}

// notifyLevel(groupId, userId) -> a PARLEY_NOTIFY_* number.
Napi::Value StoreWrap::notify_level(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string group;
  std::string user;
  if (!open(env) || !get_string(env, info[0], "groupId", &group) || !get_string(env, info[1], "userId", &user))
    return env.Undefined();
  int level = 0;
  if (!check(env, parley_store_notify_level(store_, group.c_str(), user.c_str(), &level), store_))
    return env.Undefined();
  return Napi::Number::New(env, level);
}

}  // namespace parley::addon
