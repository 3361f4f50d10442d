"""What an experiment shows: each variant against the control, per metric, with the lift's
interval (Welch), the CUPED-adjusted lift, the always-valid (sequential) lift, and the
sample-ratio check; overall and by the stage members were in when assigned.

Outcomes are read per member over `window_days` from the member's assignment (or, with
`anchor="exposure"`, from the first exposure, exposed members only), up to `at`. The
first exposure is derived (`exposure.py`): the earliest of an exposure logged and the
delivery of the member's treatment (coupon issued, message sent, campaign incentive
granted, guide task marked contacted or done), before `at`. The control is delivered
nothing, so it counts only the exposures logged for it: an exposure-anchored reading is
per protocol, and says so (`exposure_note`); `exposed` counts each variant's exposed
members whatever the anchor. Orders
come from every channel (the orders table holds the till's and the online ones); a
cancelled order is no purchase, refunds are taken off the order they refund, as a
campaign's report does. A merged member's orders are the survivor's (OneID moves them),
and absorbed members' rows are left out (`identity/experiment_follow.py`).

- `revenue_fen`: paid − refunded over the window, in fen;
- `repurchase`: 1 if an order in the window was kept (paid more than refunded);
- `next_order`: 1 if the member's order count moved within the window, the knee's own
  metric: any order not cancelled, counted as the lifecycle stages count orders
  (`analytics/stages.py`), whatever its refunds;
- `coupon_redemption`: 1 if the member redeemed a coupon the experiment gave by `at`: its
  own (`campaign = experiment:<code>`, a `coupon` variant's), or, for a member of a
  `campaign` variant, one of that campaign's; 0 for every member of a variant that gave
  none;
- `unsubscribe`: 1 if the member withdrew marketing consent (on any channel, a
  `consent_events` withdrawal) within the window, up to `at`. Withdrawals are the
  person's, as consent is: those said through a member OneID merged into this one count
  (merges followed along chains, as messaging finds a person), and a grant said later
  does not undo that the member withdrew.

The per-member values never leave the database for the figures: one grouped query gives
each (variant, stage) its members, sums, sums of squares, and the pre-period spend's sums
and cross-products (CUPED's covariate, over `pre_period_days` before the anchor); a
variant's whole-experiment sums are the sums over its stages. `experiments.stats` turns
them into estimates; a comparison it cannot make (an arm under 2 members, a metric that
does not vary) carries its reason as `note`. `members(...)` names the members behind a
figure from the same per-member query.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, text

from siyu.errors import ValidationError
from siyu.experiments import exposure, stats
from siyu.experiments.deliver import coupon_campaign
from siyu.experiments.plan import Stored, load
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now

METRICS = ("revenue_fen", "repurchase", "next_order", "coupon_redemption", "unsubscribe")
BINARY = frozenset(METRICS[1:])
Metric = Literal["revenue_fen", "repurchase", "next_order", "coupon_redemption", "unsubscribe"]
Anchor = Literal["assignment", "exposure"]
DAY = 86_400
# metric -> why it is not measured (none today; the results carry the mapping for clients)
NOT_MEASURED: dict[str, str] = {}
# the column of the per-member query holding each metric
_COLUMN = {
    "revenue_fen": "revenue",
    "repurchase": "repurchase",
    "next_order": "next_order",
    "coupon_redemption": "coupon",
    "unsubscribe": "unsubscribe",
}

# Each marketing consent withdrawal and the person it belongs to now: the member it was
# said through, or the member that one is merged into, followed along chains (A into B,
# B into C), as `messaging.plan` finds a person. Withdrawals are few beside orders.
_WITHDRAWALS = """WITH RECURSIVE {exposure}chain (member_id, person_id, depth) AS (
    SELECT member_id, merged_into, 1 FROM members WHERE group_id = :g AND status = 'merged'
    UNION ALL
    SELECT c.member_id, m.merged_into, c.depth + 1 FROM chain c
    JOIN members m ON m.member_id = c.person_id AND m.status = 'merged' WHERE c.depth < 32
),
roots AS (SELECT c.member_id, c.person_id FROM chain c
          JOIN members p ON p.member_id = c.person_id AND p.status <> 'merged'),
withdrawals AS (SELECT COALESCE(r.person_id, ce.member_id) AS person_id, ce.at
                FROM consent_events ce LEFT JOIN roots r ON r.member_id = ce.member_id
                WHERE ce.group_id = :g AND ce.purpose = 'marketing'
                  AND ce.action = 'withdraw'),
