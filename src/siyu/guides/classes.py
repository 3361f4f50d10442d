"""A/B/C classes of guides from their metrics (guides.metrics), by HQ's rules.

The rules are a validated document kept in every version (store.versions, code
"default"): A and B each hold thresholds on named metrics, `min` (metric >= value) and
`max` (metric <= value), all of which must hold; A is tried first, then B; C is what
remains and holds none. A metric that is undefined (a ratio over zero) meets no threshold.
Each class carries its playbook in Chinese and English (A: tools, B: SOPs and best cases,
C: supervision).

`classify` computes the period's metrics in one statement and writes one row per guide to
`guide_classes` with the metrics snapshot and the rules version, replacing the period's
earlier rows in the same transaction. A guide's current class is the one of its latest
period.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, DateTime, Engine, bindparam, text

from siyu.errors import NotFoundError, ValidationError, parse_document
from siyu.guides.errors import ClassRulesMissing
from siyu.guides.metrics import METRICS, GuideMetrics, guide_metrics
from siyu.guides.models import CLASSES, guide_class_rules, guide_classes
from siyu.guides.tasks import to_second
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now
from siyu.store.versions import Versions

CODE = "default"
PLAYBOOK_MAX = 4000
Threshold = Annotated[int, Field(ge=0, le=10**15)]


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    zh: str = Field(min_length=1, max_length=PLAYBOOK_MAX)
    en: str = Field(min_length=1, max_length=PLAYBOOK_MAX)


def _known(value: dict[str, int]) -> dict[str, int]:
    for name in value:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return value


class Ranked(BaseModel):
    """A or B: every threshold must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: dict[str, Threshold] = Field(default_factory=dict)
    max: dict[str, Threshold] = Field(default_factory=dict)
    playbook: Playbook

    @field_validator("min", "max")
    @classmethod
    def _names(cls, value: dict[str, int]) -> dict[str, int]:
        return _known(value)

    def holds(self, m: GuideMetrics) -> bool:
        def at_least(name: str, bound: int) -> bool:
            value = m.value(name)
            return value is not None and value >= bound

        def at_most(name: str, bound: int) -> bool:
            value = m.value(name)
            return value is not None and value <= bound

        return all(at_least(n, b) for n, b in self.min.items()) and all(
            at_most(n, b) for n, b in self.max.items()
        )


class Rest(BaseModel):
    """C: every guide neither A nor B; no thresholds of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    playbook: Playbook


class ClassRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    A: Ranked
    B: Ranked
    C: Rest
    window_days: int = Field(default=7, ge=1, le=366, description="Cart after an open within.")

    def class_of(self, m: GuideMetrics) -> str:
        if self.A.holds(m):
            return "A"
        if self.B.holds(m):
            return "B"
        return "C"

    def playbook(self, cls: str) -> Playbook:
        rule: Ranked | Rest = getattr(self, cls)
        return rule.playbook


VERSIONS = Versions(guide_class_rules, "rule_id", ClassRules, "rules", "guide class rules")


def parse(doc: object) -> ClassRules:
    """A rules document, or a ValidationError naming the field and the rule."""
    return parse_document(ClassRules, doc, "rules")


@dataclass(frozen=True)
class RulesVersion:
    rule_id: int
    version: int
    rules: ClassRules


def save_rules(
    engine: Engine, group_id: str, rules: ClassRules, key_id: int | None = None
) -> RulesVersion:
    """Store the rules as the group's next version."""
    with engine.begin() as conn:
        return RulesVersion(*VERSIONS.save_in(conn, group_id, CODE, rules, key_id))


def current_rules(conn: Connection, group_id: str) -> RulesVersion:
    """The rules in force; `class_rules_missing` when HQ has set none."""
    try:
        return RulesVersion(*VERSIONS.current(conn, group_id, CODE))
    except NotFoundError:
        raise ClassRulesMissing() from None


@dataclass(frozen=True)
class Classified:
    since: datetime
    until: datetime
    rules_version: int
    by_class: dict[str, int]
    flagged: int


