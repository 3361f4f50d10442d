"""HQ's aggregate pages (overview, retention, cohorts, RFM, funnel, channel mix, guides,
stores): each reads the latest snapshots it needs, never the warehouse."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from siyu.analytics.kpi_service import funnel_observed
from siyu.analytics.snapshot import Snapshot, latest_snapshot
from siyu.auth.principal import Role
from siyu.console import charts
from siyu.console.i18n import (
    channel_label,
    fmt_cny,
    fmt_date,
    fmt_int,
    fmt_pct,
    fmt_time,
    stage_label,
)
from siyu.console.web import ConsoleExit, Ctx, authenticated, render

router = APIRouter()
TREND = 12  # months on a KPI card's line
TOP = 20  # bars in a ranking chart


async def _snapshots(ctx: Ctx, *kinds: str) -> dict[str, Snapshot]:
    assert ctx.who is not None
    found: dict[str, Snapshot] = {}
    async with ctx.svc.reads.connection() as reader:
        for kind in kinds:
            snap = await latest_snapshot(reader, ctx.who.group_id, kind)
            if snap is not None:
                found[kind] = snap
    return found


def _page(
    ctx: Ctx, template: str, snaps: dict[str, Snapshot], kinds: tuple[str, ...], **values: Any
) -> Response:
    """Render `template`, or the 'no snapshot yet' page when one of `kinds` is missing."""
    if any(k not in snaps for k in kinds):
        return render(ctx, "no_snapshot.html", title=ctx.t(f"nav.{template[:-5]}"))
    first = snaps[kinds[0]]
    as_of = ctx.t("as_of", as_of=fmt_time(first.as_of), computed_at=fmt_time(first.computed_at))
    # the facts' end, for the links from a count to its members (segments.lists `until`)
    return render(ctx, template, as_of=as_of, until=first.as_of.isoformat(), **values)


def _card(
    key: str,
    value: str,
    raw: Any,
    note: str,
    trend: list[Any] | None,
    months: list[str],
    value_format: str = charts.PCT,
) -> dict[str, Any]:
    return {
        "key": key,
        "value": value,
        "raw": raw,
        "note": note,
        "chart": None if not trend else charts.sparkline(trend, months, value_format),
    }


@router.get("/overview")
async def overview(request: Request) -> Response:
    ctx = await authenticated(request, "overview")
    snaps = await _snapshots(ctx, "sales", "kpis")
    if "sales" not in snaps or "kpis" not in snaps:
        return _page(ctx, "overview.html", snaps, ("sales", "kpis"))
    sales, kpis = snaps["sales"].payload, snaps["kpis"].payload
    months = sales["months"]
    t = ctx.t
    # every figure is as of the data's end (the snapshot's), never today
    end = fmt_date(snaps["sales"].as_of)
    at = t("kpi.at", date=end)

    def to_date(key: str, base: Any) -> str:
        """The note of a rate with no monthly series, its base (how many it is of) and
        when."""
        return f"{t(f'kpi.{key}.note')} · {t('kpi.base', n=fmt_int(base))} · {at}"

    def month_of(rows: list[dict[str, Any]], key: str) -> str:
        """The note of a monthly series' last value: its month first."""
        month = rows[-1]["month"] if rows else months[-1]
        return f"{t('kpi.month_to', month=month, date=end)} · {t(f'kpi.{key}.note')}"

    repurchase = kpis.get("repurchase", [])[-TREND:]
    cross = kpis.get("cross_brand", {}).get("months", [])[-TREND:]
    guide_months = kpis.get("guides", {}).get("months", [])[-TREND:]
    online = kpis.get("online", {})
    enrollment = kpis.get("enrollment", {})
    same_city = kpis.get("same_city", {})

    def pct_series(rows: list[dict[str, Any]], field: str) -> list[Any]:
        return [None if r.get(field) is None else round(r[field] * 100, 2) for r in rows]

    def last(rows: list[dict[str, Any]], field: str) -> Any:
        return rows[-1].get(field) if rows else None

    cards = [
        _card(
            "members",
            fmt_int(sales["members"][-1]),
            sales["members"][-1],
            f"{t('kpi.members.note')} · {at}",
            sales["members"],
            months,
            charts.INT,
        ),
        _card(
            "active",
            fmt_int(sales["active"][-1]),
            sales["active"][-1],
            f"{t('kpi.active.note', days=sales['active_days'])} · {at}",
            sales["active"],
            months,
            charts.INT,
        ),
        _card(
            "sales",
            fmt_cny(sales["sales_fen"][-1]),
            sales["sales_fen"][-1],
            month_of([], "sales"),
            [round(v / 100, 2) for v in sales["sales_fen"]],
            months,
            charts.CNY,
        ),
        _card(
            "repurchase",
            fmt_pct(last(repurchase, "repeat_rate")),
            last(repurchase, "repeat_rate"),
            month_of(repurchase, "repurchase"),
            pct_series(repurchase, "repeat_rate"),
            [r["month"] for r in repurchase],
        ),
        _card(
            "cross_brand",
            fmt_pct(last(cross, "rate")),
            last(cross, "rate"),
            month_of(cross, "cross_brand"),
            pct_series(cross, "rate"),
            [r["month"] for r in cross],
        ),
        _card(
            "guide_share",
            fmt_pct(last(guide_months, "sales_share")),
            last(guide_months, "sales_share"),
            month_of(guide_months, "guide_share"),
            pct_series(guide_months, "sales_share"),
            [r["month"] for r in guide_months],
        ),
        _card(
            "online",
            fmt_pct(online.get("offline_online_rate")),
            online.get("offline_online_rate"),
            to_date("online", online.get("offline_members")),
            None,
            months,
        ),
        _card(
            "enrollment",
            fmt_pct(enrollment.get("enrollment_rate")),
            enrollment.get("enrollment_rate"),
            to_date("enrollment", enrollment.get("non_member_buyers")),
            None,
            months,
        ),
        _card(
            "same_city",
            fmt_pct(same_city.get("order_share")),
            same_city.get("order_share"),
            to_date("same_city", same_city.get("store_orders")),
            None,
            months,
        ),
    ]
    return _page(
        ctx,
        "overview.html",
        snaps,
        ("sales", "kpis"),
        cards=cards,
        channel_chart=charts.sales_by_channel(
            months, {channel_label(c, ctx.lang): v for c, v in sales["channels"].items()}
        ),
        sales=sales,
    )


