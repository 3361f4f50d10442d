"""Stored value (储值): money a member pays in advance, with a bonus on top.

Principal (what the member paid) and bonus (what the brand added) are kept on separate
accounts because they are different things: principal is the brand's debt to the member
and is refundable; bonus is a promotion and is not. A payment spends both in proportion
to their balances, so a member cannot drain the bonus first and refund the principal.
"""

from __future__ import annotations

import json
from dataclasses import replace

from sqlalchemy import Engine, text

from siyu.errors import NotFoundError, ValidationError
from siyu.ledger.errors import AlreadyRefunded, InsufficientBalance
from siyu.ledger.models import SV_BONUS, SV_PRINCIPAL
from siyu.ledger.posting import Item, Plan, Request, Result, post


def top_up(engine: Engine, request: Request, paid_fen: int, bonus_fen: int) -> Result:
    return post(engine, *top_up_item(request, paid_fen, bonus_fen))


def top_up_item(request: Request, paid_fen: int, bonus_fen: int) -> Item:
    """The posting of `top_up`, for `post` or a batch (`ledger.batch.post_many`)."""
    if paid_fen <= 0:
        raise ValidationError("paid_fen", "must be a positive integer (fen)")
    if bonus_fen < 0:
        raise ValidationError("bonus_fen", "must be zero or a positive integer (fen)")

    def plan(work: Plan) -> None:
        work.move(SV_PRINCIPAL, paid_fen, "cash")
        work.move(SV_BONUS, bonus_fen, "issuance")
        work.detail.update(paid_fen=paid_fen, bonus_fen=bonus_fen)

    return request, plan


def split(amount: int, principal: int, bonus: int) -> tuple[int, int]:
    """(from principal, from bonus) for a payment of `amount`, in proportion to the
    balances, rounded to the nearest fen. Both parts stay within their balances when
    amount <= principal + bonus (the rounding error of either part is below half a fen)."""
    total = principal + bonus
    from_principal = (2 * amount * principal + total) // (2 * total)
    return from_principal, amount - from_principal


def pay(engine: Engine, request: Request, amount_fen: int) -> Result:
    return post(engine, *pay_item(request, amount_fen))


def pay_item(request: Request, amount_fen: int) -> Item:
    if amount_fen <= 0:
        raise ValidationError("amount_fen", "must be a positive integer (fen)")

    def plan(work: Plan) -> None:
        balances = work.balances()
        principal, bonus = balances[SV_PRINCIPAL], balances[SV_BONUS]
        if principal + bonus < amount_fen:
            raise InsufficientBalance("stored_value", amount_fen, principal + bonus)
        from_principal, from_bonus = split(amount_fen, principal, bonus)
        work.move(SV_PRINCIPAL, -from_principal, "redemption")
        work.move(SV_BONUS, -from_bonus, "redemption")
        work.detail.update(
            amount_fen=amount_fen, principal_fen=from_principal, bonus_fen=from_bonus
        )

    return request, plan


def refund_top_up(engine: Engine, request: Request, top_up_posting_id: int) -> Result:
    """Give back what is left of a top-up's principal (never more than was paid, never
    more than the balance); its bonus goes with it in the same proportion."""

    def plan(work: Plan) -> None:
        balances = work.balances()  # locks the member: one refund of a top-up at a time
        original = work.conn.execute(
            text("""SELECT detail FROM ledger_postings
                    WHERE group_id = :g AND posting_id = :p AND member_id = :m
                      AND kind = 'top_up'"""),
            {"g": work.group_id, "p": top_up_posting_id, "m": work.member_id},
        ).first()
        if original is None:
            raise NotFoundError(
                f"top_up_posting_id: no top-up {top_up_posting_id} for member {work.member_id}"
            )
        done = work.conn.execute(
            text("""SELECT 1 FROM ledger_postings WHERE group_id = :g
                      AND kind = 'refund_top_up' AND reference = :r
                      AND posting_id <> :self LIMIT 1"""),
            {"g": work.group_id, "r": f"top_up:{top_up_posting_id}", "self": work.posting_id},
        ).first()
        if done is not None:
            raise AlreadyRefunded(f"top_up_posting_id: top-up {top_up_posting_id} was refunded")
        detail = json.loads(original.detail)
        paid, bonus = int(detail["paid_fen"]), int(detail["bonus_fen"])
        principal_back = min(paid, balances[SV_PRINCIPAL])
        bonus_back = min(balances[SV_BONUS], (bonus * principal_back + paid // 2) // paid)
        if principal_back == 0:
            raise InsufficientBalance(SV_PRINCIPAL, 1, 0)
        work.move(SV_PRINCIPAL, -principal_back, "cash")
        work.move(SV_BONUS, -bonus_back, "issuance")
        work.detail.update(
            top_up_posting_id=top_up_posting_id,
            principal_fen=principal_back,
            bonus_fen=bonus_back,
        )

    refund = replace(request, reference=f"top_up:{top_up_posting_id}")
    return post(engine, refund, plan)
