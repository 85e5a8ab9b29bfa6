"""Read state through real servers (docs/protocol.md 2.1, decisions.md 49): two processes
on one SQLite file, and three nodes on one redis-server. alice has two devices on
different nodes, bob writes from another: both devices are told the counts, a delete of an
unread message stops counting, reading on one device clears the badge on the other (a
`read` event crosses the nodes), a read reported over HTTP (POST /v1/groups/{g}/read)
tells both devices, a read behind the position moves nothing, and GET /v1/groups on every
node agrees."""

from harness import ServerTestCase, Client, cluster_args, login, create_group, join_group, http_request


class ReadsTest(ServerTestCase):

    async def test_badge_clears_across_devices_on_sqlite(self):
        argsets, _ = cluster_args(2, self.tmp)
        await self.badge_across_devices([self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)])

    async def test_badge_clears_across_devices_on_three_redis_nodes(self):
        redis = self.start_redis()
        argsets, _ = cluster_args(3, self.tmp, extra=["--store", "redis", "--redis", redis.url])
        await self.badge_across_devices([self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)])

    def groups_of(self, node, token):
        r = http_request(node, "GET", "/v1/groups", token=token)
        self.assertEqual(r.status, 200, r)
        return {g["group"]: g for g in r.json["groups"]}

    async def badge_across_devices(self, nodes):
        """alice's phone on the first node, her laptop on the last; bob in the middle."""
        tokens = {u: login(nodes[0], u) for u in ("alice", "bob")}
        g = "room"
        create_group(nodes[0], tokens["alice"], g)
        join_group(nodes[0], tokens["bob"], g)
        phone = Client("alice", tokens["alice"], name="alice-phone")
        laptop = Client("alice", tokens["alice"], name="alice-laptop")
        bob = Client("bob", tokens["bob"])
        await phone.connect(nodes[0])
        await laptop.connect(nodes[-1])
        await bob.connect(nodes[len(nodes) // 2])
        for c in (phone, laptop, bob):
            self.assertEqual((await c.resume(g))["t"], "resumed")

        for i in range(1, 5):
            frame = {"t": "send", "g": g, "cid": f"b{i}", "c": f"news {i}"}
            if i == 2:
                frame.update(c="@alice look", mn=["alice"])
            self.assertEqual((await bob.request(frame))["id"], i)
        self.assertEqual((await bob.request({"t": "delete", "g": g, "cid": "b5", "to": 4}))["id"], 5)
        for c in (phone, laptop):
            await c.wait_for(lambda c=c: c.last(g) == 5, 15, f"{c.name} holds all five entries")
            u = await c.request({"t": "unread"})
            self.assertEqual(u["t"], "unread", u)
            self.assertEqual([(s["g"], s["epoch"], s["id"], s["head"], s["unread"], s["mn"]) for s in u["groups"]],
                             [(g, 1, 0, 5, 3, 1)], f"{c.name}: 3 unread (the 4th was deleted), 1 mention")
        self.assertEqual(self.groups_of(nodes[-1], tokens["bob"])[g]["unread"], 0, "bob's own messages")

        # alice reads up to 2 on her phone: the laptop is told, across the nodes.
        r = await phone.request({"t": "read", "g": g, "id": 2, "epoch": 1})
        self.assertEqual((r["t"], r["id"], r["unread"], r["mn"]), ("read", 2, 1, 0), r)

        def told(c, upto):
            return [e for e in c.events if e.get("t") == "read" and e.get("rid", 0) == 0 and e["id"] == upto]

        await laptop.wait_for(lambda: told(laptop, 2), 15, "the laptop told of the phone's read")
        self.assertEqual((told(laptop, 2)[0]["unread"], told(laptop, 2)[0]["mn"]), (1, 0))
        self.assertEqual([e for e in bob.events if e.get("t") == "read"], [], "bob is told nothing")
        # Up to 3 with plain HTTP on bob's node: both devices are told.
        middle = nodes[len(nodes) // 2]
        r = http_request(middle, "POST", f"/v1/groups/{g}/read", {"id": 3, "epoch": 1}, token=tokens["alice"])
        self.assertEqual((r.status, r.json), (200, {"group": g, "epoch": 1, "read": 3, "head": 5, "unread": 0,
                                                    "mentions": 0}), r)
        for c in (phone, laptop):
            await c.wait_for(lambda c=c: told(c, 3), 15, f"{c.name} told of the read over HTTP")
        for body, status, name in [({"id": 3, "epoch": 7}, 409, "epoch_mismatch"), ({"epoch": 1}, 400,
                                   "invalid_argument"), ({"id": 3, "epoch": 0}, 400, "invalid_argument")]:
            r = http_request(middle, "POST", f"/v1/groups/{g}/read", body, token=tokens["alice"])
            self.assertEqual((r.status, r.json["name"]), (status, name), (body, r))
        # The laptop reads everything; a late report from the phone moves nothing back.
        r = await laptop.request({"t": "read", "g": g, "id": 5, "epoch": 1})
        self.assertEqual((r["id"], r["unread"]), (5, 0), r)
        await phone.wait_for(lambda: told(phone, 5), 15, "the phone told of the laptop's read")
        r = await phone.request({"t": "read", "g": g, "id": 1, "epoch": 1})
        self.assertEqual((r["id"], r["unread"]), (5, 0), r)
        for node in nodes:
            state = self.groups_of(node, tokens["alice"])[g]
            self.assertEqual((state["read"], state["head"], state["unread"], state["mentions"]), (5, 5, 0, 0),
                             f"GET /v1/groups on {node.name}")
        # Bad reports: another epoch, a group alice is not in.
        r = await phone.request({"t": "read", "g": g, "id": 5, "epoch": 7})
        self.assertEqual((r["t"], r["name"]), ("error", "epoch_mismatch"), r)
        create_group(nodes[0], tokens["bob"], "bobs")
        r = await phone.request({"t": "read", "g": "bobs", "id": 1, "epoch": 1})
        self.assertEqual((r["t"], r["name"]), ("error", "permission_denied"), r)
        r = await phone.request({"t": "unread", "gs": ["bobs"]})
        self.assertEqual((r["t"], r["name"]), ("error", "permission_denied"), r)
        r = http_request(nodes[0], "POST", "/v1/groups/bobs/read", {"id": 1, "epoch": 1}, token=tokens["alice"])
        self.assertEqual((r.status, r.json["name"]), (403, "permission_denied"), r)
        await self.finish((phone, laptop, bob))
