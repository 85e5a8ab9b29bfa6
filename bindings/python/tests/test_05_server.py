"""5. The bundled server in-process: start on port 0, HTTP, stop, close."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

import pytest

import parley


def http(url: str, body: Optional[dict] = None, token: Optional[str] = None) -> Any:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_5_1_start_healthz_stop(tmp_path: Path) -> None:
    server = parley.Server(listen="127.0.0.1:0", dev=True, data_dir=tmp_path, log_level="warn")
    try:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}/"
        health = http(server.url + "healthz")
        assert health["status"] == "ok" and health["node"] == "node-1"
        token = http(server.url + "v1/login", {"user": "alice", "password": ""})["token"]
        http(server.url + "v1/groups", {"group": "general"}, token)
        assert http(server.url + "v1/groups", token=token)["groups"] == [
            {"group": "general", "role": "owner", "epoch": 0, "read": 0, "head": 0, "unread": 0, "mentions": 0,
             "notify": "all"}]
        server.stop()
        server.stop()  # a second stop does nothing
        with pytest.raises(urllib.error.URLError):
            http(server.url + "healthz")
    finally:
        server.close()
    server.close()  # safe twice
    with pytest.raises(parley.Closed):
        server.port
    with pytest.raises(parley.Closed):
        server.stop()


def test_5_2_options_and_context_manager(tmp_path: Path) -> None:
    options = {"listen": "127.0.0.1:0", "node-id": "py-1", "store": "memory", "log-level": "warn"}
    with parley.Server(options, dev=True, data_dir=str(tmp_path), secret="s" * 32, peer=[]) as server:
        assert http(server.url + "healthz")["node"] == "py-1"
        port = server.port
    assert server.closed
    # the port is free again: a new server can take it
    with parley.Server(listen=f"127.0.0.1:{port}", dev=True, store="memory", data_dir=tmp_path,
                       log_level="warn") as again:
        assert again.port == port


def test_5_3_bad_options(tmp_path: Path) -> None:
    with pytest.raises(parley.InvalidArgument):
        parley.Server(no_such_option="1", data_dir=tmp_path)
    with pytest.raises(parley.InvalidArgument):
        parley.Server(help=True)
    with pytest.raises(parley.InvalidArgument):
        parley.Server(store="nosql", listen="127.0.0.1:0", data_dir=tmp_path)


def test_5_4_a_server_that_cannot_listen(tmp_path: Path) -> None:
    with parley.Server(listen="127.0.0.1:0", dev=True, store="memory", data_dir=tmp_path,
                       log_level="error") as first:
        with pytest.raises(parley.Unavailable):
            parley.Server(listen=f"127.0.0.1:{first.port}", store="memory", data_dir=tmp_path,
                          log_level="error")
