"""ECharts options built from snapshot payloads. The page embeds each option as a JSON
data block; the bundled script (web/src/console.js) only hands it to ECharts. Options are
plain data (no functions), so they are built and tested here, in Python."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from siyu.console.i18n import tr

Option = dict[str, Any]


KNEE = "#d9480f"  # the knee's colour: its dashed line and its point
# Named value formatters (web/src/console.js maps them to functions): ECharts takes a
# tooltip's `valueFormatter` only as a function, which JSON cannot carry.
CNY, INT, PCT = "cny", "int", "pct"
LABEL_WIDTH = 160  # px of a name on a horizontal bar chart's axis; longer names are cut


def _yuan(fen: int) -> float:
    # Charts plot yuan; rounding to whole fen happens here, for display only.
    return round(int(fen) / 100, 2)


def money_label(fen: int) -> str:
    """Integer fen -> "¥182,657": whole yuan (half up) for a chart's label, where the
    fen would be noise; tooltips and tables give the fen."""
    fen = int(fen)
    yuan = (abs(fen) + 50) // 100
    return f"{'-' if fen < 0 and yuan else ''}¥{yuan:,}"


def _text(name: Any) -> str:
    # ECharts reads {a}/{b|...} in label strings as templates and rich-text styles
    return str(name).replace("{", "(").replace("}", ")")


def sparkline(
    values: Sequence[float | int | None], labels: Sequence[str], value_format: str = INT
) -> Option:
    """A small line for a KPI card's trend; `value_format` names the tooltip's formatter
    (CNY for yuan, PCT for values already in percent)."""
    return {
        "grid": {"left": 2, "right": 2, "top": 4, "bottom": 2},
        "xAxis": {"type": "category", "data": list(labels), "show": False, "boundaryGap": False},
        "yAxis": {"type": "value", "show": False, "scale": True},
        "tooltip": {"trigger": "axis", "valueFormatter": value_format},
        "series": [
            {
                "type": "line",
                "data": list(values),
                "showSymbol": False,
                "lineStyle": {"width": 2},
                "areaStyle": {"opacity": 0.15},
            }
        ],
    }


def sales_by_channel(months: Sequence[str], channels: dict[str, Any]) -> Option:
    """Monthly sales (fen in, yuan plotted) stacked per channel, or per any named series."""
    return {
        "legend": {"top": 0, "type": "scroll"},
        "grid": {"left": 10, "right": 10, "top": 40, "bottom": 30, "containLabel": True},
        "tooltip": {"trigger": "axis", "valueFormatter": CNY},
        "xAxis": {"type": "category", "data": list(months)},
        "yAxis": {"type": "value", "axisLabel": {"formatter": "¥{value}"}},
        "series": [
            {
                "name": _text(name),
                "type": "bar",
                "stack": "sales",
                "data": [_yuan(v) for v in data["sales_fen"]],
            }
            for name, data in channels.items()
        ],
    }


def retention_curve(curve: Sequence[dict[str, Any]], knee: int | None, lang: str) -> Option:
    """The share retained per order count k, every point labelled; the knee is its dashed
    line and its own point, coloured, labelled beside the point (the line runs above it)
    on a white ground. No pin: a pin on the knee covered the knee's label."""
    ks = [str(r["k"]) for r in curve]
    points: list[Any] = []
    for i, r in enumerate(curve):
        if r["rate"] is None:
            points.append(None)
            continue
        rate = round(float(r["rate"]) * 100, 1)
        point: dict[str, Any] = {"value": rate, "label": {"formatter": f"{rate:.1f}%"}}
        if knee is not None and r["k"] == knee:
            point["symbol"] = "diamond"
            point["symbolSize"] = 14
            point["itemStyle"] = {"color": KNEE}
            point["label"].update(
                position="left" if i == len(curve) - 1 else "right",
                distance=8,
                color=KNEE,
                fontWeight="bold",
                backgroundColor="#fff",
                padding=[2, 4],
            )
        points.append(point)
    series: dict[str, Any] = {
        "type": "line",
        "name": tr("col.rate", lang),
        "data": points,
        "symbolSize": 8,
        "label": {"show": True, "position": "top"},
    }
    if knee is not None:
        series["markLine"] = {
            "symbol": "none",
            "label": {"formatter": _text(tr("retention.knee", lang, k=knee))},
            "lineStyle": {"type": "dashed", "width": 2, "color": KNEE},
            "data": [{"xAxis": str(knee)}],
        }
    return {
        "grid": {"left": 50, "right": 30, "top": 40, "bottom": 40},
        "tooltip": {"trigger": "axis", "valueFormatter": PCT},
        "xAxis": {"type": "category", "data": ks, "name": "k"},
        "yAxis": {"type": "value", "max": 100, "axisLabel": {"formatter": "{value}%"}},
        "series": [series],
    }


