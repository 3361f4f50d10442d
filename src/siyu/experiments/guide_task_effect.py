"""What an HQ task achieved (issue #19): completion, and the effect on the tasked members'
orders and revenue against the held-out control (`guides.campaigns`).

    completion   per code: assigned, open, contacted, done, dismissed, overdue (a live
                 task past its due date), and members without a guide
    window       from the first assignment to the end of the due date (or `now`, if
                 sooner); orders not cancelled, `paid_fen` as revenue
    effect       revenue per member and orders per member, tasked arm (every member
                 given a task, whatever the guide did: intention to treat) against the
                 control arm (hash-held-out members with a guide), Welch's interval on
                 the arms' sums (`experiments.stats.difference`)

The control is drawn from the same target and the same guides' members, so the two arms
differ only by the task; comparing with members without a guide would measure having a
guide as much as the task. Where the comparison cannot be made (an arm under 2 members, a
metric that does not vary) `effect` is None and `why` says so.

It lives with the experiments (not in `guides`) because experiments already read the
guides' tasks: the folders stay acyclic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, text

from siyu.errors import ValidationError
from siyu.experiments.stats import ArmSums, Difference, difference
from siyu.guides.campaigns import TaskDocument, load_task
from siyu.guides.tasks import to_second
from siyu.store.times import stored_now

_STATES = text(
    "SELECT state, due_on, COUNT(*) AS n FROM guide_tasks WHERE group_id = :g "
    "AND campaign_code = :c GROUP BY state, due_on"
)
_ARMS = text(
    "SELECT arm, COUNT(*) AS n, MIN(assigned_at) AS first FROM guide_task_targets "
    "WHERE group_id = :g AND code = :c GROUP BY arm"
)
# each member of an arm with its orders and revenue in the window (zero rows included)
_OUTCOMES = text(
    "SELECT t.arm, t.member_id, COUNT(o.order_id) AS orders, "
    "COALESCE(SUM(o.paid_fen), 0) AS paid FROM guide_task_targets t "
    "LEFT JOIN orders o ON o.group_id = t.group_id AND o.member_id = t.member_id "
    "AND o.status <> 'cancelled' AND o.ordered_at >= :start AND o.ordered_at < :end "
    "WHERE t.group_id = :g AND t.code = :c AND t.arm IN ('task', 'control') "
    "GROUP BY t.arm, t.member_id"
)


@dataclass(frozen=True)
class ArmOutcome:
    members: int
    orders: int
    revenue_fen: int


@dataclass(frozen=True)
class TaskReport:
    code: str
    document: TaskDocument
    completion: dict[str, int]  # assigned, open, contacted, done, dismissed, overdue
    no_guide: int
    control: int
    window: tuple[datetime, datetime] | None
    arms: dict[str, ArmOutcome] = field(default_factory=dict)  # task, control
    revenue: Difference | None = None  # revenue per member, task - control
    orders: Difference | None = None  # orders per member
    why: str | None = None  # why an effect is missing


def task_report(
    engine: Engine, group_id: str, code: str, now: datetime | None = None
) -> TaskReport:
    now = now or stored_now()
    params = {"g": group_id, "c": code}
    with engine.connect() as conn:
        doc = load_task(conn, group_id, code)
        assert doc is not None
        completion = {k: 0 for k in ("assigned", "open", "contacted", "done", "dismissed")}
        completion["overdue"] = 0
        for r in conn.execute(_STATES, params):
            n = int(r.n)
            completion["assigned"] += n
            completion[str(r.state)] += n
            due = r.due_on if not isinstance(r.due_on, str) else datetime.fromisoformat(r.due_on)
            if str(r.state) in ("open", "contacted") and str(due)[:10] < now.date().isoformat():
                completion["overdue"] += n
        arms = {str(r.arm): (int(r.n), r.first) for r in conn.execute(_ARMS, params)}
        first = [to_second(f) for _, f in arms.values() if f is not None]
        report = TaskReport(
            code,
            doc,
            completion,
            arms.get("no_guide", (0, None))[0],
            arms.get("control", (0, None))[0],
            None,
        )
        if not first:
            return _missing(report, "not assigned yet")
        start = min(first)
        end = min(datetime.combine(doc.due_on + timedelta(days=1), datetime.min.time()), now)
        if end <= start:
            return _missing(report, "the window has not begun", (start, start))
        values: dict[str, list[tuple[int, int]]] = {"task": [], "control": []}
        outcomes = conn.execute(_OUTCOMES, {**params, "start": start, "end": end})
        for r in outcomes:
            values[str(r.arm)].append((int(r.orders), int(r.paid)))
    outcome = {
        arm: ArmOutcome(len(v), sum(o for o, _ in v), sum(p for _, p in v))
        for arm, v in values.items()
    }
    base = TaskReport(**{**report.__dict__, "window": (start, end), "arms": outcome})
    try:
        revenue = difference(_sums(values["control"], 1), _sums(values["task"], 1))
        orders = difference(_sums(values["control"], 0), _sums(values["task"], 0))
    except ValidationError as exc:
        return TaskReport(**{**base.__dict__, "why": f"{exc.field}: {exc.rule}"})
    return TaskReport(**{**base.__dict__, "revenue": revenue, "orders": orders})


def _sums(rows: list[tuple[int, int]], column: int) -> ArmSums:
    xs = [float(r[column]) for r in rows]
    return ArmSums(len(xs), sum(xs), sum(x * x for x in xs))


def _missing(
    report: TaskReport, why: str, window: tuple[datetime, datetime] | None = None
) -> TaskReport:
    return TaskReport(**{**report.__dict__, "window": window, "why": why})


FIGURES = ("assigned", "open", "contacted", "done", "dismissed", "overdue", "control", "no_guide")
_CODES = text(
    "SELECT code FROM guide_task_campaigns WHERE group_id = :g ORDER BY created_at DESC, code"
)
_TASKED = (
    "SELECT member_id FROM guide_tasks WHERE group_id = :g AND campaign_code = :c "
    "AND state IN :states"
)


def task_codes(engine: Engine, group_id: str) -> list[str]:
    with engine.connect() as conn:
        return [str(r[0]) for r in conn.execute(_CODES, {"g": group_id})]


def figure_members(
    engine: Engine, group_id: str, code: str, figure: str, now: datetime | None = None
) -> list[int]:
    """The members behind one count of the report (a state, overdue, the control, members
    without a guide), for the console's member list."""
    from sqlalchemy import bindparam

    p: dict[str, object] = {"g": group_id, "c": code}
    if figure in ("control", "no_guide"):
        sql = text(
            "SELECT member_id FROM guide_task_targets WHERE group_id = :g AND code = :c "
            "AND arm = :a"
        )
        p["a"] = figure
    else:
        states = {
            "assigned": ["open", "contacted", "done", "dismissed"],
            "overdue": ["open", "contacted"],
        }.get(figure, [figure])
        extra = " AND due_on < :today" if figure == "overdue" else ""
        sql = text(_TASKED + extra).bindparams(bindparam("states", expanding=True))
        p["states"] = states
        if figure == "overdue":
            p["today"] = (now or stored_now()).date()
    with engine.connect() as conn:
        return sorted(int(r[0]) for r in conn.execute(sql, p))
