#!/usr/bin/env python3
"""An echo bot for a running parley-server.

It logs in over HTTP (POST /v1/login), joins a group (creating it if it does
not exist), connects to the chat WebSocket (/v1/ws) and answers every message
"!echo TEXT" from someone else with "echo: TEXT". It follows the client
rules of docs/protocol.md 2.5: it applies messages in id order, resumes
after a reconnect from the last id it holds, follows pull mode, and resends
an unacknowledged reply with the same client message id.

    ./scripts/run.sh &      # parley-server with --dev on http://127.0.0.1:8080/
    /usr/bin/python3 bindings/python/examples/bot.py --url http://127.0.0.1:8080/ --user echobot --group general

Then write "!echo hi" in the group from the web client. --once stops after
the first answer is stored, --max-seconds after that long (for tests).
Needs the websockets package (Debian: python3-websockets). Errors from the
server are raised as the parley package's exceptions (parley.NotFound, ...),
which need no native library.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Dict, Optional

try:
    import websockets
except ImportError:
    sys.exit("bot.py needs the websockets package: apt-get install python3-websockets (or pip install websockets)")

try:
    import parley
except ImportError:  # run from a checkout: the package is next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import parley

COMMAND = "!echo"


def log(text: str) -> None:
    print(text, flush=True)


class Http:
    """The server's HTTP web service (docs/protocol.md 3), errors as parley exceptions."""

    def __init__(self, url: str) -> None:
        self.base = url if url.endswith("/") else url + "/"
        self.token: Optional[str] = None

    def call(self, method: str, path: str, body: Optional[dict] = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as e:
            try:
                err = json.load(e)
            except ValueError:
                raise parley.ParleyError(f"HTTP {e.code} from {method} /{path}") from None
            raise parley.error_from_code(err["code"], err.get("msg", "")) from None

    def login(self, user: str, password: str) -> None:
        self.token = self.call("POST", "v1/login", {"user": user, "password": password})["token"]

    def join_or_create(self, group: str) -> str:
        quoted = urllib.parse.quote(group, safe="")
        try:
            return self.call("POST", f"v1/groups/{quoted}/join")["role"]
        except parley.NotFound:
            return self.call("POST", "v1/groups", {"group": group})["role"]

    def head(self, group: str) -> tuple:
        """(epoch, head) of the group now: the bot answers only what comes after."""
        quoted = urllib.parse.quote(group, safe="")
        page = self.call("GET", f"v1/groups/{quoted}/messages?limit=1")
        return page["epoch"], page["head"]

    def ws_url(self) -> str:
        parts = urllib.parse.urlsplit(self.base)
        scheme = "wss" if parts.scheme == "https" else "ws"
        query = urllib.parse.urlencode({"token": self.token})
        return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path + "v1/ws", query, ""))


