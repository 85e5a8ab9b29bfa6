"""Network chaos: three nodes on one Redis (--store redis), each node in its own network
namespace made by this test, 30 clients over 5 overlapping groups, paced traffic through:

- random drop: each node's namespace drops DROP_PERCENT % of the peer-link packets it
  receives (nft `numgen random`, on the peer ports only, never on the client or Redis
  port), from before the traffic until every client holds every message;
- latency: node-3's peer links, both ways, go through a delay proxy in this test
  (harness.TcpProxy) that holds every chunk DELAY_MS (random per chunk, order kept):
  `tc netem` is not available on this kernel;
- a peer-link cut that heals: all traffic between node-1 and node-2 is dropped silently
  (nft in node-1's namespace, both directions: no reset, open connections hang until a
  timeout notices) for PEER_CUT_S, longer than --peer-timeout-ms. Both nodes still
  reach Redis, so gap catch-ups and the head sync read around the cut: what is
  measured after this heal is mostly ordinary delivery lag under drop and delay;
- a partition of node-1 that heals, the main fault: in node-1's namespace every packet
  is dropped silently except its own clients' (root address <-> node-1:8080), so its
  links to node-2, to node-3 (through the delay proxy) and to Redis all hang, for
  PARTITION_S. Node-1 cannot reach the store: its clients' sends are answered
  `unavailable` (`timeout` for a store command caught in flight; --redis-timeout-ms
  is REDIS_TIMEOUT_MS, so both come fast) and resent with the same cid after
  RETRY_DELAY_S, while node-2's and node-3's clients go on sending and are
  acknowledged. At the heal node-1's clients must be behind the others' (and have had
  an `unavailable`): with no way around the partition, one that never heals fails
  the test. From the heal every client must hold every message acknowledged before it
  within CONVERGE_BOUND_S (the peers' retried calls bring node-1 the others' messages;
  gap catch-ups and the head sync read the store once node-1 is back on it), and
  node-1 must acknowledge its clients' resends again within the same bound: it
  reconnects to Redis when its reconnect backoff (100 ms doubling to 5 s) lets it,
  which the summary reports, with node-1's log line "store is answering again".

Redis is a redis-server this test starts in the root namespace on 10.A.B.254
(appendonly, appendfsync always, its files in the test's temp dir).

In the end the e2e invariants hold: every send acknowledged under one id however often
it was resent (a send that went out once, once and not as a duplicate), ids dense,
every client holds every message of its groups once and in order, the HTTP history on
each node is exactly the acknowledged set, and every node is healthy.

Topology (names and subnet from the test's pid, so that runs do not clash; a leftover
of a crashed run with the same names is removed first): a hub namespace with a
bridge; a veth from each node's namespace (10.A.B.1-3) and one from the root
namespace (10.A.B.254: the clients, the HTTP calls, the delay proxy and Redis) into
it. Nodes listen for clients on 10.A.B.i:8080 and for peers on 10.A.B.i:7000.
Everything is removed at the end, also on failure.

Needs root, `ip` (iproute2), `nft` (nftables) and redis-server: without them the test
fails.
"""

import asyncio
import collections
import contextlib
import datetime
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import unittest

from harness import (UNAVAILABLE, TIMEOUT, CLOSED, Server, ServerTestCase, Client, TcpProxy, AckCounter,
                     overlapping_groups, set_up_groups, drive, wait_heads, acked_heads, send_errors,
                     check_acks, check_groups, expected_from_acks, gather_bounded, http_request, scale)

