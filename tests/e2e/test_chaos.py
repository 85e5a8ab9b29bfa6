"""Network chaos: three nodes on one SQLite file, each in its own network namespace
made by this test, 30 clients over 5 overlapping groups, paced traffic through:

- random drop: each node's namespace drops DROP_PERCENT % of the peer-link packets it
  receives (nft `numgen random`, on the peer ports only, never on the client port),
  from before the traffic until every client holds every message;
- latency: node-3's peer links, both ways, go through a delay proxy in this test that
  holds every chunk DELAY_MS (random per chunk, order kept): `tc netem` is not
  available on this kernel;
- link cuts that heal: all traffic between node-1 and node-2 is dropped silently (nft
  in node-1's namespace, both directions: no reset, open connections hang until a
  timeout notices) for CUTS_S seconds, once shorter and once longer than
  --peer-timeout-ms. From each heal, every client must hold every message acknowledged
  before it within CONVERGE_BOUND_S (gap detection, peer retries and the head sync
  from the store heal what was lost). The nodes share one SQLite file, so the head sync
  and the catch-ups read around a cut link too: what is measured after a heal is
  mostly the ordinary delivery lag under drop and delay, and a cut that never heals
  does not fail the test (only a slow or stuck delivery does).

In the end the e2e invariants hold: every send acknowledged once under one id, ids
dense, every client holds every message of its groups once and in order, the HTTP
history on each node is exactly the acknowledged set, and every node is healthy.

Topology (names and subnet from the test's pid, so that runs do not clash; a leftover
of a crashed run with the same names is removed first): a hub namespace with a
bridge; a veth from each node's namespace (10.A.B.1-3) and one from the root
namespace (10.A.B.254: the clients, the HTTP calls and the delay proxy) into it. Nodes
listen for clients on 10.A.B.i:8080 and for peers on 10.A.B.i:7000. Everything is
removed at the end, also on failure.

Needs root, `ip` (iproute2) and `nft` (nftables): without them the test fails.
"""

import asyncio
import collections
import contextlib
import json
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

from harness import (CODE_NAMES, Server, ServerTestCase, Client, set_up_groups, drive, wait_heads,
                     check_client, expected_from_acks, history, check_log, gather_bounded,
                     http_request, scale)

N_USERS = 30
GROUP_SIZE = 6
CLIENT_PORT = 8080          # on each node's own address (each namespace has its own ports)
PEER_PORT = 7000            # --peer-listen of each node
PROXY_PORT_BASE = 7001      # delay proxy on the root address: 7001 -> node-1, 7002 -> node-2, ...
PEER_PORTS = "7000-7099"    # what the random drop applies to (peer listeners and the proxy)
DROP_PERCENT = scale("CHAOS_DROP_PERCENT", 10)
DELAY_MS = (30, 80)         # added by the proxy to each chunk on node-3's peer links
PEER_TIMEOUT_MS = 2000      # --peer-timeout-ms (the default, said explicitly)
# node-1 <-> node-2 cut for these long: once under --peer-timeout-ms (a call in flight
# may still get through after the heal), once well over it (calls time out and retry).
CUTS_S = (1.0, 4.0)
# From a heal until every client holds every message acknowledged before it. A gap is
# re-asked after 250 ms and the head sync from the store runs every ~1 s, with 10 %
# of the peer packets dropped on top (a lost SYN costs 1 s): a few seconds are
# expected; 20 s is generous for 2 busy cores.
CONVERGE_BOUND_S = 20.0
# Clients send BURST messages every ~PACE_S s (~100 messages/s over 30 clients) until
# the conductor has run every fault and ACKS_BETWEEN more sends were acknowledged.
BURST = 2
PACE_S = 0.6
ACKS_BEFORE = scale("CHAOS_WARMUP_ACKS", 300)   # acknowledged before the first cut
ACKS_BETWEEN = scale("CHAOS_GAP_ACKS", 300)     # acknowledged between faults, and after the last
MAX_PER_CLIENT = 1000       # bound on one client's sends


def membership():
    """5 groups of 6 users; the first user of each group is also in the next group."""
    users = [f"user{i:02d}" for i in range(N_USERS)]
    n_groups = N_USERS // GROUP_SIZE
    groups = {f"room-{k}": users[k * GROUP_SIZE:(k + 1) * GROUP_SIZE] for k in range(n_groups)}
    for k in range(n_groups):
        groups[f"room-{(k + 1) % n_groups}"].append(users[k * GROUP_SIZE])
    return users, groups


