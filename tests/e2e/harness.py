"""End-to-end test harness for parley-server.

Starts real server processes on 127.0.0.1 (port 0, the port read from the
server's "listening on http://127.0.0.1:PORT/" line), and drives them with:

- `Client`: a chat client over `websockets` that follows the client rules of
  docs/protocol.md (2.5) and checks every delivery: per group the ids are
  consecutive (last + 1), nothing is delivered twice, the epoch and `prev`
  agree; it answers `mode`/`hint`/`resumed(pull)` by pulling and `mode(push)`
  by resuming, and resends unacknowledged sends with the same `cid` after a
  reconnect. Anything that breaks a rule is appended to `violations`.
- `RawWs`: a minimal blocking WebSocket client over a plain socket, for what a
  well-behaved library will not do (binary frames, oversized frames, broken
  handshakes, never reading, dropping the socket with a reset).
- `WebhookReceiver`: an http.server on 127.0.0.1:0 collecting JSON POSTs.
- `RedisServer`: a redis-server process (appendonly, fsync per write) that can be
  killed and started again on the same port and directory.
- `TcpProxy`: a TCP forwarder that can be cut (open connections reset, new ones
  refused) and healed, and can hold every chunk for a random delay.
- HTTP helpers (`http_request`, `login`, `history`).

Every wait has a deadline; every loop is bounded in count and time.
Only Debian's python3 and python3-websockets are needed.
"""

import asyncio
import base64
import collections
import contextlib
import hashlib
import http.client
import http.server
import itertools
import json
import os
import random
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

try:
    import websockets
except ImportError:  # pyenv or venv pythons do not see Debian's dist-packages
    sys.path.append("/usr/lib/python3/dist-packages")
    import websockets  # noqa: E402

HOST = "127.0.0.1"
HERE = os.path.dirname(os.path.abspath(__file__))

# Error codes of docs/protocol.md 2.4.
INVALID_ARGUMENT = 1
NOT_FOUND = 2
PERMISSION_DENIED = 3
TOO_LARGE = 5
UNAVAILABLE = 6
TIMEOUT = 7
EPOCH_MISMATCH = 8
BACKPRESSURE = 9
UNAUTHENTICATED = 12
CLOSED = 13
CODE_NAMES = {
    1: "invalid_argument", 2: "not_found", 3: "permission_denied", 4: "already_exists",
    5: "too_large", 6: "unavailable", 7: "timeout", 8: "epoch_mismatch",
    9: "backpressure", 11: "internal", 12: "unauthenticated", 13: "closed", 14: "history_trimmed",
    15: "limit_exceeded", 16: "deleted",
}


def server_binary():
    path = os.environ.get("PARLEY_SERVER")
    if not path:
        path = os.path.join(HERE, "..", "..", "build", "examples", "server", "parley-server")
    return os.path.abspath(path)


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host=HOST):
    """A port of `host` that was free a moment ago (for --peer-listen and redis-server, which
    must be known in advance). Picked below the kernel's ephemeral range: the servers' own
    `--listen ...:0` ports come from that range, so one of them cannot take a port picked
    here before its owner binds it (a node once failed "cannot listen for peers" that way)."""
    lo, _ = _ephemeral_range()
    top = max(lo - 1, 10001)
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(10000, top)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # a crowded machine: any free one
        s.bind((host, 0))
        return s.getsockname()[1]


def scale(name, default):
    """Test sizes can be raised from the environment, e.g. PARLEY_E2E_MESSAGES=100."""
    return int(os.environ.get("PARLEY_E2E_" + name, default))


# ---------------------------------------------------------------------------
# Server processes


def threads_args(args):
    """--threads from PARLEY_E2E_THREADS (default 1): ctest runs the tests as e2e/NAME with one
    shard per server and as e2e4/NAME with four, unless a test chose its own."""
    if "--threads" in args or "memory" in args:
        return []
    return ["--threads", os.environ.get("PARLEY_E2E_THREADS", "1")]


