"""Entry kinds through real servers (docs/protocol.md 2.1, decisions.md 47): two
processes on one SQLite file, and three on one redis-server. Edits, reactions and
deletes are acknowledged and pushed in the group's order to the other node's clients;
the log's rules answer with their error names; a delete made on node 1 erases the text
for a client that resumes on the last node (from its store and its cache) and for a
pull on node 1; replies, mentions and meta reach the other node as sent (meta as a
JSON object)."""

from harness import ServerTestCase, Client, cluster_args, login, create_group, join_group, check_client


class EntriesTest(ServerTestCase):

    async def test_edit_react_delete_across_two_nodes_on_sqlite(self):
        argsets, _ = cluster_args(2, self.tmp)
        await self.edit_react_delete([self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)])

    async def test_edit_react_delete_across_three_nodes_on_redis(self):
        redis = self.start_redis()
        argsets, _ = cluster_args(3, self.tmp, extra=["--store", "redis", "--redis", redis.url])
        await self.edit_react_delete([self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)])

    async def edit_react_delete(self, nodes):
        """alice on the first node; bob and then carol on the last."""
        tokens = {u: login(nodes[0], u) for u in ("alice", "bob", "carol")}
        g = "room"
        create_group(nodes[0], tokens["alice"], g)
        for u in ("bob", "carol"):
            join_group(nodes[0], tokens[u], g)
        alice, bob = Client("alice", tokens["alice"]), Client("bob", tokens["bob"])
        await alice.connect(nodes[0])
        await bob.connect(nodes[-1])
        for c in (alice, bob):
            self.assertEqual((await c.resume(g))["t"], "resumed")

        async def ok(client, frame, want_id):
            a = await client.request(frame)
            self.assertEqual((a["t"], a.get("id")), ("ack", want_id), f"{frame} -> {a}")

        async def refused(client, frame, name):
            a = await client.request(frame)
            self.assertEqual((a["t"], a.get("name")), ("error", name), f"{frame} -> {a}")

        secret = "the launch code is 0000"
        await ok(alice, {"t": "send", "g": g, "cid": "a1", "c": secret}, 1)
        await refused(bob, {"t": "edit", "g": g, "cid": "b1", "to": 1, "c": "mine now"}, "permission_denied")
        await ok(bob, {"t": "react", "g": g, "cid": "b2", "to": 1, "c": "👍"}, 2)
        await refused(bob, {"t": "react", "g": g, "cid": "b3", "to": 1, "c": "👍"}, "already_exists")
        await refused(bob, {"t": "react", "g": g, "cid": "b4", "to": 2, "c": "👍"}, "not_found")
        await ok(alice, {"t": "edit", "g": g, "cid": "a2", "to": 1, "c": secret + " (really)"}, 3)
        await ok(bob, {"t": "send", "g": g, "cid": "b5", "c": "@alice ok", "re": 1, "mn": ["alice"],
                       "meta": {"card": {"title": "t", "n": [1, 2]}}}, 4)
        await ok(alice, {"t": "delete", "g": g, "cid": "a3", "to": 1}, 5)
        await refused(bob, {"t": "react", "g": g, "cid": "b6", "to": 1, "c": "🎉"}, "deleted")
        await refused(alice, {"t": "edit", "g": g, "cid": "a4", "to": 1, "c": "back"}, "deleted")
        await refused(alice, {"t": "delete", "g": g, "cid": "a5", "to": 1, "c": "x"}, "invalid_argument")
        await refused(alice, {"t": "send", "g": g, "cid": "a6", "c": "x", "meta": [1]}, "invalid_argument")

        for c in (alice, bob):
            await c.wait_for(lambda c=c: c.last(g) == 5, 15, f"{c.name} holds all five entries")
        got = bob.groups[g].msgs
        self.assertEqual(got[2].get("k"), "reaction")
        self.assertEqual((got[3].get("k"), got[3].get("to")), ("edit", 1))
        self.assertEqual(got[4]["meta"], {"card": {"title": "t", "n": [1, 2]}})
        self.assertEqual((got[4]["re"], got[4]["mn"]), (1, ["alice"]))
        self.assertEqual((got[5].get("k"), got[5].get("to"), got[5]["u"]), ("delete", 1, "alice"))

        # Carol resumes on the last node from the start: tombstones, never the text.
        carol = Client("carol", tokens["carol"])
        await carol.connect(nodes[-1])
        self.assertEqual((await carol.resume(g))["t"], "resumed")
        await carol.wait_for(lambda: carol.last(g) == 5, 15, "carol holds all five entries")
        seen = carol.groups[g].msgs
        self.assertTrue(seen[1].get("del") and seen[1]["c"] == "" and seen[1]["u"] == "alice", seen[1])
        self.assertTrue(seen[3].get("del") and seen[3]["c"] == "", seen[3])
        self.assertNotIn("launch code", str(seen))
        # A pull on node 1 (its cache) and a fresh client there: the same.
        dave = Client("carol", tokens["carol"], name="carol-2")
        await dave.connect(nodes[0])
        pulled = await dave.pull(g, limit=10)
        self.assertEqual([m["id"] for m in pulled["msgs"]], [1, 2, 3, 4, 5])
        self.assertNotIn("launch code", str(pulled))

        for c in (alice, bob, carol, dave):
            self.assertEqual(c.violations, [], f"{c.name}: delivery rules broken")
            await c.close()
        for n in nodes:
            self.assert_healthy(n)


if __name__ == "__main__":
    import unittest
    unittest.main()
