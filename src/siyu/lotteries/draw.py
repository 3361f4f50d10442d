"""Drawing from a prize pool: exactly once per key, never past a limit or a prize's units.

`draw_many` draws a batch of one pool in one transaction; `draw` is a batch of one. The
order of a transaction, and why:

1. answer replays (a key already drawn) from the log, before anything is locked;
2. lock the pool's prize rows in prize-code order, then their stock rows: every draw of
   the pool takes the pool's locks first, so two draws of it never deadlock on the member
   rows below, and the prizes left are read under lock (SQLite: BEGIN IMMEDIATE);
3. check each draw's entry (its scene, its order, its campaign) and lock the members'
   counters;
4. walk the draws in order: the per-member limit, whether any prize is left, then the
   points (through the ledger's own `points.spend`, on this transaction, in a savepoint:
   a draw refused by the ledger leaves nothing), then the roll (fairness.py) and the
   prize it falls on, taken only if the pool's allotment and the shelf both still hold
   one; otherwise the draw records `sold_out`, never an extra unit;
5. write: the counters (guarded: `draws + n <= per_member`), each prize's `awarded`
   (guarded: `awarded + k <= units`), one stock movement per prize (`inventory.stock.move`,
   the guarded UPDATE of the one stock, then the ATP outbox), and the draw rows.

A refused draw is refused before its points are spent and counts nothing. The points are
spent before the roll, so a roll is only ever made for a draw that has paid; a "no prize"
draw keeps its points (the member paid for a chance, as at any counter lottery).
A batch pays the locks and the commit once (the hot pool's rows are its bottleneck), and
each draw still succeeds or fails alone.

A campaign's pool (entry `campaign`) is entered by being granted the campaign's
incentives: a member of its treatment with `granted_at` set (the holdout never is, so the
report still compares like with like), during the campaign's period. The campaign's
tables are named in the SQL rather than imported: campaigns reads lotteries (a plan names
its pool), so lotteries may not import campaigns.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.exc import IntegrityError

from siyu.coupons.issue import holders, new_code
from siyu.errors import NotFoundError, SiyuError, ValidationError
from siyu.inventory import stock
from siyu.ledger import points
from siyu.ledger.errors import IdempotencyConflict
from siyu.ledger.posting import Request, system_accounts
from siyu.lotteries import fairness, pools
from siyu.lotteries.errors import DrawLimitReached, EntryNotAccepted, PoolClosed, PoolExhausted
from siyu.lotteries.models import prize_draws, prize_pool_entrants
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now, stored_time

_DRAWN = text("""SELECT * FROM prize_draws
                 WHERE group_id = :g AND idempotency_key IN :ks""").bindparams(
    bindparam("ks", expanding=True)
)
_ORDERS = text("""SELECT order_id, member_id, status, paid_fen FROM orders
                  WHERE group_id = :g AND order_id IN :os""").bindparams(
    bindparam("os", expanding=True)
)
_USED_ORDERS = text("""SELECT order_id FROM prize_draws
                       WHERE group_id = :g AND pool_code = :p AND order_id IN :os""").bindparams(
    bindparam("os", expanding=True)
)
_CAMPAIGN = text("""SELECT campaign_id, body FROM campaigns
                    WHERE group_id = :g AND code = :c""")
# the members a batch's holders absorbed (OneID merges not undone), one link per round
_ABSORBED = text("""SELECT survivor_id, merged_id FROM merges WHERE group_id = :g
                    AND survivor_id IN :ms AND undone_at IS NULL""").bindparams(
    bindparam("ms", expanding=True)
)
_GRANTED = text("""SELECT member_id FROM campaign_members WHERE group_id = :g
                   AND campaign_id = :c AND member_id IN :ms AND arm = 'treatment'
                   AND granted_at IS NOT NULL""").bindparams(bindparam("ms", expanding=True))
_COUNTERS = """SELECT member_id, draws FROM prize_pool_entrants
               WHERE group_id = :g AND pool_code = :p AND member_id IN :ms
               ORDER BY member_id"""
_RAISE = text("""UPDATE prize_pool_entrants SET draws = draws + :n
                 WHERE group_id = :g AND pool_code = :p AND member_id IN :ms
                   AND draws + :n <= :cap
                 RETURNING member_id""").bindparams(bindparam("ms", expanding=True))
_AWARD = text("""UPDATE prize_pool_prizes SET awarded = awarded + :k
                 WHERE group_id = :g AND pool_code = :p AND prize_code = :c
                   AND awarded + :k <= units""")


@dataclass(frozen=True)
class DrawAsk:
    """A member's draw: `key` is the Idempotency-Key; `order_id` or `scene` is the
    entry when the pool asks for a purchase or a scan."""

    member_id: int
    key: str
    order_id: str | None = None
    scene: str | None = None
    key_id: int | None = None

    def digest(self, pool_code: str) -> str:
        body = [pool_code, self.member_id, self.order_id, self.scene]
        return hashlib.sha256(json.dumps(body).encode()).hexdigest()


@dataclass(frozen=True)
class Drawn:
    draw_id: int
    pool_code: str
    member_id: int
    outcome: str  # won | no_prize | sold_out
    prize_code: str | None
    claim_code: str | None
    roll: int
    random_hex: str
    drawn_at: datetime
    posting_id: int | None = None
    replayed: bool = False


Outcome = Drawn | SiyuError


def draw(
    engine: Engine, group_id: str, pool_code: str, ask: DrawAsk, at: datetime | None = None
) -> Drawn:
    """One draw in its own transaction; raises its refusal."""
    found = draw_many(engine, group_id, pool_code, [ask], at)[0]
    if isinstance(found, SiyuError):
        raise found
    return found


def draw_many(
    engine: Engine,
    group_id: str,
    pool_code: str,
    asks: Sequence[DrawAsk],
    at: datetime | None = None,
) -> list[Outcome]:
    """Draw a batch of one pool in one transaction (see the module docstring): a `Drawn`
    or the refusal of each, in order."""
    now = as_stored(at) if at is not None else stored_now()
    with engine.connect() as conn:
        pool = pools.load(conn, group_id, pool_code)
    # the ledger creates the group's system accounts in a transaction of its own: before
    system = system_accounts(engine, group_id) if pool.entry == "points" else {}
    try:
        with engine.begin() as conn:
            return _draw_batch(conn, group_id, pool, list(asks), now, system)
    except IntegrityError:
        # a key (or an order) was taken by a concurrent request between our look and our
        # insert: the batch rolled back whole; each draw again alone answers as a retry
        if len(asks) == 1:
            with engine.connect() as conn:
                replay = _replays(conn, group_id, pool_code, list(asks))
            return [replay.get(0) or IdempotencyConflict("Idempotency-Key: in use; retry")]
        return [_alone(engine, group_id, pool_code, ask, now) for ask in asks]


def _alone(engine: Engine, group_id: str, pool_code: str, ask: DrawAsk, now: datetime) -> Outcome:
    return draw_many(engine, group_id, pool_code, [ask], now)[0]


def _draw_batch(
    conn: Connection,
    group_id: str,
    pool: pools.Pool,
    asks: list[DrawAsk],
    now: datetime,
    system: dict[tuple[str, str], int],
) -> list[Outcome]:
    out: list[Outcome | None] = [None] * len(asks)
    for i, ask in enumerate(asks):
        if not ask.key or len(ask.key) > 160:
            out[i] = ValidationError("Idempotency-Key", "required, at most 160 characters")
    out_replays = _replays(conn, group_id, pool.code, [a for a in asks])
    for i, found in out_replays.items():
        if out[i] is None:
            out[i] = found
    first_of: dict[str, int] = {}
    for i, ask in enumerate(asks):
        if out[i] is None and first_of.setdefault(ask.key, i) != i:
            out[i] = IdempotencyConflict("Idempotency-Key: twice in one batch")
    fresh = [i for i in range(len(asks)) if out[i] is None]
    if not fresh:
        return [o for o in out if o is not None]
    if not pool.starts_at <= now < pool.ends_at:
        for i in fresh:
            out[i] = PoolClosed(
                f"pool: {pool.code} is open from {pool.starts_at.isoformat()} "
                f"until {pool.ends_at.isoformat()}"
            )
        return [o for o in out if o is not None]

    left = _lock_prizes(conn, group_id, pool)
    holder_of = holders(conn, group_id, sorted({asks[i].member_id for i in fresh}))
    for i in fresh:
        if asks[i].member_id not in holder_of:
            out[i] = NotFoundError(f"member_id: no member {asks[i].member_id}")
    _check_entries(conn, group_id, pool, asks, out, holder_of, now)
    fresh = [i for i in fresh if out[i] is None]
    members = sorted({holder_of[asks[i].member_id] for i in fresh})
    counts = _lock_counters(conn, group_id, pool.code, members)

    rows: list[dict[str, Any]] = []
    taken: Counter[str] = Counter()
    added: Counter[int] = Counter()
    for i in fresh:
        ask = asks[i]
        member = holder_of[ask.member_id]
        if counts[member] + added[member] >= pool.per_member:
            out[i] = DrawLimitReached(pool.code, pool.per_member)
            continue
        if not any(n > 0 for n in left.values()):
            out[i] = PoolExhausted(f"pool: every prize of {pool.code} has been awarded")
            continue
        posting_id = None
        if pool.entry == "points":
            assert pool.points is not None
            request = Request(
                group_id,
                member,
                "spend",
                f"lottery:{pool.code}:{ask.key}",
                {"points": pool.points, "pool": pool.code},
                reference=f"lottery:{pool.code}",
                reason="lottery draw",
                key_id=ask.key_id,
            )
            try:
                with conn.begin_nested():
                    posting_id = points.spend_in(conn, system, request, pool.points).posting_id
            except SiyuError as refused:
                out[i] = refused
                continue
        added[member] += 1
        random = fairness.random_hex(pool.seed, pool.code, member, ask.key)
        roll = fairness.roll_of(random)
        prize = fairness.pick(roll, pool.prizes)
        outcome = "no_prize" if prize is None else "sold_out"
        if prize is not None and left[prize] > 0:
            left[prize] -= 1
            taken[prize] += 1
            outcome = "won"
        rows.append(
            {
                "i": i,
                "group_id": group_id,
                "pool_code": pool.code,
                "member_id": member,
                "idempotency_key": ask.key,
                "request_sha256": ask.digest(pool.code),
                "entry": pool.entry,
                "scene": ask.scene,
                "order_id": ask.order_id,
                "posting_id": posting_id,
                "random_hex": random,
                "roll": roll,
                "outcome": outcome,
                "prize_code": prize,
                "sku": _prize(pool, prize).sku if prize else None,
                "location_id": _prize(pool, prize).location_id if prize else None,
                "claim_code": new_code() if outcome == "won" else None,
                "key_id": ask.key_id,
                "drawn_at": now,
            }
        )
    _write(conn, group_id, pool, added, taken, rows, now)
    for row in rows:
        out[row["i"]] = _drawn(row, row["draw_id"], replayed=False)
    return [o for o in out if o is not None]


def _prize(pool: pools.Pool, code: str) -> pools.Prize:
    return next(p for p in pool.prizes if p.prize_code == code)


def _replays(
    conn: Connection, group_id: str, pool_code: str, asks: list[DrawAsk]
) -> dict[int, Outcome]:
    keys = [a.key for a in asks if a.key]
    if not keys:
        return {}
    found = {r.idempotency_key: r for r in conn.execute(_DRAWN, {"g": group_id, "ks": keys})}
    out: dict[int, Outcome] = {}
    for i, ask in enumerate(asks):
        row = found.get(ask.key)
        if row is None:
            continue
        if row.pool_code != pool_code or row.request_sha256 != ask.digest(pool_code):
            out[i] = IdempotencyConflict(
                "Idempotency-Key: already used for a different draw; use a new key"
            )
        else:
            out[i] = _drawn(row._mapping, int(row.draw_id), replayed=True)
    return out


def _drawn(row: Any, draw_id: int, replayed: bool) -> Drawn:
    return Drawn(
        draw_id,
        row["pool_code"],
        int(row["member_id"]),
        row["outcome"],
        row["prize_code"],
        row["claim_code"],
        int(row["roll"]),
        row["random_hex"],
        stored_time(row["drawn_at"]),
        None if row["posting_id"] is None else int(row["posting_id"]),
        replayed,
    )


def _lock_prizes(conn: Connection, group_id: str, pool: pools.Pool) -> dict[str, int]:
    """prize -> units it can still award: what the pool's allotment and the shelf both
    hold. The prize rows, then their stock rows, stay locked until commit."""
    lock = dialect_of(conn).row_lock
    prizes = conn.execute(
        text(f"""SELECT prize_code, units, awarded FROM prize_pool_prizes
                 WHERE group_id = :g AND pool_code = :p ORDER BY prize_code{lock}"""),
        {"g": group_id, "p": pool.code},
    ).all()
    allotment = {r.prize_code: int(r.units) - int(r.awarded) for r in prizes}
    left: dict[str, int] = {}
    for prize in sorted(pool.prizes, key=lambda p: (p.sku, p.location_id)):
        level = stock.locked_level(conn, group_id, prize.sku, prize.location_id)
        left[prize.prize_code] = min(allotment[prize.prize_code], max(level.available, 0))
    # two prizes of one item at one place share its shelf: counted once, in code order
    shelf: dict[tuple[str, str], int] = {}
    for prize in pool.prizes:
        place = (prize.sku, prize.location_id)
        shelf.setdefault(place, left[prize.prize_code])
        left[prize.prize_code] = min(left[prize.prize_code], shelf[place])
        shelf[place] -= left[prize.prize_code]
    return left


def _check_entries(
    conn: Connection,
    group_id: str,
    pool: pools.Pool,
    asks: list[DrawAsk],
    out: list[Outcome | None],
    holder_of: dict[int, int],
    now: datetime,
) -> None:
    """Refuse the draws whose entry does not meet the pool's rule."""
    fresh = [i for i in range(len(asks)) if out[i] is None]
    if pool.entry == "campaign":
        _check_campaign(conn, group_id, pool, asks, out, holder_of, now)
        return
    if pool.entry == "scan":
        for i in fresh:
            if asks[i].scene not in pool.scenes:
                out[i] = EntryNotAccepted(f"scene: {asks[i].scene!r} is not a scene of {pool.code}")
        return
    if pool.entry != "purchase":
        return
    wanted = sorted({o for i in fresh if (o := asks[i].order_id)})
    orders = {r.order_id: r for r in conn.execute(_ORDERS, {"g": group_id, "os": wanted})}
    used = set(
        conn.execute(_USED_ORDERS, {"g": group_id, "p": pool.code, "os": wanted}).scalars()
        if wanted
        else ()
    )
    buyers = holders(
        conn, group_id, sorted({int(o.member_id) for o in orders.values() if o.member_id})
    )
    for i in fresh:
        order_id = asks[i].order_id
        order = orders.get(order_id or "")
        if order_id is None or order is None:
            out[i] = EntryNotAccepted(f"order_id: pool {pool.code} needs a paid order")
        elif order.member_id is None or buyers.get(int(order.member_id)) != holder_of.get(
            asks[i].member_id
        ):
            out[i] = EntryNotAccepted(f"order_id: order {order_id} is not this member's")
        elif order.status != "paid" or int(order.paid_fen) < (pool.min_paid_fen or 0):
            out[i] = EntryNotAccepted(
                f"order_id: order {order_id} must be paid, at least {pool.min_paid_fen} fen"
            )
        elif order_id in used:
            out[i] = EntryNotAccepted(f"order_id: order {order_id} already entered {pool.code}")
        else:
            used.add(order_id)


