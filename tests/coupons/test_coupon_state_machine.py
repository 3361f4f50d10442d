"""Random issues, redemptions (fresh, retried, on another order, with a reused key),
refunds, expiries, HQ changing the limits and OneID merging members: a coupon is never
redeemed twice, no limit is ever exceeded, and liability = issued − redeemed + returned −
expired = the coupons held."""

from __future__ import annotations

import uuid
from datetime import timedelta

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import text
from tests.conftest import memory_store
from tests.coupons.helpers import T0, basket, check_liability, new_member, save_template

from siyu.coupons.expiry import expire
from siyu.coupons.issue import issue
from siyu.coupons.redeem import Redemption, redeem
from siyu.coupons.returns import give_back
from siyu.errors import ConflictError, SiyuError
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.service import merge_members
from siyu.importer.service import ensure_group
from siyu.privacy import Vault

CAPS = st.none() | st.integers(1, 6)


class CouponMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = memory_store()
        self.group = f"g-{uuid.uuid4().hex[:8]}"
        ensure_group(self.engine, self.group)
        encoder = IdentifierEncoder(Vault(bytes(range(32))))
        self.members = [new_member(self.engine, encoder, self.group, f"u-{i}") for i in range(3)]
        self.members.append(new_member(self.engine, encoder, self.group, "o-3", "openid"))
        self.caps = {"per_member": 3, "issued": 8, "redemptions": 5, "budget_fen": 1500 * 5}
        save_template(self.engine, self.group, limits=self.caps)
        self.now = T0
        self.merged = False
        self.n = 0
        self.codes: list[str] = []
        self.asked: list[Redemption] = []  # redemptions answered, for retries
        self.redeemed: dict[str, str] = {}  # code -> order, as the tills were told

    def key(self) -> str:
        self.n += 1
        return f"k{self.n}"

    @rule(who=st.sets(st.integers(0, 3), min_size=1), retry=st.booleans())
    def issue_some(self, who: set[int], retry: bool) -> None:
        key = f"wave-{self.n}" if retry else self.key()
        report = issue(
            self.engine, self.group, "SPRING20", [self.members[i] for i in who], key, at=self.now
        )
        self.codes += [c.code for c in report.issued if c.code not in self.codes]

    @precondition(lambda self: self.codes)
    @rule(pick=st.integers(0, 99), amount=st.sampled_from([5000, 10000, 30000]))
    def redeem_one(self, pick: int, amount: int) -> None:
        code = self.codes[pick % len(self.codes)]
        ask = Redemption(code, f"O-{self.n}", basket(amount), self.key())
        try:
            done = redeem(self.engine, self.group, ask, self.now)
        except SiyuError:
            return
        assert code not in self.redeemed, f"{code} redeemed twice"
        self.redeemed[code] = ask.order_id
        assert done.off_fen == 2000
        self.asked.append(ask)

    @precondition(lambda self: self.asked)
    @rule(pick=st.integers(0, 99))
    def retry(self, pick: int) -> None:
        ask = self.asked[pick % len(self.asked)]
        try:
            again = redeem(self.engine, self.group, ask, self.now)
        except ConflictError:
            return  # the coupon was returned and used again: the first answer stands
        assert again.replayed and again.order_id == ask.order_id

    @precondition(lambda self: self.redeemed)
    @rule(pick=st.integers(0, 99))
    def refund(self, pick: int) -> None:
        code = sorted(self.redeemed)[pick % len(self.redeemed)]
        give_back(self.engine, self.group, code, self.redeemed.pop(code), self.key(), at=self.now)

    @rule(days=st.integers(1, 20))
    def time_passes(self, days: int) -> None:
        self.now += timedelta(days=days)
        expire(self.engine, self.group, self.now)

    @rule(caps=st.fixed_dictionaries({"redemptions": CAPS, "budget_fen": CAPS}))
    def hq_changes_limits(self, caps: dict[str, int | None]) -> None:
        self.caps = {**self.caps, **caps}
        if caps["budget_fen"] is not None:
            self.caps["budget_fen"] = caps["budget_fen"] * 1500
        save_template(self.engine, self.group, limits=self.caps)

    @precondition(lambda self: not self.merged)
    @rule()
    def oneid_merges(self) -> None:
        # the mini-program sign-up was the first member: her coupons follow, and her old
        # id still issues and redeems, for the survivor
        merge_members(self.engine, self.group, self.members[0], self.members[3], "same")
        self.merged = True

    @invariant()
    def books_balance(self) -> None:
        check_liability(self.engine, self.group)
        with self.engine.connect() as conn:
            twice = conn.execute(
                text("""SELECT coupon_id FROM coupon_events WHERE group_id = :g
                        GROUP BY coupon_id HAVING SUM(CASE kind WHEN 'redeemed' THEN 1
                          WHEN 'returned' THEN -1 ELSE 0 END) NOT IN (0, 1)"""),
                {"g": self.group},
            ).all()
            counters = dict(
                conn.execute(
                    text(
                        "SELECT counter, used FROM coupon_counters WHERE group_id = :g "
                        "AND member_id = 0"
                    ),
                    {"g": self.group},
                ).all()
            )
            per_member = conn.execute(
                text("""SELECT MAX(used) FROM coupon_counters WHERE group_id = :g
                        AND member_id <> 0"""),
                {"g": self.group},
            ).scalar()
        assert twice == []
        assert counters.get("SPRING20:issued", 0) <= 8
        assert (per_member or 0) <= 3
        # a cap lowered below what is already used is never pushed further: the counter
        # only rises while it is under the newest cap
        assert counters.get("SPRING20:redemptions", 0) == len(self.redeemed)

    def teardown(self) -> None:
        self.engine.dispose()


CouponMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCoupons = CouponMachine.TestCase
