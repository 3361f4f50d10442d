"""The receipts review queue in the console (issue #17), in process on the real app:
receipts uploaded through the service (one the rule accepts, a near-duplicate and one
over the auto-accept amount waiting for review, one of another store, one over the daily
limit refused), HQ reads the queue and its figures, rejects one with a reason and accepts
another; the database and the pages agree. A store key sees and decides its own stores'
receipts only; an analyst reads without the photos and cannot decide.

The accept flow in Chromium is `test_console_receipts_browser.py`."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from tests.api.conftest import NAME_1
from tests.conftest import Store
from tests.console.receipt_support import PHOTO, seed

from siyu.app import create_app
from siyu.config import Settings
from siyu.privacy import Vault


@dataclass
class Console:
    client: TestClient
    store: Store
    keys: dict[str, str]
    ids: dict[str, int]  # receipt name -> receipt_id

    def one(self, sql: str, **params: Any) -> Any:
        with self.store.engine.connect() as conn:
            return conn.execute(text(sql), {"g": self.store.group_id, **params}).scalar()

    def login(self, role: str, lang: str = "en") -> str:
        """Log in as `role` through the form; the CSRF token the forms carry."""
        self.client.cookies.clear()
        self.client.get(f"/console/login?lang={lang}")
        token = str(self.client.cookies.get("siyu_csrf"))
        done = self.client.post(
            "/console/login", data={"csrf": token, "key": self.keys[role]}, follow_redirects=False
        )
        assert done.status_code == 303, done.text
        return token

    def status(self, name: str) -> str:
        return str(self.one("SELECT status FROM receipts WHERE receipt_id = :r", r=self.ids[name]))


@pytest.fixture
def console(store: Store, vault: Vault, tmp_path: Path) -> Iterator[Console]:
    engine, group = store.engine, store.group_id
    ids, keys = seed(engine, vault, group, tmp_path)
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(
        Settings(database_url=url, secret_key=bytes(range(32)), group_id=group),
        rate_per_second=0,
    )
    with TestClient(app) as client:
        yield Console(client, store, keys, ids)
    app.state.services.engine.dispose()


def rows(html: str) -> list[tuple[int, str, str]]:
    """The queue's rows: (receipt id, status, store)."""
    found = re.findall(r'<tr data-receipt="(\d+)" data-status="(\w+)" data-store="(\w+)"', html)
    return [(int(r), s, st) for r, s, st in found]


def figure(html: str, name: str) -> int:
    m = re.search(rf'id="fig-{name}" data-n="(\d+)"', html)
    assert m, name
    return int(m.group(1))


