"""Training content for guides (issue #19, as Bestore runs it): an item (a link or a text)
for a guide class (A/B/C) or an HQ task code, and a completion row per guide who marked it
done. HQ reads the completion rate per item: guides who completed it over the guides the
item is for (every guide of the group: the A/B/C classes came from another branch and
are not read here yet, so an item for a class counts every guide).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, Engine, select, text

from siyu.errors import parse_document
from siyu.guides.campaigns import CODE
from siyu.guides.errors import TrainingNotFound
from siyu.guides.models import training_completions, training_items
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now


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


def complete(engine: Engine, group_id: str, guide_id: str, code: str) -> bool:
    """The guide marks the item done; True when newly recorded (again is a no-op)."""
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
            "completed_at": stored_now(),
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
    completed: int  # guides who completed it
    guides: int  # guides it is for
    done_at: datetime | None = None  # for one guide: when it completed it


_GUIDES = text("SELECT COUNT(*) FROM guides WHERE group_id = :g")
_ITEMS = text(
    "SELECT i.code, i.title_zh, i.title_en, i.url, i.body, i.for_class, i.for_task, "
    "(SELECT COUNT(*) FROM training_completions c WHERE c.group_id = i.group_id "
    "AND c.code = i.code) AS completed, "
    "(SELECT MAX(c.completed_at) FROM training_completions c WHERE c.group_id = i.group_id "
    "AND c.code = i.code AND c.guide_id = :gd) AS done_at "
    "FROM training_items i WHERE i.group_id = :g ORDER BY i.code"
)


def training_progress(
    conn: Connection, group_id: str, guide_id: str | None = None
) -> list[ItemProgress]:
    """Every item with its completion count over the group's guides; with `guide_id`, when
    that guide completed each."""
    guides = int(conn.execute(_GUIDES, {"g": group_id}).scalar_one())
    return [
        ItemProgress(
            r.code,
            r.title_zh,
            r.title_en,
            r.url,
            r.body,
            r.for_class,
            r.for_task,
            int(r.completed),
            guides,
            None if r.done_at is None else datetime.fromisoformat(str(r.done_at)[:19]),
        )
        for r in conn.execute(_ITEMS, {"g": group_id, "gd": guide_id})
    ]