-- the experiment's members who withdrew within their window, computed once: withdrawals
-- are joined to the members they belong to by the key, not looked up per member and order
quit AS {materialized} (SELECT DISTINCT qm.member_id FROM withdrawals w
         JOIN experiment_members qm ON qm.group_id = :g AND qm.experiment_id = :e
           AND qm.member_id = w.person_id{shown}
         WHERE {said} >= {t0} AND {said} < {t0} + :window AND {said} < :until)"""


def _member_rows(conn: Connection, anchor: Anchor, campaigns: int) -> str:
    """One row per live member: its variant, stage and metrics, and its pre-period spend.
    Written as one pass of the member's orders (index on orders.member_id), refunds and
    redemptions looked up per order and per member by their indexes, so no plan has to
    re-run an aggregate per member, whatever the statistics say. `campaigns`: how many
    campaign variants the plan has (their pairs are parameters :cv<i>, :cc<i>)."""
    d = dialect_of(conn)
    t0 = d.epoch_seconds("ex.exposed_at" if anchor == "exposure" else "em.assigned_at")
    # from exposure: the exposed members only, from their first exposure (`exposure.py`)
    exposed = "JOIN exposure ex ON ex.member_id = em.member_id" if anchor == "exposure" else ""
    at = d.epoch_seconds("o.ordered_at")
    refunded = """(SELECT COALESCE(SUM(rf.amount_fen), 0) FROM refunds rf
                   WHERE rf.group_id = o.group_id AND rf.order_id = o.order_id)"""
    post = f"{at} >= {t0}"
    given = "".join(f" OR (em.variant = :cv{i} AND cp.campaign = :cc{i})" for i in range(campaigns))
    return f"""
    SELECT em.member_id, em.variant, em.stage,
           COALESCE(SUM(CASE WHEN {post} THEN o.paid_fen - {refunded} END), 0) AS revenue,
           COALESCE(SUM(CASE WHEN {at} < {t0} THEN o.paid_fen - {refunded} END), 0) AS pre,
           MAX(CASE WHEN {post} AND o.paid_fen > {refunded} THEN 1 ELSE 0 END) AS repurchase,
           MAX(CASE WHEN {post} THEN 1 ELSE 0 END) AS next_order,
           MAX(CASE WHEN EXISTS (
                 SELECT 1 FROM coupons cp WHERE cp.group_id = em.group_id
                   AND cp.member_id = em.member_id AND cp.status = 'redeemed'
                   AND (cp.campaign = :campaign{given})) THEN 1 ELSE 0 END) AS coupon,
           MAX(CASE WHEN q.member_id IS NULL THEN 0 ELSE 1 END) AS unsubscribe
    FROM experiment_members em {exposed}
    LEFT JOIN quit q ON q.member_id = em.member_id
    LEFT JOIN orders o ON o.group_id = em.group_id AND o.member_id = em.member_id
      AND o.status <> 'cancelled' AND {at} >= {t0} - :pre AND {at} < {t0} + :window
      AND {at} < :until
    WHERE em.group_id = :g AND em.experiment_id = :e AND em.merged_into IS NULL
    GROUP BY em.member_id, em.variant, em.stage"""


def _ctes(conn: Connection, stored: Stored, anchor: Anchor) -> str:
    d = dialect_of(conn)
    if anchor == "exposure":  # each member's first exposure, derived (`exposure.py`)
        column, shown = (
            "qx.exposed_at",
            "\n         JOIN exposure qx ON qx.member_id = qm.member_id",
        )
        derived = f"{exposure.ctes(conn, stored)},\n"
    else:
        column, shown, derived = "qm.assigned_at", "", ""
    return _WITHDRAWALS.format(
        exposure=derived,
        shown=shown,
        said=d.epoch_seconds("w.at"),
        t0=d.epoch_seconds(column),
        materialized=d.materialized(),
    )


def _per_member(conn: Connection, stored: Stored, anchor: Anchor) -> str:
    campaigns = len(_campaigns(stored))
    return f"{_ctes(conn, stored, anchor)}\n{_member_rows(conn, anchor, campaigns)}"


def _sums_query(conn: Connection, stored: Stored, anchor: Anchor) -> str:
    campaigns = len(_campaigns(stored))
    f = "CAST({} AS FLOAT)"
    parts = [
        "COUNT(*) AS n",
        f"SUM({f.format('pre')}) AS pre_sum",
        f"SUM({f.format('pre')} * pre) AS pre_squares",
    ]
    for metric, col in _COLUMN.items():
        parts += [
            f"SUM({f.format(col)}) AS {metric}_sum",
            f"SUM({f.format(col)} * {col}) AS {metric}_squares",
            f"SUM({f.format(col)} * pre) AS {metric}_products",
        ]
    return f"""{_ctes(conn, stored, anchor)}
               SELECT variant, stage, {", ".join(parts)}
               FROM ({_member_rows(conn, anchor, campaigns)}) pm GROUP BY variant, stage"""


@dataclass(frozen=True)
class Sums:
    """One arm's sums of every metric (and of the pre-period spend), straight from SQL."""

    n: int
    pre: tuple[float, float]  # sum, sum of squares
    metrics: dict[str, tuple[float, float, float]]  # metric -> sum, squares, products

    def __add__(self, other: Sums) -> Sums:
        return Sums(
            self.n + other.n,
            (self.pre[0] + other.pre[0], self.pre[1] + other.pre[1]),
            {
                m: tuple(a + b for a, b in zip(v, other.metrics[m], strict=True))  # type: ignore[misc]
                for m, v in self.metrics.items()
            },
        )

    def arm(self, metric: str) -> stats.ArmSums:
        total, squares, _ = self.metrics[metric]
        if metric in BINARY:
            return stats.ArmSums.proportion(self.n, round(total))
        return stats.ArmSums(self.n, total, squares)

    def cuped(self, metric: str) -> stats.CupedSums:
        return stats.CupedSums(
            self.arm(metric), stats.ArmSums(self.n, *self.pre), self.metrics[metric][2]
        )


