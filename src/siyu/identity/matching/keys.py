"""Blocking keys in the store, for incremental matching.

The engine's blocking rules say which records are worth comparing (same phone prefix,
same name and birth date, ...). The batch pass writes each active member's keys as keyed
hashes, so a new record finds its candidate members with one indexed lookup per rule,
and no clear value is stored.
"""

from __future__ import annotations

import pyarrow as pa
from sqlalchemy import Connection, text

from siyu.identity.models import member_match_keys
from siyu.privacy import Vault
from siyu.store.bulk import stage, unstage
from siyu.store.dialect import dialect_of

_HASHED = pa.schema([("rule", pa.string()), ("key", pa.string()), ("member_id", pa.int64())])
# A key shared by more members than this blocks nothing (a common name with a missing
# birth date); the engine's rules avoid such keys, and the lookup caps them too.
MAX_CANDIDATES_PER_KEY = 50
FEW_KEYS = 64


def hashed(vault: Vault, keys: pa.Table) -> pa.Table:
    """(record_id, rule, key) -> (rule, keyed hash of rule and key, member_id)."""
    rules = keys.column("rule").to_pylist()
    values = keys.column("key").to_pylist()
    return pa.table(
        {
            "rule": pa.array(rules, pa.string()),
            "key": pa.array(
                [vault.keyed_hash(f"match:{r}\x1f{v}") for r, v in zip(rules, values, strict=True)],
                pa.string(),
            ),
            "member_id": keys.column("record_id").cast(pa.int64()),
        },
        schema=_HASHED,
    )


def write_match_keys(conn: Connection, vault: Vault, group_id: str, keys: pa.Table) -> int:
    """Replace the group's blocking keys with `keys` (the batch pass's, of every active
    member). Returns the rows written."""
    conn.execute(text("DELETE FROM member_match_keys WHERE group_id = :g"), {"g": group_id})
    return add_match_keys(conn, vault, group_id, keys)


def add_match_keys(conn: Connection, vault: Vault, group_id: str, keys: pa.Table) -> int:
    """Add blocking keys (a member registered or matched since the batch pass)."""
    if keys.num_rows == 0:
        return 0
    if keys.num_rows <= FEW_KEYS:
        # one record's keys (an incremental match): a staging table's DDL would cost more
        # than the rows
        rows = [{"group_id": group_id, **row} for row in hashed(vault, keys).to_pylist()]
        insert = dialect_of(conn).insert_ignore(member_match_keys)
        return int(conn.execute(insert, rows).rowcount)
    staged = stage(conn, "mkeys", hashed(vault, keys))
    written = conn.execute(
        text(f"""
        INSERT INTO member_match_keys (group_id, rule, key, member_id)
        SELECT DISTINCT :g, s.rule, s.key, s.member_id FROM {staged.name} s WHERE 1 = 1
        ON CONFLICT (group_id, rule, key, member_id) DO NOTHING"""),
        {"g": group_id},
    ).rowcount
    unstage(conn, staged)
    return int(written)


def candidate_members(
    conn: Connection, vault: Vault, group_id: str, keys: pa.Table, exclude: int | None = None
) -> list[int]:
    """Active members sharing a blocking key with `keys` (one record's), in one query."""
    if keys.num_rows == 0:
        return []
    table = hashed(vault, keys)
    pairs = list(
        zip(table.column("rule").to_pylist(), table.column("key").to_pylist(), strict=True)
    )
    # one indexed lookup per key (an OR of them makes SQLite scan the group's keys), each
    # capped: a key shared by more members than the cap blocks nothing
    lookups = " UNION ALL ".join(
        f"SELECT member_id FROM (SELECT member_id FROM member_match_keys WHERE group_id = :g "
        f"AND rule = :r{i} AND key = :k{i} LIMIT {MAX_CANDIDATES_PER_KEY}) q{i}"
        for i in range(len(pairs))
    )
    params: dict[str, object] = {"g": group_id, "x": exclude if exclude is not None else -1}
    for i, (rule, key) in enumerate(pairs):
        params[f"r{i}"], params[f"k{i}"] = rule, key
    rows = conn.execute(
        text(f"""
        SELECT DISTINCT c.member_id FROM ({lookups}) c
        JOIN members m ON m.member_id = c.member_id AND m.status = 'active'
        WHERE c.member_id <> :x ORDER BY c.member_id"""),
        params,
    )
    return [int(r[0]) for r in rows]
