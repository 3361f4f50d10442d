"""Record identifiers and the links between them, in bulk, set-wise.

Importers and (later) channel adapters hand over *observations*: an identifier seen on a
channel at a time, perhaps for a legacy member, perhaps linked to another identifier.
Nothing here decides who is who; that is `resolve`'s job.

An identifier is (type, scope, value): every write and every join below names all three,
so a card number of two brands or an openid of two apps is two identities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

from siyu.errors import ValidationError
from siyu.identity.types import IDENTITY_TYPES, mask, normalise, phone_hash_of, scope_of
from siyu.privacy import Vault
from siyu.store.bulk import stage, unstage
from siyu.store.dialect import GROUP, dialect_of

OBSERVATION_SCHEMA = pa.schema(
    [
        ("type", pa.string()),
        ("scope", pa.string()),
        ("value_key", pa.string()),
        ("value", pa.string()),
        ("value_enc", pa.binary()),
        ("value_masked", pa.string()),
        ("brand_id", pa.string()),
        ("verified", pa.int16()),
        ("channel", pa.string()),
        ("first_seen", pa.timestamp("s")),
        ("last_seen", pa.timestamp("s")),
        ("member_ref", pa.string()),
    ]
)
LINK_SCHEMA = pa.schema(
    [
        ("type_a", pa.string()),
        ("scope_a", pa.string()),
        ("key_a", pa.string()),
        ("type_b", pa.string()),
        ("scope_b", pa.string()),
        ("key_b", pa.string()),
        ("channel", pa.string()),
        ("verified", pa.int16()),
        ("first_seen", pa.timestamp("s")),
        ("last_seen", pa.timestamp("s")),
    ]
)


@dataclass(frozen=True)
class Encoded:
    """One identifier made safe to store: its keyed hash, clear value if not personal,
    ciphertext if personal but showable, and its mask; and its scope once known (None:
    the scope `ObservationBuffer.observe` gives it, a card's brand or the default '')."""

    type: str
    canonical: str
    key: str
    value: str | None
    enc: bytes | None
    masked: str
    scope: str | None = None

    def in_scope(self, scope: str) -> Encoded:
        """The same value in `scope` (already checked with `types.scope_of`)."""
        return replace(self, scope=scope)


class IdentifierEncoder:
    """Normalises and protects identifiers, caching per batch because buyers repeat."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self._cache: dict[tuple[str, str], Encoded | ValidationError] = {}

    def clear(self) -> None:
        """Forget the cache; called per batch so memory stays bounded on huge files."""
        self._cache.clear()

    def encode(self, type_name: str, raw: str, field: str = "value") -> Encoded:
        cached = self._cache.get((type_name, raw))
        if cached is None:
            try:
                cached = self._encode(type_name, raw, field)
            except ValidationError as exc:
                cached = exc
            self._cache[(type_name, raw)] = cached
        if isinstance(cached, ValidationError):
            raise ValidationError(field, cached.rule, raw)
        return cached

    def encode_canonical(self, type_name: str, canonical: str) -> Encoded:
        kind = IDENTITY_TYPES[type_name].personal
        return Encoded(
            type=type_name,
            canonical=canonical,
            key=self.vault.keyed_hash(canonical),
            value=canonical if kind == "clear" else None,
            enc=self.vault.encrypt(canonical, type_name) if kind == "encrypt" else None,
            masked=mask(type_name, canonical),
        )

    def _encode(self, type_name: str, raw: str, field: str) -> Encoded:
        return self.encode_canonical(type_name, normalise(type_name, raw, field))

    def phone_hash(self, phone: Encoded) -> Encoded:
        """The marketplace hash of a phone: the bridge to Tmall/JD/Douyin accounts."""
        return self.encode_canonical("phone_hash", phone_hash_of(phone.canonical))


class ObservationBuffer:
    """Collects identity observations and links for one batch, then writes them."""

    def __init__(self, encoder: IdentifierEncoder) -> None:
        self.encoder = encoder
        self.obs: dict[str, list[object]] = {f.name: [] for f in OBSERVATION_SCHEMA}
        self.links: dict[str, list[object]] = {f.name: [] for f in LINK_SCHEMA}
        # (type, key) -> the scope it was last observed in: what a link naming an
        # unscoped identifier means (the card of the row's brand, observed just before).
        self._observed: dict[tuple[str, str], str] = {}

    def observe(
        self,
        ident: Encoded,
        channel: str,
        observed_at: object,
        verified: bool = False,
        brand_id: str | None = None,
        member_ref: str | None = None,
        last_seen: object = None,
    ) -> str:
        """Record a sighting (or a span of sightings, first to `last_seen`). An identifier
        without a scope takes its type's default: a card its `brand_id` (ValidationError
        naming brand_id without one), others ''. Returns the scope it was recorded in."""
        last = observed_at if last_seen is None else last_seen
        scope = scope_of(ident.type, ident.scope, brand_id)
        self._observed[(ident.type, ident.key)] = scope
        row = (
            ident.type,
            scope,
            ident.key,
            ident.value,
            ident.enc,
            ident.masked,
            scope if ident.type == "card" else None,  # a card's brand is its scope
            int(verified),
            channel,
            observed_at,
            last,
            member_ref,
        )
        for name, value in zip(self.obs, row, strict=True):
            self.obs[name].append(value)
        if ident.type == "phone":
            # Every phone also stands for its marketplace hash; the link between them is a
            # fact of arithmetic, so it is verified.
            hashed = self.encoder.phone_hash(ident)
            self.observe(hashed, channel, observed_at, verified, None, member_ref, last)
            self.link(ident, hashed, channel, observed_at, verified=True, last_seen=last)
        return scope

    def scope(self, ident: Encoded) -> str:
        """The scope `ident` stands for in this batch: its own, else the one it was last
        observed in, else its type's default."""
        if ident.scope is not None:
            return ident.scope
        observed = self._observed.get((ident.type, ident.key))
        return observed if observed is not None else scope_of(ident.type)

    def link(
        self,
        a: Encoded,
        b: Encoded,
        channel: str,
        observed_at: object,
        verified: bool = False,
        last_seen: object = None,
    ) -> None:
        """Record that `a` and `b` were seen as one account. An identifier without a scope
        is the one observed last in this batch (observe it first)."""
        last = observed_at if last_seen is None else last_seen
        sa, sb = self.scope(a), self.scope(b)
        row = (a.type, sa, a.key, b.type, sb, b.key, channel, int(verified), observed_at, last)
        for name, value in zip(self.links, row, strict=True):
            self.links[name].append(value)

    def flush(self, conn: Connection, group_id: str, widen: bool = True) -> tuple[int, int]:
        """Write what was collected; returns (new identities, new links)."""
        obs = pa.table(self.obs, schema=OBSERVATION_SCHEMA)
        links = pa.table(self.links, schema=LINK_SCHEMA)
        return (
            upsert_identities(conn, group_id, obs, widen),
            upsert_links(conn, group_id, links),
        )


