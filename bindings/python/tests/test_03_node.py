"""3. Embedding nodes: sessions and deliveries, two nodes over a Python
loopback transport, callbacks, errors, call-after-close."""

from __future__ import annotations

import gc
import json
import weakref
from typing import Any, Iterator, List

import pytest

import parley
from loopback import Loopback


@pytest.fixture
def store() -> Iterator[parley.Store]:
    with parley.Store.memory() as s:
        s.create_group("g", "alice")
        s.join("g", "bob")
        s.join("g", "carol")
        yield s


@pytest.fixture
def cluster(store: parley.Store) -> Iterator[Loopback]:
    c = Loopback(store, ["n1", "n2"])
    yield c
    c.close()


def test_3_1_one_node_delivers_to_its_sessions(store: parley.Store) -> None:
    c = Loopback(store, ["n1"])
    try:
        n1 = c.nodes["n1"]
        n1.open_session(1, "alice")
        n1.open_session(2, "bob")
        assert n1.session_count == 2
        c.request("n1", 2, t="resume", rid=7, g="g", after=0, epoch=0)
        c.run()
        assert c.take("n1", 2) == [{"t": "resumed", "rid": 7, "g": "g", "head": 0, "epoch": 0, "mode": "push"}]
        c.request("n1", 1, t="send", rid=1, g="g", cid="a1", c="hello")
        c.run()
        [ack] = c.take("n1", 1)
        assert ack["t"] == "ack" and ack["id"] == 1 and ack["ts"] == c.now and not ack["dup"]
        [msg] = c.take("n1", 2)
        assert (msg["t"], msg["u"], msg["c"], msg["id"], msg["prev"]) == ("msg", "alice", "hello", 1, 0)
        n1.close_session(2)
        assert n1.session_count == 1
    finally:
        c.close()


def test_3_2_two_nodes_over_the_loopback_transport(cluster: Loopback) -> None:
    n1, n2 = cluster.nodes["n1"], cluster.nodes["n2"]
    n1.open_session(1, "alice")
    n2.open_session(1, "bob")
    cluster.request("n2", 1, t="resume", rid=1, g="g", after=0, epoch=0)
    cluster.run()
    assert [e["t"] for e in cluster.take("n2", 1)] == ["resumed"]
    for i in range(5):
        cluster.request("n1", 1, t="send", rid=i + 1, g="g", cid=f"a{i}", c=f"m{i}")
    cluster.advance(200)
    assert len(cluster.take("n1", 1, "ack")) == 5
    got = cluster.take("n2", 1, "msg")
    assert [(m["id"], m["c"], m["u"]) for m in got] == [(i + 1, f"m{i}", "alice") for i in range(5)]
    assert cluster.batches >= 1
    # and back
    cluster.request("n2", 1, t="send", rid=9, g="g", cid="b1", c="hi alice")
    cluster.request("n1", 1, t="resume", rid=2, g="g", after=5, epoch=1)
    cluster.advance(200)
    assert [m["c"] for m in cluster.take("n1", 1, "msg")] == ["hi alice"]


def test_3_3_offline_members_are_notified(cluster: Loopback) -> None:
    cluster.nodes["n1"].open_session(1, "alice")
    cluster.request("n1", 1, t="send", rid=1, g="g", cid="x", c="are you there?")
    cluster.advance(100)
    users = sorted(n.user_id for n in cluster.notifications)
    assert users == ["bob", "carol"]
    n = cluster.notifications[0]
    assert isinstance(n, parley.Notification)
    assert (n.group_id, n.sender_id, n.msg_id, n.epoch, n.preview, n.reason) == (
        "g", "alice", 1, 1, "are you there?", "offline")


