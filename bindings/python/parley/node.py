"""Embedding a node: the engine of one chat server, driven by your own loop
and transports.

The node does no I/O and starts no threads. You feed it events (sessions
opening and closing, client frames, peer batches and their results, timers)
and it acts through the callbacks you set: on_deliver (frames for a client
session), on_send_batch (bytes for a peer node), on_close_session, on_notify,
on_timer, clock and on_wakeup. End each turn of your loop with flush().

Threads (parley.h conventions 5 and 6): a node is used from one thread at a
time, the node's thread. Every callback runs on that thread, inside the
Node call that caused it, except on_wakeup, which runs on the thread that
called post(). post() is the one method safe from any thread. A callback
must not call back into its own node; queue the work, or use post().

Exceptions: an exception raised by one of your callbacks (or a posted
function) does not cross into C; it is raised again, on the node's thread,
by the Node call that ran the callback (or, for on_wakeup, by the next one).

Lifetimes: the callables you set are held by the node until they are
replaced or the node is closed; the C side releases each one exactly once
(its free function), so nothing leaks and nothing is called after release.
"""

from __future__ import annotations

import collections
import json
import ctypes
import dataclasses
import itertools
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Literal, Optional, Tuple, Union

from . import _lib
from ._lib import BytesLike, StrLike
from .errors import OK, InvalidArgument, ParleyError, error_from_code
from .store import Store

DeliverFn = Callable[[int, List[bytes]], None]
CloseSessionFn = Callable[[int, ParleyError], None]
SendBatchFn = Callable[[str, int, bytes], None]
TimerFn = Callable[[int], None]
ClockFn = Callable[[], int]
WakeupFn = Callable[[], None]
PostFn = Callable[["Node"], None]

_CODECS = {"msgpack": _lib.CODEC_MSGPACK, "json": _lib.CODEC_JSON}
_FORWARD = {"adaptive": _lib.FORWARD_ADAPTIVE, "fixed": _lib.FORWARD_FIXED}


@dataclass(frozen=True)
class Notification:
    """A best-effort offline notification: `user_id` missed message `msg_id`
    of `group_id` from `sender_id` (the message is in history either way)."""

    user_id: str
    group_id: str
    epoch: int
    msg_id: int
    sender_id: str
    preview: str  # the first bytes of the contents, never a cut UTF-8 character
    reason: str  # "offline", or why the user's session failed
    mentioned: bool = False  # the message mentions the user


NotifyFn = Callable[[Notification], None]

# Membership entry kinds (parley.h PARLEY_ENTRY_*).
MembershipKind = Literal["join", "leave", "removed"]
_MEMBERSHIP = {"join": 4, "leave": 5, "removed": 6}


@dataclass(frozen=True)
class NodeOptions:
    """A node's options. None (or 0 for the limits) keeps the library's
    default; the options are copied when the node is created."""

    node_id: str = "node-1"  # this node's id in the cluster (peers see it in on_send_batch)
    codec: str = "msgpack"  # client frames: "msgpack" (docs/protocol-core.md) or "json" (docs/protocol.md 2)
    forward: str = "adaptive"  # between nodes: "adaptive" or "fixed" (batch every forward_period_ms)
    forward_period_ms: int = 0  # fixed mode's period; 0: the default (50)
    max_id_bytes: int = 0  # default 128
    max_contents_bytes: int = 0  # default 64 KiB
    max_batch_messages: int = 0  # messages per peer batch; default 4096
    max_read_limit: int = 0  # messages per read; default 1000
    session_queue_bytes: Optional[int] = None  # unwritten bytes before a session is closed; default 1 MiB
    pull_policy: Optional[Tuple[int, float, float]] = None  # (min_members, enter_rate, exit_rate); (100, 20, 5)
    seed: Optional[int] = None  # of random phases and jitter; default 1

    def _make(self) -> int:
        """A parley_node_options handle with these values (the caller destroys it)."""
        if self.codec not in _CODECS:
            raise InvalidArgument(f"codec must be one of {sorted(_CODECS)}, not {self.codec!r}")
        if self.forward not in _FORWARD:
            raise InvalidArgument(f"forward must be one of {sorted(_FORWARD)}, not {self.forward!r}")
        lib = _lib.lib()
        out = ctypes.c_void_p()
        _lib.check(lib.parley_node_options_create(ctypes.byref(out)))
        h = out.value
        try:
            _lib.check(lib.parley_node_options_set_node_id(h, _lib.cstr(self.node_id, "node_id")), h)
            _lib.check(lib.parley_node_options_set_codec(h, _CODECS[self.codec]), h)
            _lib.check(lib.parley_node_options_set_forward(h, _FORWARD[self.forward], self.forward_period_ms), h)
            limits = (self.max_id_bytes, self.max_contents_bytes, self.max_batch_messages, self.max_read_limit)
            names = ("max_id_bytes", "max_contents_bytes", "max_batch_messages", "max_read_limit")
            _lib.check(lib.parley_node_options_set_limits(h, *map(_lib.uint, limits, names)), h)
            if self.session_queue_bytes is not None:
                n = _lib.uint(self.session_queue_bytes, "session_queue_bytes")
                _lib.check(lib.parley_node_options_set_session_queue_bytes(h, n), h)
            if self.pull_policy is not None:
                members, enter, exit_ = self.pull_policy
                n = _lib.uint(members, "pull_policy min_members")
                _lib.check(lib.parley_node_options_set_pull_policy(h, n, float(enter), float(exit_)), h)
            if self.seed is not None:
                _lib.check(lib.parley_node_options_set_seed(h, _lib.uint(self.seed, "seed")), h)
        except BaseException:
            lib.parley_node_options_destroy(h)
            raise
        return h


