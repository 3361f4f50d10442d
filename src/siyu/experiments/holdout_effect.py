"""What all marketing together is worth: the group's global holdout read over months. The
members held out (`campaigns/global_holdout.py`: no campaign, no experiment arm, no
marketing message) against every other member, month by month in the brand's own months
(the messaging policy's time zone), and over the whole time since the holdout began.

The two sides are split by the holdout's hash and nothing else, so their difference is
marketing's effect on a member (intention to treat: a member counts whether or not any
campaign reached them). The months before the holdout began are shown too: there both
sides were treated alike, so a difference there is the split's noise (or a broken split),
a check the reader sees beside the effect.

- Members: live members (merged ones are their survivor's), each counted in the months from
  the one they registered in; the share held out is today's, so a member's side is the one
  they have had since `started_at` (a raise restarts it, `global_holdout.set_share`).
- Orders: every order of the member from every channel, the till included, not cancelled,
  in the month it was placed; revenue is paid less refunded, as an experiment's is
  (`results.py`); a buyer placed at least one order.
- Statistics: `stats.difference`, others against held out (the held out are the control):
  the buyer rate as a proportion, revenue per member by Welch's t, each with its 95%
  interval, absolute and relative; None where it cannot be estimated. Revenue is compared
  raw and capped (each member at the period's 99th percentile of buyers' revenue, `CAP_PER`):
  the console and CLI read the capped one, as real spend's tail needs.

One grouped statement reads every month: the members' hash and their orders are read once,
and only sums leave the database. `member_ids` names the members behind a figure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from typing import Any, Literal

from sqlalchemy import Connection, DateTime, Engine, bindparam, text

from siyu.campaigns import global_holdout
from siyu.campaigns.assignment import bucket_sql
from siyu.errors import NotFoundError, ValidationError
from siyu.experiments.send_effect import Side, difference_dict, estimated
from siyu.experiments.stats import ArmSums, Difference
from siyu.messaging import policy as policies
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now

MAX_MONTHS = 24
SINCE = "since"  # the period from the holdout's start to now
Phase = Literal["before", "started", "held"]
Figure = Literal["members", "buyers"]
FIGURES = ("members", "buyers")

_PEOPLE = """people AS {materialized} (
    SELECT m.member_id, CASE WHEN {bucket} < :share THEN 1 ELSE 0 END AS held,
           {joined} AS joined
    FROM members m WHERE m.group_id = :g AND m.status <> 'merged' AND m.registered_at < :until)"""

_REFUNDED = """(SELECT COALESCE(SUM(rf.amount_fen), 0) FROM refunds rf
                WHERE rf.group_id = o.group_id AND rf.order_id = o.order_id)"""

# Each period's cap: the 99th percentile of its buyers' revenue (both sides together),
# the (k+1)-th largest with k = 1% of the buyers, by integer division (PostgreSQL's CAST
# would round): GrowthBook's percentile capping, zeros ignored. Uncapped, real spend's
# wholesale tail made the 95% interval leave out 0 in 8.9% of A/A months on UCI Online
# Retail; capped, 6.8% (tests/experiments/test_holdout_effect_public.py)
CAP_PER = 100  # one buyer in a hundred is above the cap

# per (side, month): the members counted (registered by the month's end) and the buyers'
# orders and revenue with its sum of squares, raw and capped (members without an order
# add 0 to every sum)
_SUMS = """WITH {people},
bought AS {materialized} (
    SELECT held, month, COUNT(*) AS orders, SUM(fen) AS fen FROM (
        SELECT p.member_id, p.held, p.joined, {month} AS month,
               o.paid_fen - {refunded} AS fen
        FROM people p JOIN orders o ON o.group_id = :g AND o.member_id = p.member_id
          AND o.status <> 'cancelled' AND o.ordered_at >= :since AND o.ordered_at < :until
    ) placed WHERE month >= joined GROUP BY member_id, held, month),
ranked AS (
    SELECT month, fen, ROW_NUMBER() OVER (PARTITION BY month ORDER BY fen DESC) AS r,
           COUNT(*) OVER (PARTITION BY month) AS buyers
    FROM bought WHERE fen > 0),
caps AS (
    SELECT month, MIN(fen) AS cap FROM ranked
    WHERE r <= buyers / {cap_per} + 1 GROUP BY month),
capped AS (
    SELECT b.held, b.month, b.orders, b.fen, c.cap,
           CASE WHEN b.fen > c.cap THEN c.cap ELSE b.fen END AS kept
    FROM bought b LEFT JOIN caps c ON c.month = b.month)
SELECT 0 AS bought, held, joined AS month, COUNT(*) AS n, 0 AS orders, 0 AS fen,
       0 AS fen_squares, 0 AS kept, 0 AS kept_squares, NULL AS cap
FROM people GROUP BY held, joined
UNION ALL
SELECT 1, held, month, COUNT(*), SUM(orders), SUM(fen), SUM(CAST(fen AS FLOAT) * fen),
       SUM(kept), SUM(CAST(kept AS FLOAT) * kept), MAX(cap)
