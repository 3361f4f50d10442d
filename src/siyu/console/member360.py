"""Member 360: one member as the operational store knows it now, read live through the
async read port, personal data shown as the principal's role allows (the API's own
rendering, `identity.profile`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from siyu.auth.principal import Principal
from siyu.catalog.models import ONLINE_CHANNELS
from siyu.console.i18n import channel_label, fmt_cny, fmt_int, stage_label, tr
from siyu.identity.profile import LOOKUP, PROFILE, render_profile
from siyu.ledger.models import ASSETS, POINTS
from siyu.ledger.queries import BALANCES, STATEMENT, TIERS
from siyu.privacy import Vault
from siyu.store.reads import Reader, Sql
from siyu.store.times import stored_time

ORDERS = Sql(
    """SELECT order_id, brand_id, channel, store_id, guide_id, status, ordered_at, paid_fen
       FROM orders WHERE group_id = :g AND member_id = :m
       ORDER BY ordered_at DESC, order_id LIMIT 50"""
)
REFUNDS = Sql(
    """SELECT r.refund_id, r.order_id, r.refunded_at, r.amount_fen
       FROM orders o JOIN refunds r ON r.group_id = o.group_id AND r.order_id = o.order_id
       WHERE o.group_id = :g AND o.member_id = :m
       ORDER BY r.refunded_at DESC LIMIT 50"""
)
EVENTS = Sql(
    """SELECT type, channel, occurred_at, store_id, guide_id FROM events
       WHERE group_id = :g AND member_id = :m ORDER BY occurred_at DESC LIMIT 50"""
)
STAGE = Sql(
    "SELECT stage, orders, last_order_at FROM member_stages WHERE group_id = :g AND member_id = :m"
)
MERGES = Sql(
    """SELECT merge_id, survivor_id, merged_id, mode, created_at, undone_at FROM merges
       WHERE group_id = :g AND (survivor_id = :m OR merged_id = :m)
       ORDER BY merge_id DESC LIMIT 50"""
)
TIER_CHANGES = Sql(
    """SELECT from_tier, to_tier, reason, created_at FROM tier_changes
       WHERE group_id = :g AND member_id = :m ORDER BY change_id DESC LIMIT 20"""
)
TIMELINE_MAX = 100


@dataclass
class Member360:
    profile: dict[str, Any]
    orders: list[Any]
    balances: dict[str, int]
    statement: list[Any]
    tiers: list[Any]
    stage: Any | None
    tags: list[str]
    timeline: list[tuple[datetime, str, str]] = field(default_factory=list)  # time, kind, text


async def find_member(reader: Reader, group_id: str, type_: str, key: str) -> int | None:
    """The member an encoded identifier belongs to (the API's lookup query)."""
    rows = await reader.all(LOOKUP, {"g": group_id, "t": type_, "k": key})
    return int(rows[0].member_id) if rows else None


async def load_member(
    reader: Reader, vault: Vault, who: Principal, member_id: int, lang: str
) -> Member360:
    """Everything the page shows about a member already checked to be in scope."""
    p = {"g": who.group_id, "m": member_id}
    profile = render_profile(vault, who, await reader.all(PROFILE, p))
    orders = await reader.all(ORDERS, p)
    held = {r.asset: int(r.balance) for r in await reader.all(BALANCES, p)}
    statement = await reader.all(STATEMENT, {**p, "before": 2**62, "n": 30})
    tiers = await reader.all(TIERS, p)
    stage = await reader.first(STAGE, p)
    refunds = await reader.all(REFUNDS, p)
    events = await reader.all(EVENTS, p)
    merges = await reader.all(MERGES, p)
    tier_changes = await reader.all(TIER_CHANGES, p)

    channels = {i["channel"] for i in profile["identities"]}
    tags = []
    if stage is not None:
        tags.append(stage_label(stage.stage, lang))
    tags.extend(f"{tr('col.tier', lang)}: {t.tier_code}" for t in tiers)
    if len(channels) > 1:
        tags.append(tr("tag.multichannel", lang, n=len(channels)))
    if channels & ONLINE_CHANNELS and channels - ONLINE_CHANNELS:
        tags.append(tr("tag.online_offline", lang))
    if merges:
        tags.append(tr("tag.merged", lang))

    timeline: list[tuple[datetime, str, str]] = []
    for o in orders:
        amount = fmt_cny(o.paid_fen)
        channel = channel_label(o.channel, lang)
        text = tr("tl.order", lang, order_id=o.order_id, channel=channel, amount=amount)
        timeline.append((stored_time(o.ordered_at), "order", text))
    for r in refunds:
        text = tr("tl.refund", lang, order_id=r.order_id, amount=fmt_cny(r.amount_fen))
        timeline.append((stored_time(r.refunded_at), "refund", text))
    for e in events:
        text = tr("tl.event", lang, type=e.type, channel=channel_label(e.channel, lang))
        timeline.append((stored_time(e.occurred_at), "event", text))
    for s in statement:
        amount = fmt_int(s.amount) if s.asset == POINTS else fmt_cny(s.amount)
        text = tr("tl.posting", lang, kind=s.kind, amount=amount, asset=s.asset)
        timeline.append((stored_time(s.created_at), "ledger", text))
    for i in profile["identities"]:
        text = tr("tl.identity", lang, type=i["type"], channel=channel_label(i["channel"], lang))
        timeline.append((i["first_seen"].replace(tzinfo=None), "identity", text))
    for mg in merges:
        text = tr("tl.merge", lang, merged=mg.merged_id, survivor=mg.survivor_id, mode=mg.mode) + (
            tr("tl.merge_undone", lang) if mg.undone_at is not None else ""
        )
        timeline.append((stored_time(mg.created_at), "merge", text))
    for c in tier_changes:
        text = tr("tl.tier", lang, from_tier=c.from_tier or "-", to_tier=c.to_tier, reason=c.reason)
        timeline.append((stored_time(c.created_at), "tier", text))
    timeline.sort(key=lambda item: item[0], reverse=True)
    return Member360(
        profile=profile,
        orders=orders,
        balances={asset: held.get(asset, 0) for asset in ASSETS},
        statement=statement,
        tiers=tiers,
        stage=stage,
        tags=tags,
        timeline=timeline[:TIMELINE_MAX],
    )
