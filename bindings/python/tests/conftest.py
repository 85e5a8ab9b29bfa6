"""Shared setup of the Python binding tests (run with Debian's python3:
/usr/bin/python3 -m pytest -q bindings/python/tests).

The library is PARLEY_LIBRARY (set by ctest); when unset, the first
libparley_c.so found in the repository's build directories. The server
binary, for the bot example, is PARLEY_SERVER, else build/examples/server.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Optional

import pytest

HERE = Path(__file__).resolve().parent
BINDING = HERE.parent  # bindings/python
REPO = BINDING.parent.parent
sys.path.insert(0, str(BINDING))

if not os.environ.get("PARLEY_LIBRARY"):
    for build in ("build", "build-capi"):
        candidate = REPO / build / "capi" / "libparley_c.so"
        if candidate.exists():
            os.environ["PARLEY_LIBRARY"] = str(candidate)
            break


def server_binary() -> Optional[Path]:
    path = Path(os.environ.get("PARLEY_SERVER") or REPO / "build" / "examples" / "server" / "parley-server")
    return path if path.exists() else None


def child_env() -> dict:
    """The environment for a Python child process: finds this package and the library."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BINDING), env.get("PYTHONPATH", "")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ServerProcess:
    """parley-server started on 127.0.0.1:0 with --dev and a temporary data dir."""

    def __init__(self, binary: Path, data_dir: str) -> None:
        self.proc = subprocess.Popen(
            [str(binary), "--dev", "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--log-level", "warn"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until it listens (or dies: "")
        match = re.search(r"listening on (http://127\.0\.0\.1:(\d+)/)", line)
        if not match:
            self.stop()
            raise RuntimeError(f"parley-server did not start: {line!r}")
        self.url, self.port = match.group(1), int(match.group(2))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server_process() -> Iterator[ServerProcess]:
    binary = server_binary()
    if binary is None:
        pytest.skip("no parley-server binary (set PARLEY_SERVER)")
    with tempfile.TemporaryDirectory(prefix="parley-py-") as data_dir:
        server = ServerProcess(binary, data_dir)
        try:
            yield server
        finally:
            server.stop()
