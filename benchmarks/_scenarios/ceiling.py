"""``ceiling``: the benchmark server's own rate, driven by a minimal raw HTTP/1.1 client.

It shows how far below the server every other row stays, so that none of them is
limited by the fake gateway.
"""

from __future__ import annotations

from benchmarks import _baselines as base
from benchmarks._common import CpuMeter, fmt_pct, fmt_rate, table
from benchmarks._harness import Context, Scenario, heading, progress, spread


async def run(ctx: Context) -> None:
    """The server's own rate, driven by a minimal raw HTTP/1.1 client (no pipelining)."""
    port = ctx.server.port
    push = base.raw_request(
        port, "/", "application/x-www-form-urlencoded; charset=utf-8", base.push_msg_body(0)
    )
    chunk = base.mysms_chunk(0, 1000)
    packet_json = base.raw_request(
        port, "/rest/sms/send/json", "application/json", base.mysms_json_body(chunk)
    )
    packet_xml = base.raw_request(
        port, "/rest/sms/send/xml", "application/xml", base.mysms_xml_body(chunk)
    )
    cases = [
        ("1000sms push_msg (JSON)", push, 1, 10),
        ("1000sms push_msg (JSON)", push, 1, 50),
        ("1000sms push_msg (JSON)", push, 1, 200),
        ("my-sms send/json, packets of 1,000", packet_json, 1000, 4),
        ("my-sms send/xml, packets of 1,000", packet_xml, 1000, 4),
    ]
    seconds = 0.3 if ctx.quick else 1.5
    rows = []
    for name, request, per, connections in cases:
        stat = ctx.stat(f"ceiling/{name}/{connections}")
        for _ in range(ctx.repeats):
            meter = CpuMeter(ctx.server.cpu_seconds)
            meter.start()
            replies, failed, _ = await base.raw_ceiling(
                port, request, connections, 500_000, seconds
            )
            sample = meter.stop(replies, replies - failed)
            stat.add(sample.rate, sample)
            if failed:
                progress(f"  !! ceiling {name}: {failed} replies were not 200")
        rows.append(
            [
                name,
                str(connections),
                fmt_rate(stat.median),
                spread(stat),
                fmt_rate(stat.median * per),
                fmt_pct(stat.server_cpu),
                fmt_pct(stat.client_cpu),
            ]
        )
        progress(f"ceiling {name} ×{connections}: {fmt_rate(stat.median)} req/s")
    print(heading("ceiling", "the benchmark server's own rate, raw asyncio client", ctx))
    print(
        table(
            ["request", "connections", "req/s", "min–max", "msgs/s", "server CPU", "client CPU"],
            rows,
        )
    )
    print(
        "\nServer CPU below 100% means the raw client (one core) is the limit, so the "
        "server's true ceiling is higher still."
    )


SCENARIO = Scenario("ceiling", run)
