"""A trial, not a feature: my-sms JSON packets through ``Batcher.send_all`` with orjson.

    pip install orjson
    python -m benchmarks._orjson_trial fragments   # orjson.dumps per message at intake
    python -m benchmarks._orjson_trial dicts       # a dict per message, one dumps a packet
    python -m benchmarks._profile mysms-json-1000 --no-cprofile   # stdlib, to compare

Wires orjson into ``MySms``'s JSON path (reply decoding, and encoding by one of the two
ways above) by replacing three of its methods in this process only, then runs the
profiler's ``mysms-json-1000`` workload. It answers whether an orjson extra would pay
for itself end to end; ``benchmarks/README.md`` has the answer.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import orjson

import aiosms
import aiosms._providers.mysms as mysms
from aiosms._codecs import WireFormatError, dumps_json
from aiosms._transport import WireRequest
from benchmarks import _profile


def loads(body: bytes) -> dict[str, Any]:
    value = orjson.loads(body)
    if not isinstance(value, dict):
        raise WireFormatError("the reply is not a JSON object")
    return value


def fragment(self: mysms.MySms, message: aiosms.Message) -> bytes:
    sender = self._sender_of(message)[0]
    return orjson.dumps({"source": sender, "destination": message.to, "text": message.text})


def fields(self: mysms.MySms, message: aiosms.Message) -> dict[str, str]:
    return {"source": self._sender_of(message)[0], "destination": message.to, "text": message.text}


def joined(self: mysms.MySms, wires: Sequence[Any]) -> WireRequest:
    head = dumps_json({"auth": self._auth()})[:-1]
    return self._post("send/json", b"".join((head, b',"data":[', b",".join(wires), b"]}")))


def dumped(self: mysms.MySms, wires: Sequence[Any]) -> WireRequest:
    return self._post("send/json", orjson.dumps({"auth": self._auth(), "data": list(wires)}))


def main() -> None:
    way = sys.argv[1] if len(sys.argv) > 1 else "fragments"
    if way not in ("fragments", "dicts"):
        raise SystemExit("usage: python -m benchmarks._orjson_trial fragments|dicts")
    mysms.loads_json = loads  # type: ignore[assignment]
    if way == "fragments":
        mysms.MySms._json_fragment = fragment  # type: ignore[assignment,method-assign]
        mysms.MySms._send_request = joined  # type: ignore[method-assign]
    else:
        mysms.MySms._json_fragment = fields  # type: ignore[assignment,method-assign]
        mysms.MySms._send_request = dumped  # type: ignore[method-assign]
    print(f"orjson {orjson.__version__}, {way}", flush=True)
    sys.argv = [sys.argv[0], "mysms-json-1000", "--no-cprofile", "--count", "600000"]
    _profile.main()


if __name__ == "__main__":
    main()
