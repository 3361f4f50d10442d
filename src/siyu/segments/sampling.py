"""Estimated previews: a rule being edited is counted on one member in a hundred.

A membership manager previews a rule many times while building it; at ten million members
an exact count reads every order (2-12 s a rule on two cores, docs/benchmarks.md), which
is no way to edit. Above `SAMPLE_FROM` members a preview therefore runs the same compiled
rule on the members whose id hashes to one bucket of `BUCKETS` (their orders, events,
tags and memberships only: the facts are cut before any join) and scales the count up,
with a Wilson 95% interval (scipy). Evaluation, export and every stored membership stay
exact; only previews estimate, and they say so.

The bucket is not the id modulo 100, which would alias with any pattern in ids assigned
in runs (an import, a copy, every tenth member): the id is first scrambled by two steps of
the MINSTD generator (x -> 48271 x mod 2^31 - 1), plain integer arithmetic that DuckDB and
Spark compute alike, so both draw the same sample. (Ibis's `hash()` would differ by engine,
and on DuckDB it is cast through a 64-character BIT string: a 1% preview took 27 s at 10M.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import ibis.expr.types as ir
from scipy.stats import binomtest

from siyu.segments.compile import SegmentTables

SAMPLE_FROM = 1_000_000  # members; at or below, previews are exact
BUCKETS = 100
CONFIDENCE = 0.95


PRIME = 2_147_483_647  # 2^31 - 1; x < PRIME, so x * MULTIPLIER < 2^47: no int64 overflow
MULTIPLIER = 48_271


def bucket_of(member_id: ir.IntegerValue) -> ir.IntegerValue:
    x = member_id % PRIME
    x = (x * MULTIPLIER) % PRIME
    x = (x * MULTIPLIER) % PRIME
    return x % BUCKETS


def in_sample(member_id: ir.IntegerValue, bucket: int = 0) -> ir.BooleanValue:
    """Previews draw bucket 0; the tests draw every bucket to check the intervals' cover."""
    return bucket_of(member_id) == bucket


def sampled(tables: SegmentTables, bucket: int = 0) -> SegmentTables:
    """`tables` with every per-member table cut to the sample (products are reached
    through the sampled lines)."""

    def cut(table: ir.Table | None) -> ir.Table | None:
        return None if table is None else table.filter(in_sample(table.member_id, bucket))

    return replace(
        tables,
        members=tables.members.filter(in_sample(tables.members.member_id, bucket)),
        orders=cut(tables.orders),
        order_lines=cut(tables.order_lines),
        events=cut(tables.events),
        memberships=cut(tables.memberships),
        tags=cut(tables.tags),
    )


@dataclass(frozen=True)
class Estimate:
    size: int
    low: int
    high: int
    drawn: int  # members in the sample


def estimate(found: int, drawn: int, population: int) -> Estimate:
    """`found` of `drawn` sampled members matched: the population's size and its interval."""
    if drawn == 0:
        return Estimate(0, 0, population, 0)
    interval = binomtest(found, drawn).proportion_ci(CONFIDENCE, method="wilson")
    return Estimate(
        round(found * population / drawn),
        int(interval.low * population),
        min(population, -int(-interval.high * population // 1)),
        drawn,
    )
