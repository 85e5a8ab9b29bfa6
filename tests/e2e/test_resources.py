"""Resource bounds of parley-server.

1. Churn: CYCLES connect/disconnect cycles of every kind a client can end a
   connection with (WebSocket closed cleanly, reset mid-session, closed after a
   send; HTTP requests; refused upgrades; TCP connections that never send a
   byte), from THREADS threads at once. Between the warm-up and the end the
   server's open file descriptors and threads must come back to exactly what
   they were, its sessions to zero, and (on a build without ASan, whose
   quarantine keeps freed memory) its RSS must not grow by more than
   RSS_SLACK_KB. Under ASan+UBSan (scripts/test.sh's second stage) LeakSanitizer
   checks at exit that nothing leaked: a leak fails the clean exit that
   ServerTestCase.tearDown asserts.
2. A peer node that never reads: node-2 is stopped with SIGSTOP (its kernel
   still accepts node-1's connections and buffers what it sends, but nothing
   reads it). node-1 must go on acknowledging and delivering its own clients'
   messages, give up on its calls to node-2 after --peer-timeout-ms, keep
   what waits for node-2 bounded, and not grow; once node-2 is continued with
   SIGCONT its clients must get every message (gap detection and head sync).
"""

import asyncio
import contextlib
import os
import signal
import socket
import struct
import sys
import threading
import time

from harness import (HOST, ServerTestCase, Client, RawWs, single_args, cluster_args, login, create_group,
                     join_group, set_up_groups, drive, wait_heads, check_client, expected_from_acks, history,
                     http_request, gather_bounded, scale)

CYCLES = scale("CHURN_CYCLES", 10000)
WARMUP = 1000
THREADS = 4
RSS_SLACK_KB = 4096
PEER_TIMEOUT_MS = 500
FREEZE_S = 4.0  # how long node-2 stays stopped: several peer timeouts


