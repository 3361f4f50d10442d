"""Record identifiers and the links between them, in bulk, set-wise.

Importers and (later) channel adapters hand over *observations*: an identifier seen on a
channel at a time, perhaps for a legacy member, perhaps linked to another identifier.
Nothing here decides who is who; that is `resolve`'s job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
from sqlalchemy import Connection, text

from siyu.errors import ValidationError
from siyu.identity.types import IDENTITY_TYPES, mask, normalise, phone_hash_of
from siyu.privacy import Vault
from siyu.store.bulk import stage, unstage
from siyu.store.dialect import GROUP, any_value

OBSERVATION_SCHEMA = pa.schema(
    [
        ("type", pa.string()),
        ("value_key", pa.string()),
        ("value", pa.string()),
        ("value_enc", pa.binary()),
        ("value_masked", pa.string()),
        ("brand_id", pa.string()),
        ("verified", pa.int16()),
        ("channel", pa.string()),
        ("observed_at", pa.timestamp("s")),
        ("member_ref", pa.string()),
    ]
)
LINK_SCHEMA = pa.schema(
    [
        ("type_a", pa.string()),
        ("key_a", pa.string()),
        ("type_b", pa.string()),
        ("key_b", pa.string()),
        ("channel", pa.string()),
        ("verified", pa.int16()),
        ("observed_at", pa.timestamp("s")),
    ]
)


@dataclass(frozen=True)
class Encoded:
    """One identifier made safe to store: its keyed hash, clear value if not personal,
    ciphertext if personal but showable, and its mask."""

    type: str
    canonical: str
    key: str
    value: str | None
    enc: bytes | None
    masked: str


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

    def observe(
        self,
        ident: Encoded,
        channel: str,
        observed_at: object,
        verified: bool = False,
        brand_id: str | None = None,
        member_ref: str | None = None,
    ) -> None:
        row = (
            ident.type,
            ident.key,
            ident.value,
            ident.enc,
            ident.masked,
            brand_id if ident.type == "card" else None,
            int(verified),
            channel,
            observed_at,
            member_ref,
        )
        for name, value in zip(self.obs, row, strict=True):
            self.obs[name].append(value)
        if ident.type == "phone":
            # Every phone also stands for its marketplace hash; the link between them is a
            # fact of arithmetic, so it is verified.
            hashed = self.encoder.phone_hash(ident)
            self.observe(hashed, channel, observed_at, verified, None, member_ref)
            self.link(ident, hashed, channel, observed_at, verified=True)

    def link(
        self, a: Encoded, b: Encoded, channel: str, observed_at: object, verified: bool = False
    ) -> None:
        row = (a.type, a.key, b.type, b.key, channel, int(verified), observed_at)
        for name, value in zip(self.links, row, strict=True):
            self.links[name].append(value)

    def flush(self, conn: Connection, group_id: str) -> None:
        obs = pa.table(self.obs, schema=OBSERVATION_SCHEMA)
        links = pa.table(self.links, schema=LINK_SCHEMA)
        upsert_identities(conn, group_id, obs)
        upsert_links(conn, group_id, links)


def upsert_identities(conn: Connection, group_id: str, obs: pa.Table) -> int:
    """Insert identifiers not seen before; widen first/last seen and verification of known
    ones; give an unassigned identity the legacy member it was registered with. Returns
    the number of new identities."""
    if obs.num_rows == 0:
        return 0
    staged = stage(conn, "obs", obs)
    s = staged.name
    inserted = conn.execute(
        text(f"""
        INSERT INTO identities (group_id, type, value_key, value, value_enc, value_masked,
            brand_id, verified, source_channel, first_seen, last_seen, member_id)
        SELECT {GROUP}, s.type, s.value_key, MIN(s.value),
            {any_value(conn, "s.value_enc")}, MIN(s.value_masked),
            MIN(s.brand_id), MAX(s.verified) = 1, MIN(s.channel), MIN(s.observed_at),
            MAX(s.observed_at), MIN(m.member_id)
        FROM {s} s LEFT JOIN members m ON m.group_id = :g AND m.source_ref = s.member_ref
        WHERE 1 = 1
        GROUP BY s.type, s.value_key
        ON CONFLICT (group_id, type, value_key) DO NOTHING
        """),
        {"g": group_id},
    ).rowcount
    conn.execute(
        text(f"""
        UPDATE identities SET
            first_seen = CASE WHEN agg.fs < identities.first_seen
                              THEN agg.fs ELSE identities.first_seen END,
            last_seen = CASE WHEN agg.ls > identities.last_seen
                             THEN agg.ls ELSE identities.last_seen END,
            verified = (identities.verified OR agg.v = 1),
            member_id = COALESCE(identities.member_id, agg.m)
        FROM (
            SELECT s.type, s.value_key, MIN(s.observed_at) AS fs, MAX(s.observed_at) AS ls,
                   MAX(s.verified) AS v, MIN(m.member_id) AS m
            FROM {s} s LEFT JOIN members m ON m.group_id = :g AND m.source_ref = s.member_ref
            GROUP BY s.type, s.value_key
        ) agg
        WHERE identities.group_id = :g AND identities.type = agg.type
          AND identities.value_key = agg.value_key
          AND (agg.fs < identities.first_seen OR agg.ls > identities.last_seen
               OR (agg.v = 1 AND NOT identities.verified)
               OR (identities.member_id IS NULL AND agg.m IS NOT NULL))
        """),
        {"g": group_id},
    )
    unstage(conn, staged)
    return int(inserted)


def upsert_links(conn: Connection, group_id: str, links: pa.Table) -> int:
    """Insert links between known identities (stored low id first); widen known ones."""
    if links.num_rows == 0:
        return 0
    staged = stage(conn, "links", links)
    pairs = f"""
        SELECT CASE WHEN ia.identity_id < ib.identity_id
                    THEN ia.identity_id ELSE ib.identity_id END AS a,
               CASE WHEN ia.identity_id < ib.identity_id
                    THEN ib.identity_id ELSE ia.identity_id END AS b,
               s.channel, s.verified, s.observed_at
        FROM {staged.name} s
        JOIN identities ia ON ia.group_id = :g AND ia.type = s.type_a AND ia.value_key = s.key_a
        JOIN identities ib ON ib.group_id = :g AND ib.type = s.type_b AND ib.value_key = s.key_b
        WHERE ia.identity_id <> ib.identity_id
    """
    inserted = conn.execute(
        text(f"""
        INSERT INTO identity_links (group_id, identity_a, identity_b, channel, verified,
            first_seen, last_seen, blocked)
        SELECT {GROUP}, p.a, p.b, MIN(p.channel), MAX(p.verified) = 1, MIN(p.observed_at),
               MAX(p.observed_at), 1 = 0
        FROM ({pairs}) p
        WHERE 1 = 1
        GROUP BY p.a, p.b
        ON CONFLICT (group_id, identity_a, identity_b) DO NOTHING
        """),
        {"g": group_id},
    ).rowcount
    conn.execute(
        text(f"""
        UPDATE identity_links SET
            first_seen = CASE WHEN agg.fs < identity_links.first_seen
                              THEN agg.fs ELSE identity_links.first_seen END,
            last_seen = CASE WHEN agg.ls > identity_links.last_seen
                             THEN agg.ls ELSE identity_links.last_seen END,
            verified = (identity_links.verified OR agg.v = 1)
        FROM (SELECT p.a, p.b, MIN(p.observed_at) AS fs, MAX(p.observed_at) AS ls,
                     MAX(p.verified) AS v
              FROM ({pairs}) p GROUP BY p.a, p.b) agg
        WHERE identity_links.group_id = :g AND identity_links.identity_a = agg.a
          AND identity_links.identity_b = agg.b
          AND (agg.fs < identity_links.first_seen OR agg.ls > identity_links.last_seen
               OR (agg.v = 1 AND NOT identity_links.verified))
        """),
        {"g": group_id},
    )
    unstage(conn, staged)
    return int(inserted)


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
