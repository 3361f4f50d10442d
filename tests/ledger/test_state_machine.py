"""Random sequences of postings, retries and refusals against a model of the ledger: the
balances match the model, and the ledger's invariants hold after every step."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from tests.conftest import memory_store
from tests.ledger.invariants import check_invariants

from siyu.importer.service import ensure_group
from siyu.ledger import points, stored_value
from siyu.ledger.errors import IdempotencyConflict, InsufficientBalance
from siyu.ledger.posting import Request

MEMBERS = st.integers(1, 3)
SMALL = st.integers(1, 60)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = memory_store()  # in memory, one connection (StaticPool)
        self.group = f"g-{uuid.uuid4().hex[:8]}"
        ensure_group(self.engine, self.group)
        self.points: dict[int, int] = {}
        self.principal: dict[int, int] = {}
        self.bonus: dict[int, int] = {}
        self.done: dict[str, tuple[int, str, int]] = {}  # key -> (member, kind, amount)
        self.top_ups: list[tuple[int, int, int, int]] = []  # (posting, member, paid, bonus)
        self.n = 0

    @initialize()
    def start(self) -> None:
        check_invariants(self.engine, self.group)

    def _key(self) -> str:
        self.n += 1
        return f"k{self.n}"

    def _ask(self, member: int, kind: str, key: str, **fields: object) -> Request:
        return Request(self.group, member, kind, key, dict(fields))

    @rule(member=MEMBERS, amount=SMALL, days=st.integers(2, 800))
    def earn(self, member: int, amount: int, days: int) -> None:
        key = self._key()
        expiry = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=days)
        points.earn(self.engine, self._ask(member, "earn", key, n=amount), amount, expiry)
        self.points[member] = self.points.get(member, 0) + amount
        self.done[key] = (member, "earn", amount)

    @rule(member=MEMBERS, amount=SMALL)
    def spend(self, member: int, amount: int) -> None:
        key = self._key()
        have = self.points.get(member, 0)
        try:
            points.spend(self.engine, self._ask(member, "spend", key, n=amount), amount)
        except InsufficientBalance:
            assert amount > have
            return
        assert amount <= have
        self.points[member] = have - amount
        self.done[key] = (member, "spend", amount)

    @rule(member=MEMBERS, paid=SMALL, bonus=st.integers(0, 20))
    def top_up(self, member: int, paid: int, bonus: int) -> None:
        key = self._key()
        result = stored_value.top_up(
            self.engine, self._ask(member, "top_up", key, p=paid, b=bonus), paid, bonus
        )
        self.principal[member] = self.principal.get(member, 0) + paid
        self.bonus[member] = self.bonus.get(member, 0) + bonus
        self.top_ups.append((result.posting_id, member, paid, bonus))
        self.done[key] = (member, "top_up", paid)

    @rule(member=MEMBERS, amount=SMALL)
    def pay(self, member: int, amount: int) -> None:
        key = self._key()
        p, b = self.principal.get(member, 0), self.bonus.get(member, 0)
        try:
            result = stored_value.pay(self.engine, self._ask(member, "pay", key, a=amount), amount)
        except InsufficientBalance:
            assert amount > p + b
            return
        from_p, from_b = stored_value.split(amount, p, b)
        assert (result.detail["principal_fen"], result.detail["bonus_fen"]) == (from_p, from_b)
        self.principal[member], self.bonus[member] = p - from_p, b - from_b
        self.done[key] = (member, "pay", amount)

    @rule(data=st.data())
    def retry_something(self, data: st.DataObject) -> None:
        """A retry of any acknowledged posting applies nothing."""
        if not self.done:
            return
        key = data.draw(st.sampled_from(sorted(self.done)))
        member, kind, amount = self.done[key]
        fields = {"earn": "n", "spend": "n", "top_up": "p", "pay": "a"}
        if kind == "top_up":
            return  # its request also carries the bonus; retried in test_ledger
        ask = self._ask(member, kind, key, **{fields[kind]: amount})
        call = {"earn": points.earn, "spend": points.spend, "pay": stored_value.pay}[kind]
        result = (
            call(self.engine, ask, amount, None)  # type: ignore[operator]
            if kind == "earn"
            else call(self.engine, ask, amount)  # type: ignore[operator]
        )
        assert result.replayed

    @rule(data=st.data())
    def reuse_a_key_for_something_else(self, data: st.DataObject) -> None:
        if not self.done:
            return
        key = data.draw(st.sampled_from(sorted(self.done)))
        member = self.done[key][0]
        try:
            points.earn(self.engine, self._ask(member, "earn", key, other=True), 1, None)
        except IdempotencyConflict:
            return
        raise AssertionError("a reused key was accepted")

    @rule(data=st.data())
    def refund_a_top_up(self, data: st.DataObject) -> None:
        if not self.top_ups:
            return
        posting, member, paid, bonus = data.draw(st.sampled_from(self.top_ups))
        self.top_ups.remove((posting, member, paid, bonus))
        ask = self._ask(member, "refund_top_up", self._key(), t=posting)
        try:
            result = stored_value.refund_top_up(self.engine, ask, posting)
        except InsufficientBalance:
            assert self.principal.get(member, 0) == 0
            return
        back = min(paid, self.principal[member])
        assert result.detail["principal_fen"] == back
        self.principal[member] -= back
        self.bonus[member] -= result.detail["bonus_fen"]

    @invariant()
    def balances_match_the_model(self) -> None:
        for member in (1, 2, 3):
            with self.engine.connect() as conn:
                held = dict(
                    conn.exec_driver_sql(
                        "SELECT asset, balance FROM ledger_accounts WHERE group_id = ? "
                        "AND owner = 'member' AND member_id = ?",
                        (self.group, member),
                    ).all()
                )
            assert held.get("points", 0) == self.points.get(member, 0)
            assert held.get("sv_principal", 0) == self.principal.get(member, 0)
            assert held.get("sv_bonus", 0) == self.bonus.get(member, 0)

    @invariant()
    def ledger_invariants(self) -> None:
        check_invariants(self.engine, self.group)

    def teardown(self) -> None:
        self.engine.dispose()


LedgerMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_ledger_state_machine = LedgerMachine.TestCase
