"""The app server's own API (docs/protocol.md 3, "Server API") through real servers: two
processes on one SQLite file, with one API key. The app makes a group for alice and adds
bob in bulk, posts a system notice on node 1 that bob (connected to node 2) receives in
order, a resend of it is a duplicate, it sends on bob's behalf, removes bob (whose session
on node 2 stops receiving the group), reads history without being a member, and
disconnects a user's sessions on both nodes. A user's
token, a wrong key or no key gets 401 and changes nothing; the key does not open a user's
routes."""

from harness import ServerTestCase, Client, cluster_args, login, http_request

KEY = "k" * 40


class ServerApiTest(ServerTestCase):

    def app(self, node, method, path, body=None, key=KEY):
        return http_request(node, method, path, body, headers={"Authorization": f"ApiKey {key}"})

    async def test_the_app_speaks_and_manages_across_two_nodes(self):
        argsets, _ = cluster_args(2, self.tmp, extra=["--api-key", KEY, "--membership-entries"])
        nodes = [self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)]
        g = "match-7"

        # Refused without the key, and the refusals change nothing.
        alice_token = login(nodes[0], "alice")
        for headers in ({}, {"Authorization": f"Bearer {alice_token}"}, {"Authorization": "ApiKey wrong"}):
            r = http_request(nodes[0], "POST", "/v1/server/groups", {"group": g, "owner": "alice"}, headers=headers)
            self.assertEqual((r.status, r.json["name"]), (401, "unauthenticated"), r)
        self.assertEqual(http_request(nodes[0], "GET", "/v1/groups", headers={"Authorization": f"ApiKey {KEY}"}).status,
                         401, "the key opens no user route")
        self.assertEqual(self.app(nodes[0], "GET", f"/v1/server/groups/{g}/members").status, 404)

        r = self.app(nodes[0], "POST", "/v1/server/groups", {"group": g, "owner": "alice"})
        self.assertEqual((r.status, r.json["group"], r.json["owner"], r.json["kind"]), (201, g, "alice", "public"), r)
        r = self.app(nodes[1], "POST", f"/v1/server/groups/{g}/members", {"add": ["bob", "alice"]})
        self.assertEqual((r.status, r.json["added"], r.json["removed"]), (200, ["bob"], []), r)

        bob = Client("bob", login(nodes[1], "bob"))
        await bob.connect(nodes[1])
        self.assertEqual((await bob.resume(g))["t"], "resumed")
        await bob.wait_for(lambda: bob.last(g) == 1, 15, "bob holds his join")

        notice = {"author": "referee", "cid": "result-7", "c": "alice won 3:1", "meta": {"score": [3, 1]}}
        r = self.app(nodes[0], "POST", f"/v1/server/groups/{g}/system", notice)
        self.assertEqual((r.status, r.json["t"], r.json["id"]), (200, "ack", 2), r)
        r = self.app(nodes[0], "POST", f"/v1/server/groups/{g}/system", notice)
        self.assertEqual((r.status, r.json["id"], r.json.get("dup")), (200, 2, True), r)
        await bob.wait_for(lambda: bob.last(g) == 2, 15, "bob receives the notice")
        m = bob.groups[g].msgs[2]
        self.assertEqual((m["k"], m["u"], m["c"], m["meta"]), ("system", "referee", "alice won 3:1", {"score": [3, 1]}))

        r = self.app(nodes[1], "POST", f"/v1/server/groups/{g}/messages", {"user": "bob", "cid": "gg", "c": "gg"})
        self.assertEqual((r.status, r.json["id"]), (200, 3), r)
        r = self.app(nodes[1], "POST", f"/v1/server/groups/{g}/messages", {"user": "carol", "cid": "c", "c": "hi"})
        self.assertEqual((r.status, r.json["name"]), (403, "permission_denied"), r)
        await bob.wait_for(lambda: bob.last(g) == 3, 15, "bob receives his own message")

        # Removed by the app on node 1: bob's session on node 2 stops at the removal.
        r = self.app(nodes[0], "POST", f"/v1/server/groups/{g}/members", {"remove": ["bob"], "by": "referee"})
        self.assertEqual((r.status, r.json["removed"]), (200, ["bob"]), r)
        r = self.app(nodes[0], "POST", f"/v1/server/groups/{g}/system", {"c": "next round"})
        self.assertEqual((r.status, r.json["id"]), (200, 5), r)

        history = self.app(nodes[1], "GET", f"/v1/server/groups/{g}/messages?limit=10")
        self.assertEqual(history.status, 200, history)
        self.assertEqual([(m["id"], m.get("k", "message")) for m in history.json["messages"]],
                         [(1, "join"), (2, "system"), (3, "message"), (4, "removed"), (5, "system")])
        members = self.app(nodes[1], "GET", f"/v1/server/groups/{g}/members")
        self.assertEqual([m["user"] for m in members.json["members"]], ["alice"])
        alice = Client("alice", alice_token)
        await alice.connect(nodes[0])
        self.assertEqual((await alice.resume(g))["t"], "resumed")
        await alice.wait_for(lambda: alice.last(g) == 5, 15, "alice holds all five entries")
        # A member on bob's node has the notice after his removal: bob was handed nothing of it.
        watcher = Client("alice", alice_token, name="alice-2")
        await watcher.connect(nodes[1])
        self.assertEqual((await watcher.resume(g))["t"], "resumed")
        await watcher.wait_for(lambda: watcher.last(g) == 5, 15, "alice's second device holds all five")
        self.assertEqual((alice.groups[g].msgs[4]["k"], alice.groups[g].msgs[4]["u"]), ("removed", "referee"))
        self.assertLess(bob.last(g), 5, "bob received nothing after his removal")

        # Disconnected everywhere through node 1: carol's sessions on both nodes are told why
        # and closed (1008); alice's stays.
        phones = [Client("carol", login(n, "carol"), name=f"carol-{i + 1}") for i, n in enumerate(nodes)]
        for c, n in zip(phones, nodes):
            await c.connect(n)
        r = self.app(nodes[0], "POST", "/v1/server/users/carol/disconnect", {"reason": "cheating"})
        self.assertEqual((r.status, r.json), (200, {"user": "carol", "reason": "cheating"}), r)
        for c in phones:
            await c.wait_closed(15)
            told = [e for e in c.events if e.get("about") == "disconnected"]
            self.assertEqual([(e["name"], e["msg"]) for e in told],
                             [("permission_denied", "disconnected by the app: cheating")], c.events)
            self.assertEqual(c.close_code, 1008, c.name)
        self.assertTrue(alice.open, "alice stays connected")
        await self.finish((alice, watcher, bob), nodes)


if __name__ == "__main__":
    import unittest
    unittest.main()
