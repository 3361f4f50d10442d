"""What people see from `siyu analyze` without --json: Rich tables and a text curve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from siyu.analytics.retention import RetentionRow

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """One block character per value, scaled 0..1 (rates); a gap where there is none."""
    return "".join(
        " " if v is None else BLOCKS[min(int(v * len(BLOCKS)), len(BLOCKS) - 1)] for v in values
    )


def print_retention(
    console: Console, rows: Sequence[RetentionRow], payload: dict[str, Any]
) -> None:
    """The curve as a table, a sparkline under it, and the knee."""
    knee = payload["knee"]
    table = Table(
        title=f"Retention by order count (W = {payload['window_days']} days, "
        f"as of {payload['as_of']})"
    )
    for name in ("k", "members", "eligible", "retained", "rate", "95% CI", "jump"):
        table.add_column(name, justify="right")
    jumps = {p["k"]: p["jump"] for p in payload["knee_evidence"]["evidence"]}
    for r in rows:
        mark = " ◀ knee" if r.k == knee else ""
        table.add_row(
            f"{r.k}{mark}",
            f"{r.members:,}",
            f"{r.eligible:,}",
            f"{r.retained:,}",
            "-" if r.rate is None else f"{r.rate:.1%}",
            "-" if r.ci_low is None or r.ci_high is None else f"{r.ci_low:.1%}-{r.ci_high:.1%}",
            "" if jumps.get(r.k) is None else f"{jumps[r.k]:+.1%}",
        )
    console.print(table)
    console.print(f"rate by k  {sparkline([r.rate for r in rows])}  (k = 1..{len(rows)})")
    if knee is None:
        console.print("no knee: no supported rise in the retention rate")
    else:
        console.print(
            f"knee at k = {knee} ({payload['knee_evidence']['method']}): members who reach "
            f"{knee} orders stay; run the journey in {knee} stages"
        )


def print_rfm(console: Console, payload: dict[str, Any]) -> None:
    """Segments with their size and money, then what each score means."""
    table = Table(title=f"RFM segments ({payload['layering']} layers, as of {payload['as_of']})")
    for name in ("segment", "members", "share", "orders", "monetary (CNY)"):
        table.add_column(name, justify="right" if name != "segment" else "left")
    for s in payload["segments"]:
        table.add_row(
            s["segment"],
            f"{s['members']:,}",
            f"{s['share']:.1%}",
            f"{s['orders']:,}",
            _yuan(s["monetary_fen"]),
        )
    console.print(table)
    layers = Table(title="Score layers (value range behind each score)")
    layers.add_column("score", justify="right")
    for axis in payload["layers"]:
        layers.add_column(axis, justify="right")
    scores = sorted({row["score"] for rows in payload["layers"].values() for row in rows})
    for score in scores:
        cells = []
        for rows in payload["layers"].values():
            row = next((r for r in rows if r["score"] == score), None)
            cells.append(
                "-" if row is None else f"{row['min']:,}..{row['max']:,} ({row['members']:,})"
            )
        layers.add_row(str(score), *cells)
    console.print(layers)


def print_clv(console: Console, payload: dict[str, Any]) -> None:
    """Fitted parameters and the totals."""
    table = Table(title="CLV models")
    table.add_column("model")
    table.add_column("parameters")
    table.add_column("log-likelihood", justify="right")
    for model, names in (("bgnbd", ("r", "alpha", "a", "b")), ("gamma_gamma", ("p", "q", "gamma"))):
        if model in payload:
            fit = payload[model]
            params = ", ".join(f"{n}={fit[n]:.4g}" for n in names)
            table.add_row(model, params, f"{fit['log_likelihood']:.1f}")
    console.print(table)
    console.print(
        f"{payload['members']:,} members; expected purchases in the next "
        f"{payload['horizon_periods']} periods: {payload['expected_purchases']:,.1f}"
    )
    if "clv_fen" in payload:
        console.print(f"CLV over that horizon: {_yuan(payload['clv_fen'])} CNY")


def _yuan(fen: int) -> str:
    # integer arithmetic: money is never a float, not even for display
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan:,}.{cents:02d}"


def print_stages(console: Console, payload: dict[str, Any]) -> None:
    """Members per stage, then the last month's moves as a matrix (before -> after)."""
    source = "found in the data" if payload["knee_source"] == "data" else "given"
    table = Table(title=f"Lifecycle stages as of {payload['as_of']}")
    for name in ("stage", "members", "share"):
        table.add_column(name, justify="left" if name == "stage" else "right")
    for s in payload["stages"]:
        share = "-" if s["share"] is None else f"{s['share']:.1%}"
        table.add_row(s["stage"], f"{s['members']:,}", share)
    console.print(table)
    console.print(
        f"knee = {payload['knee']} ({source}): new_1 .. new_{payload['knee'] - 1}, then loyal"
    )
    if not payload["transitions"]:
        return
    last = payload["transitions"][-1]
    names = list(last["matrix"])
    moves = Table(title=f"Moves in {last['month']} (rows: stage before, columns: after)")
    moves.add_column("before \\ after")
    for name in names:
        moves.add_column(name, justify="right")
    for before in names:
        moves.add_row(before, *(f"{last['matrix'][before][after]:,}" for after in names))
    console.print(moves)


