"""HQ's guide pages (issue #19) in process on the real app, SQLite and PostgreSQL: the
month's commission statements per store and per guide, a guide's lines beside their sum,
the buyers behind a figure, the CSV exports and the paging; the guides' A/B/C classes with
their metrics, spam flag, playbook and history; an order's attribution with its evidence,
masked. Store and guide keys are refused, as the API refuses them the group's statements.

The brand (tests.guides.journey): guides G1, G2, G3 at S1 and G4 at S2, in December 2024

    M1 opens G2's share on the 1st, buys at G1's till on the 5th   -> G2 (share), 10%
    M2 buys at G1's till on the 10th, 5,000 of 20,000 refunded     -> G1 (till), claw 1/4
    M3 buys online on the 12th, the order naming G4                -> G4 (till), 5% online
    M5 opens G3's share on the 3rd and buys nothing                 -> G3: spam risk
    M4 bought at G1's till in November                              -> November's statement

so December's statement earns 1,000 + (2,000 - 500) + 1,500 = 4,000 fen, S1 2,500 and
S2 1,500, from three buyers."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from tests.conftest import Store
from tests.guides.journey import Journey, at, make_journey

from siyu.app import create_app
from siyu.auth.keys import create_key
from siyu.config import Settings
from siyu.console import guide_common
from siyu.guides import commission_accrual as jobs
from siyu.guides.attribution import attribute
from siyu.guides.classes import classify, parse, save_rules
from siyu.guides.commission_rules import CommissionRules, save
from siyu.guides.commission_statements import statement
from siyu.guides.shares import record_share, record_touch
from siyu.privacy import Vault

NOV, DEC, JAN = datetime(2024, 11, 1), datetime(2024, 12, 1), datetime(2025, 1, 1)
COMMISSION = {
    "default_rate_bp": 1_000,
    "freeze_days": 7,
    "rules": [{"name": "mp-rate", "channel": "miniprogram", "rate_bp": 500}],
}
CLASS_RULES = {
    "A": {"min": {"sales_fen": 20_000}, "playbook": {"zh": "分享海报工具", "en": "Poster tools"}},
    "B": {"min": {"orders": 1}, "playbook": {"zh": "标准流程", "en": "The SOPs"}},
    "C": {"playbook": {"zh": "店长督导", "en": "Supervision"}},
}
FIGURES = ("accrued_fen", "clawed_back_fen", "commission_fen", "frozen_fen", "payable_fen")


def seed(j: Journey) -> None:
    engine, g = j.store.engine, j.g
    save(engine, g, CommissionRules.model_validate(COMMISSION), None)
    save_rules(engine, g, parse(CLASS_RULES))
    record_share(engine, g, "G2", "product", "K1", "g2-durian")
    record_share(engine, g, "G3", "campaign", "CNY", "g3-cny")
    record_touch(engine, g, "g2-durian", "m1-open", at(1), member_id=j.members["M1"])
    record_touch(engine, g, "g3-cny", "m5-open", at(3), member_id=j.members["M5"])
    j.order("M4", "o-nov", datetime(2024, 11, 20, 10), guide="G1")
    j.order("M1", "o-in", at(5), guide="G1")
    j.order("M2", "o-till", at(10), guide="G1", paid=20_000)
    j.order("M3", "o-mp", at(12), guide="G4", channel="miniprogram", paid=30_000)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO refunds (group_id, refund_id, order_id, refunded_at, amount_fen) "
                "VALUES (:g, 'r-1', 'o-till', :t, 5000)"
            ),
            {"g": g, "t": at(20)},
        )
    for since, until in ((NOV, DEC), (DEC, JAN)):
        attribute(engine, g, since, until, at=until)
        jobs.accrue(engine, g, since, until)
    jobs.release(engine, g, at=at(31))
    classify(engine, g, DEC, JAN, at=at(31, 23))


@dataclass
class Console:
    client: TestClient
    journey: Journey
    keys: dict[str, str]

    def login(self, role: str, lang: str = "en") -> None:
        self.client.cookies.clear()
        self.client.get(f"/console/login?lang={lang}")
        token = str(self.client.cookies.get("siyu_csrf"))
        done = self.client.post(
            "/console/login", data={"csrf": token, "key": self.keys[role]}, follow_redirects=False
        )
        assert done.status_code == 303, done.text

    def get(self, path: str) -> Any:
        return self.client.get(path, follow_redirects=False)


@pytest.fixture
def console(store: Store, vault: Vault, tmp_path: Path) -> Iterator[Console]:
    j = make_journey(store, vault, tmp_path)
    seed(j)
    engine, g = store.engine, store.group_id
    keys = {
        "admin": create_key(engine, vault, g, "admin").secret,
        "analyst": create_key(engine, vault, g, "analyst").secret,
        "store": create_key(engine, vault, g, "store", stores=("S1",)).secret,
        "guide": create_key(engine, vault, g, "guide", guide_id="G1").secret,
    }
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(
        Settings(database_url=url, secret_key=bytes(range(32)), group_id=g), rate_per_second=0
    )
    with TestClient(app) as client:
        yield Console(client, j, keys)
    app.state.services.engine.dispose()


def row(html: str, attr: str, value: str) -> str:
    found = re.search(rf'<tr {attr}="{re.escape(value)}"[^>]*>(.*?)</tr>', html, re.S)
    assert found, (attr, value)
    return found.group(1)


def fen(block: str, field: str) -> int:
    found = re.search(rf'data-field="{field}" data-fen="(-?\d+)"', block)
    assert found, field
    return int(found.group(1))


def n(block: str, field: str = "buyers") -> int:
    found = re.search(rf'data-field="{field}" data-n="(\d+)"', block)
    assert found, field
    return int(found.group(1))


def csv_rows(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))


def test_hq_reads_the_months_statements_per_store_and_guide(console: Console) -> None:
    # when an analyst opens the commission page without a month
    console.login("analyst", "en")
    page = console.get("/console/commission")
    assert page.status_code == 200, page.text
    html = page.text
    # then it shows the last month with commission (the brand's data ends in December)
    assert '<span id="cm-month">2024-12</span>' in html
    assert 'data-section="guides"' in html and 'data-page="commission"' in html
    # and the month's figures: earned 4,000 fen, by store and by guide, as hand-computed
    total = row(html, "id", "cm-total")
    assert fen(total, "commission_fen") == 1_000 + (2_000 - 500) + 1_500
    assert fen(total, "clawed_back_fen") == 500
    assert n(total) == 3
    assert fen(row(html, "data-store", "S1"), "commission_fen") == 2_500
    assert fen(row(html, "data-store", "S2"), "commission_fen") == 1_500
    g1 = row(html, "data-guide", "G1")
    assert (fen(g1, "accrued_fen"), fen(g1, "clawed_back_fen"), fen(g1, "commission_fen")) == (
        2_000,
        500,
        1_500,
    )
    # G1's November order was released in November: payable at December's end is both
    assert (fen(g1, "frozen_fen"), fen(g1, "payable_fen")) == (0, 1_000 + 1_500)
    # and every figure is the service's statement's
    with console.journey.store.engine.connect() as conn:
        stated = statement(conn, console.journey.g, "2024-12", with_lines=False)
    for guide, totals in stated.by_guide.items():
        block = row(html, "data-guide", guide)
        assert fen(block, "commission_fen") == totals.commission_fen
        assert fen(block, "paid_fen") == totals.paid_fen
    assert set(stated.by_guide) == {"G1", "G2", "G4"}
    # November is its own statement (the month picker's value)
    november = console.get("/console/commission?month=2024-11").text
    assert fen(row(november, "id", "cm-total"), "commission_fen") == 1_000


def test_a_guides_lines_sum_to_its_statement_and_open_their_attribution(
    console: Console,
) -> None:
    console.login("admin", "zh")
    html = console.get("/console/commission?month=2024-12").text
    # when HQ opens G1 from the month's table
    link = re.search(r'<a class="guide-link" href="([^"]+)">小王</a>', html)
    assert link and link.group(1) == "/console/commission/G1?month=2024-12"
    page = console.get(link.group(1).replace("&amp;", "&"))
    assert page.status_code == 200
    lines = page.text
    # then the statement's total equals the sum of its lines, shown both ways
    shown_total = int(re.search(r'data-field="commission_fen" data-fen="(-?\d+)"', lines)[1])
    lines_sum = int(re.search(r'id="lines-sum" data-fen="(-?\d+)"', lines)[1])
    each = [
        int(m)
        for m in re.findall(
            r'<td class="num" data-label="[^"]*" data-field="commission_fen" data-fen="(-?\d+)"',
            lines,
        )
    ]
    assert shown_total == lines_sum == sum(each) == 1_500
    assert "对账单净佣金等于其分录之和" in lines
    # and each line names its order, kind and rule: accrual and clawback of o-till, and the
    # release run (one line per guide and run, no order of its own)
    kinds = re.findall(r'data-kind="(cm_\w+)" data-order="([^"]*)"', lines)
    assert sorted(kinds) == [
        ("cm_accrue", "o-till"),
        ("cm_clawback", "o-till"),
        ("cm_release", ""),
    ]
    # which opens the orders behind it, each to its attribution, summing to its payable
    release = re.search(
        r'data-kind="cm_release".*?<a class="release-link" href="([^"]+)" data-orders="(\d+)">'
        r'(.*?)</a>.*?data-field="payable_fen" data-fen="(-?\d+)"',
        lines,
        re.S,
    )
    assert release and release.group(2) == "1" and release.group(3) == "1 笔订单解冻"
    behind = console.get(release.group(1).replace("&amp;", "&"))
    assert behind.status_code == 200
    assert re.findall(r'<tr data-order="([^"]+)">', behind.text) == ["o-till"]
    assert 'href="/console/attribution/o-till"' in behind.text
    released = re.search(r'id="release-sum" data-fen="(-?\d+)" data-n="1"', behind.text)
    assert released and released.group(1) == release.group(4)
    # and exports them, every order with what was released of it
    export = re.search(r'<a href="([^"]+)" id="release-csv">', behind.text)
    assert export
    got = console.get(export.group(1).replace("&amp;", "&"))
    assert got.status_code == 200
    assert [(r["order_id"], r["released_fen"]) for r in csv_rows(got.text)] == [
        ("o-till", release.group(4))
    ]
    # a release posting is opened (and exported) under its own guide only
    posting = release.group(1).split("/release/")[1].split("?")[0]
    for suffix in ("", ".csv"):
        assert console.get(f"/console/commission/G4/release/{posting}{suffix}").status_code == 404
        assert console.get(f"/console/commission/G1/release/999999{suffix}").status_code == 404
    accrual = row(
        lines, "data-posting", re.search(r'data-posting="(\d+)" data-kind="cm_accrue"', lines)[1]
    )
    assert "默认比例" in accrual and "收银导购" in accrual  # the default rate, the till's guide
    assert 'href="/console/attribution/o-till"' in accrual
    assert f'href="/console/members/{console.journey.members["M2"]}"' in accrual
    # and the order opens its attribution: the till named G1
    why = console.get("/console/attribution/o-till")
    assert why.status_code == 200 and 'data-basis="till"' in why.text
    assert 'id="attr-commission" data-fen="2000"' in why.text


@pytest.mark.parametrize("role", ["admin", "analyst"])
def test_a_guides_members_open_its_statement_and_its_class(console: Console, role: str) -> None:
    console.login(role, "en")
    # when HQ opens G1's members (from the leaderboard or the programme report)
    html = console.get("/console/guides/G1").text
    # then its commission statement and its class are one click away
    links = dict(re.findall(r'<a href="([^"]+)" data-related="(\w+)">', html))
    assert links == {
        "/console/commission/G1": "commission",
        "/console/guide-classes/G1": "guide_classes",
    }
    assert "each order opens why it is theirs" in html
    # and the statement opens (the newest month's), each order linking to its attribution
    statement = console.get("/console/commission/G1")
    assert statement.status_code == 200 and 'href="/console/attribution/o-till"' in statement.text
    assert console.get("/console/guide-classes/G1").status_code == 200


def test_the_share_behind_an_order_is_explained_masked(console: Console) -> None:
    console.login("admin", "en")
    page = console.get("/console/attribution/o-in")
    assert page.status_code == 200
    html = page.text
    # then the order is G2's by the share M1 opened, with the share and the touch
    assert 'data-basis="share" data-guide="G2"' in html
    assert 'data-share="g2-durian"' in html and "Product" in html and "K1" in html
    # and the people are masked even for an admin: no clear name
    m1 = console.journey.members["M1"]
    opener = re.search(r'id="attr-opener">(.*?)</dd>', html, re.S)[1]
    assert f"/console/members/{m1}" in opener
    assert "会员M1" not in html
    # the statement of that month is one click away; an order nobody took is a 404
    assert 'href="/console/commission/G2?month=2024-12"' in html
    assert console.get("/console/attribution/nobody").status_code == 404


def test_buyers_csv_and_paging(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    console.login("analyst", "en")
    # a buyers count opens the members behind it (G2's: M1; S1's: M1 and M2)
    g2 = console.get("/console/commission-buyers?month=2024-12&of_guide=G2")
    assert g2.status_code == 200
    assert re.findall(r'<tr data-member="(\d+)"', g2.text) == [str(console.journey.members["M1"])]
    s1 = console.get("/console/commission-buyers?month=2024-12&of_store=S1").text
    want = sorted(str(console.journey.members[m]) for m in ("M1", "M2"))
    assert sorted(re.findall(r'<tr data-member="(\d+)"', s1)) == want
    listed = console.get("/console/commission-buyers.csv?month=2024-12")
    assert listed.status_code == 200 and len(listed.text.strip().splitlines()) == 1 + 3
    # the month's CSV per guide and per store carries the page's figures
    guides = csv_rows(console.get("/console/commission.csv?month=2024-12").text)
    assert {r["guide_id"]: int(r["commission_fen"]) for r in guides} == {
        "G1": 1_500,
        "G2": 1_000,
        "G4": 1_500,
    }
    assert {r["guide_id"]: int(r["buyers"]) for r in guides} == {"G1": 1, "G2": 1, "G4": 1}
    stores = csv_rows(console.get("/console/commission.csv?month=2024-12&of=stores").text)
    assert [(r["store_id"], int(r["commission_fen"])) for r in stores] == [
        ("S1", 2_500),
        ("S2", 1_500),
    ]
    # a guide's lines as CSV: the rule and the buyer per order, summing to the statement
    lines = csv_rows(console.get("/console/commission/G4/lines.csv?month=2024-12").text)
    accrued = [r for r in lines if r["kind"] == "cm_accrue"]
    assert [(r["order_id"], r["rule"], r["basis"]) for r in accrued] == [
        ("o-mp", "mp-rate", "till")
    ]
    assert sum(int(r["commission_fen"]) for r in lines) == 1_500
    # paging: one guide a page, three pages, each guide on exactly one
    monkeypatch.setattr(guide_common, "PER_PAGE", 1)
    seen = []
    for number in (1, 2, 3):
        html = console.get(f"/console/commission?month=2024-12&page={number}").text
        assert f'data-page="{number}" data-pages="3"' in html
        seen += re.findall(r'<tr data-guide="(G\d)"', html)
    assert sorted(seen) == ["G1", "G2", "G4"]
    # a bad month is refused naming the field
    bad = console.get("/console/commission?month=2024-13")
    assert bad.status_code == 422 and "month" in bad.text


def test_guide_classes_metrics_spam_history_and_members(console: Console) -> None:
    console.login("analyst", "en")
    page = console.get("/console/guide-classes")
    assert page.status_code == 200
    html = page.text
    # then each guide's class is the rules' (G4 sold 30,000: A; G1, G2 one order: B; G3 C)
    classes = dict(re.findall(r'<tr data-guide="(G\d)" data-class="([ABC])"', html))
    assert classes == {"G1": "B", "G2": "B", "G3": "C", "G4": "A"}
    assert re.search(r'<tr data-class="A">.*?data-n="1"', html, re.S)
    assert "Poster tools" in html and 'data-version="1"' in html
    # and G3, whose share was opened with no order, is flagged; the flag filters the list
    assert '<tr data-guide="G3" data-class="C" data-spam="1">' in html
    flagged = console.get("/console/guide-classes?spam=1").text
    assert re.findall(r'<tr data-guide="(G\d)"', flagged) == ["G3"]
    # a class count opens the guides of that class
    b = console.get("/console/guide-classes?class=B").text
    assert re.findall(r'<tr data-guide="(G\d)"', b) == ["G1", "G2"]
    exported = csv_rows(console.get("/console/guide-classes.csv?class=B").text)
    assert [(r["guide_id"], r["class"], r["orders"]) for r in exported] == [
        ("G1", "B", "1"),
        ("G2", "B", "1"),
    ]
    # a guide's history: the period, its metrics and the members a metric counted
    history = console.get("/console/guide-classes/G2")
    assert history.status_code == 200 and 'id="gc-current" data-class="B"' in history.text
    link = re.search(
        r'href="(/console/guide-classes/G2/members\?figure=buyers[^"]*)"', history.text
    )
    assert link
    buyers = console.get(link.group(1).replace("&amp;", "&"))
    assert re.findall(r'<tr data-member="(\d+)"', buyers.text) == [
        str(console.journey.members["M1"])
    ]
    assert console.get("/console/guide-classes/nobody").status_code == 404


@pytest.mark.parametrize("role", ["store", "guide"])
def test_store_and_guide_keys_are_refused(console: Console, role: str) -> None:
    console.login(role, "en")
    for path in (
        "/console/commission",
        "/console/commission.csv?month=2024-12",
        "/console/commission/G1?month=2024-12",
        "/console/commission/G1/lines.csv?month=2024-12",
        "/console/commission/G1/release/1?month=2024-12",
        "/console/commission-buyers?month=2024-12&of_guide=G1",
        "/console/guide-classes",
        "/console/guide-classes/G1",
        "/console/guide-classes.csv",
        "/console/attribution/o-till",
    ):
        assert console.get(path).status_code == 403, path
    # and the navigation does not offer them
    nav = console.get("/console/members").text
    assert 'data-page="commission"' not in nav and 'data-page="guide_classes"' not in nav
    # without a session, the pages send to the login
    console.client.cookies.clear()
    assert console.get("/console/commission").headers["location"] == "/console/login"
