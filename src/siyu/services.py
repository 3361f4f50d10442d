"""The services every face shares (the API, the console), built once per process by the
composition root (`siyu.app`) and kept on `app.state.services`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine

from siyu.auth.keys import KeyCache
from siyu.auth.ratelimit import RateLimiter
from siyu.config import Settings
from siyu.coupons.batcher import RedemptionBatcher
from siyu.identity.ingest import IdentifierEncoder
from siyu.inventory.batcher import ReservationBatcher
from siyu.ledger import tiers
from siyu.messaging.callbacks import Callback
from siyu.privacy import Vault
from siyu.store.reads import Reads


@dataclass
class Services:
    settings: Settings
    engine: Engine  # writes (and sync work in the thread pool)
    reads: Reads  # async reads on the event loop
    vault: Vault
    limiter: RateLimiter
    keys: KeyCache
    reservations: ReservationBatcher  # group commit of reservations (inventory/batcher.py)
    redemptions: RedemptionBatcher  # group commit of coupon redemptions (coupons/batcher.py)
    # issues a tier's coupon pack on upgrade (coupons/tier_packs.py); registered in
    # ledger.tiers.UPGRADE_HOOKS while the process serves, removed on close
    upgrade_hook: Callable[[tiers.TierChange], None] | None = field(default=None, repr=False)
    # the platforms' callbacks per channel (SIYU_MESSAGING_FILE), their secrets inside
    callbacks: Mapping[str, Callback] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.upgrade_hook is not None:
            tiers.UPGRADE_HOOKS.append(self.upgrade_hook)

    def encoder(self) -> IdentifierEncoder:
        return IdentifierEncoder(self.vault)

    async def close(self) -> None:
        """Stop the batchers, then close the read pool and the engine."""
        await self.reservations.close()
        await self.redemptions.close()
        if self.upgrade_hook in tiers.UPGRADE_HOOKS:
            tiers.UPGRADE_HOOKS.remove(self.upgrade_hook)
        await self.reads.close()
        self.engine.dispose()
