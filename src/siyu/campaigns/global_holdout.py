"""The group's global holdout: members kept out of every campaign's and every
experiment's treatment, so HQ can measure what all of them together are worth over
months (the held-out members' spend against everyone else's).

A member is held out when the bucket of (the holdout's salt, member) is below the share;
the salt is drawn once, when the holdout is first set, so a member stays held out as long
as the share is not lowered.

What a held-out member gets (decided, see docs/architecture.md "Experiments: the domain"):
nothing, and no arm. A campaign's launch and its scan triggers skip such a member (counted
in `Launched.global_holdout`), as an experiment's start does: putting them in the
campaign's own holdout would mix "no campaign at all" into "not this campaign" and bias
the campaign's lift (and in an experiment skew the arms against their weights, which the
sample-ratio check would flag). Both arms of every campaign and experiment are drawn from
the same members, those not held out globally, so each measures its own effect.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from siyu.campaigns.assignment import in_holdout
from siyu.campaigns.models import global_holdouts
from siyu.errors import ValidationError
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now, stored_time

MAX_SHARE_BP = 5000


@dataclass(frozen=True)
class GlobalHoldout:
    share_bp: int
    salt: str
    updated_at: datetime | None = None
    # since when the members now held out have been: set when the share goes from 0 to
    # more or is raised (the members a raise adds were treated until then), kept when it
    # is lowered; None while nothing is held out
    started_at: datetime | None = None

    def holds(self, member_id: int) -> bool:
        """Whether the member is held out of every treatment."""
        return self.share_bp > 0 and in_holdout(self.salt, member_id, self.share_bp)


NONE = GlobalHoldout(0, "")


def current(conn: Connection, group_id: str) -> GlobalHoldout:
    """The group's global holdout (a share of 0 when none was ever set)."""
    row = conn.execute(
        text("""SELECT share_bp, salt, updated_at, started_at FROM global_holdouts
                WHERE group_id = :g"""),
        {"g": group_id},
    ).first()
    if row is None:
        return NONE
    started = None if row.started_at is None else stored_time(row.started_at)
    return GlobalHoldout(int(row.share_bp), str(row.salt), stored_time(row.updated_at), started)


def set_share(
    engine: Engine, group_id: str, share_bp: int, key_id: int | None = None
) -> GlobalHoldout:
    """Set the share held out (basis points, 0..5,000); the salt is drawn the first time
    and kept. Members already in a campaign or experiment keep their arm. A raise (or a
    first share) restarts `started_at`; a lower share keeps it; 0 clears it."""
    if isinstance(share_bp, bool) or not isinstance(share_bp, int):
        raise ValidationError("share_bp", "an integer number of basis points", share_bp)
    if not 0 <= share_bp <= MAX_SHARE_BP:
        raise ValidationError("share_bp", f"must be 0..{MAX_SHARE_BP} basis points", share_bp)
    now = stored_now()
    with engine.begin() as conn:
        # insert-or-ignore first, so two first settings at once draw one salt between them
        conn.execute(
            dialect_of(conn).insert_ignore(global_holdouts),
            [
                {
                    "group_id": group_id,
                    "share_bp": share_bp,
                    "salt": secrets.token_hex(8),
                    "key_id": key_id,
                    "updated_at": now,
                    "started_at": now if share_bp > 0 else None,
                }
            ],
        )
        conn.execute(
            text("""UPDATE global_holdouts SET share_bp = :s, key_id = :k, updated_at = :now,
                    started_at = CASE WHEN :s = 0 THEN NULL
                                      WHEN :s > share_bp THEN :now ELSE started_at END
                    WHERE group_id = :g"""),
            {"s": share_bp, "k": key_id, "now": now, "g": group_id},
        )
        return current(conn, group_id)


def split(holdout: GlobalHoldout, members: Iterable[int]) -> tuple[list[int], list[int]]:
    """(members open to treatment, members held out globally), in the order given."""
    kept: list[int] = []
    held: list[int] = []
    for m in members:
        (held if holdout.holds(m) else kept).append(m)
    return kept, held
