"""Authorisation matrix, generated: role x action x transport x token.

Roles of the acting user in a group: none (never a member), member, owner,
removed (joined, then removed by the owner). Actions: send, resume, pull,
typing (WebSocket); history, pull, presence, members, join, leave, group admin
(remove a member) (HTTP). Tokens: valid, expired, forged (signed with another
secret), another user's (a valid token of a user with another role: the
request acts as that user). The expected outcome of every cell comes from one
rule table (EXPECT) and the token's identity; every cell runs on a fresh group,
so a leave or a removal never leaks into the next cell. The C API dimension is
in bindings/python/tests/test_09_authz.py (the host authenticates there; there
are no tokens).

Then: a member removed by the owner receives nothing sent after the removal was
acknowledged, on the node it is connected to and through a second node.
"""

import asyncio
import base64
import hashlib
import hmac
import itertools
import time
import urllib.parse

import websockets

from harness import (ServerTestCase, Client, cluster_args, single_args, login, create_group, join_group,
                     http_request, gather_bounded)

SECRET = "e2e-secret"  # single_args / cluster_args pass it as --secret

ROLES = ("none", "member", "owner", "removed")
TOKENS = ("valid", "expired", "forged", "other")
WS_ACTIONS = ("send", "resume", "pull", "typing")
HTTP_ACTIONS = ("history", "pull", "presence", "members", "join", "leave", "admin")

# What each role may do; everything else must be refused with 403 (or 404
# where the user has nothing to act on: leaving a group one is not in).
ALLOWED = {
    "send": {"member", "owner"},
    "resume": {"member", "owner"},
    "pull": {"member", "owner"},
    "typing": {"member", "owner"},
    "history": {"member", "owner"},
    "presence": {"member", "owner"},
    "members": {"member", "owner"},
    "join": {"none", "member", "owner", "removed"},  # groups are open (docs/decisions.md)
    "leave": {"member", "owner"},
    "admin": {"owner"},
}
REFUSED_STATUS = {"leave": (404, "not_found")}  # the others: (403, "permission_denied")


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mint(user, expires_at_ms, secret=SECRET):
    """A token in the server's format (src/server/auth.cpp)."""
    body = f"v1.{b64url(user.encode())}.{b64url(str(expires_at_ms).encode())}"
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{b64url(mac)}"


def expected(role, action, token):
    """(ok, http status, error code) of one cell."""
    if token in ("expired", "forged"):
        return False, 401, "unauthenticated"
    if action in ALLOWED and role in ALLOWED[action]:
        return True, 200, None
    status, code = REFUSED_STATUS.get(action, (403, "permission_denied"))
    return False, status, code


