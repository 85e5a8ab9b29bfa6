#include "core/peer_codec.hpp"

#include <fmt/format.h>

#include "core/msgpack_util.hpp"
#include "core/util.hpp"

namespace parley::detail {

namespace {
using Packer = msgpack::packer<StringBuffer>;
enum ItemKind : uint64_t { kMessageItem = 0, kPresenceItem = 1, kInterestItem = 2, kReadItem = 3, kNotifyItem = 4 };

Status bad(const std::string& what) {
  return error(Code::kInvalidArgument, "peer batch: " + what);
}

// Typed access to element i of a msgpack array.
struct ArrayView {
  const msgpack::object_array& a;
  Status str(uint32_t i, std::string* out) const {
    const msgpack::object& o = a.ptr[i];
    if (o.type == msgpack::type::STR)
      out->assign(o.via.str.ptr, o.via.str.size);
    else if (o.type == msgpack::type::BIN)
      out->assign(o.via.bin.ptr, o.via.bin.size);
    else
      return bad(fmt::format("element {} must be a string", i));
    return Status::ok();
  }
  Status u64(uint32_t i, uint64_t* out) const {
    const msgpack::object& o = a.ptr[i];
    if (o.type != msgpack::type::POSITIVE_INTEGER)
      return bad(fmt::format("element {} must be an unsigned integer", i));
    *out = o.via.u64;
    return Status::ok();
  }
  Status boolean(uint32_t i, bool* out) const {
    const msgpack::object& o = a.ptr[i];
    if (o.type != msgpack::type::BOOLEAN) return bad(fmt::format("element {} must be a boolean", i));
    *out = o.via.boolean;
    return Status::ok();
  }
  Status i64(uint32_t i, int64_t* out) const {
    const msgpack::object& o = a.ptr[i];
    if (o.type == msgpack::type::POSITIVE_INTEGER && o.via.u64 <= INT64_MAX)
      *out = static_cast<int64_t>(o.via.u64);
    else if (o.type == msgpack::type::NEGATIVE_INTEGER)
      *out = o.via.i64;
    else
      return bad(fmt::format("element {} must be an integer", i));
    return Status::ok();
  }
};

// A message item: 9 elements for a plain message (the form of every
// version before entry kinds), 16 for an entry with kind-specific fields.
constexpr uint32_t kPlainMessageItem = 9;
constexpr uint32_t kEntryItem = 16;

Status decode_message(const ArrayView& v, const Limits& limits, Message* m) {
  if (v.a.size != kPlainMessageItem && v.a.size != kEntryItem) return bad("a message item has 9 or 16 elements");
  PARLEY_TRY(v.str(1, &m->group_id));
  PARLEY_TRY(v.u64(2, &m->msg_id));
  PARLEY_TRY(v.u64(3, &m->prev_msg_id));
  PARLEY_TRY(v.i64(4, &m->timestamp_ms));
  PARLEY_TRY(v.str(5, &m->user_id));
  PARLEY_TRY(v.str(6, &m->contents));
  PARLEY_TRY(v.str(7, &m->client_msg_id));
  PARLEY_TRY(v.u64(8, &m->epoch));
  if (m->msg_id == 0 || m->prev_msg_id + 1 != m->msg_id) return bad("msg_id must be prev_msg_id + 1");
  if (v.a.size == kEntryItem) {
    uint64_t kind = 0;
    PARLEY_TRY(v.u64(9, &kind));
    if (kind > static_cast<uint64_t>(EntryKind::kSystem)) return bad(fmt::format("unknown entry kind {}", kind));
    m->entry.kind = static_cast<EntryKind>(kind);
    PARLEY_TRY(v.u64(10, &m->entry.target));
    PARLEY_TRY(v.u64(11, &m->entry.reply_to));
    const msgpack::object& mentions = v.a.ptr[12];
    if (mentions.type != msgpack::type::ARRAY) return bad("mentions must be an array");
    ArrayView mv{mentions.via.array};
    m->entry.mentions.resize(mentions.via.array.size);
    for (uint32_t i = 0; i < mentions.via.array.size; ++i) PARLEY_TRY(mv.str(i, &m->entry.mentions[i]));
    PARLEY_TRY(v.str(13, &m->entry.meta));
    PARLEY_TRY(v.boolean(14, &m->entry.remove));
    PARLEY_TRY(v.boolean(15, &m->deleted));
  }
  PARLEY_TRY(validate_submission(m->group_id, m->user_id, m->client_msg_id, m->contents, limits));
  if (m->deleted) return Status::ok();  // a tombstone's fields are erased
  return validate_entry(m->entry, m->contents, limits);
}

Status decode_presence(const ArrayView& v, const Limits& limits, PresenceEv* p) {
  if (v.a.size != 6) return bad("a presence item has 6 elements");
  uint64_t status = 0;
  PARLEY_TRY(v.str(1, &p->user_id));
  PARLEY_TRY(v.str(2, &p->group_id));
  PARLEY_TRY(v.u64(3, &status));
  if (status > static_cast<uint64_t>(PresenceStatus::kAway)) return bad("unknown presence status");
  p->status = static_cast<PresenceStatus>(status);
  const msgpack::object& typing = v.a.ptr[4];
  if (typing.type != msgpack::type::BOOLEAN) return bad("typing must be a boolean");
  p->typing = typing.via.boolean;
  PARLEY_TRY(v.i64(5, &p->expires_at_ms));
  PARLEY_TRY(validate_id(p->user_id, "user_id", limits));
  return validate_id(p->group_id, "group_id", limits);
}
Status decode_read(const ArrayView& v, const Limits& limits, ReadItem* r) {
  if (v.a.size != 8) return bad("a read item has 8 elements");
  PARLEY_TRY(v.str(1, &r->user_id));
  PARLEY_TRY(v.str(2, &r->state.group_id));
  PARLEY_TRY(v.u64(3, &r->state.epoch));
  PARLEY_TRY(v.u64(4, &r->state.msg_id));
  PARLEY_TRY(v.u64(5, &r->state.head));
  PARLEY_TRY(v.u64(6, &r->state.unread));
  PARLEY_TRY(v.u64(7, &r->state.mentions));
  PARLEY_TRY(validate_id(r->user_id, "user_id", limits));
  return validate_id(r->state.group_id, "group_id", limits);
}
Status decode_notify(const ArrayView& v, const Limits& limits, NotifyItem* n) {
  if (v.a.size != 4) return bad("a notify item has 4 elements");
  PARLEY_TRY(v.str(1, &n->user_id));
  PARLEY_TRY(v.str(2, &n->group_id));
  uint64_t level = 0;
  PARLEY_TRY(v.u64(3, &level));
  if (level > static_cast<uint64_t>(NotifyLevel::kNone)) return bad("unknown notification level");
  n->level = static_cast<NotifyLevel>(level);
  PARLEY_TRY(validate_id(n->user_id, "user_id", limits));
  return validate_id(n->group_id, "group_id", limits);
}
}  // namespace

std::string encode_notify_item(const NotifyItem& n) {
  StringBuffer buf;
  Packer pk(buf);
  pk.pack_array(4);
  pk.pack_uint64(kNotifyItem);
  pack_str(pk, n.user_id);
  pack_str(pk, n.group_id);
  pk.pack_uint64(static_cast<uint64_t>(n.level));
  return std::move(buf.data);
}

std::string encode_read_item(const ReadItem& r) {
  StringBuffer buf;
  Packer pk(buf);
  pk.pack_array(8);
  pk.pack_uint64(kReadItem);
  pack_str(pk, r.user_id);
  pack_str(pk, r.state.group_id);
  pk.pack_uint64(r.state.epoch);
  pk.pack_uint64(r.state.msg_id);
  pk.pack_uint64(r.state.head);
  pk.pack_uint64(r.state.unread);
  pk.pack_uint64(r.state.mentions);
  return std::move(buf.data);
}

std::string encode_message_item(const Message& m) {
  StringBuffer buf;
  Packer pk(buf);
  const bool plain = m.entry.plain() && !m.deleted;
  pk.pack_array(plain ? kPlainMessageItem : kEntryItem);
  pk.pack_uint64(kMessageItem);
  pack_str(pk, m.group_id);
  pk.pack_uint64(m.msg_id);
  pk.pack_uint64(m.prev_msg_id);
  pk.pack_int64(m.timestamp_ms);
  pack_str(pk, m.user_id);
  pack_bin(pk, m.contents);
  pack_str(pk, m.client_msg_id);
  pk.pack_uint64(m.epoch);
  if (plain) return std::move(buf.data);
  pk.pack_uint64(static_cast<uint64_t>(m.entry.kind));
  pk.pack_uint64(m.entry.target);
  pk.pack_uint64(m.entry.reply_to);
  pk.pack_array(static_cast<uint32_t>(m.entry.mentions.size()));
  for (const std::string& u : m.entry.mentions) pack_str(pk, u);
  pack_str(pk, m.entry.meta);
  m.entry.remove ? pk.pack_true() : pk.pack_false();
  m.deleted ? pk.pack_true() : pk.pack_false();
  return std::move(buf.data);
}

std::string encode_presence_item(const PresenceEv& p) {
  StringBuffer buf;
  Packer pk(buf);
  pk.pack_array(6);
  pk.pack_uint64(kPresenceItem);
  pack_str(pk, p.user_id);
  pack_str(pk, p.group_id);
  pk.pack_uint64(static_cast<uint64_t>(p.status));
  p.typing ? pk.pack_true() : pk.pack_false();
  pk.pack_int64(p.expires_at_ms);
  return std::move(buf.data);
}

std::string encode_interest_item(const std::string& group_id, uint64_t epoch, uint64_t head) {
  StringBuffer buf;
  Packer pk(buf);
  pk.pack_array(4);
  pk.pack_uint64(kInterestItem);
  pack_str(pk, group_id);
  pk.pack_uint64(epoch);
  pk.pack_uint64(head);
  return std::move(buf.data);
}

std::string encode_batch(const std::string& from, const std::vector<Frame>& items) {
  StringBuffer buf;
  size_t total = 32 + from.size();
  for (const Frame& f : items) total += f->size();
  buf.data.reserve(total);
  Packer pk(buf);
  pk.pack_array(3);
  pk.pack_uint64(1);
  pack_str(pk, from);
  pk.pack_array(static_cast<uint32_t>(items.size()));
  for (const Frame& f : items) buf.data.append(*f);
  return std::move(buf.data);
}

Result<PeerBatch> decode_batch(const void* data, size_t size, const Limits& limits) {
  const size_t max_bytes = limits.max_contents_bytes + 4 * limits.max_id_bytes + 64;
  msgpack::object_handle oh;
  PARLEY_TRY(unpack_one(data, size, untrusted_limit(limits.max_batch_messages, max_bytes), &oh));
  const msgpack::object& root = oh.get();
  if (root.type != msgpack::type::ARRAY || root.via.array.size != 3) return bad("must be a 3-element array");
  ArrayView top{root.via.array};
  uint64_t version = 0;
  PeerBatch batch;
  PARLEY_TRY(top.u64(0, &version));
  if (version != 1) return bad(fmt::format("unsupported version {}", version));
  PARLEY_TRY(top.str(1, &batch.from));
  PARLEY_TRY(validate_id(batch.from, "from", limits));
  const msgpack::object& items = root.via.array.ptr[2];
  if (items.type != msgpack::type::ARRAY) return bad("items must be an array");
  for (uint32_t i = 0; i < items.via.array.size; ++i) {
    const msgpack::object& item = items.via.array.ptr[i];
    if (item.type != msgpack::type::ARRAY || item.via.array.size == 0)
      return bad("an item must be a non-empty array");
    ArrayView v{item.via.array};
    uint64_t kind = 0;
    PARLEY_TRY(v.u64(0, &kind));
    if (kind == kMessageItem) {
      auto m = std::make_shared<Message>();
      PARLEY_TRY(decode_message(v, limits, m.get()));
      batch.messages.push_back(std::move(m));
    } else if (kind == kPresenceItem) {
      PresenceEv p;
      PARLEY_TRY(decode_presence(v, limits, &p));
      batch.presence.push_back(std::move(p));
    } else if (kind == kInterestItem) {
      Interest in;
      if (v.a.size != 2 && v.a.size != 4) return bad("an interest item has 2 or 4 elements");
      PARLEY_TRY(v.str(1, &in.group_id));
      PARLEY_TRY(validate_id(in.group_id, "group_id", limits));
      if (v.a.size == 4) {
        PARLEY_TRY(v.u64(2, &in.epoch));
        PARLEY_TRY(v.u64(3, &in.head));
        in.has_head = true;
      }
      batch.interest.push_back(std::move(in));
    } else if (kind == kReadItem) {
      ReadItem r;
      PARLEY_TRY(decode_read(v, limits, &r));
      batch.reads.push_back(std::move(r));
    } else if (kind == kNotifyItem) {
      NotifyItem n;
      PARLEY_TRY(decode_notify(v, limits, &n));
      batch.levels.push_back(std::move(n));
    } else {
      return bad(fmt::format("unknown item kind {}", kind));
    }
  }
  return batch;
}

}  // namespace parley::detail
