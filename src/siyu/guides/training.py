"""Training content for guides (issue #19, as Bestore runs it): an item (a link or a text)
for a guide class (A/B/C) or an HQ task code, and a completion row per guide who marked it
done. HQ reads the completion rate per item over the guides the item is for, its
audience, as of a moment `at`:

- an item for a class: the guides whose class in force at `at` (the latest classified
  period that ended by then, `guides.classes.classes_before`, as commission reads it) is
  that class, so a guide who changes class between periods changes audience with it;
- an item for an HQ task code: the guides who were assigned a task of that code by `at`;
- both: the guides who are in both; neither: every guide of the group.

Completions recorded by `at` count; a guide outside the audience who completed the item
is counted apart (`outside`), never in the rate. Each item also reads per class: how many
of each class's guides completed it, whatever the item's audience.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, DateTime, Engine, bindparam, select, text

from siyu.errors import parse_document
from siyu.guides.campaigns import CODE
from siyu.guides.classes import classes_before
from siyu.guides.errors import TrainingNotFound
from siyu.guides.models import CLASSES, training_completions, training_items
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now, stored_time


class TrainingItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=CODE)
    title_zh: str = Field(min_length=1, max_length=200)
    title_en: str = Field(min_length=1, max_length=200)
    url: str | None = Field(default=None, pattern=r"^https://\S+$", max_length=500)
    body: str | None = Field(default=None, max_length=5000)
    for_class: str | None = Field(default=None, pattern=r"^[ABC]$")
    for_task: str | None = Field(default=None, pattern=CODE)

    @model_validator(mode="after")
    def _has_content(self) -> TrainingItem:
        if not self.url and not self.body:
            raise ValueError("an item needs a url or a body")
        return self


def parse_item(doc: object) -> TrainingItem:
    return parse_document(TrainingItem, doc, "training")


def save_item(engine: Engine, group_id: str, item: TrainingItem) -> None:
    """Create or replace the item (its completions stay)."""
    t = training_items.c
    with engine.begin() as conn:
        conn.execute(training_items.delete().where(t.group_id == group_id, t.code == item.code))
        conn.execute(
            training_items.insert().values(
                group_id=group_id, created_at=stored_now(), **item.model_dump()
            )
        )


def complete(
    engine: Engine, group_id: str, guide_id: str, code: str, at: datetime | None = None
) -> bool:
    """The guide marks the item done (at `at`, default now: an import or replay passes the
    time it happened); True when newly recorded (again is a no-op)."""
    t = training_items.c
    with engine.begin() as conn:
        found = conn.execute(select(t.code).where(t.group_id == group_id, t.code == code)).first()
        if found is None:
            raise TrainingNotFound(code)
        statement = (
            dialect_of(conn)
            .insert_ignore(training_completions, ["group_id", "code", "guide_id"])
            .returning(training_completions.c.code)
        )
        row = {
            "group_id": group_id,
            "code": code,
            "guide_id": guide_id,
            "completed_at": as_stored(at or stored_now()).replace(microsecond=0),
        }
        return conn.execute(statement, row).first() is not None


@dataclass(frozen=True)
class ItemProgress:
    code: str
    title_zh: str
    title_en: str
    url: str | None
    body: str | None
    for_class: str | None
    for_task: str | None
    completed: int  # guides of the audience who completed it
    guides: int  # the audience: guides it is for
    done_at: datetime | None = None  # for one guide: when it completed it
    outside: int = 0  # guides outside the audience who completed it (not in the rate)
    # class (A/B/C, "-" for a guide never classed) -> (its guides who completed it, its guides)
    by_class: dict[str, tuple[int, int]] = field(default_factory=dict)


UNCLASSED = "-"
_ITEMS = text(
    "SELECT code, title_zh, title_en, url, body, for_class, for_task FROM training_items "
    "WHERE group_id = :g ORDER BY code"
)
_DONE = text(
    "SELECT code, guide_id, completed_at FROM training_completions "
    "WHERE group_id = :g AND completed_at <= :at"
).bindparams(bindparam("at", type_=DateTime()))
_TASKED = text(
    "SELECT DISTINCT campaign_code, guide_id FROM guide_tasks "
    "WHERE group_id = :g AND campaign_code IS NOT NULL AND created_at <= :at"
).bindparams(bindparam("at", type_=DateTime()))


def training_progress(
    conn: Connection, group_id: str, guide_id: str | None = None, at: datetime | None = None
) -> list[ItemProgress]:
    """Every item with its completion over its audience as of `at` (default now; see the
    module); with `guide_id`, when that guide completed each."""
    at = at or stored_now()
    params = {"g": group_id, "at": as_stored(at)}
    guides = {str(r[0]) for r in conn.execute(_GUIDES, {"g": group_id})}
    classed = {g: c for g, c in classes_before(conn, group_id, at).items() if g in guides}
    of_class = {c: {g for g in guides if classed.get(g, UNCLASSED) == c} for c in _CLASSES}
    tasked: dict[str, set[str]] = {}
    for code, guide in conn.execute(_TASKED, params):
        tasked.setdefault(str(code), set()).add(str(guide))
    done: dict[str, dict[str, datetime]] = {}
    for code, guide, when in conn.execute(_DONE, params):
        done.setdefault(str(code), {})[str(guide)] = stored_time(when)
    found = []
    for r in conn.execute(_ITEMS, {"g": group_id}):
        audience = set(guides)
        if r.for_class is not None:
            audience &= of_class[r.for_class]
        if r.for_task is not None:
            audience &= tasked.get(r.for_task, set())
        by = done.get(r.code, {})
        found.append(
            ItemProgress(
                r.code,
                r.title_zh,
                r.title_en,
                r.url,
                r.body,
                r.for_class,
                r.for_task,
                len(audience & by.keys()),
                len(audience),
                None if guide_id is None else by.get(guide_id),
                len(by.keys() - audience),
                {c: (len(of_class[c] & by.keys()), len(of_class[c])) for c in _CLASSES},
            )
        )
    return found


_GUIDES = text("SELECT guide_id FROM guides WHERE group_id = :g")
_CLASSES = (*CLASSES, UNCLASSED)
