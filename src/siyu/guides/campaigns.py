"""HQ-authored tasks for guides (issue #19): HQ writes a task document (a code, a title in
zh and en, a target, a due date, a script, optionally a training item), and assigning it
makes one follow-up task per target member for the member's guide. The tasks are rows of
`guide_tasks` (kind 'hq', `campaign_code` = the code, `script`), so the guides' state
machine (`guides.service.change_state`), pages and API serve them as any task.

Targets, each read as of the assignment time `at`:

    segment             the members of a stored segment (its slug), as last evaluated
    stage               the members in a lifecycle stage (`member_stages`)
    funnel step
      carted_not_paid_24h  an add_to_cart event in the last 7 days, at least 24 h old,
                           with no order (not cancelled) since it
      one_before_knee      stage new_{knee-1}, the knee of the latest lifecycle snapshot
      birthday_this_week   a birth date (month and day) in the 7 days from `at` (29 Feb
                           counts on 28 Feb in other years)
      lapsed_vip           stage lapsed and a lifetime paid total (orders not cancelled)
                           at or above the 90th percentile of the group's buyers

Only active members are targeted. Of the members with a guide, a fixed share (the
document's `holdout_pct`, 10 by default) is held out by a hash of the code and member id:
they get no task and are the control the effect is measured against
(`experiments.guide_task_effect`).
Members without a guide are counted and reported, never compared: they differ from the
tasked ones in more than the task. Assignment is idempotent: a member the code already
targeted keeps its arm, a re-run adds only members new to the target.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, Engine, bindparam, select, text

from siyu.errors import ValidationError, parse_document
from siyu.guides.errors import TaskCampaignExists, TaskCampaignNotFound
from siyu.guides.models import (
    HQ_TASK,
    OPEN,
    guide_task_campaigns,
    guide_task_events,
    guide_task_targets,
    guide_tasks,
)
from siyu.guides.tasks import to_second
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now

FUNNEL_STEPS = ("carted_not_paid_24h", "one_before_knee", "birthday_this_week", "lapsed_vip")
STAGE_NAME = r"^(prospect|loyal|at_risk|lapsed|new_[1-9][0-9]?)$"
CODE = r"^[a-z0-9][a-z0-9_-]{0,63}$"
CART_LOOKBACK = timedelta(days=7)
CART_WAIT = timedelta(hours=24)
VIP_QUANTILE = 0.9
CHUNK = 1000


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["segment", "stage", "funnel"]
    value: str = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _known(self) -> Target:
        if self.kind == "funnel" and self.value not in FUNNEL_STEPS:
            raise ValueError(f"a funnel step is one of {', '.join(FUNNEL_STEPS)}")
        if self.kind == "stage" and not re.match(STAGE_NAME, self.value):
            raise ValueError("a stage is prospect, new_<k>, loyal, at_risk or lapsed")
        return self


class TaskDocument(BaseModel):
    """What HQ writes: validated whole before anything is stored."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=CODE)
    title_zh: str = Field(min_length=1, max_length=200)
    title_en: str = Field(min_length=1, max_length=200)
    target: Target
    due_on: date
    script: str = Field(min_length=1, max_length=2000)
    training_code: str | None = Field(default=None, pattern=CODE)
    holdout_pct: int = Field(default=10, ge=0, le=50)


def parse_task(doc: object) -> TaskDocument:
    """The document, or a `ValidationError` naming the first field and its rule."""
    return parse_document(TaskDocument, doc, "task")


def author_task(engine: Engine, group_id: str, doc: TaskDocument) -> bool:
    """Store the document; True when new. The same document again is a no-op; a different
    one under a code already used is refused (`TaskCampaignExists`): tasks carry the code."""
    row = _row(doc)
    with engine.begin() as conn:
        found = load_task(conn, group_id, doc.code, missing_ok=True)
        if found is not None:
            if found != doc:
                raise TaskCampaignExists(doc.code)
            return False
        conn.execute(
            guide_task_campaigns.insert().values(group_id=group_id, created_at=stored_now(), **row)
        )
    return True


def _row(doc: TaskDocument) -> dict[str, Any]:
    return {
        "code": doc.code,
        "title_zh": doc.title_zh,
        "title_en": doc.title_en,
        "target_kind": doc.target.kind,
        "target": doc.target.value,
        "due_on": doc.due_on,
        "script": doc.script,
        "training_code": doc.training_code,
        "holdout_pct": doc.holdout_pct,
    }


