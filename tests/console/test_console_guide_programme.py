"""HQ's programme report for guides (issue #19, "metrics per stage of the programme"), in
process on the real app, on SQLite and PostgreSQL.

Given the hand-made journey brand (guides G1, G2, G3 at S1, G4 at S2) with December
2024's attributed orders and a refund, and a programme whose "sales" stage (from
November) sets sales >= ¥150, orders >= 1 and a refund rate <= 40%:

    guide  orders  paid     refunded  sales    refund rate  every target
    G1     2       30,000   10,000    20,000   33.33%       met
    G2     1       30,000   0         30,000   0%           met
    G3     0       0        0         0        -            not met (no sales, no rate)
    G4     1       40,000   0         40,000   0%           met

the page shows the stage in force and who met its targets, pages, exports the report
as CSV, and opens for HQ only."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from tests.conftest import Store
from tests.guides.journey import Journey, at, make_journey

from siyu.app import create_app
from siyu.auth.keys import create_key
from siyu.config import Settings
from siyu.console import guide_programme_pages
from siyu.console.guide_programme_pages import programme_csv
from siyu.guides.attribution import attribute
from siyu.guides.binding import bind_all
from siyu.guides.programme import parse, programme_report, save_programme
from siyu.privacy import Vault

DEC, JAN = datetime(2024, 12, 1), datetime(2025, 1, 1)
PROGRAMME = {
    "stages": [
        {
            "code": "sales",
            "name_zh": "销售冲刺",
            "name_en": "Sales push",
            "starts_on": "2024-11-01",
            "focus": [
                {"metric": "sales_fen", "min": 15_000},
                {"metric": "orders", "min": 1},
                {"metric": "refund_rate_bp", "max": 4_000},
                {"metric": "members_served"},
            ],
        },
        {
            "code": "sharing",
            "name_zh": "分享拓客",
            "name_en": "Sharing reach",
            "starts_on": "2025-01-01",
            "focus": [{"metric": "shares", "min": 5}],
        },
    ]
}


@dataclass
class Console:
    client: TestClient
    journey: Journey
    keys: dict[str, str]

    def login(self, who: str, lang: str = "zh") -> None:
        self.client.cookies.clear()
        self.client.get(f"/console/login?lang={lang}")
        token = str(self.client.cookies.get("siyu_csrf"))
        done = self.client.post(
            "/console/login", data={"csrf": token, "key": self.keys[who]}, follow_redirects=False
        )
        assert done.status_code == 303, done.text

    def get(self, path: str) -> object:
        return self.client.get(path, follow_redirects=False)


def _journey(store: Store, vault: Vault, tmp_path: Path) -> Journey:
    journey = make_journey(store, vault, tmp_path)
    for member, order, day, guide, paid in (
        ("M1", "J-M1", 2, "G1", 10_000),
        ("M2", "J-M2", 28, "G1", 20_000),
        ("M3", "J-M3", 3, "G2", 30_000),
        ("M5", "J-M5", 4, "G4", 40_000),
    ):
        journey.order(member, order, at(day), guide, paid=paid)
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO refunds (group_id, refund_id, order_id, refunded_at, amount_fen) "
                "VALUES (:g, 'R-M2', 'J-M2', :t, 10000)"
            ),
            {"g": store.group_id, "t": at(29)},
        )
    bind_all(store.engine, store.group_id, at=at(31))
    attribute(store.engine, store.group_id, DEC, JAN, at=at(31))
    return journey


@pytest.fixture
def console(store: Store, vault: Vault, tmp_path: Path) -> Iterator[Console]:
    journey = _journey(store, vault, tmp_path)
    engine, g = store.engine, store.group_id
    issued = {
        "admin": create_key(engine, vault, g, "admin"),
        "analyst": create_key(engine, vault, g, "analyst"),
        "s1": create_key(engine, vault, g, "store", stores=("S1",)),
        "g1": create_key(engine, vault, g, "guide", guide_id="G1"),
    }
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(
        Settings(database_url=url, secret_key=bytes(range(32)), group_id=g), rate_per_second=0
    )
    with TestClient(app) as client:
        yield Console(client, journey, {k: v.secret for k, v in issued.items()})
    app.state.services.engine.dispose()


def _with_programme(console: Console) -> None:
    store = console.journey.store
    save_programme(store.engine, store.group_id, parse(PROGRAMME))


def _rows(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-guide="(\w+)" data-met="(\d?)"', html))


def test_hq_reads_the_stage_in_force_and_who_met_its_targets(console: Console) -> None:
    # given the programme and HQ logged in (in Chinese)
    _with_programme(console)
    console.login("admin")
    # when it opens the report with no period: the month of the newest attributed order
    page = console.get("/console/guide-programme")
    assert page.status_code == 200, page.text  # type: ignore[attr-defined]
    html = page.text  # type: ignore[attr-defined]
    # then December is measured by the "sales" stage, in Chinese
    assert 'data-stage="sales"' in html and "当期阶段：销售冲刺（自 2024-11-01 起）" in html
    assert 'name="since" value="2024-12-01"' in html and 'name="until" value="2025-01-01"' in html
    # and G1, G2 and G4 met every target, G3 (no sales, a refund rate over nothing) none
    assert _rows(html) == {"G1": "1", "G2": "1", "G3": "0", "G4": "1"}
    assert 'data-met="3" data-guides="4"' in html and "3/4 位导购达成全部目标" in html
    # and the totals count the guides meeting each target; the untargeted one says so
    totals = dict(re.findall(r'<tr data-metric="(\w+)" data-met="(\d+)"', html))
    assert totals == {"sales_fen": "3", "orders": "3", "refund_rate_bp": "3", "members_served": "0"}
    assert "无目标" in html
    # and each guide opens its members
    assert 'href="/console/guides/G1"' in html
    # and the figures are the service's report's
    store = console.journey.store
    with store.engine.connect() as conn:
        report = programme_report(conn, store.group_id, DEC, JAN)
    assert {g.guide_id: int(bool(g.met_all)) for g in report.guides} == {
        k: int(v) for k, v in _rows(html).items()
    }


def test_the_csv_is_the_report(console: Console) -> None:
    # given the programme and an analyst (HQ, read-only)
    _with_programme(console)
    console.login("analyst", "en")
    # when it exports December
    got = console.get("/console/guide-programme.csv?since=2024-12-01&until=2025-01-01")
    assert got.status_code == 200  # type: ignore[attr-defined]
    body = got.text  # type: ignore[attr-defined]
    # then the file is the service's report, row for row
    store = console.journey.store
    with store.engine.connect() as conn:
        report = programme_report(conn, store.group_id, DEC, JAN)
    assert body == programme_csv(report)
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["guide_id"] for r in rows] == ["G1", "G2", "G3", "G4"]
    g1 = rows[0]
    assert (g1["stage"], g1["sales_fen"], g1["sales_fen_min"], g1["sales_fen_met"]) == (
        "sales",
        "20000",
        "15000",
        "1",
    )
    assert (g1["refund_rate_bp"], g1["refund_rate_bp_max"], g1["met_all"]) == ("3333", "4000", "1")
    g3 = rows[2]
    assert (g3["refund_rate_bp"], g3["refund_rate_bp_met"], g3["met_all"]) == ("", "0", "0")
    assert g3["members_served_met"] == "" and g3["members_served_min"] == ""


def test_the_guides_page(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    # given two guides a page
    monkeypatch.setattr(guide_programme_pages, "PER_PAGE", 2)
    _with_programme(console)
    console.login("admin", "en")
    # when HQ walks the pages
    first = console.get("/console/guide-programme?since=2024-12-01&until=2025-01-01")
    html = first.text  # type: ignore[attr-defined]
    second = console.get("/console/guide-programme?since=2024-12-01&until=2025-01-01&page=2")
    # then each shows its two guides, the totals stay every guide's, and the pager links on
    assert list(_rows(html)) == ["G1", "G2"]
    assert list(_rows(second.text)) == ["G3", "G4"]  # type: ignore[attr-defined]
    assert "page=2" in html and "3 of 4 guides met every target" in html


def test_every_count_of_guides_opens_the_guides_behind_it(console: Console) -> None:
    # given the programme and HQ reading December in English
    _with_programme(console)
    console.login("admin", "en")
    period = "since=2024-12-01&until=2025-01-01"
    html = console.get(f"/console/guide-programme?{period}").text  # type: ignore[attr-defined]
    # then "3 of 4 met every target" and each targeted total's count are links, and the
    # untargeted metric's is not
    links = re.findall(r'href="/console/guide-programme\?[^"]*met=(\w+)#programme-guides"', html)
    assert links == ["all", "sales_fen", "orders", "refund_rate_bp"]
    # when HQ follows "every target"
    page = console.get(f"/console/guide-programme?{period}&met=all")
    html = page.text  # type: ignore[attr-defined]
    # then the table lists the three who did, says so, and offers every guide back; the
    # totals above stay every guide's
    assert page.status_code == 200  # type: ignore[attr-defined]
    assert list(_rows(html)) == ["G1", "G2", "G4"]
    assert 'data-met="all" data-shown="3"' in html and "The 3 guides who met every target" in html
    back = period.replace("&", "&amp;")
    assert f'href="/console/guide-programme?{back}#programme-guides" id="met-clear"' in html
    assert 'data-met="3" data-guides="4"' in html
    # and its export is those three, with the filter in the file's name
    got = console.get(f"/console/guide-programme.csv?{period}&met=all")
    rows = list(csv.DictReader(io.StringIO(got.text)))  # type: ignore[attr-defined]
    assert [r["guide_id"] for r in rows] == ["G1", "G2", "G4"]
    assert "-met-all.csv" in got.headers["content-disposition"]  # type: ignore[attr-defined]
    # and one metric's count opens the guides who met that target, in Chinese too
    console.login("admin")
    html = console.get(f"/console/guide-programme?{period}&met=refund_rate_bp").text  # type: ignore[attr-defined]
    assert list(_rows(html)) == ["G1", "G2", "G4"]
    assert "达成「退款率」的 3 位导购" in html


@pytest.mark.parametrize("met", ["members_served", "nonsense"])
def test_a_filter_on_no_target_is_refused_naming_the_field(console: Console, met: str) -> None:
    # given the programme: members served has no target, so nobody "met" it
    _with_programme(console)
    console.login("admin", "en")
    period = "since=2024-12-01&until=2025-01-01"
    page = console.get(f"/console/guide-programme?{period}&met={met}")
    # then the page and the export refuse it, naming the field and what it takes
    assert page.status_code == 422  # type: ignore[attr-defined]
    assert "met: must be one of all, sales_fen, orders, refund_rate_bp" in page.text  # type: ignore[attr-defined]
    got = console.get(f"/console/guide-programme.csv?{period}&met={met}")
    assert got.status_code == 422  # type: ignore[attr-defined]
    assert got.text.startswith("met: must be one of all, sales_fen")  # type: ignore[attr-defined]


def test_a_period_the_programme_does_not_cover_is_told_so(console: Console) -> None:
    console.login("admin", "en")
    # given no programme: a 409 naming it, and nothing else shown
    page = console.get("/console/guide-programme?since=2024-12-01&until=2025-01-01")
    assert page.status_code == 409  # type: ignore[attr-defined]
    assert "No programme set yet." in page.text  # type: ignore[attr-defined]
    # given the programme: a period before its first stage is a 409 naming the stage's start
    _with_programme(console)
    page = console.get("/console/guide-programme?since=2024-10-01&until=2024-11-01")
    assert page.status_code == 409  # type: ignore[attr-defined]
    assert "2024-11-01" in page.text  # type: ignore[attr-defined]
    # and a bad date or an empty period is a 422 naming the field and the rule
    page = console.get("/console/guide-programme?since=2024-13-01&until=2025-01-01")
    assert page.status_code == 422  # type: ignore[attr-defined]
    assert "since: must be a date, YYYY-MM-DD" in page.text  # type: ignore[attr-defined]
    got = console.get("/console/guide-programme.csv?since=2025-01-01&until=2024-12-01")
    assert got.status_code == 422  # type: ignore[attr-defined]
    assert got.text == "until: must be after since\n"  # type: ignore[attr-defined]


@pytest.mark.parametrize("who", ["s1", "g1"])
def test_store_and_guide_keys_are_refused(console: Console, who: str) -> None:
    # given the programme and a store's or a guide's key (they read theirs elsewhere)
    _with_programme(console)
    console.login(who)
    # then neither the page nor its export opens, and the navigation does not offer it
    for path in ("/console/guide-programme", "/console/guide-programme.csv"):
        assert console.get(path).status_code == 403, path  # type: ignore[attr-defined]
    home = console.client.get("/console/members")
    assert 'data-page="guide_programme"' not in home.text
