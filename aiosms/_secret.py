"""A wrapper that keeps a credential out of every repr, log record and traceback."""

from __future__ import annotations

__all__ = ["Secret"]


class Secret:
    """A string that never shows itself in a repr or a traceback's locals."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "'***'"
