"""Exceptions raised by ternlm: one class per status code of the C ABI.

Every class derives from :class:`TernError`, which carries ``status`` (the
C ABI's ``tern_status`` number) and ``status_name`` (``"TERN_ERR_FORMAT"``...).
Where a built-in exception means the same thing the class derives from it
too, so ``except ValueError`` or ``except OSError`` work as a Python user
expects.
"""

from __future__ import annotations


class TernError(Exception):
    """A ternlm call failed; ``status`` and ``status_name`` say how."""

    status: int = -1
    status_name: str = "TERN_ERR"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message

    def __str__(self) -> str:
        return f"{self.status_name}: {self.message}"


class InvalidArgumentError(TernError, ValueError):
    status, status_name = 1, "TERN_ERR_INVALID_ARGUMENT"


class TernIOError(TernError, OSError):
    status, status_name = 2, "TERN_ERR_IO"

    def __init__(self, message: str, status: int | None = None) -> None:
        TernError.__init__(self, message, status)


class FormatError(TernError, ValueError):
    status, status_name = 3, "TERN_ERR_FORMAT"


class UnsupportedError(TernError, NotImplementedError):
    status, status_name = 4, "TERN_ERR_UNSUPPORTED"


class OutOfMemoryError(TernError, MemoryError):
    status, status_name = 5, "TERN_ERR_OUT_OF_MEMORY"


class BackendError(TernError, RuntimeError):
    status, status_name = 6, "TERN_ERR_BACKEND"


class ContextFullError(TernError):
    status, status_name = 7, "TERN_ERR_CONTEXT_FULL"


class CancelledError(TernError):
    status, status_name = 8, "TERN_ERR_CANCELLED"


_BY_STATUS = {
    cls.status: cls
    for cls in (
        InvalidArgumentError,
        TernIOError,
        FormatError,
        UnsupportedError,
        OutOfMemoryError,
        BackendError,
        ContextFullError,
        CancelledError,
    )
}


def from_status(status: int, message: str) -> TernError:
    """The exception for a failed call (used by the native module)."""
    cls = _BY_STATUS.get(status, TernError)
    return cls(message, status)
