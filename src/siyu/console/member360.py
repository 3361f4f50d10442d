"""Member 360: one member as the operational store knows it now, read live through the
async read port, personal data shown as the principal's role allows (the API's own
rendering, `identity.profile`). Each domain owns its queries; this page composes them
and renders the derived tags (`segments.derived`) and the timeline in the page's language."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from siyu.analytics.queries import MEMBER_STAGE
from siyu.auth.principal import Principal
from siyu.console.i18n import channel_label, fmt_cny, fmt_int, label, stage_label, tier_label, tr
from siyu.console.tag_values import tag_rule, tag_value, value_names
from siyu.identity.profile import LOOKUP, PROFILE, render_profile
from siyu.identity.queries import MEMBER_MERGES
from siyu.ledger.models import ASSETS, POINTS
from siyu.ledger.program import tier_names
from siyu.ledger.queries import (
    BALANCES,
    EXPIRING,
    STATEMENT,
    TIER_CHANGES,
    TIER_PROGRAM,
    TIERS,
)
from siyu.orders.queries import MEMBER_EVENTS, MEMBER_ORDERS, MEMBER_REFUNDS
from siyu.orders.scoring import ORDERS, SPEND, Part
from siyu.privacy import Vault
from siyu.segments import tags as tag_service
from siyu.segments.affinity import Explained, explain
from siyu.segments.derived import MULTICHANNEL, STAGE, TIER, DerivedTag, derived_tags
from siyu.segments.evaluate import member_segment_page
from siyu.store.reads import Reader
from siyu.store.times import stored_now, stored_time

TIMELINE_MAX = 100
EXPIRING_SHOWN = 5  # the next dates on which points expire


@dataclass
class Member360:
    profile: dict[str, Any]
    orders: list[Any]
    balances: dict[str, int]  # as of now: points past their date are not counted
    statement: list[Any]
    tiers: list[Any]
    stage: Any | None
    tags: list[str]
    timeline: list[tuple[datetime, str, str]] = field(default_factory=list)  # time, kind, text
    expiring: list[tuple[datetime, int]] = field(default_factory=list)  # (date, points)
    tier_names: dict[str, str] = field(default_factory=dict)  # the brand's, by tier code
    lang: str = "zh"

    def tier_name(self, code: str | None) -> str:
        return tier_label(code, self.tier_names)

    def tier_scope(self, tier: Any) -> str:
        """Where a tier holds: the whole group ("*"), or the brand named."""
        if tier.scope_key == "*":
            return tr("tier.scope_group", self.lang)
        return str(tier.brand_name or tier.scope_key)


async def find_member(reader: Reader, group_id: str, type_: str, key: str) -> list[int]:
    """The members an encoded identifier belongs to, in any scope (the API's lookup
    query): one, none, or several when one card number is held in several brands."""
    rows = await reader.all(LOOKUP, {"g": group_id, "t": type_, "k": key, "s": None})
    return sorted({int(r.member_id) for r in rows})


async def load_member(
    reader: Reader, vault: Vault, who: Principal, member_id: int, lang: str
) -> Member360:
    """Everything the page shows about a member already checked to be in scope."""
    p = {"g": who.group_id, "m": member_id}
    profile = render_profile(vault, who, await reader.all(PROFILE, p))
    orders = await reader.all(MEMBER_ORDERS, p)
    as_of = {**p, "now": stored_now()}
    held = {r.asset: int(r.balance) for r in await reader.all(BALANCES, as_of)}
    expiring = await reader.all(EXPIRING, as_of)
    statement = await reader.all(STATEMENT, {**p, "n": 30})
    tiers = await reader.all(TIERS, p)
    stage = await reader.first(MEMBER_STAGE, p)
    refunds = await reader.all(MEMBER_REFUNDS, p)
    events = await reader.all(MEMBER_EVENTS, p)
    merges = await reader.all(MEMBER_MERGES, p)
    tier_changes = await reader.all(TIER_CHANGES, p)
    program = await reader.first(TIER_PROGRAM, {"g": who.group_id})
    names = tier_names(program.body if program is not None else None)

    tags = derived_tags(
        stage.stage if stage is not None else None,
        (t.tier_code for t in tiers),
        {i["channel"] for i in profile["identities"]},
        merged=bool(merges),
    )

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
        kind = label("event", e.type, lang)
        text = tr("tl.event", lang, type=kind, channel=channel_label(e.channel, lang))
        timeline.append((stored_time(e.occurred_at), "event", text))
    for s in statement:
        amount = fmt_int(s.amount) if s.asset == POINTS else fmt_cny(s.amount)
        kind, asset = label("posting", s.kind, lang), label("asset", s.asset, lang)
        text = tr("tl.posting", lang, kind=kind, amount=amount, asset=asset)
        timeline.append((stored_time(s.business_at), "ledger", text))
    for i in profile["identities"]:
        kind = label("idtype", i["type"], lang)
        text = tr("tl.identity", lang, type=kind, channel=channel_label(i["channel"], lang))
        timeline.append((i["first_seen"].replace(tzinfo=None), "identity", text))
    for mg in merges:
        mode = label("merge", mg.mode, lang)
        text = tr("tl.merge", lang, merged=mg.merged_id, survivor=mg.survivor_id, mode=mode) + (
            tr("tl.merge_undone", lang) if mg.undone_at is not None else ""
        )
        timeline.append((stored_time(mg.created_at), "merge", text))
    for c in tier_changes:
        text = tr(
            "tl.tier",
            lang,
            from_tier=tier_label(c.from_tier, names),
            to_tier=tier_label(c.to_tier, names),
            reason=label("tier", c.reason, lang),
        )
        timeline.append((stored_time(c.created_at), "tier", text))
    timeline.sort(key=lambda item: item[0], reverse=True)
    return Member360(
        profile=profile,
        orders=orders,
        balances={asset: held.get(asset, 0) for asset in ASSETS},
        statement=statement,
        tiers=tiers,
        stage=stage,
        tags=[tag_label(tag, lang, names) for tag in tags],
        timeline=timeline[:TIMELINE_MAX],
        expiring=[(stored_time(r.expires_at), int(r.points)) for r in expiring[:EXPIRING_SHOWN]],
        tier_names=names,
        lang=lang,
    )


def tag_label(tag: DerivedTag, lang: str, tier_names: dict[str, str] | None = None) -> str:
    """A derived tag as the page shows it (a tier by the name the brand gave it)."""
    if tag.kind == STAGE:
        return stage_label(str(tag.value), lang)
    if tag.kind == TIER:
        return f"{tr('col.tier', lang)}: {tier_label(str(tag.value), tier_names or {})}"
    if tag.kind == MULTICHANNEL:
        return tr("tag.multichannel", lang, n=tag.value)
    return tr(f"tag.{tag.kind}", lang)  # online_offline, merged


GROUP_PER_PAGE = 25  # tags or segments per page of Member 360 (a member may hold hundreds)


@dataclass
class HeldTag:
    """A tag the member holds and why: its kind, who or which rule set it, since when."""

    slug: str
    name: str
    kind: str
    value: str | None
    set_by: str
    since: datetime
    rule: str | None  # an automatic tag's rule in the page's language, as defined
    shown: str = "-"  # the value as people read it (`tag_values.tag_value`)


@dataclass
class Paged:
    """One page of a Member 360 list (the member lists' paging: a page past the last shows
    the last), and how many rows there are in all."""

    rows: list[Any]
    total: int
    page: int
    per: int = GROUP_PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per))

    @property
    def first(self) -> int:
        return (self.page - 1) * self.per + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


@dataclass
class Groups:
    """The member's tags and segments, a page of each (None: the role may not read them)."""

    tags: Paged | None
    segments: Paged | None  # rows: slug, name, since
    manual: list[tuple[str, str]] = field(default_factory=list)  # tags one may give: slug, name