class Server:
    """One parley-server process. `args` are extra command-line flags. A server started
    with --tls-cert prints an https:// listening line; `tls_ca` (a PEM file) is then the
    CA that `http_request` and `Client` trust (None: the system's CAs only)."""

    START_DEADLINE = 15.0
    host = HOST     # the address it listens on and clients connect to (a subclass may change it)

    def __init__(self, workdir, name="node-1", args=(), port=0, tls_ca=None):
        self.workdir = workdir
        self.name = name
        self.args = list(args)
        self.listen_port = port
        self.tls_ca = tls_ca
        self.scheme = "http"    # from the listening line: "http" or "https"
        self.port = None
        self.proc = None
        self.stdout_lines = []
        self.expected_exit = False
        self.log_path = os.path.join(workdir, f"{name}.stderr.log")
        self._listening = threading.Event()
        self._reader = None

    def command(self):
        return [server_binary(), "--listen", f"{self.host}:{self.listen_port}", *threads_args(self.args),
                *self.args]

    def start(self):
        binary = server_binary()
        if not os.access(binary, os.X_OK):
            raise unittest.SkipTest(f"parley-server not built: {binary}")
        self.port = None
        self.stdout_lines = []
        self._listening.clear()
        self.expected_exit = False
        log = open(self.log_path, "ab")
        log.write(f"\n==== start {' '.join(self.command())}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=log, cwd=self.workdir)
        log.close()
        self._reader = threading.Thread(target=self._read_stdout, args=(self.proc,), daemon=True)
        self._reader.start()
        if not self._listening.wait(self.START_DEADLINE):
            rc = self.proc.poll()
            self.kill()
            raise AssertionError(f"{self.name}: no 'listening on' line within {self.START_DEADLINE}s "
                                 f"(exit {rc})\n{self.log_tail()}")
        return self

    def _read_stdout(self, proc):
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.stdout_lines.append(line)
            for scheme in ("http", "https"):
                prefix = f"listening on {scheme}://{self.host}:"
                if self.port is None and prefix in line:
                    rest = line.split(prefix, 1)[1]
                    digits = "".join(itertools.takewhile(str.isdigit, rest))
                    if digits:
                        self.scheme = scheme
                        self.port = int(digits)
                        self._listening.set()
        proc.stdout.close()

    @property
    def base(self):
        return f"{self.scheme}://{self.host}:{self.port}"

    def ws_url(self, token):
        ws = "wss" if self.scheme == "https" else "ws"
        return f"{ws}://{self.host}:{self.port}/v1/ws?token={urllib.parse.quote(token)}"

    def client_ssl(self):
        """The TLS context clients use for this server (None when it speaks plain HTTP):
        certificates must chain to `tls_ca` and name 127.0.0.1."""
        return ssl.create_default_context(cafile=self.tls_ca) if self.scheme == "https" else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.expected_exit = True
        if self.running():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signals the server and waits for it; returns the exit code (None: had to be killed)."""
        if self.proc is None:
            return None
        self.send_signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
        return rc

    def backtrace(self):
        """With PARLEY_E2E_GDB=1 and gdb installed: every thread's stack of the running
        server, appended to its log (for a server that does not exit)."""
        if not os.environ.get("PARLEY_E2E_GDB") or not shutil.which("gdb") or not self.running():
            return
        out = subprocess.run(["gdb", f"/proc/{self.proc.pid}/exe", "-p", str(self.proc.pid), "-batch",
                              "-ex", "thread apply all bt 25"],
                             capture_output=True, timeout=60).stdout
        with open(self.log_path, "ab") as f:
            f.write(b"\n==== gdb backtrace of the hung server\n" + out)

    def kill(self):
        self.backtrace()
        self.expected_exit = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            lines = []
        out = "\n".join(lines[-n:])
        return f"--- {self.name} stdout:\n" + "\n".join(self.stdout_lines[-10:]) + \
               f"\n--- {self.name} stderr (last {n} lines):\n{out}"

    def healthz(self, timeout=5.0):
        return http_request(self, "GET", "/healthz", timeout=timeout)


def quiet_loop():
    """IsolatedAsyncioTestCase runs its loop in debug mode, which warns about every
    callback over 0.1 s (our blocking helpers) and slows 50 clients down."""
    asyncio.get_running_loop().set_debug(False)


class ServerTestCase(unittest.IsolatedAsyncioTestCase):
    """Base class: temp dir per test, servers stopped at the end, logs shown on failure,
    and a server that died without being told to fails the test."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="parley-e2e-")
        self.servers = []
        self.webhooks = []
        self.redises = []

    async def asyncSetUp(self):
        quiet_loop()

    def start_server(self, name="node-1", args=(), port=0, tls_ca=None):
        s = Server(self.tmp, name, args, port, tls_ca)
        self.servers.append(s)
        return s.start()

    def start_redis(self, host=HOST):
        """A redis-server on a free port of `host`, its files in the test's temp dir;
        stopped after tearDown (which stops the parley servers first), its log shown if
        the test failed. Fails the test when redis-server is not installed."""
        if shutil.which("redis-server") is None:
            self.fail("redis-server is not installed (apt-get install redis-server): this test needs it")
        r = RedisServer(self.tmp, free_port(host), host)
        self.redises.append(r)
        self.addCleanup(r.stop)
        return r.start()

    def tearDown(self):
        crashed = [s for s in self.servers if s.proc is not None and not s.expected_exit
                   and s.proc.poll() is not None]
        # SIGTERM all at once, then wait: each must exit 0 (clean shutdown).
        running = [s for s in self.servers if s.running()]
        for s in running:
            s.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        codes, exited = {}, {}
        for s in running:   # one after the other: a time is when its exit was seen
            codes[s.name] = s.wait(max(0.1, 15.0 - (time.monotonic() - t0)))
            exited[s.name] = time.monotonic() - t0
        for s in running:
            if codes[s.name] is None:
                s.kill()
        slow_exit = time.monotonic() - t0
        if slow_exit > 3 or os.environ.get("PARLEY_E2E_VERBOSE"):
            sys.stderr.write(f"\n  note: SIGTERM to exit took {slow_exit:.1f}s ("
                             + ", ".join(f"{n} {t:.1f}s" for n, t in exited.items()) + ")\n")
        for w in self.webhooks:
            w.close()
        bad_exit = {n: rc for n, rc in codes.items() if rc != 0}
        failed = self._failed() or crashed or bad_exit
        if failed or os.environ.get("PARLEY_E2E_VERBOSE"):
            for s in self.servers:
                sys.stderr.write("\n" + s.log_tail(int(os.environ.get("PARLEY_E2E_LOG_LINES", "40"))) + "\n")
            for r in self.redises:
                sys.stderr.write("\n" + r.log_tail() + "\n")
        if failed and os.environ.get("PARLEY_E2E_KEEP"):
            sys.stderr.write(f"kept {self.tmp}\n")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if crashed:
            self.fail("server(s) exited unexpectedly: " +
                      ", ".join(f"{s.name} rc={s.proc.returncode}" for s in crashed))
        if bad_exit:
            self.fail(f"SIGTERM did not give a clean exit 0 within 15 s: {bad_exit} (None: killed)")

    def _failed(self):
        outcome = getattr(self, "_outcome", None)
        result = getattr(outcome, "result", None)
        if result is None:
            return False
        return any(t is self for t, _ in list(result.failures) + list(result.errors))

    def webhook(self):
        w = WebhookReceiver()
        self.webhooks.append(w)
        return w

    def assert_error(self, frame, code, msg=""):
        self.assertIsNotNone(frame, f"no answer {msg}")
        self.assertEqual(frame.get("t"), "error", f"expected an error {msg}, got {frame}")
        self.assertEqual(frame.get("code"), code, f"{msg}: {frame}")
        self.assertEqual(frame.get("name"), CODE_NAMES[code], f"{msg}: {frame}")

    def assert_http_error(self, resp, status, code, msg=""):
        self.assertEqual(resp.status, status, f"{msg}: {resp}")
        body = resp.json
        self.assertIsInstance(body, dict, f"{msg}: error body is not JSON: {resp}")
        self.assertEqual(body.get("code"), code, f"{msg}: {resp}")
        self.assertEqual(body.get("name"), CODE_NAMES[code], f"{msg}: {resp}")
        self.assertIn("msg", body, f"{msg}: {resp}")

    def assert_healthy(self, server, msg=""):
        self.assertTrue(server.running(), f"server died {msg}\n{server.log_tail()}")
        r = server.healthz()
        self.assertEqual(r.status, 200, f"/healthz {msg}: {r}")
        self.assertEqual(r.json.get("status"), "ok", f"/healthz {msg}: {r}")

    async def finish(self, clients, nodes=()):
        """The end of a test: no client saw a delivery rule broken; each is closed; each
        node is alive and healthy."""
        for c in clients:
            self.assertEqual(c.violations, [], f"{c.name}: delivery rules broken")
            await c.close()
        for n in nodes:
            self.assert_healthy(n)


# ---------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"HTTP {self.status} {self.body[:300]!r}"


def http_request(server, method, path, body=None, token=None, headers=None, timeout=10.0, port=None,
                 context=None):
    """One request on a new connection: HTTPS with `context` if given, else HTTPS with the
    server's client_ssl() when it speaks TLS and no other `port` is named, else HTTP."""
    if context is None and port is None:
        context = server.client_ssl()
    host = getattr(server, "host", HOST)
    if context is not None:
        conn = http.client.HTTPSConnection(host, port or server.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port or server.port, timeout=timeout)
    try:
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return Response(r.status, dict(r.getheaders()), r.read())
    finally:
        conn.close()


async def ahttp(*args, **kwargs):
    return await asyncio.to_thread(http_request, *args, **kwargs)


def login(server, user, password="x"):
    r = http_request(server, "POST", "/v1/login", {"user": user, "password": password})
    if r.status != 200 or not isinstance(r.json, dict) or "token" not in r.json:
        raise AssertionError(f"login {user}: {r}")
    return r.json["token"]


def create_group(server, token, group):
    r = http_request(server, "POST", "/v1/groups", {"group": group}, token=token)
    if r.status != 201:
        raise AssertionError(f"create group {group}: {r}")
    return r.json


def join_group(server, token, group):
    r = http_request(server, "POST", f"/v1/groups/{urllib.parse.quote(group, safe='')}/join", token=token)
    if r.status != 200:
        raise AssertionError(f"join {group}: {r}")
    return r.json


def history(server, token, group, page=1000, max_pages=200):
    """Every message of `group` over GET /v1/groups/{g}/messages, paging forward with `after`.
    Returns (answer of the last page without messages, messages)."""
    msgs = []
    after = 0
    last = None
    for _ in range(max_pages):
        r = http_request(server, "GET", f"/v1/groups/{urllib.parse.quote(group, safe='')}/messages"
                         f"?after={after}&limit={page}", token=token)
        if r.status != 200:
            raise AssertionError(f"history {group} after {after}: {r}")
        last = r.json
        page_msgs = last.get("messages", [])
        msgs.extend(page_msgs)
        if not page_msgs or page_msgs[-1]["id"] >= last.get("head", 0):
            return last, msgs
        after = page_msgs[-1]["id"]
    raise AssertionError(f"history {group}: more than {max_pages} pages")


def set_up_groups(nodes, users, groups):
    """User i lives on node i % len(nodes) and logs in on the next node (tokens are good
    on every node); each group is created on its first member's node and joined by the
    others on theirs. Returns (home, tokens, user_groups)."""
    home = {u: nodes[i % len(nodes)] for i, u in enumerate(users)}
    tokens = {u: login(nodes[(i + 1) % len(nodes)], u) for i, u in enumerate(users)}
    for g, members in groups.items():
        create_group(home[members[0]], tokens[members[0]], g)
        for u in members[1:]:
            join_group(home[u], tokens[u], g)
    user_groups = {u: [g for g, m in groups.items() if u in m] for u in users}
    return home, tokens, user_groups


async def connect_retrying(client, target, attempts=50, delay=0.1):
    """Connects `client` to `target`, retrying refused connections (bounded)."""
    for _ in range(attempts):
        try:
            await client.connect(target)
            return
        except OSError:
            await asyncio.sleep(delay)
    raise AssertionError(f"{client.user}: cannot reconnect to {target.name}")


def check_log(testcase, group, msgs, head=None):
    """A group's stored log: ids dense from 1, prev = id - 1, no (user, cid) twice."""
    ids = [m["id"] for m in msgs]
    testcase.assertEqual(ids, list(range(1, len(ids) + 1)), f"{group}: ids not dense from 1")
    if head is not None:
        testcase.assertEqual(head, len(ids), f"{group}: head {head} but {len(ids)} messages")
    for m in msgs:
        testcase.assertEqual(m.get("prev"), m["id"] - 1, f"{group}: bad prev in {m}")
    keys = collections.Counter((m["u"], m["cid"]) for m in msgs if m.get("cid"))
    dups = [k for k, n in keys.items() if n > 1]
    testcase.assertEqual(dups, [], f"{group}: (user, cid) stored more than once")


# ---------------------------------------------------------------------------
# Chat client over websockets


class Pending:
    __slots__ = ("g", "c", "cid", "ack", "acks", "errors", "sent", "future", "retry", "failed")

    def __init__(self, g, c, cid):
        self.g, self.c, self.cid = g, c, cid
        self.ack = None      # the first ack
        self.acks = []       # every ack (resends answer again)
        self.errors = []
        self.sent = 0        # how many times it went on the wire
        self.future = None
        self.retry = False   # answered with one of the client's retry_codes: send again, same cid
        self.failed = False  # answered with another error: given up


class GroupState:
    __slots__ = ("last", "epoch", "msgs", "pulling", "pull_again", "mode", "head_hint", "resumed")

    def __init__(self):
        self.last = 0
        self.epoch = 0
        self.msgs = {}       # id -> msg dict
        self.pulling = False
        self.pull_again = False
        self.mode = "push"
        self.head_hint = 0
        self.resumed = False


class Client:
    """A chat client that checks what it is given. One websocket at a time;
    `reconnect` opens another (on any node) and resumes every group."""

    def __init__(self, user, token, name=None):
        self.user = user
        self.token = token
        self.name = name or user
        self.ws = None
        self.hello = None
        self.groups = {}
        self.sends = {}             # cid -> Pending
        self.violations = []
        self.events = []            # every non-msg frame, in order
        self.frames_in = 0
        self.close_code = None
        self.close_reason = None
        self.connected_to = None
        self._rid = itertools.count(1)
        self._rids = {}             # rid -> ("send", cid) | ("req", future)
        self._reader = None
        self._changed = asyncio.Event()
        self._cid_seq = itertools.count(1)
        self._cid_prefix = os.urandom(3).hex()   # cids stay unique across Client objects of a user
        self.on_ack = None          # optional callback(client, pending) on each first ack
        self.pushed_in_pull = []    # msg frames pushed after mode:pull (and before mode:push)
        # Error codes that mark a send for a resend with the same cid (others give it up).
        self.retry_codes = (UNAVAILABLE, CLOSED)

    # -- connection

    async def connect(self, server, resume=True, timeout=10.0):
        """Opens a websocket to `server`, waits for hello, and (if resume) resumes every
        group held and resends every unacknowledged send."""
        await self.close()
        self.close_code = None
        self.close_reason = None
        self.hello = None
        tls = {"ssl": server.client_ssl()} if server.scheme == "https" else {}
        self.ws = await asyncio.wait_for(websockets.connect(
            server.ws_url(self.token), compression=None, max_size=64 << 20, ping_interval=None,
            open_timeout=timeout, close_timeout=2, **tls), timeout)
        self.connected_to = server
        first = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        if first.get("t") != "hello":
            self.violations.append(f"first frame is not hello: {first}")
        self.hello = first
        self.events.append(first)
        self._rids = {}
        self._reader = asyncio.create_task(self._read(self.ws))
        for g in self.groups.values():
            g.resumed = False
            g.pulling = False
            g.pull_again = False
        if resume:
            for name, st in list(self.groups.items()):
                await self.resume(name, wait=False)
            for p in list(self.sends.values()):
                if p.ack is None:
                    await self._send_pending(p)
        return self.hello

    async def close(self):
        ws, self.ws = self.ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 3)
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._reader, 3)
            self._reader = None

    def abort(self, reset=True):
        """Drops the TCP connection without a close handshake (with a RST if `reset`)."""
        ws = self.ws
        if ws is None:
            return
        sock = ws.transport.get_extra_info("socket")
        if reset and sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        ws.transport.abort()

    @property
    def open(self):
        return self.ws is not None and self._reader is not None and not self._reader.done()

    async def _read(self, ws):
        try:
            async for raw in ws:
                self.frames_in += 1
                if isinstance(raw, bytes):
                    self.violations.append(f"binary frame from server: {raw[:80]!r}")
                    continue
                try:
                    f = json.loads(raw)
                except ValueError:
                    self.violations.append(f"frame is not JSON: {raw[:200]!r}")
                    continue
                self._dispatch(f)
                self._notify()
        except websockets.ConnectionClosed:
            pass
        except Exception as e:  # noqa: BLE001 - a reader must never die silently
            self.violations.append(f"reader failed: {e!r}")
        finally:
            self.close_code = ws.close_code
            self.close_reason = ws.close_reason
            self._notify()

    def _notify(self):
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, pred, timeout, what="condition"):
        """Waits until pred() holds, re-checked after each frame; fails after `timeout` s."""
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: timed out after {timeout}s waiting for {what}")
            ev = self._changed
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(ev.wait(), min(left, 0.5))
        return True

    async def wait_closed(self, timeout):
        await self.wait_for(lambda: not self.open, timeout, "the connection to close")

    # -- frames in

    def _dispatch(self, f):
        t = f.get("t")
        if t == "msg":
            self._apply_push(f)
            return
        self.events.append(f)
        rid = f.get("rid")
        entry = self._rids.pop(rid, None) if rid is not None else None
        if t == "ack" and not (entry is not None and entry[0] == "req"):
            self._on_ack(f, entry)
        elif t == "error":
            self._on_error(f, entry)
        elif t == "pulled":
            self._on_pulled(f)
        elif t == "resumed":
            self._on_resumed(f)
        elif t == "mode":
            self._on_mode(f)
        elif t == "hint":
            self._on_hint(f)
        elif t == "epoch":
            self.violations.append(f"unexpected epoch event {f}")
        if entry is not None and entry[0] == "req" and not entry[1].done():
            entry[1].set_result(f)
        if entry is not None and entry[0] == "bg" and t == "error":
            self.violations.append(f"background {entry[1]} failed: {f}")
            st = self.groups.get(f.get("g"))
            if st is not None and entry[1] == "pull":
                st.pulling = False

    def _apply(self, g, m, source):
        st = self.groups.setdefault(g, GroupState())
        if st.epoch == 0 and m.get("ep"):
            st.epoch = m["ep"]
        elif m.get("ep") not in (None, st.epoch):
            self.violations.append(f"{g}: message of epoch {m.get('ep')} while holding {st.epoch}: {m}")
        if m["id"] != st.last + 1:
            kind = "duplicate" if m["id"] <= st.last else "gap"
            self.violations.append(f"{g}: {source} {kind}: got id {m['id']} after {st.last}")
            return
        if m.get("prev") != m["id"] - 1:
            self.violations.append(f"{g}: prev {m.get('prev')} for id {m['id']}")
        st.msgs[m["id"]] = m
        st.last = m["id"]

    def _apply_push(self, f):
        st = self.groups.get(f.get("g"))
        if st is not None and st.mode == "pull":
            self.pushed_in_pull.append(f)
        self._apply(f.get("g"), f, "push")

    def _on_pulled(self, f):
        g = f.get("g")
        st = self.groups.get(g)
        if st is None:
            self.violations.append(f"pulled for a group never resumed: {f}")
            return
        if f.get("fold"):
            return  # a folded page is a view of history, not entries of the log (protocol.md)
        for m in f.get("msgs", []):
            if m["id"] <= st.last:
                continue  # rule 1: skip ids already held
            self._apply(m.get("g", g), m, "pull")
        head = f.get("head", 0)
        st.head_hint = max(st.head_hint, head)
        if st.last < head or st.pull_again:
            st.pull_again = False
            self._spawn(self.pull(g, wait=False))
        else:
            st.pulling = False

    def _start_pull(self, g):
        st = self.groups[g]
        if st.pulling:
            st.pull_again = True
            return
        st.pulling = True
        self._spawn(self.pull(g, wait=False))

    def _on_resumed(self, f):
        g = f.get("g")
        st = self.groups.setdefault(g, GroupState())
        st.resumed = True
        st.mode = f.get("mode", "push")
        if f.get("epoch"):
            st.epoch = f["epoch"]
        if st.mode == "pull" and st.last < f.get("head", 0):
            self._start_pull(g)

    def _on_mode(self, f):
        g = f.get("g")
        st = self.groups.setdefault(g, GroupState())
        st.mode = f.get("mode")
        if st.mode == "pull":
            if st.last < f.get("head", 0):
                self._start_pull(g)
        elif st.mode == "push":
            self._spawn(self.resume(g, wait=False))

    def _on_hint(self, f):
        g = f.get("g")
        st = self.groups.setdefault(g, GroupState())
        st.head_hint = max(st.head_hint, f.get("head", 0))
        if st.last < f.get("head", 0):
            self._start_pull(g)

    def _on_ack(self, f, entry):
        cid = f.get("cid")
        p = self.sends.get(cid)
        if p is None:
            self.violations.append(f"ack for unknown cid: {f}")
            return
        if p.ack is not None and (f.get("id"), f.get("ep")) != (p.ack.get("id"), p.ack.get("ep")):
            self.violations.append(f"cid {cid} acked as {f.get('id')} and {p.ack.get('id')}")
        if p.ack is not None and not f.get("dup"):
            self.violations.append(f"cid {cid} acked twice without dup: {f}")
        if f.get("g") != p.g:
            self.violations.append(f"ack for cid {cid} names group {f.get('g')}, sent to {p.g}")
        p.acks.append(f)
        if p.ack is None:
            p.ack = f
            if self.on_ack is not None:
                self.on_ack(self, p)
        if p.future is not None and not p.future.done():
            p.future.set_result(f)

    def _on_error(self, f, entry):
        if entry is not None and entry[0] == "send":
            p = self.sends.get(entry[1])
            if p is not None:
                p.errors.append(f)
                if f.get("code") in self.retry_codes:
                    p.retry = True
                else:
                    p.failed = True
                if p.future is not None and not p.future.done():
                    p.future.set_result(f)

    def _spawn(self, coro):
        task = asyncio.ensure_future(coro)
        task.add_done_callback(self._task_done)

    def _task_done(self, task):
        if task.cancelled():
            return
        e = task.exception()
        if e is not None and not isinstance(e, websockets.ConnectionClosed):
            self.violations.append(f"background request failed: {e!r}")

    # -- frames out

    async def send_frame(self, frame):
        await self.ws.send(json.dumps(frame) if not isinstance(frame, (str, bytes)) else frame)

    async def request(self, frame, timeout=10.0):
        """Sends a frame with a fresh rid and waits for the answer carrying it."""
        rid = next(self._rid)
        frame = dict(frame, rid=rid)
        fut = asyncio.get_running_loop().create_future()
        self._rids[rid] = ("req", fut)
        await self.send_frame(frame)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.name}: no answer within {timeout}s to {str(frame)[:200]}")

    async def resume(self, g, wait=True, timeout=10.0):
        st = self.groups.setdefault(g, GroupState())
        st.resumed = False
        frame = {"t": "resume", "g": g, "after": st.last, "epoch": st.epoch}
        if not wait:
            rid = next(self._rid)
            self._rids[rid] = ("bg", "resume")
            await self.send_frame(dict(frame, rid=rid))
            return None
        return await self.request(frame, timeout)

    async def pull(self, g, limit=100, wait=True, timeout=10.0):
        st = self.groups.setdefault(g, GroupState())
        frame = {"t": "pull", "g": g, "after": st.last, "limit": limit, "epoch": st.epoch}
        if not wait:
            rid = next(self._rid)
            self._rids[rid] = ("bg", "pull")
            await self.send_frame(dict(frame, rid=rid))
            return None
        return await self.request(frame, timeout)

    def new_cid(self):
        return f"{self.name}-{self._cid_prefix}-{next(self._cid_seq)}"

    async def send(self, g, c, cid=None):
        """Sends a message; returns a future for its ack or error (resends keep it)."""
        cid = self.new_cid() if cid is None else cid
        p = self.sends.get(cid)
        if p is None:
            p = Pending(g, c, cid)
            self.sends[cid] = p
        if p.future is None or p.future.done():
            p.future = asyncio.get_running_loop().create_future()
        await self._send_pending(p)
        return p.future

    async def _send_pending(self, p):
        p.retry = False
        rid = next(self._rid)
        self._rids[rid] = ("send", p.cid)
        p.sent += 1
        if p.future is None or p.future.done():
            p.future = asyncio.get_running_loop().create_future()
        await self.send_frame({"t": "send", "rid": rid, "g": p.g, "cid": p.cid, "c": p.c})

    def unacked(self):
        return [p for p in self.sends.values() if p.ack is None and not p.failed]

    def last(self, g):
        st = self.groups.get(g)
        return st.last if st else 0

    def events_of(self, t):
        return [e for e in self.events if e.get("t") == t]


