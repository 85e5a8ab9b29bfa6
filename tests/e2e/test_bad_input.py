"""e. Bad input: each gets its documented error, changes nothing (checked by reading
the history afterwards) and, where the spec says so, leaves the connection usable.
The server never answers 500 and stays up (/healthz after each)."""

import asyncio
import base64
import json
import os
import shutil
import signal
import tempfile
import time
import unittest
import urllib.parse

import websockets

from harness import (Server, Client, RawWs, HOST, quiet_loop, single_args, free_port, login, create_group,
                     join_group, history, check_log, http_request, raw_http, status_of,
                     INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, TOO_LARGE, EPOCH_MISMATCH,
                     UNAUTHENTICATED, CODE_NAMES)

MAX_CONTENTS = 1000
MAX_FRAME = 16384
CLUSTER_SECRET = "e2e-cluster-secret"


class BadInputTest(unittest.IsolatedAsyncioTestCase):
    """One server for the whole module; every test leaves it as it found it."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="parley-e2e-bad-")
        cls.peer_port = free_port()
        cls.server = Server(cls.tmp, "node-1", single_args(cls.tmp, extra=[
            "--max-contents", str(MAX_CONTENTS), "--max-frame", str(MAX_FRAME),
            "--peer-listen", f"{HOST}:{cls.peer_port}", "--cluster-secret", CLUSTER_SECRET])).start()
        s = cls.server
        cls.tokens = {u: login(s, u) for u in ("alice", "bob", "carol")}
        create_group(s, cls.tokens["alice"], "g")
        create_group(s, cls.tokens["alice"], "g2")
        join_group(s, cls.tokens["carol"], "g")
        # bob is a member of nothing.
        cls.failed = False

    @classmethod
    def tearDownClass(cls):
        crashed = cls.server.proc.poll()
        rc = cls.server.stop(signal.SIGTERM, 10)
        if crashed is not None or cls.failed or os.environ.get("PARLEY_E2E_VERBOSE"):
            print("\n" + cls.server.log_tail())
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert crashed is None, f"server exited during the tests (rc {crashed})"
        assert rc == 0, f"SIGTERM: exit code {rc}"

    async def asyncSetUp(self):
        quiet_loop()
        self.heads = await self.heads_now()
        self.alice = Client("alice", self.tokens["alice"])
        await self.alice.connect(self.server)
        await self.alice.resume("g")

    async def asyncTearDown(self):
        await self.alice.close()
        outcome = getattr(self, "_outcome", None)
        if outcome is not None and not outcome.success:
            type(self).failed = True

    async def heads_now(self):
        out = {}
        for g in ("g", "g2"):
            ans, msgs = await asyncio.to_thread(history, self.server, self.tokens["alice"], g)
            check_log(self, g, msgs, ans["head"])
            out[g] = (ans["head"], [(m["id"], m["u"], m["c"], m["cid"]) for m in msgs])
        return out

    async def assert_unchanged(self, plus=None):
        """History of g and g2 is as at the start, plus the messages in `plus` (g -> count)."""
        now = await self.heads_now()
        for g, (head, msgs) in self.heads.items():
            extra = (plus or {}).get(g, 0)
            self.assertEqual(now[g][0], head + extra, f"{g}: head moved")
            self.assertEqual(now[g][1][:len(msgs)], msgs, f"{g}: history changed")
        self.heads = now

    def assert_healthy(self, what=""):
        self.assertTrue(self.server.running(), f"server died {what}")
        r = self.server.healthz()
        self.assertEqual((r.status, (r.json or {}).get("status")), (200, "ok"), f"/healthz after {what}: {r}")

    def assert_error(self, f, code, what, rid=None):
        self.assertIsNotNone(f, f"{what}: no answer")
        self.assertEqual(f.get("t"), "error", f"{what}: {f}")
        self.assertEqual((f.get("code"), f.get("name")), (code, CODE_NAMES[code]), f"{what}: {f}")
        self.assertIsInstance(f.get("msg"), str, f"{what}: {f}")
        if rid is not None:
            self.assertEqual(f.get("rid"), rid, f"{what}: rid not echoed: {f}")

    def assert_http_error(self, r, status, code, what):
        self.assertEqual(r.status, status, f"{what}: {r}")
        self.assertIsInstance(r.json, dict, f"{what}: body is not JSON: {r}")
        self.assertEqual((r.json.get("code"), r.json.get("name")), (code, CODE_NAMES[code]), f"{what}: {r}")

    async def next_event(self, client, since, timeout=5.0, what="an answer"):
        """The first frame other than msg/presence received after index `since` of events."""
        def found():
            return [e for e in client.events[since:] if e["t"] != "presence"]
        await client.wait_for(lambda: found() or not client.open, timeout, what)
        got = found()
        self.assertTrue(got, f"connection closed ({client.close_code}) instead of {what}")
        return got[0]

    async def raw_frame(self, client, text, what):
        since = len(client.events)
        await client.send_frame(text)
        return await self.next_event(client, since, what=what)

    async def usable(self, client, group="g"):
        """A valid send on the same connection is acknowledged with the next id."""
        fut = await client.send(group, "still usable")
        ack = await asyncio.wait_for(fut, 5)
        self.assertEqual(ack.get("t"), "ack", ack)
        self.assertEqual(ack["id"], self.heads[group][0] + 1, ack)
        await self.assert_unchanged({group: 1})

    # -- frames

    async def test_01_malformed_frames(self):
        a = self.alice
        cases = [
            ("malformed JSON", '{"t":"send","g":"g",', None),
            ("not JSON", "hello there", None),
            ("empty frame", "", None),
            ("JSON array", '[{"t":"send","g":"g","cid":"x","c":"y"}]', None),
            ("JSON string", '"send"', None),
            ("JSON number", "42", None),
            ("JSON null", "null", None),
            ("unknown type", '{"t":"shout","rid":11,"g":"g"}', 11),
            ("missing t", '{"rid":12,"g":"g","cid":"x","c":"y"}', 12),
            ("send without c", '{"t":"send","rid":13,"g":"g","cid":"m13"}', 13),
            ("send without g", '{"t":"send","rid":14,"cid":"m14","c":"y"}', 14),
            ("resume without g", '{"t":"resume","rid":15,"after":0,"epoch":0}', 15),
            ("pull without g", '{"t":"pull","rid":16,"after":0}', 16),
            ("c is a number", '{"t":"send","rid":17,"g":"g","cid":"m17","c":5}', 17),
            ("g is a number", '{"t":"send","rid":18,"g":7,"cid":"m18","c":"y"}', 18),
            ("cid is a number", '{"t":"send","rid":19,"g":"g","cid":19,"c":"y"}', 19),
            ("t is a number", '{"t":1,"rid":20}', 20),
            ("after is a string", '{"t":"resume","rid":21,"g":"g","after":"0","epoch":0}', 21),
            ("after is negative", '{"t":"resume","rid":22,"g":"g","after":-1,"epoch":0}', 22),
            ("limit is a string", '{"t":"pull","rid":23,"g":"g","after":0,"limit":"9","epoch":1}', 23),
            ("limit 0", '{"t":"pull","rid":24,"g":"g","after":0,"limit":0,"epoch":1}', 24),
            ("limit 1001", '{"t":"pull","rid":25,"g":"g","after":0,"limit":1001,"epoch":1}', 25),
            ("presence status unknown", '{"t":"presence","rid":26,"status":"busy"}', 26),
            ("presence sub is a string", '{"t":"presence","rid":27,"status":"away","sub":"yes"}', 27),
            ("control character in cid", '{"t":"send","rid":28,"g":"g","cid":"a\\u0001b","c":"y"}', 28),
            ("empty group id", '{"t":"send","rid":29,"g":"","cid":"m29","c":"y"}', 29),
            ("rid is a string", '{"t":"send","rid":"r","g":"g","cid":"m32","c":"y"}', None),
            ("send is an array", '{"t":"send","rid":33,"g":["g"],"cid":"m33","c":"y"}', 33),
            ("contents is an object", '{"t":"send","rid":34,"g":"g","cid":"m34","c":{"a":1}}', 34),
            ("unsub without g", '{"t":"unsub","rid":35}', 35),
        ]
        for what, text, rid in cases:
            with self.subTest(what):
                f = await self.raw_frame(a, text, what)
                self.assert_error(f, INVALID_ARGUMENT, what)
                self.assertTrue(a.open, f"{what}: connection closed")
        # Ids over 128 bytes: too_large (docs/protocol.md 2.3).
        for what, frame in [("group id of 129 bytes", {"g": "x" * 129, "cid": "m30"}),
                            ("cid of 129 bytes", {"g": "g", "cid": "c" * 129})]:
            with self.subTest(what):
                f = await self.raw_frame(a, json.dumps(dict(frame, t="send", rid=30, c="y")), what)
                self.assert_error(f, TOO_LARGE, what)
        self.assertTrue(a.open)
        await self.assert_unchanged()
        self.assertEqual(a.violations, [])
        await self.usable(a)
        # Unknown keys are ignored.
        f = await self.raw_frame(a, json.dumps({"t": "send", "rid": 99, "g": "g", "cid": "unknown-keys",
                                                "c": "ok", "zzz": [1, {"y": 2}]}), "send with unknown keys")
        self.assertEqual((f["t"], f["rid"], f["id"]), ("ack", 99, self.heads["g"][0] + 1), f)
        await self.assert_unchanged({"g": 1})
        self.assert_healthy("malformed frames")

    async def test_01b_rid_echoed_in_errors_of_invalid_frames(self):
        """docs/protocol.md 2: every request may carry rid, echoed in its answer or error;
        a frame that is an object with a valid rid but a bad or missing field is still
        answered with that rid."""
        a = self.alice
        cases = [("unknown type", '{"t":"shout","rid":11,"g":"g"}'),
                 ("send without c", '{"t":"send","rid":12,"g":"g","cid":"m13"}'),
                 ("c is a number", '{"t":"send","rid":13,"g":"g","cid":"m17","c":5}'),
                 ("pull limit 0", '{"t":"pull","rid":14,"g":"g","after":0,"limit":0,"epoch":1}'),
                 ("presence status unknown", '{"t":"presence","rid":15,"status":"busy"}'),
                 ("frame over the codec limit", json.dumps({"t": "send", "rid": 16, "g": "g", "cid": "big",
                                                           "c": "b" * (MAX_FRAME - 200)}))]
        for what, text in cases:
            with self.subTest(what):
                f = await self.raw_frame(a, text, what)
                self.assertEqual(f.get("t"), "error", f)
                self.assertEqual(f.get("rid"), json.loads(text)["rid"], f"{what}: rid not echoed: {f}")
        await self.assert_unchanged()

    async def test_02_binary_frame(self):
        a = self.alice
        since = len(a.events)
        await a.ws.send(json.dumps({"t": "send", "rid": 5, "g": "g", "cid": "bin-1", "c": "binary"}).encode())
        f = await self.next_event(a, since, what="answer to a binary frame")
        self.assert_error(f, INVALID_ARGUMENT, "binary frame")
        self.assertTrue(a.open)
        await self.assert_unchanged()
        await self.usable(a)
        self.assert_healthy("binary frame")

    async def test_03_contents_limits(self):
        a = self.alice
        self.assertEqual(a.hello.get("max_contents"), MAX_CONTENTS, a.hello)
        cases = [("1000 ASCII bytes", "a" * 1000, True), ("1001 ASCII bytes", "a" * 1001, False),
                 ("500 x 'é' = 1000 bytes", "é" * 500, True), ("501 x 'é' = 1002 bytes", "é" * 501, False),
                 ("250 x '😀' = 1000 bytes", "😀" * 250, True), ("251 x '😀' = 1004 bytes", "😀" * 251, False)]
        stored = 0
        for n, (what, c, ok) in enumerate(cases):
            with self.subTest(what):
                cid = f"lim-{n}"
                rid = 100 + n
                ans = await self.raw_frame(a, json.dumps({"t": "send", "rid": rid, "g": "g", "cid": cid, "c": c}),
                                           what)
                if ok:
                    stored += 1
                    self.assertEqual((ans["t"], ans["id"], ans["rid"]), ("ack", self.heads["g"][0] + stored, rid),
                                     ans)
                else:
                    self.assert_error(ans, TOO_LARGE, what)
                    self.assertEqual((ans.get("rid"), ans.get("g"), ans.get("cid")), (rid, "g", cid),
                                     f"{what}: rid/g/cid not echoed: {ans}")
        self.assertTrue(a.open)
        await self.assert_unchanged({"g": stored})
        _, msgs = await asyncio.to_thread(history, self.server, self.tokens["alice"], "g")
        self.assertEqual([m["c"] for m in msgs[-3:]], [c for _, c, ok in cases if ok])
        self.assert_healthy("contents limits")

    async def test_04_oversized_frame_closes_1009(self):
        a = self.alice
        # Under --max-frame but contents too large: an error, the connection stays.
        big = json.dumps({"t": "send", "rid": 1, "g": "g", "cid": "big-1", "c": "b" * (MAX_FRAME - 200)})
        self.assertLess(len(big), MAX_FRAME)
        f = await self.raw_frame(a, big, "contents over max_contents in a frame under max_frame")
        self.assert_error(f, TOO_LARGE, "contents over max_contents")
        self.assertTrue(a.open)
        # Over --max-frame: close 1009.
        huge = json.dumps({"t": "send", "rid": 2, "g": "g", "cid": "huge-1", "c": "h" * (MAX_FRAME + 10)})
        try:
            await a.ws.send(huge)
        except websockets.ConnectionClosed:
            pass
        await a.wait_closed(5)
        self.assertEqual(a.close_code, 1009, f"close code for a frame over --max-frame ({a.close_reason!r})")
        self.assertFalse([e for e in a.events if e.get("t") == "ack"], "oversized frame acknowledged")
        await self.assert_unchanged()
        self.assert_healthy("oversized frame")
        # The same over a raw socket, sending only the header of a 1 MiB frame: the server
        # closes without waiting for the body.
        raw = RawWs(self.server.port, self.tokens["alice"])
        self.assertEqual(raw.status, 101)
        self.assertEqual(raw.recv_json()["t"], "hello")
        raw.sock.sendall(bytes([0x81, 0x80 | 127]) + (1 << 20).to_bytes(8, "big") + os.urandom(4) + b"x" * 100)
        frames, code, eof = await asyncio.to_thread(raw.read_until_close, 5)
        raw.close()
        self.assertEqual(code, 1009, f"raw oversized frame: close {code}, eof {eof}, frames {frames}")
        await self.assert_unchanged()
        self.assert_healthy("oversized frame header")

    # -- requests the user may not make

    async def test_05_resume_beyond_head_and_epoch(self):
        a = self.alice
        head = self.heads["g"][0]
        ans = await a.request({"t": "resume", "g": "g", "after": head + 1, "epoch": 1})
        self.assert_error(ans, INVALID_ARGUMENT, "resume beyond the head")
        ans = await a.request({"t": "resume", "g": "g", "after": head + 1000, "epoch": 1})
        self.assert_error(ans, INVALID_ARGUMENT, "resume far beyond the head")
        ans = await a.request({"t": "pull", "g": "g", "after": 0, "limit": 10, "epoch": 99})
        self.assert_error(ans, EPOCH_MISMATCH, "pull with another epoch")
        ans = await a.request({"t": "resume", "g": "g", "after": head, "epoch": 1})
        self.assertEqual((ans["t"], ans["head"], ans["epoch"]), ("resumed", head, 1), ans)
        self.assertTrue(a.open)
        await self.usable(a)
        self.assert_healthy("resume beyond head")

    async def test_06_duplicate_send(self):
        a = self.alice
        h = self.heads["g"][0]

        def send(g, c, cid):
            return a.request({"t": "send", "g": g, "cid": cid, "c": c})
        first = await send("g", "once", "dup-1")
        self.assertEqual((first["t"], first["id"], first["dup"], first["cid"]), ("ack", h + 1, False, "dup-1"), first)
        again = await send("g", "once", "dup-1")
        self.assertEqual((again["t"], again["id"], again["dup"], again["ep"]), ("ack", h + 1, True, first["ep"]),
                         again)
        third = await send("g", "different contents", "dup-1")
        self.assertEqual((third["t"], third["id"], third["dup"]), ("ack", h + 1, True), third)
        # Dedup is per (user, cid) across groups (docs/decisions.md 3).
        other = await send("g2", "once", "dup-1")
        self.assertEqual((other.get("t"), other.get("id"), other.get("dup")), ("ack", h + 1, True),
                         f"same cid in another group: {other}")
        # Another user may use the same cid.
        carol = Client("carol", self.tokens["carol"])
        await carol.connect(self.server)
        theirs = await carol.request({"t": "send", "g": "g", "cid": "dup-1", "c": "carol's"})
        self.assertEqual((theirs["t"], theirs["id"], theirs["dup"]), ("ack", h + 2, False), theirs)
        await carol.close()
        # An empty cid: no dedup.
        e1 = await send("g", "no cid", "")
        e2 = await send("g", "no cid", "")
        self.assertEqual(((e1["id"], e1["dup"]), (e2["id"], e2["dup"])), ((h + 3, False), (h + 4, False)))
        # alice's own session was pushed each stored message once.
        await a.wait_for(lambda: a.last("g") == h + 4, 5, "pushes of the stored messages")
        self.assertEqual(a.violations, [])
        self.assertEqual([(m["u"], m["c"]) for i, m in sorted(a.groups["g"].msgs.items()) if i > h],
                         [("alice", "once"), ("carol", "carol's"), ("alice", "no cid"), ("alice", "no cid")])
        await self.assert_unchanged({"g": 4})
        _, msgs = await asyncio.to_thread(history, self.server, self.tokens["alice"], "g")
        self.assertEqual([(m["u"], m["c"], m["cid"]) for m in msgs[-4:]],
                         [("alice", "once", "dup-1"), ("carol", "carol's", "dup-1"),
                          ("alice", "no cid", ""), ("alice", "no cid", "")])
        self.assert_healthy("duplicate send")

    async def test_07_not_a_member(self):
        bob = Client("bob", self.tokens["bob"])
        await bob.connect(self.server)
        cases = [("send", {"t": "send", "g": "g", "cid": "b1", "c": "let me in"}),
                 ("resume", {"t": "resume", "g": "g", "after": 0, "epoch": 0}),
                 ("pull", {"t": "pull", "g": "g", "after": 0, "limit": 10, "epoch": 1}),
                 ("typing", {"t": "typing", "g": "g"})]
        for what, frame in cases:
            with self.subTest(what):
                ans = await bob.request(frame)
                self.assert_error(ans, PERMISSION_DENIED, f"non-member {what}", rid=ans.get("rid"))
                self.assertEqual(ans.get("g"), "g", ans)
        self.assertTrue(bob.open)
        self.assertEqual(bob.last("g"), 0)
        self.assertFalse([e for e in bob.events if e["t"] == "msg"])
        tok = self.tokens["bob"]
        for what, path in [("members", "/v1/groups/g/members"), ("history", "/v1/groups/g/messages"),
                           ("presence", "/v1/groups/g/presence"), ("pull", "/v1/groups/g/pull?after=0")]:
            with self.subTest(f"HTTP {what}"):
                r = await asyncio.to_thread(http_request, self.server, "GET", path, token=tok)
                self.assert_http_error(r, 403, PERMISSION_DENIED, f"non-member GET {what}")
        # alice's live session got nothing from bob.
        await self.assert_unchanged()
        await self.usable(self.alice)
        await bob.close()
        self.assert_healthy("non-member")

    async def test_08_unknown_group(self):
        a = self.alice
        cases = [("send", {"t": "send", "g": "nope", "cid": "n1", "c": "hello?"}),
                 ("resume", {"t": "resume", "g": "nope", "after": 0, "epoch": 0}),
                 ("pull", {"t": "pull", "g": "nope", "after": 0, "limit": 10, "epoch": 0}),
                 ("unsub", {"t": "unsub", "g": "nope"})]
        for what, frame in cases:
            with self.subTest(what):
                ans = await a.request(frame)
                self.assert_error(ans, NOT_FOUND, f"unknown group {what}")
        tok = self.tokens["alice"]
        for what, method, path in [("history", "GET", "/v1/groups/nope/messages"),
                                   ("members", "GET", "/v1/groups/nope/members"),
                                   ("presence", "GET", "/v1/groups/nope/presence"),
                                   ("pull", "GET", "/v1/groups/nope/pull?after=0"),
                                   ("join", "POST", "/v1/groups/nope/join"),
                                   ("unknown route", "GET", "/v1/nothing-here"),
                                   ("unknown route under groups", "GET", "/v1/groups/g/nothing")]:
            with self.subTest(f"HTTP {what}"):
                r = await asyncio.to_thread(http_request, self.server, method, path, token=tok)
                self.assert_http_error(r, 404, NOT_FOUND, f"{method} {path}")
        self.assertTrue(a.open)
        await self.assert_unchanged()
        r = await asyncio.to_thread(http_request, self.server, "GET", "/v1/groups", token=tok)
        self.assertNotIn("nope", [x["group"] for x in r.json["groups"]], r)
        await self.usable(a)
        self.assert_healthy("unknown group")

    # -- authentication

    async def test_09_bad_token(self):
        good = self.tokens["alice"]
        parts = good.split(".")
        self.assertEqual((len(parts), parts[0]), (4, "v1"), f"token format: {good}")
        forged_user = ".".join([parts[0], base64.urlsafe_b64encode(b"bob").decode().rstrip("="), *parts[2:]])
        forged_exp = ".".join([parts[0], parts[1],
                               base64.urlsafe_b64encode(b"9999999999999").decode().rstrip("="), parts[3]])
        other_secret = self.other_secret_token()
        bad = [("no token", None), ("garbage", "garbage"), ("empty", ""), ("v2 token", "v2." + good[3:]),
               ("user swapped", forged_user), ("expiry pushed", forged_exp),
               ("signature cut", good[:-2]), ("other secret", other_secret)]
        for what, tok in bad:
            with self.subTest(what):
                raw = RawWs(self.server.port, tok)
                raw.close()
                self.assertEqual(raw.status, 401, f"upgrade with {what}: {raw.status} {raw.body!r}")
                body = json.loads(raw.body)
                self.assertEqual((body.get("code"), body.get("name")), (UNAUTHENTICATED, "unauthenticated"), body)
                r = await asyncio.to_thread(http_request, self.server, "GET", "/v1/me", token=tok)
                self.assert_http_error(r, 401, UNAUTHENTICATED, f"GET /v1/me with {what}")
                r = await asyncio.to_thread(http_request, self.server, "GET", "/v1/groups/g/messages", token=tok)
                self.assert_http_error(r, 401, UNAUTHENTICATED, f"GET messages with {what}")
                r = await asyncio.to_thread(http_request, self.server, "POST", "/v1/groups", {"group": "x-" + what},
                                            token=tok)
                self.assert_http_error(r, 401, UNAUTHENTICATED, f"POST /v1/groups with {what}")
        # The token in an Authorization header works for the upgrade too; a bad one does not.
        async with websockets.connect(f"ws://{HOST}:{self.server.port}/v1/ws", compression=None,
                                      extra_headers={"Authorization": f"Bearer {good}"}) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
            self.assertEqual((hello["t"], hello["u"]), ("hello", "alice"))
        with self.assertRaises(websockets.InvalidStatusCode) as cm:
            await websockets.connect(f"ws://{HOST}:{self.server.port}/v1/ws", compression=None,
                                     extra_headers={"Authorization": f"Bearer {forged_user}"})
        self.assertEqual(cm.exception.status_code, 401)
        r = await asyncio.to_thread(http_request, self.server, "GET", "/v1/me", token=good)
        self.assertEqual((r.status, r.json.get("user"), r.json.get("node")), (200, "alice", "node-1"), r)
        await self.assert_unchanged()
        self.assert_healthy("bad tokens")

    def other_secret_token(self):
        tmp = tempfile.mkdtemp(prefix="parley-e2e-other-")
        other = Server(tmp, "other", single_args(tmp, "other", secret="another-secret"))
        try:
            other.start()
            return login(other, "alice")
        finally:
            other.stop()
            shutil.rmtree(tmp, ignore_errors=True)

    async def test_10_expired_token(self):
        tmp = tempfile.mkdtemp(prefix="parley-e2e-ttl-")
        s = Server(tmp, "ttl", single_args(tmp, "ttl", extra=["--token-ttl", "1"])).start()
        try:
            t0 = time.time() * 1000
            r = await asyncio.to_thread(http_request, s, "POST", "/v1/login", {"user": "erin", "password": "x"})
            self.assertEqual(r.status, 200, r)
            tok, exp = r.json["token"], r.json["expires_at"]
            self.assertLess(abs(exp - (t0 + 1000)), 3000, f"expires_at {exp} vs now {t0} + 1 s")
            # Wait for the expiry on the clock (bounded).
            for _ in range(100):
                if time.time() * 1000 > exp + 50:
                    break
                await asyncio.sleep(0.05)
            self.assertGreater(time.time() * 1000, exp, "clock did not pass the expiry")
            raw = RawWs(s.port, tok)
            raw.close()
            self.assertEqual(raw.status, 401, f"expired token upgrade: {raw.status} {raw.body!r}")
            body = json.loads(raw.body)
            self.assertEqual((body["code"], body["name"]), (UNAUTHENTICATED, "unauthenticated"), body)
            r = await asyncio.to_thread(http_request, s, "GET", "/v1/me", token=tok)
            self.assert_http_error(r, 401, UNAUTHENTICATED, "GET /v1/me with an expired token")
            r = await asyncio.to_thread(http_request, s, "POST", "/v1/groups", {"group": "late"}, token=tok)
            self.assert_http_error(r, 401, UNAUTHENTICATED, "POST /v1/groups with an expired token")
            self.assertEqual(s.healthz().status, 200)
        finally:
            rc = s.stop()
            if rc != 0:
                print(s.log_tail())
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertEqual(rc, 0, "SIGTERM exit code")

    # -- HTTP

    async def test_11_bad_http_bodies_and_params(self):
        tok = self.tokens["alice"]
        cases = [
            ("login, malformed JSON", "POST", "/v1/login", b'{"user":', None, 400, INVALID_ARGUMENT),
            ("login, JSON array", "POST", "/v1/login", b'["alice"]', None, 400, INVALID_ARGUMENT),
            ("login, no user", "POST", "/v1/login", b'{"password":"x"}', None, 400, INVALID_ARGUMENT),
            ("login, user a number", "POST", "/v1/login", b'{"user":5,"password":"x"}', None, 400,
             INVALID_ARGUMENT),
            ("create group, malformed", "POST", "/v1/groups", b"{{", tok, 400, INVALID_ARGUMENT),
            ("create group, number", "POST", "/v1/groups", b'{"group":5}', tok, 400, INVALID_ARGUMENT),
            ("create group, empty id", "POST", "/v1/groups", b'{"group":""}', tok, 400, INVALID_ARGUMENT),
            ("create group, exists", "POST", "/v1/groups", b'{"group":"g"}', tok, 409, 4),
            ("history limit 0", "GET", "/v1/groups/g/messages?limit=0", None, tok, 400, INVALID_ARGUMENT),
            ("history limit 1001", "GET", "/v1/groups/g/messages?limit=1001", None, tok, 400, INVALID_ARGUMENT),
            ("history limit abc", "GET", "/v1/groups/g/messages?limit=abc", None, tok, 400, INVALID_ARGUMENT),
            ("history after -1", "GET", "/v1/groups/g/messages?after=-1", None, tok, 400, INVALID_ARGUMENT),
            ("post, malformed", "POST", "/v1/groups/g/messages", b"{{", tok, 400, INVALID_ARGUMENT),
            ("post, group in the body", "POST", "/v1/groups/g/messages", b'{"g":"h","cid":"p1","c":"x"}', tok, 400,
             INVALID_ARGUMENT),
            ("post, not a send", "POST", "/v1/groups/g/messages", b'{"t":"resume","after":0}', tok, 400,
             INVALID_ARGUMENT),
            ("post, no contents", "POST", "/v1/groups/g/messages", b'{"cid":"p2"}', tok, 400, INVALID_ARGUMENT),
            ("post, too large", "POST", "/v1/groups/g/messages",
             json.dumps({"cid": "p3", "c": "x" * (MAX_CONTENTS + 1)}).encode(), tok, 413, TOO_LARGE),
            ("post, no such group", "POST", "/v1/groups/nope/messages", b'{"cid":"p4","c":"x"}', tok, 404, NOT_FOUND),
            ("post, not a member", "POST", "/v1/groups/g/messages", b'{"cid":"p5","c":"x"}', self.tokens["bob"],
             403, PERMISSION_DENIED),
            ("post, edit of an unknown id", "POST", "/v1/groups/g/messages", b'{"t":"edit","cid":"p6","to":999,"c":"x"}',
             tok, 404, NOT_FOUND),
        ]
        for what, method, path, body, t, status, code in cases:
            with self.subTest(what):
                h = {"Content-Type": "application/json"} if body is not None else {}
                r = await asyncio.to_thread(http_request, self.server, method, path, body, t, h)
                self.assertEqual(r.json and r.json.get("name"), CODE_NAMES[code], f"{what}: {r}")
                self.assert_http_error(r, status, code, what)
                self.assert_healthy(what)
        await self.assert_unchanged()
        r = await asyncio.to_thread(http_request, self.server, "GET", "/v1/groups", token=self.tokens["bob"])
        self.assertEqual(r.json, {"groups": []}, "bob is still in no group")

    async def test_12_garbage_http(self):
        port = self.server.port
        tok = self.tokens["alice"]
        upgrade = (f"GET /v1/ws?token={urllib.parse.quote(tok)} HTTP/1.1\r\nHost: {HOST}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n")
        cases = [
            ("binary garbage", bytes(range(256)) * 4 + b"\r\n\r\n"),
            ("TLS client hello", bytes.fromhex("16030100a5010000a10303") + os.urandom(160)),
            ("text garbage", b"hello server, how are you?\r\n\r\n"),
            ("request line without target", b"GET\r\n\r\n"),
            ("request line without version", b"GET /healthz\r\n\r\n"),
            ("request line with spaces only", b"   \r\n\r\n"),
            ("unknown HTTP version", b"GET /healthz HTTP/7\r\nHost: x\r\n\r\n"),
            ("header without colon", b"GET /healthz HTTP/1.1\r\nHost x\r\nthis is not a header\r\n\r\n"),
            ("huge header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"),
            ("many headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
             b"".join(b"X-H%d: v\r\n" % i for i in range(20000)) + b"\r\n"),
            ("huge request line", b"GET /" + b"p" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("bad content-length", b"POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}"),
            ("negative content-length", b"POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}"),
            ("body shorter than content-length", b"POST /v1/login HTTP/1.1\r\nHost: x\r\n"
             b"Content-Length: 100\r\n\r\n{\"user\":"),
            ("upgrade without Sec-WebSocket-Key", (upgrade + "\r\n").encode()),
            ("upgrade with version 99", (upgrade.replace("Version: 13", "Version: 99") +
                                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode()),
            ("upgrade without a version", (upgrade.replace("Sec-WebSocket-Version: 13\r\n", "") +
                                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode()),
            ("upgrade by POST", (upgrade.replace("GET", "POST", 1) +
                                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode()),
            ("NUL in the path", b"GET /heal\x00thz HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("chunked garbage", b"POST /v1/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"zz\r\nnot a chunk\r\n\r\n"),
        ]
        seen = {}
        for what, data in cases:
            with self.subTest(what):
                resp = await asyncio.to_thread(raw_http, port, data, 5.0)
                st = status_of(resp)
                seen[what] = st
                self.assertNotEqual(st, 101, f"{what}: upgraded: {resp[:300]!r}")
                self.assertTrue(st is None or st < 500 or (what == "unknown HTTP version" and st == 505),
                                f"{what}: answered {st}: {resp[:300]!r}")
                if what != "unknown HTTP version":
                    self.assertTrue(st is None or 400 <= st < 500, f"{what}: answered {st}: {resp[:300]!r}")
                if what.startswith("upgrade"):
                    self.assertIsNotNone(st, f"{what}: no HTTP answer")
                self.assert_healthy(what)
        # A request body over its limit: 413.
        resp = await asyncio.to_thread(raw_http, port, b"POST /v1/login HTTP/1.1\r\nHost: x\r\n"
                                       b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n{", 5.0)
        self.assertEqual(status_of(resp), 413, f"100 MB body: {resp[:300]!r}")
        self.assert_healthy("100 MB body")
        await self.assert_unchanged()
        print(f"\n  garbage HTTP statuses: {json.dumps(seen)}", flush=True)

    async def test_12b_upgrade_with_a_bad_key(self):
        """RFC 6455 4.2.1: a Sec-WebSocket-Key that is not base64 of 16 bytes is refused
        (400), not upgraded."""
        tok = self.tokens["alice"]
        for key in ("short", "not base64 at all!!", base64.b64encode(b"x" * 15).decode()):
            with self.subTest(key):
                data = (f"GET /v1/ws?token={urllib.parse.quote(tok)} HTTP/1.1\r\nHost: {HOST}\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                        f"Sec-WebSocket-Key: {key}\r\n\r\n").encode()
                resp = await asyncio.to_thread(raw_http, self.server.port, data, 5.0)
                st = status_of(resp)
                self.assertEqual(st, 400, f"key {key!r}: {resp[:200]!r}")
                self.assert_healthy(f"key {key!r}")

    # -- peer transport

    async def test_13_peer_batch_secret_and_malformed(self):
        p = self.peer_port
        valid_shape = bytes([0x93, 0x01, 0xa5]) + b"nodeX" + bytes([0x90])   # [1, "nodeX", []]
        cases = [
            ("wrong secret", valid_shape, "wrong-secret", 403),
            ("no secret", valid_shape, None, 403),
            ("wrong secret, garbage body", b"\xff\x00garbage", "wrong-secret", 403),
            ("garbage body", b"\xff\x00garbage", CLUSTER_SECRET, 400),
            ("empty body", b"", CLUSTER_SECRET, 400),
            ("JSON body", b'[1,"nodeX",[]]', CLUSTER_SECRET, 400),
            ("batch of version 9", bytes([0x93, 0x09, 0xa5]) + b"nodeX" + bytes([0x90]), CLUSTER_SECRET, 400),
            ("items not an array", bytes([0x93, 0x01, 0xa5]) + b"nodeX" + bytes([0xa3]) + b"abc", CLUSTER_SECRET, 400),
            ("unknown item kind", bytes([0x93, 0x01, 0xa5]) + b"nodeX" + bytes([0x91, 0x91, 0x09]), CLUSTER_SECRET,
             400),
            ("truncated message item", bytes([0x93, 0x01, 0xa5]) + b"nodeX" + bytes([0x91, 0x93, 0x00, 0xa1]) +
             b"g" + bytes([0x05]), CLUSTER_SECRET, 400),
            ("trailing bytes", valid_shape + b"\x01", CLUSTER_SECRET, 400),
        ]
        for what, body, secret, status in cases:
            with self.subTest(what):
                h = {"Content-Type": "application/msgpack"}
                if secret is not None:
                    h["Authorization"] = f"Bearer {secret}"
                r = await asyncio.to_thread(http_request, None, "POST", "/v1/peer/batch", body, None, h, 5.0, p)
                self.assertEqual(r.status, status, f"peer batch, {what}: {r}")
                self.assert_healthy(what)
        await self.assert_unchanged()
        await self.usable(self.alice)


if __name__ == "__main__":
    unittest.main()
