"""Many postings in one transaction: the same rules as `post`, one commit.

A commit is the cost that dominates a posting (a WAL flush, and the round trips of a
transaction of its own). An importer settling a day of orders, or a channel sending a
burst of payments, can hand siyu a batch instead: the keys are claimed in one statement,
the members' accounts are locked once (in account-id order), each posting's plan runs
against the balances as the earlier postings of the batch left them, and the balances,
entries and answers are written with one statement each.

Every posting is still all-or-nothing on its own: a refused one (insufficient balance, a
key reused for another request) is reported in its slot and leaves nothing behind (the
rows its plan wrote, lots for instance, are in a savepoint opened at its first write and
rolled back; its balances were only ever in memory; its claim is removed), while the rest
of the batch commits.
The final balance update keeps the database's guard (`balance + d >= 0`) and must touch
every account it names, or the whole batch rolls back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, text

from siyu.errors import ConflictError, ValidationError
from siyu.ledger.errors import IdempotencyConflict, InsufficientBalance
from siyu.ledger.models import ledger_entries, ledger_postings
from siyu.ledger.posting import (
    MAX_AMOUNT,
    Item,
    Plan,
    Result,
    _read_accounts,
    _replay,
    as_read,
    system_accounts,
)
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now

Outcome = Result | ConflictError


def post_many(engine: Engine, items: Sequence[Item]) -> list[Outcome]:
    """Apply each posting exactly once, in one transaction; a result or the refusal of
    each, in order. All items must belong to one brand group."""
    if not items:
        return []
    group_id = items[0][0].group_id
    for request, _ in items:
        if request.group_id != group_id:
            raise ValidationError("group_id", "one brand group per batch")
        if not request.idempotency_key or len(request.idempotency_key) > 200:
            raise ValidationError("Idempotency-Key", "required, at most 200 characters")
    now = stored_now()
    system = system_accounts(engine, group_id)
    outcomes: list[Outcome | None] = [None] * len(items)
    with engine.begin() as conn:
        claimed = _claim_all(conn, items, now)
        first_of: dict[str, int] = {}
        for i, (request, _) in enumerate(items):
            key = request.idempotency_key
            if key in claimed and key not in first_of:
                first_of[key] = i
        members = sorted({r.member_id for r, _ in items})
        locked = _read_accounts(conn, group_id, members, lock=True)
        start = {m: dict(assets) for m, assets in locked.items()}
        entries: list[dict[str, Any]] = []
        details: list[dict[str, Any]] = []
        refused: list[int] = []
        debt: set[int] = set()
        for i, (request, plan) in enumerate(items):
            key = request.idempotency_key
            if first_of.get(key) != i:
                continue  # a replay: answered below, after the batch's own postings
            posting_id = claimed[key]
            work = Plan(
                conn,
                group_id,
                request.member_id,
                posting_id,
                now,
                _locked=locked,
                on_first_write=conn.begin_nested,
                business_at=request.business_at,
            )
            try:
                plan(work)
                posted = _settle(work)
            except ConflictError as refusal:
                if work.savepoint is not None:
                    work.savepoint.rollback()
                refused.append(posting_id)
                outcomes[i] = refusal
                continue
            if work.savepoint is not None:
                work.savepoint.commit()
            for member, asset, account_id, before, after in posted:
                locked[member][asset] = (account_id, after)
                if after < 0:
                    debt.add(account_id)
                entries.append(_entry(work, account_id, member, asset, after - before, before))
            entries.extend(_system_entries(work, system))
            mine = as_read(work, {a: bal for a, (_, bal) in locked[request.member_id].items()})
            details.append(
                {
                    "p": posting_id,
                    "d": json.dumps({**work.detail, "balances": mine}, sort_keys=True),
                }
            )
            outcomes[i] = Result(
                posting_id,
                request.kind,
                request.member_id,
                now,
                mine,
                work.detail,
                business_at=work.happened_at,
            )
        _write_balances(conn, start, locked, debt)
        _write_entries(conn, entries)
        _write_details(conn, details)
        if refused:
            conn.execute(
                text("DELETE FROM ledger_postings WHERE posting_id IN :ids").bindparams(
                    _expanding("ids")
                ),
                {"ids": refused},
            )
    # Replays, after the commit: they read the first answer, which may be from this batch.
    with engine.connect() as conn:
        for i, (request, _) in enumerate(items):
            if outcomes[i] is None:
                try:
                    outcomes[i] = _replay(conn, request)
                except IdempotencyConflict as conflict:
                    outcomes[i] = conflict
    return [o for o in outcomes if o is not None]


def _claim_all(conn: Connection, items: Sequence[Item], now: datetime) -> dict[str, int]:
    rows = [
        {
            "group_id": r.group_id,
            "idempotency_key": r.idempotency_key,
            "request_sha256": r.digest,
            "kind": r.kind,
            "member_id": r.member_id,
            "reference": r.reference,
            "store_id": r.store_id,
            "channel": r.channel,
            "reason": r.reason,
            "key_id": r.key_id,
            "business_at": r.business_at or now,
            "created_at": now,
        }
        for r, _ in items
    ]
    dialect = dialect_of(conn)
    if dialect.one_statement_per_batch:
        # One fixed statement over arrays: parsed and planned once, whatever the batch size
        # (a multi-row VALUES list is new text, to parse again, at every size).
        columns = list(rows[0])
        found = conn.execute(
            text(f"""INSERT INTO ledger_postings ({", ".join(columns)})
                     SELECT {", ".join(columns)} FROM {_recordset(columns)}
                     ON CONFLICT (group_id, idempotency_key) DO NOTHING
                     RETURNING idempotency_key, posting_id"""),
            {"rows": _json(rows)},
        )
        return {key: int(pid) for key, pid in found}
    statement = dialect.insert_ignore(ledger_postings, ["group_id", "idempotency_key"]).returning(
        ledger_postings.c.idempotency_key, ledger_postings.c.posting_id
    )
    return {key: int(pid) for key, pid in conn.execute(statement, rows)}


def _settle(work: Plan) -> list[tuple[int, str, int, int, int]]:
    """The posting's member entries against the batch's balances, refused (raised) if an
    account would go below zero: [(member, asset, account, before, after)]."""
    net: dict[tuple[str, int, str], int] = {}
    for owner, member, asset, amount in work.lines:
        if abs(amount) > MAX_AMOUNT:
            raise ValidationError("amount", f"at most {MAX_AMOUNT} per posting")
        net[owner, member, asset] = net.get((owner, member, asset), 0) + amount
    if sum(net.values()) != 0:
        raise AssertionError(f"posting {work.posting_id} does not balance: {net}")
    posted = []
    for (owner, member, asset), amount in sorted(net.items()):
        if owner != "member" or not amount:
            continue
        account_id, before = work._locked[member][asset]
        after = before + amount
        if after < 0 and asset not in work.allow_debt:
            raise InsufficientBalance(asset, -amount, before)
        posted.append((member, asset, account_id, before, after))
    return posted


def _system_entries(work: Plan, system: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    net: dict[tuple[str, str], int] = {}
    for owner, _, asset, amount in work.lines:
        if owner != "member":
            net[owner, asset] = net.get((owner, asset), 0) + amount
    return [
        _entry(work, system[owner, asset], 0, asset, amount, None)
        for (owner, asset), amount in sorted(net.items())
        if amount
    ]


def _entry(
    work: Plan, account_id: int, member_id: int, asset: str, amount: int, before: int | None
) -> dict[str, Any]:
    return {
        "posting_id": work.posting_id,
        "group_id": work.group_id,
        "account_id": account_id,
        "member_id": member_id,
        "asset": asset,
        "amount": amount,
        "balance_before": before,
        "balance_after": None if before is None else before + amount,
        "business_at": work.happened_at,
        "created_at": work.now,
    }


def _write_balances(
    conn: Connection,
    start: dict[int, dict[str, tuple[int, int]]],
    end: dict[int, dict[str, tuple[int, int]]],
    debt: set[int],
) -> None:
    """One guarded UPDATE for every account the batch changed (per account on SQLite,
    where a statement is a function call)."""
    deltas = [
        (account_id, after - start[member][asset][1])
        for member, assets in end.items()
        for asset, (account_id, after) in assets.items()
        if after != start[member][asset][1]
    ]
    if not deltas:
        return
    deltas.sort()
    if dialect_of(conn).one_statement_per_batch:
        done = conn.execute(
            text("""UPDATE ledger_accounts AS a SET balance = a.balance + v.d
                    FROM unnest(CAST(:ids AS BIGINT[]), CAST(:ds AS BIGINT[]),
                                CAST(:debts AS BOOLEAN[])) AS v(id, d, debt)
                    WHERE a.account_id = v.id AND (a.balance + v.d >= 0 OR v.debt)
                    RETURNING a.account_id"""),
            {
                "ids": [a for a, _ in deltas],
                "ds": [d for _, d in deltas],
                "debts": [a in debt for a, _ in deltas],
            },
        ).all()
        changed = len(done)
    else:
        changed = 0
        for account_id, delta in deltas:
            changed += conn.execute(
                text("""UPDATE ledger_accounts SET balance = balance + :d
                        WHERE account_id = :a AND (balance + :d >= 0 OR :debt)"""),
                {"a": account_id, "d": delta, "debt": account_id in debt},
            ).rowcount
    if changed != len(deltas):  # the locks make this impossible; never commit if it happens
        raise AssertionError(f"batch balance update touched {changed} of {len(deltas)} accounts")


_PG_TYPE = {
    "group_id": "VARCHAR",
    "idempotency_key": "VARCHAR",
    "request_sha256": "VARCHAR",
    "kind": "VARCHAR",
    "member_id": "BIGINT",
    "reference": "VARCHAR",
    "store_id": "VARCHAR",
    "channel": "VARCHAR",
    "reason": "VARCHAR",
    "key_id": "BIGINT",
    "business_at": "TIMESTAMP",
    "created_at": "TIMESTAMP",
    "posting_id": "BIGINT",
    "account_id": "BIGINT",
    "asset": "VARCHAR",
    "amount": "BIGINT",
    "balance_before": "BIGINT",
    "balance_after": "BIGINT",
}


def _recordset(columns: list[str]) -> str:
    """Rows passed as one JSON text: PostgreSQL parses it in C, where binding arrays
    would have psycopg escape every element in Python."""
    spec = ", ".join(f"{c} {_PG_TYPE[c]}" for c in columns)
    return f"json_to_recordset(CAST(:rows AS json)) AS r({spec})"


def _json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=_iso, separators=(",", ":"))


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _write_entries(conn: Connection, entries: list[dict[str, Any]]) -> None:
    if not entries:
        return
    if not dialect_of(conn).one_statement_per_batch:
        conn.execute(insert(ledger_entries), entries)
        return
    columns = list(entries[0])
    conn.execute(
        text(f"""INSERT INTO ledger_entries ({", ".join(columns)})
                 SELECT {", ".join(columns)} FROM {_recordset(columns)}"""),
        {"rows": _json(entries)},
    )


def _write_details(conn: Connection, details: list[dict[str, Any]]) -> None:
    if not details:
        return
    if not dialect_of(conn).one_statement_per_batch:
        conn.execute(text("UPDATE ledger_postings SET detail = :d WHERE posting_id = :p"), details)
        return
    conn.execute(
        text("""UPDATE ledger_postings AS t SET detail = r.d
                FROM json_to_recordset(CAST(:rows AS json)) AS r(p BIGINT, d TEXT)
                WHERE t.posting_id = r.p"""),
        {"rows": _json(details)},
    )


def _expanding(name: str) -> Any:
    return bindparam(name, expanding=True)
