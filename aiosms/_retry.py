"""When to try a request again, and how long to wait first.

Reads retry any transient fault. Sends retry only a failure that provably never
reached the gateway: a resent SMS is a duplicate SMS, so nothing that may have been
delivered is ever tried twice.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import attrs

from aiosms import _validation as v

__all__ = ["RetryPolicy"]

DEFAULT_READ_RETRIES = 2
DEFAULT_SEND_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 30.0


def _check(check: Callable[[object, str], object]) -> Callable[[object, Any, object], None]:
    def validator(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        check(value, attribute.name)

    return validator


@attrs.frozen(slots=True)
class RetryPolicy:
    """How aiosms retries. The defaults are safe; ``RetryPolicy(read_retries=0,
    send_retries=0)`` turns retries off.

    - ``read_retries``: extra attempts for status, balance and profile after a network
      failure, HTTP 429/5xx or a gateway internal error.
    - ``send_retries``: extra attempts for a send whose request provably never left
      (connection refused, connect timeout, pool timeout) or that the server refused
      with HTTP 429 (after its ``Retry-After``). Nothing else is retried.
    - Waits grow as ``initial_delay * 2**n`` up to ``max_delay``, less up to
      ``jitter`` of themselves at random; a ``Retry-After`` header is honoured up to
      ``max_retry_after`` seconds.

    >>> RetryPolicy(read_retries=5, max_delay=2.0).delay(4)  # doctest: +SKIP
    1.7
    """

    read_retries: int = attrs.field(
        default=DEFAULT_READ_RETRIES, validator=_check(v.non_negative_int)
    )
    send_retries: int = attrs.field(
        default=DEFAULT_SEND_RETRIES, validator=_check(v.non_negative_int)
    )
    initial_delay: float = attrs.field(
        default=INITIAL_RETRY_DELAY, validator=_check(v.non_negative_number)
    )
    max_delay: float = attrs.field(default=MAX_RETRY_DELAY, validator=_check(v.non_negative_number))
    max_retry_after: float = attrs.field(
        default=MAX_RETRY_AFTER, validator=_check(v.non_negative_number)
    )
    jitter: float = attrs.field(default=0.25, validator=_check(v.fraction))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first)."""
        if retry_after is not None and math.isfinite(retry_after):
            return max(0.0, min(retry_after, self.max_retry_after))
        # The exponent is capped: 2**1100 no longer fits a float, and the wait is capped anyway.
        base: float = min(self.initial_delay * 2 ** min(attempt, 64), self.max_delay)
        return base * (1 - self.jitter * random.random())
