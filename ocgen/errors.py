"""Errors ocgen reports to users: one clear message naming the place."""

from __future__ import annotations

import os
import sys

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


class OcgenError(Exception):
    """Base class of errors caused by user input or by a failed numerical solve."""


class InputError(OcgenError):
    """Malformed user input: names the file, the key and the position inside it.

    ``str(err)`` is the whole message, e.g.
    ``my.toml: A[2][1]: unknown function 'system' (allowed: sqrt)``.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        self.source = source
        self.key = key
        self.detail = message
        where = ": ".join(part for part in (source, key) if part)
        super().__init__(f"{where}: {message}" if where else message)

    def located(self, *, source: str | None = None, key: str | None = None) -> "InputError":
        """The same error with a file and/or key filled in where still unknown."""
        return InputError(self.detail, source=self.source or source, key=self.key or key)


class DerivativeSizeError(InputError):
    """The first derivatives of a problem exceed MAX_DERIVATIVE_NODES (:mod:`ocgen.limits`)."""


class SolveError(OcgenError):
    """A solve that stopped without a usable answer: the state overflowed, the implicit stage
    equations were singular, or the optimiser failed. The command line reports it like a solve
    that did not converge (exit status 1), not like bad input (status 2)."""


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes ``warnings.warn``, called in the caller of this function,
    show the innermost line outside ocgen: the user's, however deep in ocgen the warning
    arose (``discretise`` called directly, or through ``generate``)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level
