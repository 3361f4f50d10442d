"""Follow-up tasks, what the faces and jobs call: generate them from the lifecycle stages,
and move one through its states (who may, which moves are legal).

States: open -> contacted (again, to log another contact) -> done | dismissed; done and
dismissed are final. Every change is a row of `guide_task_events` in the same transaction
as the task's new state, and the state is changed by a conditional UPDATE, so two people
acting at once cannot both move a task out of a state it has already left.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, bindparam, text

from siyu.errors import ValidationError
from siyu.guides.errors import NotYourTask, TaskNotFound, TaskTransitionRefused
from siyu.guides.models import (
    CLOSED,
    CONTACTED,
    DISMISSED,
    DONE,
    HQ_TASK,
    LIVE,
    NOTE_MAX,
    OPEN,
    guide_task_events,
    guide_tasks,
)
from siyu.guides.tasks import (
    TaskPlan,
    clv_value_fen,
    cycle_of,
    days_since,
    due_on,
    expected_value_fen,
    repurchase_probability,
    to_second,
    urgency,
)
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now

# the moves a person may make, from each state
MOVES: dict[str, tuple[str, ...]] = {
    OPEN: (CONTACTED, DONE, DISMISSED),
    CONTACTED: (CONTACTED, DONE, DISMISSED),
    DONE: (),
    DISMISSED: (),
}
ACTIONS = (CONTACTED, DONE, DISMISSED)
HQ_ACTS = ("admin",)  # HQ may act on any guide's task
HQ_READS = ("admin", "analyst")


class Actor(Protocol):
    """Who acts: an authenticated principal (`auth.principal.Principal` fits)."""

    @property
    def key_id(self) -> int: ...
    @property
    def group_id(self) -> str: ...
    @property
    def guide_id(self) -> str | None: ...
    @property
    def role(self) -> str: ...


def may_read(actor: Actor, guide_id: str) -> bool:
    """A guide reads its own tasks; HQ (admin, analyst) any guide's."""
    if actor.role in HQ_READS:
        return True
    return actor.role == "guide" and actor.guide_id is not None and actor.guide_id == guide_id


def may_act(actor: Actor, guide_id: str) -> bool:
    """A guide acts on its own tasks; an HQ admin on any."""
    if actor.role in HQ_ACTS:
        return True
    return actor.role == "guide" and actor.guide_id is not None and actor.guide_id == guide_id


# --- changing a task's state -----------------------------------------------------------------


@dataclass(frozen=True)
class StateChange:
    task_id: int
    guide_id: str
    previous: str
    state: str
    at: datetime
    actor_key_id: int


_TASK = text(
    "SELECT task_id, guide_id, state FROM guide_tasks WHERE group_id = :g AND task_id = :t"
)
_MOVE = text(
    "UPDATE guide_tasks SET state = :to, updated_at = :now "
    "WHERE group_id = :g AND task_id = :t AND state IN :from"
).bindparams(bindparam("from", expanding=True))


