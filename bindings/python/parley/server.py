"""The bundled chat server (parley-server: WebSocket chat, HTTP web service,
web client) running in this process on a thread of its own.

Options are parley-server's command-line options without the dashes, as
keyword arguments with '_' for '-' (`data_dir="./d"` is --data-dir=./d):
True is a flag without value (`dev=True`), False and None leave an option
out, a list or tuple repeats it (`peer=["n2=127.0.0.1:9002"]`), anything
else is passed as str(). `parley-server --help` and docs/server.md list them.

Threads: the server serves on its own thread; the Server object is used from
one thread at a time. It installs no signal handlers.
"""

from __future__ import annotations

import ctypes
from typing import Any, List, Mapping, Optional, Tuple

from . import _lib


def _option_args(options: Mapping[str, Any]) -> List[Tuple[bytes, Optional[bytes]]]:
    """(name, value) pairs for parley_server_options_set; value None: a flag."""
    out: List[Tuple[bytes, Optional[bytes]]] = []
    for key, value in options.items():
        name = _lib.cstr(key.replace("_", "-"), "option name")
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v is None or v is False:
                continue
            out.append((name, None if v is True else _lib.cstr(str(v), f"option {key}")))
    return out


class Server(_lib.Closeable):
    """parley-server in-process. Starting returns once it listens::

        with parley.Server(listen="127.0.0.1:0", dev=True, store="memory", data_dir=tmp) as server:
            print(server.url)   # http://127.0.0.1:PORT/

    Raises InvalidArgument for an unknown option or a bad value (the server's
    parser prints why on stderr), Unavailable if it could not start.
    """

    def __init__(self, options: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        self._handle: Optional[int] = None
        self._stopped = False
        merged = {**(options or {}), **kwargs}
        self._listen = str(merged.get("listen", "127.0.0.1:8080"))
        lib = _lib.lib()
        out = ctypes.c_void_p()
        _lib.check(lib.parley_server_options_create(ctypes.byref(out)))
        opts = out.value
        try:
            for name, value in _option_args(merged):
                _lib.check(lib.parley_server_options_set(opts, name, value), opts)
            server = ctypes.c_void_p()
            _lib.check(lib.parley_server_start(opts, ctypes.byref(server)))
            self._handle = server.value
        finally:
            lib.parley_server_options_destroy(opts)
        port = ctypes.c_uint16()
        _lib.check(lib.parley_server_port(self._handle, ctypes.byref(port)), self._handle)
        self._port = port.value

    @property
    def closed(self) -> bool:
        return self._handle is None

    def _live(self) -> int:
        if self._handle is None:
            raise _lib.closed("Server")
        return self._handle

    @property
    def port(self) -> int:
        """The bound HTTP/WebSocket port (the one picked for port 0)."""
        self._live()
        return self._port

    @property
    def host(self) -> str:
        """The host to connect to: the listen address's, 127.0.0.1 for a wildcard."""
        host = self._listen.rsplit(":", 1)[0].strip("[]")
        return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host

    @property
    def url(self) -> str:
        """http://HOST:PORT/ (the web client; the API is under /v1/)."""
        host = self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def stop(self) -> None:
        """Shuts the server down cleanly (commits, closes sessions; a few
        seconds at most) and joins its thread. Safe to call twice."""
        h = self._live()
        if self._stopped:
            return
        self._stopped = True
        _lib.check(_lib.lib().parley_server_stop(h), h)

    def close(self) -> None:
        """Stops the server if running and releases it. Safe to call twice."""
        h, self._handle = self._handle, None
        if h is not None:
            _lib.check(_lib.lib().parley_server_destroy(h), h)

    def __repr__(self) -> str:
        return f"<parley.Server {self.url if not self.closed else 'closed'}>"
