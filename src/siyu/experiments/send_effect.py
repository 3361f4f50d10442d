"""What a marketing send did against the group's global holdout: the people it reached
(every row the planning wrote: reachable, not held out, whatever became of the message)
against the people its planning held out (its `global_holdout` skip set: reachable too,
held out by the hash alone), over the same days from the send's due time.

Both are the people the send would have reached, split by the holdout's hash and nothing
else, so their difference is the send's effect (intention to treat: a message that failed
still counts as sent to). The orders are every order of the person, from every channel,
the till included, not only those attributed to the send by last touch (which a held-out
person cannot have). The statistics are the experiments' (`stats.difference`, Welch's t;
the buyer rate as a proportion), here rather than in messaging because experiments import
messaging, not the other way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import DateTime, Engine, Row, bindparam, text

from siyu.errors import NotFoundError, ValidationError
from siyu.experiments.stats import ArmSums, Difference, difference
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_time

# each person of either side once, with their orders in the window
_SIDES = """WITH side AS (
    SELECT DISTINCT r.person_id, 1 AS reached FROM send_recipients r
    WHERE r.group_id = :g AND r.send_id = :s
    UNION ALL
    SELECT DISTINCT {person}, 0 FROM send_skips k {entries}
    WHERE k.group_id = :g AND k.send_id = :s AND k.reason = 'global_holdout'),
spent AS (
    SELECT a.person_id, a.reached, COUNT(o.order_id) AS orders,
           COALESCE(SUM(o.paid_fen), 0) AS fen
    FROM side a LEFT JOIN orders o ON o.member_id = a.person_id AND o.group_id = :g
      AND o.status <> 'cancelled' AND o.ordered_at >= :since AND o.ordered_at < :until
    GROUP BY a.person_id, a.reached)
SELECT reached, COUNT(*) AS people, SUM(CASE WHEN orders > 0 THEN 1 ELSE 0 END) AS buyers,
       SUM(orders) AS orders, SUM(fen) AS fen, SUM(CAST(fen AS FLOAT) * fen) AS fen_squares
FROM spent GROUP BY reached"""


@dataclass(frozen=True)
class Side:
    people: int
    buyers: int
    orders: int
    revenue_fen: int


@dataclass(frozen=True)
class SendEffect:
    """The reached against the held out; the differences are reached minus held out,
    None where they cannot be estimated (no held-out buyer: nothing to divide by, or a
    side whose figure does not vary)."""

    window_days: int
    reached: Side
    held_out: Side
    buyer_rate: Difference | None
    revenue_per_person_fen: Difference | None

    def as_dict(self) -> dict[str, Any]:
        """For JSON (the API, the CLI): each side, and each difference (reached minus held
        out) with its 95% interval, absolute and relative, or None where not estimable."""
        return {
            "window_days": self.window_days,
            "reached": vars(self.reached),
            "held_out": vars(self.held_out),
            "buyer_rate": difference_dict(self.buyer_rate),
            "revenue_per_person_fen": difference_dict(self.revenue_per_person_fen),
        }


def difference_dict(found: Difference | None) -> dict[str, Any] | None:
    if found is None:
        return None
    a, r = found.absolute, found.relative
    return {
        "held_out": found.control_mean,
        "reached": found.treatment_mean,
        "difference": a.estimate,
        "ci_low": a.ci_low,
        "ci_high": a.ci_high,
        "p_value": a.p_value,
        "relative": r.estimate,
        "relative_ci_low": r.ci_low,
        "relative_ci_high": r.ci_high,
    }


def send_effect(
    engine: Engine, group_id: str, code: str, window_days: int = 7
) -> SendEffect | None:
    """The send `code` against its held-out people over `window_days` from its due time;
    None when its planning held nobody out (no global holdout, a service message) or it
    reached nobody: there is nothing to compare."""
    if not 1 <= window_days <= 90:
        raise ValidationError("window_days", "1 to 90 days", window_days)
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT send_id, due_at FROM sends WHERE group_id = :g AND code = :c"),
            {"g": group_id, "c": code},
        ).first()
        if found is None:
            raise NotFoundError(f"send: no send {code!r}")
        if found.due_at is None:
            return None  # a draft: planned by nobody yet
        since = stored_time(found.due_at)
        entries, (_, person, _) = dialect_of(conn).id_set_rows("k.members", 3)
        rows = conn.execute(
            text(_SIDES.format(person=person, entries=entries)).bindparams(
                bindparam("since", type_=DateTime()), bindparam("until", type_=DateTime())
            ),
            {
                "g": group_id,
                "s": int(found.send_id),
                "since": since,
                "until": since + timedelta(days=window_days),
            },
        ).all()
    sides = {int(r.reached): r for r in rows}
    if set(sides) != {0, 1} or min(int(r.people) for r in rows) < 2:
        return None
    held, reached = sides[0], sides[1]
    return SendEffect(
        window_days,
        _side(reached),
        _side(held),
        estimated(
            ArmSums.proportion(int(held.people), int(held.buyers)),
            ArmSums.proportion(int(reached.people), int(reached.buyers)),
        ),
        estimated(_revenue(held), _revenue(reached)),
    )


def estimated(held_out: ArmSums, reached: ArmSums) -> Difference | None:
    try:
        return difference(held_out, reached)
    except ValidationError:  # no variance, or a held-out mean of 0
        return None


def _side(r: Row[Any]) -> Side:
    return Side(int(r.people), int(r.buyers), int(r.orders), int(r.fen))


def _revenue(r: Row[Any]) -> ArmSums:
    return ArmSums(int(r.people), float(r.fen), float(r.fen_squares))
