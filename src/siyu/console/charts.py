"""ECharts options built from snapshot payloads. The page embeds each option as a JSON
data block; the bundled script (web/src/console.js) only hands it to ECharts. Options are
plain data (no functions), so they are built and tested here, in Python."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from siyu.console.i18n import tr

Option = dict[str, Any]


def _yuan(fen: int) -> float:
    # Charts plot yuan; rounding to whole fen happens here, for display only.
    return round(int(fen) / 100, 2)


def sparkline(values: Sequence[float | int | None], labels: Sequence[str]) -> Option:
    """A small line for a KPI card's trend."""
    return {
        "grid": {"left": 2, "right": 2, "top": 4, "bottom": 2},
        "xAxis": {"type": "category", "data": list(labels), "show": False, "boundaryGap": False},
        "yAxis": {"type": "value", "show": False, "scale": True},
        "tooltip": {"trigger": "axis"},
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
    return {
        "legend": {"top": 0, "type": "scroll"},
        "grid": {"left": 60, "right": 10, "top": 40, "bottom": 30},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "category", "data": list(months)},
        "yAxis": {"type": "value"},
        "series": [
            {
                "name": name,
                "type": "bar",
                "stack": "sales",
                "data": [_yuan(v) for v in data["sales_fen"]],
            }
            for name, data in channels.items()
        ],
    }


def retention_curve(curve: Sequence[dict[str, Any]], knee: int | None, lang: str) -> Option:
    ks = [str(r["k"]) for r in curve]
    rates = [None if r["rate"] is None else round(float(r["rate"]) * 100, 1) for r in curve]
    series: dict[str, Any] = {
        "type": "line",
        "name": tr("col.rate", lang),
        "data": rates,
        "symbolSize": 8,
        "label": {"show": True, "formatter": "{c}%"},
    }
    if knee is not None:
        series["markLine"] = {
            "symbol": "none",
            "label": {"formatter": tr("retention.knee", lang, k=knee)},
            "lineStyle": {"type": "dashed", "width": 2, "color": "#d9480f"},
            "data": [{"xAxis": str(knee)}],
        }
        if str(knee) in ks:
            i = ks.index(str(knee))
            series["markPoint"] = {
                "symbol": "pin",
                "itemStyle": {"color": "#d9480f"},
                "data": [{"coord": [str(knee), rates[i]], "value": f"k={knee}"}],
            }
    return {
        "grid": {"left": 50, "right": 20, "top": 40, "bottom": 40},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "category", "data": ks, "name": "k"},
        "yAxis": {"type": "value", "max": 100, "axisLabel": {"formatter": "{value}%"}},
        "series": [series],
    }


def bars(labels: Sequence[str], values: Sequence[float | int], horizontal: bool = False) -> Option:
    category = {"type": "category", "data": list(labels)}
    value = {"type": "value"}
    return {
        "grid": {"left": 110 if horizontal else 50, "right": 20, "top": 20, "bottom": 40},
        "tooltip": {"trigger": "axis"},
        "xAxis": value if horizontal else category,
        "yAxis": {**category, "inverse": True} if horizontal else value,
        "series": [{"type": "bar", "data": list(values), "label": {"show": True}}],
    }


def cohort_heatmap(cohorts: Sequence[dict[str, Any]], lang: str) -> Option:
    width = max((len(c["rates"]) for c in cohorts), default=0)
    cells = [
        [m, y, round(float(rate) * 100, 1)]
        for y, c in enumerate(cohorts)
        for m, rate in enumerate(c["rates"])
        if rate is not None
    ]
    return {
        "grid": {"left": 70, "right": 20, "top": 10, "bottom": 70},
        "tooltip": {"position": "top"},
        "xAxis": {
            "type": "category",
            "data": [tr("cohorts.month_n", lang, n=m) for m in range(width)],
            "splitArea": {"show": True},
        },
        "yAxis": {
            "type": "category",
            "data": [c["cohort"] for c in cohorts],
            "splitArea": {"show": True},
        },
        "visualMap": {
            "min": 0,
            "max": 100,
            "calculable": True,
            "orient": "horizontal",
            "left": "center",
            "bottom": 0,
            "inRange": {"color": ["#f1f3f5", "#74c0fc", "#1864ab"]},
        },
        "series": [{"type": "heatmap", "data": cells, "label": {"show": True, "fontSize": 9}}],
    }


def funnel(steps: Sequence[dict[str, Any]], lang: str) -> Option:
    return {
        "tooltip": {"trigger": "item"},
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


def pie(items: Sequence[tuple[str, float | int]]) -> Option:
    return {
        "tooltip": {"trigger": "item"},
        "legend": {"bottom": 0, "type": "scroll"},
        "series": [
            {
                "type": "pie",
                "radius": ["35%", "65%"],
                "label": {"formatter": "{b}: {d}%"},
                "data": [{"name": n, "value": v} for n, v in items],
            }
        ],
    }