def test_3_4_a_bad_frame_is_answered_not_raised(cluster: Loopback) -> None:
    n1 = cluster.nodes["n1"]
    n1.open_session(1, "alice")
    n1.client_request(1, b"{not json")
    cluster.request("n1", 1, t="send", rid=3, g="nowhere", cid="c", c="x")
    cluster.request("n1", 1, t="send", rid=4, g="g", cid="c", c="x" * 70000)
    cluster.run()
    errors = cluster.take("n1", 1, "error")
    assert [(e["rid"], e["name"]) for e in errors] == [
        (0, "invalid_argument"), (3, "not_found"), (4, "too_large")]


def test_3_5_errors_map_to_exceptions(store: parley.Store, cluster: Loopback) -> None:
    n1 = cluster.nodes["n1"]
    n1.open_session(1, "alice")
    with pytest.raises(parley.AlreadyExists):
        n1.open_session(1, "alice")
    with pytest.raises(parley.NotFound) as info:
        n1.client_request(99, b"{}")
    assert "99" in info.value.message
    with pytest.raises(parley.InvalidArgument):
        n1.peer_batch(b"\x00garbage")
    # [1, "n9", [[0, "general", 1, 0, 5, "alice", bin b"\xff", "", 1]]]: contents are UTF-8 text
    with pytest.raises(parley.InvalidArgument) as info:
        n1.peer_batch(b"\x93\x01\xa2n9\x91\x99\x00\xa7general\x01\x00\x05\xa5alice\xc4\x01\xff\xa0\x01")
    assert info.value.message.endswith("contents is not UTF-8")
    with pytest.raises(parley.TooLarge):  # [1, <129 x "n">, []]: as from a client
        n1.peer_batch(b"\x93\x01\xd9\x81" + b"n" * 129 + b"\x90")
    with pytest.raises(parley.InvalidArgument):
        n1.open_session(2, "")
    with pytest.raises(parley.InvalidArgument):
        n1.open_session(-1, "alice")  # Python refuses what ctypes would wrap
    # not started yet
    with parley.Node(store, node_id="n3") as n3:
        with pytest.raises(parley.InvalidArgument) as info:
            n3.open_session(1, "alice")
        assert "start" in info.value.message
        n3.start()
        with pytest.raises(parley.InvalidArgument):
            n3.start()
    # options
    with pytest.raises(parley.InvalidArgument):
        parley.Node(store, codec="xml")
    with pytest.raises(parley.InvalidArgument):
        parley.Node(store, pull_policy=(10, 1.0, 2.0))  # enter must exceed exit
    with pytest.raises(parley.InvalidArgument):
        parley.Node(store, node_id="")
    with pytest.raises(TypeError):
        parley.Node(store, no_such_option=1)
    with pytest.raises(TypeError):
        parley.Node(store, on_deliver="not callable")  # type: ignore[arg-type]
    opts = parley.NodeOptions(node_id="n4", codec="json", forward="fixed", forward_period_ms=20,
                              max_contents_bytes=1000, session_queue_bytes=4096, seed=7)
    with parley.Node(store, opts, node_id="n5") as n5:
        assert n5.node_id == "n5" and n5.options.forward == "fixed"


def test_3_6_a_callback_exception_is_raised_by_the_call_that_ran_it(cluster: Loopback) -> None:
    n1 = cluster.nodes["n1"]
    n1.open_session(1, "alice")

    def deliver(session: int, frames: List[bytes]) -> None:
        raise RuntimeError("deliver broke")

    n1.on_deliver = deliver
    cluster.request("n1", 1, t="send", rid=1, g="g", cid="a", c="x")
    with pytest.raises(RuntimeError, match="deliver broke"):
        n1.flush()
    n1.flush()  # raised once; the node goes on
    n1.on_deliver = None
    assert n1.on_deliver is None
    cluster.request("n1", 1, t="send", rid=2, g="g", cid="b", c="y")
    n1.flush()  # frames dropped without a deliver callback


