"""Group kinds and settings through real servers (docs/protocol.md 2.2, "Groups"; decisions.md
56): two processes on one SQLite file, and three nodes on one redis-server. erin makes a
private group on the first node; frank, asking on the last node, is refused until erin
invites him; discovery on any node lists the public groups only; erin changes the topic and
frank's session on the other node receives the change as a `system` entry in order, with
the settings in its meta; a group full to its member limit refuses the next joiner with
limit_exceeded on every node."""

from harness import ServerTestCase, Client, cluster_args, login, http_request


class GroupsTest(ServerTestCase):

    async def test_private_groups_invites_settings_and_discovery_on_sqlite(self):
        argsets, _ = cluster_args(2, self.tmp)
        await self.private_group_across_nodes([self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)])

    async def test_private_groups_invites_settings_and_discovery_on_three_redis_nodes(self):
        redis = self.start_redis()
        argsets, _ = cluster_args(3, self.tmp, extra=["--store", "redis", "--redis", redis.url])
        await self.private_group_across_nodes([self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)])

    def call(self, node, method, path, token, body=None, status=200):
        r = http_request(node, method, path, body, token=token)
        self.assertEqual(r.status, status, r)
        return r.json

    async def private_group_across_nodes(self, nodes):
        first, last = nodes[0], nodes[-1]
        tokens = {u: login(first, u) for u in ("erin", "frank", "gus", "hal")}
        g = "club"
        made = self.call(first, "POST", "/v1/groups", tokens["erin"],
                         {"group": g, "kind": "private", "title": "The Club", "topic": "old"}, 201)
        self.assertEqual((made["kind"], made["title"], made["role"]), ("private", "The Club", "owner"))
        self.call(first, "POST", "/v1/groups", tokens["erin"], {"group": "club-open", "member_limit": 2}, 201)

        refused = self.call(last, "POST", f"/v1/groups/{g}/join", tokens["frank"], status=403)
        self.assertEqual(refused["name"], "permission_denied")
        self.call(last, "GET", f"/v1/groups/{g}", tokens["frank"], status=403)
        for node in nodes:
            listed = self.call(node, "GET", "/v1/directory?prefix=club", tokens["frank"])
            self.assertEqual([(x["group"], x["members"]) for x in listed["groups"]], [("club-open", 1)])

        self.call(last, "POST", f"/v1/groups/{g}/invites", tokens["frank"], {"user": "frank"}, 403)
        self.call(first, "POST", f"/v1/groups/{g}/invites", tokens["erin"], {"user": "frank"})
        self.assertEqual(self.call(last, "POST", f"/v1/groups/{g}/join", tokens["frank"])["role"], "member")

        frank = Client("frank", tokens["frank"])
        await frank.connect(last)
        self.assertEqual((await frank.resume(g))["t"], "resumed")
        changed = self.call(first, "POST", f"/v1/groups/{g}/settings", tokens["erin"], {"topic": "new"})
        self.assertEqual((changed["topic"], changed["title"], changed["kind"]), ("new", "The Club", "private"))
        await frank.wait_for(lambda: frank.last(g) >= changed["id"], 15, "frank receives the settings' change")
        m = frank.groups[g].msgs[changed["id"]]
        self.assertEqual((m["k"], m["u"], m["meta"]["event"], m["meta"]["topic"]), ("system", "erin", "settings", "new"))
        info = self.call(last, "GET", f"/v1/groups/{g}", tokens["frank"])
        self.assertEqual((info["topic"], info["members"], info["role"]), ("new", 2, "member"))

        # club-open holds erin and gus: hal is refused on every node.
        self.call(last, "POST", "/v1/groups/club-open/join", tokens["gus"])
        for node in nodes:
            full = self.call(node, "POST", "/v1/groups/club-open/join", tokens["hal"], status=429)
            self.assertEqual(full["name"], "limit_exceeded")
        await self.finish((frank,), nodes)


if __name__ == "__main__":
    import unittest
    unittest.main()
