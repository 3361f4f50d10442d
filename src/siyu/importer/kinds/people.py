"""Members and their identities: the kinds that feed OneID."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection

from siyu.identity.ingest import (
    Encoded,
    ObservationBuffer,
    encode_column,
    scope_column,
)
from siyu.identity.names import compose_name, split_name
from siyu.identity.records import (
    Written,
    follow_merges,
    merge_duplicate_records,
    move_to_new_cards,
)
from siyu.importer.batch import Batch, Context
from siyu.importer.fields import Field
from siyu.importer.kinds.base import (
    CHANNEL,
    ID_TYPES,
    Kind,
    insert_select,
    reject_changed,
    reject_unknown_card_brands,
    stage_accepted,
    text_field,
)
from siyu.privacy import Vault, mask_name
from siyu.store.bulk import unstage
from siyu.store.dialect import GROUP, dialect_of


def _encode_pair(ctx: Context, batch: Batch, type_name: str, field: str) -> list[Encoded | None]:
    values = batch.values(field)
    encoded, errors = encode_column(ctx.encoder, [type_name] * len(values), values, field)
    for i, rule in enumerate(errors):
        if rule is not None:
            batch.reject(i, field, rule)
    return encoded


# Identifiers a member record may carry (each field is named as its identity type).
_MEMBER_IDS = ("card", "phone", "email")
# Fields that are personal data in the clear: never staged (the store gets ciphertexts).
_PERSONAL = ("name", "given_name", "family_name", "address", "phone", "email")
_POSTCODE = re.compile(r"[A-Za-z0-9 \-]{1,16}")


def _check_members(ctx: Context, batch: Batch) -> None:
    batch.check_reference("brand_id", ctx.brands, "brand")
    batch.check_reference("home_store_id", ctx.stores, "store")
    no_id = np.array(
        [
            c is None and p is None
            for c, p in zip(batch.values("card"), batch.values("phone"), strict=True)
        ]
    )
    batch.reject_where(no_id, "card", "a member needs a card or a phone (or both)")
    for field in _MEMBER_IDS:
        batch.derived[field] = _encode_pair(ctx, batch, field, field)
    postcodes = batch.values("postcode")
    for i, code in enumerate(postcodes):
        if code is not None and not _POSTCODE.fullmatch(code):
            batch.reject(i, "postcode", "must be 1-16 letters, digits, spaces or '-'")
    batch.columns["postcode"] = pc.utf8_upper(batch.columns["postcode"])


def _profile(vault: Vault, batch: Batch) -> dict[str, pa.Array]:
    """The name, its parts and the address as ciphertexts (and the name's mask), per row.
    A name missing is composed from its parts; parts missing are split from the name."""
    ok = batch.ok
    out: dict[str, list[object]] = {
        c: [] for c in ("name_enc", "name_masked", "given_name_enc", "family_name_enc")
    }
    columns = zip(*(batch.values(c) for c in ("name", "given_name", "family_name")), strict=True)
    for i, (name, given, family) in enumerate(columns):
        if not ok[i]:
            name = given = family = None
        elif name is None:
            name = compose_name(given, family)
        elif given is None and family is None:
            given, family = split_name(name)
        out["name_enc"].append(None if name is None else vault.encrypt(name, "name"))
        out["name_masked"].append(None if name is None else mask_name(name))
        out["given_name_enc"].append(None if given is None else vault.encrypt(given, "given_name"))
        out["family_name_enc"].append(
            None if family is None else vault.encrypt(family, "family_name")
        )
    addresses = [
        None if a is None or not ok[i] else vault.encrypt(a, "address")
        for i, a in enumerate(batch.values("address"))
    ]
    arrays = {
        k: pa.array(v, pa.string() if k == "name_masked" else pa.binary()) for k, v in out.items()
    }
    return {**arrays, "address_enc": pa.array(addresses, pa.binary())}


def _load_members(conn: Connection, ctx: Context, batch: Batch) -> int:
    # Shared side of OneID's group lock (as an attach): a batch resolution waits for us.
    dialect_of(conn).advisory_lock(conn, "siyu.oneid", ctx.group_id, shared=True)
    ids: dict[str, list[Encoded | None]] = {f: batch.derived[f] for f in _MEMBER_IDS}
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    staged = stage_accepted(
        conn,
        "members",
        batch,
        {
            **_profile(ctx.encoder.vault, batch),
            "now": pa.array([now] * len(batch), pa.timestamp("s")),
        },
        omit=_PERSONAL,
    )
    compare = ("brand_id", "registered_at", "gender", "birth_date", "city", "home_store_id")
    reject_changed(
        conn, ctx, batch, staged, "members", {"member_ref": "source_ref"}, compare, "member"
    )
    written = Written.start(conn)
    n = insert_select(
        conn,
        "members",
        "group_id, status, source_ref, brand_id, registered_at, name_enc, name_masked, gender, "
        "birth_date, city, home_store_id, given_name_enc, family_name_enc, address_enc, "
        "postcode, created_at, updated_at",
        f"{GROUP}, 'active', s.member_ref, s.brand_id, s.registered_at, s.name_enc, s.name_masked, "
        "s.gender, s.birth_date, s.city, s.home_store_id, s.given_name_enc, s.family_name_enc, "
        "s.address_enc, s.postcode, s.now, s.now",
        ctx.group_id,
        staged.name,
        "group_id, source_ref",
    )
    unstage(conn, staged)
    new_identities, new_links = _observe(conn, ctx, batch, ids)
    written = written.end(conn)
    follow_merges(conn, ctx.group_id, written)
    moved, move_links = move_to_new_cards(conn, ctx.group_id, written)
    records = pa.table(
        {
            "member_ref": batch.columns["member_ref"],
            "card_key": pa.array([e.key if e else None for e in ids["card"]], pa.string()),
            "phone_key": pa.array([e.key if e else None for e in ids["phone"]], pa.string()),
        }
    ).filter(pa.array(batch.ok))
    merged = merge_duplicate_records(conn, ctx.group_id, written, records)
    ctx.count(identities=new_identities, links=new_links + move_links, merged=merged, moved=moved)
    return n


def _observe(
    conn: Connection, ctx: Context, batch: Batch, ids: dict[str, list[Encoded | None]]
) -> tuple[int, int]:
    """Each accepted record's identifiers, observed with its member_ref and linked to
    one another; returns (new identities, new links)."""
    buf = ObservationBuffer(ctx.encoder)
    refs, brands, channels, times = (
        batch.values(c) for c in ("member_ref", "brand_id", "channel", "registered_at")
    )
    for i in np.flatnonzero(batch.ok):
        card, phone, email = ids["card"][i], ids["phone"][i], ids["email"][i]
        for ident in (card, phone, email):
            if ident is not None:
                buf.observe(ident, channels[i], times[i], brand_id=brands[i], member_ref=refs[i])
        if card is not None and phone is not None:
            # Typed at the till: unverified, which is why a shared family phone here
            # cannot outweigh a WeChat-verified account.
            buf.link(card, phone, channels[i], times[i], verified=False)
        if email is not None:
            # To the card when there is one: it names the record; a phone may be a family's.
            own = card if card is not None else phone
            if own is not None:
                buf.link(own, email, channels[i], times[i], verified=False)
    return buf.flush(conn, ctx.group_id)


# --- identities ------------------------------------------------------------------------


def _check_identities(ctx: Context, batch: Batch) -> None:
    lt, lv = batch.values("linked_type"), batch.values("linked_value")
    half = np.array([(a is None) != (b is None) for a, b in zip(lt, lv, strict=True)])
    batch.reject_where(half, "linked_value", "linked_type and linked_value come together")
    for field, type_field in (("value", "type"), ("linked_value", "linked_type")):
        _, errors = encode_column(ctx.encoder, batch.values(type_field), batch.values(field), field)
        for i, rule in enumerate(errors):
            if rule is not None:
                batch.reject(i, field, rule)
    batch.check_reference("brand_id", ctx.brands, "brand")
    # Each identifier in its scope: a card in its brand (scope, else the row's brand_id),
    # an openid in its app, ...; the resolved scopes are what the load writes.
    for scope_field, type_field in (("scope", "type"), ("linked_scope", "linked_type")):
        types = batch.columns[type_field]
        scopes, broken = scope_column(types, batch.columns[scope_field], batch.columns["brand_id"])
        for i, exc in broken:
            batch.reject(i, scope_field if exc.field == "scope" else exc.field, exc.rule)
        reject_unknown_card_brands(ctx, batch, types, scopes, scope_field)
        batch.derived[scope_field] = scopes.to_pylist()


def _load_identities(conn: Connection, ctx: Context, batch: Batch) -> int:
    buf = ObservationBuffer(ctx.encoder)
    enc = ctx.encoder
    scopes, linked_scopes = batch.derived["scope"], batch.derived["linked_scope"]
    cols = {
        c: batch.values(c)
        for c in (
            "type",
            "value",
            "linked_type",
            "linked_value",
            "channel",
            "observed_at",
            "verified",
            "brand_id",
        )
    }
    for i in np.flatnonzero(batch.ok):
        ident = enc.encode(cols["type"][i], cols["value"][i]).in_scope(scopes[i])
        ch, at, ver = cols["channel"][i], cols["observed_at"][i], cols["verified"][i]
        buf.observe(ident, ch, at, ver, cols["brand_id"][i])
        if cols["linked_type"][i] is not None:
            other = enc.encode(cols["linked_type"][i], cols["linked_value"][i], "linked_value")
            other = other.in_scope(linked_scopes[i])
            buf.observe(other, ch, at, ver, cols["brand_id"][i])
            buf.link(ident, other, ch, at, ver)
    new_identities, new_links = buf.flush(conn, ctx.group_id)
    return new_identities + new_links


KINDS: tuple[Kind, ...] = (
    Kind(
        "members",
        (
            text_field("member_ref", True, 128),
            text_field("brand_id", True, 64),
            Field("registered_at", "timestamp", required=True, when="business"),
            CHANNEL,
            text_field("card", max_len=64),
            text_field("phone", max_len=32),
            text_field("name", max_len=64),
            Field("gender", "enum", choices=("f", "m", "u")),
            Field("birth_date", "date", when="birth"),
            text_field("city", max_len=64),
            text_field("home_store_id", max_len=64),
            text_field("given_name", max_len=64),
            text_field("family_name", max_len=64),
            text_field("email", max_len=254),
            text_field("address", max_len=200),
            text_field("postcode", max_len=64),  # the rule (1-16 ...) names its own limit
        ),
        _check_members,
        _load_members,
        record_key=("member_ref",),
        analyse=("members", "identities", "identity_links"),
    ),
    Kind(
        "identities",
        (
            Field("type", "enum", required=True, choices=ID_TYPES),
            text_field("value", True, 256),
            CHANNEL,
            Field("observed_at", "timestamp", required=True, when="business"),
            Field("verified", "bool", default=False),
            Field("linked_type", "enum", choices=ID_TYPES),
            text_field("linked_value", max_len=256),
            text_field("brand_id", max_len=64),
            # where each value is unique (identity/types.py): a card's brand (default:
            # brand_id), an openid's appid, a WeCom corp id, ...; default '' otherwise
            text_field("scope", max_len=64),
            text_field("linked_scope", max_len=64),
        ),
        _check_identities,
        _load_identities,
        analyse=("identities", "identity_links"),
    ),
)