# ---- callbacks ----------------------------------------------------------------------
#
# The C side calls a fixed set of module-level trampolines (they live as long
# as the module). Each registration gets a key, passed as user_data; the key
# maps to a weak reference to its Node, and the node holds the Python
# callable under the key in Node._slots. The C side's free function (_free)
# drops both, exactly once, when the callback is replaced, the posted function
# has run or been dropped, or the node is destroyed.

_keys = itertools.count(1)
_owners: Dict[int, "weakref.ref[Node]"] = {}


def _target(user_data: Optional[int]) -> Optional[Tuple["Node", Any]]:
    ref = _owners.get(user_data or 0)
    node = ref() if ref is not None else None
    if node is None:
        return None
    fn = node._slots.get(user_data)
    return None if fn is None else (node, fn)


@_lib.FREE_FN
def _free(user_data: Optional[int]) -> None:
    try:
        ref = _owners.pop(user_data or 0, None)
        node = ref() if ref is not None else None
        if node is not None:
            node._slots.pop(user_data, None)
    except Exception:  # at interpreter exit the module may be half torn down
        pass


def _trampoline(cfunctype: Any, adapt: Callable[..., Any], default: Callable[[], Any] = lambda: None) -> Any:
    """A C callback that finds the node and callable of its user_data and
    calls adapt(fn, *args); an exception is kept for the node to raise."""

    def call(user_data: Optional[int], *args: Any) -> Any:
        target = _target(user_data)
        if target is None:
            return default()
        node, fn = target
        try:
            return adapt(fn, *args)
        except BaseException as e:  # noqa: B036 - nothing may unwind into C
            node._callback_failed(e)
            return default()

    return cfunctype(call)


def _frames(frames: Any, count: int) -> List[bytes]:
    return [ctypes.string_at(frames[i].data, frames[i].size) for i in range(count)]


