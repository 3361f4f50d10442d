"""HQ's programme for guides, by stage (issue #19, as E-Land ran it): guides were measured
on sales first, then on share rate, then on PV/UV, add-to-cart, conversion and refund rate.

The programme is a validated document kept in every version (store.versions, code
"default", like the class rules): its stages in date order, each with a code, names in
Chinese and English, the day it starts and its focus metrics (names of
`guides.metrics.METRICS`), each with an optional target: `min` (value >= min) and/or `max`
(value <= max, for a rate that should stay low, such as the refund rate). A stage is in
force from its first day until the next stage starts; the stage of a period is the latest
one starting on or before the period's first instant (409 `programme_not_started` when the
period starts before the first stage). A period is reported by the version in force when
it ended (`programme_at`), not the newest: a later version changes the reports of periods
still open when it was saved, never of one closed under an earlier version.

`programme_report` measures every guide on the focus metrics of the stage in force for the
period (one `guide_metrics` statement, narrowed to a store's or a guide's), says whether
each target is met (an undefined ratio, over zero, meets none) and adds the totals of the
guides reported: counts are summed and a ratio is taken over the summed counts (the
brand's conversion is its orders over its guides' openers), never averaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Connection, Engine

from siyu.errors import NotFoundError, ValidationError, parse_document
from siyu.guides.attribution import MAX_DAYS
from siyu.guides.campaigns import CODE
from siyu.guides.errors import ProgrammeMissing, ProgrammeNotStarted
from siyu.guides.metrics import COUNTED, METRICS, GuideMetrics, guide_metrics
from siyu.guides.models import guide_programmes
from siyu.store.times import stored_now
from siyu.store.versions import Versions

DOCUMENT = "default"
MAX_STAGES = 24
Target = int | None


class Focus(BaseModel):
    """A metric the stage measures guides on, with its target when HQ set one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    min: Target = Field(default=None, ge=0, le=10**15)
    max: Target = Field(default=None, ge=0, le=10**15)

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"unknown metric {value!r}; known: {', '.join(METRICS)}")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> Focus:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}: no value could meet both")
        return self

    @property
    def has_target(self) -> bool:
        return self.min is not None or self.max is not None

    def met(self, value: int | None) -> bool | None:
        """None without a target; else whether the value meets every bound."""
        if not self.has_target:
            return None
        if value is None:
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=CODE)
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    starts_on: date
    focus: list[Focus] = Field(min_length=1, max_length=len(METRICS))

    @field_validator("focus")
    @classmethod
    def _once_each(cls, value: list[Focus]) -> list[Focus]:
        names = [f.metric for f in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"metric {twice[0]!r} is named twice; one target per metric")
        return value

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.starts_on, time())