def load_task(
    conn: Connection, group_id: str, code: str, missing_ok: bool = False
) -> TaskDocument | None:
    t = guide_task_campaigns.c
    row = conn.execute(
        select(guide_task_campaigns).where(t.group_id == group_id, t.code == code)
    ).first()
    if row is None:
        if missing_ok:
            return None
        raise TaskCampaignNotFound(code)
    due = row.due_on if isinstance(row.due_on, date) else date.fromisoformat(str(row.due_on))
    return TaskDocument(
        code=row.code,
        title_zh=row.title_zh,
        title_en=row.title_en,
        target=Target(kind=row.target_kind, value=row.target),
        due_on=due,
        script=row.script,
        training_code=row.training_code,
        holdout_pct=int(row.holdout_pct),
    )


# --- who a member's guide is -------------------------------------------------------------------

_LAST_GUIDES = text(
    "SELECT x.member_id, x.guide_id, MAX(x.at) AS at FROM ("
    "SELECT member_id, guide_id, ordered_at AS at FROM orders WHERE group_id = :g "
    "AND guide_id IS NOT NULL AND member_id IN :ids "
    "UNION ALL SELECT member_id, guide_id, occurred_at AS at FROM events WHERE group_id = :g "
    "AND guide_id IS NOT NULL AND member_id IN :ids"
    ") x GROUP BY x.member_id, x.guide_id"
).bindparams(bindparam("ids", expanding=True))


