"""Would orjson pay for itself? The JSON work of a my-sms packet of 1,000, per message.

    python -m benchmarks._json_codecs          # needs `pip install orjson` for its rows

Encoding: aiosms joins per-message fragments made with the stdlib's C string encoder
(what ``MySms`` does) against ``orjson.dumps`` of one dict per message. Decoding: the
gateway's reply of 1,000 entries with the stdlib decoder against ``orjson.loads``. No
network: only the codec work that a faster JSON library could change.
"""

from __future__ import annotations

import importlib
import json
import platform
import statistics
import timeit
from collections.abc import Callable
from typing import Any

from aiosms._codecs import encode_json_string, loads_json
from benchmarks._common import TEXT, fmt_ratio, phone, table

# Optional, and not a dependency of anything: imported by name so the type checker
# needs no stubs for it.
orjson: Any
try:
    orjson = importlib.import_module("orjson")
except ImportError:  # pragma: no cover - optional
    orjson = None

PACKET = 1_000
REPEATS = 7
NUMBER = 200


def per_message_us(work: Callable[[], object]) -> float:
    """Median over REPEATS of NUMBER calls, in µs per message."""
    times = timeit.repeat(work, number=NUMBER, repeat=REPEATS)
    return statistics.median(times) / NUMBER / PACKET * 1e6


def main() -> None:
    phones = [phone(i) for i in range(PACKET)]
    sender = encode_json_string("MyShop")
    auth = {"username": "user", "password": "not-a-real-password"}

    def fragments() -> bytes:
        parts = [
            f'{{"source":{sender},"destination":{encode_json_string(to)},'
            f'"text":{encode_json_string(TEXT)}}}'
            for to in phones
        ]
        head = json.dumps({"auth": auth}, separators=(",", ":"))[:-1]
        return (head + ',"data":[' + ",".join(parts) + "]}").encode()

    entries = ",".join(
        f'{{"id":"00000000-0000-4000-8000-{i:012x}","state":"2"}}' for i in range(PACKET)
    )
    reply = ('{"state":"0","data":[' + entries + "]}").encode()

    rows = []
    stdlib_encode = per_message_us(fragments)
    stdlib_decode = per_message_us(lambda: loads_json(reply))
    rows.append(["encode a packet", "stdlib fragments (aiosms)", f"{stdlib_encode:.3f}", "1.00×"])
    if orjson is not None:

        def orjson_dicts() -> bytes:
            data = [{"source": "MyShop", "destination": to, "text": TEXT} for to in phones]
            return bytes(orjson.dumps({"auth": auth, "data": data}))

        assert json.loads(orjson_dicts()) == json.loads(fragments())
        encode = per_message_us(orjson_dicts)
        rows.append(
            [
                "encode a packet",
                "orjson, a dict per message",
                f"{encode:.3f}",
                fmt_ratio(encode / stdlib_encode),
            ]
        )
    rows.append(["decode a reply", "stdlib (aiosms)", f"{stdlib_decode:.3f}", "1.00×"])
    if orjson is not None:
        decode = per_message_us(lambda: orjson.loads(reply))
        rows.append(
            ["decode a reply", "orjson", f"{decode:.3f}", fmt_ratio(decode / stdlib_decode)]
        )
    version = orjson.__version__ if orjson is not None else "not installed"
    print(
        f"\n### JSON codecs — µs per message, packets of {PACKET:,} "
        f"(median of {REPEATS}; CPython {platform.python_version()}, orjson {version})\n"
    )
    print(table(["work", "codec", "µs per message", "÷ stdlib"], rows))


if __name__ == "__main__":
    main()
