"""Entry kinds through real servers (docs/protocol.md 2.1, decisions.md 47): two
processes on one SQLite file, and three on one redis-server. Edits, reactions and
deletes are acknowledged and pushed in the group's order to the other node's clients;
the log's rules answer with their error names; a delete made on node 1 erases the text
for a client that resumes on the last node (from its store and its cache) and for a
pull on node 1; folded history (WebSocket pull with fold, HTTP fold=1) shows the latest
edit, the reactions with the reader's own marked and the reply count, and after the
delete a bare tombstone; replies, mentions and meta reach the other node as sent (meta as a
JSON object). With --membership-entries, joins, leaves and removals made over HTTP on
either node are entries of the log that every member's session gets in order, and a
leave delivered on the other node ends the leaver's subscription there."""

from harness import (ServerTestCase, Client, cluster_args, login, create_group, join_group, check_client,
                     http_request)


class EntriesTest(ServerTestCase):

    async def test_edit_react_delete_across_two_nodes_on_sqlite(self):
        argsets, _ = cluster_args(2, self.tmp)
        await self.edit_react_delete([self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)])

    async def test_edit_react_delete_across_three_nodes_on_redis(self):
        redis = self.start_redis()
        argsets, _ = cluster_args(3, self.tmp, extra=["--store", "redis", "--redis", redis.url])
        await self.edit_react_delete([self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)])

    async def test_membership_entries_across_two_nodes_on_sqlite(self):
        argsets, _ = cluster_args(2, self.tmp, extra=["--membership-entries"])
        n1, n2 = [self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)]
        tokens = {u: login(n1, u) for u in ("alice", "bob", "carol", "dave")}
        g = "room"
        create_group(n1, tokens["alice"], g)
        alice = Client("alice", tokens["alice"])
        await alice.connect(n1)
        await alice.resume(g)
        join_group(n2, tokens["bob"], g)
        join_group(n2, tokens["dave"], g)
        bob, dave = Client("bob", tokens["bob"]), Client("dave", tokens["dave"])
        for c in (bob, dave):
            await c.connect(n2)
            await c.resume(g)
        join_group(n1, tokens["carol"], g)

        def entries(c):
            st = c.groups.get(g)
            msgs = [st.msgs[i] for i in sorted(st.msgs)] if st else []
            return [(m["id"], m.get("k", "message"), m["u"], m["c"]) for m in msgs]
        # (An entry is appended after the HTTP answer: wait for each before the next change.)
        await alice.wait_for(lambda: len(entries(alice)) >= 3, 10, "the three joins")
        r = http_request(n1, "DELETE", f"/v1/groups/{g}/members/carol", token=tokens["alice"])
        self.assertEqual(r.status, 200, r)
        await alice.wait_for(lambda: len(entries(alice)) >= 4, 10, "carol's removal")
        r = http_request(n2, "POST", f"/v1/groups/{g}/leave", token=tokens["bob"])
        self.assertEqual(r.status, 200, r)
        want = [(1, "join", "bob", ""), (2, "join", "dave", ""), (3, "join", "carol", ""),
                (4, "removed", "alice", "carol"), (5, "leave", "bob", "")]
        await alice.wait_for(lambda: len(entries(alice)) >= 5, 10, f"bob's leave (has {entries(alice)})")
        self.assertEqual(entries(alice), want)
        await dave.wait_for(lambda: len(entries(dave)) >= 5, 10, "dave gets the entries after his join")
        # bob stopped receiving the group when he left, before his own leave; dave gets what follows.
        a = await alice.request({"t": "send", "g": g, "cid": "a1", "c": "after bob left"})
        self.assertEqual((a["t"], a["id"]), ("ack", 6), a)
        await dave.wait_for(lambda: (6, "message", "alice", "after bob left") in entries(dave), 10, "dave")
        self.assertNotIn(6, [e[0] for e in entries(bob)], entries(bob))
        # Entries are counted by nobody: dave's unread is alice's message only.
        groups = http_request(n2, "GET", "/v1/groups", token=tokens["dave"]).json["groups"]
        self.assertEqual([(s["head"], s["unread"]) for s in groups], [(6, 1)], groups)
        for c in (alice, bob, dave):
            await c.close()

    async def test_http_post_across_two_nodes_on_sqlite(self):
        """bob posts with plain HTTP on node 2 (what curl does); alice, connected to node 1,
        gets it live; the answer is the WebSocket ack, a resend is a duplicate, and an edit
        goes the same way."""
        argsets, _ = cluster_args(2, self.tmp)
        n1, n2 = [self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)]
        tokens = {u: login(n1, u) for u in ("alice", "bob")}
        g = "room"
        create_group(n1, tokens["alice"], g)
        join_group(n1, tokens["bob"], g)
        alice = Client("alice", tokens["alice"])
        await alice.connect(n1)
        await alice.resume(g)

        def post(body):
            return http_request(n2, "POST", f"/v1/groups/{g}/messages", body, token=tokens["bob"])
        r = post({"cid": "h1", "c": "posted with curl", "mn": ["alice"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual({k: r.json[k] for k in ("t", "g", "cid", "id", "dup", "ep")},
                         {"t": "ack", "g": g, "cid": "h1", "id": 1, "dup": False, "ep": 1}, r)
        again = post({"cid": "h1", "c": "posted with curl", "mn": ["alice"]})
        self.assertEqual((again.status, again.json["id"], again.json["dup"]), (200, 1, True), again)
        edit = post({"t": "edit", "cid": "h2", "to": 1, "c": "posted with curl (edited)"})
        self.assertEqual((edit.status, edit.json["id"]), (200, 2), edit)
        await alice.wait_for(lambda: alice.last(g) == 2, 10, "the post and its edit")
        msgs = alice.groups[g].msgs
        self.assertEqual((msgs[1]["u"], msgs[1]["c"], msgs[1]["mn"]), ("bob", "posted with curl", ["alice"]))
        self.assertEqual((msgs[2]["k"], msgs[2]["to"]), ("edit", 1))
        await alice.close()

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
        # Folded history before the delete: over the WebSocket on the last node and
        # over HTTP on the first, each reader's own reaction marked.
        folded = await bob.request({"t": "pull", "g": g, "after": 0, "limit": 50, "fold": True})
        self.assertEqual((folded["t"], folded["fold"], folded["to"], folded["head"]), ("pulled", True, 4, 4))
        self.assertEqual([m["id"] for m in folded["msgs"]], [1, 4])
        first = folded["msgs"][0]
        self.assertEqual((first["c"], first["ed"], first["nr"]), (secret + " (really)", 3, 1))
        self.assertEqual(first["rx"], [{"k": "👍", "n": 1, "me": True}])
        self.assertNotIn("ed", folded["msgs"][1])
        page = http_request(nodes[0], "GET", f"/v1/groups/{g}/messages?fold=1&limit=2", token=tokens["alice"]).json
        self.assertEqual((page["head"], page["to"]), (4, 2))
        self.assertEqual([m["id"] for m in page["messages"]], [1])
        self.assertEqual((page["messages"][0]["ed"], page["messages"][0]["rx"]), (3, [{"k": "👍", "n": 1}]))
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
        # Folded after the delete: the message is a bare tombstone, its answer stays.
        folded = await dave.request({"t": "pull", "g": g, "after": 0, "limit": 50, "fold": True})
        self.assertEqual([m["id"] for m in folded["msgs"]], [1, 4])
        self.assertTrue(folded["msgs"][0].get("del"))
        self.assertFalse({"ed", "rx", "nr"} & set(folded["msgs"][0]), folded["msgs"][0])
        self.assertNotIn("launch code", str(folded))

        await self.finish((alice, bob, carol, dave), nodes)


if __name__ == "__main__":
    import unittest
    unittest.main()
