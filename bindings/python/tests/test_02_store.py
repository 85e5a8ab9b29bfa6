"""2. Stores and the admin helpers: groups, members, history, errors, close."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import parley
from loopback import Loopback


def test_2_1_groups_and_members() -> None:
    with parley.Store.memory() as store:
        store.create_group("general", "alice")
        with pytest.raises(parley.AlreadyExists) as info:
            store.create_group("general", "bob")
        assert info.value.code == 4 and info.value.name == "already_exists"
        assert "general" in info.value.message
        store.join("general", "bob")
        store.join("general", "bob")  # a member already is left as is
        store.leave("general", "bob")
        with pytest.raises(parley.NotFound):
            store.leave("general", "bob")
        with pytest.raises(parley.NotFound):
            store.join("nowhere", "bob")


def test_2_2_history_of_an_empty_and_unknown_group() -> None:
    with parley.Store.memory() as store:
        store.create_group("g", "alice")
        assert store.history("g") == []
        assert store.history("g", as_user="alice") == []
        with pytest.raises(parley.PermissionDenied):
            store.history("g", as_user="mallory")
        with pytest.raises(parley.NotFound):
            store.history("nowhere")
        with pytest.raises(parley.InvalidArgument):
            store.history("g", limit=0)
        with pytest.raises(parley.InvalidArgument):
            store.history("g", after=-1)  # refused by Python: ctypes would wrap it


def send_messages(store: parley.Store, texts: list) -> None:
    """Appends messages through a node (the store has no send of its own)."""
    cluster = Loopback(store, ["n1"])
    try:
        cluster.nodes["n1"].open_session(1, "alice")
        for i, text in enumerate(texts):
            cluster.request("n1", 1, t="send", rid=i + 1, g="g", cid=f"c{i}", c=text)
        cluster.run()
        acks = cluster.take("n1", 1, "ack")
        assert len(acks) == len(texts), acks
    finally:
        cluster.close()


def test_2_3_history_copies_messages_out() -> None:
    with parley.Store.memory() as store:
        store.create_group("g", "alice")
        texts = ["hello", "wörld ✓", json.dumps({"k": [1, 2]})]
        send_messages(store, texts)
        messages = store.history("g")
        assert [m.text for m in messages] == texts
        assert [m.msg_id for m in messages] == [1, 2, 3]
        assert [m.prev_msg_id for m in messages] == [0, 1, 2]
        first = messages[0]
        assert isinstance(first, parley.Message)
        assert first.group_id == "g" and first.user_id == "alice" and first.client_msg_id == "c0"
        assert first.contents == b"hello" and first.epoch == 1 and first.timestamp_ms > 0
        assert [m.msg_id for m in store.history("g", after=1, limit=1)] == [2]
        assert store.history("g", after=3) == []


def test_2_4_sqlite_store_persists(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    with parley.Store.sqlite(path) as store:
        store.create_group("g", "alice")
        send_messages(store, ["kept"])
    with parley.Store.sqlite(str(path), sync_normal=True) as store:
        assert [m.text for m in store.history("g")] == ["kept"]
        with pytest.raises(parley.AlreadyExists):
            store.create_group("g", "alice")


def test_2_5_sqlite_store_that_cannot_open(tmp_path: Path) -> None:
    # A file that cannot be opened is Unavailable (parley.h).
    with pytest.raises(parley.Unavailable) as info:
        parley.Store.sqlite(tmp_path / "no" / "such" / "dir" / "x.db")
    assert "x.db" in info.value.message  # the library says why


def test_2_6_bad_ids_are_refused() -> None:
    with parley.Store.memory() as store:
        with pytest.raises(parley.InvalidArgument):
            store.create_group("", "alice")
        with pytest.raises(parley.InvalidArgument):
            store.create_group("a\0b", "alice")  # refused by Python: C would cut at the NUL
        with pytest.raises(parley.TooLarge):
            store.create_group("g" * 129, "alice")
        with pytest.raises(TypeError):
            store.create_group(42, "alice")  # type: ignore[arg-type]


def test_2_7_call_after_close_raises_closed() -> None:
    store = parley.Store.memory()
    store.close()
    store.close()  # safe twice
    assert store.closed
    with pytest.raises(parley.Closed) as info:
        store.create_group("g", "alice")
    assert info.value.code == 13 and "Store is closed" in str(info.value)
    with pytest.raises(parley.Closed):
        store.history("g")
    with pytest.raises(parley.Closed):
        with store:
            pass


def test_2_8_group_kinds_settings_invites_and_discovery() -> None:
    with parley.Store.memory() as store:
        store.create_group("club", "erin", kind="private", title="The Club", topic="members only", member_limit=3)
        store.create_group("club-open", "erin")
        info = store.group_info("club")
        assert info == parley.GroupInfo("club", "private", "The Club", "members only", 3, 1)
        with pytest.raises(parley.PermissionDenied) as denied:
            store.ask_to_join("club", "frank")
        assert "private" in denied.value.message
        store.invite("club", "frank")
        store.ask_to_join("club", "frank")
        store.join("club", "gus")  # the host's join needs no invite ...
        with pytest.raises(parley.LimitExceeded):
            store.join("club", "hal")  # ... but keeps the limit
        changed = store.set_group_settings("club", kind="public", topic="now open")
        assert (changed.kind, changed.title, changed.topic, changed.members) == ("public", "The Club", "now open", 3)
        with pytest.raises(parley.InvalidArgument):
            store.set_group_settings("club", kind="secret")  # type: ignore[arg-type]
        with pytest.raises(parley.TooLarge):
            store.set_group_settings("club", title="t" * 201)
        assert store.group_info("club") == changed
        page = store.public_groups("club", limit=1)
        assert [g.group_id for g in page] == ["club"]
        assert [g.group_id for g in store.public_groups("club", after="club")] == ["club-open"]
        assert store.public_groups("zzz") == []
        with pytest.raises(parley.NotFound):
            store.group_info("nope")
        with pytest.raises(parley.InvalidArgument):
            store.public_groups(limit=0)
