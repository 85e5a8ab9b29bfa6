"""c. A large busy group switches to pull (thresholds lowered so it is cheap):
clients follow mode / hint / pulled and still receive everything; a client that
resumes while the group is in pull mode is told so and pulls; once the traffic
stops the group goes back to push and new messages are pushed again."""

import asyncio
import urllib.parse

from harness import (ServerTestCase, Client, cluster_args, login, create_group, join_group,
                     drive, wait_heads, check_client, expected_from_acks, history, check_log,
                     gather_bounded, http_request, scale)

N_MESSAGES = scale("PULL_MESSAGES", 30)  # per sender
PULL_FLAGS = ["--pull-min-members", "5", "--pull-enter-rate", "5", "--pull-exit-rate", "2"]


class PullModeTest(ServerTestCase):

    async def test_busy_group_switches_to_pull_and_back(self):
        argsets, _ = cluster_args(2, self.tmp, extra=PULL_FLAGS)
        nodes = [self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)]
        g = "busy"
        users = [f"m{i}" for i in range(8)]   # m6 joins late, m7 stays offline
        home = {u: nodes[i % 2] for i, u in enumerate(users)}
        tokens = {u: login(nodes[0], u) for u in users}
        create_group(nodes[0], tokens[users[0]], g)
        for u in users[1:]:
            join_group(nodes[1], tokens[u], g)

        senders = users[:6]
        clients = {u: Client(u, tokens[u]) for u in senders}
        await gather_bounded([clients[u].connect(home[u]) for u in senders], 20, "connect")
        await gather_bounded([clients[u].resume(g) for u in senders], 20, "resume")

        plans = {u: [(g, f"{u}:{j}:" + "x" * 40) for j in range(N_MESSAGES)] for u in senders}
        await gather_bounded([drive(clients[u], plans[u], window=4, timeout=60) for u in senders], 70,
                             "busy traffic acknowledged")
        exp = expected_from_acks(self, clients.values(), g)
        head = len(exp)
        await wait_heads([(clients[u], g) for u in senders], {g: head}, 30)

        # Every node saw the same busy stream, so each switched its subscribers to pull.
        for node in nodes:
            on_node = [clients[u] for u in senders if home[u] is node]
            modes = [e for c in on_node for e in c.events_of("mode") if e.get("g") == g]
            self.assertIn("pull", [e["mode"] for e in modes], f"no mode:pull on {node.name}")
        self.assertTrue(any(c.events_of("hint") for c in clients.values()), "no hint in pull mode")
        for c in clients.values():
            self.assertEqual(c.pushed_in_pull, [], f"{c.name}: msg pushed while in pull mode")
            check_client(self, c, g, exp)

        # A member that resumes now (most likely still in pull mode) gets everything:
        # with resumed mode "pull" it pulls, with "push" it is sent the backlog.
        late = Client(users[6], tokens[users[6]])
        await late.connect(nodes[0])
        ans = await late.resume(g)
        self.assertEqual((ans["t"], ans["head"]), ("resumed", head), ans)
        late_mode = ans["mode"]
        await late.wait_for(lambda: late.last(g) >= head, 20, "late member gets everything")
        check_client(self, late, g, exp)

        # HTTP pull: from the tail cache, with an ETag that If-None-Match turns into 304.
        after = max(0, head - 5)
        path = f"/v1/groups/{urllib.parse.quote(g)}/pull?after={after}&limit=100&epoch=1"
        r = await asyncio.to_thread(http_request, nodes[1], "GET", path, token=tokens[users[1]])
        self.assertEqual(r.status, 200, r)
        self.assertEqual([m["id"] for m in r.json["messages"]], list(range(after + 1, head + 1)), r)
        etag = r.headers.get("ETag") or r.headers.get("Etag") or r.headers.get("etag")
        self.assertTrue(etag, f"no ETag: {r.headers}")
        r2 = await asyncio.to_thread(http_request, nodes[1], "GET", path, token=tokens[users[1]],
                                     headers={"If-None-Match": etag})
        self.assertEqual(r2.status, 304, r2)

        # Quiet now: the rate falls under --pull-exit-rate and the group goes back to push;
        # the clients resume, and new messages are pushed again.
        everyone = list(clients.values()) + [late]
        for c in everyone:
            await c.wait_for(lambda: c.groups[g].mode == "push" and c.groups[g].resumed, 20,
                             "mode:push after the traffic stopped")
        for c in everyone:
            self.assertEqual(c.violations, [], c.name)
        sender = clients[users[0]]
        before = {c.name: len(c.events) for c in everyone}
        await drive(sender, [(g, "quiet 1"), (g, "quiet 2")], window=1, timeout=10)
        exp = expected_from_acks(self, everyone, g)
        await wait_heads([(c, g) for c in everyone], {g: len(exp)}, 10)
        for c in everyone:
            self.assertEqual(c.pushed_in_pull, [], c.name)
            new = c.events[before[c.name]:]
            self.assertFalse([e for e in new if e["t"] in ("pulled", "hint")],
                             f"{c.name}: pulled/hinted in push mode")
            check_client(self, c, g, exp)

        ans, msgs = await asyncio.to_thread(history, nodes[0], tokens[users[7]], g)
        check_log(self, g, msgs, ans.get("head"))
        self.assertEqual({m["id"]: (m["u"], m["c"], m["cid"]) for m in msgs}, exp)
        n_pulled = sum(len(c.events_of("pulled")) for c in everyone)
        n_hint = sum(len(c.events_of("hint")) for c in everyone)
        await gather_bounded([c.close() for c in everyone], 10, "close")
        # Checked last so that the delivery checks above run whatever the ETag looks like.
        self.assertEqual(etag, f'"1-{head}-{after}-100"',
                         "ETag is \"<epoch>-<head>-<after>-<limit>\" (docs/protocol.md 3)")
        print(f"\n  pull: {len(exp)} messages, {n_pulled} pulled answers, {n_hint} hints; "
              f"a member resuming right after the traffic was told mode {late_mode}", flush=True)


if __name__ == "__main__":
    import unittest
    unittest.main()
