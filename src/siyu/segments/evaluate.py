"""Evaluating stored segments and previewing rules: the warehouse computes, the store keeps.

`evaluate_segments` runs each segment's current rule as one Ibis expression on the
warehouse's engine (`segments.compile`, tables from `segments.sources`), then replaces its
members in the store in one transaction per segment (`segments.membership`: staged by
COPY on PostgreSQL, set-based enters and leaves) and records the run in
`segment_evaluations` (version, as-of time, size, entered, left, seconds). Nested segments
are evaluated first, so within one run a segment reads the fresh members of those it nests.

`preview_rule` compiles a rule being edited and returns its size and a sample; it writes
nothing.

All times in a run are as of one moment: `as_of`, by default the warehouse's data end (its
newest fact), the same default as the analytics snapshot, so a segment and the dashboard
it was opened from count the same members.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc
from ibis import BaseBackend
from sqlalchemy import Engine, func, insert, select, update

from siyu.analytics.engines import engine_name, to_arrow
from siyu.analytics.warehouse import Warehouse
from siyu.errors import ValidationError
from siyu.segments.compile import compile_rule
from siyu.segments.membership import SEGMENT_MEMBERS, replace_members, unique_members
from siyu.segments.models import (
    EVALUATION_TRIGGERS,
    segment_evaluations,
    segment_members,
    segments,
)
from siyu.segments.rules import parse_document, references
from siyu.segments.sampling import SAMPLE_FROM, estimate, sampled
from siyu.segments.sources import segment_tables
from siyu.segments.stored import check_tags, evaluation_order, get_segment, lock_segment
from siyu.store.times import stored_now

MAX_SAMPLE = 100


@dataclass(frozen=True)
class Evaluation:
    evaluation_id: int
    slug: str
    version: int
    as_of: datetime
    size: int
    entered: int
    left: int
    seconds: float


@dataclass(frozen=True)
class RulePreview:
    size: int
    sample: list[int]  # the first member ids, ascending
    as_of: datetime
    seconds: float
    # an estimate from one member in a hundred (segments.sampling): size is scaled up and
    # size_low..size_high is its 95% interval; exact previews leave these at their defaults
    estimated: bool = False
    size_low: int | None = None
    size_high: int | None = None
    sampled_members: int | None = None


def run_as_of(warehouse: Warehouse, as_of: datetime | None) -> datetime:
    """The moment a run reads the data at: given, else the warehouse's newest fact."""
    return as_of or warehouse.data_end() or stored_now()


def preview_rule(
    engine: Engine,
    backend: BaseBackend,
    warehouse: Warehouse,
    rule: object,
    as_of: datetime | None = None,
    sample: int = 20,
    exact: bool = False,
    sample_from: int = SAMPLE_FROM,
) -> RulePreview:
    """A rule's size and its first `sample` member ids, computed now, written nowhere.
    Past `sample_from` members the size is estimated from a sample (and the ids come from
    it) unless `exact`."""
    if type(sample) is not int or not 0 <= sample <= MAX_SAMPLE:
        raise ValidationError("sample", f"must be an integer from 0 to {MAX_SAMPLE}")
    started = time.perf_counter()
    document = parse_document(rule)
    with engine.connect() as conn:
        check_tags(conn, warehouse.group_id, references(document.rule).tags)
    moment = run_as_of(warehouse, as_of)
    tables = segment_tables(engine, backend, warehouse, references(document.rule))
    population = None if exact else int(backend.execute(tables.members.count()))
    if population is not None and population > sample_from:
        tables = sampled(tables)
    members = compile_rule(document, tables, moment)
    if population is None or population <= sample_from:
        size = int(backend.execute(members.count()))
        first = (
            to_arrow(backend, members.order_by("member_id").limit(sample)).column("member_id")
            if sample
            else pa.array([], pa.int64())
        )
        ids = [int(m) for m in first.to_pylist()]
        return RulePreview(size, ids, moment, time.perf_counter() - started)
    # a sample's matches are few (a hundredth): run the rule once, count and sort here
    matched = pc.unique(to_arrow(backend, members).column("member_id"))
    ids = sorted(int(m) for m in matched.to_pylist())[:sample]
    drawn = int(backend.execute(tables.members.count()))
    scaled = estimate(len(matched), drawn, population)
    return RulePreview(
        scaled.size,
        ids,
        moment,
        time.perf_counter() - started,
        estimated=True,
        size_low=scaled.low,
        size_high=scaled.high,
        sampled_members=drawn,
    )


def evaluate_segments(
    engine: Engine,
    backend: BaseBackend,
    warehouse: Warehouse,
    slugs: Iterable[str] | None = None,
    as_of: datetime | None = None,
    trigger: str = "manual",
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Evaluation]:
    """Evaluate `slugs` (all live segments when None) and the segments they nest, in
    dependency order; returns one `Evaluation` per segment. `progress(slug, i, n)` is
    called before each."""
    if trigger not in EVALUATION_TRIGGERS:
        raise ValidationError("trigger", f"must be one of {', '.join(EVALUATION_TRIGGERS)}")
    group_id = warehouse.group_id
    with engine.connect() as conn:
        order = evaluation_order(conn, group_id, slugs)
    moment = run_as_of(warehouse, as_of)
    done = []
    for i, slug in enumerate(order):
        if progress is not None:
            progress(slug, i, len(order))
        done.append(_evaluate_one(engine, backend, warehouse, slug, moment, trigger))
    return done