_BOUND = text(
    "SELECT member_id, guide_id FROM guide_bindings WHERE group_id = :g "
    "AND ended_at IS NULL AND member_id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def guide_of_members(conn: Connection, group_id: str, member_ids: list[int]) -> dict[int, str]:
    """Each member's guide, the one place HQ tasks read it: the member's own guide where a
    live binding holds one (`guide_bindings`, 专属导购), else the guide who served the
    member last (an order or an event carrying the guide), the generated tasks' rule."""
    bound: dict[int, str] = {}
    found: dict[int, tuple[datetime, str]] = {}
    for i in range(0, len(member_ids), CHUNK):
        chunk = member_ids[i : i + CHUNK]
        for r in conn.execute(_BOUND, {"g": group_id, "ids": chunk}):
            bound[int(r.member_id)] = str(r.guide_id)
        for r in conn.execute(_LAST_GUIDES, {"g": group_id, "ids": chunk}):
            seen = (to_second(r.at), str(r.guide_id))
            found[int(r.member_id)] = max(found.get(int(r.member_id), seen), seen)
    return {**{m: guide for m, (_, guide) in found.items()}, **bound}


# --- targets -----------------------------------------------------------------------------------

_ACTIVE = "JOIN members m ON m.group_id = x.group_id AND m.member_id = x.member_id "
_IN_SEGMENT = text(
    "SELECT x.member_id FROM segment_members x JOIN segments s ON s.group_id = x.group_id "
    f"AND s.segment_id = x.segment_id {_ACTIVE}"
    "WHERE x.group_id = :g AND s.slug = :v AND m.status = 'active'"
)
_SEGMENT = text("SELECT 1 FROM segments WHERE group_id = :g AND slug = :v")
_IN_STAGE = text(
    f"SELECT x.member_id FROM member_stages x {_ACTIVE}"
    "WHERE x.group_id = :g AND x.stage = :v AND m.status = 'active'"
)
_CARTS = text(
    f"SELECT x.member_id, MAX(x.occurred_at) AS at FROM events x {_ACTIVE}"
    "WHERE x.group_id = :g AND x.type = 'add_to_cart' AND x.member_id IS NOT NULL "
    "AND m.status = 'active' AND x.occurred_at >= :since AND x.occurred_at <= :until "
    "GROUP BY x.member_id"
)
_LAST_ORDERS = text(
    "SELECT member_id, MAX(ordered_at) AS at FROM orders WHERE group_id = :g "
    "AND status <> 'cancelled' AND member_id IN :ids GROUP BY member_id"
).bindparams(bindparam("ids", expanding=True))
_BIRTHDAYS = text(
    "SELECT member_id, birth_date FROM members WHERE group_id = :g AND status = 'active' "
    "AND birth_date IS NOT NULL"
)
_PAID_TOTALS = text(
    "SELECT member_id, SUM(paid_fen) AS paid FROM orders WHERE group_id = :g "
    "AND status <> 'cancelled' AND member_id IS NOT NULL GROUP BY member_id"
)
_LIFECYCLE = text(
    "SELECT payload FROM analytics_snapshots WHERE group_id = :g AND kind = 'lifecycle' "
    "ORDER BY snapshot_id DESC LIMIT 1"
)


def target_members(conn: Connection, group_id: str, target: Target, at: datetime) -> list[int]:
    """The active members the target names as of `at`, by member id."""
    p = {"g": group_id, "v": target.value}
    if target.kind == "segment":
        if conn.execute(_SEGMENT, p).first() is None:
            raise ValidationError("target.value", f"no segment {target.value!r}")
        ids = [int(r[0]) for r in conn.execute(_IN_SEGMENT, p)]
    elif target.kind == "stage":
        ids = [int(r[0]) for r in conn.execute(_IN_STAGE, p)]
    elif target.value == "carted_not_paid_24h":
        ids = _carted_not_paid(conn, group_id, at)
    elif target.value == "one_before_knee":
        stage = Target(kind="stage", value=f"new_{_knee(conn, group_id) - 1}")
        ids = target_members(conn, group_id, stage, at)
    elif target.value == "birthday_this_week":
        ids = _birthdays(conn, group_id, at.date())
    else:
        ids = _lapsed_vips(conn, group_id)
    return sorted(set(ids))


def _carted_not_paid(conn: Connection, group_id: str, at: datetime) -> list[int]:
    p = {"g": group_id, "since": at - CART_LOOKBACK, "until": at - CART_WAIT}
    carts = {int(r.member_id): to_second(r.at) for r in conn.execute(_CARTS, p)}
    ids = sorted(carts)
    ordered: dict[int, datetime] = {}
    for i in range(0, len(ids), CHUNK):
        found = conn.execute(_LAST_ORDERS, {"g": group_id, "ids": ids[i : i + CHUNK]})
        ordered.update({int(r.member_id): to_second(r.at) for r in found})
    return [m for m, cart in carts.items() if m not in ordered or ordered[m] < cart]


def _knee(conn: Connection, group_id: str) -> int:
    row = conn.execute(_LIFECYCLE, {"g": group_id}).first()
    knee = None if row is None else json.loads(str(row.payload)).get("knee")
    if not isinstance(knee, int) or knee < 2:
        raise ValidationError(
            "target.value", "one_before_knee needs a lifecycle snapshot with a knee"
        )
    return knee


def _birthdays(conn: Connection, group_id: str, start: date) -> list[int]:
    days = {(start + timedelta(days=d)).timetuple()[1:3] for d in range(7)}
    ids = []
    for r in conn.execute(_BIRTHDAYS, {"g": group_id}):
        born = r.birth_date if isinstance(r.birth_date, date) else date.fromisoformat(str(r[1]))
        month_day = (born.month, born.day)
        if month_day == (2, 29) and not _leap(start.year) and not _leap(start.year + 1):
            month_day = (2, 28)
        if month_day in days:
            ids.append(int(r.member_id))
    return ids


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _lapsed_vips(conn: Connection, group_id: str) -> list[int]:
    totals = {
        int(r.member_id): int(r.paid or 0) for r in conn.execute(_PAID_TOTALS, {"g": group_id})
    }
    if not totals:
        return []
    threshold = float(np.quantile(np.array(list(totals.values())), VIP_QUANTILE))
    lapsed = target_members(conn, group_id, Target(kind="stage", value="lapsed"), stored_now())
    return [m for m in lapsed if totals.get(m, 0) >= threshold and totals.get(m, 0) > 0]


# --- assigning ---------------------------------------------------------------------------------


def held_out(code: str, member_id: int, holdout_pct: int) -> bool:
    """The control draw: a stable hash of the code and member, so a re-run draws alike and
    each code draws afresh (a member is not held out of every task)."""
    digest = hashlib.sha256(f"{code}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < holdout_pct


@dataclass(frozen=True)
class Assigned:
    code: str
    targeted: int  # members the target names now
    tasked: int  # tasks made by this run
    control: int  # members held out by this run
    no_guide: int  # members without a guide, this run
    already: int  # members an earlier run placed


_PLACED = text("SELECT member_id FROM guide_task_targets WHERE group_id = :g AND code = :c")
_CLV = text(
    "SELECT member_id, clv_fen FROM member_clv WHERE group_id = :g AND member_id IN :ids"
).bindparams(bindparam("ids", expanding=True))
_STAGES = text(
    "SELECT member_id, stage FROM member_stages WHERE group_id = :g AND member_id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def assign_tasks(engine: Engine, group_id: str, code: str, at: datetime | None = None) -> Assigned:
    """One task per target member for the member's guide, one transaction; see the module."""
    at = (at or stored_now()).replace(microsecond=0)
    with engine.begin() as conn:
        dialect_of(conn).advisory_lock(conn, "guide_task_campaigns", f"{group_id}:{code}")
        doc = load_task(conn, group_id, code)
        assert doc is not None
        refuse_if_given_to_members(conn, group_id, code)
        members = target_members(conn, group_id, doc.target, at)
        placed = {int(r[0]) for r in conn.execute(_PLACED, {"g": group_id, "c": code})}
        new = [m for m in members if m not in placed]
        guides = guide_of_members(conn, group_id, new)
        tasked = [m for m in new if m in guides and not held_out(code, m, doc.holdout_pct)]
        targets = place(conn, group_id, doc, new, guides, tasked, at)
        t = guide_task_campaigns.c
        conn.execute(
            guide_task_campaigns.update()
            .where(t.group_id == group_id, t.code == code, t.assigned_at.is_(None))
            .values(assigned_at=at)
        )
    arms = [r["arm"] for r in targets]
    return Assigned(
        code,
        len(members),
        arms.count("task"),
        arms.count("control"),
        arms.count("no_guide"),
        len(members) - len(new),
    )


def place(
    conn: Connection,
    group_id: str,
    doc: TaskDocument,
    new: list[int],
    guides: dict[int, str],
    tasked: list[int],
    at: datetime,
) -> list[dict[str, Any]]:
    """Make the tasks of `tasked` (members with a guide) and record every member of `new`
    (none placed by the code before) in `guide_task_targets` with its arm: task, control
    (with a guide, not tasked) or no_guide. Returns the target rows written."""
    code = doc.code
    values, stages = task_facts(conn, group_id, tasked)
    rows = [
        {
            "group_id": group_id,
            "guide_id": guides[m],
            "member_id": m,
            "kind": HQ_TASK,
            "cycle": code,
            "stage": stages.get(m, "-"),
            "state": OPEN,
            "expected_value_fen": values.get(m, 0),
            "urgency": 0,
            "due_on": doc.due_on,
            "last_order_at": None,
            "created_at": at,
            "updated_at": at,
            "campaign_code": code,
            "script": doc.script,
        }
        for m in tasked
    ]
    task_ids = insert_tasks(conn, group_id, rows, at)
    targets = []
    for m in new:
        arm = "no_guide" if m not in guides else "task" if m in task_ids else "control"
        targets.append(
            {
                "group_id": group_id,
                "code": code,
                "member_id": m,
                "arm": arm,
                "guide_id": guides.get(m),
                "task_id": task_ids.get(m),
                "assigned_at": at,
            }
        )
    if targets:
        conn.execute(guide_task_targets.insert(), targets)
    return targets


_GIVEN_TO_MEMBERS = text(
    "SELECT 1 FROM guide_task_campaigns c WHERE c.group_id = :g AND c.code = :c "
    "AND c.assigned_at IS NULL AND EXISTS (SELECT 1 FROM guide_task_targets t "
    "WHERE t.group_id = c.group_id AND t.code = c.code)"
)


def refuse_if_given_to_members(conn: Connection, group_id: str, code: str) -> None:
    """A code given to a list of members (`guides.task_members`, an experiment's variant)
    has targets but was never assigned to its own target: assigning it by its target now
    would task members outside that list (the experiment's control among them)."""
    if conn.execute(_GIVEN_TO_MEMBERS, {"g": group_id, "c": code}).first() is not None:
        raise ValidationError(
            "code",
            f"task {code} is given to an experiment's variant (its members only): it is not "
            "assigned to its target; author another task for the target",
            code,
        )


def task_facts(
    conn: Connection, group_id: str, ids: list[int]
) -> tuple[dict[int, int], dict[int, str]]:
    """Each member's CLV (the task's value, as for generated tasks) and stage."""
    values: dict[int, int] = {}
    stages: dict[int, str] = {}
    for i in range(0, len(ids), CHUNK):
        p = {"g": group_id, "ids": ids[i : i + CHUNK]}
        values.update({int(r.member_id): max(0, int(r.clv_fen)) for r in conn.execute(_CLV, p)})
        stages.update({int(r.member_id): str(r.stage) for r in conn.execute(_STAGES, p)})
    return values, stages


def insert_tasks(
    conn: Connection, group_id: str, rows: list[dict[str, Any]], at: datetime
) -> dict[int, int]:
    """Member -> task id of the tasks made, with each task's first event."""
    if not rows:
        return {}
    unique = ["group_id", "campaign_code", "member_id"]
    statement = (
        dialect_of(conn)
        .insert_ignore(guide_tasks, unique)
        .returning(guide_tasks.c.task_id, guide_tasks.c.member_id)
    )
    made = {int(r.member_id): int(r.task_id) for r in conn.execute(statement, rows)}
    if made:
        conn.execute(
            guide_task_events.insert(),
            [
                {"group_id": group_id, "task_id": t, "state": OPEN, "actor_key_id": None, "at": at}
                for t in made.values()
            ],
        )
    return made