N_USERS = 30
GROUP_SIZE = 6
CLIENT_PORT = 8080          # on each node's own address (each namespace has its own ports)
PEER_PORT = 7000            # --peer-listen of each node
PROXY_PORT_BASE = 7001      # delay proxy on the root address: 7001 -> node-1, 7002 -> node-2, ...
PEER_PORTS = "7000-7099"    # what the random drop applies to (peer listeners and the proxy)
DROP_PERCENT = scale("CHAOS_DROP_PERCENT", 10)
DELAY_MS = (30, 80)         # added by the proxy to each chunk on node-3's peer links
PEER_TIMEOUT_MS = 2000      # --peer-timeout-ms (the default, said explicitly)
REDIS_TIMEOUT_MS = 400      # --redis-timeout-ms: a store call to an unreachable Redis fails fast
RETRY_DELAY_S = 0.25        # client backoff before resending an `unavailable` send
PEER_CUT_S = 2.5            # node-1 <-> node-2 only: over --peer-timeout-ms (calls time out, retry)
PARTITION_S = 4.0           # node-1 from node-2, node-3 and Redis
# From a heal until every client holds every message acknowledged before it, and from
# the partition's heal until node-1 acknowledges a send again. After the partition the
# peers retry their calls to node-1 and reconnect through 10 % drop (a lost SYN costs
# 1 s); node-1 waits out its Redis reconnect backoff (doubling from 100 ms: ~1-3 s
# left after 4 s of failures) before it reads or writes the store again (a gap is
# re-asked after 250 ms, the head sync runs every ~1 s): a few seconds are expected;
# 20 s is generous for 2 busy cores.
CONVERGE_BOUND_S = 20.0
# Clients send BURST messages every ~PACE_S s (~100 messages/s over 30 clients) until
# the conductor has run every fault and ACKS_BETWEEN more sends were acknowledged.
BURST = 2
PACE_S = 0.6
ACKS_BEFORE = scale("CHAOS_WARMUP_ACKS", 300)   # acknowledged before the first fault
ACKS_BETWEEN = scale("CHAOS_GAP_ACKS", 300)     # acknowledged between faults, and after the last
MAX_PER_CLIENT = 1000       # bound on one client's sends


def run(cmd, stdin=None, check=True, timeout=20):
    """Runs a command (a list); returns its stdout. Fails with its stderr if `check`."""
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def nft(ns, script):
    run(["ip", "netns", "exec", ns, "nft", "-f", "-"], stdin=script)


def nft_delete(ns, table):
    run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", table])


def nft_counters(ns, table):
    """{(chain, index of the rule in its chain, verdict or '', comment or ''): packets} of
    an inet table."""
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
                counters[(chain, index[chain], verdict, rule.get("comment", ""))] = e["counter"]["packets"]
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


