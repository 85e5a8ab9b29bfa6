"""Three nodes on one Redis (--store redis), 100 clients over 10 overlapping groups,
with three faults during traffic, one after the other:

1. the peer link between node-1 and node-2 (both directions, through a TCP proxy in
   this test) is cut, traffic goes on, the link is healed; every client must then hold
   every message acknowledged so far within a bound (gap detection and the head sync
   from the store heal what the cut lost);
2. node-3 is killed with SIGKILL: its clients reconnect to node-1/node-2, resume and
   resend what was not acknowledged with the same cid;
3. Redis is killed with SIGKILL and started again on the same port and directory
   (appendonly, appendfsync always: nothing acknowledged is lost); meanwhile sends are
   answered `unavailable` and resent with the same cid after a short backoff.

In the end every client holds, for each of its groups, every acknowledged message
exactly once and in order, and the HTTP history on each surviving node is exactly the
acknowledged set. Needs redis-server (7.0 or newer): without it the test fails.
"""

import asyncio
import random
import signal
import sys
import time
import unittest

from harness import (HOST, ServerTestCase, Client, TcpProxy, AckCounter, cluster_args, overlapping_groups,
                     set_up_groups, connect_retrying, drive, wait_heads, acked_heads, send_errors,
                     check_acks, check_groups, expected_from_acks, gather_bounded, scale)

N_USERS = 100
GROUP_SIZE = 10
N_MESSAGES = scale("REDIS_MESSAGES", 40)   # per client
# Clients send in bursts of BURST with ~PACE_S s between them (~400 messages/s over
# 100 clients), so that traffic lasts long enough for the three faults to happen in it.
BURST = 2
PACE_S = 0.5
# From the heal of the peer link until every client holds every message acknowledged
# before it. The head sync from the store runs every ~1 s and a gap is re-asked every
# 250 ms, so ~1-2 s is expected; 15 s is generous for 2 busy cores.
CONVERGE_BOUND_S = 15.0
REDIS_DOWN_S = 1.5          # how long Redis stays down in phase 3
RETRY_DELAY_S = 0.2         # client backoff before resending an `unavailable` send


