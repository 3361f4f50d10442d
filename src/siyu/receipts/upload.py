"""Uploading a receipt: checked, claimed once in the brand group, counted against the
member's limits, then accepted by the rule or queued for review, in one transaction.

The transaction, in order:

1. the receipt row, whose idempotency key is unique in the group (a retry with the same
   key is answered from the first upload; the same key for another receipt is refused);
2. the claim on (store, receipt number): `INSERT ... ON CONFLICT DO NOTHING` on
   `receipt_numbers`. A second upload of a number another pending or accepted receipt holds
   inserts nothing and is recorded as `duplicate` (no limit taken, no reward, ever). Two
   members racing with the same receipt: PostgreSQL makes the second insert wait for the
   first transaction and then skip; SQLite has one writer at a time;
3. the member's limit counters (per day, per period: `coupons.limits`, a conditional
   UPDATE each): over a limit, the whole upload is refused and nothing is kept;
4. near-duplicates (same store and amount, bought within a minute, another number): they
   send the receipt to review whatever the auto-accept rule says;
5. the decision: accepted by the rule (`reviewer = 'auto'`) or pending.

An auto-accepted receipt is rewarded after the commit (`rewards.reward`, keyed by the
receipt, so an interrupted reward is given by running it again).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from siyu.coupons import limits
from siyu.coupons.issue import holders
from siyu.errors import NotFoundError, ValidationError
from siyu.ledger.errors import IdempotencyConflict
from siyu.receipts import reasons, records, rewards, rules
from siyu.receipts.errors import ReceiptLimitReached, ReceiptNotEligible
from siyu.receipts.models import receipt_numbers, receipts
from siyu.receipts.records import Receipt
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now

# A till's clock may run ahead of ours by a little; more than this is a typing mistake
# (or a receipt from the future).
CLOCK_SKEW = timedelta(minutes=10)
NEAR = timedelta(minutes=1)
_SPACES = re.compile(r"[\s\-]+")
_VISIBLE = re.compile(r"^[^\x00-\x20\x7f]+$")

_STORE = text("SELECT brand_id FROM stores WHERE group_id = :g AND store_id = :s")
_HOME = text("SELECT home_store_id FROM members WHERE group_id = :g AND member_id = :m")
_HOLDER = text("""SELECT receipt_id FROM receipt_numbers
                  WHERE group_id = :g AND store_id = :s AND receipt_no = :n""")
_NEAR = text("""SELECT receipt_id FROM receipts
                WHERE group_id = :g AND store_id = :s AND amount_fen = :a
                  AND purchased_at >= :lo AND purchased_at <= :hi
                  AND receipt_no <> :n AND receipt_id <> :r
                  AND status IN ('pending', 'accepted')
                ORDER BY receipt_id LIMIT 5""")
_DECIDE = text("""UPDATE receipts SET status = :st, reasons = :why, reviewer = :by,
                    reviewed_at = :at
                  WHERE receipt_id = :r""")


@dataclass(frozen=True)
class ReceiptIn:
    """What the member typed and photographed."""

    member_id: int
    store_id: str
    receipt_no: str
    amount_fen: int
    purchased_at: datetime
    image_ref: str


def receipt_number(raw: str) -> str:
    """The number as kept and compared: spaces and dashes dropped, upper case, so
    'a-123 45' typed once and 'A12345' typed again are the same receipt."""
    return _SPACES.sub("", raw).upper()


def upload(
    engine: Engine,
    group_id: str,
    rule_code: str,
    given: ReceiptIn,
    key: str,
    *,
    key_id: int | None = None,
    at: datetime | None = None,
) -> Receipt:
    """Record `given` under the rule `rule_code`, once per `key`; see the module
    docstring. Bad input is a ValidationError naming the field; a receipt the rule gives
    nothing for is `ReceiptNotEligible`; over a limit, `ReceiptLimitReached`."""
    if not key or len(key) > 200:
        raise ValidationError("Idempotency-Key", "required, at most 200 characters")
    now = as_stored(at) if at is not None else stored_now()
    number = _checked(given, now)
    digest = _digest(rule_code, given, number)
    with engine.connect() as conn:
        first = records.by_key(conn, group_id, key)
    if first is not None:
        return _replay(engine, group_id, first, digest)
    with engine.connect() as conn:
        version = rules.current(conn, group_id, rule_code)
        brand = conn.execute(_STORE, {"g": group_id, "s": given.store_id}).scalar()
        if brand is None:
            raise ValidationError("store_id", f"no store {given.store_id!r} in the brand group")
        _eligible(version.rule, given, str(brand), now)
        holder = holders(conn, group_id, [given.member_id]).get(given.member_id)
        if holder is None:
            raise NotFoundError(f"member_id: no member {given.member_id}")
        home = conn.execute(_HOME, {"g": group_id, "m": holder}).scalar()
    try:
        with engine.begin() as conn:
            receipt_id = _record(
                conn, group_id, version, given, number, holder, home, key, digest, key_id, now
            )
            done = records.load(conn, group_id, receipt_id)
    except IntegrityError:
        # the same key, uploaded at the same moment by a retry: the first one is the answer
        with engine.connect() as conn:
            first = records.by_key(conn, group_id, key)
        if first is None:
            raise
        return _replay(engine, group_id, first, digest)
    if done.status == "accepted":
        return rewards.reward(engine, group_id, done.receipt_id)
    return done


def _record(
    conn: Connection,
    group_id: str,
    version: rules.Version,
    given: ReceiptIn,
    number: str,
    holder: int,
    home: str | None,
    key: str,
    digest: str,
    key_id: int | None,
    now: datetime,
) -> int:
    rule = version.rule
    bought = as_stored(given.purchased_at)
    tier = rule.tier_for(given.amount_fen)
    assert tier is not None  # _eligible refused the rest
    receipt_id = int(
        conn.execute(
            receipts.insert()
            .values(
                group_id=group_id,
                member_id=holder,
                rule_code=rule.code,
                rule_id=version.rule_id,
                store_id=given.store_id,
                receipt_no=number,
                amount_fen=given.amount_fen,
                purchased_at=bought,
                image_ref=given.image_ref,
                status="pending",
                reasons="[]",
                idempotency_key=key,
                request_sha256=digest,
                key_id=key_id,
                tier_min_paid_fen=tier.min_paid_fen,
                created_at=now,
            )
            .returning(receipts.c.receipt_id)
        ).scalar_one()
    )
    claim = {"group_id": group_id, "store_id": given.store_id, "receipt_no": number}
    # RETURNING says whether the row went in (psycopg answers no rowcount for it)
    claimed = conn.execute(
        dialect_of(conn).insert_ignore(receipt_numbers).returning(receipt_numbers.c.receipt_id),
        {**claim, "receipt_id": receipt_id},
    ).first()
    if claimed is None:
        first = conn.execute(_HOLDER, {"g": group_id, "s": given.store_id, "n": number}).scalar()
        why = [reasons.duplicate(first, given.store_id, number)]
        _decide(conn, receipt_id, "duplicate", why, "auto", now)
        return receipt_id
    for name, cap, limit in rule.counters(bought):
        if not limits.take_per_member(conn, group_id, name, [holder], cap):
            assert cap is not None
            raise ReceiptLimitReached(limit, cap)
    why = []
    near = conn.execute(
        _NEAR,
        {
            "g": group_id,
            "s": given.store_id,
            "a": given.amount_fen,
            "lo": bought - NEAR,
            "hi": bought + NEAR,
            "n": number,
            "r": receipt_id,
        },
    ).scalars()
    near_ids = [int(r) for r in near]
    if near_ids:
        why.append(reasons.near_duplicate(near_ids))
    why.extend(_needs_review(rule, given, home))
    if why:
        _decide(conn, receipt_id, "pending", why, None, None)
    else:
        _decide(conn, receipt_id, "accepted", [reasons.auto_accepted()], "auto", now)
    return receipt_id


def _needs_review(
    rule: rules.RewardRule, given: ReceiptIn, home: str | None
) -> list[dict[str, str]]:
    """Why the auto-accept rule does not accept the receipt (empty: it does)."""
    auto = rule.auto_accept
    if auto is None:
        return [reasons.every_receipt()]
    why = []
    if given.amount_fen > auto.max_amount_fen:
        why.append(reasons.over_auto_amount(given.amount_fen, auto.max_amount_fen))
    if auto.home_store_only and home != given.store_id:
        why.append(reasons.not_home_store(home))
    return why


def _decide(
    conn: Connection,
    receipt_id: int,
    status: str,
    why: list[dict[str, str]],
    by: str | None,
    at: datetime | None,
) -> None:
    conn.execute(
        _DECIDE,
        {
            "st": status,
            "why": json.dumps(why, ensure_ascii=False),
            "by": by,
            "at": at,
            "r": receipt_id,
        },
    )


def _checked(given: ReceiptIn, now: datetime) -> str:
    """The receipt's own rules (the rule's come later); returns the normalised number."""
    if isinstance(given.amount_fen, bool) or not isinstance(given.amount_fen, int):
        raise ValidationError("amount_fen", "an integer number of fen")
    if given.amount_fen <= 0:
        raise ValidationError(
            "amount_fen", "must be a positive integer (fen paid)", given.amount_fen
        )
    if given.amount_fen > rules.FEN_MAX:
        raise ValidationError("amount_fen", f"at most {rules.FEN_MAX}", given.amount_fen)
    if as_stored(given.purchased_at) > now + CLOCK_SKEW:
        raise ValidationError("purchased_at", "must not be in the future", given.purchased_at)
    number = receipt_number(given.receipt_no)
    if not 1 <= len(number) <= 64 or not _VISIBLE.match(number):
        raise ValidationError(
            "receipt_no", "1 to 64 visible characters (spaces and dashes are dropped)"
        )
    if not 1 <= len(given.image_ref) <= 500 or not _VISIBLE.match(given.image_ref):
        raise ValidationError("image_ref", "a URL or object key: 1 to 500 characters, no spaces")
    if not 1 <= len(given.store_id) <= 64:
        raise ValidationError("store_id", "1 to 64 characters")
    return number


def _eligible(rule: rules.RewardRule, given: ReceiptIn, brand: str, now: datetime) -> None:
    bought = as_stored(given.purchased_at)
    starts, ends = as_stored(rule.starts_at), as_stored(rule.ends_at)
    if not starts <= bought < ends:
        raise ReceiptNotEligible(
            f"purchased_at: {bought.isoformat()} is outside the rule's window "
            f"[{starts.isoformat()}, {ends.isoformat()})"
        )
    if now - bought > timedelta(days=rule.upload_within_days):
        raise ReceiptNotEligible(
            f"purchased_at: uploads are accepted within {rule.upload_within_days} days "
            "of the purchase"
        )
    if rule.scope.stores and given.store_id not in rule.scope.stores:
        raise ReceiptNotEligible(f"store_id: {given.store_id} is not in the rule's scope.stores")
    if rule.scope.brands and brand not in rule.scope.brands:
        raise ReceiptNotEligible(
            f"store_id: the store's brand {brand} is not in the rule's scope.brands"
        )
    if rule.tier_for(given.amount_fen) is None:
        raise ReceiptNotEligible(
            f"amount_fen: {given.amount_fen} is below the lowest tier's min_paid_fen "
            f"{rule.tiers[0].min_paid_fen}"
        )


def _digest(rule_code: str, given: ReceiptIn, number: str) -> str:
    canonical: list[Any] = [
        rule_code,
        given.member_id,
        given.store_id,
        number,
        given.amount_fen,
        as_stored(given.purchased_at).isoformat(),
        given.image_ref,
    ]
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


def _replay(engine: Engine, group_id: str, first: Receipt, digest: str) -> Receipt:
    """The first upload under the key; if it was accepted and its reward never given (the
    process stopped in between), the retry gives it."""
    if first.request_sha256 != digest:
        raise IdempotencyConflict(
            "Idempotency-Key: already used for another receipt; use a new key"
        )
    if first.status == "accepted" and first.rewarded_at is None:
        return replace(rewards.reward(engine, group_id, first.receipt_id), replayed=True)
    return first