async def drive(client, plan, window=4, timeout=60.0, reconnect=None, max_reconnects=5,
                retry_delay=0.0):
    """Sends `plan` (a list of (group, contents)) keeping at most `window` sends unacked,
    until every send is acknowledged. When the connection closes, awaits
    `reconnect(client)` (which connects again: that resumes and resends with the same
    cids) or, without one, returns. A send answered with one of the client's
    `retry_codes` (`unavailable`, `closed`) is resent with the same cid, after
    `retry_delay` seconds (a backoff while the store is down).
    Fails after `timeout` seconds."""
    end = time.monotonic() + timeout
    idx = 0
    reconnects = 0
    for _ in range(1000000):
        if idx >= len(plan) and not client.unacked():
            return
        if time.monotonic() > end:
            raise AssertionError(f"{client.name}: sends not all acknowledged after {timeout}s "
                                 f"({idx}/{len(plan)} sent, {len(client.unacked())} unacked)")
        if not client.open:
            if reconnect is None:
                return
            reconnects += 1
            if reconnects > max_reconnects:
                raise AssertionError(f"{client.name}: more than {max_reconnects} reconnects")
            await reconnect(client)
            continue
        try:
            if retry_delay > 0 and any(p.retry for p in client.unacked()):
                await asyncio.sleep(retry_delay)
                if not client.open:
                    continue
            for p in client.unacked():
                if p.retry:
                    await client._send_pending(p)
            while idx < len(plan) and len(client.unacked()) < window:
                g, c = plan[idx]
                idx += 1
                await client.send(g, c)
        except websockets.ConnectionClosed:
            continue
        n = len(client.unacked())
        with contextlib.suppress(AssertionError):
            await client.wait_for(lambda: len(client.unacked()) < n or not client.open or
                                  any(p.retry for p in client.unacked()), 1.0)
    raise AssertionError("drive: loop bound reached")


