"""Which role opens which console page, in the order the navigation lists them.

The console's roles are the API's (siyu.auth.principal.Role): HQ admins see everything
unmasked, analysts the aggregates and masked profiles, a store its stores and their
members, a guide its own members and tasks. Channel and member keys are for integrations
and the member mini-program and cannot log in.
"""

from __future__ import annotations

from dataclasses import dataclass

from siyu.auth.principal import PERMISSIONS, Role

HQ = frozenset({Role.ADMIN, Role.ANALYST})
CONSOLE_ROLES = frozenset({Role.ADMIN, Role.ANALYST, Role.STORE, Role.GUIDE})


def allowed(permission: str) -> frozenset[Role]:
    """The console roles holding an API permission: a page opens for exactly the roles
    its API endpoint serves (`auth.principal.PERMISSIONS`)."""
    return PERMISSIONS[permission] & CONSOLE_ROLES


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    roles: frozenset[Role]
    in_nav: bool = True
    section: str = ""  # a heading in the navigation (`nav.section.<name>`) it is listed under


PAGES: tuple[Page, ...] = (
    Page("overview", "/console/overview", HQ),
    Page("retention", "/console/retention", HQ),
    Page("cohorts", "/console/cohorts", HQ),
    Page("rfm", "/console/rfm", HQ),
    Page("funnel", "/console/funnel", HQ),
    Page("channels", "/console/channels", HQ),
    Page("guides", "/console/guides", HQ),
    Page("guide_members", "/console/guides/{guide_id}", HQ, in_nav=False),
    Page("stores", "/console/stores", frozenset({Role.ADMIN, Role.ANALYST, Role.STORE})),
    Page(
        "store_members",
        "/console/stores/{store_id}",
        frozenset({Role.ADMIN, Role.ANALYST, Role.STORE}),
        in_nav=False,
    ),
    Page("my_members", "/console/my-members", frozenset({Role.GUIDE})),
    # a guide's own follow-up tasks; HQ admins see (and may act on) every guide's
    Page("tasks", "/console/tasks", frozenset({Role.ADMIN, Role.GUIDE})),
    # HQ's own tasks for guides (issue #19): completion and effect, for the roles the API's
    # report serves; the members behind a count open under the same page
    Page("guide_tasks", "/console/guide-tasks", allowed("guide-tasks:report")),
    # a guide's own commission statement and class with its training, on its phone, and a
    # store manager's guides (issue #19, guide_own_pages); each reads only the key's own
    Page("my_commission", "/console/my-commission", frozenset({Role.GUIDE})),
    Page("my_class", "/console/my-class", frozenset({Role.GUIDE})),
    Page("my_guides", "/console/my-guides", frozenset({Role.STORE})),
    Page("members", "/console/members", CONSOLE_ROLES),
    # OneID's probabilistic matches awaiting a decision (a pair at .../reviews/{id} opens
    # under the same page); analysts read, admins decide (auth.principal "reviews:decide")
    Page("reviews", "/console/oneid/reviews", HQ),
    # segments and tags: the API's permissions, page by page (segment_pages, builder,
    # tag_pages); actions on a page (evaluate, archive, save, export, tag a member) check
    # their own permission again
    Page("segments", "/console/segments", allowed("segments:read")),
    Page("builder", "/console/builder", allowed("segments:preview"), in_nav=False),
    Page("tags", "/console/tags", allowed("tags:read")),
    # marketing (issue #17): coupon liability, campaign reports, QR scenes and lottery
    # audits, for the roles the API's reports serve (HQ); a page under one of these paths
    # (a campaign's report, the members behind a figure) opens under the same page
    Page("coupons", "/console/coupons", allowed("coupons:report"), section="marketing"),
    Page("campaigns", "/console/campaigns", allowed("campaigns:read"), section="marketing"),
    Page("scenes", "/console/scenes", allowed("scenes:report"), section="marketing"),
    Page("lotteries", "/console/lotteries", allowed("lotteries:audit"), section="marketing"),
    # receipts members uploaded: the roles `GET /v1/receipts` serves (a store its own
    # stores'); deciding one needs "receipts:review" (admins, stores), checked by the form
    Page("receipts", "/console/receipts", allowed("receipts:list"), section="marketing"),
    # messages (issue #18): the roles `GET /v1/sends` serves; composing, sending and
    # cancelling need "messages:write" (HQ admins), checked by each form's POST
    Page("messages", "/console/messages", allowed("messages:read"), section="marketing"),
    # experiments (issue #18): the roles `GET /v1/experiments` serves; saving, starting
    # and stopping need "experiments:write" (HQ admins), checked by each form's POST
    Page("experiments", "/console/experiments", allowed("experiments:read"), section="marketing"),
    # HQ's commission statements, guide classes and order attributions (issue #19): the API's
    # permissions, HQ's share of them (stores and guides read only their own through the
    # API; their pages are their own); a guide's statement and the members behind a figure
    # open under the same page
    Page("commission", "/console/commission", allowed("commission:read") & HQ, section="guides"),
    Page(
        "guide_classes",
        "/console/guide-classes",
        allowed("guide-classes:read") & HQ,
        section="guides",
    ),
    Page(
        "attribution",
        "/console/attribution/{order_id}",
        allowed("attribution:read") & HQ,
        in_nav=False,
    ),
)
BY_NAME = {p.name: p for p in PAGES}


def may_open(role: Role, page: str) -> bool:
    return role in BY_NAME[page].roles


def navigation(role: Role) -> list[Page]:
    return [p for p in PAGES if p.in_nav and role in p.roles]


def home(role: Role) -> str:
    """The first page a role lands on after logging in."""
    return navigation(role)[0].path