def upsert_identities(conn: Connection, group_id: str, obs: pa.Table, widen: bool = True) -> int:
    """Insert identifiers not seen before; widen first/last seen and verification of known
    ones; give an unassigned identity the legacy member it was registered with. One
    statement, so each identifier costs one probe of the unique index. Returns the number
    of new identities.

    `widen=False` (facts: orders, events) only inserts: a buyer's sightings are the facts
    themselves, and rewriting every repeat buyer's row on each batch doubled the cost of
    an import. OneID's time rules rest on the channels' explicit bindings instead."""
    if obs.num_rows == 0:
        return 0
    before = _max_id(conn, "identities", "identity_id")
    staged = stage(conn, "obs", obs)
    on_conflict = _WIDEN_IDENTITY if widen else "DO NOTHING"
    any_value_enc = dialect_of(conn).any_value("s.value_enc")
    conn.execute(
        text(f"""
        INSERT INTO identities AS cur (group_id, type, scope, value_key, value, value_enc,
            value_masked, brand_id, verified, source_channel, first_seen, last_seen, member_id)
        SELECT {GROUP}, s.type, s.scope, s.value_key, MIN(s.value), {any_value_enc},
            MIN(s.value_masked), MIN(s.brand_id), MAX(s.verified) = 1, MIN(s.channel),
            MIN(s.first_seen), MAX(s.last_seen), MIN(m.member_id)
        FROM {staged.name} s
        LEFT JOIN members m ON m.group_id = :g AND m.source_ref = s.member_ref
        WHERE 1 = 1
        GROUP BY s.type, s.scope, s.value_key
        ON CONFLICT (group_id, type, value_key, scope) {on_conflict}
        """),
        {"g": group_id},
    )
    unstage(conn, staged)
    return _new_since(conn, "identities", "identity_id", before)


