"""Member records as probabilistic matching compares them, read from the store.

One record per active member: the profile (name and its parts, birth date, city,
address, postcode) and the member's newest phone, e-mail, device and nickname. Personal
values are decrypted here, in memory only, for the engine to compare; they are never
written back, logged or returned to a face (the review queue shows masks).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, text

from siyu.privacy import Vault
from siyu.store.dialect import dialect_of

RAW_SCHEMA = pa.schema(
    [
        ("record_id", pa.int64()),
        ("given_name", pa.string()),
        ("family_name", pa.string()),
        ("name", pa.string()),
        ("birth_date", pa.date32()),
        ("city", pa.string()),
        ("postcode", pa.string()),
        ("address", pa.string()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("nickname", pa.string()),
        ("device_id", pa.string()),
    ]
)

# The member columns and the Vault context each encrypted one was written with.
_PROFILE = """SELECT member_id, name_enc, given_name_enc, family_name_enc, address_enc,
    birth_date, city, postcode FROM members
    WHERE group_id = :g AND status = 'active' {only} ORDER BY member_id"""
# Per member, the newest identity of each compared type: its own, or one linked to its
# own (a weak identifier such as an e-mail typed by two records of one person belongs to
# one member only, but both records were seen with it). Nicknames are kept only as a
# keyed hash, which is all an exact comparison needs.
_COMPARED = "('phone', 'email', 'device_id', 'nickname')"
_IDENTS = f"""{{wanted}}SELECT member_id, type, value, value_enc, value_key FROM (
    SELECT i.member_id, i.type, i.value, i.value_enc, i.value_key, i.last_seen, i.identity_id
    FROM {{members_i}} WHERE i.group_id = :g AND i.member_id IS NOT NULL
      AND i.type IN {_COMPARED}
    UNION ALL
    SELECT i.member_id, j.type, j.value, j.value_enc, j.value_key, j.last_seen, j.identity_id
    FROM {{members_i}} {{join}} identity_links l
        ON l.group_id = i.group_id AND l.identity_a = i.identity_id
    JOIN identities j ON j.identity_id = l.identity_b
    WHERE i.group_id = :g AND i.member_id IS NOT NULL AND j.type IN {_COMPARED}
      AND NOT l.blocked
    UNION ALL
    SELECT i.member_id, j.type, j.value, j.value_enc, j.value_key, j.last_seen, j.identity_id
    FROM {{members_i}} {{join}} identity_links l ON l.identity_b = i.identity_id
    JOIN identities j ON j.identity_id = l.identity_a
    WHERE i.group_id = :g AND i.member_id IS NOT NULL AND j.type IN {_COMPARED}
      AND NOT l.blocked
    ) seen ORDER BY member_id, type, last_seen, identity_id"""
# A few members' records (an incremental match) are read from their ids outwards: the ids
# are a CTE joined first (CROSS JOIN fixes SQLite's join order). With `member_id IN (...)`
# instead, SQLite's planner (no statistics) scanned the group's identities by the
# (group, type) index once the list held a hundred ids: 2.6 s a call at a million members.
_CHUNK = 50_000


def load_records(
    conn: Connection, vault: Vault, group_id: str, member_ids: Iterable[int] | None = None
) -> pa.Table:
    """RAW_SCHEMA records of the group's active members (or of `member_ids` only)."""
    ids = None if member_ids is None else sorted({int(m) for m in member_ids})
    if ids is not None and not ids:
        return RAW_SCHEMA.empty_table()
    listed = "" if ids is None else ",".join(map(str, ids))
    only = "" if ids is None else f"AND member_id IN ({listed})"
    join = "JOIN" if ids is None else dialect_of(conn).staged_join
    wanted = (
        "" if ids is None else f"WITH wanted(member_id) AS (VALUES ({'),('.join(map(str, ids))})) "
    )
    members_i = (
        "identities i"
        if ids is None
        else f"wanted w {join} identities i ON i.member_id = w.member_id"
    )
    newest: dict[tuple[int, str], str] = {}
    # yield_per on the statement, not the connection: on a connection it would stay set
    # and turn the caller's later statements into server-side cursors (PostgreSQL refuses
    # an executemany on one)
    result = conn.execute(
        text(_IDENTS.format(wanted=wanted, members_i=members_i, join=join)).execution_options(
            yield_per=_CHUNK
        ),
        {"g": group_id},
    )
    for member_id, type_, value, enc, key in result:
        # rows come oldest first, so the last one written per (member, type) is the newest
        newest[(member_id, type_)] = _identity_value(vault, type_, value, enc, key)
    cols: dict[str, list[Any]] = {f.name: [] for f in RAW_SCHEMA}
    rows = conn.execute(
        text(_PROFILE.format(only=only)).execution_options(yield_per=_CHUNK), {"g": group_id}
    )
    for member_id, name, given, family, address, birth, city, postcode in rows:
        cols["record_id"].append(member_id)
        cols["name"].append(_clear(vault, name, "name"))
        cols["given_name"].append(_clear(vault, given, "given_name"))
        cols["family_name"].append(_clear(vault, family, "family_name"))
        cols["address"].append(_clear(vault, address, "address"))
        cols["birth_date"].append(_date(birth))
        cols["city"].append(city)
        cols["postcode"].append(postcode)
        for type_ in ("phone", "email", "nickname", "device_id"):
            cols[type_].append(newest.get((member_id, type_)))
    return pa.table(cols, schema=RAW_SCHEMA)


def _date(value: Any) -> date | None:
    """SQLite hands a text() query's dates back as ISO strings."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _clear(vault: Vault, blob: Any, context: str) -> str | None:
    return None if blob is None else vault.decrypt(bytes(blob), context)


def _identity_value(vault: Vault, type_: str, value: Any, enc: Any, key: str) -> str:
    if value is not None:
        return str(value)
    if enc is not None:
        return vault.decrypt(bytes(enc), type_)
    return key  # hashed types (nickname): equal keys mean equal values
