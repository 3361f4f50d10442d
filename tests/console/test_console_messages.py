"""The Messages pages (issue #18) in process on the real app: HQ composes a send (a bad
params line or channel is shown in the form, nothing saved), sees the preview (deferred
out of quiet hours and until when, skipped by reason), clicks a count through to those
members (and their CSV), sends it; an analyst reads without the form or the buttons and
a Send it posts anyway is refused. The browser flow is `test_console_messages_browser.py`."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from tests.api.conftest import brand
from tests.conftest import Store
from tests.messaging.msg_helpers import T, at_stage, bulk_members, grant_all, send, till_order

from siyu.app import create_app
from siyu.auth.keys import create_key
from siyu.campaigns import global_holdout
from siyu.config import DEFAULT_STRONG_TYPES, Settings
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.messaging import consent
from siyu.messaging.plan import plan
from siyu.privacy import Vault
from siyu.store.times import stored_now


def seed_messaging(
    engine: Engine, vault: Vault, group: str, tmp_path: Path
) -> tuple[dict[str, int], dict[str, str]]:
    """Two members at risk with phones (M1 consented to marketing, M2 did not), and keys
    for admin and analyst."""
    import_directory(engine, vault, group, brand(tmp_path / "b"), tmp_path / "r")
    resolve_all(engine, group, DEFAULT_STRONG_TYPES)
    with engine.begin() as conn:
        members = {
            str(r): int(m)
            for r, m in conn.execute(
                text("SELECT source_ref, member_id FROM members WHERE group_id = :g"), {"g": group}
            ).all()
        }
        conn.execute(
            text("""INSERT INTO member_stages (group_id, member_id, stage, orders, computed_at)
                    VALUES (:g, :m, 'at_risk', 1, :t)"""),
            [{"g": group, "m": m, "t": stored_now()} for m in members.values()],
        )
    consent.record(engine, group, members["M1"], "grant", source="mini_program")
    keys = {
        "admin": create_key(engine, vault, group, "admin").secret,
        "analyst": create_key(engine, vault, group, "analyst").secret,
    }
    return members, keys


def late_evening_tomorrow() -> str:
    """23:00 tomorrow in Shanghai, in the quiet hours: the send is deferred to 09:00."""
    day = datetime.now(UTC).date() + timedelta(days=1)
    return f"{day:%Y-%m-%d}T23:00"


def compose_form(token: str, code: str = "SPRING", **more: str) -> dict[str, str]:
    return {
        "csrf": token,
        "code": code,
        "channel": "sms",
        "purpose": "marketing",
        "target_kind": "stage",
        "target": "at_risk",
        "template": "T-1",
        "params": "1=春季上新\n2=到店有礼",
        "scheduled_at": late_evening_tomorrow(),
        "sender": "",
        **more,
    }


@dataclass
class Console:
    client: TestClient
    store: Store
    keys: dict[str, str]
    members: dict[str, int]

    def one(self, sql: str, **params: Any) -> Any:
        with self.store.engine.connect() as conn:
            return conn.execute(text(sql), {"g": self.store.group_id, **params}).scalar()

    def login(self, role: str, lang: str = "en") -> str:
        self.client.cookies.clear()
        self.client.get(f"/console/login?lang={lang}")
        token = str(self.client.cookies.get("siyu_csrf"))
        done = self.client.post(
            "/console/login", data={"csrf": token, "key": self.keys[role]}, follow_redirects=False
        )
        assert done.status_code == 303, done.text
        return token


@pytest.fixture
def console(store: Store, vault: Vault, tmp_path: Path) -> Iterator[Console]:
    engine, group = store.engine, store.group_id
    members, keys = seed_messaging(engine, vault, group, tmp_path)
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(
        Settings(database_url=url, secret_key=bytes(range(32)), group_id=group),
        rate_per_second=0,
    )
    with TestClient(app) as client:
        yield Console(client, store, keys, members)
    app.state.services.engine.dispose()


def count(html: str, figure: str) -> int:
    m = re.search(rf'id="fig-{figure}" data-figure="{figure}" data-n="(\d+)"', html)
    assert m, figure
    return int(m.group(1))


def test_hq_composes_previews_clicks_through_and_sends(console: Console) -> None:
    m1, m2 = console.members["M1"], console.members["M2"]
    token = console.login("admin", "en")
    listed = console.client.get("/console/messages")
    assert listed.status_code == 200 and 'id="compose-form"' in listed.text
    assert 'data-page="messages"' in listed.text  # in the navigation, under Marketing
    # a params line without "=" is refused naming the line, nothing saved
    bad = console.client.post("/console/messages", data=compose_form(token, params="1=x\noops"))
    assert bad.status_code == 422 and "params: line 2: expected key=value" in bad.text
    assert 'value="SPRING"' in bad.text  # what was typed is kept
    wrong = console.client.post("/console/messages", data=compose_form(token, channel="fax"))
    assert wrong.status_code == 422 and "channel" in wrong.text
    assert console.one("SELECT COUNT(*) FROM sends WHERE group_id = :g") == 0
    # when HQ composes the send
    done = console.client.post(
        "/console/messages", data=compose_form(token), follow_redirects=False
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/console/messages/SPRING?done=planned"
    page = console.client.get(done.headers["location"]).text
    # then the preview: M1 deferred out of quiet hours until 09:00, M2 skipped (no consent)
    assert 'data-state="held"' in page
    assert count(page, "deferred") == 1 and count(page, "no_consent") == 1
    assert count(page, "planned") == 0
    until = re.search(r'id="deferred-until">until ([^<]+)<', page)
    assert until and "09:00 (Asia/Shanghai)" in until.group(1)
    assert 'id="send-send"' in page and 'id="send-cancel"' in page
    assert console.one("SELECT status FROM sends WHERE group_id = :g") == "held"
    # Cancel is the secondary button, in a form beside Send's (layout: the browser test)
    assert re.search(r'<form[^>]*id="send-form" class="inline">', page)
    assert re.search(r'<form[^>]*id="cancel-form" class="inline">', page)
    assert 'id="send-cancel" class="link"' in page
    # and the skipped count opens those members, paged, with their CSV
    members = console.client.get("/console/messages/SPRING/members?figure=no_consent")
    assert members.status_code == 200
    assert f'data-member="{m2}"' in members.text and f'data-member="{m1}"' not in members.text
    assert "SPRING: No consent" in members.text
    exported = console.client.get("/console/messages/SPRING/members.csv?figure=no_consent")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert [int(r["member_id"]) for r in table] == [m2]
    assert console.client.get("/console/messages/SPRING/members?figure=nope").status_code == 404
    # when HQ sends it
    sent = console.client.post(
        "/console/messages/SPRING/send", data={"csrf": token}, follow_redirects=False
    )
    assert sent.status_code == 303
    shown = console.client.get(sent.headers["location"]).text
    assert 'data-state="planned"' in shown and 'id="results"' in shown
    assert console.one("SELECT status FROM sends WHERE group_id = :g") == "planned"
    again = console.client.post("/console/messages/SPRING/send", data={"csrf": token})
    assert again.status_code == 409 and "only a held plan is sent" in again.text
    # the same code again with another body is refused in the form
    other = console.client.post("/console/messages", data=compose_form(token, template="T-2"))
    assert other.status_code == 409 and "exists with another body" in other.text
    # in Chinese
    zh = console.client.get("/console/messages/SPRING?lang=zh").text
    assert "消息触达" in zh and "已确认发送" in zh


def test_an_analyst_reads_without_the_form_or_the_buttons(console: Console) -> None:
    token = console.login("admin")
    console.client.post("/console/messages", data=compose_form(token))
    token = console.login("analyst")
    listed = console.client.get("/console/messages").text
    assert 'id="compose-form"' not in listed and 'id="read-only"' in listed
    assert 'data-send="SPRING"' in listed
    page = console.client.get("/console/messages/SPRING").text
    assert 'id="send-send"' not in page and count(page, "no_consent") == 1
    refused = console.client.post("/console/messages/SPRING/send", data={"csrf": token})
    assert refused.status_code == 403
    composed = console.client.post("/console/messages", data=compose_form(token, code="X"))
    assert composed.status_code == 403
    # the members behind a count are masked for an analyst
    members = console.client.get("/console/messages/SPRING/members?figure=no_consent").text
    assert "13900001111" not in members
    assert console.one("SELECT status FROM sends WHERE group_id = :g") == "held"


def test_a_sent_send_is_read_against_the_global_holdout(console: Console) -> None:
    e, g = console.store.engine, console.store.group_id
    # given 40 more reachable members at risk, half the group held out, a marketing send
    # planned to them, and one purchase a side at the till the day after it is due
    ids = bulk_members(e, g, 40)
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    holdout = global_holdout.set_share(e, g, 5_000)
    send(e, g, "VS")
    plan(e, g, "VS", now=T - timedelta(hours=1))
    held = [m for m in ids if holdout.holds(m)]
    reached = [m for m in ids if not holdout.holds(m)]
    for n, (member, fen) in enumerate(((held[0], 5000), (reached[0], 8000))):
        till_order(e, g, f"TILL-{n}", member, fen, T + timedelta(days=1))
    console.login("analyst")
    # when its page is read
    page = console.client.get("/console/messages/VS").text
    # then the reached and the held out side by side, and each lift with its interval
    assert 'id="against-holdout"' in page
    sides = dict(re.findall(r'data-side="(\w+)" data-people="(\d+)"', page))
    held_people = console.one(
        "SELECT SUM(member_count) FROM send_skips WHERE group_id = :g AND reason = 'global_holdout'"
    )
    assert int(sides["held"]) == held_people == len([m for m in held])
    assert int(sides["reached"]) == console.one(
        "SELECT COUNT(*) FROM send_recipients WHERE group_id = :g"
    )
    assert re.search(r'id="lift-per_person" data-lift="[-0-9.e]+"', page)
    assert "Against the global holdout" in page and "95% interval" in page
    # and the held-out count opens those members
    link = re.search(r'href="([^"]+)" id="vs-held-people"', page)
    assert link is not None
    listed = console.client.get(link.group(1).replace("&amp;", "&")).text
    assert all(f'data-member="{m}"' in listed for m in held)
    # in Chinese
    zh = console.client.get("/console/messages/VS?lang=zh").text
    assert "对照全局对照组" in zh and "人均收入" in zh


def test_hq_sets_the_global_holdout_on_the_campaigns_page(console: Console) -> None:
    token = console.login("admin")
    # given no holdout ever set
    page = console.client.get("/console/campaigns").text
    assert 'data-share-bp="0"' in page and 'id="holdout-form"' in page
    # a share that is not a percentage, too fine, or above half is refused with its rule,
    # what was typed kept, nothing set
    for typed, rule in (("half", "a percentage"), ("2.555", "two decimals"), ("60", "5000")):
        refused = console.client.post(
            "/console/campaigns/global-holdout", data={"csrf": token, "share_pct": typed}
        )
        assert refused.status_code == 422 and rule in refused.text, typed
        assert f'value="{typed}"' in refused.text
        assert console.one("SELECT COUNT(*) FROM global_holdouts WHERE group_id = :g") == 0
    # without the form's token, nothing either
    forged = console.client.post("/console/campaigns/global-holdout", data={"share_pct": "5"})
    assert forged.status_code == 403
    # when HQ sets 2.5%
    done = console.client.post(
        "/console/campaigns/global-holdout",
        data={"csrf": token, "share_pct": "2.5"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    # then it is stored in basis points and shown
    assert console.one("SELECT share_bp FROM global_holdouts WHERE group_id = :g") == 250
    shown = console.client.get(done.headers["location"]).text
    assert 'data-share-bp="250"' in shown and "2.50% of members" in shown
    assert 'id="holdout-done"' in shown
    # an analyst reads it without the form, and may not set it
    token = console.login("analyst")
    read = console.client.get("/console/campaigns?lang=zh").text
    assert 'data-share-bp="250"' in read and 'id="holdout-form"' not in read
    assert "全局对照组" in read
    refused = console.client.post(
        "/console/campaigns/global-holdout", data={"csrf": token, "share_pct": "0"}
    )
    assert refused.status_code == 403
    assert console.one("SELECT share_bp FROM global_holdouts WHERE group_id = :g") == 250


def test_the_global_holdouts_report_and_the_members_behind_it(console: Console) -> None:
    engine, group = console.store.engine, console.store.group_id
    console.login("admin")
    # nothing held out: the page says where to set it
    none = console.client.get("/console/global-holdout")
    assert none.status_code == 200 and 'id="gh-none"' in none.text
    # given 40 more members, half of all held out since 40 days ago, and their orders
    bulk_members(engine, group, 40)
    holdout = global_holdout.set_share(engine, group, 5_000)
    with engine.begin() as conn:
        conn.execute(
            text("""UPDATE global_holdouts SET started_at = :t WHERE group_id = :g;"""),
            {"t": stored_now() - timedelta(days=40), "g": group},
        )
        live = sorted(
            int(m)
            for m in conn.execute(
                text("SELECT member_id FROM members WHERE group_id = :g AND status = 'active'"),
                {"g": group},
            ).scalars()
        )
    held = [m for m in live if holdout.holds(m)]
    assert held and len(held) < len(live)
    for i, m in enumerate(live):
        till_order(engine, group, f"GH{i}", m, 1_000 + i, stored_now() - timedelta(days=3))
    # when HQ opens the report from the campaigns page
    assert 'href="/console/global-holdout"' in console.client.get("/console/campaigns").text
    page = console.client.get("/console/global-holdout").text
    # then six months and the time since the start, each side's members and buyers
    rows = re.findall(r'<tr data-period="([^"]+)" data-phase="([^"]+)"', page)
    assert len(rows) == 7 and rows[-1] == ("since", "held")
    assert rows[-2][1] == "held" and "before" in {phase for _, phase in rows}
    since = re.search(r"id=\"gh-since-held_out-members\">(\d+)<", page)
    assert since and int(since.group(1)) == len(held)
    # and a count opens those members, and their CSV
    link = re.search(r'href="([^"]+)" id="gh-since-held_out-buyers"', page)
    assert link
    listed = console.client.get(link.group(1).replace("&amp;", "&"))
    assert listed.status_code == 200
    assert all(f'data-member="{m}"' in listed.text for m in held)
    assert not any(f'data-member="{m}"' in listed.text for m in live if m not in held)
    exported = console.client.get(
        "/console/global-holdout/members.csv?period=since&side=held_out&figure=buyers"
    )
    assert exported.status_code == 200
    assert len(list(csv.reader(io.StringIO(exported.text)))) == len(held) + 1
    # and a figure the report has not is a 404
    assert console.client.get("/console/global-holdout/members?period=1999-01").status_code == 404
    # and an analyst reads it, in Chinese; other months are one click away
    console.login("analyst", "zh")
    zh = console.client.get("/console/global-holdout?months=3").text
    assert "全局对照组：营销的长期价值" in zh and "留出开始以来" in zh
    assert len(re.findall(r"<tr data-period=", zh)) == 4
