"""Prize pools as HQ defines them: a validated document, stored once.

A pool's odds and prizes never change after it is defined (a second definition under the
same code is answered as a replay when identical, refused otherwise): the draws are
audited against them. Each prize is an inventory item at a stock location; `units` is how
many of it the pool may award, and the stock at that location must hold them too.

A pool with entry `campaign` is a campaign's lottery: it names the campaign, and only the
members that campaign granted its incentives may draw (draw.py). The campaign is not
looked up here (a pool may be defined before the campaign that offers it); the campaign's
plan names the pool, and saving or launching that plan checks the pair.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, Engine, text

from siyu.errors import NotFoundError, ValidationError
from siyu.ledger.program import Code
from siyu.lotteries import fairness
from siyu.lotteries.errors import PoolAlreadyDefined, PoolStillOpen
from siyu.lotteries.models import ODDS_SCALE, prize_pool_prizes, prize_pools
from siyu.store.times import as_stored, stored_now, stored_time

Name = Annotated[str, Field(min_length=1, max_length=200)]
CLAIM_DAYS = 30  # when a pool names no claim date: 30 days after it ends


class PrizeDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Code
    name_zh: Name
    name_en: Name
    sku: Code
    location_id: Code
    odds_ppm: int = Field(ge=0, le=ODDS_SCALE, description="Chance per draw, per million.")
    units: int = Field(ge=1, le=10**9, description="How many the pool may award.")


class PoolDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Code
    name_zh: Name
    name_en: Name
    starts_at: datetime
    ends_at: datetime
    claim_until: datetime | None = None
    entry: Literal["free", "scan", "purchase", "points", "campaign"]
    scenes: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = None
    min_paid_fen: int | None = Field(default=None, ge=0, le=10**11)
    points: int | None = Field(default=None, ge=1, le=10**9)
    campaign: Code | None = None
    per_member: int = Field(ge=1, le=10_000)
    prizes: list[PrizeDef] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _consistent(self) -> PoolDef:
        if as_stored(self.ends_at) <= as_stored(self.starts_at):
            raise ValueError("ends_at: must be after starts_at")
        if self.claim_until is not None and as_stored(self.claim_until) < as_stored(self.ends_at):
            raise ValueError("claim_until: must not be before ends_at")
        needs = {
            "scan": "scenes",
            "purchase": "min_paid_fen",
            "points": "points",
            "campaign": "campaign",
        }
        for entry, name in needs.items():
            given = getattr(self, name) is not None
            if given != (self.entry == entry):
                rule = "required" if self.entry == entry else f"only for entry {entry!r}"
                raise ValueError(f"{name}: {rule}")
        codes = [p.code for p in self.prizes]
        if len(set(codes)) != len(codes):
            raise ValueError("prizes: each prize code once")
        total = sum(p.odds_ppm for p in self.prizes)
        if total > ODDS_SCALE:
            raise ValueError(f"prizes: the odds add up to {total} ppm, more than {ODDS_SCALE}")
        return self

    @property
    def digest(self) -> str:
        # `campaign` came later: left out when empty, so a pool defined before keeps its
        # digest and its definition still replays
        unset = {"campaign"} if self.campaign is None else None
        return hashlib.sha256(self.model_dump_json(exclude=unset).encode()).hexdigest()


@dataclass(frozen=True)
class Prize:
    prize_code: str
    name_zh: str
    name_en: str
    sku: str
    location_id: str
    odds_ppm: int
    units: int
    awarded: int


@dataclass(frozen=True)
class Pool:
    code: str
    name_zh: str
    name_en: str
    starts_at: datetime
    ends_at: datetime
    claim_until: datetime
    entry: str
    scenes: tuple[str, ...]
    min_paid_fen: int | None
    points: int | None
    campaign: str | None
    per_member: int
    seed_sha256: str
    seed: bytes  # secret until revealed: never answered before `revealed_at`
    revealed_at: datetime | None
    prizes: tuple[Prize, ...]


def define(
    engine: Engine, group_id: str, doc: PoolDef, key_id: int | None, seed: bytes | None = None
) -> Pool:
    """Store the pool and its prizes once; the answer carries the seed's commitment."""
    secret = seed if seed is not None else fairness.new_seed()
    if len(secret) < 16:
        raise ValidationError("seed", "at least 16 bytes")
    with engine.begin() as conn:
        found = conn.execute(
            text("SELECT request_sha256 FROM prize_pools WHERE group_id = :g AND code = :c"),
            {"g": group_id, "c": doc.code},
        ).first()
        if found is not None:
            if found.request_sha256 != doc.digest:
                raise PoolAlreadyDefined(
                    f"code: pool {doc.code} is defined; its odds and prizes never change"
                )
            return load(conn, group_id, doc.code)
        for prize in doc.prizes:
            where = conn.execute(
                text("""SELECT 1 FROM stock_locations
                        WHERE group_id = :g AND location_id = :l"""),
                {"g": group_id, "l": prize.location_id},
            ).first()
            if where is None:
                raise ValidationError(
                    f"prizes.{prize.code}.location_id", f"no stock location {prize.location_id!r}"
                )
        ends = as_stored(doc.ends_at)
        conn.execute(
            prize_pools.insert().values(
                group_id=group_id,
                code=doc.code,
                name_zh=doc.name_zh,
                name_en=doc.name_en,
                starts_at=as_stored(doc.starts_at),
                ends_at=ends,
                claim_until=(
                    as_stored(doc.claim_until) if doc.claim_until else ends + timedelta(CLAIM_DAYS)
                ),
                entry=doc.entry,
                scenes=None if doc.scenes is None else json.dumps(doc.scenes),
                min_paid_fen=doc.min_paid_fen,
                points=doc.points,
                campaign=doc.campaign,
                per_member=doc.per_member,
                seed_sha256=fairness.commitment(secret),
                seed=secret.hex(),
                request_sha256=doc.digest,
                key_id=key_id,
                created_at=stored_now(),
            )
        )
        conn.execute(
            prize_pool_prizes.insert(),
            [
                {
                    "group_id": group_id,
                    "pool_code": doc.code,
                    "prize_code": p.code,
                    "name_zh": p.name_zh,
                    "name_en": p.name_en,
                    "sku": p.sku,
                    "location_id": p.location_id,
                    "odds_ppm": p.odds_ppm,
                    "units": p.units,
                    "awarded": 0,
                }
                for p in doc.prizes
            ],
        )
        return load(conn, group_id, doc.code)