def clean_note(note: str | None) -> str | None:
    """The note as stored: trimmed, empty is none; `ValidationError` past NOTE_MAX."""
    if note is None or not note.strip():
        return None
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise ValidationError("note", f"must be at most {NOTE_MAX} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in note):
        raise ValidationError("note", "must not hold control characters")
    return note


def change_state(
    engine: Engine, actor: Actor, task_id: int, to: str, note: str | None = None
) -> StateChange:
    """Move a task to `to` (contacted, done, dismissed) as `actor`, with an optional note.
    `TaskNotFound` (404), `NotYourTask` (403), `TaskTransitionRefused` (409, naming the
    rule); nothing is written unless the move is made."""
    if to not in ACTIONS:
        raise ValidationError("state", f"must be one of {', '.join(ACTIONS)}")
    note = clean_note(note)
    with engine.begin() as conn:
        row = conn.execute(_TASK, {"g": actor.group_id, "t": task_id}).first()
        if row is None:
            raise TaskNotFound(task_id)
        if not may_act(actor, str(row.guide_id)):
            raise NotYourTask(task_id)
        current = str(row.state)
        allowed_from = [s for s, moves in MOVES.items() if to in moves]
        if current not in allowed_from:
            raise TaskTransitionRefused(task_id, current, to, _rule(current, to))
        now = stored_now()
        moved = conn.execute(
            _MOVE, {"to": to, "now": now, "g": actor.group_id, "t": task_id, "from": [current]}
        ).rowcount
        if moved != 1:  # someone else moved it first: say what it is now
            latest = conn.execute(_TASK, {"g": actor.group_id, "t": task_id}).one()
            raise TaskTransitionRefused(task_id, str(latest.state), to, _rule(latest.state, to))
        conn.execute(
            guide_task_events.insert().values(
                group_id=actor.group_id,
                task_id=task_id,
                state=to,
                actor_key_id=actor.key_id,
                note=note,
                at=now,
            )
        )
    return StateChange(task_id, str(row.guide_id), current, to, now, actor.key_id)


def _rule(current: str, to: str) -> str:
    if current in CLOSED:
        return "done and dismissed are final"
    return f"a task that is {current} can become {', '.join(MOVES[current])}"


# --- generating tasks -----------------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    created: int  # new tasks
    closed: int  # live tasks whose member's stage moved on
    live: int  # live tasks after the run


_IN_STAGES = "SELECT member_id FROM member_stages WHERE group_id = :g AND stage IN :stages"
_CANDIDATES = text(
    "SELECT s.member_id, s.stage, s.orders, s.last_order_at FROM member_stages s "
    "JOIN members m ON m.group_id = s.group_id AND m.member_id = s.member_id "
    "WHERE s.group_id = :g AND m.status = 'active' AND s.stage IN :stages"
).bindparams(bindparam("stages", expanding=True))
# each candidate's guides, with the last time each served it (an order or an event)
_GUIDES = text(
    "SELECT x.member_id, x.guide_id, MAX(x.at) AS at FROM ("
    "SELECT member_id, guide_id, ordered_at AS at FROM orders WHERE group_id = :g "
    f"AND guide_id IS NOT NULL AND member_id IN ({_IN_STAGES}) "
    "UNION ALL SELECT member_id, guide_id, occurred_at AS at FROM events WHERE group_id = :g "
    f"AND guide_id IS NOT NULL AND member_id IN ({_IN_STAGES})"
    ") x GROUP BY x.member_id, x.guide_id"
).bindparams(bindparam("stages", expanding=True))
_SPEND = text(
    "SELECT member_id, COUNT(*) AS n, SUM(paid_fen) AS paid FROM orders WHERE group_id = :g "
    f"AND status <> 'cancelled' AND member_id IN ({_IN_STAGES}) GROUP BY member_id"
).bindparams(bindparam("stages", expanding=True))
_CLV = text(
    f"SELECT member_id, clv_fen FROM member_clv WHERE group_id = :g AND member_id IN ({_IN_STAGES})"
).bindparams(bindparam("stages", expanding=True))
# The stages' own tasks only: HQ's (kind 'hq', `guides.campaigns`, an experiment's variant)
# are not the stages' to close, whatever stage their member is in now.
_KNOWN = text(
    "SELECT task_id, member_id, kind, cycle, state, last_order_at FROM guide_tasks "
    f"WHERE group_id = :g AND kind <> '{HQ_TASK}' "
    f"AND (state IN :live OR member_id IN ({_IN_STAGES}))"
).bindparams(bindparam("stages", expanding=True), bindparam("live", expanding=True))
_LAST_ORDER = text(
    "SELECT member_id, MAX(ordered_at) AS at FROM orders WHERE group_id = :g "
    "AND status <> 'cancelled' AND member_id IN :ids GROUP BY member_id"
).bindparams(bindparam("ids", expanding=True))
_CLOSE = text(
    "UPDATE guide_tasks SET state = :to, updated_at = :now "
    "WHERE group_id = :g AND task_id = :t AND state IN :live"
).bindparams(bindparam("live", expanding=True))
# Open and contacted tasks follow the latest value and urgency (not a state change: no
# event); a task made before a member's CLV was written back must not rank as one order.
_REPRICE = text(
    "UPDATE guide_tasks SET expected_value_fen = :v, urgency = :u "
    "WHERE group_id = :g AND task_id = :t AND state IN ('open', 'contacted') "
    "AND (expected_value_fen <> :v OR urgency <> :u)"
)
_LIVE_COUNT = text(
    "SELECT COUNT(*) FROM guide_tasks WHERE group_id = :g AND state IN :live"
).bindparams(bindparam("live", expanding=True))


def generate_tasks(
    conn: Connection, group_id: str, plan: TaskPlan, now: datetime | None = None
) -> Generated:
    """Create the tasks the members' stages (`member_stages`) call for, in the caller's
    transaction: one per member, for the guide who served the member last, unless a task
    of that kind already exists for the member's current stage and last order (whatever
    its state: a closed task is not made again until the stage changes). A task is worth the
    member's CLV where the snapshot wrote one back (`member_clv`), else one order's value
    (`guides.tasks`). Live tasks whose
    member left that stage are closed by the generator (done when the member has ordered
    since, dismissed otherwise); HQ's tasks (kind 'hq') are neither made nor closed here."""
    now = now or stored_now()
    dialect_of(conn).advisory_lock(conn, "guide_tasks", group_id)
    kinds = plan.stages
    params: dict[str, Any] = {"g": group_id, "stages": list(kinds)}
    guides: dict[int, tuple[datetime, str]] = {}
    for r in conn.execute(_GUIDES, params):
        seen = (to_second(r.at), str(r.guide_id))
        guides[int(r.member_id)] = max(guides.get(int(r.member_id), seen), seen)
    spend = {int(r.member_id): (int(r.n), int(r.paid or 0)) for r in conn.execute(_SPEND, params)}
    clv = {int(r.member_id): int(r.clv_fen) for r in conn.execute(_CLV, params)}
    known = list(conn.execute(_KNOWN, {**params, "live": list(LIVE)}))
    existing = {(int(k.member_id), str(k.kind), str(k.cycle)) for k in known}
    live_ids = {
        (int(k.member_id), str(k.kind), str(k.cycle)): int(k.task_id)
        for k in known
        if k.state in LIVE
    }
    wanted: set[tuple[int, str, str]] = set()
    rows = []
    repriced = []
    for c in conn.execute(_CANDIDATES, params):
        member, stage = int(c.member_id), str(c.stage)
        last = None if c.last_order_at is None else to_second(c.last_order_at)
        key = (member, kinds[stage], cycle_of(stage, last))
        if member not in guides:
            continue  # nobody served the member: HQ's campaigns reach them, not a guide
        wanted.add(key)
        if key in existing and key not in live_ids:
            continue  # closed: not made again until the stage changes
        orders, paid = spend.get(member, (0, 0))
        if member in clv:
            value = clv_value_fen(clv[member])
        else:  # no CLV written back (the fit could not run): one order's value
            p = repurchase_probability(plan, stage, orders or int(c.orders))
            value = expected_value_fen(paid, orders, p)
        if key in live_ids:
            how_urgent = urgency(plan, stage, days_since(plan, last))
            repriced.append({"g": group_id, "t": live_ids[key], "v": value, "u": how_urgent})
            continue
        rows.append(
            {
                "group_id": group_id,
                "guide_id": guides[member][1],
                "member_id": member,
                "kind": key[1],
                "cycle": key[2],
                "stage": stage,
                "state": OPEN,
                "expected_value_fen": value,
                "urgency": urgency(plan, stage, days_since(plan, last)),
                "due_on": due_on(plan, stage, last),
                "last_order_at": last,
                "created_at": now,
                "updated_at": now,
            }
        )
    created = _insert(conn, group_id, rows, now)
    if repriced:
        conn.execute(_REPRICE, repriced)
    stale = [
        k for k in known if k.state in LIVE and (int(k.member_id), k.kind, k.cycle) not in wanted
    ]
    closed = _close(conn, group_id, stale, now)
    live = int(conn.execute(_LIVE_COUNT, {"g": group_id, "live": list(LIVE)}).scalar_one())
    return Generated(created, closed, live)


def _insert(conn: Connection, group_id: str, rows: list[dict[str, Any]], now: datetime) -> int:
    """Insert the tasks (a concurrent run's duplicates are ignored) and their first event."""
    if not rows:
        return 0
    unique = ["group_id", "guide_id", "member_id", "kind", "cycle"]
    statement = dialect_of(conn).insert_ignore(guide_tasks, unique).returning(guide_tasks.c.task_id)
    ids = [int(r.task_id) for r in conn.execute(statement, rows)]
    if ids:
        conn.execute(
            guide_task_events.insert(),
            [
                {"group_id": group_id, "task_id": t, "state": OPEN, "actor_key_id": None, "at": now}
                for t in ids
            ],
        )
    return len(ids)


def _close(conn: Connection, group_id: str, stale: Iterable[Any], now: datetime) -> int:
    stale = list(stale)
    if not stale:
        return 0
    members = sorted({int(k.member_id) for k in stale})
    last: dict[int, datetime] = {}
    for i in range(0, len(members), 1000):
        found = conn.execute(_LAST_ORDER, {"g": group_id, "ids": members[i : i + 1000]})
        last.update({int(r.member_id): to_second(r.at) for r in found})
    closed = 0
    for k in stale:
        before = None if k.last_order_at is None else to_second(k.last_order_at)
        after = last.get(int(k.member_id))
        ordered = after is not None and (before is None or after > before)
        to = DONE if ordered else DISMISSED
        params = {"to": to, "now": now, "g": group_id, "t": int(k.task_id), "live": list(LIVE)}
        if conn.execute(_CLOSE, params).rowcount == 1:
            conn.execute(
                guide_task_events.insert().values(
                    group_id=group_id, task_id=int(k.task_id), state=to, actor_key_id=None, at=now
                )
            )
            closed += 1
    return closed
