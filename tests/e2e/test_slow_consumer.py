"""f. A client that stops reading in a busy group is told `behind` and cut off (close
1008) once its queue passes --session-queue; the other members of the group keep
receiving everything without being held up; the slow one reconnects, resumes
from its last id and gets the rest."""

import asyncio
import time

from harness import (ServerTestCase, Client, GroupState, RawWs, single_args, login, create_group, join_group,
                     drive, wait_heads, check_client, expected_from_acks, gather_bounded,
                     http_request, scale)

# Four times what the two senders can have in flight (2 x window 8 x 4 kB):
# one group commit may complete a whole window at once, and a reader that
# reads is never more than about a window behind.
SESSION_QUEUE = 256 * 1024
CONTENTS = 4000          # bytes per message
ROUND = 40               # messages per round (20 per sender)
MAX_ROUNDS = scale("SLOW_MAX_ROUNDS", 60)   # bound: 60 x 40 x 4 kB = 9.6 MB


class SlowConsumerTest(ServerTestCase):

    async def test_reader_that_stops_is_cut_off_others_flow(self):
        s = self.start_server("node-1", single_args(self.tmp, extra=["--session-queue", str(SESSION_QUEUE)]))
        g = "firehose"
        users = ["slow", "s1", "s2", "r1", "r2", "r3"]
        tokens = {u: login(s, u) for u in users}
        create_group(s, tokens["s1"], g)
        for u in users:
            if u != "s1":
                join_group(s, tokens[u], g)

        readers = {u: Client(u, tokens[u]) for u in users[1:]}
        await gather_bounded([c.connect(s) for c in readers.values()], 10, "connect")
        await gather_bounded([c.resume(g) for c in readers.values()], 10, "resume")
        watcher = readers["r1"]
        await watcher.send_frame({"t": "presence", "status": "online", "sub": True})

        # The slow member: subscribes, then never reads again (tiny receive buffer).
        slow = RawWs(s.port, tokens["slow"], rcvbuf=4096)
        self.assertEqual(slow.status, 101)
        self.assertEqual(slow.recv_json()["t"], "hello")
        slow.send_json({"t": "resume", "rid": 1, "g": g, "after": 0, "epoch": 0})
        self.assertEqual(slow.recv_json()["t"], "resumed")

        def slow_gone():
            return any(e.get("u") == "slow" and e.get("status") == "offline" for e in watcher.events_of("presence"))

        senders = [readers["s1"], readers["s2"]]
        sent = 0
        t0 = time.monotonic()
        rounds = 0
        for rounds in range(1, MAX_ROUNDS + 1):
            plan = [[(g, f"{c.name} {sent + k} " + "z" * CONTENTS) for k in range(i, ROUND, 2)]
                    for i, c in enumerate(senders)]
            await gather_bounded([drive(c, p, window=8, timeout=30) for c, p in zip(senders, plan)], 40,
                                 f"round {rounds} acknowledged")
            sent += ROUND
            if slow_gone():
                break
        t_sent = time.monotonic() - t0
        self.assertTrue(slow_gone() or await self._wait(watcher, slow_gone, 5),
                        f"the slow member was not cut off after {sent} messages of {CONTENTS} bytes")

        exp = expected_from_acks(self, readers.values(), g)
        self.assertEqual(len(exp), sent)
        # Everyone else has everything, soon after the last ack.
        await wait_heads([(c, g) for c in readers.values()], {g: sent}, 15)
        t_all = time.monotonic() - t0
        for c in readers.values():
            self.assertTrue(c.open, f"{c.name} was cut off too (close {c.close_code})")
            check_client(self, c, g, exp)

        # What the slow one was sent: a prefix, then `behind`, then close 1008.
        frames, code, eof = await asyncio.to_thread(slow.read_until_close, 15)
        slow.close()
        msgs = [f for f in frames if f.get("t") == "msg"]
        behind = [f for f in frames if f.get("t") == "behind"]
        self.assertEqual([m["id"] for m in msgs], list(range(1, len(msgs) + 1)), "slow: a prefix, in order")
        self.assertLess(len(msgs), sent, "slow got everything: it was never cut off")
        self.assertEqual(len(behind), 1, f"slow: behind frames {behind}; last frames {frames[-3:]}")
        self.assertGreater(behind[0].get("queued", 0), SESSION_QUEUE, behind[0])
        self.assertEqual(frames[-1].get("t"), "behind", "behind is the last frame")
        self.assertEqual(code, 1008, f"slow: close code {code} (eof without close frame: {eof})")

        # It reconnects and resumes from what it holds.
        again = Client("slow", tokens["slow"])
        again.groups[g] = GroupState()
        for m in msgs:
            again._apply(g, m, "before the cut")
        await again.connect(s)
        # Told why the last connection ended (docs/protocol.md 2: an error after hello).
        await again.wait_for(lambda: len(again.events) >= 2, 5, "the failure report after hello")
        report = again.events[1]
        self.assertEqual((report.get("t"), report.get("code"), report.get("name")), ("error", 9, "backpressure"),
                         report)
        self.assertEqual((report.get("about"), report.get("rid")), ("previous_connection", 0), report)
        try:
            await again.wait_for(lambda: again.last(g) >= sent, 20, "the slow member catches up")
        except AssertionError:
            raise AssertionError(f"slow member resumed from {len(msgs)} holds {again.last(g)} of {sent}; "
                                 f"open {again.open} close {again.close_code}; events {again.events[:6]}; "
                                 f"violations {again.violations[:5]}")
        check_client(self, again, g, exp)

        r = await asyncio.to_thread(http_request, s, "GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        lines = [ln for ln in r.body.decode().splitlines()
                 if not ln.startswith("#") and any(k in ln for k in ("behind", "backpressure", "slow", "cut"))]
        print(f"\n  slow consumer: cut off after {len(msgs)} of {sent} messages ({rounds} rounds, "
              f"{t_sent:.1f}s); others complete at {t_all:.1f}s; metrics: {lines[:4]}", flush=True)
        await gather_bounded([c.close() for c in list(readers.values()) + [again]], 10, "close")
        self.assert_healthy(s)

    async def _wait(self, client, pred, timeout):
        try:
            await client.wait_for(pred, timeout, "slow member offline")
            return True
        except AssertionError:
            return False


if __name__ == "__main__":
    import unittest
    unittest.main()