def _notification(p: Any) -> Notification:
    n = p.contents
    return Notification(
        user_id=_lib.text(n.user_id),
        group_id=_lib.text(n.group_id),
        epoch=n.epoch,
        msg_id=n.msg_id,
        sender_id=_lib.text(n.sender_id),
        preview=ctypes.string_at(n.preview, n.preview_size).decode("utf-8", "replace") if n.preview_size else "",
        reason=_lib.text(n.reason),
        mentioned=bool(n.mentioned),
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


_in_wakeup = threading.local()  # set while this thread runs a wakeup callback


def _wakeup(fn: WakeupFn) -> None:
    _in_wakeup.active = True
    try:
        fn()
    finally:
        _in_wakeup.active = False


_TRAMPOLINES: Dict[str, Any] = {
    "deliver": _trampoline(_lib.DELIVER_FN, lambda fn, s, frames, n: fn(s, _frames(frames, n))),
    "close_session": _trampoline(
        _lib.CLOSE_SESSION_FN, lambda fn, s, code, msg: fn(s, error_from_code(code, _lib.text(msg)))
    ),
    "send_batch": _trampoline(
        _lib.SEND_BATCH_FN,
        lambda fn, node_id, call_id, data, size: fn(_lib.text(node_id), call_id, ctypes.string_at(data, size)),
    ),
    "notify": _trampoline(_lib.NOTIFY_FN, lambda fn, p: fn(_notification(p))),
    "timer": _trampoline(_lib.TIMER_FN, lambda fn, at_ms: fn(at_ms)),
    "clock": _trampoline(_lib.CLOCK_FN, lambda fn: int(fn()), default=_now_ms),
    "wakeup": _trampoline(_lib.WAKEUP_FN, lambda fn: _wakeup(fn)),
}


@_lib.POST_FN
def _run_posted(_node: Optional[int], user_data: Optional[int]) -> None:
    target = _target(user_data)
    if target is None:
        return
    node, fn = target
    try:
        fn(node)
    except BaseException as e:  # noqa: B036
        node._callback_failed(e)


# ---- the node -----------------------------------------------------------------------


class Node(_lib.Closeable):
    """One chat node on a store, driven by the host.

    Lifecycle: create, set callbacks (keyword arguments or attributes),
    start(), feed events, close(). Options are NodeOptions fields, given as
    a NodeOptions or as keyword arguments (which override it)::

        node = parley.Node(store, node_id="n1", codec="json", on_deliver=print)
        node.start()
    """

    def __init__(
        self,
        store: Store,
        options: Optional[NodeOptions] = None,
        *,
        on_deliver: Optional[DeliverFn] = None,
        on_close_session: Optional[CloseSessionFn] = None,
        on_send_batch: Optional[SendBatchFn] = None,
        on_notify: Optional[NotifyFn] = None,
        on_timer: Optional[TimerFn] = None,
        clock: Optional[ClockFn] = None,
        on_wakeup: Optional[WakeupFn] = None,
        **option_fields: Any,
    ) -> None:
        self._handle: Optional[int] = None
        self._slots: Dict[int, Any] = {}  # key -> callable, while the C side holds the key
        self._callbacks: Dict[str, Any] = {}  # name -> the callable set (what the properties return)
        self._errors: Deque[BaseException] = collections.deque()  # raised by callbacks (any thread)
        self._lock = threading.RLock()  # orders post() against close()
        if not isinstance(store, Store):
            raise TypeError(f"store must be a parley.Store, not {type(store).__name__}")
        self.options = dataclasses.replace(options or NodeOptions(), **option_fields)
        store_handle = store._live()
        opts = self.options._make()
        try:
            out = ctypes.c_void_p()
            _lib.check(_lib.lib().parley_node_create(opts, store_handle, ctypes.byref(out)))
            self._handle = out.value
        finally:
            _lib.lib().parley_node_options_destroy(opts)
        given = {
            "deliver": on_deliver,
            "close_session": on_close_session,
            "send_batch": on_send_batch,
            "notify": on_notify,
            "timer": on_timer,
            "clock": clock,
            "wakeup": on_wakeup,
        }
        try:
            for name, fn in given.items():
                if fn is not None:
                    self._set_callback(name, fn)
        except BaseException:
            self.close()
            raise

    # ---- plumbing

    @property
    def closed(self) -> bool:
        return self._handle is None

    @property
    def node_id(self) -> str:
        return self.options.node_id

    def _live(self) -> int:
        h = self._handle
        if h is None:
            raise _lib.closed("Node")
        return h

    def _callback_failed(self, e: BaseException) -> None:
        self._errors.append(e)

    def _take_callback_error(self) -> Optional[BaseException]:
        """The first exception a callback raised since the last call (others
        are counted in a note), or None."""
        errors = []
        while self._errors:
            errors.append(self._errors.popleft())
        if not errors:
            return None
        if len(errors) > 1 and hasattr(errors[0], "add_note"):
            errors[0].add_note(f"({len(errors) - 1} more exception(s) in parley callbacks were dropped)")
        return errors[0]

    def _call(self, name: str, *args: Any) -> None:
        """Calls parley_<name>(handle, *args); raises what a callback raised
        during the call, else the call's error."""
        h = self._live()
        rc = getattr(_lib.lib(), "parley_" + name)(h, *args)
        err = error_from_code(rc, _lib.errmsg(h)) if rc != 0 else None
        raised = self._take_callback_error()
        if raised is not None:
            if err is not None and hasattr(raised, "add_note"):
                raised.add_note(f"(and the call parley_{name} failed: {err})")
            raise raised
        if err is not None:
            raise err

    def _new_key(self, fn: Any) -> int:
        key = next(_keys)
        self._slots[key] = fn
        _owners[key] = weakref.ref(self)
        return key

    def _drop_key(self, key: int) -> None:
        _owners.pop(key, None)
        self._slots.pop(key, None)

    def _set_callback(self, name: str, fn: Optional[Callable[..., Any]]) -> None:
        h = self._live()
        setter = getattr(_lib.lib(), "parley_node_set_" + name)
        if fn is None:
            rc = setter(h, type(_TRAMPOLINES[name])(), None, _lib.FREE_FN())  # NULL function pointers
        else:
            if not callable(fn):
                raise TypeError(f"{name} callback must be callable, not {type(fn).__name__}")
            key = self._new_key(fn)
            rc = setter(h, _TRAMPOLINES[name], key, _free)
            if rc != 0:  # a failed registration takes nothing
                self._drop_key(key)
        _lib.check(rc, h)
        self._callbacks[name] = fn

    def _callback_property(name: str, doc: str) -> Any:  # type: ignore[misc]
        def get(self: "Node") -> Any:
            return self._callbacks.get(name)

        def set_(self: "Node", fn: Any) -> None:
            self._set_callback(name, fn)

        return property(get, set_, doc=doc)

    on_deliver = _callback_property(
        "deliver",
        "fn(session, frames: list[bytes]): write the frames to the client session, in order. "
        "Report written bytes with session_drained().",
    )
    on_close_session = _callback_property(
        "close_session",
        "fn(session, error: ParleyError): the node gave up on the session (it fell behind: "
        "Backpressure) and forgot it; close the connection.",
    )
    on_send_batch = _callback_property(
        "send_batch",
        "fn(node_id, call_id, data: bytes): send the batch to peer node_id; later, not from inside "
        "the callback, report the outcome with peer_result().",
    )
    on_notify = _callback_property("notify", "fn(Notification): a member missed a message (best effort).")
    on_timer = _callback_property(
        "timer", "fn(at_ms): call timer_fired() at or soon after at_ms on the node's clock (replaces the last request)."
    )
    clock = _callback_property("clock", "fn() -> int: the node's clock in ms (default Unix time). Set before start().")
    on_wakeup = _callback_property(
        "wakeup",
        "fn(): something was posted; get the node's thread to call run_posted(). Runs on the posting "
        "thread: thread-safe, non-blocking, no Parley calls.",
    )
    del _callback_property

    # ---- lifecycle

    def start(self) -> None:
        """Starts the node, once, after setting callbacks and before any event."""
        self._call("node_start")

    def close(self) -> None:
        """Destroys the node: releases every callback and drops what was posted
        and not run, without closing sessions or flushing (flush() first to
        end a turn). Safe to call twice; not from a callback or posted function
        (InvalidArgument)."""
        with self._lock:
            h, self._handle = self._handle, None
            if h is None:
                return
            rc = _lib.lib().parley_node_destroy(h)
            if rc != 0:
                self._handle = h  # refused (e.g. from a callback): still alive
                _lib.check(rc, h)
            self._callbacks.clear()

    def __repr__(self) -> str:
        return f"<parley.Node {self.options.node_id!r} {'closed' if self.closed else 'open'}>"

    # ---- events

    def open_session(self, session: int, user_id: StrLike) -> None:
        """A client authenticated as user_id connected; `session` is any id
        unique on this node, chosen by you. AlreadyExists if in use."""
        self._call("node_session_open", _lib.uint(session, "session"), _lib.cstr(user_id, "user_id"))

    def close_session(
        self, session: int, code: Union[int, ParleyError] = OK, reason: Optional[StrLike] = None
    ) -> None:
        """The session's connection ended: code 0 (OK) for a clean close, else
        the error (a code or a ParleyError) that ended it."""
        if isinstance(code, ParleyError):
            reason = code.message if reason is None else reason
            code = code.code
        self._call("node_session_close", _lib.uint(session, "session"), code, _lib.opt_cstr(reason, "reason"))

    def client_request(self, session: int, data: BytesLike) -> None:
        """One frame from the session's client, in the node's codec (str is
        sent as UTF-8). A bad frame is answered to the client with an error
        event; NotFound for an unknown session."""
        b = _lib.payload(data)
        self._call("node_client_request", _lib.uint(session, "session"), b, len(b))

    def session_drained(self, session: int, nbytes: int) -> None:
        """You wrote `nbytes` of what on_deliver handed you for the session."""
        self._call("node_session_drained", _lib.uint(session, "session"), _lib.uint(nbytes, "nbytes"))

    def peer_batch(self, data: BytesLike) -> None:
        """A batch from a peer node (bytes its on_send_batch sent).
        InvalidArgument for a malformed batch (text that is not UTF-8
        included), TooLarge for an id or contents over this node's limits;
        nothing of it is applied: report the call as failed to the sender."""
        b = _lib.payload(data)
        self._call("node_peer_batch", b, len(b))

    def peer_result(self, node_id: StrLike, call_id: int, ok: bool) -> None:
        """The outcome of this node's on_send_batch call `call_id` to node_id."""
        self._call("node_peer_result", _lib.cstr(node_id, "node_id"), _lib.uint(call_id, "call_id"), 1 if ok else 0)

    def timer_fired(self) -> None:
        """The time asked for by on_timer has come (early calls are harmless). Flushes."""
        self._call("node_timer_fired")

    def flush(self) -> None:
        """Ends a turn: runs posted functions, commits queued sends, fans out,
        delivers, re-arms the timer."""
        self._call("node_flush")

    def member_removed(self, group_id: StrLike, user_id: StrLike) -> None:
        """user_id left group_id (Store.leave): its sessions here stop receiving it at once."""
        self._call("node_member_removed", _lib.cstr(group_id, "group_id"), _lib.cstr(user_id, "user_id"))

    def record_membership(self, group_id: StrLike, kind: MembershipKind, user_id: StrLike,
                          subject: Optional[StrLike] = None) -> None:
        """Records a membership change made in the store as an entry of the
        group's log: "join" / "leave" (user_id joined or left) or "removed"
        (user_id removed `subject`). It is committed with the next turn and
        pushed to the members' sessions in order; a node delivering a leave
        or removal also does member_removed for it."""
        if kind not in _MEMBERSHIP:
            raise ValueError(f"kind must be one of {list(_MEMBERSHIP)}, not {kind!r}")
        self._call("node_record_membership", _lib.cstr(group_id, "group_id"), _MEMBERSHIP[kind],
                   _lib.cstr(user_id, "user_id"), _lib.opt_cstr(subject, "subject"))

    def record_system(self, group_id: StrLike, author: StrLike, text: StrLike, *, cid: Optional[StrLike] = None,
                      meta: Optional[Dict[str, Any]] = None) -> None:
        """Records a notice from the app itself as a "system" entry of the
        group's log, committed with the next turn and pushed to the members'
        sessions in order; it counts as unread for nobody and notifies nobody.
        `author` names the app's voice (any id, not a member); `meta` is an
        optional JSON object; a `cid` makes a resend a duplicate, stored once."""
        meta_json = json.dumps(meta, separators=(",", ":"), ensure_ascii=False) if meta is not None else None
        self._call("node_record_system", _lib.cstr(group_id, "group_id"), _lib.cstr(author, "author"),
                   _lib.opt_cstr(cid, "cid"), _lib.cstr(text, "text"), _lib.opt_cstr(meta_json, "meta"))

    @property
    def session_count(self) -> int:
        """The number of open sessions."""
        out = ctypes.c_size_t()
        self._call("node_session_count", ctypes.byref(out))
        return out.value

    # ---- posting

    def post(self, fn: PostFn) -> None:
        """Queues fn(node) to run on the node's thread at its next run_posted()
        or flush(). Safe from any thread. Closed once the node is closed."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        if getattr(_in_wakeup, "active", False):  # the library holds the queue's lock: it would deadlock
            raise InvalidArgument("post() from an on_wakeup callback; signal your loop and return")
        with self._lock:
            h = self._live()
            key = self._new_key(fn)
            rc = _lib.lib().parley_node_post(h, _run_posted, key, _free)
            if rc != 0:  # a failed post takes nothing; its message is per thread
                self._drop_key(key)
                _lib.check(rc, None)

    def run_posted(self) -> int:
        """Runs what was posted so far, in order; returns how many ran."""
        ran = ctypes.c_size_t()
        self._call("node_run_posted", ctypes.byref(ran))
        return ran.value