def print_landing(console: Console, payload: dict[str, Any]) -> None:
    """Per table: partitions, what changed and the rows landed."""
    table = Table(title=f"Landed into {payload['warehouse']} ({payload['format']})")
    for name in ("table", "partitions", "changed", "rows landed", "latest day", "seconds"):
        table.add_column(name, justify="left" if name == "table" else "right")
    for name, t in payload["tables"].items():
        table.add_row(
            name,
            f"{t['partitions']:,}",
            f"{t['changed']:,}",
            f"{t['rows']:,}",
            t.get("latest_day") or "",
            f"{t['seconds']:.2f}",
        )
    console.print(table)
    moves = payload.get("identity_moves")
    if moves:
        console.print(
            f"Identities OneID moved ({moves['how']}, {moves['seconds']:.2f} s): "
            f"{moves['rewritten']:,} fact rows given their new member, "
            f"{moves['looked_up']:,} identities looked up when read"
        )


def print_kpis(console: Console, payload: dict[str, Any]) -> None:
    """The KPIs as a few small tables; every number is in --json too."""
    totals = payload["totals"]
    console.print(
        f"As of {payload['as_of']}: {totals['orders']:,} orders, {_yuan(totals['sales_fen'])} "
        f"CNY, {totals['members']:,} buying members"
    )
    channels = Table(title="Channels (a member buying in two counts in both)")
    for name in ("channel", "orders", "sales (CNY)", "sales share", "members", "member share"):
        channels.add_column(name, justify="left" if name == "channel" else "right")
    for c in payload["channels"]:
        channels.add_row(
            c["channel"],
            f"{c['orders']:,}",
            _yuan(c["sales_fen"]),
            _pct(c["sales_share"]),
            f"{c['members']:,}",
            _pct(c["member_share"]),
        )
    console.print(channels)
    months = Table(title="By month (last 12)")
    for name in ("month", "buyers", "repeat", "returning", "cross-brand", "guide share"):
        months.add_column(name, justify="left" if name == "month" else "right")
    cross = {m["month"]: m for m in payload["cross_brand"]["months"]}
    guides = {m["month"]: m for m in payload["guides"]["months"]}
    for r in payload["repurchase"][-12:]:
        months.add_row(
            r["month"],
            f"{r['buyers']:,}",
            _pct(r["repeat_rate"]),
            _pct(r["returning_rate"]),
            _pct(cross[r["month"]]["rate"]),
            _pct(guides[r["month"]]["sales_share"]),
        )
    console.print(months)
    for key, by, label in (
        ("funnel", "channel", "channel"),
        ("funnel_guides", "guide_id", "guide"),
    ):
        if not payload.get(key):
            continue
        funnel = Table(
            title=f"Funnel by {label}: members per step (conversion from the step before)"
        )
        funnel.add_column(label)
        for step in ("view", "add_to_cart", "order", "pay"):
            funnel.add_column(step, justify="right")
        for f in payload[key]:
            cells = [
                f"{s['members']:,}"
                + ("" if s["conversion"] is None else f" ({_pct(s['conversion'])})")
                for s in f["steps"]
            ]
            funnel.add_row(f[by], *cells)
        console.print(funnel)
    overall = payload["cross_brand"]["overall"]
    console.print(f"cross-brand buyers: {_pct(overall['rate'])} of {overall['buyers']:,}")
    console.print(f"guide share of sales: {_pct(payload['guides']['overall']['sales_share'])}")
    if "enrollment" in payload:
        e = payload["enrollment"]
        console.print(
            f"till orders by non-members: {_pct(e['non_member_order_share'])} of "
            f"{e['till_orders']:,}; non-member buyers who enrolled later: "
            f"{_pct(e['enrollment_rate'])} of {e['non_member_buyers']:,}"
        )
    if "same_city" in payload:
        c = payload["same_city"]
        console.print(
            f"same-city share: {_pct(c['order_share'])} of {c['store_orders']:,} store "
            f"orders, {_pct(c['sales_share'])} of their sales"
        )
    if "online" in payload:
        online = payload["online"]
        console.print(
            f"reachable online: {_pct(online['online_rate'])} of members; offline members "
            f"also online: {_pct(online['offline_online_rate'])}"
        )


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"