_WIDEN_IDENTITY = """DO UPDATE SET
            first_seen = CASE WHEN excluded.first_seen < cur.first_seen
                              THEN excluded.first_seen ELSE cur.first_seen END,
            last_seen = CASE WHEN excluded.last_seen > cur.last_seen
                             THEN excluded.last_seen ELSE cur.last_seen END,
            verified = (cur.verified OR excluded.verified),
            member_id = COALESCE(cur.member_id, excluded.member_id)
        WHERE excluded.first_seen < cur.first_seen OR excluded.last_seen > cur.last_seen
           OR (excluded.verified AND NOT cur.verified)
           OR (cur.member_id IS NULL AND excluded.member_id IS NOT NULL)"""


def upsert_links(conn: Connection, group_id: str, links: pa.Table) -> int:
    """Insert links between known identities (stored low id first); widen known ones.
    Returns the number of new links."""
    if links.num_rows == 0:
        return 0
    before = _max_id(conn, "identity_links", "link_id")
    staged = stage(conn, "links", links)
    conn.execute(
        text(f"""
        INSERT INTO identity_links AS cur (group_id, identity_a, identity_b, channel, verified,
            first_seen, last_seen, blocked)
        SELECT {GROUP}, p.a, p.b, MIN(p.channel), MAX(p.verified) = 1, MIN(p.first_seen),
               MAX(p.last_seen), 1 = 0
        FROM (
            SELECT CASE WHEN ia.identity_id < ib.identity_id
                        THEN ia.identity_id ELSE ib.identity_id END AS a,
                   CASE WHEN ia.identity_id < ib.identity_id
                        THEN ib.identity_id ELSE ia.identity_id END AS b,
                   s.channel, s.verified, s.first_seen, s.last_seen
            FROM {staged.name} s
            JOIN identities ia
              ON ia.group_id = :g AND ia.type = s.type_a AND ia.value_key = s.key_a
             AND ia.scope = s.scope_a
            JOIN identities ib
              ON ib.group_id = :g AND ib.type = s.type_b AND ib.value_key = s.key_b
             AND ib.scope = s.scope_b
            WHERE ia.identity_id <> ib.identity_id
        ) p
        WHERE 1 = 1
        GROUP BY p.a, p.b
        ON CONFLICT (group_id, identity_a, identity_b) DO UPDATE SET
            first_seen = CASE WHEN excluded.first_seen < cur.first_seen
                              THEN excluded.first_seen ELSE cur.first_seen END,
            last_seen = CASE WHEN excluded.last_seen > cur.last_seen
                             THEN excluded.last_seen ELSE cur.last_seen END,
            verified = (cur.verified OR excluded.verified)
        WHERE excluded.first_seen < cur.first_seen OR excluded.last_seen > cur.last_seen
           OR (excluded.verified AND NOT cur.verified)
        """),
        {"g": group_id},
    )
    unstage(conn, staged)
    return _new_since(conn, "identity_links", "link_id", before)


