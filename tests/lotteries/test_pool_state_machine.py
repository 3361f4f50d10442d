"""Random draws (alone and in batches), till sales of the prize items, restocking and
claims against one pool: a prize is never awarded past its units or its shelf, a member
never draws past the limit, every draw recomputes from the seed, and a prize is claimed
at most once."""

from __future__ import annotations

import contextlib
import uuid

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import text
from tests.conftest import memory_store
from tests.inventory.helpers import check_invariants
from tests.lotteries.helpers import DURING, define_pool, stock_prizes

from siyu.errors import ConflictError
from siyu.importer.service import ensure_group
from siyu.inventory.stock import set_stock
from siyu.lotteries.audit import verify
from siyu.lotteries.claim import claim
from siyu.lotteries.draw import DrawAsk, Drawn, draw_many

PER_MEMBER = 4
UNITS = {"A-BAG": 3, "B-SAMPLE": 5}


class PoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = memory_store()
        self.group = f"g-{uuid.uuid4().hex[:8]}"
        ensure_group(self.engine, self.group)
        stock_prizes(self.engine, self.group, {"BAG": 2, "SAMPLE": 4})
        prizes = [
            {
                "code": code,
                "name_zh": code,
                "name_en": code,
                "sku": sku,
                "location_id": "S1",
                "odds_ppm": odds,
                "units": UNITS[code],
            }
            for code, sku, odds in (("A-BAG", "BAG", 200_000), ("B-SAMPLE", "SAMPLE", 500_000))
        ]
        define_pool(self.engine, self.group, prizes=prizes, per_member=PER_MEMBER)
        with self.engine.begin() as conn:
            self.members = [
                int(
                    conn.execute(
                        text("""INSERT INTO members (group_id, status, registered_at,
                                  created_at, updated_at)
                                VALUES (:g, 'active', :t, :t, :t) RETURNING member_id"""),
                        {"g": self.group, "t": DURING.replace(tzinfo=None)},
                    ).scalar_one()
                )
                for _ in range(3)
            ]
        self.n = 0
        self.codes: list[str] = []
        self.claimed: set[str] = set()

    def key(self) -> str:
        self.n += 1
        return f"k{self.n}"

    @rule(who=st.lists(st.integers(0, 2), min_size=1, max_size=4), retry=st.booleans())
    def draw(self, who: list[int], retry: bool) -> None:
        asks = [DrawAsk(self.members[w], self.key()) for w in who]
        if retry and self.n > len(asks):
            asks.append(DrawAsk(self.members[who[0]], "k1"))  # a retry of the first draw
        for outcome in draw_many(self.engine, self.group, "SPRING", asks, DURING):
            if isinstance(outcome, Drawn) and outcome.claim_code and not outcome.replayed:
                self.codes.append(outcome.claim_code)

    @rule(sku=st.sampled_from(["BAG", "SAMPLE"]), units=st.integers(1, 3))
    def restock(self, sku: str, units: int) -> None:
        set_stock(
            self.engine,
            self.group,
            sku,
            "S1",
            delta=units,
            kind="receive",
            reason="r",
            idempotency_key=self.key(),
        )

    @rule(sku=st.sampled_from(["BAG", "SAMPLE"]))
    def till_sale(self, sku: str) -> None:
        with contextlib.suppress(ConflictError):  # the shelf is empty: refused
            set_stock(
                self.engine,
                self.group,
                sku,
                "S1",
                delta=-1,
                kind="sale",
                reason="till",
                idempotency_key=self.key(),
            )

    @rule(data=st.data(), store=st.sampled_from(["S1", "S2"]))
    def claim_one(self, data: st.DataObject, store: str) -> None:
        if not self.codes:
            return
        code = data.draw(st.sampled_from(self.codes))
        try:
            claim(self.engine, self.group, code, store, self.key(), DURING)
        except ConflictError:
            assert store != "S1" or code in self.claimed
            return
        assert store == "S1" and code not in self.claimed
        self.claimed.add(code)

    @invariant()
    def never_over_awarded_nor_over_drawn(self) -> None:
        report = verify(self.engine, self.group, "SPRING")
        assert report.ok, report.problems
        for code, won in report.won.items():
            assert won <= UNITS[code]
        with self.engine.connect() as conn:
            per_member = conn.execute(
                text("""SELECT member_id, COUNT(*) FROM prize_draws WHERE group_id = :g
                        GROUP BY member_id"""),
                {"g": self.group},
            ).all()
            claimed = conn.execute(
                text("""SELECT COUNT(*) FROM prize_draws WHERE group_id = :g
                        AND claimed_at IS NOT NULL"""),
                {"g": self.group},
            ).scalar_one()
        assert all(n <= PER_MEMBER for _, n in per_member)
        assert claimed == len(self.claimed)
        check_invariants(self.engine, self.group)

    def teardown(self) -> None:
        self.engine.dispose()


PoolMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPoolMachine = PoolMachine.TestCase