def _paged(read: Callable[[int, int], tuple[int, list[Any]]], page: int) -> Paged:
    """The page asked of `read(limit, offset)`, or the last one when it asked past it."""
    total, rows = read(GROUP_PER_PAGE, (page - 1) * GROUP_PER_PAGE)
    last = max(1, -(-total // GROUP_PER_PAGE))
    if page > last:
        page = last
        total, rows = read(GROUP_PER_PAGE, (page - 1) * GROUP_PER_PAGE)
    return Paged(rows, total, page)


def load_groups(
    engine: Engine,
    who: Principal,
    member_id: int,
    lang: str,
    tags_page: int = 1,
    segments_page: int = 1,
) -> Groups:
    """A page of the tags and of the segments the member is in, as far as the role may
    read them (`tags:read`, `segments:read`); the manual tags a `tags:write` role may give.
    Sync: run it in the thread pool."""
    group = who.group_id
    tags: Paged | None = None
    manual: list[tuple[str, str]] = []
    in_segments: Paged | None = None

    def named(zh: str, en: str) -> str:
        return zh if lang == "zh" else en

    if who.may("tags:read"):
        with engine.connect() as conn:

            def held(limit: int, offset: int) -> tuple[int, list[Any]]:
                total, rows = tag_service.member_tag_page(conn, group, member_id, limit, offset)
                names = value_names(conn, group, ((h.slug, h.value) for h in rows))
                return total, [
                    HeldTag(
                        h.slug,
                        named(h.name_zh, h.name_en),
                        h.kind,
                        h.value,
                        h.set_by,
                        stored_time(h.set_at),
                        tag_rule(h.definition, lang) if h.kind == "automatic" else None,
                        tag_value(h.slug, h.value, lang, names),
                    )
                    for h in rows
                ]

            tags = _paged(held, tags_page)
            if who.may("tags:write"):
                manual = [
                    (t.slug, named(t.name_zh, t.name_en))
                    for t in tag_service.givable_tags(conn, group, member_id)
                ]
    if who.may("segments:read"):

        def segments(limit: int, offset: int) -> tuple[int, list[Any]]:
            total, rows = member_segment_page(engine, group, member_id, limit, offset)
            return total, [(slug, named(zh, en), stored_time(at)) for slug, zh, en, at in rows]

        in_segments = _paged(segments, segments_page)
    return Groups(tags, in_segments, manual)


@dataclass
class Affinity:
    """The member's affinity score as Member 360 shows it: the service's explanation
    (`segments.affinity.explain`, as `GET /v1/members/{id}/affinity`), parts by points."""

    explained: Explained

    @property
    def defaults(self) -> bool:
        """No rules set for the group: the score runs on siyu's default coefficients."""
        return self.explained.version == 0

    @property
    def weighed(self) -> bool:
        """The rules in force weigh some behaviour (a part per coefficient, zero or not)."""
        return bool(self.explained.parts)

    @property
    def parts(self) -> list[Part]:
        return sorted(self.explained.parts, key=lambda p: (-p.points, p.behaviour))


def load_affinity(engine: Engine, who: Principal, member_id: int) -> Affinity | None:
    """The member's affinity score and its breakdown, for a role with `affinity:read`
    (None otherwise). Sync: run it in the thread pool."""
    if not who.may("affinity:read"):
        return None
    return Affinity(explain(engine, who.group_id, member_id))


def decimal(value: float) -> str:
    """A score or count as shown: up to 4 decimals (the service's rounding), no trailing 0."""
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def behaviour_label(behaviour: str, lang: str) -> str:
    """An affinity behaviour by its label: orders, spend, or an event type."""
    if behaviour in (ORDERS, SPEND):
        return tr(f"aff.{behaviour}", lang)
    return label("event", behaviour, lang)
