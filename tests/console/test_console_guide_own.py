"""A guide's own commission and class pages and a store manager's guides (issue #19), in
process on the real app, on SQLite and PostgreSQL.

Given the hand-made journey brand (guides G1, G2, G3 at S1, G4 at S2; members M1..M6 of
S1) with December 2024's orders, a refund, commission at 10 % frozen 7 days, a release run
on the 31st, members bound by their first purchase and the guides classed:

    order  guide  paid     commission  December's fate
    J-M1   G1     10,000   1,000       frozen until the 9th, then released (payable)
    J-M2   G1     20,000   2,000       half refunded on the 29th: 1,000 clawed back;
                                       the rest frozen at the month's end
    J-M3   G2     30,000   3,000       G2's: never on G1's pages
    J-M5   G4     40,000   4,000       G4's (another store): never on S1's pages

a guide reads only its own statement and class, marks its training done, and a store key
reads its stores' guides only."""

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
from siyu.guides import commission_accrual as jobs
from siyu.guides.attribution import attribute
from siyu.guides.binding import bind_all
from siyu.guides.classes import classify, parse, save_rules
from siyu.guides.commission_rules import CommissionRules, save
from siyu.guides.training import parse_item, save_item
from siyu.privacy import Vault

DEC, JAN = datetime(2024, 12, 1), datetime(2025, 1, 1)
RULES = {"default_rate_bp": 1_000, "freeze_days": 7, "rules": []}
CLASS_RULES = {
    "A": {"min": {"orders": 2}, "playbook": {"zh": "工具：专属海报", "en": "Tools: posters"}},
    "B": {"min": {"orders": 1}, "playbook": {"zh": "标准流程", "en": "SOPs"}},
    "C": {"playbook": {"zh": "店长督导", "en": "Supervision"}},
}
TRAINING = [
    {
        "code": "a-tools",
        "title_zh": "海报工具",
        "title_en": "Posters",
        "body": "x",
        "for_class": "A",
    },
    {
        "code": "c-coach",
        "title_zh": "督导复盘",
        "title_en": "Coaching",
        "body": "x",
        "for_class": "C",
    },
    {"code": "basics", "title_zh": "入门必读", "title_en": "Basics", "body": "x"},
    {"code": "task-x", "title_zh": "任务话术", "title_en": "Task", "body": "x", "for_task": "hq-x"},
]


@dataclass
class Console:
    client: TestClient
    journey: Journey
    keys: dict[str, str]

    def one(self, sql: str, **params: Any) -> Any:
        with self.journey.store.engine.connect() as conn:
            return conn.execute(text(sql), {"g": self.journey.g, **params}).scalar()

    def login(self, who: str) -> str:
        """Log in as `who` through the form (Chinese, a guide's default); the CSRF token."""
        self.client.cookies.clear()
        self.client.get("/console/login?lang=zh")
        token = str(self.client.cookies.get("siyu_csrf"))
        done = self.client.post(
            "/console/login", data={"csrf": token, "key": self.keys[who]}, follow_redirects=False
        )
        assert done.status_code == 303, done.text
        return token

    def get(self, path: str) -> Any:
        return self.client.get(path, follow_redirects=False)


@pytest.fixture
def console(store: Store, vault: Vault, tmp_path: Path) -> Iterator[Console]:
    journey = make_journey(store, vault, tmp_path)
    engine, g = store.engine, store.group_id
    for member, order, day, guide, paid in (
        ("M1", "J-M1", 2, "G1", 10_000),
        ("M2", "J-M2", 28, "G1", 20_000),
        ("M3", "J-M3", 3, "G2", 30_000),
        ("M5", "J-M5", 4, "G4", 40_000),
    ):
        journey.order(member, order, at(day), guide, paid=paid)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO refunds (group_id, refund_id, order_id, refunded_at, amount_fen) "
                "VALUES (:g, 'R-M2', 'J-M2', :t, 10000)"
            ),
            {"g": g, "t": at(29)},
        )
    bind_all(engine, g, at=at(31))
    attribute(engine, g, DEC, JAN, at=at(31))
    save_rules(engine, g, parse(CLASS_RULES))
    classify(engine, g, DEC, JAN, at=at(31))
    save(engine, g, CommissionRules.model_validate(RULES), None)
    jobs.accrue(engine, g, DEC, JAN)
    jobs.release(engine, g, at=at(31))
    for item in TRAINING:
        save_item(engine, g, parse_item(item))
    issued = {
        "g1": create_key(engine, vault, g, "guide", guide_id="G1"),
        "g2": create_key(engine, vault, g, "guide", guide_id="G2"),
        "s1": create_key(engine, vault, g, "store", stores=("S1",)),
        "s2": create_key(engine, vault, g, "store", stores=("S2",)),
        "admin": create_key(engine, vault, g, "admin"),
        "analyst": create_key(engine, vault, g, "analyst"),
    }
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(
        Settings(database_url=url, secret_key=bytes(range(32)), group_id=g), rate_per_second=0
    )
    with TestClient(app) as client:
        yield Console(client, journey, {k: v.secret for k, v in issued.items()})
    app.state.services.engine.dispose()


