"""Issue #4's acceptance over real HTTP: a uvicorn server with two worker processes on
PostgreSQL. Top up 100 at a store, then 50 concurrent online payments of 10 with
distinct idempotency keys: exactly 10 succeed, the balance ends at 0, never negative, and
retrying any of them changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, text
from tests.api.live import call, live_server
from tests.ledger.invariants import check_invariants

from siyu.auth.keys import create_key
from siyu.importer.service import ensure_group
from siyu.privacy import Vault

pytestmark = pytest.mark.postgres
SECRET = bytes(range(32))


@pytest.fixture
def server(pg_engine: Engine) -> Iterator[tuple[str, str, dict[str, str]]]:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ensure_group(pg_engine, group)
    with pg_engine.begin() as conn:
        conn.execute(
            # registered at S1: the store key tops up its own member (no till proof needed)
            text("""INSERT INTO members (member_id, group_id, status, home_store_id,
                      registered_at, created_at, updated_at)
                    VALUES (900001, :g, 'active', 'S1', now(), now(), now())"""),
            {"g": group},
        )
        # an id written by hand: move the sequence past it, as a data migration must (the
        # importer finds a batch's members by the ids the sequence gave them)
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('members', 'member_id'), "
                "GREATEST(900001, (SELECT MAX(member_id) FROM members)))"
            )
        )
    vault = Vault(SECRET)
    keys = {
        "store": create_key(pg_engine, vault, group, "store", stores=("S1",)).secret,
        "channel": create_key(pg_engine, vault, group, "channel", channel="miniprogram").secret,
    }
    with live_server(pg_engine, group, SECRET) as base:
        yield base, group, keys


def test_fifty_concurrent_payments_over_http(
    server: tuple[str, str, dict[str, str]], pg_engine: Engine
) -> None:
    base, group, keys = server
    path = "/v1/members/900001/stored-value"
    status, _ = call(
        base, keys["store"], f"{path}:top-up", {"paid_fen": 100, "store_id": "S1"}, "top"
    )
    assert status == 200

    def pay(i: int) -> int:
        return call(base, keys["channel"], f"{path}:pay", {"amount_fen": 10}, f"pay-{i}")[0]

    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(pay, range(50)))
    assert statuses.count(200) == 10 and statuses.count(409) == 40
    with ThreadPoolExecutor(50) as pool:
        again = list(pool.map(pay, range(50)))
    succeeded = {i for i, s in enumerate(statuses) if s == 200}
    assert {i for i, s in enumerate(again) if s == 200} == succeeded  # replays
    with pg_engine.connect() as conn:
        left = conn.execute(
            text("""SELECT SUM(balance) FROM ledger_accounts WHERE group_id = :g
                    AND owner = 'member' AND asset IN ('sv_principal', 'sv_bonus')"""),
            {"g": group},
        ).scalar_one()
    assert left == 0
    check_invariants(pg_engine, group)