def proc_status(pid):
    """(open fds, threads, VmRSS in kB) of a process, from /proc."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.split()
    return fds, int(fields["Threads"][0]), int(fields["VmRSS"][0])


def uses_asan(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


def metric(server, name):
    body = http_request(server, "GET", "/metrics").body.decode()
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no metric {name}")


def reset(sock):
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Churn:
    """One kind of connection life per cycle number; counts what each kind saw."""

    KINDS = ("ws_close", "ws_reset", "ws_send", "http", "bad_token", "silent_tcp")

    def __init__(self, testcase, server, token, group):
        self.t = testcase
        self.server = server
        self.token = token
        self.group = group
        self.counts = {k: 0 for k in self.KINDS}
        self.lock = threading.Lock()
        self.errors = []

    def cycle(self, i):
        kind = self.KINDS[i % len(self.KINDS)]
        port = self.server.port
        if kind == "http":
            r = http_request(self.server, "GET", "/healthz")
            assert r.status == 200, r
        elif kind == "silent_tcp":
            s = socket.create_connection((HOST, port), timeout=10)
            s.close()
        elif kind == "bad_token":
            ws = RawWs(port, token=self.token + "x")
            assert ws.status == 401, (ws.status, ws.body)
            ws.close()
        else:
            ws = RawWs(port, token=self.token)
            assert ws.status == 101, (ws.status, ws.body)
            hello = ws.recv_json()
            assert hello["t"] == "hello", hello
            if kind == "ws_reset":
                ws.reset()
            else:
                if kind == "ws_send":
                    ws.send_json({"t": "send", "rid": 1, "g": self.group, "cid": f"churn-{i}", "c": f"m{i}"})
                    # Skips the error event that tells of an earlier cycle's reset (rid 0).
                    for _ in range(10):
                        ack = ws.recv_json()
                        if ack.get("rid") == 1:
                            break
                        assert ack["t"] == "error" and ack["name"] == "unavailable", ack
                    assert ack["t"] == "ack" and ack["rid"] == 1, ack
                ws.send_frame(0x8, struct.pack(">H", 1000))
                _, code, _ = ws.read_until_close(10)
                assert code in (1000, None), code
                ws.close()
        with self.lock:
            self.counts[kind] += 1

    def run(self, start, stop):
        def worker(k):
            try:
                for i in range(start + k, stop, THREADS):
                    self.cycle(i)
            except Exception as e:  # reported by the main thread
                with self.lock:
                    self.errors.append(f"cycle of thread {k}: {e!r}")
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(600)
        self.t.assertEqual(self.errors, [])


class ResourcesTest(ServerTestCase):

    def settle(self, server, pid, baseline_fds, what):
        """Waits until every session has ended and the fd count is back to `baseline_fds`
        (the server closes sockets asynchronously; nothing signals the last close, so this
        polls, bounded). Returns the last (fds, threads, rss)."""
        end = time.monotonic() + 20
        for _ in range(4000):
            st = proc_status(pid)
            if metric(server, "parley_connections") == 0 and (baseline_fds is None or st[0] <= baseline_fds):
                return st
            if time.monotonic() > end:
                break
            time.sleep(0.005)
        raise AssertionError(f"{what}: connections {metric(server, 'parley_connections')}, "
                             f"fds {proc_status(pid)[0]} (baseline {baseline_fds})")

    def test_connect_disconnect_cycles_leave_no_fds_threads_or_memory(self):
        server = self.start_server("node-1", single_args(self.tmp))
        pid = server.proc.pid
        token = login(server, "churner")
        create_group(server, token, "churn")
        churn = Churn(self, server, token, "churn")
        t0 = time.monotonic()
        churn.run(0, WARMUP)
        fds0, threads0, rss0 = self.settle(server, pid, None, "after the warm-up")
        churn.run(WARMUP, CYCLES)
        elapsed = time.monotonic() - t0
        fds1, threads1, rss1 = self.settle(server, pid, fds0, f"after {CYCLES} cycles")
        asan = uses_asan(pid)
        self.assertEqual(sum(churn.counts.values()), CYCLES)
        # (A socket of the warm-up may still have been closing when fds0 was read.)
        self.assertLessEqual(fds1, fds0, "fds back to at most the warm-up's")
        self.assertEqual(threads1, threads0, "threads back to the warm-up's")
        self.assertEqual(metric(server, "parley_connections_opened_total"),
                         metric(server, "parley_connections_closed_total"), "every session ended")
        sends = churn.counts["ws_send"]
        self.assertEqual(len(history(server, token, "churn")[1]), sends, "every acknowledged send stored")
        if not asan:
            self.assertLess(rss1 - rss0, RSS_SLACK_KB,
                            f"RSS grew from {rss0} kB to {rss1} kB over {CYCLES - WARMUP} cycles")
        self.assert_healthy(server)
        print(f"\n  churn: {CYCLES} cycles ({', '.join(f'{k} {n}' for k, n in churn.counts.items())}) "
              f"in {elapsed:.1f}s from {THREADS} threads; after warm-up -> end: fds {fds0} -> {fds1}, "
              f"threads {threads0} -> {threads1}, RSS {rss0} -> {rss1} kB"
              f"{' (ASan: RSS holds the quarantine; LeakSanitizer checks at exit)' if asan else ''}",
              flush=True)

    async def test_a_peer_node_that_never_reads_is_cut_off(self):
        argsets, _ = cluster_args(2, self.tmp, extra=["--peer-timeout-ms", str(PEER_TIMEOUT_MS)])
        node1, node2 = [self.start_server(f"node-{i + 1}", a) for i, a in enumerate(argsets)]
        users = [f"a{i}" for i in range(4)] + [f"b{i}" for i in range(4)]
        groups = {"room": users}
        home, tokens, user_groups = set_up_groups([node1, node2], users, groups)
        home = {u: node1 if u.startswith("a") else node2 for u in users}
        clients = {u: Client(u, tokens[u]) for u in users}
        await gather_bounded([c.connect(home[u]) for u, c in clients.items()], 20, "connect")
        await gather_bounded([c.resume("room") for c in clients.values()], 20, "resume")
        senders = [clients[u] for u in users if u.startswith("a")]
        # Before: both nodes up, everything reaches everyone.
        await gather_bounded([drive(c, [("room", f"{c.user} before {j}") for j in range(5)], window=4, timeout=30)
                              for c in senders], 40, "sends before the stop")
        head = len(expected_from_acks(self, senders, "room"))
        await wait_heads([(c, "room") for c in clients.values()], {"room": head}, 20)
        st0 = proc_status(node1.proc.pid)
        timeouts0 = metric(node1, "parley_peer_retries_total") + metric(node1, "parley_peer_items_dropped_total")

        node2.send_signal(signal.SIGSTOP)
        t_stop = time.monotonic()
        try:
            # node-1's clients send in bursts for as long as node-2 stays stopped.
            latencies = []

            async def paced(c):
                for k in range(10000):
                    if time.monotonic() - t_stop >= FREEZE_S:
                        return
                    t = time.monotonic()
                    await drive(c, [("room", f"{c.user} frozen {k}.{j}") for j in range(5)], window=5, timeout=30)
                    latencies.append(time.monotonic() - t)
                    await asyncio.sleep(0.05)
            await gather_bounded([paced(c) for c in senders], FREEZE_S + 40,
                                 "node-1 acknowledges while node-2 is stopped")
            frozen_sent = 5 * len(latencies)
            head = len(expected_from_acks(self, senders, "room"))
            # node-1's own clients got everything, with node-2 still stopped.
            await wait_heads([(c, "room") for c in senders], {"room": head}, 30)
            # node-1 gives up on calls to node-2 (timeouts, retries, drops) and keeps what
            # waits for it bounded; wait until it has at least one failure to show for it.
            for _ in range(200):
                given_up = metric(node1, "parley_peer_retries_total") + \
                    metric(node1, "parley_peer_items_dropped_total") - timeouts0
                if given_up > 0:
                    break
                await asyncio.sleep(0.05)
            self.assertGreater(given_up, 0, "node-1 never noticed node-2 not answering")
            queued_calls = metric(node1, "parley_peer_calls_queued")
            queued_items = metric(node1, "parley_peer_queued_items")
            self.assertLessEqual(queued_calls, 4, "calls pile up for a peer that does not read")
            self.assertLessEqual(queued_items, frozen_sent)
            st1 = proc_status(node1.proc.pid)
            self.assertLessEqual(st1[0], st0[0] + 2, "node-1 opens connection after connection to node-2")
            self.assertEqual(st1[1], st0[1], "node-1's threads")
            frozen_s = time.monotonic() - t_stop
        finally:
            node2.send_signal(signal.SIGCONT)
        t_cont = time.monotonic()
        await wait_heads([(c, "room") for c in clients.values()], {"room": head}, 30)
        converge_s = time.monotonic() - t_cont
        exp = expected_from_acks(self, senders, "room")
        for c in clients.values():
            check_client(self, c, "room", exp)
        for node in (node1, node2):
            _, msgs = await asyncio.to_thread(history, node, tokens["b0"], "room")
            self.assertEqual({m["id"]: (m["u"], m["c"], m["cid"]) for m in msgs}, exp, node.name)
        await gather_bounded([c.close() for c in clients.values()], 20, "close")
        for n in (node1, node2):
            self.assert_healthy(n)
        latencies.sort()
        print(f"\n  frozen peer: node-2 stopped {frozen_s:.1f}s; node-1 acknowledged {frozen_sent} sends meanwhile "
              f"(bursts of 5: median {latencies[len(latencies) // 2] * 1000:.0f} ms, "
              f"max {latencies[-1] * 1000:.0f} ms), gave up {given_up:.0f} times on node-2 (retries + dropped items), "
              f"queued for node-2: {queued_calls:.0f} calls, {queued_items:.0f} items; node-1 fds "
              f"{st0[0]} -> {st1[0]}, RSS {st0[2]} -> {st1[2]} kB; node-2's clients converged "
              f"{converge_s:.2f}s after SIGCONT", flush=True)


if __name__ == "__main__":
    import unittest
    unittest.main()
