"""Redeeming a coupon at a till or online, exactly once, and giving it back on a refund.

A redemption is one conditional UPDATE of the coupon (`status = 'issued'` and inside its
validity), the template's redemption and budget counters (each `used + n <= cap`), and an
event whose key is the request's Idempotency-Key, in one transaction: the coupon is never
used twice, a limit never overrun, and a refused redemption changes nothing. A retry
with the same key answers the first redemption; the same key for another coupon or order
is refused.

`redeem_many` applies a batch in one transaction, each redemption in a savepoint of its
own: a hot campaign's redemptions share one commit (the counters' row is locked once),
and each still succeeds or fails alone (`batcher.RedemptionBatcher`).
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

from siyu.coupons import catalog, limits
from siyu.coupons.errors import CouponNotApplicable, CouponNotRedeemable, NotReturnable
from siyu.coupons.issue import holders
from siyu.coupons.models import coupon_events
from siyu.coupons.templates import Basket
from siyu.errors import ConflictError, NotFoundError, SiyuError, ValidationError
from siyu.ledger.errors import IdempotencyConflict
from siyu.store.times import as_stored, stored_now, stored_time

_COUPON = text("""SELECT coupon_id, code, template_id, template_code, member_id, campaign,
                         status, valid_from, valid_until, order_id, off_fen, redeemed_at
                  FROM coupons WHERE group_id = :g AND code = :c""")
_FIRST = text("""SELECT e.request_sha256, e.coupon_id, e.member_id, e.order_id, e.off_fen,
                        e.at, e.kind, c.code, c.template_code
                 FROM coupon_events e JOIN coupons c ON c.coupon_id = e.coupon_id
                 WHERE e.group_id = :g AND e.idempotency_key = :k""")
_USE = text("""UPDATE coupons SET status = 'redeemed', order_id = :o, store_id = :s,
                 channel = :ch, off_fen = :off, redeemed_at = :now
               WHERE coupon_id = :c AND status = 'issued'
                 AND valid_from <= :now AND valid_until > :now""").bindparams(
    # typed, so SQLite compares the stored text form: a coupon is redeemable in the
    # second it was issued, and not in the second its validity ends
    bindparam("now", type_=DateTime())
)


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


def redeem(engine: Engine, group_id: str, ask: Redemption, at: datetime | None = None) -> Redeemed:
    """Redeem one coupon in its own transaction (see the module docstring)."""
    _check(ask)
    now = as_stored(at) if at is not None else stored_now()
    try:
        with engine.begin() as conn:
            return redeem_in(conn, group_id, ask, now)
    except IntegrityError:
        # the key was taken between our look and our insert: answer as a retry would
        with engine.connect() as conn:
            return _replay(conn, group_id, ask)


def redeem_many(
    engine: Engine, group_id: str, asks: Sequence[Redemption], at: datetime | None = None
) -> list[Redeemed | SiyuError]:
    """Redeem a batch in one transaction, each in a savepoint: every answer is its own
    (a `Redeemed`, or the error that refused it), and all commit together."""
    now = as_stored(at) if at is not None else stored_now()
    out: list[Redeemed | SiyuError] = []
    with engine.begin() as conn:
        for ask in asks:
            try:
                _check(ask)
                with conn.begin_nested():
                    out.append(redeem_in(conn, group_id, ask, now))
            except IntegrityError:
                out.append(IdempotencyConflict("Idempotency-Key: in use by a concurrent request"))
            except SiyuError as refused:
                out.append(refused)
    return out


def _check(ask: Redemption) -> None:
    if not ask.key or len(ask.key) > 200:
        raise ValidationError("Idempotency-Key", "required, at most 200 characters")
    if not 1 <= len(ask.order_id) <= 128:
        raise ValidationError("order_id", "1 to 128 characters")


def redeem_in(conn: Connection, group_id: str, ask: Redemption, now: datetime) -> Redeemed:
    """The redemption on the caller's transaction; raises and writes nothing when refused."""
    if conn.execute(_FIRST, {"g": group_id, "k": ask.key}).first() is not None:
        return _replay(conn, group_id, ask)
    coupon = conn.execute(_COUPON, {"g": group_id, "c": ask.code}).first()
    if coupon is None:
        raise NotFoundError(f"code: no coupon {ask.code!r}")
    if ask.member_id is not None:
        holder = holders(conn, group_id, [ask.member_id]).get(ask.member_id)
        if holder != int(coupon.member_id):
            raise CouponNotRedeemable(f"code: coupon {ask.code} is not member {ask.member_id}'s")
    _redeemable(coupon, now)
    terms = catalog.issued_under(conn, int(coupon.template_id))
    benefit = terms.benefit(ask.basket)
    if benefit.off_fen <= 0:
        raise CouponNotApplicable(f"basket: {benefit.refused or 'nothing to take off'}")
    params = {
        "c": coupon.coupon_id,
        "o": ask.order_id,
        "s": ask.basket.store_id,
        "ch": ask.basket.channel,
        "off": benefit.off_fen,
        "now": now,
    }
    if conn.execute(_USE, params).rowcount != 1:
        # another till redeemed it first (we waited on its row lock): a retry of that
        # same request is answered as one, anything else is refused
        if conn.execute(_FIRST, {"g": group_id, "k": ask.key}).first() is not None:
            return _replay(conn, group_id, ask)
        raise CouponNotRedeemable(f"code: coupon {ask.code} is already redeemed")
    cap = catalog.current(conn, group_id, coupon.template_code).template.limits
    limits.take(
        conn,
        group_id,
        limits.counter(coupon.template_code, "redemptions"),
        1,
        cap.redemptions,
        "redemptions",
    )
    limits.take(
        conn,
        group_id,
        limits.counter(coupon.template_code, "budget_fen"),
        terms.cost_fen,
        cap.budget_fen,
        "budget_fen",
    )
    _event(
        conn,
        group_id,
        coupon,
        "redeemed",
        ask.key,
        ask.digest,
        now,
        terms.face_value_fen,
        terms.cost_fen,
        order_id=ask.order_id,
        store_id=ask.basket.store_id,
        channel=ask.basket.channel,
        off_fen=benefit.off_fen,
        key_id=ask.key_id,
    )
    return Redeemed(
        int(coupon.coupon_id),
        coupon.code,
        coupon.template_code,
        int(coupon.member_id),
        ask.order_id,
        benefit.off_fen,
        now,
    )