FROM capped GROUP BY held, month"""

_IDS = """WITH {people}
SELECT p.member_id FROM people p WHERE p.held = :held {buyers} ORDER BY p.member_id"""

_BOUGHT = """AND EXISTS (SELECT 1 FROM orders o WHERE o.group_id = :g
              AND o.member_id = p.member_id AND o.status <> 'cancelled'
              AND o.ordered_at >= :since AND o.ordered_at < :until)"""


@dataclass(frozen=True)
class Period:
    """One month (`label` YYYY-MM) or the time since the holdout began (`label` "since"):
    its sides and the differences, others minus held out."""

    label: str
    start: datetime  # stored UTC, [start, end)
    end: datetime
    phase: Phase  # before the holdout began, the month it began in, or held throughout
    held_out: Side
    others: Side
    buyer_rate: Difference | None
    revenue_per_member_fen: Difference | None
    # the same with each member's revenue capped at `cap_fen` (None: no buyer)
    capped_revenue_per_member_fen: Difference | None = None
    cap_fen: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.label,
            "start": self.start.replace(tzinfo=UTC),
            "end": self.end.replace(tzinfo=UTC),
            "phase": self.phase,
            "held_out": vars(self.held_out),
            "others": vars(self.others),
            "buyer_rate": _against(self.buyer_rate),
            "revenue_per_member_fen": _against(self.revenue_per_member_fen),
            "capped_revenue_per_member_fen": _against(self.capped_revenue_per_member_fen),
            "cap_fen": self.cap_fen,
        }


@dataclass(frozen=True)
class HoldoutEffect:
    share_bp: int
    started_at: datetime | None
    timezone: str
    months: list[Period]  # oldest first, the last up to `until`
    since_start: Period | None  # None: the holdout began after `until`, or never
    until: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "share_bp": self.share_bp,
            "started_at": None if self.started_at is None else self.started_at.replace(tzinfo=UTC),
            "timezone": self.timezone,
            "until": self.until.replace(tzinfo=UTC),
            "since_start": None if self.since_start is None else self.since_start.as_dict(),
            "months": [p.as_dict() for p in self.months],
        }


def _against(found: Difference | None) -> dict[str, Any] | None:
    """`send_effect`'s figures, named for this comparison (others against held out)."""
    out = difference_dict(found)
    if out is not None:
        out["others"] = out.pop("reached")
    return out


def holdout_effect(
    engine: Engine, group_id: str, months: int = 6, at: datetime | None = None
) -> HoldoutEffect | None:
    """The last `months` months (the one holding `at` up to `at`) and the time since the
    holdout began; None when nothing is held out (share 0)."""
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise ValidationError("months", f"a whole number of months, 1 to {MAX_MONTHS}", months)
    until = _until(at)
    with engine.connect() as conn:
        holdout = global_holdout.current(conn, group_id)
        if holdout.share_bp == 0:
            return None
        _, policy = policies.current(conn, group_id)
        bounds = _month_bounds(policy, until, months)
        rows = _sums(conn, group_id, holdout, bounds)
        started = holdout.started_at
        since = None
        if started is not None and started < until:
            whole = _sums(conn, group_id, holdout, [started, until])
            since = _period(SINCE, started, until, "held", whole, 0)
    out = []
    for i, (start, end) in enumerate(pairwise(bounds)):
        phase: Phase = "held"
        if started is None or end <= started:
            phase = "before"
        elif start < started:
            phase = "started"
        out.append(_period(_label(policy, start), start, end, phase, rows, i))
    return HoldoutEffect(holdout.share_bp, started, policy.timezone, out, since, until)


def member_ids(
    engine: Engine,
    group_id: str,
    period: str,
    side: Literal["held_out", "others"],
    figure: Figure,
    at: datetime | None = None,
) -> list[int]:
    """The members behind one count of the report: a side's members or buyers in `period`
    (a month YYYY-MM among the last 24, or "since")."""
    if side not in ("held_out", "others"):
        raise ValidationError("side", "held_out or others", side)
    if figure not in FIGURES:
        raise ValidationError("figure", "members or buyers", figure)
    until = _until(at)
    with engine.connect() as conn:
        holdout = global_holdout.current(conn, group_id)
        if holdout.share_bp == 0:
            raise NotFoundError("global holdout: nothing is held out")
        if period == SINCE:
            if holdout.started_at is None or holdout.started_at >= until:
                raise NotFoundError("global holdout: it has not begun")
            start, end = holdout.started_at, until
        else:
            _, policy = policies.current(conn, group_id)
            bounds = _month_bounds(policy, until, MAX_MONTHS)
            labels = {_label(policy, b): i for i, b in enumerate(bounds[:-1])}
            if period not in labels:
                raise ValidationError(
                    "period", f"a month YYYY-MM of the last {MAX_MONTHS}, or since", period
                )
            start, end = bounds[labels[period]], bounds[labels[period] + 1]
        template = _IDS.replace("{buyers}", _BOUGHT if figure == "buyers" else "")
        held = 1 if side == "held_out" else 0
        rows = _run(conn, template, holdout, [start, end], group_id, held=held)
        return [int(r.member_id) for r in rows]


