"""Points and stored value on both engines: exactly once, never negative, never half-applied."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from tests.conftest import Store
from tests.ledger.invariants import check_invariants

from siyu.errors import ValidationError
from siyu.ledger import points, stored_value
from siyu.ledger.errors import IdempotencyConflict, InsufficientBalance
from siyu.ledger.posting import Request

_keys = itertools.count()


def ask(
    store: Store, kind: str, member: int = 1, key: str | None = None, **fields: object
) -> Request:
    return Request(store.group_id, member, kind, key or f"k{next(_keys)}", dict(fields))


def count(store: Store, table: str) -> int:
    return store.count(table)


def test_points_are_spent_first_expiring_first(store: Store) -> None:
    soon = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=30)
    late = soon + timedelta(days=300)
    late_lot = points.earn(store.engine, ask(store, "earn", p=100), 100, late)
    soon_lot = points.earn(store.engine, ask(store, "earn", p=50), 50, soon)
    spent = points.spend(store.engine, ask(store, "spend", p=70), 70)
    assert spent.balances["points"] == 80
    assert spent.detail["lots"] == [
        [soon_lot.detail["lot_id"], 50],
        [late_lot.detail["lot_id"], 20],
    ]
    check_invariants(store.engine, store.group_id)


def test_an_overdraft_is_refused_and_nothing_is_applied(store: Store) -> None:
    points.earn(store.engine, ask(store, "earn"), 10, None)
    entries, postings = count(store, "ledger_entries"), count(store, "ledger_postings")
    with pytest.raises(InsufficientBalance) as refused:
        points.spend(store.engine, ask(store, "spend", key="too-much"), 11)
    assert (refused.value.needed, refused.value.available) == (11, 10)
    assert (count(store, "ledger_entries"), count(store, "ledger_postings")) == (entries, postings)
    # the refused key was not used up: it may succeed later
    points.earn(store.engine, ask(store, "earn"), 1, None)
    assert (
        points.spend(store.engine, ask(store, "spend", key="too-much"), 11).balances["points"] == 0
    )
    check_invariants(store.engine, store.group_id)


def test_a_retry_applies_nothing_and_another_request_under_the_key_is_refused(
    store: Store,
) -> None:
    first = points.earn(store.engine, ask(store, "earn", key="order-1", points=30), 30, None)
    again = points.earn(store.engine, ask(store, "earn", key="order-1", points=30), 30, None)
    assert again.replayed and again.posting_id == first.posting_id
    assert again.balances == first.balances
    assert count(store, "point_lots") == 1
    with pytest.raises(IdempotencyConflict):
        points.earn(store.engine, ask(store, "earn", key="order-1", points=31), 31, None)
    check_invariants(store.engine, store.group_id)


def test_expired_lots_become_breakage_once(store: Store) -> None:
    soon = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)
    points.earn(store.engine, ask(store, "earn", member=1), 40, soon)
    points.earn(store.engine, ask(store, "earn", member=2), 5, soon + timedelta(days=400))
    points.spend(store.engine, ask(store, "spend", member=1), 15)
    later = soon + timedelta(days=2)
    assert points.expire_due(store.engine, store.group_id, later) == 1
    assert points.expire_due(store.engine, store.group_id, later) == 0
    with store.engine.connect() as conn:
        breakage = conn.execute(
            text("""SELECT SUM(e.amount) FROM ledger_entries e JOIN ledger_accounts a
                    ON a.account_id = e.account_id WHERE a.group_id = :g
                    AND a.owner = 'breakage'"""),
            {"g": store.group_id},
        ).scalar_one()
    assert breakage == 25
    check_invariants(store.engine, store.group_id)


def test_adjustments_go_both_ways(store: Store) -> None:
    points.adjust(store.engine, ask(store, "adjust"), 20, None)
    assert points.adjust(store.engine, ask(store, "adjust"), -5, None).balances["points"] == 15
    with pytest.raises(InsufficientBalance):
        points.adjust(store.engine, ask(store, "adjust"), -16, None)
    with pytest.raises(ValidationError, match="points"):
        points.adjust(store.engine, ask(store, "adjust"), 0, None)
    check_invariants(store.engine, store.group_id)


def test_stored_value_spends_principal_and_bonus_in_proportion(store: Store) -> None:
    top = stored_value.top_up(store.engine, ask(store, "top_up"), 1000, 100)
    assert top.balances == {"points": 0, "sv_principal": 1000, "sv_bonus": 100}
    paid = stored_value.pay(store.engine, ask(store, "pay"), 110)
    assert (paid.detail["principal_fen"], paid.detail["bonus_fen"]) == (100, 10)
    with pytest.raises(InsufficientBalance):
        stored_value.pay(store.engine, ask(store, "pay"), 991)
    # the refund gives back the unspent principal, and the bonus goes with it
    refund = stored_value.refund_top_up(store.engine, ask(store, "refund_top_up"), top.posting_id)
    assert (refund.detail["principal_fen"], refund.detail["bonus_fen"]) == (900, 90)
    assert refund.balances == {"points": 0, "sv_principal": 0, "sv_bonus": 0}
    with pytest.raises(stored_value.AlreadyRefunded):
        stored_value.refund_top_up(store.engine, ask(store, "refund_top_up"), top.posting_id)
    check_invariants(store.engine, store.group_id)


@pytest.mark.parametrize(
    ("amount", "principal", "bonus"),
    [(1, 1, 1), (10, 1000, 100), (7, 3, 5), (1100, 1000, 100), (1, 0, 5), (5, 5, 0), (3, 2, 2)],
)
def test_the_split_stays_within_both_balances(amount: int, principal: int, bonus: int) -> None:
    p, b = stored_value.split(amount, principal, bonus)
    assert p + b == amount and 0 <= p <= principal and 0 <= b <= bonus