EMPTY = Sums(0, (0.0, 0.0), {m: (0.0, 0.0, 0.0) for m in METRICS})


@dataclass
class Comparison:
    variant: str
    metric: str
    control_mean: float | None
    treatment_mean: float | None
    difference: stats.Difference | None = None
    cuped: stats.Difference | None = None
    sequential: stats.Difference | None = None
    note: str | None = None


@dataclass
class Breakdown:
    """The figures of one group of members: all of them (`stage` None) or one stage."""

    stage: str | None
    counts: dict[str, int]
    srm: stats.SrmCheck | None
    comparisons: list[Comparison] = field(default_factory=list)
    note: str | None = None


@dataclass
class Results:
    code: str
    status: str
    anchor: str
    window_days: int
    pre_period_days: int
    control: str
    until: datetime
    overall: Breakdown
    stages: list[Breakdown] = field(default_factory=list)
    not_measured: dict[str, str] = field(default_factory=lambda: dict(NOT_MEASURED))
    # live members per variant exposed by `until`, whatever the anchor (`exposure.py`)
    exposed: dict[str, int] = field(default_factory=dict)
    # what an exposure-anchored reading compares (None from assignment)
    exposure_note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def arm_sums(
    engine: Engine,
    group_id: str,
    code: str,
    anchor: Anchor = "assignment",
    at: datetime | None = None,
) -> dict[tuple[str, str | None], Sums]:
    """Each (variant, stage at assignment)'s sums, from one grouped query."""
    with engine.connect() as conn:
        stored = load(conn, group_id, code)
        rows = conn.execute(
            text(_sums_query(conn, stored, anchor)),
            _params(stored, group_id, code, at),
        ).mappings()
        out: dict[tuple[str, str | None], Sums] = {}
        for r in rows:
            out[(str(r["variant"]), r["stage"])] = Sums(
                int(r["n"]),
                (float(r["pre_sum"] or 0), float(r["pre_squares"] or 0)),
                {
                    m: (
                        float(r[f"{m}_sum"] or 0),
                        float(r[f"{m}_squares"] or 0),
                        float(r[f"{m}_products"] or 0),
                    )
                    for m in METRICS
                },
            )
    return out


def results(
    engine: Engine,
    group_id: str,
    code: str,
    anchor: Anchor = "assignment",
    at: datetime | None = None,
    alpha: float = 0.05,
) -> Results:
    """Every variant against the control, per metric, overall and by stage at assignment."""
    _check_anchor(anchor)
    with engine.connect() as conn:
        stored = load(conn, group_id, code)
    sums = arm_sums(engine, group_id, code, anchor, at)
    plan = stored.plan
    overall: dict[str, Sums] = {}
    by_stage: dict[str | None, dict[str, Sums]] = {}
    for (variant, stage), s in sums.items():
        overall[variant] = overall.get(variant, EMPTY) + s
        by_stage.setdefault(stage, {})[variant] = s
    out = Results(
        code,
        stored.status,
        anchor,
        plan.window_days,
        plan.pre_period_days,
        plan.control.name,
        _until(at),
        _breakdown(stored, None, overall, alpha),
    )
    stages = sorted(by_stage, key=lambda s: (s is None, s or ""))
    out.stages = [_breakdown(stored, s, by_stage[s], alpha) for s in stages]
    out.exposed = exposure.counts(engine, group_id, code, out.until)
    if anchor == "exposure":
        out.exposure_note = _exposure_note(stored, out.exposed)
    return out


