"""The scenarios, one module each, in the order they run and report.

A scenario module defines ``SCENARIO``, a ``benchmarks._harness.Scenario``: its name,
the coroutine that measures and prints its table, the fake gateways it needs and its
targets. Registering one is one line: its module's name in ``MODULES``.
"""

from __future__ import annotations

import importlib

from benchmarks._harness import Scenario

MODULES = (
    "ceiling",
    "fanout",
    "packets",
    "p50",
    "callers",
    "million",
    "campaign",
    "latency50",
    "latency",
    "fleet",
)


def load() -> list[Scenario]:
    """Every registered scenario, in order."""
    scenarios = []
    for module in MODULES:
        scenario = importlib.import_module(f"{__name__}.{module}").SCENARIO
        if not isinstance(scenario, Scenario):
            raise TypeError(f"{__name__}.{module}.SCENARIO is not a Scenario")
        scenarios.append(scenario)
    return scenarios
