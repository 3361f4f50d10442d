"""Issuing coupons: to one member, to a list (a segment, a campaign's target), on a tier
upgrade, each exactly once.

Every coupon issued has an event whose key is `issue:<key>:<member>`: asking again with
the same key issues nothing and answers the coupons already issued, so a bulk issue
stopped half way is finished by running it again. Members are taken in chunks of
`CHUNK`, one transaction each; in each, the per-member limit is counted first and the
template's total next (the total's row is locked once per chunk, not per coupon), and a
member refused by either is reported, not failed.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, text

from siyu.coupons import catalog, limits
from siyu.coupons.models import coupon_events, coupons
from siyu.errors import ValidationError
from siyu.store.times import as_stored, stored_now

CHUNK = 1000
# Unambiguous at a till: no 0/O, 1/I/L. 12 characters: 31**12 ≈ 2**59 codes per group.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12
Progress = Callable[[int, int], None]  # (members done, members asked)

_MEMBERS = text("""SELECT member_id, status, merged_into FROM members
                   WHERE group_id = :g AND member_id IN :ms""").bindparams(
    bindparam("ms", expanding=True)
)
_DONE = text("""SELECT e.idempotency_key, e.request_sha256, c.coupon_id, c.code, c.member_id,
                       c.valid_from, c.valid_until
                FROM coupon_events e JOIN coupons c ON c.coupon_id = e.coupon_id
                WHERE e.group_id = :g AND e.idempotency_key IN :ks""").bindparams(
    bindparam("ks", expanding=True)
)


@dataclass(frozen=True)
class IssuedCoupon:
    coupon_id: int
    code: str
    member_id: int
    valid_from: datetime
    valid_until: datetime
    replayed: bool = False


@dataclass
class IssueReport:
    template_code: str
    version: int
    issued: list[IssuedCoupon] = field(default_factory=list)
    # member_id -> why no coupon: unknown member, per_member limit, issued limit
    refused: dict[int, str] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        fresh = sum(not c.replayed for c in self.issued)
        return {
            "issued": fresh,
            "replayed": len(self.issued) - fresh,
            "refused": len(self.refused),
        }


def issue(
    engine: Engine,
    group_id: str,
    template_code: str,
    member_ids: Sequence[int],
    key: str,
    *,
    campaign: str | None = None,
    key_id: int | None = None,
    at: datetime | None = None,
    progress: Progress | None = None,
) -> IssueReport:
    """One coupon of `template_code` to each of `member_ids` (a merged member's goes to
    the member it was merged into), once per (key, member)."""
    if not key or len(key) > 160:
        raise ValidationError("key", "required, at most 160 characters")
    if campaign is not None and not 1 <= len(campaign) <= 64:
        raise ValidationError("campaign", "1 to 64 characters")
    asked = list(dict.fromkeys(int(m) for m in member_ids))
    now = as_stored(at) if at is not None else stored_now()
    with engine.connect() as conn:
        version = catalog.current(conn, group_id, template_code)
    report = IssueReport(template_code, version.version)
    digest = hashlib.sha256(f"{template_code}\n{campaign or ''}".encode()).hexdigest()
    for start in range(0, len(asked), CHUNK):
        chunk = asked[start : start + CHUNK]
        with engine.begin() as conn:
            _issue_chunk(conn, group_id, version, chunk, key, digest, campaign, key_id, now, report)
        if progress is not None:
            progress(min(start + CHUNK, len(asked)), len(asked))
    return report


def _issue_chunk(
    conn: Connection,
    group_id: str,
    version: catalog.Version,
    chunk: list[int],
    key: str,
    digest: str,
    campaign: str | None,
    key_id: int | None,
    now: datetime,
    report: IssueReport,
) -> None:
    template = version.template
    keys = {m: f"issue:{key}:{m}" for m in chunk}
    for row in conn.execute(_DONE, {"g": group_id, "ks": list(keys.values())}):
        if row.request_sha256 != digest:
            raise ValidationError(
                "key", f"{key!r} already issued another template or campaign; use a new key"
            )
        member = int(row.idempotency_key.rsplit(":", 1)[1])
        keys.pop(member)
        report.issued.append(
            IssuedCoupon(
                int(row.coupon_id),
                row.code,
                int(row.member_id),
                row.valid_from,
                row.valid_until,
                replayed=True,
            )
        )
    holder_of = holders(conn, group_id, list(keys))
    for member in list(keys):
        if member not in holder_of:
            report.refused[member] = "unknown member"
            keys.pop(member)
    survivors = sorted({holder_of[m] for m in keys})
    per_member = limits.counter(template.code, "per_member")
    allowed = limits.take_per_member(
        conn, group_id, per_member, survivors, template.limits.per_member
    )
    wanted = [m for m in keys if holder_of[m] in allowed]
    for member in keys:
        if holder_of[member] not in allowed:
            report.refused[member] = "limits.per_member"
    # Two asked members merged into one survivor were counted once above: one coupon.
    seen: set[int] = set()
    for member in list(wanted):
        if holder_of[member] in seen:
            report.refused[member] = "merged into a member already issued to"
            wanted.remove(member)
        seen.add(holder_of[member])
    n = limits.take_up_to(
        conn, group_id, limits.counter(template.code, "issued"), len(wanted), template.limits.issued
    )
    for member in wanted[n:]:
        report.refused[member] = "limits.issued"
        limits.give_back(conn, group_id, per_member, 1, holder_of[member])
    wanted = wanted[:n]
    if not wanted:
        return
    valid_from, valid_until = template.validity.window(now)
    fresh = [
        {
            "group_id": group_id,
            "code": new_code(),
            "template_id": version.template_id,
            "template_code": template.code,
            "member_id": holder_of[m],
            "campaign": campaign,
            "status": "issued",
            "valid_from": valid_from,
            "valid_until": valid_until,
            "issued_at": now,
        }
        for m in wanted
    ]
    ids = [
        int(i)
        for i in conn.execute(
            coupons.insert().returning(coupons.c.coupon_id, sort_by_parameter_order=True), fresh
        ).scalars()
    ]
    conn.execute(
        coupon_events.insert(),
        [
            {
                "group_id": group_id,
                "idempotency_key": keys[m],
                "request_sha256": digest,
                "coupon_id": coupon_id,
                "member_id": holder_of[m],
                "template_code": template.code,
                "campaign": campaign,
                "kind": "issued",
                "off_fen": 0,
                "face_value_fen": template.face_value_fen,
                "cost_fen": template.cost_fen,
                "key_id": key_id,
                "at": now,
            }
            for m, coupon_id in zip(wanted, ids, strict=True)
        ],
    )
    holders_of = {c: holder_of[m] for m, c in zip(wanted, ids, strict=True)}
    for values, coupon_id in zip(fresh, ids, strict=True):
        report.issued.append(
            IssuedCoupon(
                coupon_id, str(values["code"]), int(holders_of[coupon_id]), valid_from, valid_until
            )
        )


def holders(conn: Connection, group_id: str, member_ids: list[int]) -> dict[int, int]:
    """Each asked member that exists -> the member that holds its coupons (itself, or the
    one it was merged into, followed along the chain)."""
    out: dict[int, int] = {}
    if not member_ids:
        return out
    pending = {m: m for m in member_ids}
    for _ in range(32):  # merge chains are short; the bound guards against a cycle
        rows = conn.execute(_MEMBERS, {"g": group_id, "ms": sorted(set(pending.values()))})
        found = {int(r.member_id): r for r in rows}
        nxt: dict[int, int] = {}
        for asked, current in pending.items():
            row = found.get(current)
            if row is None:
                continue
            if row.status == "merged" and row.merged_into is not None:
                nxt[asked] = int(row.merged_into)
            else:
                out[asked] = current
        if not nxt:
            break
        pending = nxt
    return out


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