async def wait_heads(clients_groups, heads, timeout):
    """Waits until every (client, group) holds the group's head."""
    deadline = time.monotonic() + timeout
    for cl, g in clients_groups:
        left = max(0.1, deadline - time.monotonic())
        await cl.wait_for(lambda: cl.last(g) >= heads[g], left,
                          f"{g} up to {heads[g]} (holds {cl.last(g)})")


async def connect_client(server, user, token=None, name=None):
    token = token or await asyncio.to_thread(login, server, user)
    c = Client(user, token, name)
    await c.connect(server)
    return c


def check_client(testcase, client, group, expected):
    """`expected`: id -> (sender, contents, cid) of the whole group. The client must hold
    exactly those, in order, once, with matching contents."""
    testcase.assertEqual(client.violations, [], f"{client.name}: delivery rules broken")
    st = client.groups.get(group)
    testcase.assertIsNotNone(st, f"{client.name} never followed {group}")
    testcase.assertEqual(sorted(st.msgs), list(range(1, len(expected) + 1)),
                         f"{client.name}/{group}: ids held")
    for i, (u, c, cid) in expected.items():
        m = st.msgs[i]
        testcase.assertEqual((m.get("u"), m.get("c"), m.get("cid")), (u, c, cid),
                             f"{client.name}/{group}#{i}")


