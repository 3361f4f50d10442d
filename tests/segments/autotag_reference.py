"""The automatic tags computed directly in pandas from raw tables (the store's, or UCI
Online Retail's), written from the rules in docs/segments.md without calling siyu: what
the Ibis expressions and the store queries must agree with."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import pandas as pd

DAY = 86_400
YEAR = 365
Tagged = dict[int, str | None]


def seconds(times: pd.Series) -> pd.Series:
    """Whole seconds since 1970 of naive UTC times."""
    return pd.to_datetime(times).astype("datetime64[us]").astype("int64") // 1_000_000


def _band(n: int, bands: Iterable[tuple[int, str]], last: str) -> str:
    return next((label for top, label in bands if n <= top), last)


def _top(df: pd.DataFrame, key: str, weight: str | None) -> Tagged:
    """Per member the key with the largest weight (count of rows when None), then the
    latest order, then the smallest key."""
    grouped = df.groupby(["member_id", key])
    per = grouped.agg(
        n=("ts", "size") if weight is None else (weight, "sum"), last=("ts", "max")
    ).reset_index()
    per = per[per.n > 0].sort_values(
        ["member_id", "n", "last", key], ascending=[True, False, False, True]
    )
    first = per.drop_duplicates("member_id")
    return {int(m): str(v) for m, v in zip(first.member_id, first[key], strict=True)}


def warehouse_tags(
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    events: pd.DataFrame,
    products: pd.DataFrame,
    stores: pd.DataFrame,
    active: set[int],
    t: int,
    online: set[str],
) -> dict[str, Tagged]:
    """orders: order_id member_id status ordered_at channel store_id brand_id discount_fen
    paid_fen; lines: order_id sku qty amount_fen; events: member_id type occurred_at;
    products: sku category; stores: store_id city; t: the as-of time in epoch seconds."""
    o = orders[(orders.status != "cancelled") & orders.member_id.notna()].copy()
    o["member_id"] = o.member_id.astype("int64")
    o["ts"] = seconds(o.ordered_at)
    o = o[(o.ts <= t) & o.member_id.isin(active)]
    year = o[o.ts > t - YEAR * DAY]
    ln = lines.merge(o[["order_id", "member_id", "ts"]], on="order_id")
    ln_year = ln[ln.ts > t - YEAR * DAY]
    out: dict[str, Tagged] = {
        "auto.preferred_channel": _top(year, "channel", None),
        "auto.preferred_store": _top(year[year.store_id.notna()], "store_id", None),
        "auto.preferred_city": _top(year.merge(stores, on="store_id"), "city", None),
        "auto.preferred_brand": _top(year, "brand_id", "paid_fen"),
        "auto.preferred_category": _top(
            ln_year.merge(products, on="sku"), "category", "amount_fen"
        ),
    }
    # same city: the city of the first store order (time, then order id) against the cities
    # of the year's store orders
    served = o.merge(stores, on="store_id")
    first = served.sort_values(["member_id", "ts", "order_id"]).drop_duplicates("member_id")
    home = dict(zip(first.member_id, first.city, strict=True))
    served_year = served[served.ts > t - YEAR * DAY]
    away = (served_year.city != served_year.member_id.map(home)).groupby(served_year.member_id)
    out["auto.same_city"] = {
        int(m): "elsewhere" if k > 0 else "home_city" for m, k in away.sum().items()
    }
    discount = year.assign(d=(year.discount_fen > 0).astype(int)).groupby("member_id")
    sens = discount.agg(n=("d", "size"), d=("d", "sum"))
    out["auto.discount_sensitivity"] = {
        int(m): "none" if d == 0 else "low" if 3 * d < n else "mid" if 3 * d < 2 * n else "high"
        for m, n, d in zip(sens.index, sens.n, sens.d, strict=True)
    }
    priced = (
        ln_year[ln_year.qty > 0].groupby("member_id").agg(q=("qty", "sum"), s=("amount_fen", "sum"))
    )
    avg = priced.s.astype(float) / priced.q.astype(float)
    rank = avg.rank(method="min").astype(int) - 1
    n = len(avg)
    out["auto.price_band"] = {
        int(m): "low" if 3 * r < n else "mid" if 3 * r < 2 * n else "high" for m, r in rank.items()
    }
    brands = o.groupby("member_id").brand_id.nunique()
    out["auto.multi_brand"] = {int(m): str(k) for m, k in brands.items() if k >= 2}
    kinds = o.assign(on=o.channel.isin(online)).groupby("member_id").on.agg(["any", "all"])
    out["auto.online_offline"] = {int(m): None for m in kinds.index[kinds["any"] & ~kinds["all"]]}
    first = o.groupby("member_id").ts.min()
    out["auto.customer"] = {
        int(m): "new" if f > t - 90 * DAY else "existing" for m, f in first.items()
    }
    counts = year.groupby("member_id").size()
    frequency = ((1, "1"), (3, "2-3"), (9, "4-9"))
    out["auto.frequency"] = {int(m): _band(k, frequency, "10+") for m, k in counts.items()}
    last = o.groupby("member_id").ts.max()
    recency = ((30, "0-30"), (90, "31-90"), (180, "91-180"), (365, "181-365"))
    out["auto.recency"] = {int(m): _band((t - a) // DAY, recency, "366+") for m, a in last.items()}
    e = events[events.member_id.notna()].copy()
    e["member_id"] = e.member_id.astype("int64")
    e["ts"] = seconds(e.occurred_at)
    e = e[(e.ts <= t) & e.member_id.isin(active)]
    for slug, kind, days in (
        ("auto.sign_in", "sign_in", 30),
        ("auto.share", "share", 90),
        ("auto.browse", "view", 30),
        ("auto.read", "read", 30),
        ("auto.like", "like", 90),
        ("auto.survey", "survey", 365),
    ):
        chosen = e[(e.type == kind) & (e.ts > t - days * DAY)].groupby("member_id").size()
        out[slug] = {int(m): _band(k, ((2, "1-2"), (9, "3-9")), "10+") for m, k in chosen.items()}
    return out


def store_tags(
    members: pd.DataFrame,
    identities: pd.DataFrame,
    stages: pd.DataFrame,
    rfm: pd.DataFrame,
    clv: pd.DataFrame,
    tiers: pd.DataFrame,
    as_of: date,
) -> dict[str, Tagged]:
    """members: member_id status gender birth_date; identities: member_id type
    source_channel; stages: member_id stage; rfm: member_id segment; clv: member_id clv_fen;
    tiers: member_id scope_key tier_code."""
    active = set(members.member_id[members.status == "active"].astype(int))

    def mine(df: pd.DataFrame) -> pd.DataFrame:
        return df[df.member_id.astype(int).isin(active)]

    out: dict[str, Tagged] = {
        "auto.stage": {
            int(m): s for m, s in zip(mine(stages).member_id, mine(stages).stage, strict=True)
        },
        "auto.rfm": {
            int(m): s for m, s in zip(mine(rfm).member_id, mine(rfm).segment, strict=True)
        },
    }
    held: dict[int, list[str]] = {}
    for m, scope, code in sorted(mine(tiers).itertuples(index=False, name=None)):
        held.setdefault(int(m), []).append(code if scope == "*" else f"{scope}:{code}")
    out["auto.tier"] = {m: ",".join(v) for m, v in held.items()}
    c = mine(clv)
    rank = c.clv_fen.rank(method="min", ascending=False).astype(int) - 1
    out["auto.clv_band"] = {
        int(m): "high" if 10 * r < 2 * len(c) else "mid" if 10 * r < 5 * len(c) else "low"
        for m, r in zip(c.member_id, rank, strict=True)
    }
    contact: dict[int, int] = {}
    for m, kind, channel in mine(identities).itertuples(index=False, name=None):
        rank_of = {"external_userid": 0, "phone": 3}.get(kind)
        if kind == "openid":
            rank_of = 1 if channel == "official_account" else 2
        if rank_of is not None:
            contact[int(m)] = min(contact.get(int(m), 9), rank_of)
    methods = ("wecom", "official_account", "miniprogram", "sms")
    out["auto.contact_method"] = {m: methods[r] for m, r in contact.items()}
    live = mine(members)
    out["auto.gender"] = {
        int(m): g for m, g in zip(live.member_id, live.gender, strict=True) if g in ("f", "m")
    }
    born = live[live.birth_date.notna()]
    months: Tagged = {}
    ages: Tagged = {}
    for m, b in zip(born.member_id, born.birth_date, strict=True):
        d = date.fromisoformat(str(b)[:10])
        months[int(m)] = f"{d.month:02d}"
        age = as_of.year - d.year - ((as_of.month, as_of.day) < (d.month, d.day))
        if age >= 0:
            bands = ((17, "<18"), (24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54"))
            ages[int(m)] = _band(age, bands, "55+")
    out["auto.birth_month"] = months
    out["auto.age_band"] = ages
    return out


# The default affinity rules (docs/segments.md, "Affinity score")
AFFINITY = {
    "orders": 10.0,
    "spend_per_100_yuan": 5.0,
    "sign_in": 1.0,
    "share": 3.0,
    "view": 0.1,
    "add_to_cart": 0.5,
    "follow": 2.0,
    "wecom_add": 3.0,
}
AFFINITY_BANDS = ((100.0, "high"), (30.0, "medium"), (1.0, "low"))


def affinity_scores(
    orders: pd.DataFrame,
    refunds: pd.DataFrame,
    events: pd.DataFrame,
    active: set[int],
    t: int,
    coefficients: dict[str, float] = AFFINITY,
    window_days: int = YEAR,
    half_life_days: float | None = 90,
) -> dict[int, float]:
    """Per active member with a fact in (t - window, t]: Σ coefficient × 0.5^(age /
    half-life) (no decay without one) over orders (count, and spend less refunds per 100
    yuan) and events; a behaviour without a coefficient counts 0."""

    def weight(ts: int) -> float:
        return 1.0 if half_life_days is None else 0.5 ** ((t - ts) / (half_life_days * DAY))

    o = orders[(orders.status != "cancelled") & orders.member_id.notna()].copy()
    o["ts"] = seconds(o.ordered_at)
    o = o[(o.ts > t - window_days * DAY) & (o.ts <= t)]
    back = refunds.groupby("order_id").amount_fen.sum()
    o["net"] = o.paid_fen - o.order_id.map(back).fillna(0)
    per_order = coefficients.get("orders", 0.0)
    per_100 = coefficients.get("spend_per_100_yuan", 0.0)
    score: dict[int, float] = {}
    for m, ts, net in zip(o.member_id.astype(int), o.ts, o.net, strict=True):
        add = per_order * weight(ts) + per_100 * net / 10_000 * weight(ts)
        score[m] = score.get(m, 0.0) + add
    e = events[events.member_id.notna()].copy()
    e["ts"] = seconds(e.occurred_at)
    e = e[(e.ts > t - window_days * DAY) & (e.ts <= t)]
    for m, kind, ts in zip(e.member_id.astype(int), e.type, e.ts, strict=True):
        score[m] = score.get(m, 0.0) + coefficients.get(kind, 0.0) * weight(ts)
    return {m: total for m, total in score.items() if m in active}


def affinity(
    orders: pd.DataFrame,
    refunds: pd.DataFrame,
    events: pd.DataFrame,
    active: set[int],
    t: int,
    window_days: int = YEAR,
    half_life_days: float = 90,
) -> Tagged:
    """The default rules' bands of the score rounded to 4 places."""
    scores = affinity_scores(
        orders, refunds, events, active, t, AFFINITY, window_days, half_life_days
    )
    out: Tagged = {}
    for m, total in scores.items():
        shown = round(total, 4)
        band = next((label for least, label in AFFINITY_BANDS if shown >= least), None)
        if band is not None:
            out[m] = band
    return out