def _check_campaign(
    conn: Connection,
    group_id: str,
    pool: pools.Pool,
    asks: list[DrawAsk],
    out: list[Outcome | None],
    holder_of: dict[int, int],
    now: datetime,
) -> None:
    """Refuse the draws of members the pool's campaign did not grant its incentives, and
    every draw outside the campaign's period. The campaign's rows are keyed by the member
    assigned, which a merge since may have absorbed: a holder is granted when it, or a
    member it absorbed, is."""
    fresh = [i for i in range(len(asks)) if out[i] is None and asks[i].member_id in holder_of]
    if not fresh:
        return
    code = pool.campaign
    found = conn.execute(_CAMPAIGN, {"g": group_id, "c": code}).first()
    if found is None:
        for i in fresh:
            out[i] = EntryNotAccepted(
                f"campaign: pool {pool.code} is for campaign {code}, which does not exist"
            )
        return
    body = json.loads(found.body)
    starts, ends = (as_stored(datetime.fromisoformat(body[k])) for k in ("starts_at", "ends_at"))
    if not starts <= now < ends:
        for i in fresh:
            out[i] = EntryNotAccepted(
                f"campaign: pool {pool.code} is entered while campaign {code} runs, from "
                f"{starts.isoformat()} until {ends.isoformat()}"
            )
        return
    held = sorted({holder_of[asks[i].member_id] for i in fresh})
    root = {m: m for m in held}  # member -> the batch's holder it belongs to
    frontier = held
    for _ in range(32):  # merge chains are short; the bound guards against a cycle
        rows = conn.execute(_ABSORBED, {"g": group_id, "ms": frontier}).all()
        frontier = [int(r.merged_id) for r in rows if int(r.merged_id) not in root]
        for r in rows:
            root.setdefault(int(r.merged_id), root[int(r.survivor_id)])
        if not frontier:
            break
    candidates = sorted(root)
    granted = {
        root[int(m)]
        for m in conn.execute(
            _GRANTED, {"g": group_id, "c": found.campaign_id, "ms": candidates}
        ).scalars()
    }
    for i in fresh:
        if holder_of[asks[i].member_id] not in granted:
            out[i] = EntryNotAccepted(
                f"member_id: member {asks[i].member_id} was not granted campaign {code}'s "
                "incentives (its treated members are; the holdout never is)"
            )


