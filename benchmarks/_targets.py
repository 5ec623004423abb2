"""Targets as data: what each is measured by, its goal, and the table that reports them.

A scenario declares its targets as ``Target`` records built from a few kinds of
measure (a row's median, its worst repeat, a ratio, the best of several rows, the
worst step of a sweep). The report reads the records of every scenario, in order,
and evaluates them against the run's results; a target whose rows did not run says
"not run". Adding a target is adding a record, not code.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from benchmarks._common import ratio, table
from benchmarks._harness import Context


class Measure(Protocol):
    """How a target's value comes out of a run's results (None: its rows did not run)."""

    def value(self, ctx: Context) -> float | None: ...


@dataclass(frozen=True)
class Const:
    """A fixed number, such as an ideal rate to divide by."""

    number: float

    def value(self, ctx: Context) -> float | None:
        return self.number


@dataclass(frozen=True)
class Median:
    """The median over the repeats of one row."""

    key: str

    def value(self, ctx: Context) -> float | None:
        return ctx.median(self.key)


@dataclass(frozen=True)
class Worst:
    """The highest sample of one row: the worst repeat of a figure where lower is better."""

    key: str

    def value(self, ctx: Context) -> float | None:
        stat = ctx.results.get(self.key)
        return stat.high if stat and stat.samples else None


@dataclass(frozen=True)
class Best:
    """The highest median of ``prefix/N`` over ``values``; ``at`` says which N gave it."""

    prefix: str
    values: tuple[int, ...]

    def _best(self, ctx: Context) -> tuple[float, int] | None:
        found = [(ctx.median(f"{self.prefix}/{v}"), v) for v in self.values]
        known = [(m, v) for m, v in found if m is not None]
        return max(known) if known else None

    def value(self, ctx: Context) -> float | None:
        best = self._best(ctx)
        return None if best is None else best[0]

    def at(self, ctx: Context) -> int | None:
        best = self._best(ctx)
        return None if best is None else best[1]


@dataclass(frozen=True)
class Ratio:
    """One measure divided by another."""

    numerator: Measure
    denominator: Measure

    def value(self, ctx: Context) -> float | None:
        num = self.numerator.value(ctx)
        return None if num is None else ratio(num, self.denominator.value(ctx))


@dataclass(frozen=True)
class WorstStep:
    """The lowest ratio of a row of a sweep to the row before it (all rows must have run)."""

    keys: tuple[str, ...]

    def value(self, ctx: Context) -> float | None:
        steps = [ctx.median(key) for key in self.keys]
        known = [x for x in steps if x is not None]
        if len(known) != len(steps):
            return None
        return min(b / a for a, b in itertools.pairwise(known))


@dataclass(frozen=True)
class WorstRatio:
    """The lowest of several ratios (all must be known)."""

    ratios: tuple[Ratio, ...]

    def value(self, ctx: Context) -> float | None:
        values = [r.value(ctx) for r in self.ratios]
        known = [x for x in values if x is not None]
        return min(known) if len(known) == len(values) else None


@dataclass(frozen=True)
class Goal:
    """What a target must reach: ``value <op> bound``, shown as ``text``."""

    text: str
    test: Callable[[float, float], bool]
    bound: float


def at_least(bound: float, digits: int = 2) -> Goal:
    return Goal(f"≥ {bound:.{digits}f}", operator.ge, bound)


def at_most(bound: float, digits: int = 2) -> Goal:
    return Goal(f"≤ {bound:.{digits}f}", operator.le, bound)


def below(bound: float, digits: int = 0) -> Goal:
    return Goal(f"< {bound:.{digits}f}", operator.lt, bound)


@dataclass(frozen=True)
class Target:
    """One line of the targets table.

    ``name`` may say ``{at}``: the N at which a ``Best`` denominator was found.
    ``goal`` None is a figure reported beside the others (``info``), shown as ``beside``.
    ``quick_unit`` replaces ``unit`` in a ``--quick`` run.
    """

    name: str
    measure: Measure
    goal: Goal | None
    unit: str
    beside: str = "(beside it)"
    quick_unit: str | None = None

    def title(self, ctx: Context) -> str:
        if "{at}" not in self.name:
            return self.name
        best = self.measure.denominator if isinstance(self.measure, Ratio) else self.measure
        at = best.at(ctx) if isinstance(best, Best) else None
        return self.name.format(at=at)

    def row(self, ctx: Context) -> list[str]:
        goal = self.beside if self.goal is None else self.goal.text
        unit = self.quick_unit if ctx.quick and self.quick_unit is not None else self.unit
        value = self.measure.value(ctx)
        if value is None:
            return [self.title(ctx), "not run", goal, "—", unit]
        if self.goal is None:
            status = "info"
        else:
            status = "met" if self.goal.test(value, self.goal.bound) else "MISSED"
        return [self.title(ctx), f"{value:,.2f}", goal, status, unit]


def report(ctx: Context, targets: Sequence[Target]) -> None:
    """Print every target's line, then the run's notes."""
    print("\n### targets — ratios measured in this run\n")
    rows = [target.row(ctx) for target in targets]
    print(table(["target", "measured", "goal", "status", "unit"], rows))
    for note in ctx.notes:
        print(f"\nNote: {note}")
