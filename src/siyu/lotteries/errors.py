"""The lotteries' refusals: each is a conflict (409) and applies nothing (no draw counted,
no points spent, no unit taken).

Each class keeps a stable `code`, the API problem's `code` member."""

from __future__ import annotations

from siyu.errors import ConflictError


class PoolAlreadyDefined(ConflictError):
    """A pool's odds and prizes never change once defined: the draws are audited
    against them."""

    code = "pool_already_defined"


class PoolClosed(ConflictError):
    """A draw before the pool opens or after it ends."""

    code = "pool_closed"


class PoolStillOpen(ConflictError):
    """The seed is revealed only after the pool ends, or draws could be foreseen."""

    code = "pool_still_open"


class PoolExhausted(ConflictError):
    """No prize is left: a draw would cost its entry and could win nothing."""

    code = "pool_exhausted"


class DrawLimitReached(ConflictError):
    code = "draw_limit_reached"

    def __init__(self, pool: str, cap: int) -> None:
        self.cap = cap
        super().__init__(f"per_member: pool {pool} allows {cap} draws per member, all used")


class EntryNotAccepted(ConflictError):
    """The entry rule is not met: a scene not of the pool, an order not the member's or
    too small or already used, points short."""

    code = "entry_not_accepted"


class PrizeNotClaimable(ConflictError):
    """Claimed already, past its claim date, or asked at a store that does not hold it."""

    code = "prize_not_claimable"
