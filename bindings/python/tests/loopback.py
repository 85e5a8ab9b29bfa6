"""A Python loopback transport for tests: several nodes on one store in one
thread, on virtual time, their peer batches carried by a queue and their
client sessions recorded as decoded JSON events.

Callbacks only queue (they must not call back into their node); run() does
the work between calls, as a host's loop would.
"""

from __future__ import annotations

import collections
import json
from typing import Any, Deque, Dict, List, Optional, Tuple

import parley


class Loopback:
    def __init__(self, store: parley.Store, node_ids: List[str], **options: Any) -> None:
        self.now = 1_700_000_000_000  # virtual ms
        self.store = store
        self.network: Deque[Tuple[str, str, int, bytes]] = collections.deque()  # from, to, call_id, batch
        self.timers: Dict[str, int] = {}
        self.events: Dict[Tuple[str, int], List[dict]] = collections.defaultdict(list)  # (node, session) -> events
        self.closed: List[Tuple[str, int, parley.ParleyError]] = []
        self.notifications: List[parley.Notification] = []
        self.down: set = set()  # node ids whose incoming batches fail
        self.batches = 0  # carried to a node that was up
        self.nodes: Dict[str, parley.Node] = {}
        for node_id in node_ids:
            self.nodes[node_id] = self._make(node_id, options)

    def _make(self, node_id: str, options: Dict[str, Any]) -> parley.Node:
        def deliver(session: int, frames: List[bytes]) -> None:
            self.events[(node_id, session)].extend(json.loads(f) for f in frames)

        def send_batch(to: str, call_id: int, data: bytes) -> None:
            self.network.append((node_id, to, call_id, data))

        def timer(at_ms: int) -> None:
            self.timers[node_id] = at_ms

        def close_session(session: int, error: parley.ParleyError) -> None:
            self.closed.append((node_id, session, error))

        node = parley.Node(
            self.store,
            node_id=node_id,
            codec="json",
            clock=lambda: self.now,
            on_deliver=deliver,
            on_send_batch=send_batch,
            on_timer=timer,
            on_close_session=close_session,
            on_notify=self.notifications.append,
            **options,
        )
        node.start()
        return node

    def request(self, node_id: str, session: int, **frame: Any) -> None:
        self.nodes[node_id].client_request(session, json.dumps(frame))

    def run(self, max_turns: int = 100) -> None:
        """Flushes every node and carries batches until nothing moves."""
        for _ in range(max_turns):
            for node in self.nodes.values():
                node.flush()
            if not self.network:
                return
            while self.network:
                sender, to, call_id, data = self.network.popleft()
                ok = to in self.nodes and to not in self.down
                if ok:
                    self.nodes[to].peer_batch(data)
                    self.batches += 1
                self.nodes[sender].peer_result(to, call_id, ok)
        raise AssertionError("the loopback cluster did not settle")

    def advance(self, ms: int) -> None:
        """Moves virtual time on, firing the timers that fall due, and runs."""
        end = self.now + ms
        while True:
            due = [(at, nid) for nid, at in self.timers.items() if at <= end]
            if not due:
                break
            at, nid = min(due)
            self.now = max(self.now, at)
            del self.timers[nid]
            self.nodes[nid].timer_fired()
            self.run()
        self.now = end
        self.run()

    def take(self, node_id: str, session: int, kind: Optional[str] = None) -> List[dict]:
        """The events delivered to a session since the last take (of type `kind` only, if given)."""
        events = self.events.pop((node_id, session), [])
        return [e for e in events if kind is None or e.get("t") == kind]

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()
