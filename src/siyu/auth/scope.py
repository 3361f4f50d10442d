"""Row scope: which members a principal may see. Every face checks it here (the API's
member routes, the console's Member 360), after its own permission check.

Unknown is `NotFoundError` (404), out of scope `ForbiddenError` (403). A merged member's
id still works: it stands for the member it was merged into.
"""

from __future__ import annotations

from siyu.auth.principal import Principal, Role
from siyu.errors import ForbiddenError, NotFoundError
from siyu.guides.queries import is_guide_member
from siyu.store.reads import Reader, Sql

MEMBER_STATUS = Sql(
    "SELECT status, merged_into FROM members WHERE group_id = :g AND member_id = :m"
)
MERGED_INTO = Sql("SELECT merged_into FROM members WHERE member_id = :m")
# A store's members: those registered at one of its stores or who ordered there.
STORE_MEMBER = Sql("""SELECT 1 FROM members WHERE member_id = :m AND home_store_id IN :stores
                      UNION ALL
                      SELECT 1 FROM orders WHERE group_id = :g AND member_id = :m
                        AND store_id IN :stores
                      LIMIT 1""")


async def survivor(reader: Reader, group_id: str, member_id: int) -> int:
    """The member itself, or the member it was merged into; `NotFoundError` when the
    brand group has no such member."""
    current = member_id
    for _ in range(32):  # merge chains are short; the bound guards against a cycle
        row = await reader.first(MEMBER_STATUS, {"g": group_id, "m": current})
        if row is None:
            raise NotFoundError(f"member_id: no member {member_id}")
        if row.status != "merged" or row.merged_into is None:
            break
        current = int(row.merged_into)
    return current


async def member_in_scope(reader: Reader, who: Principal, member_id: int) -> int:
    """The member (following merges to the survivor) if the principal may see it:
    `NotFoundError` when the group has no such member, `ForbiddenError` when it is
    another store's, guide's or person's."""
    current = await survivor(reader, who.group_id, member_id)
    if who.role in (Role.ADMIN, Role.ANALYST, Role.CHANNEL):
        return current
    if who.role == Role.MEMBER:
        ok = who.member_id is not None and await _same_person(reader, who, current)
    elif who.role == Role.STORE:
        ok = (
            await reader.first(
                STORE_MEMBER, {"m": current, "g": who.group_id, "stores": list(who.stores)}
            )
            is not None
        )
    else:
        ok = await is_guide_member(reader, who.group_id, who.guide_id, current)
    if not ok:
        raise ForbiddenError(
            f"member_id: member {member_id} is outside this {who.role.value} key's scope"
        )
    return current


async def _same_person(reader: Reader, who: Principal, member_id: int) -> bool:
    current = who.member_id
    for _ in range(32):
        if current == member_id:
            return True
        row = await reader.first(MERGED_INTO, {"m": current})
        if row is None or row.merged_into is None:
            return False
        current = int(row.merged_into)
    return False
