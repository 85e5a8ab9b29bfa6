"""a. Three nodes on one SQLite file, 50 clients spread over them, several groups:
every client ends with every message of its groups, once, in order, as acknowledged."""

import asyncio
import time

from harness import (ServerTestCase, Client, cluster_args, set_up_groups, drive, wait_heads, check_client, expected_from_acks, history, check_log,
                     gather_bounded, scale)

N_USERS = 50
GROUP_SIZE = 10
N_MESSAGES = scale("MESSAGES", 20)  # per client


def membership():
    """5 groups of 10 users; the first user of each group is also in the next group."""
    users = [f"user{i:02d}" for i in range(N_USERS)]
    n_groups = N_USERS // GROUP_SIZE
    groups = {f"room-{k}": users[k * GROUP_SIZE:(k + 1) * GROUP_SIZE] for k in range(n_groups)}
    for k in range(n_groups):
        groups[f"room-{(k + 1) % n_groups}"].append(users[k * GROUP_SIZE])
    return users, groups


class ClusterTest(ServerTestCase):

    async def test_fifty_clients_three_nodes_exactly_once_in_order(self):
        argsets, _ = cluster_args(3, self.tmp)
        nodes = [self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)]
        users, groups = membership()
        # Tokens from one node are good on the others (shared --secret).
        home, tokens, user_groups = set_up_groups(nodes, users, groups)

        clients = {u: Client(u, tokens[u]) for u in users}
        await gather_bounded([c.connect(home[u]) for u, c in clients.items()], 30, "connect 50 clients")
        for u, c in clients.items():
            self.assertEqual(c.hello["u"], u)
            self.assertEqual(c.hello["node"], home[u].name, "hello names the node")
        answers = await gather_bounded([c.resume(g) for u, c in clients.items() for g in user_groups[u]],
                                       30, "resume every group")
        for a in answers:
            self.assertEqual((a["t"], a["head"], a["mode"]), ("resumed", 0, "push"), a)

        plans = {u: [(user_groups[u][j % len(user_groups[u])], f"{u} says {j} ✓ «ü»")
                     for j in range(N_MESSAGES)] for u in users}
        t0 = time.monotonic()
        await gather_bounded([drive(clients[u], plans[u], window=4, timeout=90) for u in users],
                             100, "every send acknowledged")
        t_acked = time.monotonic() - t0

        heads = {}
        for g, members in groups.items():
            exp = expected_from_acks(self, [clients[u] for u in members], g)
            heads[g] = len(exp)
            self.assertEqual(sorted(exp), list(range(1, len(exp) + 1)), f"{g}: acked ids not dense")
            self.assertEqual(len(exp), sum(1 for u in members for (gg, _) in plans[u] if gg == g))
        for c in clients.values():
            for p in c.sends.values():
                self.assertFalse(p.ack["dup"], f"first ack of {p.cid} says dup")
                self.assertEqual(len(p.acks), 1, f"{p.cid} acked more than once")

        await wait_heads([(clients[u], g) for u in users for g in user_groups[u]], heads, 30)
        t_delivered = time.monotonic() - t0
        for g, members in groups.items():
            exp = expected_from_acks(self, [clients[u] for u in members], g)
            for u in members:
                check_client(self, clients[u], g, exp)

        # The stored log, read over HTTP on every node, is the same.
        for g, members in groups.items():
            exp = expected_from_acks(self, [clients[u] for u in members], g)
            for node in nodes:
                ans, msgs = await asyncio.to_thread(history, node, tokens[members[1]], g)
                check_log(self, g, msgs, ans.get("head"))
                self.assertEqual({m["id"]: (m["u"], m["c"], m["cid"]) for m in msgs}, exp,
                                 f"{g} on {node.name}")
        await gather_bounded([c.close() for c in clients.values()], 20, "close clients")
        print(f"\n  cluster: {sum(heads.values())} messages, acked in {t_acked:.1f}s, "
              f"delivered to all in {t_delivered:.1f}s", flush=True)
        for n in nodes:
            self.assert_healthy(n)


if __name__ == "__main__":
    import unittest
    unittest.main()
