"""aiosms: an async client for the 1000sms.ru and my-sms.ru SMS gateways.

>>> import aiosms
>>> async with aiosms.MySms(username="u", password="p", sender="MyShop") as sms:  # doctest: +SKIP
...     receipt = await sms.send(aiosms.Message(to="+7 911 222-33-33", text="Привет"))
"""

import contextlib

from aiosms._aiohttp import AiohttpTransport
from aiosms._batching import Batcher
from aiosms._errors import (
    AccountError,
    AuthenticationError,
    BlacklistedError,
    ClosedError,
    ContentError,
    DeliveryUnknownError,
    GatewayError,
    InsufficientFundsError,
    MessageNotFoundError,
    ProtocolError,
    ProviderError,
    RecipientError,
    RequestError,
    ScheduleError,
    SenderError,
    SmsError,
    TransportError,
    ValidationError,
)
from aiosms._models import Balance, DeliveryState, Message, Profile, Receipt, StatusReport
from aiosms._providers.mysms import MySms
from aiosms._providers.thousandsms import ThousandSms
from aiosms._redact import RedactingFilter, install_log_filter
from aiosms._retry import RetryPolicy
from aiosms._segments import Segments, segments
from aiosms._transport import DEFAULT_LIMITS, DEFAULT_TIMEOUT, MAX_REPLY_BYTES
from aiosms._validation import normalize_phone

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "MAX_REPLY_BYTES",
    "AccountError",
    "AiohttpTransport",
    "AuthenticationError",
    "Balance",
    "Batcher",
    "BlacklistedError",
    "ClosedError",
    "ContentError",
    "DeliveryState",
    "DeliveryUnknownError",
    "GatewayError",
    "InsufficientFundsError",
    "Message",
    "MessageNotFoundError",
    "MySms",
    "Profile",
    "ProtocolError",
    "ProviderError",
    "Receipt",
    "RecipientError",
    "RedactingFilter",
    "RequestError",
    "RetryPolicy",
    "ScheduleError",
    "Segments",
    "SenderError",
    "SmsError",
    "StatusReport",
    "ThousandSms",
    "TransportError",
    "ValidationError",
    "install_log_filter",
    "normalize_phone",
    "segments",
]

# Tracebacks and reprs say aiosms.MySms, not aiosms._providers.mysms.MySms.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("aiosms."):
        with contextlib.suppress(AttributeError, TypeError):
            _obj.__module__ = "aiosms"
del _name, _obj

# The blocking API is a submodule: after ``import aiosms``, ``aiosms.sync.MySms`` works.
# Imported last, once every name above is in place; it starts nothing until used.
from aiosms import sync as sync  # noqa: E402
