"""Member lists read live from the operational store: a guide's members and tasks, a
store's home members (each a group of members by one criterion, as a segment will be).
Names are shown masked in lists whatever the role (Member 360 shows more to roles that may
see it); the stage comes from `member_stages`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from siyu.guides.queries import GUIDE_MEMBER_IDS
from siyu.guides.tasks import task_stages
from siyu.store.reads import Reader, Sql

LIST_MAX = 200

_COLUMNS = """SELECT m.member_id, m.name_masked, m.home_store_id, s.stage, s.orders,
    s.last_order_at FROM members m
    LEFT JOIN member_stages s ON s.group_id = m.group_id AND s.member_id = m.member_id"""
# A guide's members by the guides domain's one rule, the scope check's too.
_OF_GUIDE = f"m.member_id IN ({GUIDE_MEMBER_IDS})"
# PostgreSQL sorts NULLs first in DESC order and SQLite last: say which.
_RECENT_FIRST = "ORDER BY (s.last_order_at IS NULL), s.last_order_at DESC, m.member_id LIMIT :n"

GUIDE_MEMBERS = Sql(
    f"{_COLUMNS} WHERE m.group_id = :g AND m.status = 'active' AND {_OF_GUIDE} {_RECENT_FIRST}"
)
GUIDE_COUNT = Sql(
    f"SELECT COUNT(*) AS n FROM members m WHERE m.group_id = :g AND m.status = 'active' "
    f"AND {_OF_GUIDE}"
)
GUIDE_TASKS = Sql(
    f"{_COLUMNS} WHERE m.group_id = :g AND m.status = 'active' AND s.stage IN :stages "
    f"AND {_OF_GUIDE} {_RECENT_FIRST}"
)
STORE_MEMBERS = Sql(
    f"{_COLUMNS} WHERE m.group_id = :g AND m.status = 'active' AND m.home_store_id = :s "
    f"{_RECENT_FIRST}"
)
STORE_COUNT = Sql(
    "SELECT COUNT(*) AS n FROM members m WHERE m.group_id = :g AND m.status = 'active' "
    "AND m.home_store_id = :s"
)


@dataclass(frozen=True)
class MemberList:
    total: int
    rows: list[Any]


async def guide_members(reader: Reader, group_id: str, guide_id: str) -> MemberList:
    params = {"g": group_id, "gd": guide_id}
    count = await reader.first(GUIDE_COUNT, params)
    rows = await reader.all(GUIDE_MEMBERS, {**params, "n": LIST_MAX})
    return MemberList(int(count.n) if count is not None else 0, rows)


async def guide_tasks(
    reader: Reader, group_id: str, guide_id: str, knee: int | None
) -> list[tuple[str, Any]]:
    """(task key, member row) for the guide's members whose stage calls for a follow-up."""
    tasks = task_stages(knee)
    rows = await reader.all(
        GUIDE_TASKS, {"g": group_id, "gd": guide_id, "stages": list(tasks), "n": LIST_MAX}
    )
    order = list(tasks)
    ranked = sorted(rows, key=lambda r: order.index(r.stage))
    return [(tasks[r.stage], r) for r in ranked]


async def store_members(reader: Reader, group_id: str, store_id: str) -> MemberList:
    params = {"g": group_id, "s": store_id}
    count = await reader.first(STORE_COUNT, params)
    rows = await reader.all(STORE_MEMBERS, {**params, "n": LIST_MAX})
    return MemberList(int(count.n) if count is not None else 0, rows)
