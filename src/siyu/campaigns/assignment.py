"""Which arm a member is in: a pure function of the experiment's name and the member.

The bucket is the first 8 bytes of SHA-256(`salt:member_id`) modulo 10,000, so the same
member always lands in the same arm of the same campaign (a retried launch, a second
process, next week's report all agree), arms of different campaigns are independent, and
nothing about the member's data can steer it. Shares are in basis points (1/100 of a
percent). Shared with the experiments capability (issue #18), which assigns variants the
same way.
"""

from __future__ import annotations

import hashlib

from siyu.store.dialect import Dialect

BUCKETS = 10_000


def bucket(salt: str, member_id: int) -> int:
    digest = hashlib.sha256(f"{salt}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def bucket_sql(dialect: Dialect, salt: str, member: str) -> str:
    """`bucket` as an SQL expression: `salt` and `member` are SQL (a parameter, a column),
    for a set statement over millions of members (messaging's planning of a send)."""
    return dialect.hash_bucket(f"{salt} || ':' || CAST({member} AS TEXT)", BUCKETS)


def in_holdout(salt: str, member_id: int, holdout_bp: int) -> bool:
    """True for a share `holdout_bp` / 10,000 of members (by bucket)."""
    return bucket(salt, member_id) < holdout_bp
