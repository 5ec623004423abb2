"""Helpers shared by the tests: one way to make a message, one secret-leak oracle.

The oracle collects every text a caller could see of an error: its formatted
traceback, the same traceback with every frame's locals captured, and the str, repr
and attributes of each link of its chain of causes and contexts (suppressed or not).
A secret counts as leaked in its plain form and as it would look in a form body or a
query string.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from aiosms import Message

__all__ = ["assert_no_secret", "exception_texts", "log_texts", "msg"]


def msg(text: str = "Hello", to: str = "79112223333", **fields: Any) -> Message:
    """A message to ``to`` saying ``text``; ``fields`` are passed on to `Message` as they are."""
    return Message(to=to, text=text, **fields)


def exception_texts(error: BaseException, *, frame_locals: bool = True) -> list[str]:
    """Every text a caller could see of ``error``, its frames' locals too unless told not."""
    texts = ["".join(traceback.format_exception(type(error), error, error.__traceback__))]
    if frame_locals:
        captured = traceback.TracebackException.from_exception(error, capture_locals=True)
        texts.append("".join(captured.format()))
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), repr(vars(current))]
        current = current.__cause__ or current.__context__
    return texts


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every captured log record as formatted, as a message, and its raw arguments."""
    records = caplog.records
    return [
        caplog.text,
        *(record.getMessage() for record in records),
        *(repr(record.args) for record in records),
    ]


def _forms(secret: str) -> set[str]:
    # Percent-encoding may escape characters that need no escaping ("-" as "%2D").
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        secret.replace("-", "%2D"),
    }


def assert_no_secret(secret: str, texts: Iterable[str]) -> None:
    """Fail naming the texts that show ``secret`` in any of its forms."""
    forms = _forms(secret)
    leaks = [text for text in texts if any(form in text for form in forms)]
    assert leaks == []
