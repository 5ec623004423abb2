"""Blocking clients for Django views, Celery tasks and scripts: aiosms without ``await``.

>>> import aiosms
>>> with aiosms.sync.MySms(username="u", password="p", sender="MyShop") as sms:  # doctest: +SKIP
...     receipt = sms.send(aiosms.Message(to="+7 911 222-33-33", text="Привет"))

``MySms``, ``ThousandSms`` and ``Batcher`` have the async classes' methods, options,
models and errors. Each client runs its own event loop in a background thread
(started on first use), is safe to share between threads and survives ``fork()``: a
child process builds its own loop and connection pool on first use and never touches
its parent's. ``Campaign`` runs a durable campaign (``aiosms.campaigns``) from
blocking code through one of these clients. See docs/sync.md.
"""

import contextlib

from aiosms.sync._batcher import Batcher
from aiosms.sync._campaign import Campaign
from aiosms.sync._clients import MySms, ThousandSms

__all__ = ["Batcher", "Campaign", "MySms", "ThousandSms"]

# Tracebacks and reprs say aiosms.sync.MySms, not aiosms.sync._clients.MySms.
for _name in __all__:
    _obj = globals()[_name]
    with contextlib.suppress(AttributeError, TypeError):
        _obj.__module__ = "aiosms.sync"
del _name, _obj
