"""Stores (memory or SQLite) and the admin helpers: groups, members, history.

Threads: like a node, a store is used from one thread at a time, the thread
of the nodes running on it (parley.h convention 5).
"""

from __future__ import annotations

import ctypes
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Union

from . import _lib
from ._lib import StrLike


# Which offline notifications a member gets for a group (docs/protocol.md
# 2.1): every message from others, only those mentioning it, or none.
NotifyLevel = Literal["all", "mentions", "none"]
_LEVELS: List[NotifyLevel] = ["all", "mentions", "none"]  # PARLEY_NOTIFY_* order


@dataclass(frozen=True)
class Message:
    """One stored message, copied out of the library."""

    group_id: str
    msg_id: int  # 1, 2, 3 ... per group and epoch
    prev_msg_id: int
    timestamp_ms: int  # server clock at append, Unix ms
    user_id: str  # the sender
    contents: bytes
    client_msg_id: str  # "" when the sender gave none
    epoch: int

    @property
    def text(self) -> str:
        """The contents decoded as UTF-8."""
        return self.contents.decode("utf-8", "replace")

    @classmethod
    def _from_c(cls, m: _lib.MessageStruct) -> "Message":
        return cls(
            group_id=_lib.text(m.group_id),
            msg_id=m.msg_id,
            prev_msg_id=m.prev_msg_id,
            timestamp_ms=m.timestamp_ms,
            user_id=_lib.text(m.user_id),
            contents=ctypes.string_at(m.contents, m.contents_size) if m.contents_size else b"",
            client_msg_id=_lib.text(m.client_msg_id),
            epoch=m.epoch,
        )


# What a log entry is (docs/protocol.md 2.1), in PARLEY_ENTRY_* order.
EntryKind = Literal["message", "edit", "delete", "reaction", "join", "leave", "removed", "system"]
_KINDS: List[EntryKind] = ["message", "edit", "delete", "reaction", "join", "leave", "removed", "system"]


@dataclass(frozen=True)
class Reaction:
    """One reaction key on a message of a folded read."""

    key: str
    count: int
    mine: bool  # the reader is one of those who gave it


@dataclass(frozen=True)
class Entry:
    """A log entry with every field (Store.entries). `message.contents` of a
    folded message is its latest; `edited`, `replies` and `reactions` are
    set on folded reads only."""

    message: Message
    kind: EntryKind
    target: int  # edit, delete, reaction: the message it changes (else 0)
    reply_to: int  # a message: the message it answers (0: none)
    mentions: List[str]
    meta: Optional[Dict[str, Any]]  # the app's JSON object, None for none
    deleted: bool  # a tombstone
    removed: bool  # a reaction taken back
    edited: int = 0  # the latest edit's id
    replies: int = 0  # messages answering it, not deleted
    reactions: List[Reaction] = field(default_factory=list)

    @classmethod
    def _from_c(cls, e: _lib.EntryStruct) -> "Entry":
        meta = _lib.text(e.meta)
        return cls(
            message=Message._from_c(e.message),
            kind=_KINDS[e.kind],
            target=e.target,
            reply_to=e.reply_to,
            mentions=[_lib.text(e.mentions[i]) for i in range(e.mention_count)],
            meta=json.loads(meta) if meta else None,
            deleted=bool(e.deleted),
            removed=bool(e.removed),
            edited=e.edited,
            replies=e.replies,
            reactions=[
                Reaction(_lib.text(e.reactions[i].key), e.reactions[i].count, bool(e.reactions[i].mine))
                for i in range(e.reaction_count)
            ],
        )


@dataclass(frozen=True)
class EntryPage:
    """A page of a group's log (Store.entries): it covers ids (after, to];
    read on from `to` while `to` < `head`. A folded page is folded as of
    `head`."""

    epoch: int
    head: int
    to: int
    entries: List[Entry]


@dataclass(frozen=True)
class ReadState:
    """A user's read state in one group (docs/protocol.md 2.1): read up to
    `msg_id` of `epoch` (0: nothing read, or a position of an older epoch);
    `unread` messages after it from others and not deleted, `mentions` of
    them naming the user; counted up to `head`."""

    group_id: str
    epoch: int
    msg_id: int
    head: int
    unread: int
    mentions: int

    @classmethod
    def _from_c(cls, s: _lib.ReadStateStruct) -> "ReadState":
        return cls(_lib.text(s.group_id), s.epoch, s.msg_id, s.head, s.unread, s.mentions)


