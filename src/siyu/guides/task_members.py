"""An HQ task given to a list of members rather than to its target: an experiment's
`guide_task` variant (`experiments/deliver.py`) names a task code, and the variant's
members, they and only they, get the task for their guide (`guide_of_members`: the own
guide bound, else the one who served them last).

The rows are those `assign_tasks` writes (a `guide_tasks` row of kind 'hq' per member with
a guide, every member in `guide_task_targets`), with two differences:
- no hash-held-out control: the experiment's own control variant is the comparison, so a
  member with a guide is always tasked (the document's `holdout_pct` is not drawn);
- the document's `assigned_at` stays NULL: it records an assignment to the task's own
  target. Targets with no such assignment is how the guides domain knows the code was
  given to a list, and `assign_tasks` then refuses it (a target assignment would task
  members outside the list, the experiment's control among them); likewise a code
  assigned to its target is refused here.

Idempotent: a member the code placed before keeps its arm (a member who had no guide then
stays without the task), so a second start of the experiment makes nothing twice. Each
chunk is one transaction under the same advisory lock as `assign_tasks`, so the two never
interleave on PostgreSQL (SQLite serialises writers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, text

from siyu.errors import ValidationError
from siyu.guides.campaigns import (
    CHUNK,
    guide_of_members,
    load_task,
    place,
)
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now


@dataclass(frozen=True)
class Given:
    code: str
    tasked_now: int  # tasks made by this call
    tasked: int  # the members given holding the task (made now or before)
    no_guide: int  # the members given whom no guide serves: no task (now or before)


_ASSIGNED_AT = text(
    "SELECT assigned_at FROM guide_task_campaigns WHERE group_id = :g AND code = :c"
)
_ARMS = text(
    "SELECT member_id, arm FROM guide_task_targets WHERE group_id = :g AND code = :c "
    "AND member_id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def assigned_to_target(conn: Connection, group_id: str, code: str) -> datetime | None:
    """When the code was first assigned to its own target (None: never)."""
    row = conn.execute(_ASSIGNED_AT, {"g": group_id, "c": code}).first()
    return None if row is None or row.assigned_at is None else row.assigned_at


def give_task(
    engine: Engine,
    group_id: str,
    code: str,
    members: list[int],
    at: datetime | None = None,
) -> Given:
    """Give the task `code` to each of `members` through its guide, once (see the module).
    `TaskCampaignNotFound` (404) for an unknown code; `ValidationError` (422, `code`) when
    the code was assigned to its own target."""
    at = (at or stored_now()).replace(microsecond=0)
    made = tasked = no_guide = 0
    for i in range(0, max(len(members), 1), CHUNK):
        chunk = sorted(set(members[i : i + CHUNK]))
        with engine.begin() as conn:
            dialect_of(conn).advisory_lock(conn, "guide_task_campaigns", f"{group_id}:{code}")
            doc = load_task(conn, group_id, code)
            assert doc is not None
            since = assigned_to_target(conn, group_id, code)
            if since is not None:
                raise ValidationError(
                    "code",
                    f"task {code} was assigned to its target on {str(since)[:10]}: given to a "
                    "list too, it would mix the two; author another task for the list",
                    code,
                )
            if not chunk:
                continue
            p = {"g": group_id, "c": code, "ids": chunk}
            placed = {int(r.member_id) for r in conn.execute(_ARMS, p)}
            new = [m for m in chunk if m not in placed]
            guides = guide_of_members(conn, group_id, new)
            written = place(conn, group_id, doc, new, guides, [m for m in new if m in guides], at)
            made += sum(1 for r in written if r["arm"] == "task")
            arms = [str(r.arm) for r in conn.execute(_ARMS, p)]
        tasked += arms.count("task")
        no_guide += arms.count("no_guide")
    return Given(code, made, tasked, no_guide)
