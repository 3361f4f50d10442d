"""Request and response bodies of the /v1 API (the OpenAPI document is built from them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


MAX_ID = 2**63 - 1  # BIGINT
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]*$")]
# No control characters in a name or label; PostgreSQL refuses NUL in text and in JSON alike
PLAIN = r"^[^\x00-\x1f]*$"


def _without_nul(value: dict[str, JsonValue]) -> dict[str, JsonValue]:
    def walk(node: JsonValue) -> None:
        if isinstance(node, str):
            if "\x00" in node:
                raise ValueError("must not contain the NUL character (\\u0000)")
        elif isinstance(node, dict):
            for key, item in node.items():
                walk(key)
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(value)
    return value


# A JSON document stored as given (a segment rule, a tag's definition)
Document = Annotated[dict[str, JsonValue], AfterValidator(_without_nul)]


class IdentityOut(BaseModel):
    identity_id: int
    type: str
    scope: str = Field(
        description="Where the value is unique: a card's brand, an openid's app, ...; "
        "'' for global types and the default scope."
    )
    value: str = Field(description="In the clear for roles allowed to see it, else masked.")
    masked: bool
    verified: bool
    channel: str
    first_seen: datetime
    last_seen: datetime


class MemberOut(BaseModel):
    member_id: int
    status: str
    registered_at: datetime
    name: str | None
    gender: str | None
    birth_date: str | None
    city: str | None
    home_store_id: str | None
    identities: list[IdentityOut]
    tiers: list[dict[str, Any]] | None = Field(
        default=None, description="The profile only (not the lookup): tier per scope."
    )
    balances: dict[str, int] | None = Field(
        default=None, description="The profile only: points and stored value (fen)."
    )


class BindIn(Strict):
    type: str = Field(min_length=1, max_length=32, pattern=r"^[^\x00-\x1f]*$")
    value: str = Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]*$")
    channel: str = Field(min_length=1, max_length=32, pattern=r"^[^\x00-\x1f]*$")
    verified: bool = False
    observed_at: datetime | None = None
    scope: str | None = Field(
        default=None,
        max_length=64,
        description="Where the value is unique: a card's brand (default: the member's "
        "brand), an openid's appid, a WeCom corp id, ...; default '' for other types.",
    )


class BindOut(BaseModel):
    member_id: int
    identity_id: int
    merges: list[int]
    conflicts: list[str]


class MergeIn(Strict):
    member_ids: list[Id] = Field(min_length=2, max_length=2)
    reason: Text


class MergeOut(BaseModel):
    merge_id: int
    survivor_id: int


class UndoIn(Strict):
    reason: Text


class UndoOut(BaseModel):
    merge_id: int
    restored_member_id: int
    identities_moved_back: int
    links_blocked: int


class BatchIn(Strict):
    items: list[dict[str, Any]] = Field(min_length=1, max_length=1000)


class ItemResult(BaseModel):
    index: int
    id: str | None
    status: str = Field(
        description="created, duplicate (already there: nothing applied) or rejected"
    )
    errors: list[dict[str, str]] = []


class BatchOut(BaseModel):
    created: int
    duplicate: int
    rejected: int
    items: list[ItemResult]


# --- the loyalty ledger ------------------------------------------------------------
Amount = Annotated[int, Field(ge=1, le=10**12)]
Ref = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]*$")]
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]*$")]


class PresentedIn(Strict):
    """An identifier of the member shown at the till: the card scanned or the phone
    typed in. Personal data: never stored with the posting, never logged."""

    type: Literal["card", "phone"]
    value: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]*$")]


class Where(Strict):
    """Where a posting happens: a store key must name one of its stores, a channel key
    its channel (it is filled in when left out). A store key posting for a member who is
    not its own (registered or ordered at its stores) must show `presented`."""

    store_id: Code | None = None
    channel: Code | None = None
    presented: PresentedIn | None = Field(
        default=None,
        description="The member's card or phone presented at the till (store keys).",
    )
    reason: Annotated[str, Field(max_length=500, pattern=r"^[^\x00-\x1f]*$")] | None = None


class EarnIn(Where):
    points: Amount | None = Field(
        default=None,
        description="Points to issue; leave out to earn what `order_id` earns by the rules.",
    )
    order_id: Ref | None = None
    expires_at: datetime | None = Field(
        default=None, description="Default: the end of the year after this one."
    )


class SpendIn(Where):
    points: Amount
    order_id: Ref | None = None


class AdjustIn(Where):
    points: Annotated[int, Field(ge=-(10**12), le=10**12, description="Non-zero; signed.")]
    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f]*$")]
    expires_at: datetime | None = None


class TopUpIn(Where):
    paid_fen: Amount
    bonus_fen: Annotated[int, Field(ge=0, le=10**12)] = 0
    payment_ref: Ref | None = None


class PayIn(Where):
    amount_fen: Amount
    order_id: Ref | None = None


class RefundIn(Where):
    top_up_posting_id: Id


class BalancesOut(BaseModel):
    member_id: int
    points: int = Field(description="Spendable now: points past their date never count.")
    stored_value_fen: int = Field(description="principal + bonus")
    stored_value_principal_fen: int
    stored_value_bonus_fen: int
    points_expiring: list[dict[str, Any]] = Field(
        description="[{expires_at, points}] of the lots still to expire, soonest first"
    )


class PostingOut(BaseModel):
    posting_id: int
    kind: str
    member_id: int
    created_at: datetime = Field(description="When the ledger recorded the posting.")
    business_at: datetime = Field(
        description="When it happened: the order's or refund's time, else when recorded."
    )
    balances: dict[str, int] | None = Field(
        description="After the posting; null when the caller may not read the member's "
        "balances (a store posting for a member present at its till)."
    )
    detail: dict[str, Any]


class EntryOut(BaseModel):
    entry_id: int
    posting_id: int
    kind: str
    asset: str
    amount: int
    balance_after: int
    business_at: datetime = Field(
        description="When it happened (the order's or refund's time); statements sort by it."
    )
    created_at: datetime = Field(description="When the ledger recorded it.")
    reference: str | None
    store_id: str | None
    channel: str | None


class StatementOut(BaseModel):
    member_id: int
    entries: list[EntryOut]
    next_before: int | None = Field(description="Pass as `before` for the next page.")


class RulesOut(BaseModel):
    version: int = Field(description="0 while the group runs on the defaults")
    rules: dict[str, Any]


class TierOut(BaseModel):
    scope: str = Field(description="'*' for the whole group, else a brand id")
    tier: str
    since: datetime
    grace_until: datetime | None


# --- inventory -----------------------------------------------------------------------
Units = Annotated[int, Field(ge=1, le=10_000)]
MOVE_KINDS = ("receive", "sale", "return", "transfer_in", "transfer_out", "adjustment")


class StockIn(Strict):
    """Either a count (`on_hand`: what is on the shelf) or a movement (`delta` with its
    `kind`)."""

    on_hand: Annotated[int, Field(ge=0, le=10**9)] | None = None
    delta: Annotated[int, Field(ge=-(10**9), le=10**9)] | None = None
    kind: (
        Literal["receive", "sale", "return", "transfer_in", "transfer_out", "adjustment"] | None
    ) = None
    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f]*$")]


class StockOut(BaseModel):
    sku: str
    location_id: str
    on_hand: int
    reserved: int
    available: int
    movement: str
    delta: int


class LocationStock(BaseModel):
    location_id: str
    city: str
    on_hand: int
    reserved: int
    available: int


class InventoryOut(BaseModel):
    sku: str
    locations: list[LocationStock]
    channels: dict[str, int] = Field(description="available to promise per online channel")


class ReservationLineIn(Strict):
    sku: Code
    qty: Units


class ReservationIn(Strict):
    order_id: Ref
    lines: list[ReservationLineIn] = Field(min_length=1, max_length=100)
    city: Code | None = Field(default=None, description="The buyer's city: served there first.")
    lat_e6: Annotated[int, Field(ge=-90_000_000, le=90_000_000)] | None = None
    lon_e6: Annotated[int, Field(ge=-180_000_000, le=180_000_000)] | None = None
    ttl_seconds: Annotated[int, Field(ge=10, le=86_400)] = 900


class ReservationOut(BaseModel):
    reservation_id: int
    order_id: str
    channel: str
    status: str
    expires_at: datetime
    lines: list[dict[str, Any]]


class StockLocationIn(Strict):
    """A store's location (`store_id`: its store key counts and moves its stock) or a
    warehouse (no store: HQ only)."""

    kind: Literal["store", "warehouse"]
    store_id: Code | None = None
    city: Code
    lat_e6: Annotated[int, Field(ge=-90_000_000, le=90_000_000)] | None = None
    lon_e6: Annotated[int, Field(ge=-180_000_000, le=180_000_000)] | None = None


class StockLocationOut(BaseModel):
    location_id: str
    kind: str
    store_id: str | None
    city: str
    lat_e6: int | None
    lon_e6: int | None


class ChannelLocationIn(Strict):
    safety_stock: Annotated[int, Field(ge=0, le=10**9)] | None = Field(
        default=None,
        description="Units the channel holds back from every SKU's ATP (the channel's, not "
        "the location's); left out, it stays as it is (0 when never set).",
    )


class ChannelLocationsOut(BaseModel):
    channel: str
    locations: list[str] = Field(description="Every location the channel ships from.")
    safety_stock: int
