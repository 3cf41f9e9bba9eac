"""The one exception users see for their own mistakes."""

from __future__ import annotations

from typing import Any


class InputError(ValueError):
    """Bad input from the caller: names the argument, what was expected and what came.

    The CLI prints it as one line and exits 2; the HTTP server answers 4xx with the same text.
    """

    def __init__(self, argument: str, expected: str, got: Any = None, *, detail: str | None = None):
        self.argument = argument
        self.expected = expected
        self.got = got
        message = f"{argument}: expected {expected}"
        if got is not None:
            message += f", got {_describe(got)}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


def _describe(value: Any) -> str:
    """A short, readable description of a bad value (arrays by shape and dtype, not contents)."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