def _evaluate_one(
    engine: Engine,
    backend: BaseBackend,
    warehouse: Warehouse,
    slug: str,
    moment: datetime,
    trigger: str,
) -> Evaluation:
    started = time.perf_counter()
    group_id = warehouse.group_id
    with engine.connect() as conn:
        segment = get_segment(conn, group_id, slug)
    document = parse_document(segment.rule)
    tables = segment_tables(engine, backend, warehouse, references(document.rule))
    selected = to_arrow(backend, compile_rule(document, tables, moment)).column("member_id")
    ids, _ = unique_members(pc.cast(selected, pa.int64()))
    with engine.begin() as conn:
        locked = lock_segment(conn, group_id, slug)
        if locked.version != segment.version:  # edited while we computed: not this rule's
            raise ValidationError(
                "rule", f"segment {slug!r} changed to version {locked.version} during evaluation"
            )
        at = stored_now()
        evaluation_id = conn.execute(
            insert(segment_evaluations)
            .values(
                group_id=group_id,
                segment_id=segment.segment_id,
                version=segment.version,
                as_of=moment,
                trigger=trigger,
                engine=engine_name(backend),
                size=len(ids),
                entered=0,
                left=0,
                seconds=0.0,
                at=at,
            )
            .returning(segment_evaluations.c.evaluation_id)
        ).scalar_one()
        applied = replace_members(
            conn,
            SEGMENT_MEMBERS,
            group_id,
            segment.segment_id,
            ids,
            None,
            f"evaluation:{evaluation_id}",
            at,
        )
        seconds = round(time.perf_counter() - started, 3)
        conn.execute(
            update(segment_evaluations)
            .where(segment_evaluations.c.evaluation_id == evaluation_id)
            .values(entered=applied.entered, left=applied.left, seconds=seconds)
        )
    return Evaluation(
        int(evaluation_id),
        slug,
        segment.version,
        moment,
        len(ids),
        applied.entered,
        applied.left,
        seconds,
    )


# --- reads ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DaySize:
    day: date
    size: int
    entered: int
    left: int


def size_history(engine: Engine, group_id: str, slug: str, days: int = 90) -> list[DaySize]:
    """Size per day: the last evaluation of each day (a day without one is absent), with
    the day's total enters and leaves, newest last, over the last `days` evaluated days."""
    if type(days) is not int or not 1 <= days <= 3660:
        raise ValidationError("days", "must be an integer from 1 to 3660")
    with engine.connect() as conn:
        segment = get_segment(conn, group_id, slug)
        rows = conn.execute(
            select(
                segment_evaluations.c.at,
                segment_evaluations.c.size,
                segment_evaluations.c.entered,
                segment_evaluations.c.left,
            )
            .where(
                segment_evaluations.c.group_id == group_id,
                segment_evaluations.c.segment_id == segment.segment_id,
            )
            .order_by(segment_evaluations.c.evaluation_id)
        ).all()
    per_day: dict[date, DaySize] = {}
    for r in rows:
        day = r.at.date()
        before = per_day.get(day)
        entered = r.entered + (before.entered if before else 0)
        left = r.left + (before.left if before else 0)
        per_day[day] = DaySize(day, int(r.size), int(entered), int(left))
    return [per_day[d] for d in sorted(per_day)[-days:]]


def member_segments(engine: Engine, group_id: str, member_id: int) -> list[tuple[str, datetime]]:
    """The live segments a member is in, and since when (slug order)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(segments.c.slug, segment_members.c.set_at)
            .join(segments, segments.c.segment_id == segment_members.c.segment_id)
            .where(
                segment_members.c.group_id == group_id,
                segment_members.c.member_id == member_id,
                segments.c.archived_at.is_(None),
            )
            .order_by(segments.c.slug)
        )
        return [(r.slug, r.set_at) for r in rows]


def member_segment_page(
    engine: Engine, group_id: str, member_id: int, limit: int, offset: int = 0
) -> tuple[int, list[tuple[str, str, str, datetime]]]:
    """(how many live segments the member is in, one page of them by slug: slug, zh and en
    names, since when)."""
    live = (
        segment_members.c.group_id == group_id,
        segment_members.c.member_id == member_id,
        segments.c.group_id == group_id,
        segments.c.archived_at.is_(None),
    )
    joined = segment_members.join(segments, segments.c.segment_id == segment_members.c.segment_id)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(joined).where(*live)).scalar_one()
        rows = conn.execute(
            select(
                segments.c.slug, segments.c.name_zh, segments.c.name_en, segment_members.c.set_at
            )
            .select_from(joined)
            .where(*live)
            .order_by(segments.c.slug)
            .limit(limit)
            .offset(offset)
        ).all()
    return int(total), [(r.slug, r.name_zh, r.name_en, r.set_at) for r in rows]


def segment_size(engine: Engine, group_id: str, segment_id: int) -> int:
    """Members in the segment now (from the store)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    segment_members.c.group_id == group_id,
                    segment_members.c.segment_id == segment_id,
                )
            ).scalar_one()
        )