class RedisClusterTest(ServerTestCase):

    async def test_hundred_clients_partition_node_kill_redis_restart(self):
        t_start = time.monotonic()
        redis = self.start_redis()
        argsets, peer_ports = cluster_args(3, self.tmp, extra=["--store", "redis", "--redis", redis.url])
        # node-1 -> node-2 and node-2 -> node-1 go through proxies that can be cut.
        to_2 = TcpProxy((HOST, peer_ports[1]), "node-1->node-2")
        to_1 = TcpProxy((HOST, peer_ports[0]), "node-2->node-1")
        self.addCleanup(to_2.close)
        self.addCleanup(to_1.close)
        argsets[0] = [f"node-2={HOST}:{to_2.port}" if a == f"node-2={HOST}:{peer_ports[1]}" else a
                      for a in argsets[0]]
        argsets[1] = [f"node-1={HOST}:{to_1.port}" if a == f"node-1={HOST}:{peer_ports[0]}" else a
                      for a in argsets[1]]
        self.assertIn(f"node-2={HOST}:{to_2.port}", argsets[0])
        self.assertIn(f"node-1={HOST}:{to_1.port}", argsets[1])
        nodes = [self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)]
        victim = nodes[2]
        survivors = nodes[:2]

        # 10 groups of 10 users; the first two users of each group are also in the next
        # group (12 members per group, 20 users in two groups).
        users, groups = overlapping_groups(N_USERS, GROUP_SIZE, overlap=2)
        home, tokens, user_groups = set_up_groups(nodes, users, groups)

        clients = {u: Client(u, tokens[u]) for u in users}
        await gather_bounded([c.connect(home[u]) for u, c in clients.items()], 30, "connect 100 clients")
        answers = await gather_bounded([c.resume(g) for u, c in clients.items() for g in user_groups[u]],
                                       30, "resume every group")
        for a in answers:
            self.assertEqual((a["t"], a["head"], a["mode"]), ("resumed", 0, "push"), a)

        plans = {u: [(user_groups[u][j % len(user_groups[u])], f"{u} says {j} «ü»")
                     for j in range(N_MESSAGES)] for u in users}
        total = sum(len(p) for p in plans.values())

        redis_down = [False]
        acked_while_down = []

        def on_ack(client, p):
            if redis_down[0]:
                acked_while_down.append((client.user, p.cid))
            if acks.count in (total // 4, total // 2, total * 3 // 4, total):
                log("acked")
        acks = AckCounter(clients.values(), on_ack)
        until_acked = acks.until

        async def in_flight(what, among=None, timeout=5.0):
            # Traffic is paced: wait for a moment when sends are out (a short bounded poll:
            # a send going out has no event of its own).
            end = time.monotonic() + timeout
            for _ in range(100000):
                self.assertLess(acks.count, total, f"{what}: traffic already over "
                                "(raise PARLEY_E2E_REDIS_MESSAGES)")
                n = sum(len(c.unacked()) for c in (among or clients.values()))
                if n > 0:
                    return n
                self.assertLess(time.monotonic(), end, f"{what}: no send in flight for {timeout}s")
                await asyncio.sleep(0.002)
            raise AssertionError(f"{what}: loop bound")

        moved = {}
        locks = {u: asyncio.Lock() for u in users}

        async def reconnect(client):
            # Only node-3's clients lose their connection; they go to node-1/node-2
            # (alternating). Called by drive and by the conductor: once per client.
            async with locks[client.user]:
                if client.open and client.connected_to is not victim:
                    return
                target = moved.get(client.user) or survivors[len(moved) % 2]
                moved[client.user] = target
                await connect_retrying(client, target)

        figures = {}

        def log(what):
            # Progress of the phases, for a run that fails or is slow.
            sys.stderr.write(f"\n  [{time.monotonic() - t_start:6.1f}s, {acks.count}/{total} acked] {what}\n")

        async def conductor():
            # -- 1. cut the node-1 <-> node-2 peer link, traffic goes on, heal it.
            await until_acked(total * 15 // 100, 60, "phase 1 start")
            figures["cut_in_flight"] = await in_flight("cut")
            figures["cut_reset"] = to_2.cut() + to_1.cut()
            log("peer link node-1 <-> node-2 cut")
            t_cut = time.monotonic()
            await until_acked(total * 35 // 100, 60, "traffic while cut")
            figures["cut_s"] = time.monotonic() - t_cut
            figures["heal_in_flight"] = await in_flight("heal")
            # Every message acknowledged so far: per group, the highest id acked.
            target = acked_heads(clients.values(), groups)
            behind = sum(1 for u in users for g in user_groups[u] if clients[u].last(g) < target[g])
            to_2.heal()
            to_1.heal()
            log(f"peer link healed; {behind} (client, group) behind")
            t_heal = time.monotonic()
            await wait_heads([(clients[u], g) for u in users for g in user_groups[u]], target,
                             CONVERGE_BOUND_S + 5)
            figures["converge_s"] = time.monotonic() - t_heal
            figures["behind_at_heal"] = behind
            figures["refused_while_cut"] = to_2.refused + to_1.refused
            log(f"converged {figures['converge_s']:.2f}s after the heal")
            self.assertLess(figures["converge_s"], CONVERGE_BOUND_S,
                            "time to converge after healing the peer link")

            # -- 2. SIGKILL node-3; its clients move to node-1/node-2.
            await until_acked(max(total * 50 // 100, acks.count + total // 20), 60, "phase 2 start")
            victims = [u for u in users if home[u] is victim]
            figures["kill_in_flight"] = await in_flight("node kill", [clients[u] for u in victims])
            victim.send_signal(signal.SIGKILL)
            log("node-3 SIGKILLed")
            self.assertIsNotNone(await asyncio.to_thread(victim.wait, 10), "SIGKILL did not end node-3")
            t_kill = time.monotonic()
            for u in victims:
                await clients[u].wait_for(lambda c=clients[u]: not c.open or c.connected_to is not victim,
                                          10, "the connection to node-3 to close")
            await gather_bounded([reconnect(clients[u]) for u in victims], 30, "victims reconnect")
            for u in victims:
                c = clients[u]
                await c.wait_for(lambda c=c: all(c.groups[g].resumed for g in user_groups[c.user]), 15,
                                 "every group resumed after the move")
            figures["moved_s"] = time.monotonic() - t_kill
            log("node-3's clients moved and resumed")

            # -- 3. SIGKILL Redis mid-traffic, start it again on the same port and dir.
            await until_acked(max(total * 65 // 100, acks.count + total // 20), 60, "phase 3 start")
            figures["redis_in_flight"] = await in_flight("redis kill")
            errors_before = sum(len(p.errors) for c in clients.values() for p in c.sends.values())
            figures["errors_before_redis"] = errors_before
            sent_before_kill = {(c.user, p.cid) for c in clients.values() for p in c.unacked()}
            redis_down[0] = True
            redis.kill(signal.SIGKILL)
            log("redis SIGKILLed")
            t_down = time.monotonic()
            await asyncio.sleep(REDIS_DOWN_S)  # the outage: sends are answered `unavailable`
            redis_down[0] = False
            t_restart = time.monotonic()
            figures["redis_down_s"] = t_restart - t_down
            acked_at_restart = acks.count
            await asyncio.to_thread(redis.start)
            log("redis answers PING again")
            # Only a send Redis took before it died can be acknowledged while it is down.
            figures["acked_while_down"] = len(acked_while_down)
            self.assertEqual([k for k in acked_while_down if k not in sent_before_kill], [],
                             "acknowledged while Redis was down, but sent after it died")
            await until_acked(acked_at_restart + 1, 30, "first ack after Redis came back")
            figures["first_ack_after_redis_s"] = time.monotonic() - t_restart
            errs = sum(len(p.errors) for c in clients.values() for p in c.sends.values())
            figures["errors_redis"] = errs - errors_before

        async def paced(client, plan):
            rng = random.Random(client.user)
            await asyncio.sleep(rng.uniform(0, PACE_S))
            for k in range(0, len(plan), BURST):
                await drive(client, plan[k:k + BURST], window=4, timeout=60, reconnect=reconnect,
                            retry_delay=RETRY_DELAY_S)
                await asyncio.sleep(rng.uniform(0.5, 1.5) * PACE_S)

        t0 = time.monotonic()
        await gather_bounded([conductor()] + [paced(clients[u], plans[u]) for u in users],
                             160, "every send acknowledged across the three faults")
        t_acked = time.monotonic() - t0
        victims = [u for u in users if home[u] is victim]
        # A client of node-3 whose sends were all acked before the kill still moves.
        for u in victims:
            await reconnect(clients[u])
        self.assertEqual(sorted(moved), sorted(victims), "exactly node-3's clients moved")

        # Every send acknowledged, once per id, consistently across resends.
        resent, dups = check_acks(self, clients.values())
        error_codes = send_errors(clients.values())
        heads = {}
        for g, members in groups.items():
            exp = expected_from_acks(self, [clients[u] for u in members], g)
            heads[g] = len(exp)
            n_sent = sum(1 for u in members for gg, _ in plans[u] if gg == g)
            self.assertEqual(len(exp), n_sent, f"{g}: every send acknowledged under its own id")
            self.assertEqual(sorted(exp), list(range(1, n_sent + 1)), f"{g}: acked ids dense")

        await wait_heads([(clients[u], g) for u in users for g in user_groups[u]], heads, 30)
        t_delivered = time.monotonic() - t0
        await check_groups(self, clients, groups, tokens, survivors)
        await gather_bounded([c.close() for c in clients.values()], 20, "close clients")
        for n in survivors:
            self.assert_healthy(n, "at the end")

        f = figures
        print(f"\n  redis_cluster: {total} messages from {N_USERS} clients in {len(groups)} groups, "
              f"acked in {t_acked:.1f}s, delivered to all in {t_delivered:.1f}s, "
              f"test total {time.monotonic() - t_start:.1f}s"
              f"\n    1. peer link cut {f['cut_s']:.1f}s ({f['cut_reset']} connections reset, "
              f"{f['refused_while_cut']} refused); {f['behind_at_heal']} (client, group) behind at heal; "
              f"converged {f['converge_s']:.2f}s after healing (bound {CONVERGE_BOUND_S:.0f}s)"
              f"\n    2. node-3 SIGKILLed with {f['kill_in_flight']} of its sends unacked; "
              f"{len(victims)} clients moved and resumed in {f['moved_s']:.1f}s"
              f"\n    3. Redis SIGKILLed with {f['redis_in_flight']} sends in flight, started again "
              f"after {f['redis_down_s']:.1f}s; {f['errors_before_redis']} send errors before, "
              f"{f['errors_redis']} until the first ack after the restart, "
              f"{f['acked_while_down']} acks while down, first ack {f['first_ack_after_redis_s']:.2f}s "
              f"after restart"
              f"\n    {resent} sends resent, {dups} answered dup:true; send errors by code over the run: "
              f"{dict(error_codes)}", flush=True)


if __name__ == "__main__":
    unittest.main()
