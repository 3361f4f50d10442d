"""Postings: the one way a balance changes.

`post` runs a posting in one transaction:

1. claim the idempotency key (an INSERT that the unique key lets through once; a retry
   finds the first posting and gets its result back, a different request under the same
   key is refused);
2. let the caller's plan decide the entries, reading the member's balances under lock
   when it must (a proportional split, first-expiring lots);
3. apply each member entry as a conditional UPDATE in account-id order, so the database
   refuses an overdraft and concurrent postings lock in the same order;
4. append the entries, which sum to zero.

Any refusal rolls the whole transaction back, claim included: nothing is half-applied,
and the same key may be tried again later.

A posting has two times: `created_at`, when the ledger recorded it, and `business_at`,
when what it records happened (an order's time for its earning, a refund's for its
clawback; the recording time when the request names none). Statements are read by
business time, so history settled late reads as it happened.

System accounts (issuance, redemption, ...) are never updated: their balance is the sum
of their entries. Every posting touches one, so a running balance on them would
serialise every posting of a brand group on one row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text

from siyu.errors import ValidationError
from siyu.ledger.errors import IdempotencyConflict, InsufficientBalance
from siyu.ledger.models import ASSETS, POINTS, SYSTEM_ACCOUNTS, ledger_accounts, ledger_entries
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now, stored_time

MAX_AMOUNT = 10**12  # points or fen in one posting: far above any real one


@dataclass(frozen=True)
class Holder:
    """Whose accounts a posting's own lines move: a member's (points and stored value),
    or a shopping guide's commission accounts (guides/commission_ledger.py), which live in
    the same tables under owner 'guide'. `negative`: the assets whose account may go below
    zero (a guide's contra account, its payable after a clawback of commission paid)."""

    owner: str
    assets: tuple[str, ...]
    negative: frozenset[str] = frozenset()


MEMBER = Holder("member", ASSETS)


@dataclass(frozen=True)
class Request:
    """What was asked: the key and a digest of everything else identify a posting."""

    group_id: str
    member_id: int
    kind: str
    idempotency_key: str
    fields: dict[str, Any]  # the request body, as given
    reference: str | None = None
    store_id: str | None = None
    channel: str | None = None
    reason: str | None = None
    key_id: int | None = None
    # When it happened, if not now (an order's time); not part of the digest: the key and
    # the fields already name what happened.
    business_at: datetime | None = None
    holder: Holder = MEMBER

    @property
    def digest(self) -> str:
        canonical = json.dumps(
            [self.member_id, self.kind, self.fields], sort_keys=True, default=str
        ).encode()
        return hashlib.sha256(canonical).hexdigest()


@dataclass
class Result:
    posting_id: int
    kind: str
    member_id: int
    created_at: datetime
    balances: dict[str, int]  # the member's balances after the posting
    detail: dict[str, Any]
    replayed: bool = False
    business_at: datetime | None = None  # when it happened (see the module docstring)


@dataclass
class Plan:
    """The entries a posting decides, built by the caller's plan function. Most postings
    concern one member; a merge moves value between two."""

    conn: Connection
    group_id: str
    member_id: int
    posting_id: int
    now: datetime
    # (owner, member_id, asset, amount): owner "member" (the holder's account: a member's,
    # or a guide's, see `holder`) or a system account (member 0)
    lines: list[tuple[str, int, str, int]] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    _locked: dict[int, dict[str, tuple[int, int]]] = field(default_factory=dict)
    # Assets this posting may take below zero: only a points clawback under the debt
    # policy does (the member owes points that later earnings repay first).
    allow_debt: set[str] = field(default_factory=set)
    # In a batch, the plan's first write opens a savepoint, so that a refused posting can
    # be undone without the rest of the batch (ledger/batch.py).
    on_first_write: Callable[[], Any] | None = None
    savepoint: Any = None
    business_at: datetime | None = None  # when it happened; None: now
    # Whose accounts the lines owned "member" are (a member's, or a guide's: `Holder`).
    holder: Holder = MEMBER

    @property
    def happened_at(self) -> datetime:
        return self.business_at or self.now

    def write(self, statement: Any, params: Any = None) -> Any:
        """Run a statement that changes rows (lots); reads use `conn` directly."""
        if self.on_first_write is not None and self.savepoint is None:
            self.savepoint = self.on_first_write()
        return self.conn.execute(statement, params)

    def move(self, asset: str, amount: int, counter: str) -> None:
        """`amount` into the member's `asset` account, out of system account `counter`
        (a negative amount goes the other way)."""
        if amount:
            self.lines.append(("member", self.member_id, asset, amount))
            self.lines.append((counter, 0, asset, -amount))

    def transfer(self, asset: str, amount: int, source: int, target: int) -> None:
        """`amount` from one member's account to another's (a merge, an unmerge)."""
        if amount:
            self.lines.append(("member", source, asset, -amount))
            self.lines.append(("member", target, asset, amount))

    def balances(self, *others: int) -> dict[str, int]:
        """The member's balances, its accounts (and those of `others`) locked until the
        posting commits, in account-id order."""
        wanted = [m for m in (self.member_id, *others) if m not in self._locked]
        if wanted:
            self._locked.update(
                _read_accounts(self.conn, self.group_id, wanted, lock=True, holder=self.holder)
            )
        return {asset: bal for asset, (_, bal) in self._locked[self.member_id].items()}

    def balances_of(self, member_id: int) -> dict[str, int]:
        self.balances(member_id)
        return {asset: bal for asset, (_, bal) in self._locked[member_id].items()}


# A posting to make: what was asked, and the plan that decides its entries.
Item = tuple[Request, Callable[[Plan], None]]


def post(engine: Engine, request: Request, plan: Callable[[Plan], None]) -> Result:
    """Apply a posting exactly once (see the module docstring)."""
    system = system_accounts(engine, request.group_id)
    with engine.begin() as conn:
        return post_in(conn, system, request, plan)


def post_in(
    conn: Connection,
    system: dict[tuple[str, str], int],
    request: Request,
    plan: Callable[[Plan], None],
) -> Result:
    """`post` on the caller's transaction, for a domain whose own change must commit or
    roll back with the posting (a lottery draw paid in points). `system` is
    `system_accounts(engine, group)`, read before the caller's transaction begins (it
    creates the accounts in a transaction of its own)."""
    if not request.idempotency_key or len(request.idempotency_key) > 200:
        raise ValidationError("Idempotency-Key", "required, at most 200 characters")
    now = stored_now()
    posting_id = _claim(conn, request, now)
    if posting_id is None:
        return _replay(conn, request)
    work = Plan(
        conn,
        request.group_id,
        request.member_id,
        posting_id,
        now,
        business_at=request.business_at,
        holder=request.holder,
    )
    plan(work)
    balances = as_read(work, _apply(work, system))
    conn.execute(
        text("UPDATE ledger_postings SET detail = :d WHERE posting_id = :p"),
        # The balances are kept with the posting so that a replay answers exactly what
        # the first request was answered.
        {
            "d": json.dumps({**work.detail, "balances": balances}, sort_keys=True),
            "p": posting_id,
        },
    )
    return Result(
        posting_id,
        request.kind,
        request.member_id,
        now,
        balances,
        work.detail,
        business_at=work.happened_at,
    )


def _claim(conn: Connection, request: Request, now: datetime) -> int | None:
    row = conn.execute(
        text("""INSERT INTO ledger_postings (group_id, idempotency_key, request_sha256, kind,
                  member_id, reference, store_id, channel, reason, key_id, business_at,
                  created_at)
                VALUES (:g, :k, :h, :kind, :m, :ref, :s, :c, :r, :key, :at, :now)
                ON CONFLICT (group_id, idempotency_key) DO NOTHING
                RETURNING posting_id"""),
        {
            "g": request.group_id,
            "k": request.idempotency_key,
            "h": request.digest,
            "kind": request.kind,
            "m": request.member_id,
            "ref": request.reference,
            "s": request.store_id,
            "c": request.channel,
            "r": request.reason,
            "key": request.key_id,
            "at": request.business_at or now,
            "now": now,
        },
    ).first()
    return None if row is None else int(row[0])


def _replay(conn: Connection, request: Request) -> Result:
    first = conn.execute(
        text("""SELECT posting_id, kind, member_id, request_sha256, detail, created_at,
                  business_at FROM ledger_postings WHERE group_id = :g AND idempotency_key = :k"""),
        {"g": request.group_id, "k": request.idempotency_key},
    ).one()
    if first.request_sha256 != request.digest:
        raise IdempotencyConflict(
            "Idempotency-Key: already used for a different posting; use a new key"
        )
    detail = json.loads(first.detail or "{}")
    balances = detail.pop("balances", {})
    created = stored_time(first.created_at)
    return Result(
        int(first.posting_id),
        first.kind,
        int(first.member_id),
        created,
        {asset: int(bal) for asset, bal in balances.items()},
        detail,
        replayed=True,
        business_at=stored_time(first.business_at),
    )


def as_read(work: Plan, balances: dict[str, int]) -> dict[str, int]:
    """A posting's answer shows the balances as every read does (ledger.queries.BALANCES):
    points still held by lots past their date are not counted, though the expiry job has
    not yet written them off (an order settled late may even earn an expired lot)."""
    if balances.get(POINTS, 0) <= 0:
        # no lot holds points then (a balance is its lots' remaining, or a debt with
        # every lot empty): nothing can have expired, and the query is spared
        return balances
    expired = work.conn.execute(
        text("""SELECT COALESCE(SUM(remaining), 0) FROM point_lots
                WHERE group_id = :g AND member_id = :m AND remaining > 0
                  AND expires_at <= :now"""),
        {"g": work.group_id, "m": work.member_id, "now": work.now},
    ).scalar_one()
    return {**balances, POINTS: balances[POINTS] - int(expired)}


def _apply(work: Plan, system: dict[tuple[str, str], int]) -> dict[str, int]:
    net: dict[tuple[str, int, str], int] = {}
    for owner, member, asset, amount in work.lines:
        if abs(amount) > MAX_AMOUNT:
            raise ValidationError("amount", f"at most {MAX_AMOUNT} per posting")
        net[owner, member, asset] = net.get((owner, member, asset), 0) + amount
    if sum(net.values()) != 0:  # a bug in a plan, never the caller's input
        raise AssertionError(f"posting {work.posting_id} does not balance: {net}")
    members = sorted({work.member_id} | {m for (o, m, _) in net if o == "member"})
    accounts = dict(work._locked)
    missing = [m for m in members if m not in accounts]
    if missing:
        accounts.update(
            _read_accounts(work.conn, work.group_id, missing, lock=False, holder=work.holder)
        )
    entries = []
    after: dict[tuple[int, str], int] = {}
    # Member accounts in account-id order: every posting locks rows in the same order.
    ordered = sorted(
        (account_id, member, asset)
        for member in members
        for asset, (account_id, _) in accounts[member].items()
    )
    for account_id, member, asset in ordered:
        amount = net.get(("member", member, asset), 0)
        if not amount:
            continue
        row = work.conn.execute(
            text("""UPDATE ledger_accounts SET balance = balance + :d
                    WHERE account_id = :a AND (balance + :d >= 0 OR allow_negative OR :debt)
                    RETURNING balance"""),
            {"d": amount, "a": account_id, "debt": asset in work.allow_debt},
        ).first()
        if row is None:
            available = work.conn.execute(
                text("SELECT balance FROM ledger_accounts WHERE account_id = :a"),
                {"a": account_id},
            ).scalar_one()
            raise InsufficientBalance(asset, -amount, int(available))
        after[member, asset] = int(row[0])
        entries.append(_entry(work, account_id, member, asset, amount, int(row[0])))
    for (owner, _, asset), amount in sorted(net.items()):
        if owner != "member" and amount:
            entries.append(_entry(work, system[owner, asset], 0, asset, amount, None))
    if entries:
        work.conn.execute(insert(ledger_entries), entries)
    mine = accounts[work.member_id]
    return {asset: after.get((work.member_id, asset), bal) for asset, (_, bal) in mine.items()}


def _entry(
    work: Plan, account_id: int, member_id: int, asset: str, amount: int, after: int | None
) -> dict[str, Any]:
    return {
        "posting_id": work.posting_id,
        "group_id": work.group_id,
        "account_id": account_id,
        "member_id": member_id,
        "asset": asset,
        "amount": amount,
        "balance_before": None if after is None else after - amount,
        "balance_after": after,
        "business_at": work.happened_at,
        "created_at": work.now,
    }


def _read_accounts(
    conn: Connection,
    group_id: str,
    member_ids: list[int],
    lock: bool,
    holder: Holder = MEMBER,
) -> dict[int, dict[str, tuple[int, int]]]:
    """member -> asset -> (account_id, balance), row-locked in account-id order on
    PostgreSQL when `lock` (SQLite's BEGIN IMMEDIATE already holds the one write lock).
    Accounts are created on a member's first posting; reading first keeps the common case
    at one statement."""
    query = (
        select(
            ledger_accounts.c.member_id,
            ledger_accounts.c.asset,
            ledger_accounts.c.account_id,
            ledger_accounts.c.balance,
        )
        .where(
            ledger_accounts.c.group_id == group_id,
            ledger_accounts.c.member_id.in_(member_ids),
            ledger_accounts.c.owner == holder.owner,
        )
        .order_by(ledger_accounts.c.account_id)
    )
    if lock:
        query = dialect_of(conn).with_row_lock(query)

    def read() -> dict[int, dict[str, tuple[int, int]]]:
        found: dict[int, dict[str, tuple[int, int]]] = {m: {} for m in member_ids}
        for r in conn.execute(query):
            found[int(r.member_id)][r.asset] = (int(r.account_id), int(r.balance))
        return found

    found = read()
    if all(len(assets) == len(holder.assets) for assets in found.values()):
        return found
    now = stored_now()
    conn.execute(
        text("""INSERT INTO ledger_accounts
                  (group_id, owner, member_id, asset, balance, allow_negative, created_at)
                VALUES (:g, :o, :m, :a, 0, :neg, :now)
                ON CONFLICT (group_id, member_id, owner, asset) DO NOTHING"""),
        [
            {
                "g": group_id,
                "o": holder.owner,
                "m": m,
                "a": asset,
                "neg": asset in holder.negative,
                "now": now,
            }
            for m in sorted(member_ids)
            for asset in holder.assets
            if asset not in found[m]
        ],
    )
    return read()


_SYSTEM_CACHE: dict[tuple[str, str], dict[tuple[str, str], int]] = {}


def system_accounts(engine: Engine, group_id: str) -> dict[tuple[str, str], int]:
    """(owner, asset) -> account_id of the group's system accounts, created on first use
    in a transaction of their own (a posting that rolls back must not take them along).
    They are never deleted, so each process remembers them."""
    cache_key = (engine.url.render_as_string(hide_password=True), group_id)
    known = _SYSTEM_CACHE.get(cache_key)
    if known is not None:
        return known
    now = stored_now()
    with engine.begin() as conn:
        _create_system_accounts(conn, group_id, now)
        rows = conn.execute(
            text("""SELECT owner, asset, account_id FROM ledger_accounts
                    WHERE group_id = :g AND member_id = 0 AND owner <> 'member'"""),
            {"g": group_id},
        ).all()
    found = {(r.owner, r.asset): int(r.account_id) for r in rows}
    _SYSTEM_CACHE[cache_key] = found
    return found


def _create_system_accounts(conn: Connection, group_id: str, now: datetime) -> None:
    conn.execute(
        text("""INSERT INTO ledger_accounts
                  (group_id, owner, member_id, asset, balance, allow_negative, created_at)
                VALUES (:g, :o, 0, :a, 0, true, :now)
                ON CONFLICT (group_id, member_id, owner, asset) DO NOTHING"""),
        [
            {"g": group_id, "o": owner, "a": asset, "now": now}
            for owner in SYSTEM_ACCOUNTS
            for asset in ASSETS
        ],
    )