def figures(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-figure="(\w+)" data-fen="(-?\d+)"', html)}


def lines(html: str) -> list[tuple[str, str, int]]:
    """The statement's lines: (order, status, fen)."""
    rows = re.findall(r'data-status="(\w+)" data-fen="(-?\d+)"(?: data-order="([\w-]+)")?', html)
    return [(order, status, int(fen)) for status, fen, order in rows]


def test_a_guide_reads_its_own_statement_and_no_other(console: Console) -> None:
    # when G1 opens its December statement (in Chinese, by default for it)
    console.login("g1")
    page = console.get("/console/my-commission?month=2024-12")
    assert page.status_code == 200
    html = page.text
    # then the totals are its ledger's: accrued, clawed back, earned, frozen and payable
    assert figures(html) == {
        "accrued": 3_000,
        "clawed_back": 1_000,
        "earned": 2_000,
        "frozen": 1_000,
        "payable": 1_000,
        "released": 1_000,
        "paid": 0,
    }
    # and what is frozen says when it is released (J-M2's freeze: paid on the 28th + 7 days)
    freeze = console.one(
        "SELECT freeze_until FROM commission_accruals WHERE group_id = :g AND order_id = 'J-M2'"
    )
    release = str(freeze)[:10]
    assert release == "2025-01-04"
    assert f'data-until="{release}"' in html and f"解冻日期 {release}" in html
    # and each line names its order, amount and status; the release is one line per run
    # (no order of its own), naming how many orders it released
    assert sorted(lines(html)) == sorted(
        [
            ("J-M1", "released", 1_000),
            ("", "payable", 1_000),
            ("J-M2", "frozen", 2_000),
            ("J-M2", "clawed", -1_000),
        ]
    )
    assert "1 笔订单解冻" in html
    assert f"冻结至 {release}" in html and "2024-12-09 已解冻" in html  # J-M1's, released
    # and the month picker goes to the months around it
    assert 'data-month="2024-11"' in html and 'data-month="2025-01"' in html
    # and nothing of another guide's shows, whatever the URL asks
    for path in (
        "/console/my-commission?month=2024-12",
        "/console/my-commission?month=2024-12&guide=G2",
    ):
        assert "J-M3" not in console.get(path).text
    # and the export is the same lines
    exported = console.get("/console/my-commission.csv?month=2024-12")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted((r["order_id"], r["status"], int(r["amount_fen"])) for r in rows) == sorted(
        lines(html)
    )
    assert [r["orders"] for r in rows if r["status"] == "payable"] == ["1"]
    # and G2 sees its own, never G1's
    console.login("g2")
    other = console.get("/console/my-commission?month=2024-12").text
    # (its own order, and its own release run: a line of no order)
    assert {x[0] for x in lines(other)} == {"J-M3", ""} and "J-M1" not in other
    assert figures(other)["accrued"] == 3_000


def test_a_month_before_any_commission_and_a_bad_month(console: Console) -> None:
    console.login("g1")
    # a month without postings: nothing, said so
    empty = console.get("/console/my-commission?month=2024-11")
    assert empty.status_code == 200 and 'id="lines-none"' in empty.text
    assert set(figures(empty.text).values()) == {0}
    # a month that is not one: 422 naming the field and the rule
    for bad in ("2024-13", "24-12", "9999-12", "2024-12'"):
        page = console.get(f"/console/my-commission?month={bad}")
        assert page.status_code == 422, bad
        assert "month" in page.text and "YYYY-MM" in page.text
    assert console.get("/console/my-commission.csv?month=2024-13").status_code == 422


def test_a_guide_sees_its_class_and_marks_its_training_done(console: Console) -> None:
    # when G1 (two orders: class A) opens its class
    token = console.login("g1")
    html = console.get("/console/my-class").text
    # then its class, the playbook of A and the metrics it was decided on
    assert 'data-class="A"' in html and "工具：专属海报" in html
    assert 'data-metric="orders" data-value="2"' in html
    assert 'data-metric="sales_fen" data-value="20000"' in html  # 30,000 paid less 10,000
    assert 'data-metric="refund_rate_bp" data-value="3333"' in html
    # and the training for class A and for every guide, not C's nor another task's
    shown = re.findall(r'data-code="([\w-]+)" data-done="(\d)"', html)
    assert shown == [("a-tools", "0"), ("basics", "0")]
    # when it marks one done
    done = console.client.post(
        "/console/my-class/training/a-tools/complete",
        data={"csrf": token},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/console/my-class?done=a-tools#training"
    # then the store holds it, and the page shows it completed
    assert (
        console.one(
            "SELECT COUNT(*) FROM training_completions WHERE group_id = :g AND guide_id = 'G1' "
            "AND code = 'a-tools'"
        )
        == 1
    )
    after = console.get("/console/my-class?done=a-tools").text
    assert re.findall(r'data-code="([\w-]+)" data-done="(\d)"', after) == [
        ("a-tools", "1"),
        ("basics", "0"),
    ]
    assert 'id="training-marked"' in after
    # and a form without its token, or an unknown item, changes nothing
    forged = console.client.post(
        "/console/my-class/training/basics/complete", data={}, follow_redirects=False
    )
    assert forged.status_code == 403
    unknown = console.client.post(
        "/console/my-class/training/nope/complete", data={"csrf": token}, follow_redirects=False
    )
    assert unknown.status_code == 404
    assert console.one("SELECT COUNT(*) FROM training_completions WHERE group_id = :g") == 1
    # and G3 (no order: class C) gets C's coaching, not A's tools
    console.keys["g3"] = create_key(
        console.journey.store.engine,
        Vault(bytes(range(32))),
        console.journey.g,
        "guide",
        guide_id="G3",
    ).secret
    console.login("g3")
    c = console.get("/console/my-class").text
    assert 'data-class="C"' in c
    assert [code for code, _ in re.findall(r'data-code="([\w-]+)" data-done="(\d)"', c)] == [
        "basics",
        "c-coach",
    ]


def test_a_store_manager_sees_its_stores_guides_only(console: Console) -> None:
    # when S1's manager opens its guides for December
    console.login("s1")
    page = console.get("/console/my-guides?month=2024-12")
    assert page.status_code == 200
    html = page.text
    rows = re.findall(r'<tr data-guide="(\w+)" data-class="(\w*)">', html)
    # then S1's guides with their classes; G4 (S2's) is not there
    assert rows == [("G1", "A"), ("G2", "B"), ("G3", "C")]
    g1 = html.split('data-guide="G1"')[1].split("</tr>")[0]
    assert 'data-sales="20000"' in g1 and 'data-earned="2000"' in g1
    assert 'data-payable="1000"' in g1
    # and the members bound to G1 (M1, M2 by their first purchase) open as a list
    assert 'data-bound="2"' in g1
    bound = console.get("/console/my-guides/G1/members?figure=bound").text
    total = re.search(r'id="list-summary" data-total="(\d+)"', bound)
    assert total is not None and int(total.group(1)) == 2
    listed = {int(m) for m in re.findall(r'<tr data-member="(\d+)"', bound)}
    assert listed == {console.journey.members["M1"], console.journey.members["M2"]}
    # and G1's page is its statement at S1
    one = console.get("/console/my-guides/G1?month=2024-12").text
    assert figures(one)["earned"] == 2_000 and "J-M2" in one
    # when it asks for another store's guide, or no guide: 403, 404
    for path in (
        "/console/my-guides/G4",
        "/console/my-guides/G4/members",
        "/console/my-guides/G4/commission.csv?month=2024-12",
        "/console/my-guides/G4/members.csv?guide=G4",
    ):
        assert console.get(path).status_code == 403, path
    assert console.get("/console/my-guides/NOPE").status_code == 404
    # and S2's manager sees G4 only, and not G1
    console.login("s2")
    other = console.get("/console/my-guides?month=2024-12").text
    assert re.findall(r'<tr data-guide="(\w+)"', other) == ["G4"]
    assert console.get("/console/my-guides/G1?month=2024-12").status_code == 403


@pytest.mark.parametrize(
    ("who", "refused", "listed"),
    [
        ("g1", ("/console/my-guides", "/console/my-guides/G1"), ("my_commission", "my_class")),
        ("s1", ("/console/my-commission", "/console/my-class"), ("my_guides",)),
        ("admin", ("/console/my-commission", "/console/my-class", "/console/my-guides"), ()),
        ("analyst", ("/console/my-commission", "/console/my-class", "/console/my-guides"), ()),
    ],
)
def test_each_page_is_for_its_role_only(
    console: Console, who: str, refused: tuple[str, ...], listed: tuple[str, ...]
) -> None:
    token = console.login(who)
    for path in refused:
        assert console.get(path).status_code == 403, (who, path)
    if who != "g1":
        post = console.client.post(
            "/console/my-class/training/basics/complete", data={"csrf": token}
        )
        assert post.status_code == 403
    nav = console.get("/console/members").text
    shown = set(re.findall(r'data-page="(my_\w+)"', nav))
    assert shown == set(listed) | ({"my_members"} if who == "g1" else set())
