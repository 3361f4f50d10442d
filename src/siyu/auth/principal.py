"""Roles, their permissions and the scope a principal's data access is limited to.

Permissions are checked per endpoint (each route declares the one it needs) and scopes per
row (a store key sees its stores' members, a guide its own members, a member itself).
Nobody crosses brand groups: every query is filtered by the principal's group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # HQ: everything in its brand group
    ANALYST = "analyst"  # aggregates and masked profiles, no raw personal data
    STORE = "store"  # its stores' members and data
    GUIDE = "guide"  # members bound to that guide
    CHANNEL = "channel"  # an integration: ingest and bind for one channel
    MEMBER = "member"  # a mini-program session: itself only


PERMISSIONS: dict[str, frozenset[Role]] = {
    "members:lookup": frozenset({Role.ADMIN, Role.ANALYST, Role.STORE, Role.GUIDE, Role.CHANNEL}),
    "members:read": frozenset(Role),
    "identities:bind": frozenset({Role.ADMIN, Role.STORE, Role.CHANNEL, Role.MEMBER}),
    "members:merge": frozenset({Role.ADMIN}),
    "orders:ingest": frozenset({Role.ADMIN, Role.STORE, Role.CHANNEL}),
    "events:ingest": frozenset({Role.ADMIN, Role.STORE, Role.CHANNEL}),
    # The ledger. Reading follows the member scope (a member sees only its statement);
    # posting is for the tills (store), integrations (channel) and HQ; a member spends and
    # pays for itself from the mini-program; corrections and refunds need HQ or a store.
    "ledger:read": frozenset(Role),
    "points:earn": frozenset({Role.ADMIN, Role.STORE, Role.CHANNEL}),
    "points:spend": frozenset({Role.ADMIN, Role.STORE, Role.CHANNEL, Role.MEMBER}),
    "points:adjust": frozenset({Role.ADMIN}),
    "stored-value:top-up": frozenset({Role.ADMIN, Role.STORE, Role.CHANNEL}),
    "stored-value:pay": frozenset({Role.ADMIN, Role.STORE, Role.CHANNEL, Role.MEMBER}),
    "stored-value:refund": frozenset({Role.ADMIN, Role.STORE}),
    "loyalty:read-rules": frozenset({Role.ADMIN, Role.ANALYST, Role.STORE, Role.CHANNEL}),
    "loyalty:write-rules": frozenset({Role.ADMIN}),
    # Stock: a store counts and moves its own locations; channels reserve for their orders.
    "inventory:read": frozenset({Role.ADMIN, Role.ANALYST, Role.STORE, Role.CHANNEL}),
    "inventory:write": frozenset({Role.ADMIN, Role.STORE}),
    # Where stock is kept and which channel ships from where: HQ sets it up.
    "inventory:configure": frozenset({Role.ADMIN}),
    "reservations:write": frozenset({Role.ADMIN, Role.CHANNEL}),
    # Follow-up tasks: a guide reads and moves its own (the row rule is guides.service's);
    # HQ reads every guide's, and an admin may move them.
    "tasks:read": frozenset({Role.ADMIN, Role.ANALYST, Role.GUIDE}),
    "tasks:write": frozenset({Role.ADMIN, Role.GUIDE}),
    # HQ's own tasks for guides (issue #19): admins author and assign them, HQ reads their
    # completion and effect; a guide marks its own training done.
    "guide-tasks:write": frozenset({Role.ADMIN}),
    "guide-tasks:report": frozenset({Role.ADMIN, Role.ANALYST}),
    "training:complete": frozenset({Role.GUIDE}),
    # Commission (issue #19): HQ sets the rules, runs accrual and release, pays; a guide
    # reads its own statement, a store its stores' guides' (api/routers/commission.py).
    "commission:read": frozenset({Role.ADMIN, Role.ANALYST, Role.STORE, Role.GUIDE}),
    "commission:write": frozenset({Role.ADMIN}),
    # The probabilistic matches' review queue is HQ's: analysts read it (masked), admins
    # decide (a decision merges members or blocks the pair for good).
    "reviews:read": frozenset({Role.ADMIN, Role.ANALYST}),
    "reviews:decide": frozenset({Role.ADMIN}),
    # Tags: HQ defines them and tags any member, a guide tags its own members (the row
    # rule is auth.scope's); analysts read. No personal data is in a tag.
    "tags:read": frozenset({Role.ADMIN, Role.ANALYST, Role.GUIDE}),
    "tags:write": frozenset({Role.ADMIN, Role.GUIDE}),
    "tags:define": frozenset({Role.ADMIN}),
    # Segments: HQ defines and evaluates them; analysts preview rules and export members
    # for ad audiences (in their masks); guides read them (their own members only).
    "segments:read": frozenset({Role.ADMIN, Role.ANALYST, Role.GUIDE}),
    "segments:preview": frozenset({Role.ADMIN, Role.ANALYST}),
    "segments:write": frozenset({Role.ADMIN}),
    "segments:export": frozenset({Role.ADMIN, Role.ANALYST}),
    # A member's affinity score and its breakdown: HQ, and the staff who serve the member
    # (a store its members, a guide its own: auth.scope). Not the member itself: the score
    # is the brand's measure of it, not a balance of its own. The rules are the loyalty
    # rules' (loyalty:read-rules, loyalty:write-rules).
    "affinity:read": frozenset({Role.ADMIN, Role.ANALYST, Role.STORE, Role.GUIDE}),
    # Coupons: HQ defines templates and issues (a guide issues to its own members); a till
    # (store), an integration (channel) or the member itself redeems, in its own scope
    # (api/routers/coupons.py); a refund's return is HQ's or the redeeming store's.
    "coupons:define": frozenset({Role.ADMIN}),
    "coupons:issue": frozenset({Role.ADMIN, Role.GUIDE}),
    "coupons:read": frozenset(Role),
    "coupons:redeem": frozenset({Role.ADMIN, Role.STORE, Role.CHANNEL, Role.MEMBER}),
    "coupons:return": frozenset({Role.ADMIN, Role.STORE}),
    "coupons:report": frozenset({Role.ADMIN, Role.ANALYST}),
    # Campaigns: HQ plans and launches them; analysts read plans and reports.
    "campaigns:read": frozenset({Role.ADMIN, Role.ANALYST}),
    "campaigns:write": frozenset({Role.ADMIN}),
    # Experiments: HQ plans, starts, stops them and logs exposures; analysts read plans,
    # results and the members behind each figure (masked).
    "experiments:read": frozenset({Role.ADMIN, Role.ANALYST}),
    "experiments:write": frozenset({Role.ADMIN}),
    # QR scenes: HQ defines codes; scans come from the channel integrations (official
    # account, mini-program) or HQ, never from a member key (a member could otherwise
    # credit itself to any code); HQ and analysts read the registry and the report.
    "scenes:define": frozenset({Role.ADMIN}),
    "scenes:read": frozenset({Role.ADMIN, Role.ANALYST}),
    "scenes:scan": frozenset({Role.ADMIN, Role.CHANNEL}),
    "scenes:report": frozenset({Role.ADMIN, Role.ANALYST}),
    # Lotteries: HQ defines pools and reveals seeds; a member draws for itself, a till
    # (store) or an integration (channel) for a member; a store hands prizes over at its
    # own stores (api/routers/lotteries.py); HQ and analysts recompute the draws.
    "lotteries:define": frozenset({Role.ADMIN}),
    "lotteries:read": frozenset(Role),
    "lotteries:draw": frozenset({Role.ADMIN, Role.STORE, Role.CHANNEL, Role.MEMBER}),
    "lotteries:claim": frozenset({Role.ADMIN, Role.STORE}),
    "lotteries:audit": frozenset({Role.ADMIN, Role.ANALYST}),
    # Receipts: HQ defines the reward rules (anyone reads them: the mini-program shows
    # them); a member uploads its own receipts, the mini-program's integration (channel)
    # or HQ for a member; a store reviews its own stores' receipts, HQ any; analysts read
    # the queue (without the photos); HQ gives rewards a stopped process left out.
    "receipts:define": frozenset({Role.ADMIN}),
    "receipts:read-rules": frozenset(Role),
    "receipts:upload": frozenset({Role.ADMIN, Role.CHANNEL, Role.MEMBER}),
    "receipts:read": frozenset(Role),
    "receipts:list": frozenset({Role.ADMIN, Role.ANALYST, Role.STORE}),
    "receipts:review": frozenset({Role.ADMIN, Role.STORE}),
    "receipts:settle": frozenset({Role.ADMIN}),
    # Messaging (issue #18): HQ composes, plans, sends and cancels sends and sets the
    # contact policy; analysts read sends, their figures and recipients (masked). Consent:
    # HQ or a store records a member's grant or withdrawal (in its scope), a member key
    # withdraws its own (api/routers/messaging.py); anyone reads a member's state in its
    # own scope. Delivery callbacks and clicks come from a channel integration (or HQ).
    "messages:read": frozenset({Role.ADMIN, Role.ANALYST}),
    "messages:write": frozenset({Role.ADMIN}),
    "messages:policy": frozenset({Role.ADMIN}),
    "messages:events": frozenset({Role.ADMIN, Role.CHANNEL}),
    "consent:read": frozenset(Role),
    "consent:record": frozenset({Role.ADMIN, Role.STORE, Role.MEMBER}),
    # A member's own guide (issue #19): read in the caller's member scope (a member its
    # own guide, a store its members', a guide its own members'); HQ rebinds members and
    # releases a guide who leaves. Guides record their shares (only their own), the
    # integrations (or HQ) the touches; an order's attribution is HQ's to read, and a
    # guide's for its own orders (api/routers/distribution.py).
    "bindings:read": frozenset({Role.ADMIN, Role.ANALYST, Role.STORE, Role.GUIDE, Role.MEMBER}),
    "bindings:write": frozenset({Role.ADMIN}),
    "shares:read": frozenset({Role.ADMIN, Role.ANALYST, Role.GUIDE}),
    "shares:write": frozenset({Role.ADMIN, Role.GUIDE}),
    "shares:touch": frozenset({Role.ADMIN, Role.CHANNEL}),
    "attribution:read": frozenset({Role.ADMIN, Role.ANALYST, Role.GUIDE}),
    # Guides' A/B/C classes: HQ puts the rules and classes a period; HQ reads every guide's
    # class, a store its stores' guides', a guide its own (api/routers/guide_classes.py).
    "guide-classes:read": frozenset({Role.ADMIN, Role.ANALYST, Role.STORE, Role.GUIDE}),
    "guide-classes:write": frozenset({Role.ADMIN}),
    # HQ's programme of stages and the metrics each measures: HQ puts it; the report is read
    # in the classes' scopes (a store its stores' guides, a guide itself).
    "guide-programme:read": frozenset({Role.ADMIN, Role.ANALYST, Role.STORE, Role.GUIDE}),
    "guide-programme:write": frozenset({Role.ADMIN}),
}
# Roles that may see phones and names in the clear; everyone else gets masks.
SEES_PERSONAL_DATA = frozenset({Role.ADMIN, Role.STORE, Role.GUIDE, Role.MEMBER})


@dataclass(frozen=True)
class Principal:
    key_id: int
    group_id: str
    role: Role
    stores: tuple[str, ...] = ()
    guide_id: str | None = None
    channel: str | None = None
    member_id: int | None = None
    name: str = field(default="", compare=False)

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]

    @property
    def sees_personal_data(self) -> bool:
        return self.role in SEES_PERSONAL_DATA
