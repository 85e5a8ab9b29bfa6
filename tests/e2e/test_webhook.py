"""d. Offline notifications: an offline member's messages are POSTed to the webhook;
a member whose socket is dropped abruptly is told why on its next connect."""

import asyncio
import json

from harness import (ServerTestCase, Client, RawWs, single_args, login, create_group, join_group,
                     drive, http_request)


class WebhookTest(ServerTestCase):

    def setUp(self):
        super().setUp()
        self.hook = self.webhook()
        self.server = self.start_server("node-1", single_args(self.tmp, extra=["--webhook", self.hook.url]))
        self.g = "team"
        self.tokens = {u: login(self.server, u) for u in ("alice", "olive", "dan", "carol")}
        create_group(self.server, self.tokens["alice"], self.g)
        for u in ("olive", "dan", "carol"):
            join_group(self.server, self.tokens[u], self.g)

    def presence_of(self, user):
        r = http_request(self.server, "GET", f"/v1/groups/{self.g}/presence", token=self.tokens["alice"])
        self.assertEqual(r.status, 200, r)
        return {p["user"]: p["status"] for p in r.json["presence"]}.get(user, "offline")

    async def test_offline_member_is_notified(self):
        alice = Client("alice", self.tokens["alice"])
        carol = Client("carol", self.tokens["carol"])
        await alice.connect(self.server)
        await carol.connect(self.server)
        await alice.resume(self.g)
        await carol.resume(self.g)
        await drive(alice, [(self.g, f"hello olive {i}") for i in range(3)], window=3, timeout=10)
        acks = {p.ack["id"]: p for p in alice.sends.values()}

        def olive_has_all(bodies):
            return {b.get("msg_id") for b in bodies if b.get("user") == "olive"} >= set(acks)
        ok = await self.hook.await_for(olive_has_all, 10)
        bodies = self.hook.bodies()
        self.assertTrue(ok, f"olive was not notified of every message: {bodies}")
        for b in bodies:
            self.assertEqual(set(b) >= {"user", "group", "epoch", "msg_id", "sender", "preview", "reason"},
                             True, f"fields of {b}")
        olive = [b for b in bodies if b["user"] == "olive"]
        self.assertEqual(sorted(b["msg_id"] for b in olive), sorted(acks), "olive: once per message")
        for b in olive:
            p = acks[b["msg_id"]]
            self.assertEqual((b["group"], b["sender"], b["reason"], b["epoch"]),
                             (self.g, "alice", "offline", p.ack["ep"]), b)
            self.assertIsInstance(b["preview"], str, b)
            self.assertTrue(p.c.startswith(b["preview"]) and b["preview"], f"preview of {p.c!r}: {b}")
        # dan is offline too; alice and carol are online and hold every message.
        dan = [b for b in bodies if b["user"] == "dan"]
        self.assertEqual(sorted(b["msg_id"] for b in dan), sorted(acks), f"dan: {dan}")
        online = [b for b in bodies if b["user"] in ("alice", "carol")]
        self.assertEqual(online, [], "online members (sender included) are not notified")
        await carol.wait_for(lambda: carol.last(self.g) == 3, 5, "carol gets the messages")
        await alice.close()
        await carol.close()

    async def test_dropped_socket_reason_on_next_connect(self):
        alice = Client("alice", self.tokens["alice"])
        await alice.connect(self.server)
        await alice.resume(self.g)
        await alice.send_frame({"t": "presence", "status": "online", "sub": True})

        def dan_offline(n):
            return lambda: sum(1 for e in alice.events_of("presence")
                               if e.get("u") == "dan" and e.get("status") == "offline") >= n

        dan = RawWs(self.server.port, self.tokens["dan"])
        self.assertEqual(dan.status, 101)
        hello = dan.recv_json()
        self.assertEqual((hello["t"], hello["u"]), ("hello", "dan"), hello)
        dan.send_json({"t": "resume", "rid": 1, "g": self.g, "after": 0, "epoch": 0})
        self.assertEqual(dan.recv_json()["t"], "resumed")
        await drive(alice, [(self.g, "before the drop")], window=1, timeout=10)
        self.assertEqual(dan.recv_json()["c"], "before the drop")
        self.assertEqual(await asyncio.to_thread(self.presence_of, "dan"), "online")

        # Drop dan with a TCP reset (no close frame) and wait until the node has noticed.
        dan.reset()
        await alice.wait_for(dan_offline(1), 10, "presence offline for dan after the reset")
        self.assertEqual(await asyncio.to_thread(self.presence_of, "dan"), "offline")
        await drive(alice, [(self.g, "while dan is away")], window=1, timeout=10)
        away_id = [p for p in alice.sends.values() if p.c == "while dan is away"][0].ack["id"]
        ok = await self.hook.await_for(
            lambda bs: any(b.get("user") == "dan" and b.get("msg_id") == away_id for b in bs), 10)
        self.assertTrue(ok, f"dan not notified of #{away_id}: {self.hook.bodies()}")

        # Next connect on that node: hello, then an error event saying why the last one failed.
        dan2 = Client("dan", self.tokens["dan"])
        await dan2.connect(self.server)
        await dan2.wait_for(lambda: len(dan2.events) >= 2, 5, "the failure report after hello")
        self.assertEqual(dan2.events[0]["t"], "hello")
        err = dan2.events[1]
        self.assertEqual(err.get("t"), "error", f"second frame after a dropped socket: {err}")
        self.assertEqual(err.get("about"), "previous_connection", err)
        self.assertIsInstance(err.get("code"), int, err)
        # Reported once: a later connect after a clean close has no such error.
        await dan2.resume(self.g)
        await dan2.close()
        await alice.wait_for(dan_offline(2), 10, "presence offline for dan after a clean close")
        dan3 = Client("dan", self.tokens["dan"])
        await dan3.connect(self.server)
        ans = await dan3.resume(self.g)
        self.assertEqual(ans["t"], "resumed")
        self.assertEqual([e["t"] for e in dan3.events[:2]], ["hello", "resumed"],
                         f"no failure report after a clean close: {dan3.events[:3]}")
        self.assertEqual(dan3.last(self.g), 2)
        reasons = sorted({b.get("reason") for b in self.hook.bodies() if b.get("user") == "dan"})
        print(f"\n  webhook: dan's notification reasons {json.dumps(reasons)}; failure report {err}",
              flush=True)
        await dan3.close()
        await alice.close()

    async def test_notification_levels(self):
        """olive (offline) wants mentions only, set over HTTP; dan (offline) wants none, set
        over WebSocket; carol (offline) keeps all. Each is notified by its level, and the
        mention is flagged."""
        r = http_request(self.server, "POST", f"/v1/groups/{self.g}/notify", token=self.tokens["olive"],
                         body={"level": "mentions"})
        self.assertEqual((r.status, r.json), (200, {"group": self.g, "level": "mentions"}), r)
        bad = http_request(self.server, "POST", f"/v1/groups/{self.g}/notify", token=self.tokens["olive"],
                           body={"level": "loud"})
        self.assertEqual((bad.status, bad.json["name"]), (400, "invalid_argument"), bad)
        self.assertIn("loud", bad.json["msg"])
        outsider = http_request(self.server, "POST", f"/v1/groups/{self.g}/notify",
                                token=login(self.server, "eve"), body={"level": "none"})
        self.assertEqual((outsider.status, outsider.json["name"]), (403, "permission_denied"), outsider)
        dan = Client("dan", self.tokens["dan"])
        await dan.connect(self.server)
        asked = await dan.request({"t": "notify", "g": self.g})
        self.assertEqual((asked["t"], asked["g"], asked["level"]), ("notify", self.g, "all"), asked)
        got = await dan.request({"t": "notify", "g": self.g, "level": "none"})
        self.assertEqual((got["t"], got["level"]), ("notify", "none"), got)
        await dan.close()
        levels = {s["group"]: s["notify"] for s in
                  http_request(self.server, "GET", "/v1/groups", token=self.tokens["dan"]).json["groups"]}
        self.assertEqual(levels, {self.g: "none"})

        alice = Client("alice", self.tokens["alice"])
        await alice.connect(self.server)
        await alice.resume(self.g)
        plain = await alice.request({"t": "send", "g": self.g, "cid": "p1", "c": "plain"})
        mention = await alice.request({"t": "send", "g": self.g, "cid": "m1", "c": "@olive @dan look",
                                       "mn": ["olive", "dan"]})
        self.assertEqual((plain["t"], mention["t"]), ("ack", "ack"), (plain, mention))
        mention_id = mention["id"]
        after = await alice.request({"t": "send", "g": self.g, "cid": "p2", "c": "after"})
        # carol (all) is told of every message; the webhook posts in the order the
        # notifications were raised, so once carol's for the last message is in, every
        # notification of the two before it is too.
        ok = await self.hook.await_for(
            lambda bs: any(b.get("user") == "carol" and b.get("msg_id") == after["id"] for b in bs), 10)
        self.assertTrue(ok, f"carol not notified of #{after['id']}: {self.hook.bodies()}")
        got = sorted((b["user"], b["msg_id"], b["mentioned"]) for b in self.hook.bodies()
                     if b.get("user") in ("olive", "dan", "carol"))
        self.assertEqual(got, sorted([("carol", plain["id"], False), ("carol", mention_id, False),
                                      ("carol", after["id"], False), ("olive", mention_id, True)]),
                         self.hook.bodies())
        print(f"\n  webhook by level: {got}", flush=True)
        await alice.close()


if __name__ == "__main__":
    import unittest
    unittest.main()
