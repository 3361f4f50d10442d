"""A tier's coupon pack, issued on upgrade (the tier rules' `coupon_pack` names a coupon
template).

Issued from `tier_changes`, not from memory: every upgrade is recorded there in the tier's
own transaction, so an upgrade whose pack was not issued yet (the process stopped between
the two) is found by the next run. The key is the change's, so each upgrade issues its
pack once. The API process hands each upgrade to `issue_tier_packs` at once, through
`ledger.tiers.UPGRADE_HOOKS` (`hook`); the nightly `siyu coupons run` catches up the rest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import DateTime, Engine, bindparam, text

from siyu.coupons.issue import issue
from siyu.errors import NotFoundError
from siyu.ledger.tiers import TierChange
from siyu.store.times import stored_now

log = logging.getLogger(__name__)
LOOK_BACK = timedelta(days=30)  # upgrades older than this are not issued late

_PENDING = """SELECT t.change_id, t.member_id, t.detail FROM tier_changes t
              WHERE t.group_id = :g AND t.reason = 'upgrade' AND t.created_at >= :since
                {only}
                AND NOT EXISTS (SELECT 1 FROM coupon_events e WHERE e.group_id = t.group_id
                  AND e.idempotency_key = 'issue:tier:' || t.change_id || ':' || t.member_id)
              ORDER BY t.change_id"""


def issue_tier_packs(
    engine: Engine,
    group_id: str,
    member_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> dict[str, int]:
    """Issue the pack of every recent upgrade not yet given it (of `member_ids` only, when
    given); returns counts: issued, refused (a limit), no_template (the pack names no
    template: the tier rules promise a pack HQ has not defined)."""
    query = text(
        _PENDING.replace("{only}", "" if member_ids is None else "AND t.member_id IN :ms")
    ).bindparams(bindparam("since", type_=DateTime()))
    params: dict[str, object] = {"g": group_id, "since": (now or stored_now()) - LOOK_BACK}
    if member_ids is not None:
        query = query.bindparams(bindparam("ms", expanding=True))
        params["ms"] = list(member_ids) or [0]
    with engine.connect() as conn:
        rows = conn.execute(query, params).all()
    counts = {"issued": 0, "refused": 0, "no_template": 0}
    for row in rows:
        pack = json.loads(row.detail or "{}").get("coupon_pack")
        if not pack:
            continue
        try:
            report = issue(
                engine,
                group_id,
                pack,
                [int(row.member_id)],
                f"tier:{row.change_id}",
                campaign=f"tier:{pack}"[:64],
            )
        except NotFoundError:
            counts["no_template"] += 1
            continue
        counts["issued"] += report.counts["issued"]
        counts["refused"] += report.counts["refused"]
    if counts["no_template"]:
        log.warning(
            "coupons: %d upgrades name a coupon pack with no template", counts["no_template"]
        )
    return counts


def hook(engine: Engine) -> Callable[[TierChange], None]:
    """An upgrade hook for `ledger.tiers.UPGRADE_HOOKS` that issues the member's pack at
    once on `engine`. A failure is logged, never raised: the upgrade has committed, and
    the nightly run issues what this missed."""

    def on_upgrade(change: TierChange) -> None:
        try:
            issue_tier_packs(engine, change.group_id, [change.member_id])
        except Exception:
            log.exception(
                "coupons: the tier pack of an upgrade was not issued; the nightly run will"
            )

    return on_upgrade