def bars(
    labels: Sequence[str],
    values: Sequence[int],
    horizontal: bool = False,
    money: bool = False,
) -> Option:
    """One bar per name, every name on the axis (long ones cut, told in full in the
    tooltip), each bar labelled outside its end so a small bar's label stays readable.
    `values` are counts, or fen with `money` (plotted in yuan, labelled "¥182,657")."""
    names = [_text(n) for n in labels]
    data = [
        {
            "value": _yuan(v) if money else int(v),
            "name": n,
            "label": {"formatter": money_label(v) if money else f"{int(v):,}"},
        }
        for n, v in zip(names, values, strict=True)
    ]
    category: dict[str, Any] = {
        "type": "category",
        "data": names,
        "axisTick": {"alignWithLabel": True},
        "axisLabel": {"interval": 0, "hideOverlap": False},
    }
    if horizontal:
        category["inverse"] = True
        category["axisLabel"].update(width=LABEL_WIDTH, overflow="truncate")
    value: dict[str, Any] = {"type": "value"}
    if money:
        value["axisLabel"] = {"formatter": "¥{value}"}
    return {
        "grid": {
            "left": 10,
            "right": 80 if horizontal else 20,
            "top": 24,
            "bottom": 10,
            "containLabel": True,
        },
        "tooltip": {
            "trigger": "axis",
            "axisPointer": {"type": "shadow"},
            "valueFormatter": CNY if money else INT,
        },
        "xAxis": value if horizontal else category,
        "yAxis": category if horizontal else value,
        "series": [
            {
                "type": "bar",
                "data": data,
                "barMinHeight": 3,
                "label": {"show": True, "position": "right" if horizontal else "top"},
            }
        ],
    }


def cohort_heatmap(cohorts: Sequence[dict[str, Any]], lang: str) -> Option:
    """Share of each cohort ordering in each month after its first (month 0, every
    member by definition, is the table's size column, not a cell). The colour scale ends
    at the largest share shown, so 1-15% cells are told apart; a month the data has not
    reached for a cohort has no cell at all (neither a 0 nor a tinted background)."""
    width = max((len(c["rates"]) for c in cohorts), default=1)
    months = [tr("cohorts.month_n", lang, n=m) for m in range(1, max(width, 2))]
    cells: list[dict[str, Any]] = []
    top = 0.0
    for y, c in enumerate(cohorts):
        for m, rate in enumerate(c["rates"]):
            if m == 0 or rate is None:
                continue
            pct = round(float(rate) * 100, 1)
            top = max(top, pct)
            active = c["active"][m] if m < len(c.get("active", [])) else None
            said = f"{c['cohort']} · {months[m - 1]}: {pct:.1f}%"
            if active is not None:
                said += f" ({int(active):,} / {int(c['members']):,})"
            cells.append(
                {
                    "value": [m - 1, y, pct],
                    "label": {"formatter": f"{pct:.1f}%"},
                    "tooltip": {"formatter": _text(said)},
                }
            )
    return {
        "grid": {"left": 10, "right": 20, "top": 10, "bottom": 60, "containLabel": True},
        "tooltip": {"position": "top"},
        "xAxis": {"type": "category", "data": months},
        "yAxis": {
            "type": "category",
            "data": [c["cohort"] for c in cohorts],
            "inverse": True,  # the oldest cohort first, as in the table
        },
        "visualMap": {
            "min": 0,
            "max": top or 1,
            "precision": 1,
            "formatter": "{value}%",
            "calculable": True,
            "orient": "horizontal",
            "left": "center",
            "bottom": 0,
            "inRange": {"color": ["#e7f5ff", "#74c0fc", "#1864ab"]},
        },
        "series": [{"type": "heatmap", "data": cells, "label": {"show": True, "fontSize": 10}}],
    }


def funnel(steps: Sequence[dict[str, Any]], lang: str) -> Option:
    return {
        "tooltip": {"trigger": "item", "valueFormatter": INT},
        "series": [
            {
                "type": "funnel",
                "left": "10%",
                "width": "80%",
                "sort": "none",
                "minSize": "5%",
                "label": {"show": True, "position": "inside"},
                "data": [
                    {"name": tr(f"step.{s['step']}", lang), "value": int(s["members"])}
                    for s in steps
                ],
            }
        ],
    }


def pie(items: Sequence[tuple[str, float | int]], value_format: str = INT) -> Option:
    return {
        "tooltip": {"trigger": "item", "valueFormatter": value_format},
        "legend": {"bottom": 0, "type": "scroll"},
        "series": [
            {
                "type": "pie",
                "radius": ["35%", "65%"],
                "label": {"formatter": "{b}: {d}%"},
                "data": [{"name": _text(n), "value": v} for n, v in items],
            }
        ],
    }
