"""The console's figures on a demo brand: every page counts the same members and orders,
as of the data's end, on stated bases (issue #14, items 6 and 7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from rich.console import Console
from tests.demo.demo_support import Demo

from siyu.demo.summary import print_summary


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value)[:19])


def test_every_page_is_as_of_the_datas_end(demo: Demo) -> None:
    # given the data's newest order, event and member registration in the store
    newest = max(
        _time(demo.one(f"SELECT MAX({column}) FROM {table} WHERE group_id = :g"))
        for table, column in (
            ("orders", "ordered_at"),
            ("events", "occurred_at"),
            ("members", "registered_at"),
        )
    )
    # then every snapshot is as of that moment, not the last order nor today
    as_of = {kind: _time(p["as_of"]) for kind, p in demo.snaps.items()}
    assert set(as_of.values()) == {newest.replace(microsecond=0)}, as_of
    # and the latest month on the overview and of every monthly KPI is that month
    month = f"{newest:%Y-%m}"
    assert demo.snaps["sales"]["months"][-1] == month
    assert demo.snaps["kpis"]["repurchase"][-1]["month"] == month
    assert demo.snaps["kpis"]["guides"]["months"][-1]["month"] == month


def test_member_counts_agree_between_the_overview_and_the_stages(demo: Demo) -> None:
    # given the members OneID left active in the store
    active = demo.one("SELECT COUNT(*) FROM members WHERE group_id = :g AND status = 'active'")
    # then the overview's member count, the stages' total and the store agree
    overview = demo.snaps["sales"]["members"][-1]
    staged = sum(s["members"] for s in demo.snaps["lifecycle"]["stages"])
    assert overview == staged == active
    # and the demo's own stages table counts the same members in the same stages
    assert dict(demo.result.lifecycle.stages) == {  # type: ignore[union-attr]
        s["stage"]: s["members"] for s in demo.snaps["lifecycle"]["stages"]
    }


def test_order_counts_agree_with_the_demo_summary_and_name_the_cancelled(demo: Demo) -> None:
    # given the demo's summary, printed as a user reads it
    console = Console(record=True, width=200)
    print_summary(console, demo.result, "en")
    printed = console.export_text()
    imported = sum(n for _, n, _ in demo.result.orders_by_channel)
    cancelled = demo.one("SELECT COUNT(*) FROM orders WHERE group_id = :g AND status = 'cancelled'")
    assert cancelled > 0 and demo.result.cancelled_orders == cancelled
    # then the console's orders are the imported ones less the cancelled ones, and the
    # summary says so in those numbers
    kpis = demo.snaps["kpis"]
    assert kpis["totals"]["orders"] == imported - cancelled == demo.result.counted_orders
    assert sum(c["orders"] for c in kpis["channels"]) == kpis["totals"]["orders"]
    assert (
        f"{imported:,} orders imported, {cancelled:,} of them cancelled (never paid); the "
        f"analytics and the console count the other {imported - cancelled:,}"
    ) in " ".join(printed.split())


def test_channel_shares_add_up_and_member_reach_is_labelled_apart(demo: Demo) -> None:
    channels = demo.snaps["kpis"]["channels"]
    # then order and sales shares each add up to 100% (six-place rounding per channel)
    for share in ("order_share", "sales_share"):
        assert sum(c[share] for c in channels) == pytest.approx(1.0, abs=1e-5), share
    # and member reach, which overlaps (a member buys in several channels), adds up to
    # more: it is not called a share on the page (see the console test)
    assert sum(c["member_share"] for c in channels) > 1.0


def test_non_member_enrollment_has_a_realistic_base(demo: Demo) -> None:
    enrollment = demo.snaps["kpis"]["enrollment"]
    # then a realistic share of till orders are by buyers who are not (yet) members ...
    assert 0.2 <= enrollment["non_member_order_share"] <= 0.4, enrollment
    # ... on a base of hundreds of such buyers, some of whom joined later, not all
    assert enrollment["non_member_buyers"] >= 200, enrollment
    assert 0.05 <= enrollment["enrollment_rate"] <= 0.6, enrollment


def test_rfm_layers_mean_something_and_share_the_lifecycles_lapsed(demo: Demo) -> None:
    rfm, life = demo.snaps["rfm"], demo.snaps["lifecycle"]
    segments = {s["segment"]: s["members"] for s in rfm["segments"]}
    stages = {s["stage"]: s["members"] for s in life["stages"]}
    # then RFM's not-recent layers are exactly the lifecycle's lapsed buyers (one
    # definition of "no order for more than 120 days"), and no RFM layer borrows a stage's
    # name
    assert segments["win_back"] + segments["dormant"] == stages["lapsed"]
    assert not set(segments) & set(stages)
    # and frequency has more than two bands (most members buy once), and a member silent
    # for a year or more scores r = 1
    assert len(rfm["layers"]["frequency"]) > 2
    recency = {row["score"]: row for row in rfm["layers"]["recency_days"]}
    assert recency[1]["min"] > 365 and recency[2]["max"] <= 365
    assert recency[3]["min"] > 60 and recency[3]["max"] <= 120
