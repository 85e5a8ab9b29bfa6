"""Parley for Python: an embeddable group-chat engine, over its C API
(libparley_c, include/parley/parley.h) with ctypes. Pure Python.

- Store: memory or SQLite stores, and the admin helpers (create_group, join,
  leave, history).
- Node: embed the engine with your own transports and loop.
- Server: run the bundled chat server (parley-server) in this process.
- ParleyError and one subclass per error code (NotFound, Closed, ...).

Every object has close() (safe twice) and is a context manager; a call after
close() raises Closed. See docs/python.md for a quick start.

The native library is found through the environment variable PARLEY_LIBRARY
(a path), then beside this package, then on the system; it is loaded on
first use.
"""

from __future__ import annotations

from . import _lib
from ._lib import LibraryError, library_path
from .errors import (
    OK,
    AlreadyExists,
    Backpressure,
    Closed,
    Corruption,
    Deleted,
    EpochMismatch,
    HistoryTrimmed,
    Internal,
    InvalidArgument,
    LimitExceeded,
    NotFound,
    ParleyError,
    PermissionDenied,
    Timeout,
    TooLarge,
    Unauthenticated,
    Unavailable,
    error_from_code,
    error_name,
)
from .node import MembershipKind, Node, NodeOptions, Notification
from .server import Server
from .store import Entry, EntryKind, EntryPage, GroupInfo, GroupKind, Message, NotifyLevel, Reaction, ReadState, Store

__version__ = "0.1.0"  # this binding; == the header it was written against

__all__ = [
    "AlreadyExists",
    "Backpressure",
    "Closed",
    "HistoryTrimmed",
    "LimitExceeded",
    "Corruption",
    "Deleted",
    "Entry",
    "EntryKind",
    "EntryPage",
    "EpochMismatch",
    "Internal",
    "InvalidArgument",
    "LibraryError",
    "MembershipKind",
    "Message",
    "NotifyLevel",
    "Reaction",
    "ReadState",
    "GroupInfo",
    "GroupKind",
    "Node",
    "NodeOptions",
    "NotFound",
    "Notification",
    "OK",
    "ParleyError",
    "PermissionDenied",
    "Server",
    "Store",
    "Timeout",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "error_from_code",
    "error_name",
    "library_path",
    "library_version",
    "strerror",
]


def library_version() -> str:
    """The loaded library's version string, e.g. "0.1.0"."""
    return _lib.lib().parley_version_string().decode()


def strerror(code: int) -> str:
    """The library's short name of a code, e.g. "not_found" ("unknown" for no code)."""
    return _lib.lib().parley_strerror(code).decode()
