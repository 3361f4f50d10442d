"""Random receipts, counts, till sales, reservations, confirmations, releases and expiries:
on hand = sum of movements, reserved = open reservations, available never negative, and
units sold never exceed units that came in."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import text
from tests.conftest import memory_store
from tests.inventory.helpers import check_invariants, network

from siyu.errors import ConflictError
from siyu.importer.service import ensure_group
from siyu.inventory import reservations
from siyu.inventory.stock import now_utc, set_stock

SKUS = st.sampled_from(["A", "B"])
LOCS = st.sampled_from(["S1", "S2", "W1"])


class StockMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = memory_store()
        self.group = f"g-{uuid.uuid4().hex[:8]}"
        ensure_group(self.engine, self.group)
        network(self.engine, self.group)
        self.n = 0
        self.made: list[int] = []

    def key(self) -> str:
        self.n += 1
        return f"k{self.n}"

    @rule(sku=SKUS, loc=LOCS, units=st.integers(1, 5))
    def receive(self, sku: str, loc: str, units: int) -> None:
        set_stock(
            self.engine,
            self.group,
            sku,
            loc,
            delta=units,
            kind="receive",
            reason="r",
            idempotency_key=self.key(),
        )

    @rule(sku=SKUS, loc=LOCS, units=st.integers(0, 8))
    def count(self, sku: str, loc: str, units: int) -> None:
        with contextlib.suppress(ConflictError):  # below what is reserved: refused
            set_stock(
                self.engine,
                self.group,
                sku,
                loc,
                on_hand=units,
                kind="count",
                reason="c",
                idempotency_key=self.key(),
            )

    @rule(sku=SKUS, loc=LOCS, units=st.integers(1, 3))
    def till_sale(self, sku: str, loc: str, units: int) -> None:
        with contextlib.suppress(ConflictError):
            set_stock(
                self.engine,
                self.group,
                sku,
                loc,
                delta=-units,
                kind="sale",
                reason="till",
                idempotency_key=self.key(),
            )

    @rule(a=st.integers(0, 3), b=st.integers(0, 3), city=st.sampled_from([None, "上海", "广州"]))
    def reserve(self, a: int, b: int, city: str | None) -> None:
        lines = [(sku, q) for sku, q in (("A", a), ("B", b)) if q]
        if not lines:
            return
        try:
            made = reservations.reserve(
                self.engine,
                self.group,
                self.key(),
                "miniprogram",
                lines,
                city=city,
                ttl=timedelta(minutes=5),
            )
        except ConflictError:
            return
        self.made.append(made.reservation_id)

    @rule(data=st.data(), action=st.sampled_from(["confirm", "release"]))
    def close(self, data: st.DataObject, action: str) -> None:
        if not self.made:
            return
        rid = data.draw(st.sampled_from(self.made))
        with contextlib.suppress(ConflictError):
            getattr(reservations, action)(self.engine, self.group, rid)

    @rule()
    def time_passes(self) -> None:
        reservations.sweep_expired(self.engine, self.group, now_utc() + timedelta(minutes=10))

    @invariant()
    def books_balance(self) -> None:
        check_invariants(self.engine, self.group)
        with self.engine.connect() as conn:
            came_in, sold = conn.execute(
                text("""SELECT COALESCE(SUM(CASE WHEN on_hand_delta > 0 THEN on_hand_delta END), 0),
                          COALESCE(-SUM(CASE WHEN on_hand_delta < 0 THEN on_hand_delta END), 0)
                        FROM stock_movements WHERE group_id = :g"""),
                {"g": self.group},
            ).one()
        assert sold <= came_in

    def teardown(self) -> None:
        self.engine.dispose()


StockMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_stock_state_machine = StockMachine.TestCase