def expected_from_acks(testcase, clients, group):
    """id -> (sender, contents, cid) from every client's acks for `group`; two sends
    acknowledged with one id is a failure."""
    out = {}
    for cl in clients:
        for p in cl.sends.values():
            if p.g != group or p.ack is None:
                continue
            i = p.ack["id"]
            prev = out.setdefault(i, (cl.user, p.c, p.cid))
            testcase.assertEqual(prev, (cl.user, p.c, p.cid), f"{group}: id {i} acked to two sends")
    return out


class AckCounter:
    """Counts the first acks of `clients` (it becomes their on_ack) and waits for a
    count; `then(client, pending)`, if given, is called on each."""

    def __init__(self, clients, then=None):
        self.count = 0
        self.then = then
        self._event = asyncio.Event()
        for c in clients:
            c.on_ack = self._on_ack

    def _on_ack(self, client, p):
        self.count += 1
        self._event.set()
        if self.then is not None:
            self.then(client, p)

    async def until(self, count, timeout, what):
        """Waits until `count` sends were acknowledged; fails after `timeout` s."""
        end = time.monotonic() + timeout
        while self.count < count:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what}: {self.count}/{count} acked after {timeout}s")
            self._event = asyncio.Event()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._event.wait(), min(left, 0.5))


def acked_heads(clients, groups):
    """Per group of `groups`, the highest id acknowledged to any of `clients` so far."""
    heads = {g: 0 for g in groups}
    for c in clients:
        for p in c.sends.values():
            if p.ack is not None:
                heads[p.g] = max(heads[p.g], p.ack["id"])
    return heads