def run(cmd, stdin=None, check=True, timeout=20):
    """Runs a command (a list); returns its stdout. Fails with its stderr if `check`."""
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def nft(ns, script):
    run(["ip", "netns", "exec", ns, "nft", "-f", "-"], stdin=script)


def nft_counters(ns, table):
    """{(chain, index of the rule in its chain, verdict or ''): packets} of an inet table."""
    out = json.loads(run(["ip", "netns", "exec", ns, "nft", "-j", "list", "table", "inet", table]))
    counters = {}
    index = collections.Counter()
    for item in out.get("nftables", []):
        rule = item.get("rule")
        if rule is None:
            continue
        chain = rule["chain"]
        verdict = "drop" if any("drop" in e for e in rule["expr"]) else ""
        for e in rule["expr"]:
            if "counter" in e:
                counters[(chain, index[chain], verdict)] = e["counter"]["packets"]
        index[chain] += 1
    return counters


def log_warnings(server):
    """The warn and error lines of a server's log, without their timestamps."""
    try:
        with open(server.log_path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1] in ("warn", "error"):
            out.append(f"{parts[1]} {parts[2]}")
    return out


def metric(server, name):
    """The value of an unlabelled metric from GET /metrics (0 if absent)."""
    r = http_request(server, "GET", "/metrics")
    m = re.search(rf"^{re.escape(name)} (\S+)$", r.body.decode(errors="replace"), re.M)
    return float(m.group(1)) if m else 0.0


# ---------------------------------------------------------------------------
# Network namespaces


class ChaosNet:
    """A hub namespace with a bridge, `n` node namespaces and the root namespace on it,
    all in 10.A.B.0/24 (nodes .1 to .n, root .254). Names and subnet come from `tag`
    (the pid)."""

    def __init__(self, tag, n=3):
        self.tag = tag
        self.hub = f"pc{tag}h"
        self.nodes = [f"pc{tag}n{i + 1}" for i in range(n)]
        self.root_if = f"pc{tag}r"      # the root namespace's end of its veth
        self.prefix = None              # "10.A.B."
        self.created = False

    def addr(self, i):
        """Address of node i (0-based)."""
        return f"{self.prefix}{i + 1}"

    @property
    def root_addr(self):
        return f"{self.prefix}254"

    def _existing_namespaces(self):
        return {line.split()[0] for line in run(["ip", "netns", "list"]).splitlines() if line.strip()}

    def destroy(self):
        """Removes every namespace and the root veth of this tag (quietly: some may not exist).
        Deleting a namespace deletes the veths in it, and so their other ends."""
        run(["ip", "link", "del", self.root_if], check=False)
        existing = self._existing_namespaces()
        for ns in [self.hub] + self.nodes:
            if ns in existing:
                run(["ip", "netns", "del", ns], check=False)
        left = self._existing_namespaces() & set([self.hub] + self.nodes)
        if left:
            raise AssertionError(f"network namespaces not removed: {sorted(left)}")

    def _pick_subnet(self):
        # 10.A.B.0/24 from the tag; skip one the root namespace already has an address or
        # route in (another run, or the machine's own network).
        used = run(["ip", "-4", "-o", "addr"]) + run(["ip", "-4", "route"])
        a = 200 + self.tag % 50
        for k in range(250):
            b = (self.tag + k) % 250
            prefix = f"10.{a}.{b}."
            if not re.search(rf"\b{re.escape(prefix)}\d", used):
                return prefix
        raise AssertionError(f"no free 10.{a}.x.0/24 subnet")

    def create(self):
        self.destroy()   # a leftover of a crashed run with the same names
        self.prefix = self._pick_subnet()
        self.created = True
        hub = self.hub
        for ns in [hub] + self.nodes:
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", hub, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", hub, "link", "set", "br0", "up"])
        for i, ns in enumerate(self.nodes):
            inner, outer = f"pc{self.tag}a{i + 1}", f"pc{self.tag}b{i + 1}"
            run(["ip", "link", "add", inner, "netns", ns, "type", "veth", "peer", "name", outer, "netns", hub])
            run(["ip", "-n", ns, "addr", "add", f"{self.addr(i)}/24", "dev", inner])
            run(["ip", "-n", ns, "link", "set", inner, "up"])
            run(["ip", "-n", hub, "link", "set", outer, "master", "br0", "up"])
        outer = f"pc{self.tag}bR"
        run(["ip", "link", "add", self.root_if, "type", "veth", "peer", "name", outer, "netns", hub])
        run(["ip", "addr", "add", f"{self.root_addr}/24", "dev", self.root_if])
        run(["ip", "link", "set", self.root_if, "up"])
        run(["ip", "-n", hub, "link", "set", outer, "master", "br0", "up"])

    def wait_reachable(self, timeout=10.0):
        """Until the root namespace reaches every node address (ARP and the bridge ports
        up): a refused connection to an unused port is an answer."""
        end = time.monotonic() + timeout
        for i in range(len(self.nodes)):
            for _ in range(1000):
                try:
                    with socket.create_connection((self.addr(i), 9), timeout=0.5):
                        pass
                    break
                except ConnectionRefusedError:
                    break
                except OSError:
                    if time.monotonic() > end:
                        raise AssertionError(f"{self.addr(i)} unreachable from the root namespace "
                                             f"after {timeout}s")
                    time.sleep(0.05)