def test_hq_reviews_the_queue_rejects_one_and_accepts_another(console: Console) -> None:
    ids = console.ids
    token = console.login("admin", "en")
    # when HQ opens the queue
    page = console.client.get("/console/receipts")
    assert page.status_code == 200
    html = page.text
    # then the pending receipts come first, oldest first, then the decided ones
    assert rows(html) == [
        (ids["near"], "pending", "S1"),
        (ids["big"], "pending", "S1"),
        (ids["other"], "pending", "S2"),
        (ids["clean"], "accepted", "S1"),
    ]
    # and the day's figures are the database's
    assert (figure(html, "pending"), figure(html, "accepted"), figure(html, "rejected")) == (
        3,
        1,
        0,
    )
    # and each row says why it waits: the near-duplicate links the receipt it is near
    near_row = html.split(f'data-receipt="{ids["near"]}"')[1].split("</tr>")[0]
    assert "Near-duplicate" in near_row and f'data-receipt-link="{ids["clean"]}"' in near_row
    big_row = html.split(f'data-receipt="{ids["big"]}"')[1].split("</tr>")[0]
    assert "Amount ¥600.00 above the auto-accept limit ¥500.00" in big_row
    assert "¥600.00" in big_row and "A3" in big_row  # the number as kept, normalised
    # and the member is masked and links to Member 360; a web photo is a link, never loaded
    assert NAME_1 not in html and "<img" not in html
    assert re.search(r'href="/console/members/\d+" class="member-link"', big_row)
    assert f'href="{PHOTO}" rel="noopener noreferrer"' in big_row
    # and the limit's refusal left nothing to review
    assert console.one("SELECT COUNT(*) FROM receipts WHERE receipt_no = 'A4'") == 0

    # when the queue is filtered by status and store
    other = console.client.get("/console/receipts?status=pending&store=S2").text
    assert [r[0] for r in rows(other)] == [ids["other"]]
    # and exported: the same receipts, amounts in fen
    exported = console.client.get("/console/receipts.csv?status=pending")
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert [int(r["receipt_id"]) for r in table] == [ids["near"], ids["big"], ids["other"]]
    assert table[1]["amount_fen"] == "60000" and table[1]["image_ref"] == PHOTO

    # when HQ rejects the near-duplicate without a reason, or with one too long
    path = f"/console/receipts/{ids['near']}"
    for reason, said in (("", "reason: required to reject"), ("x" * 501, "at most 500")):
        refused = console.client.post(f"{path}/reject", data={"csrf": token, "reason": reason})
        # then the form says the service's rule, and nothing changed
        assert refused.status_code == 422 and said in refused.text
        assert 'id="reject-form"' in refused.text and 'id="receipt-error"' in refused.text
        assert console.status("near") == "pending"
    # when it rejects it with a reason
    done = console.client.post(
        f"{path}/reject", data={"csrf": token, "reason": "照片与 A-1 相同"}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == f"{path}?decided=rejected"
    shown = console.client.get(done.headers["location"]).text
    assert 'id="receipt-notice" data-decided="rejected"' in shown
    assert "Rejected by a reviewer: 照片与 A-1 相同" in shown
    # then the database holds the decision and lets the number go
    assert console.status("near") == "rejected"
    assert console.one("SELECT COUNT(*) FROM receipt_numbers WHERE receipt_no = 'A2'") == 0

    # when HQ accepts the big receipt
    path = f"/console/receipts/{ids['big']}"
    done = console.client.post(f"{path}/accept", data={"csrf": token}, follow_redirects=False)
    assert done.status_code == 303
    shown = console.client.get(done.headers["location"]).text
    # then the page shows the reward given: its tier's points and coupon
    assert 'data-points="400" data-coupon="SPRING20"' in shown
    assert "400 points" in shown and "coupon: Spring 20 off 100" in shown
    assert console.status("big") == "accepted"
    rewarded = console.one(
        "SELECT COUNT(*) FROM receipts WHERE receipt_id = :r AND reward_points = 400 "
        "AND coupon_id IS NOT NULL AND rewarded_at IS NOT NULL",
        r=ids["big"],
    )
    assert rewarded == 1
    assert console.one(
        "SELECT COUNT(*) FROM ledger_postings WHERE reference = :ref", ref=f"receipt:{ids['big']}"
    ) == (1)

    # and the figures follow, each opening its list
    html = console.client.get("/console/receipts").text
    assert (figure(html, "pending"), figure(html, "accepted"), figure(html, "rejected")) == (
        1,
        2,
        1,
    )
    rejected = console.client.get("/console/receipts?status=rejected&decided=today").text
    assert [r[0] for r in rows(rejected)] == [ids["near"]]
    accepted = console.client.get("/console/receipts?status=accepted&decided=today").text
    assert sorted(r[0] for r in rows(accepted)) == sorted([ids["clean"], ids["big"]])
    # and a stale form deciding the rejected receipt again is refused, naming the rule
    again = console.client.post(f"/console/receipts/{ids['near']}/accept", data={"csrf": token})
    assert again.status_code == 409 and "a decision is made once" in again.text
    assert console.status("near") == "rejected"
    # and a form without its CSRF token decides nothing
    forged = console.client.post(f"/console/receipts/{ids['other']}/accept", data={})
    assert forged.status_code == 403 and console.status("other") == "pending"


def test_a_store_sees_and_decides_its_own_stores_receipts_only(console: Console) -> None:
    ids = console.ids
    token = console.login("store", "zh")
    # the queue holds its store's receipts only, the figures too
    html = console.client.get("/console/receipts").text
    assert {r[2] for r in rows(html)} == {"S1"} and ids["other"] not in [r[0] for r in rows(html)]
    assert figure(html, "pending") == 2
    assert "小票审核" in html and "待审核" in html
    # another store's receipt: not listed, not found, not decided
    assert console.client.get("/console/receipts?store=S2").status_code == 403
    assert console.client.get("/console/receipts.csv?store=S2").status_code == 403
    assert console.client.get(f"/console/receipts/{ids['other']}").status_code == 404
    for action, body in (("accept", {}), ("reject", {"reason": "不是本店"})):
        refused = console.client.post(
            f"/console/receipts/{ids['other']}/{action}", data={"csrf": token, **body}
        )
        assert refused.status_code in (403, 404)
    assert console.status("other") == "pending"
    # and its own it decides
    done = console.client.post(
        f"/console/receipts/{ids['big']}/accept", data={"csrf": token}, follow_redirects=False
    )
    assert done.status_code == 303 and console.status("big") == "accepted"
    shown = console.client.get(done.headers["location"]).text
    assert "400 积分" in shown and "已通过" in shown


def test_an_analyst_reads_without_photos_and_cannot_decide(console: Console) -> None:
    ids = console.ids
    token = console.login("analyst", "en")
    html = console.client.get("/console/receipts").text
    assert len(rows(html)) == 4
    assert PHOTO not in html and "Not shown to your role" in html
    page = console.client.get(f"/console/receipts/{ids['big']}").text
    assert 'id="receipt-accept"' not in page and 'id="receipt-read-only"' in page
    table = console.client.get("/console/receipts.csv").text.lstrip("\ufeff")
    assert PHOTO not in table and {r["image_ref"] for r in csv.DictReader(io.StringIO(table))} == {
        ""
    }
    # a decision posted anyway (with the session's CSRF token) is refused
    refused = console.client.post(f"/console/receipts/{ids['big']}/accept", data={"csrf": token})
    assert refused.status_code == 403
    assert console.status("big") == "pending"
