"""Parley's error codes as Python exceptions.

Every failing call raises a subclass of ParleyError chosen by the C API's
integer code (include/parley/parley.h, PARLEY_ERR_*). The codes and their
short names are stable and never renumbered; they are also the codes the
chat protocol uses (docs/protocol.md 2.4), so a client of parley-server can
map an `error` event with `error_from_code` too.

This module needs no native library.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

OK = 0


class ParleyError(Exception):
    """A call into Parley failed.

    `code` is the stable integer code, `name` its short name (as
    parley_strerror gives it, e.g. "not_found") and `message` what the
    library said about this failure.
    """

    code: int = -1
    name: str = "unknown"

    def __init__(self, message: str = "", code: Optional[int] = None) -> None:
        if code is not None:
            self.code = code
            self.name = _NAMES.get(code, "unknown")
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        if not self.message:
            return self.name
        # The library's messages read "function: name: why"; don't repeat the name.
        if self.name in self.message.split(": ")[:2]:
            return self.message
        return f"{self.name}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, message={self.message!r})"


class InvalidArgument(ParleyError, ValueError):
    """Malformed or out-of-limits input, or a call the API does not allow now."""

    code, name = 1, "invalid_argument"


class NotFound(ParleyError):
    """Unknown group, session or item."""

    code, name = 2, "not_found"


class PermissionDenied(ParleyError):
    """Not a member, or not allowed."""

    code, name = 3, "permission_denied"


class AlreadyExists(ParleyError):
    """Creating something that exists."""

    code, name = 4, "already_exists"


class TooLarge(ParleyError, ValueError):
    """A payload or id over its limit."""

    code, name = 5, "too_large"


class Unavailable(ParleyError):
    """The store, a peer or the server is unreachable; retry later."""

    code, name = 6, "unavailable"


class Timeout(ParleyError):
    """A bounded wait ran out."""

    code, name = 7, "timeout"


class EpochMismatch(ParleyError):
    """The group's history was reset; resync."""

    code, name = 8, "epoch_mismatch"


class Backpressure(ParleyError):
    """A bounded queue is full (a session fell behind)."""

    code, name = 9, "backpressure"


class Corruption(ParleyError):
    """Stored data failed a check."""

    code, name = 10, "corruption"


class Internal(ParleyError):
    """A bug or out of memory; the message says where."""

    code, name = 11, "internal"


class Unauthenticated(ParleyError):
    """Missing, bad or expired credentials."""

    code, name = 12, "unauthenticated"


class Closed(ParleyError):
    """The object (handle) was closed; it cannot be used any more."""

    code, name = 13, "closed"


class HistoryTrimmed(ParleyError):
    """The history asked for was removed by the store's retention."""

    code, name = 14, "history_trimmed"


class LimitExceeded(ParleyError):
    """A per-user limit (send rate, connections, groups) was reached; retry later."""

    code, name = 15, "limit_exceeded"


class Deleted(ParleyError):
    """The message named was deleted (editing or reacting to it is refused)."""

    code, name = 16, "deleted"


ERRORS: Dict[int, Type[ParleyError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        PermissionDenied,
        AlreadyExists,
        TooLarge,
        Unavailable,
        Timeout,
        EpochMismatch,
        Backpressure,
        Corruption,
        Internal,
        Unauthenticated,
        Closed,
        HistoryTrimmed,
        LimitExceeded,
        Deleted,
    )
}
_NAMES: Dict[int, str] = {code: cls.name for code, cls in ERRORS.items()}
_NAMES[OK] = "ok"


def error_name(code: int) -> str:
    """The short name of a code ("ok", "not_found", ...; "unknown" for no code)."""
    return _NAMES.get(code, "unknown")


def error_from_code(code: int, message: str = "") -> ParleyError:
    """The exception for a non-zero code; a plain ParleyError for a code this
    version does not know (a newer library may append codes)."""
    cls = ERRORS.get(code)
    if cls is None:
        return ParleyError(message, code=code)
    return cls(message)