class NsServer(Server):
    """A parley-server run in a network namespace, listening on `host`."""

    def __init__(self, workdir, name, netns, host, args, port):
        super().__init__(workdir, name, args, port)
        self.netns = netns
        self.host = host

    def command(self):
        # `ip netns exec` execs the server in place: the pid (and signals) are the server's.
        return ["ip", "netns", "exec", self.netns] + super().command()


# ---------------------------------------------------------------------------
# Delay proxy


def _reset(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class DelayProxy:
    """TCP forwarders on `host`, one per route {listen port: (target host, target port)},
    on their own thread and event loop. Every chunk read is written on after a delay
    drawn from `delay_ms` (per chunk), never before the chunk ahead of it: order kept."""

    def __init__(self, host, routes, delay_ms, seed=1):
        self.host = host
        self.routes = dict(routes)
        self.delay_ms = delay_ms
        self.rng = random.Random(seed)
        self.connections = 0
        self.failed_connects = 0
        self.chunks = 0
        self.bytes = 0
        self.delay_sum = 0.0
        self.delay_max = 0.0
        self.writers = set()
        self.servers = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="delay-proxy", daemon=True)
        self.thread.start()
        self._call(self._start())

    def _call(self, coro, timeout=10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self):
        for port, target in self.routes.items():
            self.servers.append(await asyncio.start_server(
                lambda r, w, t=target: self._handle(r, w, t), self.host, port))

    async def _handle(self, reader, writer, target):
        try:
            up_r, up_w = await asyncio.wait_for(asyncio.open_connection(*target), 5)
        except (OSError, asyncio.TimeoutError):
            self.failed_connects += 1
            _reset(writer)
            return
        self.connections += 1
        pair = (writer, up_w)
        self.writers.update(pair)
        tasks = [asyncio.ensure_future(self._pipe(reader, up_w)),
                 asyncio.ensure_future(self._pipe(up_r, writer))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            for w in pair:
                self.writers.discard(w)
                with contextlib.suppress(Exception):
                    w.close()

    async def _pipe(self, reader, writer):
        """Reads chunks as they come and writes each when it is due; returns after EOF
        (or an error) once everything before it was written."""
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()

        async def pump():
            last_due = 0.0
            try:
                for _ in range(100000000):
                    data = await reader.read(65536)
                    now = loop.time()
                    due = max(now + self.rng.uniform(*self.delay_ms) / 1000.0, last_due)
                    last_due = due
                    queue.put_nowait((due, now, data))
                    if not data:
                        return
            except (OSError, asyncio.IncompleteReadError):
                queue.put_nowait((0.0, 0.0, b""))

        pumping = asyncio.ensure_future(pump())
        try:
            for _ in range(100000000):
                due, t_in, data = await queue.get()
                if not data:
                    return
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
                applied = due - t_in
                self.chunks += 1
                self.bytes += len(data)
                self.delay_sum += applied
                self.delay_max = max(self.delay_max, applied)
        except OSError:
            return
        finally:
            pumping.cancel()

    def stats(self):
        return {"connections": self.connections, "failed_connects": self.failed_connects,
                "chunks": self.chunks, "bytes": self.bytes,
                "mean_ms": 1000 * self.delay_sum / max(1, self.chunks), "max_ms": 1000 * self.delay_max}

    def close(self):
        async def shut():
            for s in self.servers:
                s.close()
            for w in list(self.writers):
                _reset(w)
        with contextlib.suppress(Exception):
            self._call(shut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# ---------------------------------------------------------------------------


DROP_TABLE = "parley_chaos_drop"
CUT_TABLE = "parley_chaos_cut"


class ChaosTest(ServerTestCase):

    def setUp(self):
        # Fail, not skip: the test command installs iproute2 and nftables and runs as root.
        if os.geteuid() != 0:
            self.fail("e2e/chaos needs root (network namespaces, nftables)")
        for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
            if shutil.which(tool) is None:
                self.fail(f"`{tool}` is not installed (apt-get install {package}): e2e/chaos needs it")
        super().setUp()
        self.net = ChaosNet(os.getpid())
        # Cleanups run after tearDown (which stops the servers), last added first.
        self.addCleanup(self.net.destroy)
        self.net.create()
        self.net.wait_reachable()

    async def test_random_drop_latency_and_healing_cuts(self):
        t_start = time.monotonic()
        net = self.net
        n = len(net.nodes)
        # node-3's peer links, both ways, through the delay proxy on the root address.
        proxy_port = {i: PROXY_PORT_BASE + i for i in range(n)}
        proxy = DelayProxy(net.root_addr, {proxy_port[i]: (net.addr(i), PEER_PORT) for i in range(n)},
                           DELAY_MS)
        self.addCleanup(proxy.close)

        def peer_addr(frm, to):
            slow = n - 1
            if slow in (frm, to):
                return f"{net.root_addr}:{proxy_port[to]}"
            return f"{net.addr(to)}:{PEER_PORT}"

        db = os.path.join(self.tmp, "shared.db")
        nodes = []
        for i in range(n):
            name = f"node-{i + 1}"
            data = os.path.join(self.tmp, name)
            os.makedirs(data, exist_ok=True)
            args = ["--node-id", name, "--dev", "--db", db, "--data-dir", data,
                    "--secret", "e2e-secret", "--cluster-secret", "e2e-cluster",
                    "--peer-listen", f"{net.addr(i)}:{PEER_PORT}", "--peer-timeout-ms", str(PEER_TIMEOUT_MS)]
            for j in range(n):
                if j != i:
                    args += ["--peer", f"node-{j + 1}={peer_addr(i, j)}"]
            s = NsServer(self.tmp, name, net.nodes[i], net.addr(i), args, CLIENT_PORT)
            self.servers.append(s)
            nodes.append(s.start())

        users, groups = membership()
        home, tokens, user_groups = set_up_groups(nodes, users, groups)
        clients = {u: Client(u, tokens[u]) for u in users}
        await gather_bounded([c.connect(home[u]) for u, c in clients.items()], 30, "connect 30 clients")
        answers = await gather_bounded([c.resume(g) for u, c in clients.items() for g in user_groups[u]],
                                       30, "resume every group")
        for a in answers:
            self.assertEqual((a["t"], a["head"], a["mode"]), ("resumed", 0, "push"), a)

        # Random drop on every node's incoming peer-link packets: `peer` counts what it
        # sees (rule 0) and what it drops (rule 1).
        for ns in net.nodes:
            nft(ns, f"""
table inet {DROP_TABLE} {{
  chain input {{
    type filter hook input priority 0; policy accept;
    tcp dport {PEER_PORTS} jump peer
    tcp sport {PEER_PORTS} jump peer
  }}
  chain peer {{
    counter
    numgen random mod 100 < {DROP_PERCENT} counter drop
  }}
}}
""")

        acked = [0]
        ack_event = [asyncio.Event()]

        def on_ack(client, p):
            acked[0] += 1
            ack_event[0].set()
        for c in clients.values():
            c.on_ack = on_ack

        def log(what):
            sys.stderr.write(f"\n  [{time.monotonic() - t_start:6.1f}s, {acked[0]} acked] {what}\n")

        async def until_acked(count, timeout, what):
            end = time.monotonic() + timeout
            while acked[0] < count:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{what}: {acked[0]}/{count} acked after {timeout}s")
                ack_event[0] = asyncio.Event()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(ack_event[0].wait(), min(left, 0.5))

        stop = asyncio.Event()
        cuts = []

        async def cut_and_heal(duration):
            # Silent drop of everything between node-1 and node-2, in node-1's namespace.
            a, b = net.addr(0), net.addr(1)
            await asyncio.to_thread(nft, net.nodes[0], f"""
table inet {CUT_TABLE} {{
  chain input {{
    type filter hook input priority -10; policy accept;
    ip saddr {b} counter drop
  }}
  chain output {{
    type filter hook output priority -10; policy accept;
    ip daddr {b} counter drop
  }}
}}
""")
            t_cut = time.monotonic()
            log(f"node-1 <-> node-2 ({a} <-> {b}) cut for {duration}s")
            await asyncio.sleep(duration)   # the fault's duration: traffic goes on meanwhile
            # Every message acknowledged so far: per group, the highest id acked.
            target = {g: 0 for g in groups}
            for c in clients.values():
                for p in c.sends.values():
                    if p.ack is not None:
                        target[p.g] = max(target[p.g], p.ack["id"])
            behind = sum(1 for u in users for g in user_groups[u] if clients[u].last(g) < target[g])
            missing = sum(max(0, target[g] - clients[u].last(g)) for u in users for g in user_groups[u])
            dropped = sum((await asyncio.to_thread(nft_counters, net.nodes[0], CUT_TABLE)).values())
            await asyncio.to_thread(run, ["ip", "netns", "exec", net.nodes[0], "nft", "delete", "table",
                                          "inet", CUT_TABLE])
            t_heal = time.monotonic()
            log(f"healed after {t_heal - t_cut:.1f}s ({dropped} packets dropped by the cut); "
                f"{behind} (client, group) behind by {missing} messages")
            await wait_heads([(clients[u], g) for u in users for g in user_groups[u]], target,
                             CONVERGE_BOUND_S + 5)
            converge = time.monotonic() - t_heal
            log(f"converged {converge:.2f}s after the heal")
            cuts.append({"cut_s": t_heal - t_cut, "dropped": dropped, "behind": behind,
                         "missing": missing, "converge_s": converge})
            self.assertLess(converge, CONVERGE_BOUND_S, f"time to converge after healing a {duration}s cut")

        async def conductor():
            try:
                await until_acked(ACKS_BEFORE, 60, "before the first cut")
                for duration in CUTS_S:
                    await cut_and_heal(duration)
                    await until_acked(acked[0] + ACKS_BETWEEN, 60, "traffic after a heal")
            finally:
                stop.set()
            log("traffic stops")

        async def paced(client):
            rng = random.Random(client.user)
            gs = user_groups[client.user]
            await asyncio.sleep(rng.uniform(0, PACE_S))
            for k in range(0, MAX_PER_CLIENT, BURST):
                if stop.is_set():
                    return
                plan = [(gs[j % len(gs)], f"{client.user} says {j} «ü»") for j in range(k, k + BURST)]
                await drive(client, plan, window=4, timeout=60)
                await asyncio.sleep(rng.uniform(0.5, 1.5) * PACE_S)
            raise AssertionError(f"{client.user}: {MAX_PER_CLIENT} sends and the conductor is not done")

        t0 = time.monotonic()
        await gather_bounded([conductor()] + [paced(c) for c in clients.values()],
                             120, "every send acknowledged through the chaos")
        t_traffic = time.monotonic() - t0

        # Every send acknowledged, once per id, consistently across resends.
        failed = [(c.name, p.cid, p.errors[-1:]) for c in clients.values() for p in c.sends.values()
                  if p.failed]
        self.assertEqual(failed, [], "sends given up")
        error_codes = collections.Counter(CODE_NAMES.get(e.get("code"), e.get("code"))
                                          for c in clients.values() for p in c.sends.values()
                                          for e in p.errors)
        for c in clients.values():
            self.assertTrue(c.open, f"{c.name}: connection lost (close code {c.close_code})")
            for p in c.sends.values():
                self.assertIsNotNone(p.ack, f"{p.cid} never acknowledged")
                self.assertEqual(len(p.acks), 1, f"{p.cid} acked more than once")
                self.assertFalse(p.ack["dup"], f"first ack of {p.cid} says dup")
        heads = {}
        for g, members in groups.items():
            exp = expected_from_acks(self, [clients[u] for u in members], g)
            heads[g] = len(exp)
            n_sent = sum(1 for u in members for p in clients[u].sends.values() if p.g == g)
            self.assertEqual(len(exp), n_sent, f"{g}: every send acknowledged under its own id")
            self.assertEqual(sorted(exp), list(range(1, n_sent + 1)), f"{g}: acked ids dense")
        total = sum(heads.values())

        await wait_heads([(clients[u], g) for u in users for g in user_groups[u]], heads, 30)
        t_delivered = time.monotonic() - t0

        # The random drop ran from before the first send until now.
        seen = dropped = 0
        for ns in net.nodes:
            for (chain, _, verdict), packets in (await asyncio.to_thread(nft_counters, ns, DROP_TABLE)).items():
                if chain == "peer":
                    if verdict:
                        dropped += packets
                    else:
                        seen += packets
            await asyncio.to_thread(run, ["ip", "netns", "exec", ns, "nft", "delete", "table", "inet",
                                          DROP_TABLE])
        self.assertGreater(dropped, 0, "the random drop dropped no peer packet")
        delay = proxy.stats()
        self.assertGreater(delay["chunks"], 0, "nothing went through the delay proxy")
        self.assertGreaterEqual(delay["mean_ms"], DELAY_MS[0] * 0.99, delay)

        for g, members in groups.items():
            exp = expected_from_acks(self, [clients[u] for u in members], g)
            for u in members:
                check_client(self, clients[u], g, exp)
            for node in nodes:
                ans, msgs = await asyncio.to_thread(history, node, tokens[members[0]], g)
                check_log(self, g, msgs, ans.get("head"))
                self.assertEqual({m["id"]: (m["u"], m["c"], m["cid"]) for m in msgs}, exp,
                                 f"{g}: history on {node.name} is the acknowledged set")
        peer = collections.Counter()
        for node in nodes:
            for name in ("parley_peer_batches_out_total", "parley_peer_retries_total",
                         "parley_peer_items_dropped_total", "parley_catch_ups_total",
                         "parley_catch_up_messages_total"):
                peer[name.replace("parley_", "").replace("_total", "")] += \
                    int(await asyncio.to_thread(metric, node, name))
        await gather_bounded([c.close() for c in clients.values()], 20, "close clients")
        for node in nodes:
            self.assert_healthy(node, "at the end")
        warnings = {node.name: log_warnings(node) for node in nodes}
        warning_kinds = collections.Counter(w for ws in warnings.values() for w in ws)

        cut_text = "; ".join(f"{c['cut_s']:.1f}s cut ({c['dropped']} packets dropped, {c['behind']} "
                             f"(client, group) behind by {c['missing']} messages at the heal) converged "
                             f"{c['converge_s']:.2f}s after healing" for c in cuts)
        print(f"\n  chaos: {total} messages from {N_USERS} clients in {len(groups)} groups over 3 network "
              f"namespaces, acked in {t_traffic:.1f}s, delivered to all in {t_delivered:.1f}s, "
              f"test total {time.monotonic() - t_start:.1f}s"
              f"\n    random drop {DROP_PERCENT}% on peer links: {dropped} of {seen} peer packets dropped "
              f"({100 * dropped / max(1, seen):.1f}%)"
              f"\n    link cuts node-1 <-> node-2 (bound {CONVERGE_BOUND_S:.0f}s): {cut_text}"
              f"\n    delay proxy on node-3's peer links: {delay['chunks']} chunks over "
              f"{delay['connections']} connections held {delay['mean_ms']:.0f} ms on average "
              f"(max {delay['max_ms']:.0f} ms; drawn from {DELAY_MS[0]}-{DELAY_MS[1]} ms)"
              f"\n    peer calls {peer['peer_batches_out']}, retries {peer['peer_retries']}, items given up "
              f"{peer['peer_items_dropped']}; catch-ups {peer['catch_ups']} "
              f"({peer['catch_up_messages']} messages); send errors {dict(error_codes)}"
              f"\n    log warnings: {', '.join(f'{k} {len(v)}' for k, v in warnings.items())}"
              + "".join(f"\n      {k} x{v}" for k, v in warning_kinds.most_common(8)), flush=True)


if __name__ == "__main__":
    unittest.main()