def _max_id(conn: Connection, table: str, column: str) -> int:
    return int(conn.execute(text(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")).scalar_one())


def _new_since(conn: Connection, table: str, column: str, before: int) -> int:
    """Rows added since `before` (ids only grow; a primary-key range scan, not a count of
    the whole table). Concurrent writers' rows would be counted too: a report, not a rule."""
    return int(
        conn.execute(
            text(f"SELECT COUNT(*) FROM {table} WHERE {column} > :b"), {"b": before}
        ).scalar_one()
    )


def encode_column(
    encoder: IdentifierEncoder,
    types: Sequence[str | None],
    values: Sequence[str | None],
    field: str,
) -> tuple[list[Encoded | None], list[str | None]]:
    """Encode a column of identifiers; per row either an Encoded or the rule it broke."""
    out: list[Encoded | None] = []
    errors: list[str | None] = []
    for type_name, raw in zip(types, values, strict=True):
        if type_name is None or raw is None:
            out.append(None)
            errors.append(None)
            continue
        try:
            out.append(encoder.encode(type_name, raw, field))
            errors.append(None)
        except ValidationError as exc:
            out.append(None)
            errors.append(exc.rule)
    return out, errors


@dataclass
class IdentifierColumn:
    """A column of identifiers encoded once per distinct value.

    Facts repeat their buyers (a member orders many times), so each distinct
    (type, scope, value) is normalised and hashed once and mapped back to rows with Arrow's
    `index_in`.
    """

    index: pa.Array  # int32 per row into `encoded`; null where the row names no identifier
    encoded: list[Encoded | None]  # per distinct identifier; None where it broke a rule
    rules: pa.Array  # string per distinct identifier: the rule broken, else null

    @property
    def keys(self) -> pa.Array:
        """value_key per row (null where absent or invalid), for the staging join."""
        per_distinct = pa.array([e.key if e else None for e in self.encoded], pa.string())
        return per_distinct.take(self.index)

    @property
    def scopes(self) -> pa.Array:
        """scope per row (null where absent or invalid), for the staging join."""
        per_distinct = pa.array([e.scope if e else None for e in self.encoded], pa.string())
        return per_distinct.take(self.index)

    def row_errors(self) -> pa.Array:
        return self.rules.take(self.index)


def encode_identifiers(
    encoder: IdentifierEncoder,
    types: pa.Array,
    values: pa.Array,
    field: str,
    scopes: pa.Array | None = None,
) -> IdentifierColumn:
    """Encode a column of identifiers in the `scopes` given per row (from `scope_column`;
    None: each type's default, which a card does not have)."""
    if scopes is None:
        scopes = pa.array([None] * len(types), pa.string())
    # the scope between type and value: neither a type nor a scope holds \x1f
    combined = pc.binary_join_element_wise(types, pc.fill_null(scopes, "\x00"), values, "\x1f")
    distinct = pc.unique(combined).drop_null()
    index = pc.index_in(combined, value_set=distinct)
    encoded: list[Encoded | None] = []
    rules: list[str | None] = []
    for text_value in distinct.to_pylist():
        type_name, scope, raw = text_value.split("\x1f", 2)
        try:
            ident = encoder.encode(type_name, raw, field)
            encoded.append(ident.in_scope(scope_of(type_name, None if scope == "\x00" else scope)))
            rules.append(None)
        except ValidationError as exc:
            encoded.append(None)
            rules.append(exc.rule)
    return IdentifierColumn(index, encoded, pa.array(rules, pa.string()))


def scope_column(
    types: pa.Array, scopes: pa.Array | None, brands: pa.Array | None
) -> tuple[pa.Array, list[tuple[int, ValidationError]]]:
    """The scope each row's identifier is stored in (`types.scope_of`: a card's brand from
    `brands`, else the row's scope or the default ''), and the rows whose scope breaks a
    rule. Worked out once per distinct (type, scope, brand)."""
    n = len(types)
    none = pa.array([None] * n, pa.string())
    parts = [pc.fill_null(c if c is not None else none, "\x00") for c in (types, scopes, brands)]
    combined = pc.binary_join_element_wise(*parts, "\x1f")
    distinct = pc.unique(combined)
    resolved: list[str | None] = []
    broken: list[ValidationError | None] = []
    for text_value in distinct.to_pylist():
        type_name, scope, brand = (None if p == "\x00" else p for p in text_value.split("\x1f"))
        try:
            resolved.append(None if type_name is None else scope_of(type_name, scope, brand))
            broken.append(None)
        except ValidationError as exc:
            resolved.append(None)
            broken.append(exc)
    index = pc.index_in(combined, value_set=distinct)
    at = index.to_numpy(zero_copy_only=False)
    bad = np.array([b is not None for b in broken], dtype=bool)
    errors = []
    for i in np.flatnonzero(bad[at]):
        error = broken[at[i]]
        assert error is not None  # `bad` says so
        errors.append((int(i), error))
    return pa.array(resolved, pa.string()).take(index), errors


def observe_identifiers(
    buf: ObservationBuffer,
    column: IdentifierColumn,
    accepted: np.ndarray,
    times: pa.Array,
    channels: pa.Array,
) -> None:
    """Record one observation per distinct accepted identifier, spanning its first to its
    last sighting in the batch (aggregated in Arrow, not per row in Python)."""
    mask = pa.array(accepted)
    table = pa.table({"i": column.index, "t": times, "c": channels}).filter(mask)
    table = table.filter(pc.is_valid(table.column("i")))
    if table.num_rows == 0:
        return
    spans = table.group_by("i").aggregate([("t", "min"), ("t", "max"), ("c", "min")])
    for i, first, last, channel in zip(
        spans.column("i").to_pylist(),
        spans.column("t_min").to_pylist(),
        spans.column("t_max").to_pylist(),
        spans.column("c_min").to_pylist(),
        strict=True,
    ):
        ident = column.encoded[i]
        if ident is not None:
            buf.observe(ident, channel, first, last_seen=last)