class Programme(BaseModel):
    """The stages in date order; a cart counts within `window_days` of a share's open."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: list[Stage] = Field(min_length=1, max_length=MAX_STAGES)
    window_days: int = Field(default=7, ge=1, le=MAX_DAYS)

    def stage_for(self, since: datetime) -> Stage:
        """The stage in force for a period starting at `since`: the latest starting on or
        before it."""
        found = [s for s in self.stages if s.starts_at <= since]
        if not found:
            raise ProgrammeNotStarted(since.isoformat(), self.stages[0].starts_on.isoformat())
        return found[-1]


def check(programme: Programme) -> Programme:
    """The rules that span stages, naming the stage's field: codes unique, start days
    strictly increasing (two stages starting the same day would both be in force)."""
    seen: dict[str, int] = {}
    for i, stage in enumerate(programme.stages):
        if stage.code in seen:
            raise ValidationError(
                f"stages.{i}.code", f"{stage.code!r} is already stage {seen[stage.code]}'s"
            )
        seen[stage.code] = i
        if i == 0:
            continue
        before = programme.stages[i - 1].starts_on
        if stage.starts_on == before:
            raise ValidationError(
                f"stages.{i}.starts_on",
                f"{stage.starts_on} is also stage {i - 1}'s start: two stages would overlap",
            )
        if stage.starts_on < before:
            raise ValidationError(
                f"stages.{i}.starts_on",
                f"{stage.starts_on} is before stage {i - 1}'s start ({before}): "
                "list the stages in date order",
            )
    return programme


def parse(doc: object) -> Programme:
    """A programme document, or a ValidationError naming the field and the rule."""
    return check(parse_document(Programme, doc, "programme"))


VERSIONS = Versions(guide_programmes, "programme_id", Programme, "stages", "guide programme")


@dataclass(frozen=True)
class ProgrammeVersion:
    programme_id: int
    version: int
    programme: Programme


def save_programme(
    engine: Engine, group_id: str, programme: Programme, key_id: int | None = None
) -> ProgrammeVersion:
    """Store the programme as the group's next version (checked first: nothing is stored
    when a rule is broken)."""
    check(programme)
    with engine.begin() as conn:
        return ProgrammeVersion(*VERSIONS.save_in(conn, group_id, DOCUMENT, programme, key_id))


def current_programme(conn: Connection, group_id: str) -> ProgrammeVersion:
    """The programme in force; 409 `programme_missing` when HQ has set none."""
    try:
        return ProgrammeVersion(*VERSIONS.current(conn, group_id, DOCUMENT))
    except NotFoundError:
        raise ProgrammeMissing() from None


def programme_at(conn: Connection, group_id: str, until: datetime) -> ProgrammeVersion:
    """The version a period ending at `until` (not included) is reported by: the newest
    saved before its end, so a version saved during the period applies to all of it (its
    stages say when each applies) and a period closed under a version reads it however late
    it is reported. A period that ended before the first save had none in force: it reads
    the current version (HQ dating its stages back after importing its history, and
    correcting them, is heard). 409 `programme_missing` when there is no version at all."""
    try:
        return ProgrammeVersion(*VERSIONS.in_force(conn, group_id, DOCUMENT, until))
    except NotFoundError:
        raise ProgrammeMissing() from None


def stage_for(
    conn: Connection, group_id: str, since: datetime, until: datetime
) -> tuple[ProgrammeVersion, Stage]:
    """The programme version of the period [since, until) and its stage for it."""
    found = programme_at(conn, group_id, until)
    return found, found.programme.stage_for(since)


@dataclass(frozen=True)
class Measured:
    metric: str
    value: int | None  # None: a ratio over zero
    min: int | None
    max: int | None
    met: bool | None  # None: no target


@dataclass(frozen=True)
class GuideFocus:
    guide_id: str
    store_id: str
    spam_risk: bool
    measured: list[Measured]

    @property
    def met_all(self) -> bool | None:
        """Every target met; None when the stage sets no target."""
        judged = [m.met for m in self.measured if m.met is not None]
        return all(judged) if judged else None


@dataclass(frozen=True)
class Total:
    metric: str
    value: int | None  # counts summed, a ratio over the summed counts
    min: int | None
    max: int | None
    guides_met: int  # guides meeting the target (0 without one)
    guides: int


@dataclass(frozen=True)
class ProgrammeReport:
    since: datetime
    until: datetime
    version: int
    stage: Stage
    guides: list[GuideFocus]
    totals: list[Total]


def _measure(stage: Stage, m: GuideMetrics) -> list[Measured]:
    return [
        Measured(f.metric, m.value(f.metric), f.min, f.max, f.met(m.value(f.metric)))
        for f in stage.focus
    ]


def programme_report(
    conn: Connection,
    group_id: str,
    since: datetime,
    until: datetime,
    at: datetime | None = None,
    stores: tuple[str, ...] | None = None,
    guide_id: str | None = None,
) -> ProgrammeReport:
    """Every guide's focus metrics of the stage in force for [since, until) (refunds as
    recorded before `at`), met or not, and their totals, by the programme version of the
    period (`programme_at`; `version` names it). `stores` or `guide_id` narrow to what a
    store or guide key may see; the totals are over the guides reported."""
    found, stage = stage_for(conn, group_id, since, until)
    window = found.programme.window_days
    shown = guide_metrics(
        conn, group_id, since, until, at or stored_now(), window, stores=stores, guide_id=guide_id
    )
    summed = GuideMetrics("", "", *(sum(getattr(m, name) for m in shown) for name in COUNTED))
    rows = [GuideFocus(m.guide_id, m.store_id, m.spam_risk, _measure(stage, m)) for m in shown]
    totals = [
        Total(
            f.metric,
            summed.value(f.metric),
            f.min,
            f.max,
            sum(1 for r in rows if r.measured[i].met),
            len(rows),
        )
        for i, f in enumerate(stage.focus)
    ]
    return ProgrammeReport(since, until, found.version, stage, rows, totals)