class Bot:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.http = Http(args.url)
        self.epoch = 0
        self.last = 0  # the last message id applied (per docs/protocol.md 2.5)
        self.rids = itertools.count(1)
        self.pending: Dict[str, dict] = {}  # cid -> send frame, until acknowledged
        self.replies = 0
        self.ws: Any = None  # the open WebSocket

    async def run(self) -> int:
        deadline = time.monotonic() + self.args.max_seconds if self.args.max_seconds > 0 else None
        self.http.login(self.args.user, self.args.password)
        role = self.http.join_or_create(self.args.group)
        self.epoch, self.last = self.http.head(self.args.group)
        log(f"joined {self.args.group} as {self.args.user} ({role}) at message {self.last}")
        while True:
            try:
                done = await self.session(deadline)
            except (OSError, websockets.exceptions.ConnectionClosed) as e:
                log(f"connection lost ({e}); reconnecting")
                done = False
            if done:
                return 0
            if deadline is not None and time.monotonic() >= deadline:
                log("max-seconds reached")
                return 0 if self.replies or not self.args.once else 1
            await asyncio.sleep(1)
            self.http.login(self.args.user, self.args.password)  # a fresh token

    async def session(self, deadline: Optional[float]) -> bool:
        """One connection; True when the bot is done (--once, or time is up)."""
        async with websockets.connect(self.http.ws_url(), max_size=None) as ws:
            self.ws = ws
            await self.send({"t": "resume", "g": self.args.group, "after": self.last, "epoch": self.epoch})
            for frame in list(self.pending.values()):  # replies not yet acknowledged: same cid
                await self.send(frame)
            while True:
                timeout = None if deadline is None else deadline - time.monotonic()
                if timeout is not None and timeout <= 0:
                    return True
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout)
                except asyncio.TimeoutError:
                    return True
                if await self.on_event(json.loads(raw)):
                    return True

    async def send(self, frame: dict) -> None:
        await self.ws.send(json.dumps(frame))

    async def pull(self) -> None:
        await self.send({"t": "pull", "rid": next(self.rids), "g": self.args.group, "after": self.last,
                         "limit": 100, "epoch": self.epoch})

    async def on_event(self, ev: dict) -> bool:
        t = ev.get("t")
        if t == "msg":
            await self.on_message(ev)
        elif t == "resumed":
            log(f"ready: listening to {ev['g']} (head {ev['head']}, {ev['mode']} mode)")
            if ev["mode"] == "pull":
                await self.pull()
        elif t in ("hint", "mode"):
            if ev.get("mode") == "push":
                await self.send({"t": "resume", "g": self.args.group, "after": self.last, "epoch": self.epoch})
            else:
                await self.pull()
        elif t == "pulled":
            for m in ev["msgs"]:
                await self.on_message(m)
            if self.last < ev["head"]:
                await self.pull()
        elif t == "epoch":  # history reset: nothing old to answer; start over at its head
            self.epoch, self.last = ev["epoch"], 0
            await self.send({"t": "resume", "g": self.args.group, "after": 0, "epoch": self.epoch})
        elif t == "ack":
            frame = self.pending.pop(ev["cid"], None)
            if frame is not None:
                self.replies += 1
                log(f"replied #{ev['id']}: {frame['c']}")
                if self.args.once:
                    return True
        elif t == "error":
            log(f"error: {parley.error_from_code(ev['code'], ev.get('msg', ''))}")
            if ev.get("code") == parley.Unauthenticated.code:
                raise parley.Unauthenticated(ev.get("msg", ""))
        return False

    async def on_message(self, m: dict) -> None:
        if m.get("ep", self.epoch) != self.epoch and self.epoch != 0:
            return
        if m["id"] != self.last + 1:  # a duplicate or a gap: resume fills gaps
            return
        self.epoch = m.get("ep", self.epoch)
        self.last = m["id"]
        text = m.get("c", "")
        if m.get("u") == self.args.user or not text.startswith(COMMAND):
            return
        rest = text[len(COMMAND):].strip()
        log(f"{m['u']} said: {text}")
        cid = f"{self.args.user}-{uuid.uuid4().hex[:12]}"
        frame = {"t": "send", "rid": next(self.rids), "g": self.args.group, "cid": cid, "c": f"echo: {rest}"}
        self.pending[cid] = frame
        await self.send(frame)


def main() -> int:
    parser = argparse.ArgumentParser(description="An echo bot for parley-server.")
    parser.add_argument("--url", default="http://127.0.0.1:8080/", help="the server (default %(default)s)")
    parser.add_argument("--user", default="echobot", help="the bot's user name (default %(default)s)")
    parser.add_argument("--password", default="", help="its password (not needed with --dev)")
    parser.add_argument("--group", default="general", help="the group to answer in (default %(default)s)")
    parser.add_argument("--once", action="store_true", help="stop after the first answer is stored")
    parser.add_argument("--max-seconds", type=float, default=0, help="stop after this long (0: run until Ctrl-C)")
    args = parser.parse_args()
    try:
        return asyncio.run(Bot(args).run())
    except KeyboardInterrupt:
        return 0
    except parley.ParleyError as e:
        print(f"bot: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
