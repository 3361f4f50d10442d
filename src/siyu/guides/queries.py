"""The guides' reads. Guide attribution, the one rule: a guide's members are those the
guide sold to or served, that is, members with an order or an event carrying the guide,
and the members bound to it now (its own members, `guides.binding`).

The scope check (`auth.scope`) asks it of one member, the console's guide lists of every
member; both are written from `_ATTRIBUTING` so the rule cannot drift between them.

Follow-up tasks (`task_page`, `task_card`): ranked by expected value then urgency, each
with its history (who changed it and when), for the console and the API alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from siyu.guides.tasks import to_second
from siyu.store.reads import Reader, Sql

# The facts that carry a guide: each has group_id, member_id and guide_id.
_ATTRIBUTING = ("orders", "events")

# Each as (table, condition): a binding makes a member the guide's only while it is live.
_SOURCES = (*((t, "") for t in _ATTRIBUTING), ("guide_bindings", " AND x.ended_at IS NULL"))

# Parameters :g (group) and :gd (guide): the members of the guide, as a subquery.
GUIDE_MEMBER_IDS = "\n    UNION ".join(
    f"SELECT x.member_id FROM {table} x WHERE x.group_id = :g AND x.guide_id = :gd{live}"
    for table, live in _SOURCES
)
# Parameters :g, :gd and :m: one row when member :m is the guide's (stops at the first fact).
IS_GUIDE_MEMBER = Sql(
    "\n    UNION ALL ".join(
        f"SELECT 1 FROM {table} x WHERE x.group_id = :g AND x.member_id = :m "
        f"AND x.guide_id = :gd{live}"
        for table, live in _SOURCES
    )
    + "\n    LIMIT 1"
)


async def is_guide_member(
    reader: Reader, group_id: str, guide_id: str | None, member_id: int
) -> bool:
    """Whether the guide sold to or served the member (an order or an event carries it)."""
    row = await reader.first(IS_GUIDE_MEMBER, {"m": member_id, "g": group_id, "gd": guide_id})
    return row is not None


# --- follow-up tasks ------------------------------------------------------------------------

_TASKS_FROM = """FROM guide_tasks t
    LEFT JOIN members m ON m.group_id = t.group_id AND m.member_id = t.member_id
    WHERE t.group_id = :g AND t.state IN :states"""
_TASK_COLUMNS = """SELECT t.task_id, t.guide_id, t.member_id, t.kind, t.stage, t.state,
    t.expected_value_fen, t.urgency, t.due_on, t.last_order_at, t.created_at, t.updated_at,
    t.campaign_code, t.script, m.name_masked"""
# ranked: by expected value, then urgency; the id keeps the order stable
_RANK = "ORDER BY t.expected_value_fen DESC, t.urgency DESC, t.task_id LIMIT :n OFFSET :o"
TASKS = Sql(f"{_TASK_COLUMNS} {_TASKS_FROM} {_RANK}")
TASKS_OF_GUIDE = Sql(f"{_TASK_COLUMNS} {_TASKS_FROM} AND t.guide_id = :gd {_RANK}")
COUNT_TASKS = Sql(f"SELECT COUNT(*) AS n {_TASKS_FROM}")
COUNT_TASKS_OF_GUIDE = Sql(f"SELECT COUNT(*) AS n {_TASKS_FROM} AND t.guide_id = :gd")
TASK = Sql(
    f"{_TASK_COLUMNS} FROM guide_tasks t LEFT JOIN members m ON m.group_id = "
    "t.group_id AND m.member_id = t.member_id WHERE t.group_id = :g AND t.task_id = :t"
)
# who changed what and when: the key's role beside its id (the generator has no key)
TASK_EVENTS = Sql("""SELECT e.task_id, e.state, e.actor_key_id, e.note, e.at, k.role
    FROM guide_task_events e LEFT JOIN api_keys k ON k.key_id = e.actor_key_id
    WHERE e.group_id = :g AND e.task_id IN :ids ORDER BY e.task_id, e.event_id""")


@dataclass(frozen=True)
class TaskEvent:
    state: str
    actor_key_id: int | None  # None: the generator
    actor_role: str | None
    note: str | None  # None unless the reader may see notes
    at: datetime


@dataclass(frozen=True)
class TaskCard:
    task_id: int
    guide_id: str
    member_id: int
    name_masked: str | None
    kind: str
    stage: str
    state: str
    expected_value_fen: int
    urgency: int
    due_on: date
    last_order_at: datetime | None
    created_at: datetime
    updated_at: datetime
    history: list[TaskEvent] = field(default_factory=list)
    campaign_code: str | None = None  # an HQ task's code (guides.campaigns)
    script: str | None = None  # what HQ suggests the guide says


@dataclass(frozen=True)
class TaskPage:
    total: int
    tasks: list[TaskCard]


async def task_page(
    reader: Reader,
    group_id: str,
    guide_id: str | None,
    states: Sequence[str],
    limit: int,
    offset: int = 0,
    notes: bool = True,
) -> TaskPage:
    """Tasks in `states`, ranked by expected value then urgency, of one guide (or every
    guide's when `guide_id` is None, for HQ), each with its history; notes only when
    `notes` (the reader's role may see personal data)."""
    params: dict[str, Any] = {"g": group_id, "states": list(states), "n": limit, "o": offset}
    if guide_id is None:
        total, rows = COUNT_TASKS, TASKS
    else:
        params["gd"] = guide_id
        total, rows = COUNT_TASKS_OF_GUIDE, TASKS_OF_GUIDE
    counted = await reader.first(total, params)
    found = await reader.all(rows, params)
    return TaskPage(
        int(counted.n) if counted else 0, await _with_history(reader, group_id, found, notes)
    )


async def task_card(
    reader: Reader, group_id: str, task_id: int, notes: bool = True
) -> TaskCard | None:
    row = await reader.first(TASK, {"g": group_id, "t": task_id})
    if row is None:
        return None
    return (await _with_history(reader, group_id, [row], notes))[0]


async def _with_history(
    reader: Reader, group_id: str, rows: list[Any], notes: bool
) -> list[TaskCard]:
    history: dict[int, list[TaskEvent]] = {}
    if rows:
        ids = [int(r.task_id) for r in rows]
        for e in await reader.all(TASK_EVENTS, {"g": group_id, "ids": ids}):
            history.setdefault(int(e.task_id), []).append(
                TaskEvent(
                    state=str(e.state),
                    actor_key_id=None if e.actor_key_id is None else int(e.actor_key_id),
                    actor_role=e.role,
                    note=e.note if notes else None,
                    at=to_second(e.at),
                )
            )
    return [
        TaskCard(
            task_id=int(r.task_id),
            guide_id=str(r.guide_id),
            member_id=int(r.member_id),
            name_masked=r.name_masked,
            kind=str(r.kind),
            stage=str(r.stage),
            state=str(r.state),
            expected_value_fen=int(r.expected_value_fen),
            urgency=int(r.urgency),
            due_on=r.due_on if isinstance(r.due_on, date) else date.fromisoformat(str(r.due_on)),
            last_order_at=None if r.last_order_at is None else to_second(r.last_order_at),
            created_at=to_second(r.created_at),
            updated_at=to_second(r.updated_at),
            history=history.get(int(r.task_id), []),
            campaign_code=r.campaign_code,
            script=r.script,
        )
        for r in rows
    ]
