"""The demo's stage experiment, end to end, with a true effect the console must find.

Pagoda's loop on the generated brand: `WINDOW_DAYS` before the data's end (time T) the
brand finds the knee and stages its members as of T, and tests a comeback coupon on the
members at `new_1` (one order, not yet lapsing: the first step to the knee). Half get the
coupon (issued at T by the experiment), half nothing. The generator's history after T is
what everyone did untreated; its second phase (`demo/effect.py`) then writes the
treatment's effect, with a configurable true uplift: each treated member who bought
nothing in the window comes back with probability `uplift`, and uses the coupon when the
basket qualifies. Those orders go through the importer and OneID like any other.

Because the untreated outcomes are on file before the effect is added, the true effect
on the treated is exact: for repurchase and the next order, the members who came back
over the treated; for revenue, what they paid over the treated. Relative to the untreated
mean of both arms (read from the experiment's results before the effect is imported),
that is the relative lift the experiment's interval must contain, as the console shows
it; the absolute effect must be inside the absolute interval too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, bindparam, text

from siyu.coupons import catalog
from siyu.coupons.redeem import Redemption, redeem_many
from siyu.coupons.templates import Basket, CouponTemplate
from siyu.demo.config import DEFAULT_UPLIFT
from siyu.demo.effect import SUFFIX, respond
from siyu.demo.lifecycle import stage_members
from siyu.demo.marketing import order_baskets
from siyu.errors import SiyuError
from siyu.experiments import plan as experiments
from siyu.experiments.assign import start
from siyu.experiments.deliver import coupon_campaign
from siyu.experiments.results import Comparison, Results, results
from siyu.experiments.stats import Estimate
from siyu.importer.service import import_directory
from siyu.privacy import Vault
from siyu.store.times import stored_time

CODE, TEMPLATE = "NEW1-COMEBACK", "COMEBACK"
WINDOW_DAYS = 30
TREATMENT, CONTROL = "coupon", "control"
MIN_ARM = 50  # a stage smaller than this per arm is not worth an experiment
# the metrics whose true effect the demo knows exactly (coupon redemption has no untreated
# counterpart: the control never held the coupon)
CHECKED = ("repurchase", "next_order", "revenue_fen")


@dataclass(frozen=True)
class TrueEffect:
    """One metric: the effect the generator put in, and what the experiment measured."""

    metric: str
    absolute: float  # per treated member, in the metric's units
    relative: float  # over both arms' untreated mean
    measured: Estimate  # relative lift, with its 95% interval (what the console shows)
    measured_absolute: Estimate
    # the arms' difference before the effect was imported: what the draw alone gave. The
    # measured difference is this plus the true effect, exactly; a 95% interval misses
    # the truth when this chance imbalance is large, in about one draw of twenty
    untreated_absolute: float

    @property
    def contained(self) -> bool:
        return (
            self.measured.ci_low <= self.relative <= self.measured.ci_high
            and self.measured_absolute.ci_low <= self.absolute <= self.measured_absolute.ci_high
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "true_absolute": self.absolute,
            "true_relative": self.relative,
            "lift": self.measured.estimate,
            "ci_low": self.measured.ci_low,
            "ci_high": self.measured.ci_high,
            "absolute_ci_low": self.measured_absolute.ci_low,
            "absolute_ci_high": self.measured_absolute.ci_high,
            "absolute_lift": self.measured_absolute.estimate,
            "untreated_difference": self.untreated_absolute,
            "p_value": self.measured.p_value,
            "contains_true_effect": self.contained,
        }


@dataclass
class DemoExperiment:
    code: str
    stage: str
    started_at: datetime
    window_days: int
    uplift: float
    arms: dict[str, int] = field(default_factory=dict)
    eligible: int = 0  # treated members who bought nothing in the window untreated
    answered: int = 0
    added_paid_fen: int = 0
    redeemed: int = 0
    effects: list[TrueEffect] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "stage": self.stage,
            "started_at": self.started_at.isoformat(),
            "window_days": self.window_days,
            "uplift": self.uplift,
            "arms": self.arms,
            "treated_without_order": self.eligible,
            "came_back": self.answered,
            "added_paid_fen": self.added_paid_fen,
            "coupons_redeemed": self.redeemed,
            "metrics": {e.metric: e.as_json() for e in self.effects},
        }


def run_experiment(
    engine: Engine,
    vault: Vault,
    group_id: str,
    data_dir: Path,
    workdir: Path,
    warehouse: Path,
    *,
    uplift: float = DEFAULT_UPLIFT,
    seed: int = 0,
) -> DemoExperiment | None:
    """Assign at T on the stages as of T, write and import the treatment's effect, and
    read the result; None when the data has no knee or too few `new_1` members at T."""
    end = _data_end(engine, group_id)
    if end is None:
        return None
    at = end - timedelta(days=WINDOW_DAYS)
    life = stage_members(engine, group_id, warehouse, data_dir, as_of=at)
    stage = "new_1"
    if dict(life.stages).get(stage, 0) < 2 * MIN_ARM:
        return None
    catalog.save(engine, group_id, _template(), None)
    # the salt from the seed, so the same seed gives the same arms (HQ's are drawn)
    salt = hashlib.sha256(f"demo:{seed}:{CODE}".encode()).hexdigest()[:16]
    experiments.save(engine, group_id, _plan(stage, at, end), None, salt=salt)
    started = start(engine, group_id, CODE, at=at)
    out = DemoExperiment(CODE, stage, at, WINDOW_DAYS, uplift, arms=started.variants)
    untreated = results(engine, group_id, CODE, at=end)
    templates = _templates(engine, group_id, at, end)
    response = respond(data_dir, workdir / "experiment-effect", templates, at, end, uplift, seed)
    import_directory(engine, vault, group_id, response.out_dir, workdir / "rejects")
    out.eligible, out.answered, out.added_paid_fen = (
        response.eligible,
        response.orders,
        response.paid_fen,
    )
    out.redeemed = _redeem(engine, group_id, [f"{o}{SUFFIX}" for o in response.answered])
    experiments.stop(engine, group_id, CODE, at=end)
    measured = results(engine, group_id, CODE, at=end)
    out.effects = _effects(untreated, measured, out)
    return out


def _data_end(engine: Engine, group_id: str) -> datetime | None:
    with engine.connect() as conn:
        last = conn.execute(
            text("SELECT MAX(ordered_at) FROM orders WHERE group_id = :g"), {"g": group_id}
        ).scalar()
    return None if last is None else stored_time(last) + timedelta(seconds=1)


def _template() -> CouponTemplate:
    return CouponTemplate.model_validate(
        {
            "code": TEMPLATE,
            "name_zh": "回购券 满50减10",
            "name_en": "Come back: ¥10 off ¥50",
            "kind": "threshold",
            "tiers": [{"min_paid_fen": 5000, "off_fen": 1000}],
            "validity": {"days_from_issue": WINDOW_DAYS},
            "face_value_fen": 1000,
            "cost_fen": 1000,
            "limits": {"per_member": 1},
        }
    )


def _plan(stage: str, at: datetime, end: datetime) -> experiments.Plan:
    return experiments.Plan.model_validate(
        {
            "code": CODE,
            "name_zh": "首单会员回购券实验",
            "name_en": "Comeback coupon for first-time buyers",
            "target": {"stage": stage},
            "variants": [
                {"name": CONTROL, "weight_bp": 5000, "kind": "none"},
                {"name": TREATMENT, "weight_bp": 5000, "kind": "coupon", "ref": TEMPLATE},
            ],
            "window_days": WINDOW_DAYS,
            "pre_period_days": 180,
            "starts_at": at,
            "ends_at": end,
        }
    )


def _templates(engine: Engine, group_id: str, at: datetime, end: datetime) -> list[str]:
    """Per treated member who bought nothing in [at, end): its latest order before `at`,
    the order it buys again when it comes back."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT em.member_id, o.order_id, o.ordered_at FROM experiment_members em
                    JOIN experiments e ON e.experiment_id = em.experiment_id
                    JOIN orders o ON o.group_id = em.group_id AND o.member_id = em.member_id
                    WHERE em.group_id = :g AND e.code = :c AND em.variant = :v
                      AND em.merged_into IS NULL AND o.status <> 'cancelled'
                      AND o.ordered_at < :at
                      AND NOT EXISTS (SELECT 1 FROM orders w WHERE w.group_id = em.group_id
                        AND w.member_id = em.member_id AND w.status <> 'cancelled'
                        AND w.ordered_at >= :at AND w.ordered_at < :end)
                    ORDER BY em.member_id, o.ordered_at DESC, o.order_id DESC""").bindparams(
                bindparam("at", type_=DateTime()), bindparam("end", type_=DateTime())
            ),
            {"g": group_id, "c": CODE, "v": TREATMENT, "at": at, "end": end},
        ).all()
    latest: dict[int, str] = {}
    for member_id, order_id, _ in rows:
        latest.setdefault(int(member_id), str(order_id))
    return sorted(latest.values())


def _redeem(engine: Engine, group_id: str, order_ids: list[str]) -> int:
    """Each member who came back uses the experiment's coupon on that order, at its time,
    when the basket qualifies (the service decides, as at a till)."""
    if not order_ids:
        return 0
    with engine.connect() as conn:
        held: dict[int, str] = dict(
            conn.execute(
                text("""SELECT member_id, code FROM coupons WHERE group_id = :g
                        AND campaign = :c AND status = 'issued'"""),
                {"g": group_id, "c": coupon_campaign(CODE)},
            ).all()
        )
        lines = conn.execute(
            text("""SELECT o.order_id, o.member_id, o.channel, o.store_id, o.ordered_at,
                           l.sku, l.qty, l.amount_fen
                    FROM orders o JOIN order_lines l ON l.group_id = o.group_id
                      AND l.order_id = o.order_id
                    WHERE o.group_id = :g AND o.order_id IN :ids
                    ORDER BY o.ordered_at, o.order_id, l.line_no""").bindparams(
                bindparam("ids", expanding=True)
            ),
            {"g": group_id, "ids": order_ids},
        ).all()
    baskets = order_baskets(lines)
    redeemed = 0
    for order_id, (member, channel, store, when, basket) in baskets.items():
        if member not in held:
            continue
        ask = Redemption(
            held[member],
            order_id,
            Basket(channel, tuple(basket), store),
            f"demo:experiment:redeem:{order_id}",
            member_id=member,
        )
        (answer,) = redeem_many(engine, group_id, [ask], when)
        if not isinstance(answer, SiyuError):  # a basket under ¥50 does not qualify
            redeemed += not answer.replayed
    return redeemed


def _effects(untreated: Results, measured: Results, run: DemoExperiment) -> list[TrueEffect]:
    treated = run.arms.get(TREATMENT, 0)
    if treated == 0:
        return []
    added = {
        "repurchase": run.answered / treated,
        "next_order": run.answered / treated,
        "revenue_fen": run.added_paid_fen / treated,
    }
    out = []
    for metric in CHECKED:
        before, after = _comparison(untreated, metric), _comparison(measured, metric)
        if before is None or after is None or after.difference is None:
            continue
        if before.difference is None:
            continue
        # the relative lift estimates effect / (the untreated mean); both arms' outcomes
        # before the effect was imported are untreated, so their pooled mean is that
        # mean for this sample (the treated arm's alone is half of it, with its own noise)
        n_c, n_t = run.arms.get(CONTROL, 0), treated
        if before.control_mean is None or before.treatment_mean is None:
            continue
        base = (before.control_mean * n_c + before.treatment_mean * n_t) / (n_c + n_t)
        if not base:
            continue
        out.append(
            TrueEffect(
                metric,
                added[metric],
                added[metric] / base,
                after.difference.relative,
                after.difference.absolute,
                before.difference.absolute.estimate,
            )
        )
    return out


def _comparison(found: Results, metric: str) -> Comparison | None:
    for c in found.overall.comparisons:
        if c.variant == TREATMENT and c.metric == metric:
            return c
    return None
