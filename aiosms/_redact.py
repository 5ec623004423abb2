"""Keeping passwords out of log records.

httpx logs every request URL at INFO; with ``method="GET"`` that URL carries the
password. aiosms never logs URLs itself, and offers this filter for the loggers
of httpx and httpcore.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "install_log_filter"]

# Passwords (p, password), and also texts (t, text: an OTP is a secret) and
# numbers (d, phone): what aiosms puts in a GET query that must not reach a log.
_SECRET_QUERY = re.compile(r"([?&](?:p|password|t|text|d|phone)=)[^&#\s\"']*", re.IGNORECASE)
_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
)


def redact(text: str) -> str:
    """Replace password, text and number query values with ``***``."""
    return _SECRET_QUERY.sub(r"\1***", text)


class RedactingFilter(logging.Filter):
    """A logging filter that masks passwords, texts and numbers in a logged URL's query.

    >>> import logging
    >>> logging.getLogger("httpx").addFilter(RedactingFilter())
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record's message in place; never drops a record."""
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def install_log_filter() -> None:
    """Attach a ``RedactingFilter`` to the httpx and httpcore loggers, once.

    Call it at start-up if you use ``method="GET"`` and log httpx at INFO or below.
    """
    for name in _LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(RedactingFilter())