def _until(at: datetime | None) -> datetime:
    """The report's end: `at`, or now. Times are stored to the second, so now is the end
    of this second: a member or an order stored in it counts."""
    return stored_now() + timedelta(seconds=1) if at is None else as_stored(at)


def _month_bounds(policy: policies.Policy, until: datetime, months: int) -> list[datetime]:
    """The starts of the last `months` local months (stored UTC), then `until`."""
    zone = policy.zone
    local = until.replace(tzinfo=UTC).astimezone(zone).date().replace(day=1)
    firsts = [local]
    for _ in range(months - 1):
        firsts.insert(0, (firsts[0].replace(day=1) - timedelta(days=1)).replace(day=1))
    return [as_stored(datetime.combine(d, time(0), tzinfo=zone)) for d in firsts] + [until]


def _label(policy: policies.Policy, start: datetime) -> str:
    return start.replace(tzinfo=UTC).astimezone(policy.zone).strftime("%Y-%m")


def _case(column: str, n: int) -> str:
    """The index of the period (0..n-1) holding `column`, by the boundaries :b1..:b<n-1>
    (before :b1 is 0, so earlier registrations count from the first period)."""
    if n == 1:
        return "CAST(0 AS INTEGER)"  # not a bare 0: GROUP BY 0 would name a column
    whens = " ".join(f"WHEN {column} < :b{i} THEN {i - 1}" for i in range(1, n))
    return f"CASE {whens} ELSE {n - 1} END"


def _run(
    conn: Connection,
    template: str,
    holdout: global_holdout.GlobalHoldout,
    bounds: list[datetime],
    group_id: str,
    **extra: Any,
) -> list[Any]:
    """`template` with its `{people}` and `{month}` for the periods between `bounds`."""
    d = dialect_of(conn)
    n = len(bounds) - 1
    people = _PEOPLE.format(
        materialized=d.materialized(),
        bucket=bucket_sql(d, "CAST(:salt AS TEXT)", "m.member_id"),
        joined=_case("m.registered_at", n),
    )
    sql = template.format(
        people=people,
        month=_case("o.ordered_at", n),
        refunded=_REFUNDED,
        materialized=d.materialized(),
        cap_per=CAP_PER,
    )
    times = [
        t for t in ("since", "until", *(f"b{i}" for i in range(1, n))) if re.search(rf":{t}\b", sql)
    ]
    query = text(sql).bindparams(*(bindparam(t, type_=DateTime()) for t in times))
    params: dict[str, Any] = {
        "g": group_id,
        "share": holdout.share_bp,
        "salt": holdout.salt,
        "since": bounds[0],
        "until": bounds[-1],
        **{f"b{i}": bounds[i] for i in range(1, n)},
        **extra,
    }
    return list(conn.execute(query, params))


def _sums(
    conn: Connection, group_id: str, holdout: global_holdout.GlobalHoldout, bounds: list[datetime]
) -> dict[tuple[int, int, int], Any]:
    rows = _run(conn, _SUMS, holdout, bounds, group_id)
    return {(int(r.bought), int(r.held), int(r.month)): r for r in rows}


def _period(
    label: str,
    start: datetime,
    end: datetime,
    phase: Phase,
    rows: dict[tuple[int, int, int], Any],
    i: int,
) -> Period:
    (held, held_sums, held_kept), (others, others_sums, others_kept) = (
        _side(rows, h, i) for h in (1, 0)
    )
    rate = revenue = capped = None
    if min(held.people, others.people) >= 2:
        rate = estimated(
            ArmSums.proportion(held.people, held.buyers),
            ArmSums.proportion(others.people, others.buyers),
        )
        revenue = estimated(held_sums, others_sums)
        capped = estimated(held_kept, others_kept)
    caps = [r.cap for (b, _, j), r in rows.items() if b == 1 and j == i and r.cap is not None]
    cap = int(max(caps)) if caps else None
    return Period(label, start, end, phase, held, others, rate, revenue, capped, cap)


def _side(
    rows: dict[tuple[int, int, int], Any], held: int, i: int
) -> tuple[Side, ArmSums, ArmSums]:
    """A side's figures in period `i` (its members are those registered by its end), and
    its revenue's sums, raw and capped."""
    members = sum(int(r.n) for (b, h, j), r in rows.items() if b == 0 and h == held and j <= i)
    r = rows.get((1, held, i))
    if r is None:
        return Side(members, 0, 0, 0), ArmSums(members, 0.0, 0.0), ArmSums(members, 0.0, 0.0)
    side = Side(members, int(r.n), int(r.orders), int(r.fen))
    raw = ArmSums(members, float(r.fen), float(r.fen_squares))
    return side, raw, ArmSums(members, float(r.kept), float(r.kept_squares))