def _lock_counters(
    conn: Connection, group_id: str, pool_code: str, members: list[int]
) -> dict[int, int]:
    """member -> draws so far, each member's row created if new and locked till commit."""
    if not members:
        return {}
    if dialect_of(conn).one_statement_per_batch:
        # one statement, the members as one JSON text (PostgreSQL parses it in C): creates
        # the missing rows and locks all of them, in member order
        rows = conn.execute(
            text("""INSERT INTO prize_pool_entrants (group_id, pool_code, member_id, draws)
                    SELECT :g, :p, r.m, 0 FROM json_to_recordset(CAST(:rows AS json))
                      AS r(m BIGINT) ORDER BY r.m
                    ON CONFLICT (group_id, pool_code, member_id)
                    DO UPDATE SET draws = prize_pool_entrants.draws
                    RETURNING member_id, draws"""),
            {"g": group_id, "p": pool_code, "rows": json.dumps([{"m": m} for m in members])},
        )
        return {int(r.member_id): int(r.draws) for r in rows}
    conn.execute(
        dialect_of(conn).insert_ignore(prize_pool_entrants),
        [
            {"group_id": group_id, "pool_code": pool_code, "member_id": m, "draws": 0}
            for m in members
        ],
    )
    rows = conn.execute(
        text(_COUNTERS).bindparams(bindparam("ms", expanding=True)),
        {"g": group_id, "p": pool_code, "ms": members},
    )
    return {int(r.member_id): int(r.draws) for r in rows}


