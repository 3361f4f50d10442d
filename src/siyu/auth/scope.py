"""Row scope: which members a principal may see. Every face checks it here (the API's
member routes, the console's Member 360), after its own permission check.

Unknown is `NotFoundError` (404), out of scope `ForbiddenError` (403). A merged member's
id still works: it stands for the member it was merged into.

Postings have a rule of their own (`member_at_till`, `order_to_earn`): a store posts for
its own members, or for a member present at its till who proves it with an identifier of
theirs; it earns points only by the rules for an order at one of its stores.
"""

from __future__ import annotations

from dataclasses import dataclass

from siyu.auth.principal import Principal, Role
from siyu.errors import ForbiddenError, NotFoundError, ValidationError
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
# Who holds an identifier (by its keyed hash, as every lookup finds it), in any scope: a
# card shown at the till proves the member holds that number, whichever brand issued it.
HOLDER = Sql(
    "SELECT member_id FROM identities WHERE group_id = :g AND type = :t AND value_key = :k"
)
ORDER_PLACE = Sql(
    "SELECT member_id, store_id, channel FROM orders WHERE group_id = :g AND order_id = :o"
)


@dataclass(frozen=True)
class Presented:
    """An identifier shown at the till (a card scanned, a phone typed in), already
    normalised and hashed by the caller's encoder: `key` is its `value_key`."""

    type: str
    key: str


@dataclass(frozen=True)
class Target:
    """The member a posting is for, and whether the caller may read its balances."""

    member_id: int
    may_read: bool


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


async def member_at_till(
    reader: Reader, who: Principal, member_id: int, presented: Presented | None
) -> Target:
    """The member a posting is for. A store posts for its own members (`member_in_scope`)
    or for one present at its till, proven by `presented` (422 when a proof is needed and
    missing, 403 when it is someone else's); a proof given is always checked, so the wrong
    person at the till is refused even among the store's own members. Every other role
    posts within its read scope. `may_read` says whether the answer may carry balances."""
    if who.role != Role.STORE:
        return Target(await member_in_scope(reader, who, member_id), True)
    current = await survivor(reader, who.group_id, member_id)
    if presented is not None and not await _holds(reader, who.group_id, current, presented):
        raise ForbiddenError(
            f"presented: the {presented.type} presented is not member {member_id}'s"
        )
    try:
        return Target(await member_in_scope(reader, who, current), True)
    except ForbiddenError:
        if presented is None:
            raise ValidationError(
                "presented",
                f"member {member_id} is not this store's: present the member's card or phone",
            ) from None
    return Target(current, False)


async def order_to_earn(reader: Reader, who: Principal, member_id: int, order_id: str) -> None:
    """A store earns points only for an order of the member at one of its stores, a
    channel for an order of its channel: `NotFoundError` when the member has no such
    order, `ForbiddenError` when it is another store's or channel's."""
    row = await reader.first(ORDER_PLACE, {"g": who.group_id, "o": order_id})
    if (
        row is None
        or row.member_id is None
        or await survivor(reader, who.group_id, int(row.member_id)) != member_id
    ):
        raise NotFoundError(f"order_id: member has no order {order_id!r}")
    if who.role == Role.STORE and row.store_id not in who.stores:
        raise ForbiddenError(
            f"order_id: order {order_id!r} is another store's; this key earns at its own only"
        )
    if who.role == Role.CHANNEL and row.channel != who.channel:
        raise ForbiddenError(
            f"order_id: order {order_id!r} is another channel's; this key earns on "
            f"{who.channel!r} only"
        )


async def _holds(reader: Reader, group_id: str, member_id: int, presented: Presented) -> bool:
    rows = await reader.all(HOLDER, {"g": group_id, "t": presented.type, "k": presented.key})
    for row in rows:
        held_by = None if row.member_id is None else int(row.member_id)
        if held_by is not None and await survivor(reader, group_id, held_by) == member_id:
            return True
    return False
