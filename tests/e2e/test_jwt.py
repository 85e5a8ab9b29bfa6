"""The app's own tokens through a real server (docs/server.md, "The app's own tokens";
decisions.md 57): started with --jwt-secret and --jwt-audience, it takes an HS256 JWT the
app signed (made here with hmac, as any backend would) on the HTTP routes and the WebSocket,
beside its own tokens; a JWT signed with another secret, for another audience, expired, with
the "none" algorithm, or naming no user is refused with 401 and its reason, and opens no
WebSocket; a live session whose JWT expires is told and closed."""

import asyncio
import base64
import hashlib
import hmac
import json
import time

import websockets

from harness import ServerTestCase, Client, single_args, login, http_request

SECRET = "app-shared-secret-" + "x" * 20


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims, secret=SECRET, alg="HS256"):
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    signing = f"{header}.{body}".encode()
    sig = b"" if alg == "none" else hmac.new(secret.encode(), signing, hashlib.sha256).digest()
    return f"{header}.{body}.{b64url(sig)}"


class JwtTest(ServerTestCase):

    async def test_the_apps_tokens_open_http_and_websocket(self):
        server = self.start_server("node-1", single_args(
            self.tmp, extra=["--jwt-secret", SECRET, "--jwt-audience", "chat", "--jwt-leeway", "0"]))
        now = int(time.time())
        good = jwt({"sub": "alice", "aud": "chat", "exp": now + 600, "iat": now})
        me = http_request(server, "GET", "/v1/me", token=good)
        self.assertEqual((me.status, me.json["user"], me.json["expires_at"]), (200, "alice", (now + 600) * 1000), me)
        self.assertEqual(http_request(server, "GET", "/v1/me", token=login(server, "bob")).status, 200,
                         "the server's own tokens still work")

        refused = {
            "another secret": (jwt({"sub": "alice", "aud": "chat", "exp": now + 600}, secret="y" * 40),
                               "bad token signature"),
            "another audience": (jwt({"sub": "alice", "aud": "billing", "exp": now + 600}),
                                 "the token is not for the audience 'chat'"),
            "expired": (jwt({"sub": "alice", "aud": "chat", "exp": now - 120}), "token expired"),
            "alg none": (jwt({"sub": "alice", "aud": "chat", "exp": now + 600}, alg="none"),
                         "the algorithm none is not accepted (HS256, RS256, ES256)"),
            "no user": (jwt({"aud": "chat", "exp": now + 600}), "the token has no 'sub' claim"),
        }
        for what, (token, why) in refused.items():
            r = http_request(server, "GET", "/v1/me", token=token)
            self.assertEqual((r.status, r.json["name"], r.json["msg"]), (401, "unauthenticated", why), what)
            with self.assertRaises(websockets.InvalidStatusCode, msg=what) as caught:
                await asyncio.wait_for(websockets.connect(server.ws_url(token), open_timeout=5), 10)
            self.assertEqual(caught.exception.status_code, 401, what)

        alice = Client("alice", good)
        hello = await alice.connect(server)
        self.assertEqual(hello["u"], "alice")
        r = http_request(server, "POST", "/v1/groups", {"group": "lobby"}, token=good)
        self.assertEqual(r.status, 201, r)
        self.assertEqual((await alice.resume("lobby"))["t"], "resumed")
        ack = await alice.request({"t": "send", "g": "lobby", "cid": "a1", "c": "hi"})
        self.assertEqual(ack["id"], 1, ack)

        # A session lives as long as its token (and the leeway, 0 here): one that expires in two
        # seconds is told, then closed.
        short = jwt({"sub": "carol", "aud": "chat", "exp": int(time.time()) + 2})
        carol = Client("carol", short)
        await carol.connect(server)
        await carol.wait_closed(15)
        told = [e for e in carol.events if e.get("t") == "error" and e.get("about") == "token_expired"]
        self.assertEqual([(e["name"], e["msg"]) for e in told], [("unauthenticated", "token expired")], carol.events)
        self.assertEqual(carol.close_code, 1008)
        self.assertTrue(alice.open, "alice's token has not expired")
        await self.finish((alice,), [server])


if __name__ == "__main__":
    import unittest
    unittest.main()
