"""Issue #5's acceptance over real HTTP (two uvicorn workers, PostgreSQL): 100 units at one
store, 300 concurrent single-unit reservations from a channel key: exactly 100 succeed,
200 get 409, available ends at 0, and confirmed + released + open always add up."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, text
from tests.api.live import call, live_server
from tests.inventory.helpers import check_invariants, network

from siyu.auth.keys import create_key
from siyu.importer.service import ensure_group
from siyu.inventory.stock import set_stock
from siyu.privacy import Vault

pytestmark = pytest.mark.postgres
SECRET = bytes(range(32))


def test_three_hundred_reservations_for_a_hundred_units_over_http(pg_engine: Engine) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ensure_group(pg_engine, group)
    network(pg_engine, group)
    set_stock(
        pg_engine, group, "HOT", "S1", on_hand=100, kind="count", reason="c", idempotency_key="c"
    )
    key = create_key(pg_engine, Vault(SECRET), group, "channel", channel="tmall").secret
    with live_server(pg_engine, group, SECRET) as base:

        def buy(i: int) -> tuple[int, dict]:  # type: ignore[type-arg]
            body = {"order_id": f"F{i}", "lines": [{"sku": "HOT", "qty": 1}]}
            return call(base, key, "/v1/reservations", body)

        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(buy, range(300)))
        statuses = [status for status, _ in answers]
        assert statuses.count(201) == 100 and statuses.count(409) == 200
        assert all(a["code"] == "out_of_stock" for s, a in answers if s == 409)
        made = [a["reservation_id"] for s, a in answers if s == 201]
        status, seen = call(base, key, "/v1/inventory/HOT", None, method="GET")
        assert status == 200 and seen["channels"] == {"tmall": 0}
        # confirm some, release some, leave the rest open: the three always add up
        for rid in made[:40]:
            assert call(base, key, f"/v1/reservations/{rid}:confirm", None)[0] == 200
        for rid in made[40:70]:
            assert call(base, key, f"/v1/reservations/{rid}:release", None)[0] == 200
    with pg_engine.connect() as conn:
        counts = dict(
            conn.execute(
                text("""SELECT status, COUNT(*) FROM reservations WHERE group_id = :g
                        GROUP BY status"""),
                {"g": group},
            ).all()
        )
        on_hand, reserved = conn.execute(
            text("SELECT on_hand, reserved FROM stock_levels WHERE group_id = :g AND sku = 'HOT'"),
            {"g": group},
        ).one()
    assert counts == {"confirmed": 40, "released": 30, "open": 30}
    assert (on_hand, reserved) == (100 - 40, 30)  # 30 back on sale, 30 still held
    check_invariants(pg_engine, group)
