"""The console on PostgreSQL, through a real server and a real browser: log in, find a
member by phone, open its 360 (reads go through the async psycopg pool there)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from tests.api.conftest import NAME_1, PHONE_1, brand
from tests.api.live import live_server
from tests.console.conftest import SECRET, login, shoot

from siyu.auth.keys import create_key
from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.resolve import resolve_all
from siyu.importer.service import ensure_group, import_directory
from siyu.privacy import Vault

pytestmark = pytest.mark.postgres


def test_login_and_member_360_on_postgresql(pg_engine: Engine, page: Any, tmp_path: Path) -> None:
    # given a brand in PostgreSQL and its keys (no snapshot: the HQ pages say so)
    group = f"g-{uuid.uuid4().hex[:8]}"
    vault = Vault(SECRET)
    ensure_group(pg_engine, group)
    import_directory(pg_engine, vault, group, brand(tmp_path / "b"), tmp_path / "r")
    resolve_all(pg_engine, group, DEFAULT_STRONG_TYPES)
    admin = create_key(pg_engine, vault, group, "admin").secret
    analyst = create_key(pg_engine, vault, group, "analyst").secret
    with live_server(pg_engine, group, SECRET, workers=1) as base:
        # when the admin logs in and searches by phone
        login(page, base, admin, "en")
        assert page.url.endswith("/console/overview")
        assert page.locator("#no-snapshot").is_visible()  # and says how to make one
        page.goto(f"{base}/console/members")
        page.select_option("#type", "phone")
        page.fill("#value", PHONE_1)
        page.click("form.search button[type=submit]")
        page.wait_for_load_state("load")
        # then the member's 360 shows the name and phone in the clear, and its order
        assert "/console/members/" in page.url
        assert page.locator("#member-name").inner_text() == NAME_1
        phone = page.locator("#identities tr[data-type=phone] .identity-value").inner_text()
        assert phone == f"+86{PHONE_1}"
        assert (
            page.locator("#orders tr[data-order=O1] [data-paid]").get_attribute("data-paid")
            == "9900"
        )
        shoot(page, "postgres-member-360")
        member_url = page.url
        # and an analyst sees the same member masked
        login(page, base, analyst, "en")
        page.goto(member_url)
        assert page.locator("#member-name").inner_text() != NAME_1
        masked = page.locator("#identities tr[data-type=phone] .identity-value").inner_text()
        assert masked == f"{PHONE_1[:3]}****{PHONE_1[-4:]}"