@router.get("/retention")
async def retention(request: Request) -> Response:
    ctx = await authenticated(request, "retention")
    snaps = await _snapshots(ctx, "lifecycle")
    life = snaps["lifecycle"].payload if "lifecycle" in snaps else {}
    stages = life.get("stages", [])
    return _page(
        ctx,
        "retention.html",
        snaps,
        ("lifecycle",),
        life=life,
        curve_chart=charts.retention_curve(life.get("curve", []), life.get("knee"), ctx.lang)
        if life
        else None,
        stages_chart=charts.bars(
            [stage_label(s["stage"], ctx.lang) for s in stages],
            [s["members"] for s in stages],
        ),
    )


@router.get("/cohorts")
async def cohorts(request: Request) -> Response:
    ctx = await authenticated(request, "cohorts")
    snaps = await _snapshots(ctx, "kpis")
    rows = snaps["kpis"].payload.get("cohorts", [])[-TREND:] if "kpis" in snaps else []
    return _page(
        ctx,
        "cohorts.html",
        snaps,
        ("kpis",),
        cohorts=rows,
        heatmap=charts.cohort_heatmap(rows, ctx.lang),
    )


@router.get("/rfm")
async def rfm(request: Request) -> Response:
    ctx = await authenticated(request, "rfm")
    snaps = await _snapshots(ctx, "rfm")
    payload = snaps["rfm"].payload if "rfm" in snaps else {"segments": [], "layers": {}}
    segments = payload["segments"]
    labels = [ctx.t(f"segment.{s['segment']}") for s in segments]
    rules = {r["segment"]: r for r in payload.get("rules", [])}
    return _page(
        ctx,
        "rfm.html",
        snaps,
        ("rfm",),
        rfm=payload,
        definitions={name: _rule_text(rule) for name, rule in rules.items()},
        segment_chart=charts.bars(labels, [s["members"] for s in segments], horizontal=True),
    )