def store_back(server, since):
    """(seconds after `since` (time.time()), store calls failed) of the first "store is
    answering again" line the server logged after `since`, or None."""
    try:
        with open(server.log_path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z .*store is answering again \((\d+) calls", line)
        if m:
            t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            if t >= since:
                return t - since, int(m.group(2))
    return None


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


DROP_TABLE = "parley_chaos_drop"
CUT_TABLE = "parley_chaos_cut"
PARTITION_TABLE = "parley_chaos_partition"


def partition_rules(net, redis_port):
    """nft script for node-1's namespace: every packet in or out is dropped silently
    except loopback and its clients' connections to its client port. Counted by what
    the packet was: a peer link (node-2/3 directly, or the delay proxy on the root
    address), Redis, or anything else."""
    others = ", ".join(net.addr(i) for i in range(1, len(net.nodes)))
    root = net.root_addr
    chains = []
    # (chain, interface, the far end's address, node-1's port, the far end's port)
    for chain, dev, far, near_port, far_port in (("input", "iif", "saddr", "dport", "sport"),
                                                 ("output", "oif", "daddr", "sport", "dport")):
        chains.append(f"""
  chain {chain} {{
    type filter hook {chain} priority -10; policy accept;
    {dev} lo accept
    tcp {near_port} {CLIENT_PORT} accept
    ip {far} {{ {others} }} counter drop comment "peer"
    ip {far} {root} tcp {near_port} {PEER_PORTS} counter drop comment "peer"
    ip {far} {root} tcp {far_port} {PEER_PORTS} counter drop comment "peer"
    ip {far} {root} tcp {far_port} {redis_port} counter drop comment "redis"
    counter drop comment "other"
  }}""")
    return f"table inet {PARTITION_TABLE} {{{''.join(chains)}\n}}\n"


class ChaosTest(ServerTestCase):

    def setUp(self):
        # Fail, not skip: the test command installs iproute2, nftables and redis-server
        # and runs as root.
        if os.geteuid() != 0:
            self.fail("e2e/chaos needs root (network namespaces, nftables)")
        for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
            if shutil.which(tool) is None:
                self.fail(f"`{tool}` is not installed (apt-get install {package}): e2e/chaos needs it")
        super().setUp()
        self.net = ChaosNet(os.getpid())
        # Cleanups run after tearDown (which stops the servers), last added first: Redis
        # (started by the test) stops before the network goes.
        self.addCleanup(self.net.destroy)
        self.net.create()
        self.net.wait_reachable()

    async def test_random_drop_latency_cut_and_partition(self):
        t_start = time.monotonic()
        net = self.net
        n = len(net.nodes)
        redis = self.start_redis(net.root_addr)   # fails the test without redis-server
        # node-3's peer links, both ways, through delay proxies on the root address.
        proxies = [TcpProxy((net.addr(i), PEER_PORT), f"delay-node-{i + 1}", host=net.root_addr,
                            port=PROXY_PORT_BASE + i, delay_ms=DELAY_MS, seed=i + 1) for i in range(n)]
        for p in proxies:
            self.addCleanup(p.close)

        def peer_addr(frm, to):
            slow = n - 1
            if slow in (frm, to):
                return f"{net.root_addr}:{proxies[to].port}"
            return f"{net.addr(to)}:{PEER_PORT}"

        nodes = []
        for i in range(n):
            name = f"node-{i + 1}"
            data = os.path.join(self.tmp, name)
            os.makedirs(data, exist_ok=True)
            args = ["--node-id", name, "--dev", "--store", "redis", "--redis", redis.url,
                    "--redis-timeout-ms", str(REDIS_TIMEOUT_MS), "--data-dir", data,
                    "--secret", "e2e-secret", "--cluster-secret", "e2e-cluster",
                    "--peer-listen", f"{net.addr(i)}:{PEER_PORT}", "--peer-timeout-ms", str(PEER_TIMEOUT_MS)]
            for j in range(n):
                if j != i:
                    args += ["--peer", f"node-{j + 1}={peer_addr(i, j)}"]
            s = NsServer(self.tmp, name, net.nodes[i], net.addr(i), args, CLIENT_PORT)
            self.servers.append(s)
            nodes.append(s.start())
        node1 = nodes[0]

        users, groups = overlapping_groups(N_USERS, GROUP_SIZE)
        home, tokens, user_groups = set_up_groups(nodes, users, groups)
        clients = {u: Client(u, tokens[u]) for u in users}
        n1_clients = [c for u, c in clients.items() if home[u] is node1]
        other_clients = [c for u, c in clients.items() if home[u] is not node1]
        for c in clients.values():
            # A store command that timed out (the partition began while it was in flight)
            # is answered `timeout`: stored or not, it is resent with the same cid (2.5).
            c.retry_codes = (UNAVAILABLE, TIMEOUT, CLOSED)
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

        partitioned = [False]
        acks_in_partition = collections.Counter()   # "node-1" / "others": first acks meanwhile
        # The first ack to a node-1 client after the heal: when, and node-1's clients'
        # send errors until then.
        n1_back = {"event": asyncio.Event(), "t": None, "errors": None}

        def on_ack(client, p):
            on_1 = client in n1_clients
            if partitioned[0]:
                acks_in_partition["node-1" if on_1 else "others"] += 1
            elif on_1 and not n1_back["event"].is_set():
                n1_back["t"] = time.monotonic()
                n1_back["errors"] = send_errors(n1_clients)
                n1_back["event"].set()
        acks = AckCounter(clients.values(), on_ack)

        def log(what):
            sys.stderr.write(f"\n  [{time.monotonic() - t_start:6.1f}s, {acks.count} acked] {what}\n")

        def behind(target, among=None):
            """((client, group) pairs behind `target`, messages they miss)."""
            pairs = [(c, g) for c in (among or clients.values()) for g in user_groups[c.user]]
            return (sum(1 for c, g in pairs if c.last(g) < target[g]),
                    sum(max(0, target[g] - c.last(g)) for c, g in pairs))

        async def converge(target, what):
            t_heal = time.monotonic()
            await wait_heads([(c, g) for c in clients.values() for g in user_groups[c.user]], target,
                             CONVERGE_BOUND_S + 5)
            took = time.monotonic() - t_heal
            log(f"converged {took:.2f}s after the heal of {what}")
            self.assertLess(took, CONVERGE_BOUND_S, f"time to converge after healing {what}")
            return took

        figures = {}

        async def peer_cut():
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
            log(f"node-1 <-> node-2 ({a} <-> {b}) cut for {PEER_CUT_S}s")
            await asyncio.sleep(PEER_CUT_S)   # traffic goes on meanwhile
            target = acked_heads(clients.values(), groups)
            f = {"behind": behind(target)}
            f["dropped"] = sum((await asyncio.to_thread(nft_counters, net.nodes[0], CUT_TABLE)).values())
            await asyncio.to_thread(nft_delete, net.nodes[0], CUT_TABLE)
            f["cut_s"] = time.monotonic() - t_cut
            log(f"peer cut healed after {f['cut_s']:.1f}s ({f['dropped']} packets dropped); "
                f"{f['behind'][0]} (client, group) behind by {f['behind'][1]} messages")
            f["converge_s"] = await converge(target, "the node-1 <-> node-2 cut")
            figures["cut"] = f

        async def partition():
            f = {}
            errors_before = send_errors(n1_clients)
            await asyncio.to_thread(nft, net.nodes[0], partition_rules(net, redis.port))
            partitioned[0] = True
            t_part = time.monotonic()
            log(f"node-1 partitioned from node-2, node-3 and Redis for {PARTITION_S}s")
            await asyncio.sleep(PARTITION_S)   # node-2/3's clients go on; node-1's get `unavailable`
            target = acked_heads(clients.values(), groups)
            f["behind_1"] = behind(target, n1_clients)
            f["behind_others"] = behind(target, other_clients)
            # What node-1's clients lack of what the others' clients of their groups hold.
            others_hold = {g: max([c.last(g) for c in other_clients if g in user_groups[c.user]] or [0])
                           for g in groups}
            f["deficit"] = sum(max(0, others_hold[g] - c.last(g))
                               for c in n1_clients for g in user_groups[c.user])
            drops = collections.Counter()
            for (_, _, _, what), packets in (await asyncio.to_thread(nft_counters, net.nodes[0],
                                                                     PARTITION_TABLE)).items():
                drops[what] += packets
            await asyncio.to_thread(nft_delete, net.nodes[0], PARTITION_TABLE)
            partitioned[0] = False
            n1_back["event"] = asyncio.Event()
            t_heal, t_heal_wall = time.monotonic(), time.time()
            f["partition_s"] = t_heal - t_part
            f["drops"] = dict(drops)
            f["errors"] = send_errors(n1_clients) - errors_before
            f["acks"] = dict(acks_in_partition)
            figures["partition"] = f
            log(f"partition healed after {f['partition_s']:.1f}s ({dict(drops)} packets dropped); node-1's "
                f"clients: errors {dict(f['errors'])}, {f['deficit']} messages behind the others', "
                f"{f['behind_1'][0]} (client, group) behind by {f['behind_1'][1]}; acks meanwhile {f['acks']}")
            self.assertGreater(f["errors"]["unavailable"], 0,
                               "node-1's clients got no `unavailable` during the partition")
            self.assertGreater(acks_in_partition["others"], 0,
                               "node-2/3's clients got no ack during the partition")
            self.assertGreater(drops["redis"], 0, "the partition dropped no Redis packet")
            self.assertGreater(f["deficit"], 0,
                               "node-1's clients were not behind the others' at the heal: the partition "
                               "cut nothing")
            f["converge_s"] = await converge(target, "the partition of node-1")
            # Node-1 serves sends again once it is back on Redis (its clients resend every
            # RETRY_DELAY_S): how long after the heal that is shows its reconnect backoff.
            left = max(0.1, t_heal + CONVERGE_BOUND_S - time.monotonic())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(n1_back["event"].wait(), left)
            self.assertTrue(n1_back["event"].is_set(),
                            f"no send acknowledged to node-1's clients within {CONVERGE_BOUND_S}s of the heal")
            f["first_ack_s"] = n1_back["t"] - t_heal
            f["errors_after"] = n1_back["errors"] - errors_before - f["errors"]
            back = store_back(node1, t_heal_wall)
            f["store_back"] = (f"{back[0]:.2f}s after the heal ({back[1]} store calls failed meanwhile)"
                               if back else "not logged")
            log(f"first ack to node-1's clients {f['first_ack_s']:.2f}s after the heal (errors before it "
                f"{dict(f['errors_after'])}); node-1's store answered again {f['store_back']}")

        stop = asyncio.Event()

        async def conductor():
            try:
                await acks.until(ACKS_BEFORE, 60, "before the first fault")
                await peer_cut()
                await acks.until(acks.count + ACKS_BETWEEN, 60, "traffic after the peer cut")
                await partition()
                await acks.until(acks.count + ACKS_BETWEEN, 60, "traffic after the partition")
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
                await drive(client, plan, window=4, timeout=60, retry_delay=RETRY_DELAY_S)
                await asyncio.sleep(rng.uniform(0.5, 1.5) * PACE_S)
            raise AssertionError(f"{client.user}: {MAX_PER_CLIENT} sends and the conductor is not done")

        t0 = time.monotonic()
        await gather_bounded([conductor()] + [paced(c) for c in clients.values()],
                             120, "every send acknowledged through the chaos")
        t_traffic = time.monotonic() - t0

        # Every send acknowledged under one id, consistently across resends.
        for c in clients.values():
            self.assertTrue(c.open, f"{c.name}: connection lost (close code {c.close_code})")
        resent, dups = check_acks(self, clients.values())
        all_errors = send_errors(clients.values())
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
            for (chain, _, verdict, _), packets in (await asyncio.to_thread(nft_counters, ns,
                                                                             DROP_TABLE)).items():
                if chain == "peer":
                    if verdict:
                        dropped += packets
                    else:
                        seen += packets
            await asyncio.to_thread(nft_delete, ns, DROP_TABLE)
        self.assertGreater(dropped, 0, "the random drop dropped no peer packet")
        delay = collections.Counter()
        for p in proxies:
            delay.update(p.stats())
        delay_max = max(p.stats()["delay_max"] for p in proxies)
        delay_mean = delay["delay_sum"] / max(1, delay["chunks"])
        self.assertGreater(delay["chunks"], 0, "nothing went through the delay proxy")
        self.assertGreaterEqual(delay_mean * 1000, DELAY_MS[0] * 0.99, dict(delay))

        await check_groups(self, clients, groups, tokens, nodes)
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
        warning_kinds = collections.Counter(re.sub(r"\d+", "N", w) for ws in warnings.values() for w in ws)

        cut, part = figures["cut"], figures["partition"]
        print(f"\n  chaos: {total} messages from {N_USERS} clients in {len(groups)} groups over 3 network "
              f"namespaces on one Redis, acked in {t_traffic:.1f}s, delivered to all in {t_delivered:.1f}s, "
              f"test total {time.monotonic() - t_start:.1f}s"
              f"\n    partition of node-1 from node-2, node-3 and Redis for {part['partition_s']:.1f}s: "
              f"packets dropped {part['drops']}; node-1's clients answered {dict(part['errors'])} and "
              f"acked {part['acks'].get('node-1', 0)} times meanwhile, the others acked "
              f"{part['acks'].get('others', 0)} times; at the heal node-1's clients were {part['deficit']} "
              f"messages behind the others' ({part['behind_1'][0]} (client, group) behind the acknowledged "
              f"by {part['behind_1'][1]}; the others' {part['behind_others'][0]} by "
              f"{part['behind_others'][1]}); node-1's store answered again {part['store_back']}, its clients' first ack "
              f"{part['first_ack_s']:.2f}s after the heal (answered {dict(part['errors_after'])} "
              f"from the heal until then); "
              f"converged {part['converge_s']:.2f}s after the heal (bound {CONVERGE_BOUND_S:.0f}s)"
              f"\n    peer link cut node-1 <-> node-2 for {cut['cut_s']:.1f}s ({cut['dropped']} packets "
              f"dropped, {cut['behind'][0]} (client, group) behind by {cut['behind'][1]} at the heal): "
              f"converged {cut['converge_s']:.2f}s after the heal"
              f"\n    random drop {DROP_PERCENT}% on peer links: {dropped} of {seen} peer packets dropped "
              f"({100 * dropped / max(1, seen):.1f}%)"
              f"\n    delay proxy on node-3's peer links: {delay['chunks']} chunks over "
              f"{delay['connections']} connections held {1000 * delay_mean:.0f} ms on average "
              f"(max {1000 * delay_max:.0f} ms; drawn from {DELAY_MS[0]}-{DELAY_MS[1]} ms)"
              f"\n    peer calls {peer['peer_batches_out']}, retries {peer['peer_retries']}, items given up "
              f"{peer['peer_items_dropped']}; catch-ups {peer['catch_ups']} "
              f"({peer['catch_up_messages']} messages); send errors {dict(all_errors)}, {resent} sends "
              f"resent, {dups} answered dup:true"
              f"\n    log warnings: {', '.join(f'{k} {len(v)}' for k, v in warnings.items())}"
              + "".join(f"\n      {k} x{v}" for k, v in warning_kinds.most_common(8)), flush=True)


if __name__ == "__main__":
    unittest.main()