class AuthzTest(ServerTestCase):

    def cell_group(self, server, n, owner_token, tokens):
        """A fresh group: owner, member `mem`, removed `rem`; `out` never joins."""
        g = f"authz-{n}"
        create_group(server, owner_token, g)
        join_group(server, tokens["mem"], g)
        join_group(server, tokens["rem"], g)
        r = http_request(server, "DELETE", f"/v1/groups/{g}/members/rem", token=owner_token)
        self.assertEqual(r.status, 200, f"owner removes rem from {g}: {r}")
        return g

    def actor(self, role, token_kind, users, tokens):
        """(user the token names, token) for a cell."""
        user = users[role]
        if token_kind == "valid":
            return user, tokens[user]
        if token_kind == "expired":
            return user, mint(user, int(time.time() * 1000) - 1000)
        if token_kind == "forged":
            return user, mint(user, int(time.time() * 1000) + 3_600_000, secret="not-the-secret")
        # another user's valid token: the request acts as that user
        other = {"none": "mem", "member": "out", "owner": "out", "removed": "own"}[role]
        return other, tokens[other]

    async def ws_cell(self, server, g, token, action):
        """Runs one WebSocket action. Returns (ok, code)."""
        c = Client("actor", token)
        try:
            await c.connect(server, resume=False)
        except websockets.exceptions.InvalidStatusCode as e:
            return False, e.status_code
        try:
            if action == "send":
                a = await c.request({"t": "send", "g": g, "cid": c.new_cid(), "c": "hi"})
                return (True, None) if a.get("t") == "ack" else (False, a.get("name"))
            if action == "resume":
                a = await c.request({"t": "resume", "g": g, "after": 0, "epoch": 0})
                return (True, None) if a.get("t") == "resumed" else (False, a.get("name"))
            if action == "pull":
                a = await c.request({"t": "pull", "g": g, "after": 0, "limit": 10, "epoch": 0})
                return (True, None) if a.get("t") == "pulled" else (False, a.get("name"))
            # typing has no answer when accepted: a refusal would arrive before the
            # answer to the next request on the same connection.
            await c.send_frame({"t": "typing", "g": g, "rid": 900})
            probe = await c.request({"t": "pull", "g": "no-such-group-xyz", "after": 0, "limit": 1})
            self.assertEqual(probe.get("name"), "not_found", probe)
            errors = [e for e in c.events if e.get("t") == "error" and e.get("rid") == 900]
            return (not errors), (errors[0]["name"] if errors else None)
        finally:
            await c.close()

    def http_cell(self, server, g, token, action):
        """Runs one HTTP action. Returns (status, error code or None)."""
        q = urllib.parse.quote(g, safe="")
        method, path = {
            "history": ("GET", f"/v1/groups/{q}/messages"),
            "pull": ("GET", f"/v1/groups/{q}/pull?after=0"),
            "presence": ("GET", f"/v1/groups/{q}/presence"),
            "members": ("GET", f"/v1/groups/{q}/members"),
            "join": ("POST", f"/v1/groups/{q}/join"),
            "leave": ("POST", f"/v1/groups/{q}/leave"),
            "admin": ("DELETE", f"/v1/groups/{q}/members/mem"),
        }[action]
        r = http_request(server, method, path, token=token)
        return r.status, (r.json.get("name") if r.status >= 400 and isinstance(r.json, dict) else None)

    async def test_matrix(self):
        server = self.start_server("node-1", single_args(self.tmp))
        users = {"none": "out", "member": "mem", "owner": "own", "removed": "rem"}
        tokens = {u: login(server, u) for u in users.values()}
        cells = list(itertools.product(ROLES, WS_ACTIONS, ["ws"], TOKENS)) + \
            list(itertools.product(ROLES, HTTP_ACTIONS, ["http"], TOKENS))
        unauthorised_successes, authorised_failures, wrong_errors = [], [], []
        for n, (role, action, transport, token_kind) in enumerate(cells):
            g = self.cell_group(server, n, tokens["own"], tokens)
            acting_user, token = self.actor(role, token_kind, users, tokens)
            acting_role = {v: k for k, v in users.items()}[acting_user]
            ok_expected, status_expected, code_expected = expected(acting_role, action, token_kind)
            if transport == "ws":
                ok, code = await self.ws_cell(server, g, token, action)
                if token_kind in ("expired", "forged"):
                    got_code = "unauthenticated" if code == 401 else code
                else:
                    got_code = code
            else:
                status, got_code = self.http_cell(server, g, token, action)
                ok = status == 200
                if not ok_expected and status != status_expected:
                    wrong_errors.append((role, action, transport, token_kind, status, got_code))
            cell = (role, action, transport, token_kind, got_code)
            if ok and not ok_expected:
                unauthorised_successes.append(cell)
            elif not ok and ok_expected:
                authorised_failures.append(cell)
            elif not ok and got_code != code_expected:
                wrong_errors.append(cell + (code_expected,))
        print(f"authz: {len(cells)} cells ({len(ROLES)} roles x {len(WS_ACTIONS)} WebSocket + "
              f"{len(HTTP_ACTIONS)} HTTP actions x {len(TOKENS)} tokens); "
              f"{len(unauthorised_successes)} unauthorised successes, "
              f"{len(authorised_failures)} authorised failures, {len(wrong_errors)} wrong errors")
        self.assertEqual(unauthorised_successes, [])
        self.assertEqual(authorised_failures, [])
        self.assertEqual(wrong_errors, [])

    async def test_removed_member_receives_nothing_after_the_removal_is_acknowledged(self):
        argsets, _ = cluster_args(2, self.tmp)
        nodes = [self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)]
        own, near, far = (login(nodes[0], u) for u in ("own", "near", "far"))
        create_group(nodes[0], own, "room")
        join_group(nodes[0], near, "room")
        join_group(nodes[1], far, "room")
        owner = Client("own", own)
        victims = {"near": Client("near", near), "far": Client("far", far)}
        await owner.connect(nodes[0])
        await victims["near"].connect(nodes[0])  # same node as the owner
        await victims["far"].connect(nodes[1])   # learns the removal from a peer
        for c in (owner, *victims.values()):
            self.assertEqual((await c.resume("room"))["t"], "resumed")
        for i in range(5):
            await owner.request({"t": "send", "g": "room", "cid": f"before-{i}", "c": "before"})
        await gather_bounded([c.wait_for(lambda c=c: c.last("room") == 5, 10, "5 before")
                              for c in victims.values()], 15, "victims have the first 5")

        for who in victims:
            r = http_request(nodes[0], "DELETE", f"/v1/groups/room/members/{who}", token=own)
            self.assertEqual(r.status, 200, r)
        # Acknowledged: from here on neither may receive anything of the group.
        for i in range(20):
            a = await owner.request({"t": "send", "g": "room", "cid": f"after-{i}", "c": "after"})
            self.assertEqual(a["t"], "ack", a)
        # A member that stayed sees all 25 (so the 20 did go out) ...
        stayer = Client("stay", login(nodes[1], "stay"))
        join_group(nodes[1], stayer.token, "room")
        await stayer.connect(nodes[1])
        await stayer.resume("room")
        await stayer.wait_for(lambda: stayer.last("room") == 25, 10, "stayer has all 25")
        # ... while the removed ones got none of them, live or by resuming.
        await asyncio.sleep(0)  # let already-received frames be dispatched
        for who, c in victims.items():
            self.assertEqual(c.last("room"), 5, f"{who} received messages after its removal")
            a = await c.request({"t": "resume", "g": "room", "after": 5, "epoch": 0})
            self.assertEqual(a.get("name"), "permission_denied", a)
            a = await c.request({"t": "pull", "g": "room", "after": 5, "limit": 100, "epoch": 0})
            self.assertEqual(a.get("name"), "permission_denied", a)
            self.assertEqual(c.last("room"), 5, f"{who} received messages after its removal")
        for c in (owner, stayer, *victims.values()):
            self.assertEqual(c.violations, [])
            await c.close()