def _redeemable(coupon: Any, now: datetime) -> None:
    status = coupon.status
    code = coupon.code
    if status == "redeemed":
        raise CouponNotRedeemable(f"code: coupon {code} is already redeemed")
    if status == "expired" or stored_time(coupon.valid_until) <= now:
        raise CouponNotRedeemable(f"code: coupon {code} expired")
    if stored_time(coupon.valid_from) > now:
        raise CouponNotRedeemable(f"code: coupon {code} is not valid yet")


def _replay(conn: Connection, group_id: str, ask: Redemption) -> Redeemed:
    first = conn.execute(_FIRST, {"g": group_id, "k": ask.key}).first()
    if first is None or first.kind != "redeemed" or first.request_sha256 != ask.digest:
        raise IdempotencyConflict(
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


def give_back(
    engine: Engine,
    group_id: str,
    code: str,
    order_id: str,
    key: str,
    key_id: int | None = None,
    at: datetime | None = None,
) -> dict[str, object]:
    """The order `order_id` was refunded: give its coupon back, if its template says so
    (`on_refund: return`). The coupon is usable again while still valid, else it expires
    at once; the redemption is uncounted from the limits. Once per key."""
    if not key or len(key) > 200:
        raise ValidationError("Idempotency-Key", "required, at most 200 characters")
    now = as_stored(at) if at is not None else stored_now()
    digest = hashlib.sha256(f"return\n{code}\n{order_id}".encode()).hexdigest()
    with engine.begin() as conn:
        first = conn.execute(_FIRST, {"g": group_id, "k": key}).first()
        if first is not None:
            if first.request_sha256 != digest:
                raise IdempotencyConflict(
                    "Idempotency-Key: already used for a different request; use a new key"
                )
            return _returned(conn, group_id, code, replayed=True)
        coupon = conn.execute(_COUPON, {"g": group_id, "c": code}).first()
        if coupon is None:
            raise NotFoundError(f"code: no coupon {code!r}")
        terms = catalog.issued_under(conn, int(coupon.template_id))
        if coupon.status != "redeemed" or coupon.order_id != order_id:
            raise NotReturnable(f"order_id: coupon {code} is not redeemed on order {order_id!r}")
        if terms.on_refund == "keep":
            raise NotReturnable(f"code: template {terms.code} keeps its coupons on refund")
        status = "issued" if stored_time(coupon.valid_until) > now else "expired"
        changed = conn.execute(
            text("""UPDATE coupons SET status = :st, order_id = NULL, store_id = NULL,
                      channel = NULL, off_fen = NULL, redeemed_at = NULL
                    WHERE coupon_id = :c AND status = 'redeemed' AND order_id = :o"""),
            {"st": status, "c": coupon.coupon_id, "o": order_id},
        ).rowcount
        if changed != 1:
            raise ConflictError(f"code: coupon {code} changed meanwhile; try again")
        limits.give_back(conn, group_id, limits.counter(coupon.template_code, "redemptions"), 1)
        limits.give_back(
            conn, group_id, limits.counter(coupon.template_code, "budget_fen"), terms.cost_fen
        )
        _event(
            conn,
            group_id,
            coupon,
            "returned",
            key,
            digest,
            now,
            terms.face_value_fen,
            terms.cost_fen,
            order_id=order_id,
            off_fen=int(coupon.off_fen or 0),
            key_id=key_id,
        )
        if status == "expired":
            _event(
                conn,
                group_id,
                coupon,
                "expired",
                f"expire:{coupon.coupon_id}:{key}",
                digest,
                now,
                terms.face_value_fen,
                terms.cost_fen,
                reference="returned after expiry",
            )
        return _returned(conn, group_id, code, replayed=False)


def _returned(conn: Connection, group_id: str, code: str, replayed: bool) -> dict[str, object]:
    row = conn.execute(_COUPON, {"g": group_id, "c": code}).one()
    return {
        "code": code,
        "member_id": int(row.member_id),
        "status": row.status,
        "valid_until": stored_time(row.valid_until),
        "replayed": replayed,
    }


def _event(
    conn: Connection,
    group_id: str,
    coupon: Any,
    kind: str,
    key: str,
    digest: str,
    now: datetime,
    face_value_fen: int,
    cost_fen: int,
    *,
    order_id: str | None = None,
    store_id: str | None = None,
    channel: str | None = None,
    off_fen: int = 0,
    reference: str | None = None,
    key_id: int | None = None,
) -> None:
    conn.execute(
        coupon_events.insert().values(
            group_id=group_id,
            idempotency_key=key,
            request_sha256=digest,
            coupon_id=coupon.coupon_id,
            member_id=coupon.member_id,
            template_code=coupon.template_code,
            campaign=coupon.campaign,
            kind=kind,
            order_id=order_id,
            store_id=store_id,
            channel=channel,
            off_fen=off_fen,
            face_value_fen=face_value_fen,
            cost_fen=cost_fen,
            reference=reference,
            key_id=key_id,
            at=now,
        )
    )
