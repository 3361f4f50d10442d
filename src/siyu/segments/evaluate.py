"""Evaluating stored segments and previewing rules: the warehouse computes, the store keeps.

`evaluate_segments` compiles the current rules of the segments asked for (and of those they
nest) together on the warehouse's engine (`segments.compile`, tables from
`segments.sources`): one table of per-member facts, computed once for the run, and a filter
per segment. It then replaces each segment's members in the store in one transaction per
segment (`segments.membership`: staged by COPY on PostgreSQL, set-based enters and leaves)
and records it in `segment_evaluations` (version, as-of time, size, entered, left, and the
seconds of its own filter and write; the shared facts are not in any one segment's). A
segment nesting another of the same run reads that one's rule at the same moment, so within
a run the nested segment is as fresh as the one nesting it.

`preview_rule` compiles a rule being edited and returns its size and a sample; it writes
nothing.

All times in a run are as of one moment: `as_of`, by default the warehouse's data end (its
newest fact), the same default as the analytics snapshot, so a segment and the dashboard
it was opened from count the same members.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
from ibis import BaseBackend
from sqlalchemy import Engine, func, insert, select, update

from siyu.analytics.engines import engine_name, materialised, to_arrow
from siyu.analytics.warehouse import Warehouse
from siyu.errors import ValidationError
from siyu.segments.compile import CompiledRules, compile_rule, compile_rules
from siyu.segments.membership import SEGMENT_MEMBERS, replace_members, unique_members
from siyu.segments.models import (
    EVALUATION_TRIGGERS,
    segment_evaluations,
    segment_members,
    segments,
)
from siyu.segments.rules import References, RuleDocument, parse_document, references
from siyu.segments.sampling import SAMPLE_FROM, estimate, sampled
from siyu.segments.sources import segment_tables
from siyu.segments.stored import (
    StoredSegment,
    check_attributes,
    check_tags,
    evaluation_order,
    get_segment,
    lock_segment,
)
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
        check_attributes(conn, warehouse.group_id, references(document.rule).attributes)
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
        stored = [get_segment(conn, group_id, slug) for slug in order]
    moment = run_as_of(warehouse, as_of)
    documents = {s.slug: parse_document(s.rule) for s in stored}
    tables = segment_tables(engine, backend, warehouse, _needs(documents))
    # one table of facts for the whole run; a segment nesting another of the run reads that
    # one's rule, evaluated at the same moment, not its members from the last run
    compiled = compile_rules(list(documents.values()), tables, moment, inline=documents)
    done = []
    with _facts(compiled, len(stored)) as facts:
        for i, segment in enumerate(stored):
            if progress is not None:
                progress(segment.slug, i, len(stored))
            started = time.perf_counter()
            selected = to_arrow(backend, compiled.members(i, facts)).column("member_id")
            done.append(
                _write(engine, backend, warehouse, segment, selected, moment, trigger, started)
            )
    return done


def _needs(documents: dict[str, RuleDocument]) -> References:
    """What the rules read together; a segment evaluated in the same run is inlined, so its
    stored members are not loaded."""
    found = [references(d.rule) for d in documents.values()]
    nested = frozenset().union(*(r.segments for r in found)) - documents.keys()
    tables = frozenset().union(*(r.tables for r in found))
    return References(
        tables if nested else tables - {"memberships"},
        frozenset().union(*(r.tags for r in found)),
        nested,
        frozenset().union(*(r.attributes for r in found)),
    )


@contextmanager
def _facts(compiled: CompiledRules, rules: int) -> Iterator[ir.Table]:
    """The facts computed once when several rules read them."""
    if rules < 2:
        yield compiled.facts
        return
    with materialised(compiled.facts) as facts:
        yield facts


def _write(
    engine: Engine,
    backend: BaseBackend,
    warehouse: Warehouse,
    segment: StoredSegment,
    selected: pa.ChunkedArray,
    moment: datetime,
    trigger: str,
    started: float,
) -> Evaluation:
    group_id = warehouse.group_id
    slug = segment.slug
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
