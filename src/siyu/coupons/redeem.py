"""Redeeming coupons at a till or online, exactly once, a batch at a time.

A batch is one transaction of a few set-based statements, whatever its size: the events
already holding the batch's keys (retries), the template counters locked in name order,
the coupons locked in id order, then one UPDATE of the coupons, one of each counter and
one INSERT of the events. Every ask is decided on the locked rows, in order: a coupon is
never used twice (a second ask for it in the batch, or a till that redeemed it first, is
refused), a limit never overrun (each counter's cap is checked on its locked count), and
a refused ask writes nothing. A retry with the same key answers the first redemption;
the same key for another coupon or order is refused. The keys are looked for again once
the rows are locked: a retry racing its first request on another worker waits for it
there, and must find its event rather than the coupon it redeemed.

`redeem` is a batch of one, so there is one path. A hot campaign's redemptions share a
commit and a lock of the counters through `batcher.RedemptionBatcher`, which is what makes
them faster than one conditional UPDATE per commit (docs/benchmarks.md).

Locks are always taken counters first, then coupons (`limits.hold`), here and in
`returns.py`: two transactions sharing a coupon and a template cannot deadlock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, bindparam, text
from sqlalchemy.exc import IntegrityError

from siyu.coupons import catalog, events, limits
from siyu.coupons.errors import CouponNotApplicable, CouponNotRedeemable, LimitReached
from siyu.coupons.issue import holders
from siyu.coupons.templates import Basket, CouponTemplate, Limits
from siyu.errors import NotFoundError, SiyuError, ValidationError
from siyu.ledger.errors import IdempotencyConflict
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now, stored_time

COLUMNS = """coupon_id, group_id, code, template_id, template_code, member_id, campaign,
             status, valid_from, valid_until, order_id, store_id, off_fen, redeemed_at"""
_TEMPLATES = text("""SELECT DISTINCT template_code FROM coupons
                      WHERE group_id = :g AND code IN :cs""").bindparams(
    bindparam("cs", expanding=True)
)
# every version of the batch's templates (a handful each): the ones its coupons were
# issued under, and the newest
_TERMS = text("""SELECT template_id, code, version, body FROM coupon_templates
                 WHERE group_id = :g AND code IN :cs""").bindparams(bindparam("cs", expanding=True))
_USE = text("""UPDATE coupons SET status = 'redeemed', order_id = :o, store_id = :s,
                 channel = :ch, off_fen = :off, redeemed_at = :now
               WHERE coupon_id = :c AND status = 'issued'""").bindparams(
    bindparam("now", type_=DateTime())
)
_RAISE = text("""UPDATE coupon_counters SET used = used + :n
                 WHERE group_id = :g AND counter = :c AND member_id = 0""")


@dataclass(frozen=True)
class Redemption:
    """What a till or a checkout asks: this coupon, on this order and basket. `member_id`,
    when given, must be the coupon's holder (a merged member's id stands for its
    survivor); without it the code alone is the proof, as a paper coupon's is."""

    code: str
    order_id: str
    basket: Basket
    key: str  # the Idempotency-Key
    member_id: int | None = None
    key_id: int | None = None

    @property
    def digest(self) -> str:
        body = {
            "code": self.code,
            "order_id": self.order_id,
            "member_id": self.member_id,
            "basket": repr(self.basket),
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Redeemed:
    coupon_id: int
    code: str
    template_code: str
    member_id: int
    order_id: str
    off_fen: int
    redeemed_at: datetime
    replayed: bool = False


Answer = Redeemed | SiyuError


def redeem(engine: Engine, group_id: str, ask: Redemption, at: datetime | None = None) -> Redeemed:
    """Redeem one coupon (a batch of one); raises the refusal."""
    (answer,) = redeem_many(engine, group_id, [ask], at)
    if isinstance(answer, SiyuError):
        raise answer
    return answer


def redeem_many(
    engine: Engine, group_id: str, asks: Sequence[Redemption], at: datetime | None = None
) -> list[Answer]:
    """Redeem a batch in one transaction: each answer is its own (a `Redeemed`, or the
    error that refused it), and all that succeed commit together."""
    now = as_stored(at) if at is not None else stored_now()
    for attempt in range(2):
        try:
            with engine.begin() as conn:
                return _batch(conn, group_id, asks, now)
        except IntegrityError:
            # a concurrent request took one of the keys between our look and our insert;
            # the second attempt finds it and answers that ask as its retry
            if attempt:
                raise
    raise AssertionError("unreachable")


def check_ask(ask: Redemption) -> None:
    """The ask's own fields, before it touches the store (the batcher checks each ask
    on arrival, so a malformed one never joins a batch)."""
    if not ask.key or len(ask.key) > 200:
        raise ValidationError("Idempotency-Key", "required, at most 200 characters")
    if not 1 <= len(ask.order_id) <= 128:
        raise ValidationError("order_id", "1 to 128 characters")


def counters_of(template_code: str) -> list[str]:
    """The counters a redemption of `template_code` raises (and a return lowers)."""
    return [
        limits.counter(template_code, "redemptions"),
        limits.counter(template_code, "budget_fen"),
    ]


def _batch(
    conn: Connection, group_id: str, asks: Sequence[Redemption], now: datetime
) -> list[Answer]:
    out: list[Answer | None] = [None] * len(asks)
    for i, ask in enumerate(asks):
        try:
            check_ask(ask)
        except ValidationError as bad:
            out[i] = bad
    first_of_key: dict[str, int] = {}
    live: list[int] = []
    for i, ask in enumerate(asks):
        if out[i] is None:
            if ask.key in first_of_key:
                continue  # answered as the first ask with this key, below
            first_of_key[ask.key] = i
            live.append(i)
    codes = sorted({asks[i].code for i in live})
    if codes:
        templates = conn.execute(_TEMPLATES, {"g": group_id, "cs": codes}).scalars().all()
        used = limits.hold(conn, group_id, [c for t in templates for c in counters_of(t)])
        coupons = _locked(conn, group_id, codes)
        # retries are looked up once the rows are ours: the same request may have committed
        # on another worker while we waited for them, and it is this ask's first answer
        _answer_retries(conn, group_id, asks, live, out)
        _decide(conn, group_id, asks, live, coupons, used, now, out)
    for i, ask in enumerate(asks):  # the later asks of a key repeated within the batch
        if out[i] is None:
            first = out[first_of_key[ask.key]]
            if asks[first_of_key[ask.key]].digest != ask.digest:
                out[i] = IdempotencyConflict(
                    "Idempotency-Key: already used for a different request; use a new key"
                )
            elif isinstance(first, Redeemed):
                out[i] = Redeemed(**{**first.__dict__, "replayed": True})
            else:
                out[i] = first
    return [a for a in out if a is not None]


def _answer_retries(
    conn: Connection,
    group_id: str,
    asks: Sequence[Redemption],
    live: list[int],
    out: list[Answer | None],
) -> None:
    """Answer the live asks whose key an event already holds (a retry), and drop them."""
    done = events.by_key(conn, group_id, [asks[i].key for i in live])
    for i in list(live):
        if asks[i].key in done:
            out[i] = _replay(done[asks[i].key], asks[i])
            live.remove(i)


def _locked(conn: Connection, group_id: str, codes: list[str]) -> dict[str, Any]:
    rows = conn.execute(
        text(f"""SELECT {COLUMNS} FROM coupons WHERE group_id = :g AND code IN :cs
                 {dialect_of(conn).lock_rows_in_order("coupon_id")}""").bindparams(
            bindparam("cs", expanding=True)
        ),
        {"g": group_id, "cs": codes},
    ).all()
    return {r.code: r for r in rows}


def _decide(
    conn: Connection,
    group_id: str,
    asks: Sequence[Redemption],
    live: list[int],
    coupons: dict[str, Any],
    used: dict[str, int],
    now: datetime,
    out: list[Answer | None],
) -> None:
    """Decide each live ask on the locked rows, in order, then write the accepted ones."""
    terms, caps = _terms(conn, group_id, list(coupons.values()))
    asked = [m for m in (asks[i].member_id for i in live) if m is not None]
    holder_of = holders(conn, group_id, sorted(set(asked))) if asked else {}
    taken: set[str] = set()
    raised: dict[str, int] = {}
    uses: list[dict[str, Any]] = []
    written: list[dict[str, Any]] = []
    for i in live:
        ask = asks[i]
        try:
            coupon = coupons.get(ask.code)
            if coupon is None:
                raise NotFoundError(f"code: no coupon {ask.code!r}")
            if ask.member_id is not None and holder_of.get(ask.member_id) != int(coupon.member_id):
                raise CouponNotRedeemable(
                    f"code: coupon {ask.code} is not member {ask.member_id}'s"
                )
            if ask.code in taken:
                raise CouponNotRedeemable(f"code: coupon {ask.code} is already redeemed")
            _redeemable(coupon, now)
            term = terms[int(coupon.template_id)]
            benefit = term.benefit(ask.basket)
            if benefit.off_fen <= 0:
                raise CouponNotApplicable(f"basket: {benefit.refused or 'nothing to take off'}")
            cap = caps[coupon.template_code]
            count, budget = counters_of(coupon.template_code)
            _within(used, raised, count, 1, cap.redemptions, "redemptions")
            _within(used, raised, budget, term.cost_fen, cap.budget_fen, "budget_fen")
        except SiyuError as refused:
            out[i] = refused
            continue
        raised[count] = raised.get(count, 0) + 1
        raised[budget] = raised.get(budget, 0) + term.cost_fen
        taken.add(ask.code)
        uses.append(
            {
                "c": coupon.coupon_id,
                "o": ask.order_id,
                "s": ask.basket.store_id,
                "ch": ask.basket.channel,
                "off": benefit.off_fen,
                "now": now,
            }
        )
        written.append(
            events.event(
                coupon,
                "redeemed",
                ask.key,
                ask.digest,
                now,
                term.face_value_fen,
                term.cost_fen,
                order_id=ask.order_id,
                store_id=ask.basket.store_id,
                channel=ask.basket.channel,
                off_fen=benefit.off_fen,
                key_id=ask.key_id,
            )
        )
        out[i] = Redeemed(
            int(coupon.coupon_id),
            coupon.code,
            coupon.template_code,
            int(coupon.member_id),
            ask.order_id,
            benefit.off_fen,
            now,
        )
    if not uses:
        return
    if _use(conn, uses, now) != len(uses):  # the rows are locked: cannot happen
        raise RuntimeError("coupons: a locked coupon changed under its lock")
    conn.execute(_RAISE, [{"g": group_id, "c": c, "n": n} for c, n in sorted(raised.items()) if n])
    events.write(conn, written)


def _use(conn: Connection, uses: list[dict[str, Any]], now: datetime) -> int:
    """Mark the coupons redeemed: one statement over a JSON recordset on PostgreSQL (parsed
    and planned once, one round trip: most of a batch's time was a statement per coupon),
    a statement per coupon on SQLite (in-process, a statement is a function call)."""
    if not dialect_of(conn).one_statement_per_batch:
        return int(conn.execute(_USE, uses).rowcount)
    rows = [{k: u[k] for k in ("c", "o", "s", "ch", "off")} for u in uses]
    return int(
        conn.execute(
            text("""UPDATE coupons SET status = 'redeemed', order_id = r.o, store_id = r.s,
                      channel = r.ch, off_fen = r.off, redeemed_at = :now
                    FROM json_to_recordset(CAST(:rows AS json))
                      AS r(c BIGINT, o VARCHAR, s VARCHAR, ch VARCHAR, off BIGINT)
                    WHERE coupons.coupon_id = r.c AND coupons.status = 'issued'""").bindparams(
                bindparam("now", type_=DateTime())
            ),
            {"rows": json.dumps(rows), "now": now},
        ).rowcount
    )


def _within(
    used: dict[str, int], raised: dict[str, int], counter: str, n: int, cap: int | None, limit: str
) -> None:
    now_used = used.get(counter, 0) + raised.get(counter, 0)
    if cap is not None and now_used + n > cap:
        raise LimitReached(limit, cap, now_used)


def _terms(
    conn: Connection, group_id: str, coupons: list[Any]
) -> tuple[dict[int, CouponTemplate], dict[str, Limits]]:
    """In one read: the version each coupon was issued under (its arithmetic), and each
    template's newest version (its limits)."""
    if not coupons:
        return {}, {}
    codes = sorted({c.template_code for c in coupons})
    rows = conn.execute(_TERMS, {"g": group_id, "cs": codes}).all()
    terms = {int(r.template_id): catalog.parsed(r.body) for r in rows}
    newest: dict[str, tuple[int, str]] = {}
    for r in rows:
        if r.code not in newest or int(r.version) > newest[r.code][0]:
            newest[r.code] = (int(r.version), r.body)
    return terms, {code: catalog.parsed(body).limits for code, (_, body) in newest.items()}


def _redeemable(coupon: Any, now: datetime) -> None:
    if coupon.status == "redeemed":
        raise CouponNotRedeemable(f"code: coupon {coupon.code} is already redeemed")
    if coupon.status == "expired" or stored_time(coupon.valid_until) <= now:
        raise CouponNotRedeemable(f"code: coupon {coupon.code} expired")
    if stored_time(coupon.valid_from) > now:
        raise CouponNotRedeemable(f"code: coupon {coupon.code} is not valid yet")


def _replay(first: Any, ask: Redemption) -> Answer:
    if first.kind != "redeemed" or first.request_sha256 != ask.digest:
        return IdempotencyConflict(
            "Idempotency-Key: already used for a different request; use a new key"
        )
    return Redeemed(
        int(first.coupon_id),
        first.code,
        first.template_code,
        int(first.member_id),
        first.order_id,
        int(first.off_fen),
        stored_time(first.at),
        replayed=True,
    )