def _rule_text(rule: dict[str, Any]) -> str:
    """R 4–5 · F 4–5 · M 4–5; an axis any score satisfies is left out."""
    parts = []
    for letter, axis in (("R", "recency"), ("F", "frequency"), ("M", "monetary")):
        low, high = rule[axis]
        if (low, high) != (1, 5):
            parts.append(f"{letter} {low}" if low == high else f"{letter} {low}–{high}")
    return " · ".join(parts)


@router.get("/funnel")
async def funnel(request: Request) -> Response:
    ctx = await authenticated(request, "funnel")
    snaps = await _snapshots(ctx, "kpis")
    rows = snaps["kpis"].payload.get("funnel", []) if "kpis" in snaps else []
    return _page(
        ctx,
        "funnel.html",
        snaps,
        ("kpis",),
        # a channel whose steps were not all seen (a marketplace hands over its orders,
        # not its shoppers' browsing) has no funnel to draw: None, and the page says so
        funnels=[
            (
                r["channel"],
                r["steps"],
                charts.funnel(r["steps"], ctx.lang) if funnel_observed(r["steps"]) else None,
            )
            for r in rows
        ],
    )


@router.get("/channels")
async def channels(request: Request) -> Response:
    ctx = await authenticated(request, "channels")
    snaps = await _snapshots(ctx, "kpis")
    kpis = snaps["kpis"].payload if "kpis" in snaps else {}
    rows = kpis.get("channels", [])
    names = {r["channel"]: channel_label(r["channel"], ctx.lang) for r in rows}
    return _page(
        ctx,
        "channels.html",
        snaps,
        ("kpis",),
        channels=rows,
        buyers=kpis.get("totals", {}).get("members"),
        sales_chart=charts.pie(
            [(names[r["channel"]], round(r["sales_fen"] / 100, 2)) for r in rows], charts.CNY
        ),
        members_chart=charts.bars(
            [names[r["channel"]] for r in rows], [r["members"] for r in rows]
        ),
    )


@router.get("/guides")
async def guides(request: Request) -> Response:
    ctx = await authenticated(request, "guides")
    snaps = await _snapshots(ctx, "guides")
    rows = snaps["guides"].payload.get("guides", []) if "guides" in snaps else []
    top = rows[:TOP]
    return _page(
        ctx,
        "guides.html",
        snaps,
        ("guides",),
        guides=rows,
        ranking_chart=charts.bars(
            guide_labels(top), [g["sales_fen"] for g in top], horizontal=True, money=True
        ),
    )


def guide_labels(guides: list[dict[str, Any]]) -> list[str]:
    """A guide as a chart names them: "nickname · store", and the guide id too where two
    guides would still read the same (nicknames repeat across a brand's stores)."""
    base = [
        " · ".join(
            str(part)
            for part in (g["alias"] or g["guide_id"], g.get("store_name") or g["store_id"])
            if part
        )
        for g in guides
    ]
    seen = Counter(base)
    return [
        b if seen[b] == 1 else f"{b} · {g['guide_id']}" for b, g in zip(base, guides, strict=True)
    ]


@router.get("/stores")
async def stores(request: Request) -> Response:
    """Every store for HQ; a store key sees its own stores only."""
    ctx = await authenticated(request, "stores")
    assert ctx.who is not None
    snaps = await _snapshots(ctx, "stores")
    payload = snaps["stores"].payload if "stores" in snaps else {"stores": [], "months": []}
    rows = payload["stores"]
    if ctx.who.role == Role.STORE:
        rows = [s for s in rows if s["store_id"] in ctx.who.stores]
        if not rows and "stores" in snaps:
            raise ConsoleExit(404)
    top = rows[:TOP]
    trend: dict[str, Any] = {
        s["name"]: {"sales_fen": s["sales_by_month"], "orders": []} for s in top[:5]
    }
    return _page(
        ctx,
        "stores.html",
        snaps,
        ("stores",),
        stores=rows,
        store_chart=charts.bars(
            [s["name"] for s in top], [s["sales_fen"] for s in top], horizontal=True, money=True
        ),
        trend_chart=charts.sales_by_channel(payload["months"], trend),
    )
