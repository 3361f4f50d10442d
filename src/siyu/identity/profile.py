"""A member's profile as people see it: the member and its identities in one query, and
the rendering that shows personal data in the clear only to roles that may see it.

Shared by the API (`/v1/members/...`) and the console (Member 360).
"""

from __future__ import annotations

from typing import Any

from siyu.auth.principal import Principal
from siyu.privacy import Vault
from siyu.store.reads import Sql
from siyu.store.times import as_utc

# The member and all its identities in one round trip: one row per identity (at least
# one, the identity looked up). The identity columns are prefixed to keep them apart.
_MEMBER_AND_IDENTITIES = """SELECT m.member_id, m.status, m.registered_at, m.name_enc,
    m.name_masked, m.gender, m.birth_date, m.city, m.home_store_id,
    j.identity_id AS i_id, j.type AS i_type, j.scope AS i_scope, j.value AS i_value,
    j.value_enc AS i_enc,
    j.value_masked AS i_masked, j.verified AS i_verified, j.source_channel AS i_channel,
    j.first_seen AS i_first, j.last_seen AS i_last"""
# The holders of an identifier in scope :s, or in any scope when :s is NULL (a card
# number typed without its brand): then several members may answer, one after the other.
LOOKUP = Sql(
    _MEMBER_AND_IDENTITIES
    + """ FROM members m
    JOIN identities j ON j.group_id = m.group_id AND j.member_id = m.member_id
    WHERE m.member_id IN (
        SELECT i.member_id FROM identities i
        WHERE i.group_id = :g AND i.type = :t AND i.value_key = :k
          AND (CAST(:s AS VARCHAR(64)) IS NULL OR i.scope = :s))
    ORDER BY m.member_id, j.first_seen, j.identity_id LIMIT 500"""
)
PROFILE = Sql(
    _MEMBER_AND_IDENTITIES
    + """ FROM members m
    LEFT JOIN identities j ON j.group_id = m.group_id AND j.member_id = m.member_id
    WHERE m.group_id = :g AND m.member_id = :m
    ORDER BY j.first_seen, j.identity_id LIMIT 500"""
)


def shown_identity(
    vault: Vault, clear: bool, type_: str, value: Any, enc: Any, masked: Any
) -> tuple[str, bool]:
    """An identity's value as a person may see it, and whether it is masked: the clear
    value of a type that is not personal data, the decrypted one for roles that see
    personal data (`clear`), else the mask. The console's member lists use it too."""
    if value is not None:
        return str(value), False
    if clear and enc is not None:
        return vault.decrypt(bytes(enc), type_), False
    return str(masked), True


def render_profile(vault: Vault, who: Principal, rows: list[Any]) -> dict[str, Any]:
    """The profile as the response model's dict (FastAPI validates it once, on the way
    out), personal data in the clear only for roles that may see it."""
    clear = who.sees_personal_data
    identities = []
    for r in rows:
        if r.i_id is None:  # a member without identities (LEFT JOIN)
            continue
        shown, masked = shown_identity(vault, clear, r.i_type, r.i_value, r.i_enc, r.i_masked)
        identities.append(
            {
                "identity_id": r.i_id,
                "type": r.i_type,
                "scope": r.i_scope,
                "value": shown,
                "masked": masked,
                "verified": bool(r.i_verified),
                "channel": r.i_channel,
                "first_seen": as_utc(r.i_first),
                "last_seen": as_utc(r.i_last),
            }
        )
    m = rows[0]
    if m.name_enc is not None and clear:
        name: str | None = vault.decrypt(bytes(m.name_enc), "name")
    else:
        name = m.name_masked
    birth = m.birth_date if clear else None
    return {
        "member_id": m.member_id,
        "status": m.status,
        "registered_at": as_utc(m.registered_at),
        "name": name,
        "gender": m.gender,
        # Raw SQL on SQLite returns dates as text; PostgreSQL returns date objects.
        "birth_date": str(birth)[:10] if birth is not None else None,
        "city": m.city,
        "home_store_id": m.home_store_id,
        "identities": identities,
    }