def test_3_7_a_callback_must_not_call_its_node(cluster: Loopback) -> None:
    n1 = cluster.nodes["n1"]
    n1.open_session(1, "alice")
    seen: List[Any] = []

    def deliver(session: int, frames: List[bytes]) -> None:
        try:
            n1.close()  # refused from a callback: the node stays alive
        except parley.InvalidArgument as e:
            seen.append(e)
        n1.flush()  # raises, and the exception reaches the outer call

    n1.on_deliver = deliver
    cluster.request("n1", 1, t="send", rid=1, g="g", cid="a", c="x")
    with pytest.raises(parley.InvalidArgument, match="callback"):
        n1.flush()
    assert len(seen) == 1 and "own callbacks" in seen[0].message and not n1.closed
    assert n1.session_count == 1


class Counter:
    """A callable we can hold a weak reference to."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any) -> None:
        self.calls += 1


def test_3_8_callables_are_released_when_replaced_and_at_close(store: parley.Store) -> None:
    from parley import node as node_module

    first, second = Counter(), Counter()
    node = parley.Node(store, node_id="n9", on_timer=first)
    node.start()
    assert first.calls == 1  # start arms the timer
    first_ref = weakref.ref(first)
    del first
    node.on_timer = second
    gc.collect()
    assert first_ref() is None  # the C side freed it on replace
    node.timer_fired()
    assert second.calls >= 1
    keys = set(node._slots)
    assert keys and all(k in node_module._owners for k in keys)
    second_ref = weakref.ref(second)
    del second
    node.close()
    gc.collect()
    assert second_ref() is None
    assert not node._slots and not (keys & set(node_module._owners))


def test_3_9_call_after_close_raises_closed_in_python(store: parley.Store) -> None:
    node = parley.Node(store, node_id="n1", codec="json")
    node.start()
    node.close()
    node.close()  # safe twice
    for call in (
        lambda: node.open_session(1, "alice"),
        lambda: node.flush(),
        lambda: node.session_count,
        lambda: node.post(lambda n: None),
        lambda: node.run_posted(),
        lambda: setattr(node, "on_deliver", print),
    ):
        with pytest.raises(parley.Closed) as info:
            call()
        assert str(info.value) == "closed: this Node is closed"  # Python's message, not the library's


def test_3_10_node_keeps_its_store_alive(store: parley.Store) -> None:
    s = parley.Store.memory()
    s.create_group("h", "alice")
    c = Loopback(s, ["n1"])
    s.close()
    c.nodes["n1"].open_session(1, "alice")
    c.request("n1", 1, t="send", rid=1, g="h", cid="a", c="still here")
    c.run()
    assert [e["t"] for e in c.take("n1", 1)] == ["ack"]
    c.close()


def test_3_11_a_slow_session_is_closed_with_backpressure(store: parley.Store) -> None:
    c = Loopback(store, ["n1"], session_queue_bytes=2000)
    try:
        n1 = c.nodes["n1"]
        n1.open_session(1, "alice")
        n1.open_session(2, "bob")
        c.request("n1", 2, t="resume", rid=1, g="g", after=0, epoch=0)
        for i in range(40):
            c.request("n1", 1, t="send", rid=i, g="g", cid=f"c{i}", c="x" * 100)
            c.run()
            n1.session_drained(1, 10_000)  # alice reads, bob does not
        assert [(nid, s, type(e)) for nid, s, e in c.closed] == [("n1", 2, parley.Backpressure)]
        assert n1.session_count == 1
        n1.close_session(2)  # already forgotten by the node: harmless
    finally:
        c.close()


def test_3_12_close_session_with_an_error(cluster: Loopback) -> None:
    n1 = cluster.nodes["n1"]
    n1.open_session(1, "bob")
    cluster.request("n1", 1, t="resume", rid=1, g="g", after=0, epoch=0)
    cluster.run()
    n1.close_session(1, parley.Unavailable("connection reset"))
    assert n1.session_count == 0
    n1.open_session(2, "bob")
    cluster.run()
    # the user's next session hears why the previous one failed
    events = cluster.take("n1", 2)
    assert any(e["t"] == "error" and "connection reset" in e["msg"] for e in events), events
    with pytest.raises(parley.InvalidArgument):
        n1.close_session(2, 99)


def test_3_13_the_clock_callback_drives_time(cluster: Loopback) -> None:
    n1 = cluster.nodes["n1"]
    n1.open_session(1, "alice")
    cluster.now = 1_800_000_000_000
    cluster.request("n1", 1, t="send", rid=1, g="g", cid="a", c="x")
    cluster.run()
    [ack] = cluster.take("n1", 1, "ack")
    assert ack["ts"] == 1_800_000_000_000
    assert json.loads(json.dumps(ack))  # plain JSON events


def test_3_14_a_failed_peer_call_is_retried(cluster: Loopback) -> None:
    n1, n2 = cluster.nodes["n1"], cluster.nodes["n2"]
    n1.open_session(1, "alice")
    n2.open_session(1, "bob")
    cluster.request("n2", 1, t="resume", rid=1, g="g", after=0, epoch=0)
    cluster.run()
    cluster.take("n2", 1)
    cluster.down.add("n2")
    cluster.request("n1", 1, t="send", rid=1, g="g", cid="a", c="through the outage")
    cluster.advance(100)
    assert cluster.take("n2", 1, "msg") == []
    cluster.down.clear()
    cluster.advance(10_000)
    assert [m["c"] for m in cluster.take("n2", 1, "msg")] == ["through the outage"]


def test_3_15_read_states_count_unread_and_a_read_moves_forward_only(store: parley.Store) -> None:
    c = Loopback(store, ["n1"])
    try:
        n1 = c.nodes["n1"]
        n1.open_session(1, "bob")
        n1.open_session(2, "alice")
        c.request("n1", 1, t="send", rid=1, g="g", cid="b1", c="hi")
        c.request("n1", 1, t="send", rid=2, g="g", cid="b2", c="@alice", mn=["alice"])
        c.run()
        [g] = store.read_states("alice")
        assert (g.group_id, g.epoch, g.msg_id, g.head, g.unread, g.mentions) == ("g", 1, 0, 2, 2, 1)
        assert store.read_states("bob")[0].unread == 0  # his own
        # Through the session (the client protocol), then through the store.
        c.request("n1", 2, t="read", rid=3, g="g", id=1, epoch=1)
        c.run()
        [ev] = c.take("n1", 2, "read")
        assert (ev["id"], ev["unread"], ev["mn"]) == (1, 1, 1)
        s = store.mark_read("g", "alice", epoch=1, msg_id=99)
        assert (s.msg_id, s.unread, s.mentions) == (2, 0, 0)
        assert store.mark_read("g", "alice", epoch=1, msg_id=1).msg_id == 2  # never back
        with pytest.raises(parley.EpochMismatch):
            store.mark_read("g", "alice", epoch=2, msg_id=1)
        with pytest.raises(parley.NotFound):
            store.mark_read("g", "mallory", epoch=1, msg_id=1)
        assert store.read_states("nobody") == []
    finally:
        c.close()


def test_3_16_notification_levels_decide_who_is_notified(store: parley.Store) -> None:
    c = Loopback(store, ["n1"])
    try:
        assert store.notify_level("g", "bob") == "all"
        store.set_notify_level("g", "bob", "mentions")
        store.set_notify_level("g", "carol", "none")
        assert (store.notify_level("g", "bob"), store.notify_level("g", "carol")) == ("mentions", "none")
        with pytest.raises(ValueError):
            store.set_notify_level("g", "bob", "loud")  # type: ignore[arg-type]
        with pytest.raises(parley.NotFound):
            store.set_notify_level("g", "mallory", "none")
        with pytest.raises(parley.NotFound):
            store.notify_level("g", "mallory")
        c.nodes["n1"].open_session(1, "alice")
        c.request("n1", 1, t="send", rid=1, g="g", cid="a1", c="plain")
        c.request("n1", 1, t="send", rid=2, g="g", cid="a2", c="@bob", mn=["bob"])
        c.advance(100)
        assert [(n.user_id, n.msg_id, n.mentioned) for n in c.notifications] == [("bob", 2, True)]
    finally:
        c.close()


def test_3_17_a_recorded_membership_change_is_pushed_like_a_message(store: parley.Store) -> None:
    c = Loopback(store, ["n1"])
    try:
        n1 = c.nodes["n1"]
        n1.open_session(1, "alice")
        c.request("n1", 1, t="resume", rid=1, g="g", after=0, epoch=0)
        c.run()
        store.join("g", "dave")
        n1.record_membership("g", "join", "dave")
        store.leave("g", "carol")
        n1.record_membership("g", "removed", "alice", "carol")
        c.run()
        got = [(m["id"], m["k"], m["u"], m["c"]) for m in c.take("n1", 1, "msg")]
        assert got == [(1, "join", "dave", ""), (2, "removed", "alice", "carol")]
        with pytest.raises(ValueError):
            n1.record_membership("g", "created", "dave")  # type: ignore[arg-type]
        with pytest.raises(parley.InvalidArgument):
            n1.record_membership("g", "removed", "alice")  # whom?
    finally:
        c.close()


def test_3_18_entries_carry_every_field_and_fold_into_their_messages(store: parley.Store) -> None:
    c = Loopback(store, ["n1"])
    try:
        c.nodes["n1"].open_session(1, "alice")
        c.nodes["n1"].open_session(2, "bob")
        c.request("n1", 1, t="send", rid=1, g="g", cid="a1", c="hello")
        c.run()
        c.request("n1", 1, t="edit", rid=2, g="g", cid="a2", to=1, c="hello!")
        c.request("n1", 2, t="react", rid=3, g="g", cid="b1", to=1, c="👍")
        c.request("n1", 2, t="send", rid=4, g="g", cid="b2", c="@alice hi", re=1, mn=["alice"], meta={"x": [1]})
        c.run()
        page = store.entries("g", as_user="bob")
        assert (page.epoch, page.head, page.to) == (1, 4, 4)
        assert [e.kind for e in page.entries] == ["message", "edit", "reaction", "message"]
        assert (page.entries[1].target, page.entries[1].message.text) == (1, "hello!")
        answer = page.entries[3]
        assert (answer.reply_to, answer.mentions, answer.meta) == (1, ["alice"], {"x": [1]})
        assert answer.reactions == [] and answer.edited == 0
        folded = store.entries("g", as_user="bob", fold=True)
        assert [e.message.msg_id for e in folded.entries] == [1, 4]
        first = folded.entries[0]
        assert (first.message.text, first.edited, first.replies) == ("hello!", 2, 1)
        assert first.reactions == [parley.Reaction("👍", 1, True)]
        assert store.entries("g", as_user="alice", fold=True).entries[0].reactions[0].mine is False
        part = store.entries("g", after=1, limit=2, fold=True)
        assert (part.to, part.entries) == (3, [])
        with pytest.raises(parley.PermissionDenied):
            store.entries("g", as_user="mallory", fold=True)
        with pytest.raises(parley.InvalidArgument):
            store.entries("g", limit=0)
    finally:
        c.close()


def test_3_19_a_system_notice_is_pushed_like_a_message_and_stored_once(store: parley.Store) -> None:
    c = Loopback(store, ["n1"])
    try:
        n1 = c.nodes["n1"]
        n1.open_session(1, "alice")
        c.request("n1", 1, t="resume", rid=1, g="g", after=0, epoch=0)
        c.run()
        n1.record_system("g", "game", "alice won", cid="m1", meta={"score": [3, 1]})
        n1.record_system("g", "game", "alice won", cid="m1", meta={"score": [3, 1]})
        c.run()
        got = [(m["id"], m["k"], m["u"], m["c"], m["meta"]) for m in c.take("n1", 1, "msg")]
        assert got == [(1, "system", "game", "alice won", {"score": [3, 1]})]
        assert [e.kind for e in store.entries("g").entries] == ["system"]
        with pytest.raises(parley.InvalidArgument):
            n1.record_system("g", "game", "")
    finally:
        c.close()