def send_errors(clients):
    """Counter of the error answers to the sends of `clients`, by code name."""
    return collections.Counter(CODE_NAMES.get(e.get("code"), e.get("code"))
                               for c in clients for p in c.sends.values() for e in p.errors)


def check_acks(testcase, clients):
    """Every send of `clients` acknowledged, under one (id, epoch) however often it was
    sent; one sent once acknowledged once and not as a duplicate. Returns (sends
    resent, sends answered dup:true)."""
    failed = [(c.name, p.cid, p.errors[-1:]) for c in clients for p in c.sends.values() if p.failed]
    testcase.assertEqual(failed, [], "sends given up (an error not in the client's retry_codes)")
    resent = dups = 0
    for c in clients:
        for p in c.sends.values():
            testcase.assertIsNotNone(p.ack, f"{p.cid} never acknowledged")
            testcase.assertEqual(len({(a["id"], a["ep"]) for a in p.acks}), 1,
                                 f"{p.cid}: acks disagree {p.acks}")
            resent += p.sent > 1
            dups += any(a["dup"] for a in p.acks)
            if p.sent == 1:
                testcase.assertEqual(len(p.acks), 1, f"{p.cid} acked more than once")
                testcase.assertFalse(p.ack["dup"], f"first ack of {p.cid} says dup")
    return resent, dups


