"""The native layer: finds libparley_c, declares every function of
include/parley/parley.h for ctypes, and turns return codes into exceptions.

Nothing here is public API; the classes in node.py, store.py and server.py
are. The library is loaded on first use (`lib()`), so `import parley` works
without it and its absence is reported by the first call that needs it.

Finding the library, first match wins:
  1. the environment variable PARLEY_LIBRARY (a path; nothing else is tried);
  2. a libparley_c.so beside this package (a wheel or a copy may ship it);
  3. the system: ctypes.util.find_library("parley_c"), then the usual names
     (libparley_c.so.0, libparley_c.so) in the loader's paths and in
     /usr/local/lib, where `cmake --install` puts it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_double,
    c_int,
    c_int64,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, List, Optional, TypeVar, Union

from .errors import Closed, InvalidArgument, error_from_code

# The header this binding was written against (parley.h PARLEY_VERSION_*).
HEADER_VERSION_MAJOR = 0
HEADER_VERSION_MINOR = 1
HEADER_VERSION_PATCH = 0
HEADER_VERSION_NUMBER = HEADER_VERSION_MAJOR * 10000 + HEADER_VERSION_MINOR * 100 + HEADER_VERSION_PATCH

CODEC_MSGPACK = 0
CODEC_JSON = 1
FORWARD_ADAPTIVE = 0
FORWARD_FIXED = 1
SQLITE_SYNC_NORMAL = 1

_LIBRARY_NAMES = ("libparley_c.so", "libparley_c.so.0", "libparley_c.dylib", "parley_c.dll")
_SYSTEM_DIRS = ("/usr/local/lib", "/usr/local/lib64", "/usr/lib", "/usr/lib64")


class LibraryError(OSError):
    """libparley_c could not be found or loaded, or its version does not fit."""


# ---- structs and callback types (parley.h "types" and callbacks) ----------------


class Bytes(Structure):
    _fields_ = [("data", c_void_p), ("size", c_size_t)]


class NotificationStruct(Structure):
    _fields_ = [
        ("user_id", c_char_p),
        ("group_id", c_char_p),
        ("epoch", c_uint64),
        ("msg_id", c_uint64),
        ("sender_id", c_char_p),
        ("preview", c_void_p),
        ("preview_size", c_size_t),
        ("reason", c_char_p),
        ("mentioned", c_int),
    ]


class MessageStruct(Structure):
    _fields_ = [
        ("group_id", c_char_p),
        ("msg_id", c_uint64),
        ("prev_msg_id", c_uint64),
        ("timestamp_ms", c_int64),
        ("user_id", c_char_p),
        ("contents", c_void_p),
        ("contents_size", c_size_t),
        ("client_msg_id", c_char_p),
        ("epoch", c_uint64),
    ]


class ReactionStruct(Structure):
    _fields_ = [("key", c_char_p), ("count", c_uint64), ("mine", c_int)]


class EntryStruct(Structure):
    _fields_ = [
        ("message", MessageStruct),
        ("kind", c_int),
        ("target", c_uint64),
        ("reply_to", c_uint64),
        ("mentions", POINTER(c_char_p)),
        ("mention_count", c_size_t),
        ("meta", c_char_p),
        ("deleted", c_int),
        ("removed", c_int),
        ("edited", c_uint64),
        ("replies", c_uint64),
        ("reactions", POINTER(ReactionStruct)),
        ("reaction_count", c_size_t),
    ]


class EntryPageStruct(Structure):
    _fields_ = [
        ("epoch", c_uint64),
        ("head", c_uint64),
        ("to", c_uint64),
        ("entries", POINTER(EntryStruct)),
        ("count", c_size_t),
    ]


class ReadStateStruct(Structure):
    _fields_ = [
        ("group_id", c_char_p),
        ("epoch", c_uint64),
        ("msg_id", c_uint64),
        ("head", c_uint64),
        ("unread", c_uint64),
        ("mentions", c_uint64),
    ]


class GroupInfoStruct(Structure):
    _fields_ = [
        ("group_id", c_char_p),
        ("kind", c_int),
        ("title", c_char_p),
        ("topic", c_char_p),
        ("member_limit", c_uint32),
        ("members", c_uint64),
    ]


FREE_FN = CFUNCTYPE(None, c_void_p)
DELIVER_FN = CFUNCTYPE(None, c_void_p, c_uint64, POINTER(Bytes), c_size_t)
CLOSE_SESSION_FN = CFUNCTYPE(None, c_void_p, c_uint64, c_int, c_char_p)
SEND_BATCH_FN = CFUNCTYPE(None, c_void_p, c_char_p, c_uint64, c_void_p, c_size_t)
NOTIFY_FN = CFUNCTYPE(None, c_void_p, POINTER(NotificationStruct))
TIMER_FN = CFUNCTYPE(None, c_void_p, c_int64)
CLOCK_FN = CFUNCTYPE(c_int64, c_void_p)
WAKEUP_FN = CFUNCTYPE(None, c_void_p)
POST_FN = CFUNCTYPE(None, c_void_p, c_void_p)

_H = c_void_p  # every opaque handle
_P = POINTER(c_void_p)  # an out-parameter for a handle

# name -> (restype, argtypes); every function of parley.h.
_FUNCTIONS = {
    "parley_version": (c_int, []),
    "parley_version_string": (c_char_p, []),
    "parley_strerror": (c_char_p, [c_int]),
    "parley_errmsg": (c_char_p, [c_void_p]),
    # node options
    "parley_node_options_create": (c_int, [_P]),
    "parley_node_options_destroy": (c_int, [_H]),
    "parley_node_options_set_node_id": (c_int, [_H, c_char_p]),
    "parley_node_options_set_codec": (c_int, [_H, c_int]),
    "parley_node_options_set_forward": (c_int, [_H, c_int, c_int64]),
    "parley_node_options_set_limits": (c_int, [_H, c_uint64, c_uint64, c_uint64, c_uint64]),
    "parley_node_options_set_session_queue_bytes": (c_int, [_H, c_uint64]),
    "parley_node_options_set_pull_policy": (c_int, [_H, c_uint64, c_double, c_double]),
    "parley_node_options_set_seed": (c_int, [_H, c_uint64]),
    # stores
    "parley_store_open_memory": (c_int, [_P]),
    "parley_store_open_sqlite": (c_int, [c_char_p, c_uint32, _P]),
    "parley_store_close": (c_int, [_H]),
    "parley_store_create_group": (c_int, [_H, c_char_p, c_char_p]),
    "parley_store_join": (c_int, [_H, c_char_p, c_char_p]),
    "parley_store_leave": (c_int, [_H, c_char_p, c_char_p]),
    "parley_store_history": (
        c_int,
        [_H, c_char_p, c_char_p, c_uint64, c_uint32, POINTER(POINTER(MessageStruct)), POINTER(c_size_t)],
    ),
    "parley_messages_free": (None, [POINTER(MessageStruct)]),
    "parley_store_entries": (
        c_int,
        [_H, c_char_p, c_char_p, c_uint64, c_uint32, c_int, POINTER(POINTER(EntryPageStruct))],
    ),
    "parley_entry_page_free": (None, [POINTER(EntryPageStruct)]),
    "parley_store_read_states": (c_int, [_H, c_char_p, POINTER(POINTER(ReadStateStruct)), POINTER(c_size_t)]),
    "parley_store_mark_read": (c_int, [_H, c_char_p, c_char_p, c_uint64, c_uint64, POINTER(ReadStateStruct)]),
    "parley_read_states_free": (None, [POINTER(ReadStateStruct)]),
    "parley_store_set_notify_level": (c_int, [_H, c_char_p, c_char_p, c_int]),
    "parley_store_create_group_with": (c_int, [_H, c_char_p, c_char_p, POINTER(GroupInfoStruct)]),
    "parley_store_group_info": (c_int, [_H, c_char_p, POINTER(POINTER(GroupInfoStruct))]),
    "parley_store_set_group_settings": (c_int, [_H, c_char_p, POINTER(GroupInfoStruct)]),
    "parley_store_invite": (c_int, [_H, c_char_p, c_char_p]),
    "parley_store_ask_to_join": (c_int, [_H, c_char_p, c_char_p]),
    "parley_store_public_groups": (
        c_int,
        [_H, c_char_p, c_char_p, c_uint32, POINTER(POINTER(GroupInfoStruct)), POINTER(c_size_t)],
    ),
    "parley_group_infos_free": (None, [POINTER(GroupInfoStruct)]),
    "parley_node_record_membership": (c_int, [_H, c_char_p, c_int, c_char_p, c_char_p]),
    "parley_node_record_system": (c_int, [_H, c_char_p, c_char_p, c_char_p, c_char_p, c_char_p]),
    "parley_store_notify_level": (c_int, [_H, c_char_p, c_char_p, POINTER(c_int)]),
    # nodes
    "parley_node_create": (c_int, [_H, _H, _P]),
    "parley_node_destroy": (c_int, [_H]),
    "parley_node_set_deliver": (c_int, [_H, DELIVER_FN, c_void_p, FREE_FN]),
    "parley_node_set_close_session": (c_int, [_H, CLOSE_SESSION_FN, c_void_p, FREE_FN]),
    "parley_node_set_send_batch": (c_int, [_H, SEND_BATCH_FN, c_void_p, FREE_FN]),
    "parley_node_set_notify": (c_int, [_H, NOTIFY_FN, c_void_p, FREE_FN]),
    "parley_node_set_timer": (c_int, [_H, TIMER_FN, c_void_p, FREE_FN]),
    "parley_node_set_clock": (c_int, [_H, CLOCK_FN, c_void_p, FREE_FN]),
    "parley_node_set_wakeup": (c_int, [_H, WAKEUP_FN, c_void_p, FREE_FN]),
    "parley_node_start": (c_int, [_H]),
    "parley_node_session_open": (c_int, [_H, c_uint64, c_char_p]),
    "parley_node_session_close": (c_int, [_H, c_uint64, c_int, c_char_p]),
    "parley_node_client_request": (c_int, [_H, c_uint64, c_void_p, c_size_t]),
    "parley_node_session_drained": (c_int, [_H, c_uint64, c_uint64]),
    "parley_node_peer_batch": (c_int, [_H, c_void_p, c_size_t]),
    "parley_node_peer_result": (c_int, [_H, c_char_p, c_uint64, c_int]),
    "parley_node_timer_fired": (c_int, [_H]),
    "parley_node_flush": (c_int, [_H]),
    "parley_node_member_removed": (c_int, [_H, c_char_p, c_char_p]),
    "parley_node_session_count": (c_int, [_H, POINTER(c_size_t)]),
    "parley_node_post": (c_int, [_H, POST_FN, c_void_p, FREE_FN]),
    "parley_node_run_posted": (c_int, [_H, POINTER(c_size_t)]),
    # the in-process server
    "parley_server_options_create": (c_int, [_P]),
    "parley_server_options_destroy": (c_int, [_H]),
    "parley_server_options_set": (c_int, [_H, c_char_p, c_char_p]),
    "parley_server_start": (c_int, [_H, _P]),
    "parley_server_port": (c_int, [_H, POINTER(c_uint16)]),
    "parley_server_stop": (c_int, [_H]),
    "parley_server_destroy": (c_int, [_H]),
}

# ---- loading --------------------------------------------------------------------

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None


def _candidates() -> List[str]:
    env = os.environ.get("PARLEY_LIBRARY")
    if env:
        return [env]
    here = Path(__file__).resolve().parent
    out = [str(here / name) for name in _LIBRARY_NAMES if (here / name).exists()]
    found = ctypes.util.find_library("parley_c")
    if found:
        out.append(found)
    out += ["libparley_c.so.0", "libparley_c.so"]
    out += [str(Path(d) / name) for d in _SYSTEM_DIRS for name in _LIBRARY_NAMES[:2] if (Path(d) / name).exists()]
    return out


def _declare(dll: ctypes.CDLL, path: str) -> None:
    missing = [name for name in _FUNCTIONS if not hasattr(dll, name)]
    if missing:
        raise LibraryError(f"{path} lacks {', '.join(missing)}: an older libparley_c?")
    for name, (restype, argtypes) in _FUNCTIONS.items():
        fn = getattr(dll, name)
        fn.restype = restype
        fn.argtypes = argtypes
    version = dll.parley_version()
    if version // 10000 != HEADER_VERSION_MAJOR or version < HEADER_VERSION_NUMBER:
        got = dll.parley_version_string().decode()
        raise LibraryError(
            f"{path} is libparley_c {got}; this binding needs "
            f"{HEADER_VERSION_MAJOR}.x at least {HEADER_VERSION_MAJOR}.{HEADER_VERSION_MINOR}.{HEADER_VERSION_PATCH}"
        )


def _load() -> ctypes.CDLL:
    tried = []
    for path in _candidates():
        try:
            dll = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"  {path}: {e}")
            continue
        _declare(dll, path)
        dll.parley_path = path  # type: ignore[attr-defined]
        return dll
    raise LibraryError(
        "libparley_c not found; build it (cmake --build build --target parley_c) and set "
        "PARLEY_LIBRARY=/path/to/libparley_c.so, or install it. Tried:\n" + "\n".join(tried)
    )


def lib() -> Any:
    """The loaded, declared library (loaded on first call)."""
    global _lib
    if _lib is None:
        with _lock:
            if _lib is None:
                _lib = _load()
    return _lib


def library_path() -> str:
    """The file the library was loaded from."""
    return lib().parley_path


# ---- calls ----------------------------------------------------------------------


def errmsg(handle: Optional[int]) -> str:
    raw = lib().parley_errmsg(handle)
    return raw.decode("utf-8", "replace") if raw else ""


def check(rc: int, handle: Optional[int] = None) -> None:
    """Raises the exception for a failed call. `handle`: the live handle the
    call was made on (its message), or None for creates and posts (the
    per-thread message)."""
    if rc != 0:
        raise error_from_code(rc, errmsg(handle))


def closed(what: str) -> Closed:
    return Closed(f"this {what} is closed")


StrLike = Union[str, bytes]


def cstr(value: StrLike, what: str) -> bytes:
    """A NUL-terminated UTF-8 argument; refuses embedded NULs (C would cut there)."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    elif not isinstance(value, bytes):
        raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")
    if b"\0" in value:
        raise InvalidArgument(f"{what} contains a NUL character")
    return value


def opt_cstr(value: Optional[StrLike], what: str) -> Optional[bytes]:
    return None if value is None else cstr(value, what)


BytesLike = Union[bytes, bytearray, memoryview, str]


def payload(data: BytesLike, what: str = "data") -> bytes:
    """A (const void*, size_t) argument as bytes; str is encoded as UTF-8."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{what} must be bytes-like or str, not {type(data).__name__}")


def text(raw: Optional[bytes]) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


def uint(value: int, what: str, bits: int = 64) -> int:
    """An unsigned integer argument, range-checked (ctypes would wrap it)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value < (1 << bits):
        raise InvalidArgument(f"{what} must be in 0..2**{bits}-1, not {value}")
    return value


_H = TypeVar("_H", bound="Closeable")


class Closeable:
    """The handle classes' shared lifecycle: `with` closes, and so does
    garbage collection. Subclasses define close() and _live()."""

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _live(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self: _H) -> _H:
        self._live()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
