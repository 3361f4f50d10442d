"""Real data: QR scenes over UCI Online Retail (every customer and invoice imported into a
store, tests/retail_store.py), the scene report checked against pandas straight from the
parquet.

Given: one permanent code per country (`uci-<Country>`, spaces as '-'); each customer
scans the code of its first invoice's country at that invoice's time, which is also when
it registered, so the scan service itself decides the scan acquired it (the 30-minute
window); each customer with a second paid invoice scans `uci-repeat` then (a scan that
acquires no one). One customer in 25 goes through `record_scan`, a transaction per scan as
the API records them; the rest are the brand's history, imported with `record_scans` (a
few statements per batch; tests/scenes/test_bulk_scans.py checks it records what
`record_scan` does). The analytics snapshot fits CLV on the
landed orders. When the report is read with the knee at 4, then per scene the members
acquired, those who reached 1..4+ paid invoices, their revenue (paid invoices,
cancellations left out) and the scans equal pandas, and `acquired_members(scene,
min_orders=k)` lists exactly pandas' members.
CLV comes from a fitted model (BG/NBD + Gamma-Gamma), so it is checked for being there,
finite and summed per scene over the members it valued, not recomputed."""

from __future__ import annotations

import math
from datetime import UTC
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from tests.conftest import Store
from tests.retail_store import Retail, load_retail

from siyu.analytics.landing import land
from siyu.analytics.snapshot import compute_snapshots
from siyu.analytics.stages import StageConfig
from siyu.privacy import Vault
from siyu.scenes import registry
from siyu.scenes.bulk import ScanIn, record_scans
from siyu.scenes.report import acquired_members, scene_report
from siyu.scenes.scans import record_scan

pytestmark = pytest.mark.slow

KNEE = 4
REPEAT = "uci-repeat"
SINGLY = 25  # one customer in SINGLY is recorded scan by scan


def scene_of(country: str) -> str:
    return "uci-" + country.replace(" ", "-")


@pytest.fixture
def scanned(store: Store, vault: Vault, tmp_path: Path) -> tuple[Store, Retail, pd.DataFrame]:
    retail = load_retail(store, vault, tmp_path)
    g, e = store.group_id, store.engine
    first_day = retail.invoices.ordered_at.min().tz_localize(UTC)
    for scene in sorted({scene_of(c) for c in retail.customers.country} | {REPEAT}):
        registry.create(e, g, scene, "permanent", at=first_day)
    paid = retail.invoices[~retail.invoices.cancelled].sort_values("ordered_at", kind="stable")
    second = paid.groupby("customer").nth(1).set_index("customer").ordered_at
    singly: list[ScanIn] = []
    history: list[ScanIn] = []
    for i, (customer, row) in enumerate(retail.customers.iterrows()):
        member = retail.member_of[int(customer)]
        first_at = row.first_at.tz_localize(UTC)
        mine = [ScanIn(scene_of(row.country), f"first:{customer}", member_id=member, at=first_at)]
        if customer in second.index:
            at = second.loc[customer].tz_localize(UTC)
            mine.append(ScanIn(REPEAT, f"repeat:{customer}", member_id=member, at=at))
        (singly if i % SINGLY == 0 else history).extend(mine)
    scans = [
        record_scan(e, g, s.scene, s.key, member_id=s.member_id, at=s.at) for s in singly
    ] + record_scans(e, g, history)
    assert len(scans) == len(singly) + len(history) and len(singly) > 100
    for scan in scans:
        if scan.scene == REPEAT:
            assert not scan.first_touch and scan.flag is None
        else:
            assert scan.first_touch and scan.flag is None
    land(e, g, tmp_path / "wh.duckdb")
    compute_snapshots(e, g, tmp_path / "wh.duckdb", StageConfig(knee=KNEE), write_stages=False)
    # per customer, from the parquet: its scene, paid invoices and revenue
    per = paid.groupby("customer").agg(n=("paid_fen", "size"), revenue=("paid_fen", "sum"))
    expected = retail.customers.join(per).fillna({"n": 0, "revenue": 0})
    expected["scene"] = expected.country.map(scene_of)
    expected["member_id"] = [retail.member_of[int(c)] for c in expected.index]
    expected["repeat_scan"] = expected.index.isin(second.index)
    return store, retail, expected


def test_scene_report_and_its_members_match_pandas(
    scanned: tuple[Store, Retail, pd.DataFrame],
) -> None:
    store, retail, expected = scanned
    rows = {r.scene: r for r in scene_report(store.engine, store.group_id, knee=KNEE)}
    by_scene = expected.groupby("scene")
    assert set(rows) == set(by_scene.groups) | {REPEAT}
    assert len(rows) > 30  # UCI's 37 countries, less those no customer started in
    with store.engine.connect() as conn:
        clv = dict(
            conn.execute(
                text("SELECT member_id, clv_fen FROM member_clv WHERE group_id = :g"),
                {"g": store.group_id},
            ).all()
        )
    # the fitted model valued the buyers: present and finite, never negative
    assert len(clv) > 4000 and all(math.isfinite(v) and v >= 0 for v in clv.values())
    expected["clv"] = expected.member_id.map(clv)
    for scene, mine in by_scene:
        row = rows[str(scene)]
        assert row.acquired == len(mine)
        assert row.scans == len(mine) and row.flagged == 0
        assert row.reached == {k: int((mine.n >= k).sum()) for k in range(1, KNEE + 1)}
        assert row.revenue_fen == int(mine.revenue.sum())
        assert row.clv_members == int(mine.clv.notna().sum())
        assert row.clv_fen == int(mine.clv.sum())
    repeat = rows[REPEAT]
    assert (repeat.acquired, repeat.scans) == (0, int(expected.repeat_scan.sum()))
    # the whole: every customer acquired once, by the country of its first invoice
    assert sum(r.acquired for r in rows.values()) == len(retail.customers)
    # the members behind the counts (one loading serves both questions: it takes a while)
    for scene in ("uci-United-Kingdom", "uci-Germany", "uci-Iceland"):
        mine = expected[expected.scene == scene]
        assert len(mine) > 0
        for k in range(KNEE + 2):
            got = acquired_members(store.engine, store.group_id, scene, min_orders=k)
            assert got == sorted(mine.member_id[mine.n >= k])
    assert acquired_members(store.engine, store.group_id, REPEAT) == []