async def check_groups(testcase, clients, groups, tokens, nodes):
    """For each group ({group: member users}): every member's client (`clients`: user ->
    Client) holds exactly the acknowledged messages, and the HTTP history on each of
    `nodes` is exactly that set."""
    for g, members in groups.items():
        exp = expected_from_acks(testcase, [clients[u] for u in members], g)
        for u in members:
            check_client(testcase, clients[u], g, exp)
        for node in nodes:
            ans, msgs = await asyncio.to_thread(history, node, tokens[members[0]], g)
            check_log(testcase, g, msgs, ans.get("head"))
            testcase.assertEqual({m["id"]: (m["u"], m["c"], m["cid"]) for m in msgs}, exp,
                                 f"{g}: history on {node.name} is the acknowledged set")


# ---------------------------------------------------------------------------
# Raw WebSocket (blocking), for misbehaving clients


class RawWs:
    """A minimal RFC 6455 client over a plain socket."""

    def __init__(self, port, token=None, path="/v1/ws", key=True, rcvbuf=None, extra=b"",
                 timeout=10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((HOST, port))
        self.buf = b""
        q = f"?token={urllib.parse.quote(token)}" if token else ""
        lines = [f"GET {path}{q} HTTP/1.1", f"Host: {HOST}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Version: 13"]
        self.key = base64.b64encode(os.urandom(16)).decode()
        if key:
            lines.append(f"Sec-WebSocket-Key: {self.key}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n").encode() + extra + b"\r\n")
        self.status, self.headers, self.body = self._read_response()

    def _read_response(self):
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in self.buf:
            if time.monotonic() > deadline:
                raise AssertionError("no HTTP response to the upgrade")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed during the upgrade: {self.buf!r}")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode(errors="replace").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        body = b""
        if status != 101:
            n = int(headers.get("content-length", "0") or 0)
            while len(self.buf) < n and time.monotonic() < deadline:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
            body, self.buf = self.buf[:n], self.buf[n:]
        elif headers.get("sec-websocket-accept") != base64.b64encode(hashlib.sha1(
                (self.key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode():
            raise AssertionError(f"bad Sec-WebSocket-Accept: {headers}")
        return status, headers, body

    def send_frame(self, opcode, payload, fin=True):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload)) if n < 4096 else \
            _xor_mask(payload, mask)
        self.sock.sendall(head + mask + masked)

    def send_text(self, s):
        self.send_frame(0x1, s.encode() if isinstance(s, str) else s)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("frame read deadline")
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def recv_frame(self, timeout=10.0):
        """(opcode, payload) of the next frame; raises EOFError at EOF, socket.timeout."""
        deadline = time.monotonic() + timeout
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._need(4, deadline)
            n = struct.unpack(">H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._need(10, deadline)
            n = struct.unpack(">Q", self.buf[2:10])[0]
            off = 10
        if b1 & 0x80:
            raise AssertionError("server frame is masked")
        self._need(off + n, deadline)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0F, payload

    def recv_json(self, timeout=10.0, skip=("presence",)):
        """The next text frame as JSON, skipping the types in `skip`; None on a close frame."""
        deadline = time.monotonic() + timeout
        for _ in range(10000):
            op, payload = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if op == 0x8:
                self.close_frame = payload
                return None
            if op == 0x1:
                f = json.loads(payload)
                if f.get("t") not in skip:
                    return f
        raise AssertionError("too many frames")

    def read_until_close(self, timeout=10.0, max_frames=1000000):
        """Reads frames until a close frame or EOF. Returns (frames, close code or None, eof)."""
        deadline = time.monotonic() + timeout
        frames = []
        for _ in range(max_frames):
            try:
                op, payload = self.recv_frame(max(0.01, deadline - time.monotonic()))
            except (EOFError, ConnectionResetError):
                return frames, None, True
            if op == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                return frames, code, False
            if op == 0x1:
                frames.append(json.loads(payload))
        raise AssertionError("too many frames")

    def reset(self):
        """Drops the connection with a TCP reset: no close frame, no FIN."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()


def _xor_mask(payload, mask):
    n = len(payload)
    m = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ m).to_bytes(n, "big")


def raw_http(port, data, timeout=5.0):
    """Sends raw bytes and returns what comes back until EOF or timeout (b'' if nothing)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        with contextlib.suppress(OSError):
            s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        for _ in range(10000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out and _complete(out):
                break
        return out


def _complete(resp):
    head, _, body = resp.partition(b"\r\n\r\n")
    for ln in head.split(b"\r\n")[1:]:
        k, _, v = ln.partition(b":")
        if k.strip().lower() == b"content-length":
            return len(body) >= int(v.strip() or 0)
    return True


def status_of(resp):
    """HTTP status code of a raw response, or None."""
    if not resp.startswith(b"HTTP/"):
        return None
    parts = resp.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


# ---------------------------------------------------------------------------
# Webhook receiver


class WebhookReceiver:
    """Collects JSON POSTs on http://127.0.0.1:PORT/hook."""

    def __init__(self):
        self.posts = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(n)
                try:
                    obj = json.loads(body)
                except ValueError:
                    obj = {"_unparsable": body.decode(errors="replace")}
                with receiver.cond:
                    receiver.posts.append((self.path, dict(self.headers), obj))
                    receiver.cond.notify_all()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{HOST}:{self.port}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def bodies(self):
        with self.cond:
            return [b for _, _, b in self.posts]

    def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred([b for _, _, b in self.posts]):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.5))
            return True

    async def await_for(self, pred, timeout):
        return await asyncio.to_thread(self.wait_for, pred, timeout)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------------------
# Redis


def redis_ping(port, host=HOST, timeout=1.0):
    """The first reply line to PING ('+PONG', '-LOADING ...'), or None if none came."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
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
    """A redis-server process on `host`:`port`, appendonly with fsync per write, its
    files under `workdir`; can be killed and started again on the same port and dir."""

    def __init__(self, workdir, port, host=HOST):
        self.workdir = workdir
        self.port = port
        self.host = host
        self.proc = None
        self.log_path = os.path.join(workdir, "redis.log")
        self.starts = 0

    @property
    def url(self):
        return f"redis://{self.host}:{self.port}"

    def start(self, deadline=10.0):
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server is not installed (apt-get install redis-server): "
                                 "this test needs it")
        self.starts += 1
        self.proc = subprocess.Popen(
            [binary, "--bind", self.host, "--port", str(self.port), "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", self.workdir, "--logfile", self.log_path,
             "--daemonize", "no", "--protected-mode", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + deadline
        answer = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}\n{self.log_tail()}")
            answer = redis_ping(self.port, self.host, timeout=0.5)
            if answer == "+PONG":
                return self
            time.sleep(0.05)
        raise AssertionError(f"redis-server on {self.host}:{self.port}: no PONG within {deadline}s "
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
# TCP proxy


def reset_stream(writer):
    """Closes an asyncio stream with a TCP reset (no FIN)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class TcpProxy:
    """Forwards `host`:`port` (0: a free port, then read from .port) to `target` (host,
    port), on its own thread and event loop (so it keeps forwarding whatever the test's
    loop does).

    `cut()` resets every open connection and resets new ones as soon as they are
    accepted; `heal()` ends that. With `delay_ms` (lo, hi), every chunk read is written
    on after a delay drawn per chunk from that range (ms), never before the chunk ahead
    of it: order kept. `stats()` counts connections, chunks and the delay applied."""

    def __init__(self, target, name, host=HOST, port=0, delay_ms=None, seed=1):
        self.target = tuple(target)
        self.name = name
        self.host = host
        self.delay_ms = delay_ms
        self.rng = random.Random(seed)
        self.cut_now = False
        self.pairs = set()
        self.accepted = 0
        self.refused = 0            # reset because the proxy was cut
        self.failed_connects = 0    # the target did not take the connection
        self.chunks = 0
        self.bytes = 0
        self.delay_sum = 0.0
        self.delay_max = 0.0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"proxy-{name}", daemon=True)
        self.thread.start()
        self.server = None
        self.port = self._call(self._start(port))

    def _call(self, coro, timeout=10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self, port):
        self.server = await asyncio.start_server(self._handle, self.host, port)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader, writer):
        if self.cut_now:
            self.refused += 1
            reset_stream(writer)
            return
        try:
            up_r, up_w = await asyncio.wait_for(asyncio.open_connection(*self.target), 5)
        except (OSError, asyncio.TimeoutError):
            self.failed_connects += 1
            reset_stream(writer)
            return
        if self.cut_now:
            self.refused += 1
            reset_stream(writer)
            reset_stream(up_w)
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

    def _count(self, n, delay):
        self.chunks += 1
        self.bytes += n
        self.delay_sum += delay
        self.delay_max = max(self.delay_max, delay)

    async def _pipe(self, reader, writer):
        """Copies `reader` to `writer` until EOF or an error (after everything read
        before it was written)."""
        if self.delay_ms is None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                for _ in range(100000000):
                    data = await reader.read(65536)
                    if not data:
                        return
                    writer.write(data)
                    await writer.drain()
                    self._count(len(data), 0.0)
            return
        # Delayed: read on while the chunks ahead wait for their time.
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
                self._count(len(data), due - t_in)
        except OSError:
            return
        finally:
            pumping.cancel()

    async def _cut(self):
        self.cut_now = True
        n = len(self.pairs)
        for a, b in list(self.pairs):
            reset_stream(a)
            reset_stream(b)
        return n

    async def _heal(self):
        self.cut_now = False

    def cut(self):
        """Returns how many open connections were reset."""
        return self._call(self._cut())

    def heal(self):
        self._call(self._heal())

    def stats(self):
        return {"connections": self.accepted, "refused": self.refused,
                "failed_connects": self.failed_connects, "chunks": self.chunks, "bytes": self.bytes,
                "delay_sum": self.delay_sum, "delay_max": self.delay_max}

    def close(self):
        async def shut():
            await self._cut()
            self.server.close()
        with contextlib.suppress(Exception):
            self._call(shut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# ---------------------------------------------------------------------------
# Clusters


def overlapping_groups(n_users, group_size, overlap=1):
    """Users "user00".. (at least two digits) in n_users // group_size groups "room-k" of
    group_size users each; the first `overlap` users of each group are also members of
    the next group (the last group's of the first). Returns (users, groups)."""
    width = max(2, len(str(n_users)))
    users = [f"user{i:0{width}d}" for i in range(n_users)]
    n_groups = n_users // group_size
    groups = {f"room-{k}": users[k * group_size:(k + 1) * group_size] for k in range(n_groups)}
    for k in range(n_groups):
        groups[f"room-{(k + 1) % n_groups}"] += users[k * group_size:k * group_size + overlap]
    return users, groups


def cluster_args(n, tmp, secret="e2e-secret", cluster_secret="e2e-cluster", extra=()):
    """Command-line flags for `n` nodes sharing one SQLite file, each naming the others."""
    peer_ports = [free_port() for _ in range(n)]
    db = os.path.join(tmp, "shared.db")
    out = []
    for i in range(n):
        args = ["--node-id", f"node-{i + 1}", "--dev", "--db", db,
                "--data-dir", os.path.join(tmp, f"node-{i + 1}"),
                "--secret", secret, "--cluster-secret", cluster_secret,
                "--peer-listen", f"{HOST}:{peer_ports[i]}"]
        for j in range(n):
            if j != i:
                args += ["--peer", f"node-{j + 1}={HOST}:{peer_ports[j]}"]
        os.makedirs(os.path.join(tmp, f"node-{i + 1}"), exist_ok=True)
        out.append(args + list(extra))
    return out, peer_ports


def single_args(tmp, name="node-1", extra=(), secret="e2e-secret"):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    return ["--node-id", name, "--dev", "--db", os.path.join(tmp, f"{name}.db"), "--data-dir", d,
            "--secret", secret, *extra]


async def gather_bounded(aws, timeout, what):
    try:
        return await asyncio.wait_for(asyncio.gather(*aws), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out after {timeout}s: {what}")
