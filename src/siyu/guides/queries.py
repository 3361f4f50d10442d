"""Guide attribution, the one rule: a guide's members are those the guide sold to or
served, that is, members with an order or an event carrying the guide.

The scope check (`auth.scope`) asks it of one member, the console's guide lists of every
member; both are written from `_ATTRIBUTING` so the rule cannot drift between them.
"""

from __future__ import annotations

from siyu.store.reads import Reader, Sql

# The facts that carry a guide: each has group_id, member_id and guide_id.
_ATTRIBUTING = ("orders", "events")

# Parameters :g (group) and :gd (guide): the members of the guide, as a subquery.
GUIDE_MEMBER_IDS = "\n    UNION ".join(
    f"SELECT x.member_id FROM {table} x WHERE x.group_id = :g AND x.guide_id = :gd"
    for table in _ATTRIBUTING
)
# Parameters :g, :gd and :m: one row when member :m is the guide's (stops at the first fact).
IS_GUIDE_MEMBER = Sql(
    "\n    UNION ALL ".join(
        f"SELECT 1 FROM {table} WHERE group_id = :g AND member_id = :m AND guide_id = :gd"
        for table in _ATTRIBUTING
    )
    + "\n    LIMIT 1"
)


async def is_guide_member(
    reader: Reader, group_id: str, guide_id: str | None, member_id: int
) -> bool:
    """Whether the guide sold to or served the member (an order or an event carries it)."""
    row = await reader.first(IS_GUIDE_MEMBER, {"m": member_id, "g": group_id, "gd": guide_id})
    return row is not None
