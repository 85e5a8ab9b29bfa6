"""9. Authorisation through the C API, generated: role x action.

The C API has no tokens: the host authenticated the user and opens a session
for it. What the node still decides is membership, so every role (none,
member, owner, removed) tries every session action (send, resume, pull,
typing) on a fresh group, and the outcome must follow one rule table: members
and owners may, the others get permission_denied and nothing changes. The
WebSocket and HTTP transports have the same matrix in tests/e2e/test_authz.py.
Then: a member removed (member_removed on every node) receives nothing sent
after the removal, on either node.
"""

from __future__ import annotations

import itertools
from typing import Dict, List

import parley
from loopback import Loopback

ROLES = ("none", "member", "owner", "removed")
ACTIONS = ("send", "resume", "pull", "typing")
ALLOWED = {"member", "owner"}  # for every session action
USERS = {"none": "out", "member": "mem", "owner": "own", "removed": "rem"}


def make_group(store: parley.Store, g: str) -> None:
    store.create_group(g, "own")
    store.join(g, "mem")
    store.join(g, "rem")
    store.leave(g, "rem")


def run_cell(lb: Loopback, session: int, g: str, action: str) -> List[dict]:
    frames: Dict[str, dict] = {
        "send": {"t": "send", "g": g, "cid": f"c-{session}", "c": "hi"},
        "resume": {"t": "resume", "g": g, "after": 0, "epoch": 0},
        "pull": {"t": "pull", "g": g, "after": 0, "limit": 10, "epoch": 0},
        "typing": {"t": "typing", "g": g},
    }
    lb.request("n1", session, rid=7, **frames[action])
    lb.run()
    return [e for e in lb.take("n1", session) if e.get("rid") == 7 or e.get("t") == "error"]


def test_9_1_every_role_and_action_through_the_c_api() -> None:
    store = parley.Store.memory()
    lb = Loopback(store, ["n1"])
    try:
        cells = list(itertools.product(ROLES, ACTIONS))
        bad: List[tuple] = []
        for n, (role, action) in enumerate(cells):
            g = f"cell-{n}"
            make_group(store, g)
            session = 100 + n
            lb.nodes["n1"].open_session(session, USERS[role])
            lb.run()
            lb.take("n1", session)
            head_before = len(store.history(g))
            answers = run_cell(lb, session, g, action)
            errors = [e for e in answers if e.get("t") == "error"]
            allowed = role in ALLOWED
            if allowed and errors:
                bad.append((role, action, "authorised failure", errors))
            if not allowed:
                if [e.get("name") for e in errors] != ["permission_denied"]:
                    bad.append((role, action, "not refused with permission_denied", answers))
                if [e for e in answers if e.get("t") != "error"]:
                    bad.append((role, action, "unauthorised success", answers))
                if len(store.history(g)) != head_before:
                    bad.append((role, action, "a refused request changed the history", store.history(g)))
            if allowed and action == "send":
                assert [e["t"] for e in answers] == ["ack"], answers
            lb.nodes["n1"].close_session(session)
            lb.run()
        print(f"C API authz: {len(cells)} cells, {len(bad)} wrong")
        assert bad == []
    finally:
        lb.close()
        store.close()


def test_9_2_a_removed_member_receives_nothing_after_its_removal() -> None:
    store = parley.Store.memory()
    lb = Loopback(store, ["n1", "n2"])
    try:
        store.create_group("room", "own")
        for u in ("near", "far", "stay"):
            store.join("room", u)
        lb.nodes["n1"].open_session(1, "own")
        lb.nodes["n1"].open_session(2, "near")
        lb.nodes["n2"].open_session(3, "far")
        lb.nodes["n2"].open_session(4, "stay")
        for node, s in (("n1", 1), ("n1", 2), ("n2", 3), ("n2", 4)):
            lb.request(node, s, t="resume", g="room", after=0, epoch=0)
        lb.run()
        for i in range(3):
            lb.request("n1", 1, t="send", g="room", cid=f"b{i}", c="before")
        lb.advance(100)
        for node, s in (("n1", 2), ("n2", 3)):
            assert [m["id"] for m in lb.take(node, s, "msg")] == [1, 2, 3]

        for u in ("near", "far"):
            store.leave("room", u)
            for node in lb.nodes.values():
                node.member_removed("room", u)
        for i in range(5):
            lb.request("n1", 1, t="send", g="room", cid=f"a{i}", c="after")
        lb.advance(2000)  # forwarding, head sync and catch-up all had their turn
        assert [m["id"] for m in lb.take("n2", 4, "msg")] == [1, 2, 3, 4, 5, 6, 7, 8]
        for node, s in (("n1", 2), ("n2", 3)):
            assert lb.take(node, s, "msg") == [], f"session {s} received messages after its removal"
    finally:
        lb.close()
        store.close()
