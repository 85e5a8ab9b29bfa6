"""b. A node killed with SIGKILL mid-traffic: its clients reconnect to another node,
resume from their last id and resend what was not acknowledged with the same cid.
In the end every client holds every message once and in order, and every send is
stored once under the id its acks name."""

import asyncio
import signal

from harness import (ServerTestCase, Client, cluster_args, login, create_group, join_group, connect_retrying,
                     drive, wait_heads, check_client, expected_from_acks, history, check_log,
                     gather_bounded, scale)

N_USERS = 18
N_MESSAGES = scale("FAILOVER_MESSAGES", 30)  # per client


class FailoverTest(ServerTestCase):

    async def test_sigkill_node_clients_resume_elsewhere(self):
        argsets, _ = cluster_args(3, self.tmp)
        nodes = [self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)]
        victim = nodes[1]
        users = [f"u{i:02d}" for i in range(N_USERS)]
        home = {u: nodes[i % 3] for i, u in enumerate(users)}
        # Two groups, each with members on every node; u00..u05 are in both.
        groups = {"alpha": users[:12], "beta": users[:6] + users[12:]}
        tokens = {u: login(nodes[0], u) for u in users}
        for g, members in groups.items():
            create_group(nodes[0], tokens[members[0]], g)
            for u in members[1:]:
                join_group(nodes[2], tokens[u], g)
        user_groups = {u: [g for g, m in groups.items() if u in m] for u in users}

        clients = {u: Client(u, tokens[u]) for u in users}
        await gather_bounded([c.connect(home[u]) for u, c in clients.items()], 30, "connect")
        await gather_bounded([c.resume(g) for u, c in clients.items() for g in user_groups[u]], 30,
                             "resume")

        survivors = [nodes[0], nodes[2]]
        moved = {}

        async def reconnect(client):
            # Where it was is gone; go to a surviving node (alternating) and resume there.
            target = survivors[len(moved) % 2]
            moved[client.user] = target
            await connect_retrying(client, target)

        plans = {u: [(user_groups[u][j % len(user_groups[u])], f"{u}/{j}") for j in range(N_MESSAGES)]
                 for u in users}
        total = sum(len(p) for p in plans.values())

        third = asyncio.Event()
        acked = [0]

        def count(_client, _p):
            acked[0] += 1
            if acked[0] >= total // 3:
                third.set()
        for c in clients.values():
            c.on_ack = count

        async def killer():
            # Mid-traffic: once a third of all sends are acknowledged.
            await asyncio.wait_for(third.wait(), 60)
            in_flight = sum(len(clients[u].unacked()) for u in users if home[u] is victim)
            victim.send_signal(signal.SIGKILL)
            self.assertIsNotNone(victim.wait(10), "SIGKILL did not end the node")
            return in_flight

        results = await gather_bounded(
            [killer()] + [drive(clients[u], plans[u], window=4, timeout=90, reconnect=reconnect)
                          for u in users], 100, "every send acknowledged across the kill")
        in_flight_at_kill = results[0]
        victims = [u for u in users if home[u] is victim]
        # A client of the killed node that had sent everything before the kill still has
        # to move to receive the rest.
        for u in victims:
            if clients[u].connected_to is victim:
                await clients[u].wait_closed(10)
                await reconnect(clients[u])
        self.assertEqual(sorted(moved), sorted(victims), "exactly the killed node's clients reconnected")

        heads = {}
        for g, members in groups.items():
            exp = expected_from_acks(self, [clients[u] for u in members], g)
            heads[g] = len(exp)
            n_sent = sum(1 for u in members for gg, _ in plans[u] if gg == g)
            self.assertEqual(len(exp), n_sent, f"{g}: every send acknowledged once")
            self.assertEqual(sorted(exp), list(range(1, n_sent + 1)), f"{g}: acked ids dense")

        resent = dups = 0
        for c in clients.values():
            for p in c.sends.values():
                self.assertIsNotNone(p.ack, f"{p.cid} never acknowledged")
                ids = {(a["id"], a["ep"]) for a in p.acks}
                self.assertEqual(len(ids), 1, f"{p.cid}: acks disagree {p.acks}")
                resent += p.sent > 1
                dups += any(a["dup"] for a in p.acks)
                if p.sent == 1:
                    self.assertEqual(len(p.acks), 1)
                    self.assertFalse(p.ack["dup"])

        await wait_heads([(clients[u], g) for u in users for g in user_groups[u]], heads, 30)
        for g, members in groups.items():
            exp = expected_from_acks(self, [clients[u] for u in members], g)
            for u in members:
                check_client(self, clients[u], g, exp)
            # Stored once each, as acknowledged.
            ans, msgs = await asyncio.to_thread(history, nodes[0], tokens[members[0]], g)
            check_log(self, g, msgs, ans.get("head"))
            self.assertEqual({m["id"]: (m["u"], m["c"], m["cid"]) for m in msgs}, exp, g)
        await gather_bounded([c.close() for c in clients.values()], 20, "close")
        print(f"\n  failover: {total} messages; {in_flight_at_kill} unacked on the killed node, "
              f"{resent} resent, {dups} answered dup:true", flush=True)
        for n in survivors:
            self.assert_healthy(n)


if __name__ == "__main__":
    import unittest
    unittest.main()
