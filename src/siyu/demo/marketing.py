"""The demo brand's marketing: a coupon template, a thank-you campaign with a holdout, real
redemptions and a lottery, so the console has a campaign report to show.

Run after the lifecycle stages and the stock (`seed_operations`): the campaign targets the
members the stages call `loyal`, started 60 days before the data's last order, with a
tiered coupon (¥5 off ¥30, ¥20 off ¥100) to the treatment and 20% kept out. A seeded share of the
treated members who bought in the period used their coupon on one of those orders (the
redemption is the service's own, at the order's time, on the order's basket); the holdout
had none to use. The generator did not make anyone buy because of the campaign, so the
report's lift is noise and its interval says so: an honest demo of what a null result
looks like. A free lottery pool of samples at the first store is drawn by 200 members.

Keyed throughout (`demo:...`): a second run issues, redeems and draws nothing again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Engine, bindparam, text

from siyu.campaigns import plan as plans
from siyu.campaigns.launch import launch
from siyu.campaigns.report import CampaignReport, members, report
from siyu.coupons import catalog
from siyu.coupons.redeem import Redemption, redeem_many
from siyu.coupons.templates import Basket, BasketLine, CouponTemplate
from siyu.errors import SiyuError
from siyu.lotteries import pools
from siyu.lotteries.draw import DrawAsk, draw_many
from siyu.store.times import stored_time

TEMPLATE, CAMPAIGN, POOL = "THANKS", "THANK-YOU", "SPRING-SAMPLES"
REDEEM_SHARE = 60  # percent of treated buyers in the period who used their coupon


@dataclass
class MarketingReport:
    campaign: CampaignReport | None = None
    redeemed: int = 0
    draws: dict[str, int] = field(default_factory=dict)


def seed_marketing(engine: Engine, group_id: str, seed: int) -> MarketingReport:
    out = MarketingReport()
    with engine.connect() as conn:
        last = conn.execute(
            text("SELECT MAX(ordered_at) FROM orders WHERE group_id = :g"), {"g": group_id}
        ).scalar()
        stages: dict[str, int] = dict(
            conn.execute(
                text("""SELECT stage, COUNT(*) FROM member_stages WHERE group_id = :g
                        GROUP BY stage"""),
                {"g": group_id},
            ).all()
        )
    if last is None:
        return out
    end = stored_time(last) + timedelta(seconds=1)
    start = end - timedelta(days=60)
    # the stages are as of the data's end: the members who bought through the period are
    # the loyal ones (an at-risk target would have, by definition, bought nothing in it)
    stage = "loyal"
    if stages.get("loyal", 0) < 20 and stages:
        stage = max(stages.items(), key=lambda kv: kv[1])[0]
    catalog.save(engine, group_id, _template(), None)
    plans.save(engine, group_id, _plan(stage, start, end), None)
    launch(engine, group_id, CAMPAIGN, at=start)
    out.redeemed = _redeem(engine, group_id, seed, start, end)
    out.draws = _lottery(engine, group_id, start, end)
    out.campaign = report(engine, group_id, CAMPAIGN, end)
    return out


def _template() -> CouponTemplate:
    return CouponTemplate.model_validate(
        {
            "code": TEMPLATE,
            "name_zh": "满30减5、满100减20 老客回馈券",
            "name_en": "¥5 off ¥30, ¥20 off ¥100",
            "kind": "threshold",
            "tiers": [
                {"min_paid_fen": 3000, "off_fen": 500},
                {"min_paid_fen": 10000, "off_fen": 2000},
            ],
            "validity": {"days_from_issue": 60},
            "face_value_fen": 2000,
            "cost_fen": 1000,
            "limits": {"per_member": 1},
        }
    )


def _plan(stage: str, start: datetime, end: datetime) -> plans.Plan:
    return plans.Plan.model_validate(
        {
            "code": CAMPAIGN,
            "name_zh": "老客回馈",
            "name_en": "Thank-you to our regulars",
            "target": {"stage": stage},
            "starts_at": start,
            "ends_at": end,
            "coupons": [TEMPLATE],
            "holdout_bp": 2000,
        }
    )


def _redeem(engine: Engine, group_id: str, seed: int, start: datetime, end: datetime) -> int:
    treated = set(members(engine, group_id, CAMPAIGN, "treatment", "buyers", end))
    with engine.connect() as conn:
        coupons: dict[int, str] = dict(
            conn.execute(
                text("""SELECT member_id, code FROM coupons WHERE group_id = :g
                        AND campaign = :c"""),
                {"g": group_id, "c": CAMPAIGN},
            ).all()
        )
        orders = conn.execute(
            text("""SELECT o.order_id, o.member_id, o.channel, o.store_id, o.ordered_at,
                           l.sku, l.qty, l.amount_fen
                    FROM orders o JOIN order_lines l ON l.group_id = o.group_id
                      AND l.order_id = o.order_id
                    WHERE o.group_id = :g AND o.status <> 'cancelled'
                      AND o.ordered_at >= :s AND o.ordered_at < :e
                    ORDER BY o.ordered_at, o.order_id, l.line_no""").bindparams(
                bindparam("s", type_=DateTime()), bindparam("e", type_=DateTime())
            ),
            {"g": group_id, "s": start, "e": end},
        ).all()
    baskets = order_baskets(
        r for r in orders if r.member_id is not None and int(r.member_id) in treated
    )
    used: set[int] = set()
    redeemed = 0
    for order_id, (member, channel, store, at, lines) in baskets.items():
        if member in used or member not in coupons or not _chosen(seed, member):
            continue
        ask = Redemption(
            coupons[member],
            order_id,
            Basket(channel, tuple(lines), store),
            f"demo:redeem:{order_id}",
            member_id=member,
        )
        (answer,) = redeem_many(engine, group_id, [ask], at)
        if not isinstance(answer, SiyuError):  # a basket under ¥30 does not qualify
            used.add(member)
            redeemed += not answer.replayed
    return redeemed


Basketed = tuple[int, str, str | None, datetime, list[BasketLine]]


def order_baskets(rows: Iterable[Any]) -> dict[str, Basketed]:
    """Order lines (order_id, member_id, channel, store_id, ordered_at, sku, qty,
    amount_fen), in line order, as each order's (member, channel, store, time, basket): what
    a redemption at the till is asked with. Lines without a member are left out."""
    baskets: dict[str, Basketed] = {}
    for r in rows:
        if r.member_id is None:
            continue
        entry = baskets.setdefault(
            r.order_id, (int(r.member_id), r.channel, r.store_id, stored_time(r.ordered_at), [])
        )
        entry[4].append(BasketLine(r.sku, int(r.qty), int(r.amount_fen)))
    return baskets


def _chosen(seed: int, member: int) -> bool:
    digest = hashlib.sha256(f"demo:{seed}:coupon:{member}".encode()).digest()
    return digest[0] * 100 // 256 < REDEEM_SHARE


def _lottery(engine: Engine, group_id: str, start: datetime, end: datetime) -> dict[str, int]:
    with engine.connect() as conn:
        shelf = conn.execute(
            text("""SELECT s.location_id, s.sku FROM stock_levels s
                    JOIN stock_locations l ON l.group_id = s.group_id
                      AND l.location_id = s.location_id AND l.kind = 'store'
                    WHERE s.group_id = :g AND s.on_hand >= 20
                    ORDER BY s.location_id, s.sku LIMIT 2"""),
            {"g": group_id},
        ).all()
        drawers = (
            conn.execute(
                text("""SELECT member_id FROM campaign_members WHERE group_id = :g
                    ORDER BY member_id LIMIT 200"""),
                {"g": group_id},
            )
            .scalars()
            .all()
        )
    if len(shelf) < 2 or not drawers:
        return {}
    prizes = [
        {
            "code": f"P{i + 1}",
            "name_zh": name_zh,
            "name_en": name_en,
            "sku": row.sku,
            "location_id": row.location_id,
            "odds_ppm": odds,
            "units": units,
        }
        for i, (row, name_zh, name_en, odds, units) in enumerate(
            zip(
                shelf,
                ("正装", "试用装"),
                ("Full size", "Sample"),
                (20_000, 200_000),
                (5, 20),
                strict=True,
            )
        )
    ]
    pool = pools.PoolDef.model_validate(
        {
            "code": POOL,
            "name_zh": "春季试用抽奖",
            "name_en": "Spring samples draw",
            "starts_at": start,
            "ends_at": end,
            "entry": "free",
            "per_member": 1,
            "prizes": prizes,
        }
    )
    # the demo's seed is derived, so a rerun defines the same pool (HQ's would be secret)
    pools.define(engine, group_id, pool, None, hashlib.sha256(f"demo:{group_id}".encode()).digest())
    asks = [DrawAsk(int(m), f"demo:draw:{m}") for m in drawers]
    counts: dict[str, int] = {}
    for answer in draw_many(engine, group_id, POOL, asks, start + timedelta(days=1)):
        outcome = "refused" if isinstance(answer, SiyuError) else answer.outcome
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
