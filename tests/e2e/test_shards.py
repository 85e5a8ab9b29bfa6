"""One parley-server process with --threads 4 (four shards on one port, docs/decisions.md 46):
connections spread over the shards, every session id is unique in the process, /metrics
counts the whole process, and a group whose members sit on different shards gets every
message, once, in order, as acknowledged."""

import asyncio
import re

from harness import (ServerTestCase, Client, single_args, login, create_group, join_group, drive,
                     wait_heads, check_client, expected_from_acks, http_request, gather_bounded, scale)

N_USERS = 40
SHARDS = 4
N_MESSAGES = scale("SHARD_MESSAGES", 10)  # per client


def metric(server, name):
    r = http_request(server, "GET", "/metrics")
    assert r.status == 200, r
    m = re.search(rf"^{name} (\S+)$", r.body.decode(), re.M)
    return float(m.group(1)) if m else 0.0


class ShardsTest(ServerTestCase):

    async def test_one_group_across_four_shards(self):
        s = self.start_server("node-1", single_args(self.tmp, extra=["--threads", str(SHARDS)]))
        users = [f"u{i:02d}" for i in range(N_USERS)]
        tokens = {u: login(s, u) for u in users}
        g = "everyone"
        create_group(s, tokens[users[0]], g)
        for u in users[1:]:
            join_group(s, tokens[u], g)
        clients = [Client(u, tokens[u]) for u in users]
        await gather_bounded([c.connect(s) for c in clients], 30, "connect")

        sessions = [c.hello["session"] for c in clients]
        shards = [c.hello["shard"] for c in clients]
        self.assertEqual(len(set(sessions)), N_USERS, f"session ids repeat: {sorted(sessions)}")
        self.assertTrue(all(0 <= k < SHARDS for k in shards), shards)
        # 40 connections over 4 listening sockets: all on fewer than 3 has odds of ~1e-10.
        self.assertGreaterEqual(len(set(shards)), 3, f"connections by shard: {shards}")
        for c in clients:
            self.assertEqual(c.hello["node"], "node-1", "hello names the process's node id")
        self.assertEqual(await asyncio.to_thread(metric, s, "parley_connections"), N_USERS)

        answers = await gather_bounded([c.resume(g) for c in clients], 30, "resume")
        for a in answers:
            self.assertEqual(a["t"], "resumed", a)
        plans = [[(g, f"{c.user} #{j}") for j in range(N_MESSAGES)] for c in clients]
        await gather_bounded([drive(c, p, window=2, timeout=60) for c, p in zip(clients, plans)],
                             90, "every send acknowledged")
        exp = expected_from_acks(self, clients, g)
        self.assertEqual(sorted(exp), list(range(1, N_USERS * N_MESSAGES + 1)), "acked ids are dense")
        await wait_heads([(c, g) for c in clients], {g: len(exp)}, 30)
        for c in clients:
            check_client(self, c, g, exp)
        # Each message reached every session: once on the shard that took it, by a local
        # peer batch on the others.
        self.assertEqual(await asyncio.to_thread(metric, s, "parley_messages_out_total"),
                         N_USERS * len(exp))
        self.assertGreater(await asyncio.to_thread(metric, s, "parley_peer_batches_in_total"), 0)
        await gather_bounded([c.close() for c in clients], 20, "close")
        self.assert_healthy(s)


if __name__ == "__main__":
    import unittest
    unittest.main()
