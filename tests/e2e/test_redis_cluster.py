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
import collections
import contextlib
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

from harness import (HOST, CODE_NAMES, ServerTestCase, Client, cluster_args, free_port,
                     set_up_groups, connect_retrying, drive, wait_heads, check_client, expected_from_acks,
                     history, check_log, gather_bounded, scale)

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


def membership():
    """10 groups of 10 users; the first two users of each group are also in the next
    group (12 members per group, 20 users in two groups)."""
    users = [f"user{i:03d}" for i in range(N_USERS)]
    n_groups = N_USERS // GROUP_SIZE
    groups = {f"room-{k}": users[k * GROUP_SIZE:(k + 1) * GROUP_SIZE] for k in range(n_groups)}
    for k in range(n_groups):
        groups[f"room-{(k + 1) % n_groups}"] += users[k * GROUP_SIZE:k * GROUP_SIZE + 2]
    return users, groups


# ---------------------------------------------------------------------------
# Redis


def redis_ping(port, timeout=1.0):
    """The first reply line to PING ('+PONG', '-LOADING ...'), or None if none came."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            data = b""
            deadline = time.monotonic() + timeout
            while b"\r\n" not in data and time.monotonic() < deadline:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
            return data.split(b"\r\n", 1)[0].decode(errors="replace") if data else None
    except OSError:
        return None


class RedisServer:
    """A redis-server process on 127.0.0.1:`port`, appendonly with fsync per write, its
    files under `workdir`; can be killed and started again on the same port and dir."""

    def __init__(self, workdir, port):
        self.workdir = workdir
        self.port = port
        self.proc = None
        self.log_path = os.path.join(workdir, "redis.log")
        self.starts = 0

    @property
    def url(self):
        return f"redis://{HOST}:{self.port}"

    def start(self, deadline=10.0):
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server is not installed (apt-get install redis-server); "
                                 "e2e/redis_cluster needs it")
        self.starts += 1
        self.proc = subprocess.Popen(
            [binary, "--bind", HOST, "--port", str(self.port), "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", self.workdir, "--logfile", self.log_path,
             "--daemonize", "no", "--protected-mode", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + deadline
        answer = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}\n{self.log_tail()}")
            answer = redis_ping(self.port, timeout=0.5)
            if answer == "+PONG":
                return self
            time.sleep(0.05)
        raise AssertionError(f"redis-server on {self.port}: no PONG within {deadline}s "
                             f"(last answer {answer!r})\n{self.log_tail()}")

    def kill(self, sig=signal.SIGKILL):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def stop(self):
        self.kill(signal.SIGTERM)

    def log_tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                return "--- redis log:\n" + "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
        except OSError:
            return "--- no redis log"


# ---------------------------------------------------------------------------
# A TCP proxy that can be cut


def _reset(writer):
    """Closes a stream with a TCP reset (no FIN)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class TcpProxy:
    """Forwards 127.0.0.1:port to 127.0.0.1:target, on its own thread and event loop (so
    it keeps forwarding whatever the test's loop does). `cut()` resets every open
    connection and resets new ones as soon as they are accepted; `heal()` ends that."""

    def __init__(self, target_port, name):
        self.target = target_port
        self.name = name
        self.cut_now = False
        self.pairs = set()
        self.accepted = 0
        self.refused = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"proxy-{name}", daemon=True)
        self.thread.start()
        self.server = None
        self.port = self._call(self._start())

    def _call(self, coro, timeout=10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self):
        self.server = await asyncio.start_server(self._handle, HOST, 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader, writer):
        if self.cut_now:
            self.refused += 1
            _reset(writer)
            return
        try:
            up_r, up_w = await asyncio.wait_for(asyncio.open_connection(HOST, self.target), 5)
        except (OSError, asyncio.TimeoutError):
            _reset(writer)
            return
        if self.cut_now:
            self.refused += 1
            _reset(writer)
            _reset(up_w)
            return
        self.accepted += 1
        pair = (writer, up_w)
        self.pairs.add(pair)
        tasks = [asyncio.ensure_future(self._pipe(reader, up_w)),
                 asyncio.ensure_future(self._pipe(up_r, writer))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            self.pairs.discard(pair)
            for w in pair:
                with contextlib.suppress(Exception):
                    w.close()

    @staticmethod
    async def _pipe(reader, writer):
        with contextlib.suppress(OSError, asyncio.CancelledError):
            for _ in range(100000000):
                data = await reader.read(65536)
                if not data:
                    return
                writer.write(data)
                await writer.drain()

    async def _cut(self):
        self.cut_now = True
        n = len(self.pairs)
        for a, b in list(self.pairs):
            _reset(a)
            _reset(b)
        return n

    async def _heal(self):
        self.cut_now = False

    def cut(self):
        """Returns how many open connections were reset."""
        return self._call(self._cut())

    def heal(self):
        self._call(self._heal())

    def close(self):
        async def shut():
            await self._cut()
            self.server.close()
        with contextlib.suppress(Exception):
            self._call(shut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# ---------------------------------------------------------------------------


class RedisClusterTest(ServerTestCase):

    def setUp(self):
        if shutil.which("redis-server") is None:
            self.fail("redis-server is not installed (apt-get install redis-server): "
                      "e2e/redis_cluster needs it")
        super().setUp()
        self.redis = RedisServer(self.tmp, free_port())
        # Cleanups run after tearDown, which stops the parley servers first.
        self.addCleanup(self.redis.stop)
        self.redis.start()

    def tearDown(self):
        if self._failed():
            sys.stderr.write("\n" + self.redis.log_tail() + "\n")
        super().tearDown()

    async def test_hundred_clients_partition_node_kill_redis_restart(self):
        t_start = time.monotonic()
        redis = self.redis
        argsets, peer_ports = cluster_args(3, self.tmp, extra=["--store", "redis", "--redis", redis.url])
        # node-1 -> node-2 and node-2 -> node-1 go through proxies that can be cut.
        to_2 = TcpProxy(peer_ports[1], "node-1->node-2")
        to_1 = TcpProxy(peer_ports[0], "node-2->node-1")
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

        users, groups = membership()
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

        acked = [0]
        ack_event = [asyncio.Event()]

        redis_down = [False]
        acked_while_down = []

        def on_ack(client, p):
            acked[0] += 1
            if redis_down[0]:
                acked_while_down.append((client.user, p.cid))
            ack_event[0].set()
            if acked[0] in (total // 4, total // 2, total * 3 // 4, total):
                log("acked")
        for c in clients.values():
            c.on_ack = on_ack

        async def until_acked(n, timeout, what):
            end = time.monotonic() + timeout
            while acked[0] < n:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{what}: {acked[0]}/{n} acked after {timeout}s")
                ack_event[0] = asyncio.Event()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(ack_event[0].wait(), min(left, 0.5))

        async def in_flight(what, among=None, timeout=5.0):
            # Traffic is paced: wait for a moment when sends are out (a short bounded poll:
            # a send going out has no event of its own).
            end = time.monotonic() + timeout
            for _ in range(100000):
                self.assertLess(acked[0], total, f"{what}: traffic already over "
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
            sys.stderr.write(f"\n  [{time.monotonic() - t_start:6.1f}s, {acked[0]}/{total} acked] {what}\n")

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
            target = {g: 0 for g in groups}
            for c in clients.values():
                for p in c.sends.values():
                    if p.ack is not None:
                        target[p.g] = max(target[p.g], p.ack["id"])
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
            await until_acked(max(total * 50 // 100, acked[0] + total // 20), 60, "phase 2 start")
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
            await until_acked(max(total * 65 // 100, acked[0] + total // 20), 60, "phase 3 start")
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
            acked_at_restart = acked[0]
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
        failed = [(c.name, p.cid, p.errors[-1:]) for c in clients.values() for p in c.sends.values()
                  if p.failed]
        self.assertEqual(failed, [], "sends given up (an error other than unavailable/closed)")
        error_codes = collections.Counter(CODE_NAMES.get(e.get("code"), e.get("code"))
                                          for c in clients.values() for p in c.sends.values()
                                          for e in p.errors)
        resent = dups = 0
        for c in clients.values():
            for p in c.sends.values():
                self.assertIsNotNone(p.ack, f"{p.cid} never acknowledged")
                self.assertEqual(len({(a["id"], a["ep"]) for a in p.acks}), 1, f"{p.cid}: acks disagree {p.acks}")
                resent += p.sent > 1
                dups += any(a["dup"] for a in p.acks)
                if p.sent == 1:
                    self.assertEqual(len(p.acks), 1, p.cid)
                    self.assertFalse(p.ack["dup"], p.cid)
        heads = {}
        for g, members in groups.items():
            exp = expected_from_acks(self, [clients[u] for u in members], g)
            heads[g] = len(exp)
            n_sent = sum(1 for u in members for gg, _ in plans[u] if gg == g)
            self.assertEqual(len(exp), n_sent, f"{g}: every send acknowledged under its own id")
            self.assertEqual(sorted(exp), list(range(1, n_sent + 1)), f"{g}: acked ids dense")

        await wait_heads([(clients[u], g) for u in users for g in user_groups[u]], heads, 30)
        t_delivered = time.monotonic() - t0
        for g, members in groups.items():
            exp = expected_from_acks(self, [clients[u] for u in members], g)
            for u in members:
                check_client(self, clients[u], g, exp)
            for node in survivors:
                ans, msgs = await asyncio.to_thread(history, node, tokens[members[0]], g)
                check_log(self, g, msgs, ans.get("head"))
                self.assertEqual({m["id"]: (m["u"], m["c"], m["cid"]) for m in msgs}, exp,
                                 f"{g}: history on {node.name} is the acknowledged set")
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
