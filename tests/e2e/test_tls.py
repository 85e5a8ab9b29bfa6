"""TLS: HTTPS and WSS on --listen, and peer links over TLS with certificates on both
sides, all with certificates this test makes in its temp dir (the openssl command):
a test CA, a node certificate for 127.0.0.1/localhost signed by it, and a second CA
with a "rogue" certificate that a cluster must refuse."""

import asyncio
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

try:
    import websockets
except ImportError:
    import sys
    sys.path.append("/usr/lib/python3/dist-packages")
    import websockets  # noqa: E402

from harness import (HOST, ServerTestCase, Client, RawWs, single_args, cluster_args, server_binary, login,
                     create_group, join_group, drive, history, check_log, check_client, expected_from_acks,
                     http_request, raw_http, status_of)

# ---------------------------------------------------------------------------
# Certificates


def openssl(cwd, *args):
    if not shutil.which("openssl"):
        raise AssertionError("this test makes its certificates with the openssl command "
                             "(apt-get install openssl)")
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)}: {r.stderr.decode(errors='replace')}")


def make_ca(d, name):
    """A self-signed CA (P-256, 2 days): d/NAME.pem and d/NAME.key."""
    openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN=Parley test {name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return os.path.join(d, f"{name}.pem")


def make_cert(d, name, ca):
    """A certificate for 127.0.0.1 and localhost (server and client use) signed by CA `ca`.
    Returns (cert, key) paths."""
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth,clientAuth\n"
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid\n")
    openssl(d, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
    openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    return os.path.join(d, f"{name}.pem"), os.path.join(d, f"{name}.key")


# ---------------------------------------------------------------------------
# Helpers


def metric(server, name):
    """The value of an unlabelled metric from GET /metrics."""
    r = http_request(server, "GET", "/metrics")
    assert r.status == 200, r
    for line in r.body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{server.name}: no metric {name}")


def tls_session(port, context):
    """(protocol version, cipher, compression) of a TLS connection to `port`."""
    with socket.create_connection((HOST, port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=HOST) as t:
            return t.version(), t.cipher()[0], t.compression()


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


EMPTY_BATCH = bytes([0x93, 0x01, 0xa5]) + b"nodeX" + bytes([0x90])   # msgpack [1, "nodeX", []]


class TlsTest(ServerTestCase):

    def setUp(self):
        super().setUp()
        self.pki = os.path.join(self.tmp, "pki")
        os.makedirs(self.pki)
        self.ca = make_ca(self.pki, "ca")
        self.cert, self.key = make_cert(self.pki, "node", "ca")
        make_ca(self.pki, "other-ca")
        self.rogue_cert, self.rogue_key = make_cert(self.pki, "rogue", "other-ca")

    def tls_args(self):
        return ["--tls-cert", self.cert, "--tls-key", self.key]

    def peer_tls_args(self, cert=None, key=None):
        return ["--peer-tls-cert", cert or self.cert, "--peer-tls-key", key or self.key, "--peer-tls-ca", self.ca]

    def peer_context(self, cert=None, key=None):
        """A TLS context for calling a peer listener as a node would (client certificate)."""
        ctx = ssl.create_default_context(cafile=self.ca)
        if cert:
            ctx.load_cert_chain(cert, key)
        return ctx

    async def test_1_https_and_wss_with_the_test_ca(self):
        s = self.start_server("node-1", single_args(self.tmp, extra=self.tls_args()), tls_ca=self.ca)
        self.assertEqual(s.scheme, "https", f"listening line: {s.stdout_lines}")
        tokens = {u: login(s, u) for u in ("alice", "bob")}
        create_group(s, tokens["alice"], "secure")
        join_group(s, tokens["bob"], "secure")
        r = http_request(s, "GET", "/v1/groups", token=tokens["bob"])
        self.assertEqual((r.status, r.json), (200, {"groups": [{"group": "secure", "role": "member", "epoch": 0,
                                                                 "read": 0, "head": 0, "unread": 0,
                                                                 "mentions": 0, "notify": "all"}]}), r)
        r = http_request(s, "GET", "/")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("text/html"), r.headers)

        # Without the test CA the certificate is refused, over HTTPS and WSS alike.
        with self.assertRaises(ssl.SSLCertVerificationError):
            http_request(s, "GET", "/healthz", context=ssl.create_default_context())
        with self.assertRaises(ssl.SSLCertVerificationError):
            await websockets.connect(s.ws_url(tokens["bob"]), ssl=ssl.create_default_context(), open_timeout=5)

        # Chat over WSS.
        alice = Client("alice", tokens["alice"])
        bob = Client("bob", tokens["bob"])
        await alice.connect(s)
        await bob.connect(s)
        await alice.resume("secure")
        await bob.resume("secure")
        await drive(alice, [("secure", f"over TLS {i} ✓") for i in range(5)], window=5, timeout=10)
        await bob.wait_for(lambda: bob.last("secure") == 5, 10, "bob holds the 5 messages")
        check_client(self, bob, "secure", expected_from_acks(self, [alice], "secure"))
        ans, msgs = await asyncio.to_thread(history, s, tokens["bob"], "secure")
        check_log(self, "secure", msgs, ans.get("head"))
        self.assertEqual([m["c"] for m in msgs], [f"over TLS {i} ✓" for i in range(5)])

        # What is negotiated: TLS 1.3 by default, no compression; a TLS 1.2 client gets an
        # ECDHE suite with an AEAD cipher; TLS 1.1 is refused.
        version, cipher, compression = tls_session(s.port, s.client_ssl())
        self.assertEqual((version, compression), ("TLSv1.3", None), cipher)
        tls12 = s.client_ssl()
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        version, cipher, _ = tls_session(s.port, tls12)
        self.assertEqual(version, "TLSv1.2")
        self.assertTrue(cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher)
        old = s.client_ssl()
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        with self.assertRaises(ssl.SSLError) as refused:
            tls_session(s.port, old)
        self.assertIn("PROTOCOL_VERSION", str(refused.exception).upper(), refused.exception)
        print(f"\n  tls: TLS 1.2 suite {cipher}; TLS 1.1 refused: {refused.exception}", flush=True)

        # A closed WSS session ends at once (not after websocketpp's 5 s TLS shutdown wait).
        await alice.close()
        await asyncio.to_thread(wait_until, lambda: metric(s, "parley_connections") == 1, 2,
                                "alice's session to end")
        # SIGTERM: bob's session is closed with 1001 and the server exits 0.
        t0 = time.monotonic()
        s.send_signal(signal.SIGTERM)
        await bob.wait_closed(5)
        self.assertEqual(bob.close_code, 1001)
        self.assertEqual(await asyncio.to_thread(s.wait, 10), 0, s.log_tail())
        self.assertLess(time.monotonic() - t0, 3.0, "SIGTERM to exit with a WSS session open")

    async def test_2_plain_http_on_the_tls_port_is_refused(self):
        s = self.start_server("node-1", single_args(self.tmp, extra=self.tls_args()), tls_ca=self.ca)
        token = login(s, "alice")
        t0 = time.monotonic()
        out = await asyncio.to_thread(raw_http, s.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 8.0)
        took = time.monotonic() - t0
        self.assertIsNone(status_of(out), f"plain HTTP got an HTTP answer: {out[:200]!r}")
        self.assertLess(took, 6.0, "the connection is closed, not left open")
        with self.assertRaises((AssertionError, ConnectionError, socket.timeout)):
            RawWs(s.port, token, timeout=5)
        # Garbage and half handshakes, then a real client: the server is unharmed.
        for junk in (b"\x16\x03\x01\x00\x05hello", b"\x00" * 64, os.urandom(300)):
            await asyncio.to_thread(raw_http, s.port, junk, 3.0)
        self.assert_healthy(s, "after plain HTTP and garbage on the TLS port")
        c = Client("alice", token)
        await c.connect(s)
        self.assertEqual(c.hello["u"], "alice")
        await c.close()

    async def test_3_bad_files_are_startup_errors(self):
        garbage = os.path.join(self.pki, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("this is not a certificate\n")
        missing = os.path.join(self.pki, "missing.pem")
        cases = [
            ("missing certificate", ["--tls-cert", missing, "--tls-key", self.key], 1,
             ["--tls-cert", missing, "No such file or directory"]),
            ("certificate not PEM", ["--tls-cert", garbage, "--tls-key", self.key], 1,
             ["--tls-cert", garbage, "no start line"]),
            ("key of another certificate", ["--tls-cert", self.cert, "--tls-key", self.rogue_key], 1,
             ["--tls-key", self.rogue_key, "key values mismatch"]),
            ("key not PEM", ["--tls-cert", self.cert, "--tls-key", garbage], 1, ["--tls-key", garbage]),
            ("certificate without key", ["--tls-cert", self.cert], 2, ["--tls-cert and --tls-key"]),
            ("peer CA not PEM", self.peer_tls_args()[:4] + ["--peer-tls-ca", garbage], 1,
             ["--peer-tls-ca", garbage]),
            ("peer key missing", ["--peer-tls-cert", self.cert, "--peer-tls-key", missing,
                                  "--peer-tls-ca", self.ca], 1, ["--peer-tls-key", missing]),
            ("peer TLS without CA", self.peer_tls_args()[:4], 2, ["--peer-tls-ca"]),
        ]
        for what, extra, code, needles in cases:
            with self.subTest(what):
                r = await asyncio.to_thread(
                    subprocess.run, [server_binary(), "--listen", f"{HOST}:0",
                                     *single_args(self.tmp, "bad", extra=extra)],
                    capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
                err = r.stderr.decode(errors="replace")
                self.assertEqual(r.returncode, code, f"{what}: {err}")
                self.assertNotIn(b"listening on", r.stdout)
                for n in needles:
                    self.assertIn(n, err, what)

    async def test_4_cluster_over_tls_peer_links(self):
        argsets, peer_ports = cluster_args(2, self.tmp)
        nodes = [self.start_server(f"node-{i + 1}", a + self.tls_args() + self.peer_tls_args(), tls_ca=self.ca)
                 for i, a in enumerate(argsets)]
        alice_token, bob_token = login(nodes[0], "alice"), login(nodes[1], "bob")
        create_group(nodes[0], alice_token, "bridge")
        join_group(nodes[1], bob_token, "bridge")
        alice, bob = Client("alice", alice_token), Client("bob", bob_token)
        await alice.connect(nodes[0])
        await bob.connect(nodes[1])
        # A session counts for routing once the directory has recorded it, which
        # its first answered request proves (docs/decisions.md 44): bob's node is
        # in node-1's route when alice's resume computes it.
        await bob.resume("bridge")
        await alice.resume("bridge")
        t0 = time.monotonic()
        await drive(alice, [("bridge", f"alice {i}") for i in range(5)], window=5, timeout=10)
        await bob.wait_for(lambda: bob.last("bridge") == 5, 10, "bob (node-2) holds alice's 5 messages")
        t_across = time.monotonic() - t0
        await drive(bob, [("bridge", f"bob {i}") for i in range(5)], window=5, timeout=10)
        await alice.wait_for(lambda: alice.last("bridge") == 10, 10, "alice (node-1) holds bob's 5 messages")
        exp = expected_from_acks(self, [alice, bob], "bridge")
        check_client(self, alice, "bridge", exp)
        check_client(self, bob, "bridge", exp)
        # They came over the peer links, not from the shared store's head sync.
        for n in nodes:
            self.assertGreaterEqual(metric(n, "parley_peer_messages_in_total"), 5, n.name)
            self.assertEqual(metric(n, "parley_peer_items_dropped_total"), 0, n.name)

        # The peer listener speaks HTTPS only, and only to a caller whose certificate
        # chains to --peer-tls-ca; the cluster secret is still checked after that.
        auth = {"Authorization": "Bearer e2e-cluster", "Content-Type": "application/msgpack"}
        p = peer_ports[0]
        r = http_request(None, "POST", "/v1/peer/batch", EMPTY_BATCH, None, auth, 5.0, p,
                         context=self.peer_context(self.cert, self.key))
        self.assertEqual(r.status, 204, r)
        r = http_request(None, "POST", "/v1/peer/batch", EMPTY_BATCH, None, dict(auth, Authorization="Bearer x"),
                         5.0, p, context=self.peer_context(self.cert, self.key))
        self.assertEqual(r.status, 403, r)
        for what, ctx in (("no client certificate", self.peer_context()),
                          ("a certificate from another CA", self.peer_context(self.rogue_cert, self.rogue_key))):
            with self.subTest(what):
                with self.assertRaises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
                    http_request(None, "POST", "/v1/peer/batch", EMPTY_BATCH, None, auth, 5.0, p, context=ctx)
        self.assertIsNone(status_of(await asyncio.to_thread(
            raw_http, p, b"POST /v1/peer/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 5.0)))
        print(f"\n  tls: 2 nodes, peer links over TLS; 5 messages across in {t_across:.2f}s", flush=True)
        await alice.close()
        await bob.close()
        for n in nodes:
            self.assert_healthy(n)

    async def test_5_a_peer_with_a_certificate_from_another_ca_is_refused(self):
        argsets, _ = cluster_args(2, self.tmp)
        n1 = self.start_server("node-1", argsets[0] + self.peer_tls_args())
        n2 = self.start_server("node-2", argsets[1] + self.peer_tls_args(self.rogue_cert, self.rogue_key))
        alice_token, bob_token = login(n1, "alice"), login(n2, "bob")
        create_group(n1, alice_token, "bridge")
        join_group(n2, bob_token, "bridge")
        alice, bob = Client("alice", alice_token), Client("bob", bob_token)
        await alice.connect(n1)
        await bob.connect(n2)
        await alice.resume("bridge")
        await bob.resume("bridge")
        # Each node forwards once its cached route knows the other's member
        # (the directory records a session just after it opens; a route lives
        # route_ttl_ms): each side sends until its node has tried, bounded.
        sent = 0
        for client, node, text in ((alice, n1, "from node-1"), (bob, n2, "from node-2")):
            deadline = time.monotonic() + 10
            while metric(node, "parley_peer_batches_out_total") < 1 and time.monotonic() < deadline:
                await drive(client, [("bridge", f"{text} #{sent}")], window=1, timeout=10)  # paced by its ack
                sent += 1
            self.assertGreaterEqual(metric(node, "parley_peer_batches_out_total"), 1, f"{node.name} never forwarded")
        # Each node gives up on its batch after its retries: node-1 refuses node-2's
        # server certificate; node-1's listener refuses node-2's client certificate.
        for n in (n1, n2):
            await asyncio.to_thread(wait_until, lambda: metric(n, "parley_peer_items_dropped_total") >= 1, 15,
                                    f"{n.name} to drop its peer batch")
        for n in (n1, n2):
            self.assertEqual(metric(n, "parley_peer_batches_in_total"), 0, f"{n.name} took a peer batch")
        with open(n1.log_path, encoding="utf-8", errors="replace") as f:
            log1 = f.read()
        self.assertIn("failed: server certificate refused (unable to get local issuer certificate)", log1)
        self.assertIn("refused a client certificate (/CN=rogue): unable to get local issuer certificate", log1)
        # Nothing was pushed across, but both nodes are up and heal from the shared store.
        await alice.wait_for(lambda: alice.last("bridge") == sent, 10, "alice gets bob's messages by head sync")
        await bob.wait_for(lambda: bob.last("bridge") == sent, 10, "bob gets alice's messages by head sync")
        await alice.close()
        await bob.close()
        for n in (n1, n2):
            self.assert_healthy(n)


if __name__ == "__main__":
    import unittest
    unittest.main()
