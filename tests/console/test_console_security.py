"""The console's session, CSRF, login limit and logs, in process (no browser needed)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.api.conftest import PHONE_1, brand
from tests.conftest import Store

from siyu.app import create_app
from siyu.auth.keys import create_key
from siyu.config import DEFAULT_STRONG_TYPES, Settings
from siyu.console.i18n import STRINGS, fmt_cny
from siyu.console.session import Signer
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.privacy import Vault


def test_a_session_cookie_is_signed_and_expires() -> None:
    signer = Signer(bytes(32))
    cookie = signer.issue(7, now=1_000)
    assert signer.check(cookie, now=1_001) is not None
    assert signer.check(cookie, now=1_000 + 13 * 3600) is None  # 12 h
    body, mac = cookie.rsplit(".", 1)
    assert signer.check(f"{body}.{mac[:-2]}AA", now=1_001) is None  # forged
    assert Signer(bytes(range(32))).check(cookie, now=1_001) is None  # another secret


def test_every_string_has_both_languages_and_money_is_written_from_fen() -> None:
    assert all(zh and en for zh, en in STRINGS.values())
    assert fmt_cny(123456789) == "¥1,234,567.89"
    assert fmt_cny(-5) == "-¥0.05"


@pytest.fixture
def client(store: Store, vault: Vault, tmp_path: Path) -> TestClient:
    import_directory(store.engine, vault, store.group_id, brand(tmp_path / "b"), tmp_path / "r")
    resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    url = store.engine.url.render_as_string(hide_password=False)
    app = create_app(
        Settings(database_url=url, secret_key=bytes(range(32)), group_id=store.group_id),
        rate_per_second=0,
    )
    app.state.test_key = create_key(store.engine, vault, store.group_id, "admin").secret
    return TestClient(app)


def csrf(client: TestClient) -> str:
    client.get("/console/login")
    token = client.cookies.get("siyu_csrf")
    assert token
    return str(token)


def test_failed_logins_are_limited_per_client(client: TestClient) -> None:
    with client:
        token = csrf(client)
        for _ in range(10):
            bad = client.post("/console/login", data={"csrf": token, "key": "sy_wrong"})
            assert bad.status_code == 401
        # the 11th try is refused before the key is even checked, the right key too
        right = client.app.state.test_key  # type: ignore[attr-defined]
        limited = client.post("/console/login", data={"csrf": token, "key": right})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0


def test_a_searched_phone_reaches_no_log(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with client, caplog.at_level(logging.DEBUG):
        token = csrf(client)
        key = client.app.state.test_key  # type: ignore[attr-defined]
        assert (
            client.post(
                "/console/login", data={"csrf": token, "key": key}, follow_redirects=False
            ).status_code
            == 303
        )
        found = client.post(
            "/console/members/search",
            data={"csrf": token, "type": "phone", "value": PHONE_1},
            follow_redirects=False,
        )
        assert found.status_code == 303
        page = client.get(found.headers["location"])
        assert page.status_code == 200 and PHONE_1[-4:] in page.text  # admin sees it
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/console/members/search" in logged  # the access log saw the request
    assert PHONE_1 not in logged and PHONE_1[3:] not in logged
