#!/usr/bin/env python3
"""Hosts two Parley nodes in one Python process, with a transport of its own.

The nodes share one store and run on this program's loop (the main thread).
Their peer batches travel over an in-process "network" (a queue); client
sessions are simulated: alice is connected to node-1, bob to node-2, and
carol is offline. A second thread plays alice's keyboard: it hands her
messages to node-1 with Node.post(), the one call that is safe from any
thread, and the node's wakeup callback wakes the loop. Every delivery and
offline notification is printed.

    PARLEY_LIBRARY=build/capi/libparley_c.so python3 bindings/python/examples/host_node.py --messages 3

The same loop works for real sockets: deliver writes to the client's socket,
send_batch writes to the peer's connection, and what arrives is fed back
with client_request() and peer_batch().
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import threading
import time
from pathlib import Path
from typing import Deque, Dict, List, Optional, Tuple

try:
    import parley
except ImportError:  # run from a checkout: the package is next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import parley

GROUP = "lobby"


def now_ms() -> int:
    return int(time.time() * 1000)


class Network:
    """Batches in flight between nodes, and the outcomes owed to their senders."""

    def __init__(self) -> None:
        self.batches: Deque[Tuple[str, str, int, bytes]] = collections.deque()  # sender, to, call_id, data


class Host:
    """One node and the host side of it: sessions, timer, transport."""

    def __init__(self, node_id: str, store: parley.Store, network: Network, wake: threading.Event) -> None:
        self.node_id = node_id
        self.network = network
        self.timer_at: Optional[int] = None
        self.users: Dict[int, str] = {}  # session -> user
        self.received: Dict[str, List[dict]] = collections.defaultdict(list)  # user -> msg events
        self.node = parley.Node(
            store,
            node_id=node_id,
            codec="json",
            on_deliver=self.deliver,
            on_send_batch=self.send_batch,
            on_timer=self.set_timer,
            on_notify=self.notify,
            on_wakeup=wake.set,  # thread-safe, does not block, calls no Parley function
        )
        self.node.start()

    # ---- callbacks: they run inside a Node call, so they only record and queue

    def deliver(self, session: int, frames: List[bytes]) -> None:
        user = self.users[session]
        for frame in frames:
            event = json.loads(frame)
            if event["t"] == "msg":
                print(f"{self.node_id} -> {user}: [{event['g']} #{event['id']}] {event['u']}: {event['c']}")
                self.received[user].append(event)
            elif event["t"] == "error":
                print(f"{self.node_id} -> {user}: error {event['name']}: {event['msg']}")
        # A real host writes the frames to the session's socket and then
        # reports the written bytes (the backpressure signal).
        self.node.post(lambda n: n.session_drained(session, sum(map(len, frames))))

    def send_batch(self, to: str, call_id: int, data: bytes) -> None:
        self.network.batches.append((self.node_id, to, call_id, data))

    def set_timer(self, at_ms: int) -> None:
        self.timer_at = at_ms

    def notify(self, n: parley.Notification) -> None:
        print(f"{self.node_id}: notify {n.user_id}: missed [{n.group_id} #{n.msg_id}] {n.sender_id}: {n.preview!r} ({n.reason})")

    # ---- events

    def connect(self, session: int, user: str) -> None:
        self.users[session] = user
        self.node.open_session(session, user)
        self.request(session, t="resume", g=GROUP, after=0, epoch=0)

    def request(self, session: int, **frame: object) -> None:
        self.node.client_request(session, json.dumps(frame))

    def fire_timer_if_due(self) -> None:
        if self.timer_at is not None and self.timer_at <= now_ms():
            self.timer_at = None
            self.node.timer_fired()


def run(messages: int, max_seconds: float) -> int:
    wake = threading.Event()
    network = Network()
    with parley.Store.memory() as store:
        store.create_group(GROUP, "alice")
        for user in ("bob", "carol"):
            store.join(GROUP, user)
        hosts = {nid: Host(nid, store, network, wake) for nid in ("node-1", "node-2")}
        try:
            hosts["node-1"].connect(1, "alice")
            hosts["node-2"].connect(1, "bob")

            def keyboard() -> None:  # another thread: only post() is allowed here
                for i in range(1, messages + 1):
                    text = f"hello {i}"
                    hosts["node-1"].node.post(
                        lambda n, i=i, text=text: n.client_request(
                            1, json.dumps({"t": "send", "rid": i, "g": GROUP, "cid": f"alice-{i}", "c": text})
                        )
                    )
                    time.sleep(0.02)

            threading.Thread(target=keyboard, daemon=True).start()
            deadline = time.monotonic() + max_seconds
            replied = False
            while time.monotonic() < deadline:
                # Wait for a wakeup, the next timer, or at most 50 ms.
                timers = [h.timer_at for h in hosts.values() if h.timer_at is not None]
                wait = min([0.05] + [max(0.0, (t - now_ms()) / 1000) for t in timers])
                wake.wait(wait)
                wake.clear()
                # The transport: hand each batch to its node, the outcome to the sender.
                while network.batches:
                    sender, to, call_id, data = network.batches.popleft()
                    ok = True
                    try:
                        hosts[to].node.peer_batch(data)
                    except parley.InvalidArgument:
                        ok = False
                    hosts[sender].node.peer_result(to, call_id, ok)
                for host in hosts.values():
                    host.fire_timer_if_due()
                    host.node.flush()  # runs posted functions, commits, delivers
                bob = hosts["node-2"].received["bob"]
                if len(bob) >= messages and not replied:
                    replied = True
                    hosts["node-2"].request(1, t="send", rid=1, g=GROUP, cid="bob-1", c=f"got {len(bob)}, thanks")
                if replied and any(e["u"] == "bob" for e in hosts["node-1"].received["alice"]):
                    print(f"done: bob received {messages} message(s) across nodes, alice got the reply")
                    return 0
            print("timed out", file=sys.stderr)
            return 1
        finally:
            for host in hosts.values():
                host.node.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3, help="messages alice sends (default 3)")
    parser.add_argument("--max-seconds", type=float, default=20, help="give up after this long")
    args = parser.parse_args()
    return run(args.messages, args.max_seconds)


if __name__ == "__main__":
    sys.exit(main())
