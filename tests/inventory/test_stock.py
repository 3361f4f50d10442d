"""Stock and reservations on both engines: never oversold, all-or-nothing, idempotent."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from tests.conftest import Store
from tests.inventory.helpers import check_invariants, network

from siyu.errors import ConflictError, ValidationError
from siyu.inventory import outbox, reservations
from siyu.inventory.errors import OutOfStock, ReservationClosed
from siyu.inventory.reservations import reserve
from siyu.inventory.stock import atp, now_utc, set_stock


@pytest.fixture
def stocked(store: Store) -> Store:
    network(store.engine, store.group_id)
    for loc, units in (("S1", 5), ("S2", 3), ("W1", 10)):
        set_stock(
            store.engine,
            store.group_id,
            "K1",
            loc,
            on_hand=units,
            kind="count",
            reason="opening count",
            idempotency_key=f"open-{loc}",
        )
    return store


def test_counts_and_movements_are_idempotent_and_never_oversell(stocked: Store) -> None:
    g, e = stocked.group_id, stocked.engine
    got = set_stock(
        e, g, "K1", "S1", delta=4, kind="receive", reason="delivery", idempotency_key="d1"
    )
    assert got.level.on_hand == 9
    again = set_stock(
        e, g, "K1", "S1", delta=4, kind="receive", reason="delivery", idempotency_key="d1"
    )
    assert again.replayed and again.level.on_hand == 9
    with pytest.raises(ConflictError):
        set_stock(e, g, "K1", "S1", delta=5, kind="receive", reason="x", idempotency_key="d1")
    with pytest.raises(ValidationError, match="delta"):
        set_stock(e, g, "K1", "S1", delta=-1, kind="receive", reason="x", idempotency_key="d2")
    with pytest.raises(OutOfStock):
        set_stock(e, g, "K1", "S1", delta=-10, kind="sale", reason="till", idempotency_key="t1")
    check_invariants(e, g)


def test_a_till_sale_cannot_take_units_promised_online(stocked: Store) -> None:
    g, e = stocked.group_id, stocked.engine
    reserve(e, g, "O1", "miniprogram", [("K1", 3)], city="广州")  # all of S2
    with pytest.raises(OutOfStock):
        set_stock(e, g, "K1", "S2", delta=-1, kind="sale", reason="till", idempotency_key="t")
    with pytest.raises(OutOfStock):  # nor a count below what is reserved
        set_stock(e, g, "K1", "S2", on_hand=2, kind="count", reason="c", idempotency_key="c")
    check_invariants(e, g)


def test_a_reservation_is_all_or_nothing_and_idempotent_by_order(stocked: Store) -> None:
    g, e = stocked.group_id, stocked.engine
    set_stock(e, g, "K2", "W1", on_hand=1, kind="count", reason="c", idempotency_key="k2")
    with pytest.raises(OutOfStock):
        reserve(e, g, "O1", "tmall", [("K1", 2), ("K2", 2)])
    assert atp_of(stocked, "K1")["tmall"] == 5 + 10 - 2  # nothing was kept
    first = reserve(e, g, "O2", "tmall", [("K1", 2), ("K2", 1)])
    again = reserve(e, g, "O2", "tmall", [("K2", 1), ("K1", 2)])
    assert again.replayed and again.reservation_id == first.reservation_id
    with pytest.raises(ConflictError):
        reserve(e, g, "O2", "tmall", [("K1", 3)])
    check_invariants(e, g)


def test_lines_go_to_the_buyers_city_and_the_nearest_location(stocked: Store) -> None:
    g, e = stocked.group_id, stocked.engine
    assert (
        reserve(e, g, "A", "miniprogram", [("K1", 1)], city="广州").lines[0]["location_id"] == "S2"
    )
    near_w1 = reserve(
        e, g, "B", "miniprogram", [("K1", 1)], city="上海", near=(31_110_000, 121_310_000)
    )
    assert near_w1.lines[0]["location_id"] == "W1"
    near_s1 = reserve(
        e, g, "C", "miniprogram", [("K1", 1)], city="上海", near=(31_230_000, 121_470_000)
    )
    assert near_s1.lines[0]["location_id"] == "S1"
    # tmall does not ship from S2, whatever the city
    assert reserve(e, g, "D", "tmall", [("K1", 1)], city="广州").lines[0]["location_id"] != "S2"
    # more than the city has: served from elsewhere
    assert (
        reserve(e, g, "E", "miniprogram", [("K1", 4)], city="广州").lines[0]["location_id"] == "W1"
    )
    check_invariants(e, g)


def test_confirm_release_and_expiry(stocked: Store) -> None:
    g, e = stocked.group_id, stocked.engine
    paid = reserve(e, g, "P", "miniprogram", [("K1", 2)], city="广州")
    assert reservations.confirm(e, g, paid.reservation_id).status == "confirmed"
    assert reservations.confirm(e, g, paid.reservation_id).replayed
    with pytest.raises(ReservationClosed):
        reservations.release(e, g, paid.reservation_id)
    cancelled = reserve(e, g, "C", "miniprogram", [("K1", 1)], city="广州")
    assert reservations.release(e, g, cancelled.reservation_id).status == "released"
    with pytest.raises(ReservationClosed):
        reservations.confirm(e, g, cancelled.reservation_id)
    late = reserve(e, g, "L", "miniprogram", [("K1", 1)], city="广州", ttl=timedelta(seconds=30))
    assert reservations.sweep_expired(e, g, now_utc() + timedelta(seconds=10)) == 0
    assert reservations.sweep_expired(e, g, now_utc() + timedelta(minutes=1)) == 1
    with pytest.raises(ReservationClosed):
        reservations.confirm(e, g, late.reservation_id)
    # S2 had 3: 2 sold, 1 released, 1 expired back: 1 on hand, all of it available
    assert atp_of(stocked, "K1")["tmall"] == 13
    check_invariants(e, g)


def test_every_change_queues_the_channels_atp_and_delivery_is_at_least_once(stocked: Store) -> None:
    g, e = stocked.group_id, stocked.engine
    reserve(e, g, "O", "tmall", [("K1", 4)], city="上海")
    sent: list[outbox.Event] = []
    failing = {"left": 2}

    def flaky(event: outbox.Event) -> None:
        if failing["left"] == 0:
            raise ConnectionError("channel down")
        failing["left"] -= 1
        sent.append(event)

    assert outbox.deliver(e, g, flaky) == 2  # stops at the failure; the rest stay pending
    rest: list[outbox.Event] = []
    outbox.deliver(e, g, rest.append)
    assert outbox.deliver(e, g, rest.append) == 0
    events = sent + rest
    assert len({ev.event_id for ev in events}) == len(events)
    last = [ev.payload for ev in events if ev.key == "tmall:K1"][-1]
    assert last == {"channel": "tmall", "sku": "K1", "atp": 5 + 10 - 4 - 2}


def atp_of(store: Store, sku: str) -> dict[str, int]:
    with store.engine.connect() as conn:
        return atp(conn, store.group_id, sku)


def test_a_batch_of_reservations_is_one_transaction_all_or_nothing_per_order(
    stocked: Store,
) -> None:
    g, e = stocked.group_id, stocked.engine
    orders = [
        reservations.Order(f"B{i}", "miniprogram", [("K1", 2)], city="广州") for i in range(12)
    ]
    orders.append(reservations.Order("B0", "miniprogram", [("K1", 2)], city="广州"))  # a retry
    orders.append(reservations.Order("B1", "miniprogram", [("K1", 3)]))  # reused, other lines
    out = reservations.reserve_many(e, g, orders)
    made = [o for o in out if isinstance(o, reservations.Reservation) and not o.replayed]
    # 2 per order, a line from one location: S2's 3 units serve 1, S1's 5 serve 2, W1's 10
    # serve 5; the 4 left over are refused, whole
    assert len(made) == 8 and sum(isinstance(o, OutOfStock) for o in out) == 4
    assert made[0].lines[0]["location_id"] == "S2"
    assert out[12].replayed and out[12].lines == made[0].lines  # type: ignore[union-attr]
    assert isinstance(out[-1], ConflictError) and not isinstance(out[-1], OutOfStock)
    check_invariants(e, g)
    for r in made[:3]:
        reservations.confirm(e, g, r.reservation_id)
    check_invariants(e, g)


def test_the_jobs_sweep_and_deliver_from_the_command_line(stocked: Store) -> None:
    from typer.testing import CliRunner

    from siyu.cli import app

    g, e = stocked.group_id, stocked.engine
    reserve(e, g, "X", "tmall", [("K1", 1)], ttl=timedelta(seconds=10))
    env = {
        "SIYU_DATABASE_URL": e.url.render_as_string(hide_password=False),
        "SIYU_GROUP": g,
        "SIYU_SECRET_KEY": bytes(range(32)).hex(),
    }
    runner = CliRunner()
    out = runner.invoke(app, ["inventory", "deliver"], env=env)
    assert out.exit_code == 0, out.output
    events = [json.loads(line) for line in out.output.splitlines()]
    assert events and events[-1]["payload"] == {"channel": "tmall", "sku": "K1", "atp": 12}
    assert runner.invoke(app, ["inventory", "deliver"], env=env).output == ""  # all sent
    swept = runner.invoke(app, ["inventory", "sweep"], env=env)
    assert swept.exit_code == 0 and '"expired": 0' in swept.output  # not yet due
    bad = runner.invoke(app, ["inventory", "deliver", "--to", "ftp://x"], env=env)
    assert bad.exit_code != 0 and "--to" in bad.output