GroupKind = Literal["public", "private"]
_GROUP_KINDS = ("public", "private")


@dataclass(frozen=True)
class GroupInfo:
    """A group's settings and member count (docs/protocol.md 3, "Groups"):
    `kind` "public" (anyone joins by asking) or "private" (by invite, or the
    host's join); `member_limit` 0 is none."""

    group_id: str
    kind: GroupKind
    title: str
    topic: str
    member_limit: int
    members: int

    @classmethod
    def _from_c(cls, s: _lib.GroupInfoStruct) -> "GroupInfo":
        kind: GroupKind = "private" if s.kind == 1 else "public"
        return cls(_lib.text(s.group_id), kind, _lib.text(s.title), _lib.text(s.topic), s.member_limit, s.members)


def _settings(kind: str, title: StrLike, topic: StrLike, member_limit: int) -> _lib.GroupInfoStruct:
    if kind not in _GROUP_KINDS:
        raise _lib.InvalidArgument(f"kind must be 'public' or 'private', not {kind!r}")
    return _lib.GroupInfoStruct(
        None, _GROUP_KINDS.index(kind), _lib.cstr(title, "title"), _lib.cstr(topic, "topic"),
        _lib.uint(member_limit, "member_limit", 32), 0,
    )


class Store(_lib.Closeable):
    """The messages, memberships and session directory of one or more nodes.

    Make one with `Store.memory()` or `Store.sqlite(path)`. Nodes created on
    a store keep it open until they are closed, even after `close()`.
    """

    def __init__(self, handle: int) -> None:
        """Use Store.memory() or Store.sqlite()."""
        self._handle: Optional[int] = handle

    @classmethod
    def memory(cls) -> "Store":
        """In-memory stores, for tests and single-process hosts; everything is
        lost when the last user closes it."""
        out = ctypes.c_void_p()
        _lib.check(_lib.lib().parley_store_open_memory(ctypes.byref(out)))
        return cls(out.value)

    @classmethod
    def sqlite(cls, path: Union[str, "os.PathLike[str]"], *, sync_normal: bool = False) -> "Store":
        """Opens (creating or migrating) the SQLite database at `path`.
        Every commit is fsynced unless `sync_normal` (a power loss may then
        lose the last commits). Raises Unavailable if it cannot be opened."""
        out = ctypes.c_void_p()
        flags = _lib.SQLITE_SYNC_NORMAL if sync_normal else 0
        rc = _lib.lib().parley_store_open_sqlite(_lib.cstr(os.fsencode(path), "path"), flags, ctypes.byref(out))
        _lib.check(rc)
        return cls(out.value)

    @property
    def closed(self) -> bool:
        return self._handle is None

    def _live(self) -> int:
        if self._handle is None:
            raise _lib.closed("Store")
        return self._handle

    def close(self) -> None:
        """Releases the store; safe to call twice."""
        handle, self._handle = self._handle, None
        if handle is not None:
            _lib.check(_lib.lib().parley_store_close(handle), handle)

    def __repr__(self) -> str:
        return f"<parley.Store {'closed' if self.closed else 'open'}>"

    def create_group(
        self, group_id: StrLike, owner_id: StrLike, *, kind: GroupKind = "public", title: StrLike = "",
        topic: StrLike = "", member_limit: int = 0,
    ) -> None:
        """Creates a group with `owner_id` as owner and first member, with
        its settings. Raises AlreadyExists if it exists."""
        h = self._live()
        settings = _settings(kind, title, topic, member_limit)
        rc = _lib.lib().parley_store_create_group_with(
            h, _lib.cstr(group_id, "group_id"), _lib.cstr(owner_id, "owner_id"), ctypes.byref(settings))
        _lib.check(rc, h)

    def join(self, group_id: StrLike, user_id: StrLike) -> None:
        """Makes `user_id` a member as the host: no invite needed, even to a
        private group (a member already is left as is). Raises NotFound for
        an unknown group, LimitExceeded at its member limit."""
        self._membership("parley_store_join", group_id, user_id)

    def ask_to_join(self, group_id: StrLike, user_id: StrLike) -> None:
        """`user_id` joins by the group's rules: PermissionDenied for a
        private group without an invite, LimitExceeded at its member limit."""
        self._membership("parley_store_ask_to_join", group_id, user_id)

    def invite(self, group_id: StrLike, user_id: StrLike) -> None:
        """Lets `user_id` join the (private) group by asking, once."""
        self._membership("parley_store_invite", group_id, user_id)

    def _membership(self, fn: str, group_id: StrLike, user_id: StrLike) -> None:
        h = self._live()
        rc = getattr(_lib.lib(), fn)(h, _lib.cstr(group_id, "group_id"), _lib.cstr(user_id, "user_id"))
        _lib.check(rc, h)

    def group_info(self, group_id: StrLike) -> GroupInfo:
        """The group's settings and member count (NotFound for none)."""
        h = self._live()
        out = ctypes.POINTER(_lib.GroupInfoStruct)()
        _lib.check(_lib.lib().parley_store_group_info(h, _lib.cstr(group_id, "group_id"), ctypes.byref(out)), h)
        try:
            return GroupInfo._from_c(out[0])
        finally:
            _lib.lib().parley_group_infos_free(out)

    def set_group_settings(
        self, group_id: StrLike, *, kind: Optional[GroupKind] = None, title: Optional[StrLike] = None,
        topic: Optional[StrLike] = None, member_limit: Optional[int] = None,
    ) -> GroupInfo:
        """Changes the settings named (the rest are kept); returns them as
        in force. The store records no log entry: record one with
        Node.record_system (see docs/c-api.md)."""
        now = self.group_info(group_id)
        settings = _settings(
            now.kind if kind is None else kind, now.title if title is None else title,
            now.topic if topic is None else topic, now.member_limit if member_limit is None else member_limit,
        )
        h = self._live()
        rc = _lib.lib().parley_store_set_group_settings(h, _lib.cstr(group_id, "group_id"), ctypes.byref(settings))
        _lib.check(rc, h)
        return self.group_info(group_id)

    def public_groups(self, prefix: StrLike = "", *, after: StrLike = "", limit: int = 50) -> List[GroupInfo]:
        """Discovery: public groups whose id starts with `prefix`, after
        `after`, in id order, at most `limit` (1..1000)."""
        h = self._live()
        out = ctypes.POINTER(_lib.GroupInfoStruct)()
        count = ctypes.c_size_t()
        rc = _lib.lib().parley_store_public_groups(
            h, _lib.cstr(prefix, "prefix"), _lib.cstr(after, "after"), _lib.uint(limit, "limit", 32),
            ctypes.byref(out), ctypes.byref(count),
        )
        _lib.check(rc, h)
        try:
            return [GroupInfo._from_c(out[i]) for i in range(count.value)]
        finally:
            _lib.lib().parley_group_infos_free(out)

    def leave(self, group_id: StrLike, user_id: StrLike) -> None:
        """Removes `user_id` from the group (NotFound if not a member). Call
        Node.member_removed on each node to cut live sessions off at once (a
        node trusts a membership it read for up to 10 s)."""
        h = self._live()
        rc = _lib.lib().parley_store_leave(h, _lib.cstr(group_id, "group_id"), _lib.cstr(user_id, "user_id"))
        _lib.check(rc, h)

    def history(
        self, group_id: StrLike, *, after: int = 0, limit: int = 100, as_user: Optional[StrLike] = None
    ) -> List[Message]:
        """Up to `limit` (1..1000) messages with msg_id > `after`, oldest
        first. With `as_user`, only a member may read (PermissionDenied
        otherwise); without, reads as an administrator. NotFound for an
        unknown group."""
        h = self._live()
        out = ctypes.POINTER(_lib.MessageStruct)()
        count = ctypes.c_size_t()
        rc = _lib.lib().parley_store_history(
            h,
            _lib.cstr(group_id, "group_id"),
            _lib.opt_cstr(as_user, "as_user"),
            _lib.uint(after, "after"),
            _lib.uint(limit, "limit", 32),
            ctypes.byref(out),
            ctypes.byref(count),
        )
        _lib.check(rc, h)
        try:
            return [Message._from_c(out[i]) for i in range(count.value)]
        finally:
            _lib.lib().parley_messages_free(out)

    def entries(
        self,
        group_id: StrLike,
        *,
        after: int = 0,
        limit: int = 100,
        as_user: Optional[StrLike] = None,
        fold: bool = False,
    ) -> EntryPage:
        """The entries with ids in (after, after + limit] (limit 1..1000)
        with every field. With `fold`, only messages and membership entries
        are listed, each message with its latest contents, reactions
        (`mine` for `as_user`'s) and reply count as of the page's head
        (docs/protocol.md 2.1, "Folded history"). `as_user` as in history."""
        h = self._live()
        out = ctypes.POINTER(_lib.EntryPageStruct)()
        rc = _lib.lib().parley_store_entries(
            h,
            _lib.cstr(group_id, "group_id"),
            _lib.opt_cstr(as_user, "as_user"),
            _lib.uint(after, "after"),
            _lib.uint(limit, "limit", 32),
            1 if fold else 0,
            ctypes.byref(out),
        )
        _lib.check(rc, h)
        try:
            page = out.contents
            return EntryPage(
                epoch=page.epoch,
                head=page.head,
                to=page.to,
                entries=[Entry._from_c(page.entries[i]) for i in range(page.count)],
            )
        finally:
            _lib.lib().parley_entry_page_free(out)

    def read_states(self, user_id: StrLike) -> List[ReadState]:
        """The read state of `user_id` in each of its groups, sorted by group
        id (what a badge list shows)."""
        h = self._live()
        out = ctypes.POINTER(_lib.ReadStateStruct)()
        count = ctypes.c_size_t()
        rc = _lib.lib().parley_store_read_states(h, _lib.cstr(user_id, "user_id"), ctypes.byref(out),
                                                 ctypes.byref(count))
        _lib.check(rc, h)
        try:
            return [ReadState._from_c(out[i]) for i in range(count.value)]
        finally:
            _lib.lib().parley_read_states_free(out)

    def mark_read(self, group_id: StrLike, user_id: StrLike, *, epoch: int, msg_id: int) -> ReadState:
        """Moves the read position of `user_id` in `group_id` forward to
        `msg_id` of `epoch` (never back; past the head counts as the head)
        and returns the state in force. EpochMismatch if `epoch` is not the
        group's, NotFound if the user is not a member. The user's live
        sessions are not told (a client reports reads with the "read"
        request, which tells its other sessions)."""
        h = self._live()
        out = _lib.ReadStateStruct()
        rc = _lib.lib().parley_store_mark_read(h, _lib.cstr(group_id, "group_id"), _lib.cstr(user_id, "user_id"),
                                               _lib.uint(epoch, "epoch"), _lib.uint(msg_id, "msg_id"),
                                               ctypes.byref(out))
        _lib.check(rc, h)
        return ReadState._from_c(out)

    def set_notify_level(self, group_id: StrLike, user_id: StrLike, level: NotifyLevel) -> None:
        """Sets which offline notifications `user_id` gets for `group_id`:
        "all" (the default), "mentions" or "none". Kept across a role change,
        forgotten on leaving. InvalidArgument for another level, NotFound if
        the user is not a member. The user's live sessions are not told (a
        client sets it with the "notify" request, which tells them)."""
        if level not in _LEVELS:
            raise ValueError(f"level must be one of {_LEVELS}, not {level!r}")
        h = self._live()
        rc = _lib.lib().parley_store_set_notify_level(h, _lib.cstr(group_id, "group_id"),
                                                      _lib.cstr(user_id, "user_id"), _LEVELS.index(level))
        _lib.check(rc, h)

    def notify_level(self, group_id: StrLike, user_id: StrLike) -> NotifyLevel:
        """The notification level of `user_id` in `group_id`. NotFound if the
        user is not a member."""
        h = self._live()
        level = ctypes.c_int(-1)
        rc = _lib.lib().parley_store_notify_level(h, _lib.cstr(group_id, "group_id"), _lib.cstr(user_id, "user_id"),
                                                  ctypes.byref(level))
        _lib.check(rc, h)
        return _LEVELS[level.value]
