"""6. The examples run: host_node.py on its own, bot.py against a real
parley-server started here (its answer must reach another client)."""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any, List, Optional

import websockets

from conftest import BINDING, ServerProcess, child_env

EXAMPLES = BINDING / "examples"


def test_6_1_host_node() -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "host_node.py"), "--messages", "4", "--max-seconds", "60"],
        env=child_env(), capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    for i in range(1, 5):
        assert f"node-2 -> bob: [lobby #{i}] alice: hello {i}" in lines
        assert f"node-1: notify carol: missed [lobby #{i}] alice: 'hello {i}' (offline)" in lines
    assert "node-1 -> alice: [lobby #5] bob: got 4, thanks" in lines
    assert lines[-1].startswith("done: bob received 4 message(s)")


def http(base: str, method: str, path: str, body: Optional[dict] = None, token: Optional[str] = None) -> Any:
    request = urllib.request.Request(base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


class Lines:
    """A child's stdout lines, readable with a timeout."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.queue: "queue.Queue[Optional[str]]" = queue.Queue()
        self.seen: List[str] = []
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def wait_for(self, prefix: str, timeout: float) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.queue.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting with {prefix!r}; the bot printed {self.seen}")


async def chat_until_echo(ws_url: str, text: str, timeout: float) -> dict:
    """Sends `text` to general as alice and returns the bot's answer."""
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"t": "resume", "rid": 1, "g": "general", "after": 0, "epoch": 0}))
        await ws.send(json.dumps({"t": "send", "rid": 2, "g": "general", "cid": "alice-1", "c": text}))
        end = time.monotonic() + timeout
        while True:
            ev = json.loads(await asyncio.wait_for(ws.recv(), end - time.monotonic()))
            if ev["t"] == "msg" and ev["u"] == "echobot":
                return ev


def test_6_2_bot_answers_on_a_real_server(server_process: ServerProcess) -> None:
    base = server_process.url
    token = http(base, "POST", "v1/login", {"user": "alice", "password": ""})["token"]
    http(base, "POST", "v1/groups", {"group": "general"}, token)
    # an old command in history: the bot answers only what comes after it joined
    asyncio.run(_send_only(base, token, "!echo old"))
    bot = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "bot.py"), "--url", base, "--user", "echobot", "--group", "general",
         "--once", "--max-seconds", "60"],
        env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = Lines(bot)
        assert "(member)" in lines.wait_for("joined general as echobot", 30)
        lines.wait_for("ready:", 30)
        ws_url = f"ws://127.0.0.1:{server_process.port}/v1/ws?token={token}"
        answer = asyncio.run(chat_until_echo(ws_url, "!echo hello bot", 30))
        assert answer["c"] == "echo: hello bot" and answer["g"] == "general"
        assert lines.wait_for("replied #", 30).endswith("echo: hello bot")
        assert bot.wait(timeout=30) == 0, bot.stderr.read()  # type: ignore[union-attr]
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait()
    history = http(base, "GET", "v1/groups/general/messages", token=token)["messages"]
    assert [(m["u"], m["c"]) for m in history] == [
        ("alice", "!echo old"), ("alice", "!echo hello bot"), ("echobot", "echo: hello bot")]


async def _send_only(base: str, token: str, text: str) -> None:
    ws_url = base.replace("http://", "ws://") + f"v1/ws?token={token}"
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"t": "send", "rid": 1, "g": "general", "cid": "old-1", "c": text}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["t"] != "ack":
            pass


def test_6_3_bot_creates_a_missing_group_and_stops_at_max_seconds(server_process: ServerProcess) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "bot.py"), "--url", server_process.url, "--group", "fresh",
         "--max-seconds", "2"],
        env=child_env(), capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "joined fresh as echobot (owner) at message 0" in out.stdout
    assert "ready: listening to fresh" in out.stdout
