"""Migration 0014 on existing data, both dialects: every card takes its brand as its
scope, and from then on one card number may be issued by two brands."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError
from tests.conftest import IN_CI, PG_ADMIN_URL

from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

_IDENTITY = """INSERT INTO identities (group_id, type, value_key, value, value_masked,
    brand_id, verified, source_channel, first_seen, last_seen, member_id)
    VALUES ('g', :t, :k, :k, :k, :b, false, 'pos', :at, :at, NULL)"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def blank(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of its own (migrations under test change the schema)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        yield engine
        engine.dispose()
        return
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"siyu_mig_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        if IN_CI:
            pytest.fail(f"CI=true requires PostgreSQL: {exc}")
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    engine = make_engine(admin.url.set(database=name).render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_existing_cards_take_their_brand_as_scope(blank: Engine) -> None:
    # given a store before scopes, holding cards of two brands, a card stored without its
    # brand, and an openid
    upgrade(blank, "0013")
    at = datetime(2024, 1, 1)
    with blank.begin() as conn:
        for type_, key, brand in (
            ("card", "k-card-1", "B1"),
            ("card", "k-card-2", "B2"),
            ("card", "k-card-3", None),
            ("openid", "k-openid", None),
        ):
            conn.execute(text(_IDENTITY), {"t": type_, "k": key, "b": brand, "at": at})
    # when it is migrated to the head
    upgrade(blank)
    # then each card's scope is its brand, and the others keep the default scope
    with blank.connect() as conn:
        scopes = dict(conn.execute(text("SELECT value_key, scope FROM identities")).all())
    assert scopes == {"k-card-1": "B1", "k-card-2": "B2", "k-card-3": "", "k-openid": ""}
    # and the same card number may now be issued by another brand, but not twice by one
    with blank.begin() as conn:
        conn.execute(
            text(_IDENTITY.replace("brand_id,", "brand_id, scope,").replace(":b,", ":b, :b,")),
            {"t": "card", "k": "k-card-1", "b": "B2", "at": at},
        )
    with pytest.raises(IntegrityError), blank.begin() as conn:
        conn.execute(
            text(_IDENTITY.replace("brand_id,", "brand_id, scope,").replace(":b,", ":b, :b,")),
            {"t": "card", "k": "k-card-1", "b": "B1", "at": at},
        )