def load(conn: Connection, group_id: str, code: str) -> Pool:
    """The pool and its prizes (their `awarded` as of this read); NotFoundError if none."""
    row = conn.execute(
        text("SELECT * FROM prize_pools WHERE group_id = :g AND code = :c"),
        {"g": group_id, "c": code},
    ).first()
    if row is None:
        raise NotFoundError(f"pool: no prize pool {code!r}")
    prizes = conn.execute(
        text("""SELECT prize_code, name_zh, name_en, sku, location_id, odds_ppm, units, awarded
                FROM prize_pool_prizes WHERE group_id = :g AND pool_code = :c
                ORDER BY prize_code"""),
        {"g": group_id, "c": code},
    ).all()
    return Pool(
        row.code,
        row.name_zh,
        row.name_en,
        stored_time(row.starts_at),
        stored_time(row.ends_at),
        stored_time(row.claim_until),
        row.entry,
        tuple(json.loads(row.scenes)) if row.scenes else (),
        None if row.min_paid_fen is None else int(row.min_paid_fen),
        None if row.points is None else int(row.points),
        row.campaign,
        int(row.per_member),
        row.seed_sha256,
        bytes.fromhex(row.seed),
        None if row.revealed_at is None else stored_time(row.revealed_at),
        tuple(
            Prize(
                p.prize_code,
                p.name_zh,
                p.name_en,
                p.sku,
                p.location_id,
                int(p.odds_ppm),
                int(p.units),
                int(p.awarded),
            )
            for p in prizes
        ),
    )


def reveal(engine: Engine, group_id: str, code: str, at: datetime | None = None) -> Pool:
    """Publish the seed, once the pool has ended (before, draws could be foreseen)."""
    now = as_stored(at) if at is not None else stored_now()
    with engine.begin() as conn:
        pool = load(conn, group_id, code)
        if now < pool.ends_at:
            raise PoolStillOpen(f"code: pool {code} runs until {pool.ends_at.isoformat()}")
        conn.execute(
            text("""UPDATE prize_pools SET revealed_at = :now
                    WHERE group_id = :g AND code = :c AND revealed_at IS NULL"""),
            {"g": group_id, "c": code, "now": now},
        )
        return load(conn, group_id, code)


def listed(conn: Connection, group_id: str, limit: int = 50, offset: int = 0) -> list[Pool]:
    """The group's pools, the newest first (then by code), a page at a time."""
    codes = conn.execute(
        text("""SELECT code FROM prize_pools WHERE group_id = :g
                ORDER BY created_at DESC, code LIMIT :n OFFSET :o"""),
        {"g": group_id, "n": limit, "o": offset},
    ).scalars()
    return [load(conn, group_id, c) for c in list(codes)]


def counted(conn: Connection, group_id: str) -> int:
    found = conn.execute(
        text("SELECT COUNT(*) FROM prize_pools WHERE group_id = :g"), {"g": group_id}
    ).scalar()
    return int(found or 0)


def draw_counts(conn: Connection, group_id: str, code: str) -> dict[str, int]:
    """The pool's draws by outcome (won, no_prize, sold_out), and its members who drew."""
    rows = conn.execute(
        text("""SELECT outcome, COUNT(*) AS n FROM prize_draws
                WHERE group_id = :g AND pool_code = :c GROUP BY outcome"""),
        {"g": group_id, "c": code},
    ).all()
    out = {str(r.outcome): int(r.n) for r in rows}
    out["members"] = int(
        conn.execute(
            text("""SELECT COUNT(*) FROM prize_pool_entrants
                    WHERE group_id = :g AND pool_code = :c AND draws > 0"""),
            {"g": group_id, "c": code},
        ).scalar()
        or 0
    )
    return out


def winners(conn: Connection, group_id: str, code: str, prize_code: str | None = None) -> list[int]:
    """The members behind a prize's `awarded` (every prize's when none is named): the
    members of the pool's won draws, in id order."""
    prize = "" if prize_code is None else " AND prize_code = :p"
    rows = conn.execute(
        text(f"""SELECT DISTINCT member_id FROM prize_draws WHERE group_id = :g
                 AND pool_code = :c AND outcome = 'won'{prize} ORDER BY member_id"""),
        {"g": group_id, "c": code, "p": prize_code},
    ).scalars()
    return [int(m) for m in rows]
