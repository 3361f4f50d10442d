"""A receipt's reasons (`receipts.reasons`, a JSON list of {"code", "detail"}), written and
read back in one place.

The upload and the review write each reason with a detail in words (what the API and the
CLI answer); the console shows them in Chinese or English, and links the receipts a
near-duplicate names, so it reads them back as `Reason`s here instead of parsing the words
itself. A detail this module did not write (an older one) reads as `other`, its words
kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

BY_REVIEWER = "by the reviewer"  # the detail of a decision made without a reason
_NEAR = re.compile(r"^receipts ([\d, ]+): same store and amount within a minute$")
_HOLDS = re.compile(r"^receipt (\d+) holds (.+)$")
_OVER = re.compile(r"^amount_fen (\d+) above auto_accept\.max_amount_fen (\d+)$")
_HOME = re.compile(r"^not the member's home store \((.*)\)$")
_EVERY = "the rule reviews every receipt"


@dataclass(frozen=True)
class Reason:
    """One reason as people read it: `kind` (near_duplicate, duplicate, over_auto_amount,
    not_home_store, every_receipt, auto_accepted, accepted, rejected, coupon_refused,
    other) and the values it names."""

    kind: str
    receipts: tuple[int, ...] = ()  # the receipts a (near-)duplicate is of
    amount_fen: int | None = None
    cap_fen: int | None = None
    store: str | None = None  # the member's home store ('none': it has none)
    text: str = ""  # a reviewer's reason, a refused coupon's why, or unknown words


def _reason(code: str, detail: str) -> dict[str, str]:
    return {"code": code, "detail": detail}


def duplicate(first: object, store_id: str, number: str) -> dict[str, str]:
    return _reason("duplicate", f"receipt {first} holds {store_id}/{number}")


def near_duplicate(ids: Iterable[int]) -> dict[str, str]:
    others = ", ".join(map(str, ids))
    return _reason("near_duplicate", f"receipts {others}: same store and amount within a minute")


def every_receipt() -> dict[str, str]:
    return _reason("review", _EVERY)


def over_auto_amount(amount_fen: int, cap_fen: int) -> dict[str, str]:
    return _reason("review", f"amount_fen {amount_fen} above auto_accept.max_amount_fen {cap_fen}")


def not_home_store(home: str | None) -> dict[str, str]:
    return _reason("review", f"not the member's home store ({home or 'none'})")


def auto_accepted() -> dict[str, str]:
    return _reason("auto_accepted", "by the rule")


def decision(decided: str, reason: str | None) -> dict[str, str]:
    return _reason(decided, reason or BY_REVIEWER)


def read(raw: dict[str, str]) -> Reason:
    """A stored reason as a `Reason` (`other` with its words when not recognised)."""
    code, detail = str(raw.get("code", "")), str(raw.get("detail", ""))
    if code == "near_duplicate" and (m := _NEAR.match(detail)):
        ids = tuple(int(x) for x in m.group(1).split(",") if x.strip())
        return Reason("near_duplicate", receipts=ids)
    if code == "duplicate" and (m := _HOLDS.match(detail)):
        return Reason("duplicate", receipts=(int(m.group(1)),))
    if code == "review":
        if detail == _EVERY:
            return Reason("every_receipt")
        if m := _OVER.match(detail):
            return Reason("over_auto_amount", amount_fen=int(m.group(1)), cap_fen=int(m.group(2)))
        if m := _HOME.match(detail):
            return Reason("not_home_store", store=m.group(1))
    if code == "auto_accepted":
        return Reason("auto_accepted")
    if code in ("accepted", "rejected"):
        return Reason(code, text="" if detail == BY_REVIEWER else detail)
    if code == "coupon_refused":
        return Reason("coupon_refused", text=detail)
    return Reason("other", text=f"{code}: {detail}" if code else detail)