def _write(
    conn: Connection,
    group_id: str,
    pool: pools.Pool,
    added: Counter[int],
    taken: Counter[str],
    rows: list[dict[str, Any]],
    now: datetime,
) -> None:
    """The batch's changes, each guarded by the database: a bug above fails the batch
    instead of passing a limit or a prize's units."""
    by_n: dict[int, list[int]] = {}
    for member, n in added.items():
        by_n.setdefault(n, []).append(member)
    for n, members in sorted(by_n.items()):
        params = {"g": group_id, "p": pool.code, "ms": sorted(members), "n": n}
        raised = conn.execute(_RAISE, {**params, "cap": pool.per_member}).scalars().all()
        if len(raised) != len(members):
            raise AssertionError(f"per_member counters of {pool.code} moved under the lock")
    skus = set()
    for code, k in sorted(taken.items()):
        params = {"g": group_id, "p": pool.code, "c": code, "k": k}
        if conn.execute(_AWARD, params).rowcount != 1:
            raise AssertionError(f"prize {code} of {pool.code} would pass its units")
        prize = _prize(pool, code)
        stock.move(
            conn,
            group_id,
            prize.sku,
            prize.location_id,
            "prize",
            -k,
            0,
            now,
            reason=f"lottery {pool.code}: {k} × {code} awarded",
            reference=f"lottery:{pool.code}",
        )
        skus.add(prize.sku)
    if skus:
        stock.announce(conn, group_id, sorted(skus), now)
    if not rows:
        return
    values = [{k: v for k, v in r.items() if k != "i"} for r in rows]
    if dialect_of(conn).one_statement_per_batch:
        columns = list(values[0])
        spec = ", ".join(f"{c} {_PG_TYPES[c]}" for c in columns)
        found = conn.execute(
            text(f"""INSERT INTO prize_draws ({", ".join(columns)})
                     SELECT {", ".join(columns)}
                     FROM json_to_recordset(CAST(:rows AS json)) AS r({spec})
                     RETURNING idempotency_key, draw_id"""),
            {"rows": json.dumps(values, default=_iso, separators=(",", ":"))},
        )
        ids = {str(r.idempotency_key): int(r.draw_id) for r in found}
        for row in rows:
            row["draw_id"] = int(ids[row["idempotency_key"]])
        return
    drawn_ids = conn.execute(
        prize_draws.insert().returning(prize_draws.c.draw_id, sort_by_parameter_order=True),
        values,
    ).scalars()
    for row, draw_id in zip(rows, drawn_ids, strict=True):
        row["draw_id"] = int(draw_id)


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


# The draw row's columns as PostgreSQL reads them from a JSON batch.
_PG_TYPES = {
    "group_id": "VARCHAR",
    "pool_code": "VARCHAR",
    "member_id": "BIGINT",
    "idempotency_key": "VARCHAR",
    "request_sha256": "VARCHAR",
    "entry": "VARCHAR",
    "scene": "VARCHAR",
    "order_id": "VARCHAR",
    "posting_id": "BIGINT",
    "random_hex": "VARCHAR",
    "roll": "INTEGER",
    "outcome": "VARCHAR",
    "prize_code": "VARCHAR",
    "sku": "VARCHAR",
    "location_id": "VARCHAR",
    "claim_code": "VARCHAR",
    "key_id": "BIGINT",
    "drawn_at": "TIMESTAMP",
}
