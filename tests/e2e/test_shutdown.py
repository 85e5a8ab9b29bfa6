"""g. SIGTERM while clients are sending: the server exits 0; every send got an ack,
an error or the close; after a restart on the same database every acknowledged
message is in the history (same id, same contents) and no send answered with an
error is."""

import asyncio
import collections
import signal

from harness import (ServerTestCase, Client, single_args, login, create_group, join_group,
                     drive, history, check_log, gather_bounded, scale)

N_USERS = 6
N_MESSAGES = scale("SHUTDOWN_MESSAGES", 400)   # per client; SIGTERM comes long before the end
KILL_AFTER = 150                                # acknowledged sends


class ShutdownTest(ServerTestCase):

    async def test_sigterm_while_sending_loses_nothing_acknowledged(self):
        args = single_args(self.tmp)
        s = self.start_server("node-1", args)
        g = "busy"
        users = [f"w{i}" for i in range(N_USERS)]
        tokens = {u: login(s, u) for u in users}
        create_group(s, tokens[users[0]], g)
        for u in users[1:]:
            join_group(s, tokens[u], g)
        clients = [Client(u, tokens[u]) for u in users]
        await gather_bounded([c.connect(s) for c in clients], 10, "connect")
        await gather_bounded([c.resume(g) for c in clients], 10, "resume")

        enough = asyncio.Event()
        acked = [0]

        def count(_c, _p):
            acked[0] += 1
            if acked[0] >= KILL_AFTER:
                enough.set()
        for c in clients:
            c.on_ack = count

        async def terminate():
            await asyncio.wait_for(enough.wait(), 30)
            s.send_signal(signal.SIGTERM)
            return await asyncio.to_thread(s.wait, 15)

        plans = [[(g, f"{c.user} #{j}") for j in range(N_MESSAGES)] for c in clients]
        results = await gather_bounded([terminate()] + [drive(c, p, window=4, timeout=60)
                                                        for c, p in zip(clients, plans)],
                                       70, "traffic until the shutdown")
        rc = results[0]
        self.assertEqual(rc, 0, f"exit code after SIGTERM\n{s.log_tail()}")
        await gather_bounded([c.wait_closed(5) for c in clients], 10, "connections closed by the shutdown")

        acks, errors, unanswered = {}, collections.Counter(), []
        for c in clients:
            self.assertEqual(c.violations, [], c.name)
            for p in c.sends.values():
                if p.ack is not None:
                    self.assertEqual(len(p.acks), 1)
                    acks[(c.user, p.cid)] = (p.ack["id"], p.c)
                elif p.errors:
                    self.assertIn(p.errors[0]["code"], (6, 13), f"error for a send at shutdown: {p.errors}")
                    errors[(c.user, p.cid)] = p.errors[0]["name"]
                else:
                    unanswered.append((c.user, p.cid))
        self.assertGreaterEqual(len(acks), KILL_AFTER)

        # Restart on the same database and read the history.
        s2 = self.start_server("node-1-again", args)
        tok = login(s2, users[0])
        ans, msgs = await asyncio.to_thread(history, s2, tok, g)
        check_log(self, g, msgs, ans.get("head"))
        stored = {(m["u"], m["cid"]): (m["id"], m["c"]) for m in msgs}
        lost = {k: v for k, v in acks.items() if stored.get(k) != v}
        self.assertEqual(lost, {}, "acknowledged but not in the history after the restart")
        self.assertEqual([k for k in errors if k in stored], [], "answered with an error but stored")
        extra = [k for k in stored if k not in acks]
        self.assertTrue(set(extra) <= set(unanswered), f"stored but never sent? {extra}")

        # The restarted server carries on from the stored head.
        c = Client(users[1], tokens[users[1]])
        await c.connect(s2)
        await c.resume(g)
        await c.wait_for(lambda: c.last(g) >= len(msgs), 10, "the whole history after the restart")
        self.assertEqual(c.violations, [])
        ack = await asyncio.wait_for(await c.send(g, "after the restart"), 5)
        self.assertEqual((ack["t"], ack["id"]), ("ack", len(msgs) + 1), ack)
        await c.close()
        codes = collections.Counter(cl.close_code for cl in clients)
        print(f"\n  shutdown: {len(acks)} acked, {len(errors)} errors {dict(collections.Counter(errors.values()))}, "
              f"{len(unanswered)} unanswered ({len(extra)} of them stored); close codes {dict(codes)}", flush=True)
        self.assertEqual(await asyncio.to_thread(s2.stop, signal.SIGINT), 0, "exit code after SIGINT")

    async def test_sigint_idle_exits_0(self):
        s = self.start_server("node-1", single_args(self.tmp))
        c = Client("idle", login(s, "idle"))
        await c.connect(s)
        rc = await asyncio.to_thread(s.stop, signal.SIGINT, 10)
        self.assertEqual(rc, 0, "exit code after SIGINT with a client connected")
        await c.wait_closed(5)


if __name__ == "__main__":
    import unittest
    unittest.main()
