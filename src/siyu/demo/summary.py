"""The demo's human summary, in Chinese or English."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from siyu.demo.pipeline import DemoResult
from siyu.i18n import t


def _table(title: str, *columns: str) -> Table:
    tab = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        tab.add_column(c, justify="left" if i == 0 else "right")
    return tab


def print_summary(out: Console, result: DemoResult, lang: str) -> None:
    out.rule(t("demo.title", lang))
    tab = _table(
        t("table.import", lang),
        t("col.kind", lang),
        t("col.read", lang),
        t("col.accepted", lang),
        t("col.rejected", lang),
        t("col.inserted", lang),
    )
    for r in result.imports:
        tab.add_row(r.kind, f"{r.read:,}", f"{r.accepted:,}", f"{r.rejected:,}", f"{r.inserted:,}")
    out.print(tab)

    tab = _table(
        t("table.channels", lang),
        t("col.channel", lang),
        t("col.orders", lang),
        t("col.sales", lang),
    )
    for channel, n, fen in result.orders_by_channel:
        tab.add_row(channel, f"{n:,}", f"{fen / 100:,.0f}")
    out.print(tab)

    tab = _table(t("table.identities", lang), t("col.type", lang), t("col.count", lang))
    for type_name, n in result.identities_by_type:
        tab.add_row(type_name, f"{n:,}")
    out.print(tab)

    tab = _table(t("table.per_member", lang), t("col.count", lang), t("col.members", lang))
    buckets = {"1": 0, "2": 0, "3": 0, "4-5": 0, "6-9": 0, "10+": 0}
    for n, members in result.identities_per_member:
        label = str(n) if n <= 3 else "4-5" if n <= 5 else "6-9" if n <= 9 else "10+"
        buckets[label] += members
    for label, members in buckets.items():
        tab.add_row(label, f"{members:,}")
    out.print(tab)

    q, res = result.quality, result.resolve
    tab = _table(t("table.quality", lang), t("col.metric", lang), t("col.value", lang))
    for key, value in (
        ("metric.identities", f"{q.identities:,}"),
        ("metric.members", f"{q.members:,}"),
        ("metric.true_persons", f"{q.true_persons:,}"),
        ("metric.precision", f"{q.precision:.4f}"),
        ("metric.recall", f"{q.recall:.4f}"),
        ("metric.f1", f"{q.f1:.4f}"),
        ("metric.merges", f"{res.merges:,}"),
        ("metric.conflicts", f"{res.conflicts:,}"),
        ("metric.phone_changes", f"{res.phone_changes:,}"),
    ):
        tab.add_row(t(key, lang), value)
    out.print(tab)

    tab = _table(t("table.timings", lang), t("col.step", lang), t("col.seconds", lang))
    for step, seconds in result.timings.items():
        tab.add_row(step, f"{seconds:.2f}")
    out.print(tab)
    out.print(t("demo.done", lang, seconds=result.seconds, db=result.database_url))