def classify(
    engine: Engine,
    group_id: str,
    since: datetime,
    until: datetime,
    at: datetime | None = None,
) -> Classified:
    """Class every guide for [since, until) by the rules in force, replacing the period's
    earlier rows, in one transaction."""
    at = at or stored_now()
    with engine.begin() as conn:
        rules = current_rules(conn, group_id)
        dialect_of(conn).advisory_lock(conn, "guide_classes", group_id)
        found = guide_metrics(conn, group_id, since, until, at, rules.rules.window_days)
        conn.execute(  # Core, so the times bind as the rows were written on every dialect
            guide_classes.delete().where(
                guide_classes.c.group_id == group_id,
                guide_classes.c.period_start == since,
                guide_classes.c.period_end == until,
            )
        )
        decided = [(m, rules.rules.class_of(m)) for m in found]
        rows = [
            {
                "group_id": group_id,
                "guide_id": m.guide_id,
                "period_start": since,
                "period_end": until,
                "guide_class": cls,
                "spam_risk": int(m.spam_risk),
                "metrics": json.dumps(m.snapshot(), sort_keys=True),
                "rule_id": rules.rule_id,
                "rules_version": rules.version,
                "computed_at": at,
            }
            for m, cls in decided
        ]
        if rows:
            conn.execute(guide_classes.insert(), rows)
    counts = {c: sum(1 for _, cls in decided if cls == c) for c in CLASSES}
    flagged = sum(1 for m in found if m.spam_risk)
    return Classified(since, until, rules.version, counts, flagged)


@dataclass(frozen=True)
class GuideClass:
    guide_id: str
    store_id: str
    guide_class: str
    spam_risk: bool
    period_start: datetime
    period_end: datetime
    metrics: dict[str, Any]
    rules_version: int
    computed_at: datetime
    playbook: Playbook


_LIST = """
SELECT c.guide_id, gd.store_id, c.guide_class, c.spam_risk, c.period_start, c.period_end,
  c.metrics, c.rules_version, c.computed_at, r.body AS rules
FROM guide_classes c
JOIN guides gd ON gd.group_id = c.group_id AND gd.guide_id = c.guide_id
JOIN guide_class_rules r ON r.rule_id = c.rule_id
WHERE c.group_id = :g {where}
ORDER BY c.guide_id, c.period_end DESC, c.period_start DESC
"""


def classes(
    conn: Connection,
    group_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
    stores: tuple[str, ...] | None = None,
    guide_id: str | None = None,
    history: bool = False,
) -> list[GuideClass]:
    """Guides' classes with their metrics and playbook: of the period [since, until) when
    given, else each guide's current one (its latest period; every period with
    `history`). `stores` or `guide_id` narrow to what a store or guide key may see."""
    where: list[str] = []
    params: dict[str, object] = {"g": group_id}
    if (since is None) != (until is None):
        raise ValidationError("until" if until is None else "since", "give both or neither")
    if since is not None and until is not None:
        where.append("AND c.period_start = :since AND c.period_end = :until")
        params.update(since=since, until=until)
    if guide_id is not None:
        where.append("AND c.guide_id = :guide")
        params["guide"] = guide_id
    if stores is not None:
        if not stores:
            return []
        names = [f":s{i}" for i in range(len(stores))]
        where.append(f"AND gd.store_id IN ({', '.join(names)})")
        params.update({f"s{i}": s for i, s in enumerate(stores)})
    query = text(_LIST.format(where=" ".join(where)))
    if since is not None and until is not None:  # bind as the rows were written (SQLite)
        query = query.bindparams(
            bindparam("since", type_=DateTime), bindparam("until", type_=DateTime)
        )
    rows = conn.execute(query, params).all()
    found, seen = [], set()
    for r in rows:
        if not history and since is None and r.guide_id in seen:
            continue  # rows come latest period first per guide
        seen.add(r.guide_id)
        rules = VERSIONS.parsed(r.rules)  # the version it was decided under, parsed once
        found.append(
            GuideClass(
                str(r.guide_id),
                str(r.store_id),
                str(r.guide_class),
                bool(r.spam_risk),
                to_second(r.period_start),
                to_second(r.period_end),
                json.loads(r.metrics),
                int(r.rules_version),
                to_second(r.computed_at),
                rules.playbook(str(r.guide_class)),
            )
        )
    return found


def classes_before(conn: Connection, group_id: str, at: datetime) -> dict[str, str]:
    """Each guide's class in force at `at`: the one of the latest classified period that
    ended by then (commission pays by it; training counts a class's guides by it)."""
    rows = conn.execute(
        text("""SELECT guide_id, guide_class FROM guide_classes
                WHERE group_id = :g AND period_end <= :at
                ORDER BY period_end, computed_at""").bindparams(bindparam("at", type_=DateTime())),
        {"g": group_id, "at": as_stored(at)},
    )
    return {str(guide): str(cls) for guide, cls in rows}  # later periods overwrite