PER_PROTOCOL = (
    "from exposure, per protocol: a treated member counts from its first exposure, the "
    "delivery of its treatment (coupon issued, message sent, campaign incentive granted, "
    "guide task contacted) or an exposure logged, and members the treatment did not reach "
    "are left out; the control counts only the exposures logged for it. Read from "
    "assignment for the effect of offering the treatment"
)


def _exposure_note(stored: Stored, exposed: dict[str, int]) -> str:
    control = stored.plan.control.name
    if exposed.get(control, 0) == 0:
        return (
            f"{PER_PROTOCOL}. The control ({control}) has no logged exposure, so there is "
            "nothing to compare from exposure: log its members' exposures or read from "
            "assignment"
        )
    return PER_PROTOCOL


def _breakdown(stored: Stored, stage: str | None, sums: dict[str, Sums], alpha: float) -> Breakdown:
    plan = stored.plan
    counts = {v.name: sums.get(v.name, EMPTY).n for v in plan.variants}
    srm = None
    note = None
    if sum(counts.values()) > 0:
        srm = stats.srm(list(counts.values()), [v.weight_bp for v in plan.variants])
        if srm.mismatch:
            note = "sample ratio mismatch: the arms are not in their planned shares; read no lift"
    out = Breakdown(stage, counts, srm, note=note)
    control = sums.get(plan.control.name, EMPTY)
    for v in plan.variants:
        if v.name == plan.control.name:
            continue
        treated = sums.get(v.name, EMPTY)
        for metric in METRICS:
            out.comparisons.append(_compare(v.name, metric, control, treated, plan, alpha))
    return out


def _compare(
    variant: str, metric: str, control: Sums, treated: Sums, plan: Any, alpha: float
) -> Comparison:
    c, t = control.arm(metric) if control.n else None, treated.arm(metric) if treated.n else None
    out = Comparison(variant, metric, None if c is None else c.mean, None if t is None else t.mean)
    if c is None or t is None:
        out.note = "an arm has no members"
        return out
    try:
        out.difference = stats.difference(c, t, alpha)
        if plan.pre_period_days > 0:
            out.cuped = stats.cuped(control.cuped(metric), treated.cuped(metric), alpha)
            out.sequential = stats.sequential(control.cuped(metric), treated.cuped(metric), alpha)
        else:
            out.sequential = stats.sequential(c, t, alpha)
    except ValidationError as exc:
        out.note = str(exc)
    return out


def members(
    engine: Engine,
    group_id: str,
    code: str,
    variant: str,
    metric: Metric | None = None,
    positive: bool = True,
    stage: str | None = None,
    anchor: Anchor = "assignment",
    at: datetime | None = None,
) -> list[int]:
    """The members behind a figure: a variant's members (of one stage at assignment, if
    given), or those whose `metric` was positive (or, `positive=False`, was not)."""
    _check_anchor(anchor)
    if metric is not None and metric not in METRICS:
        raise ValidationError("metric", f"one of {', '.join(METRICS)}", metric)
    with engine.connect() as conn:
        stored = load(conn, group_id, code)
        if variant not in {v.name for v in stored.plan.variants}:
            raise ValidationError("variant", f"not a variant of experiment {code}", variant)
        rows = conn.execute(
            text(_per_member(conn, stored, anchor)),
            _params(stored, group_id, code, at),
        ).mappings()
        picked = [
            int(r["member_id"])
            for r in rows
            if r["variant"] == variant
            and (stage is None or r["stage"] == stage)
            and (metric is None or (float(r[_COLUMN[metric]]) > 0) == positive)
        ]
    return sorted(picked)


def _check_anchor(anchor: str) -> None:
    if anchor not in ("assignment", "exposure"):
        raise ValidationError("anchor", "assignment or exposure", anchor)


def _until(at: datetime | None) -> datetime:
    return as_stored(at) if at is not None else stored_now()


def _campaigns(stored: Stored) -> list[tuple[str, str]]:
    """(variant, campaign) of each `campaign` variant: its members' coupons of that
    campaign are the experiment's."""
    return [(v.name, v.ref) for v in stored.plan.variants if v.kind == "campaign" and v.ref]


def _params(stored: Stored, group_id: str, code: str, at: datetime | None) -> dict[str, Any]:
    until = _until(at)
    given: dict[str, Any] = {}
    for i, (variant, campaign) in enumerate(_campaigns(stored)):
        given |= {f"cv{i}": variant, f"cc{i}": campaign}
    return {
        **given,
        "g": group_id,
        "e": stored.experiment_id,
        "pre": stored.plan.pre_period_days * DAY,
        "window": stored.plan.window_days * DAY,
        "until": int(until.replace(tzinfo=UTC).timestamp()),
        "campaign": coupon_campaign(code),
        **exposure.params(stored, group_id, code, until),
    }
