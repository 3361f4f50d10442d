"""Member lists (segments.lists) on both engines: every criterion narrows to the members its
definition names, pages add up to the count with each member once, sorts hold, the CSV
holds the list's rows with the role's masks, and a store or guide key sees only its own."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from tests.conftest import Store

from siyu.analytics.models import member_rfm, member_stages
from siyu.auth.principal import Principal, Role
from siyu.errors import ValidationError
from siyu.identity.models import identities, members
from siyu.orders.models import events, orders
from siyu.privacy import Vault, mask_phone
from siyu.segments import lists
from siyu.segments.lists import ListView, MemberCriteria
from siyu.store.reads import make_reads

N = 41
STAGES = ("new_1", "loyal", "at_risk", "lapsed")
T0 = datetime(2024, 1, 5, 10, 0, 0)
UNTIL = datetime(2024, 6, 30, 23, 59, 59)


@dataclass
class Member:
    member_id: int
    i: int
    home: str
    stage: str
    segment: str
    r: int
    orders: list[dict[str, Any]]
    events: list[dict[str, Any]]


def _seed(store: Store, vault: Vault) -> list[Member]:
    """N members: home store S0..S2, a stage and an RFM segment each, 0 to 3 orders
    (one cancelled every seventh member, one after UNTIL every eleventh), a tmall view
    every fifth, a phone every third."""
    g, now = store.group_id, datetime(2024, 7, 1)
    out: list[Member] = []
    with store.engine.begin() as conn:
        for i in range(N):
            member_id = conn.execute(
                insert(members).returning(members.c.member_id),
                {
                    "group_id": g,
                    "status": "active",
                    "registered_at": T0,
                    "name_masked": f"*{i}",
                    "home_store_id": f"S{i % 3}",
                    "created_at": now,
                    "updated_at": now,
                },
            ).scalar_one()
            m = Member(
                int(member_id),
                i,
                f"S{i % 3}",
                STAGES[i % 4],
                ("vip", "ordinary")[i % 2],
                i % 5 + 1,
                [],
                [],
            )
            for k in range(i % 4):
                m.orders.append(
                    {
                        "group_id": g,
                        "order_id": f"O{i}-{k}",
                        "brand_id": "B1",
                        "channel": ("pos", "tmall")[(i + k) % 2],
                        "store_id": f"S{(i + k) % 3}",
                        "guide_id": f"G{i % 2}" if k == 0 else None,
                        "buyer_identity_id": 1,
                        "member_id": m.member_id,
                        "status": "paid",
                        "ordered_at": T0 + timedelta(days=31 * k + i % 20, seconds=i),
                        "total_fen": 1000 * (i + 1) + k,
                        "discount_fen": 0,
                        "paid_fen": 1000 * (i + 1) + k,
                    }
                )
            if i % 7 == 0:
                m.orders.append(
                    {**m.orders[0], "order_id": f"C{i}", "status": "cancelled"} if m.orders else {}
                )
            if i % 11 == 0:
                late = {
                    "group_id": g,
                    "order_id": f"L{i}",
                    "brand_id": "B1",
                    "channel": "jd",
                    "store_id": "S9",
                    "guide_id": None,
                    "buyer_identity_id": 1,
                    "member_id": m.member_id,
                    "status": "paid",
                    "ordered_at": UNTIL + timedelta(days=3),
                    "total_fen": 5,
                    "discount_fen": 0,
                    "paid_fen": 5,
                }
                m.orders.append(late)
            m.orders = [o for o in m.orders if o]
            if m.orders:
                conn.execute(insert(orders), m.orders)
            if i % 5 == 0:
                m.events.append(
                    {
                        "group_id": g,
                        "event_id": f"E{i}",
                        "type": "view",
                        "channel": "tmall",
                        "identity_id": 1,
                        "member_id": m.member_id,
                        "occurred_at": T0 + timedelta(days=i),
                        "guide_id": "G9" if i == 5 else None,
                    }
                )
                conn.execute(insert(events), m.events)
            conn.execute(
                insert(member_stages),
                {
                    "group_id": g,
                    "member_id": m.member_id,
                    "stage": m.stage,
                    "orders": 0,
                    "computed_at": now,
                },
            )
            conn.execute(
                insert(member_rfm),
                {
                    "group_id": g,
                    "member_id": m.member_id,
                    "r": m.r,
                    "f": 1,
                    "m": 1,
                    "segment": m.segment,
                    "computed_at": now,
                },
            )
            if i % 3 == 0:
                phone = f"+86138{i:08d}"
                conn.execute(
                    insert(identities),
                    {
                        "group_id": g,
                        "type": "phone",
                        "value_key": f"k{g}{i}",
                        "value_enc": vault.encrypt(phone, "phone"),
                        "value_masked": mask_phone(phone),
                        "source_channel": "pos",
                        "first_seen": T0,
                        "last_seen": T0,
                        "member_id": m.member_id,
                    },
                )
            out.append(m)
    return out


def _paid(m: Member, until: bool = False) -> list[dict[str, Any]]:
    return [
        o
        for o in m.orders
        if o["status"] != "cancelled" and (not until or o["ordered_at"] <= UNTIL)
    ]


def _run(store: Store, work: Callable[[Any], Any]) -> Any:
    async def go() -> Any:
        reads = make_reads(store.engine, pool_size=2)
        try:
            async with reads.connection() as reader:
                return await work(reader)
        finally:
            await reads.close()

    return asyncio.run(go())


def _everyone(
    store: Store,
    vault: Vault,
    who: Principal,
    c: MemberCriteria,
    view: ListView,
    among: list[int] | None = None,
) -> tuple[int, list[lists.MemberRow]]:
    """The count, and every row by walking the pages."""

    async def work(reader: Any) -> tuple[int, list[lists.MemberRow]]:
        first = await lists.member_page(reader, vault, who, c, view, among)
        rows = list(first.rows)
        for page in range(2, first.pages + 1):
            found = await lists.member_page(
                reader, vault, who, c, ListView(view.sort, view.desc, page, view.per), among
            )
            rows.extend(found.rows)
        return first.total, rows

    result: tuple[int, list[lists.MemberRow]] = _run(store, work)
    return result


def _csv(
    store: Store, vault: Vault, who: Principal, c: MemberCriteria, among: list[int] | None = None
) -> list[dict[str, str]]:
    async def work(reader: Any) -> str:
        found = lists.export_csv(reader, vault, who, c, ListView(), among)
        return "".join([x async for x in found])

    text: str = _run(store, work)
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def test_every_criterion_lists_the_members_it_names(store: Store, vault: Vault) -> None:
    # given members with stages, RFM segments, orders, events and home stores
    seeded = _seed(store, vault)
    admin = Principal(1, store.group_id, Role.ADMIN)
    month = lambda o: o["ordered_at"].strftime("%Y-%m")  # noqa: E731

    def first_month(m: Member) -> str | None:
        paid = _paid(m, until=True)
        return min(month(o) for o in paid) if paid else None

    cases: list[tuple[MemberCriteria, Callable[[Member], bool]]] = [
        (MemberCriteria(), lambda m: True),
        (MemberCriteria(stage="at_risk"), lambda m: m.stage == "at_risk"),
        (MemberCriteria(rfm="vip"), lambda m: m.segment == "vip"),
        (MemberCriteria(rfm="vip", r=3), lambda m: m.segment == "vip" and m.r == 3),
        (MemberCriteria(store="S1"), lambda m: m.home == "S1"),
        (MemberCriteria(bought_at="S2"), lambda m: any(o["store_id"] == "S2" for o in _paid(m))),
        (MemberCriteria(sold_by="G1"), lambda m: any(o["guide_id"] == "G1" for o in _paid(m))),
        (
            MemberCriteria(guide="G9"),  # the guides' rule: an order or an event carries it
            lambda m: (
                any(o["guide_id"] == "G9" for o in m.orders)
                or any(e["guide_id"] == "G9" for e in m.events)
            ),
        ),
        (MemberCriteria(channel="jd"), lambda m: any(o["channel"] == "jd" for o in _paid(m))),
        (
            MemberCriteria(channel="jd", until=UNTIL),
            lambda m: any(o["channel"] == "jd" for o in _paid(m, until=True)),
        ),
        (MemberCriteria(funnel="tmall", step="view", until=UNTIL), lambda m: bool(m.events)),
        (MemberCriteria(cohort="2024-01", until=UNTIL), lambda m: first_month(m) == "2024-01"),
        (
            MemberCriteria(cohort="2024-01", active=2, until=UNTIL),
            lambda m: (
                first_month(m) == "2024-01"
                and any(month(o) == "2024-03" for o in _paid(m, until=True))
            ),
        ),
        (
            MemberCriteria(stage="loyal", store="S0"),
            lambda m: m.stage == "loyal" and m.home == "S0",
        ),
    ]
    for criteria, rule in cases:
        expected = {m.member_id for m in seeded if rule(m)}
        # when the list is read page by page, 7 a page
        total, rows = _everyone(store, vault, admin, criteria, ListView(per=25))
        ids = [r.member_id for r in rows]
        # then the count is the members the rule names, and the pages hold each once
        assert total == len(expected), criteria
        assert len(ids) == len(set(ids)) and set(ids) == expected, criteria
        # and the CSV holds the same members
        exported = [int(r["member_id"]) for r in _csv(store, vault, admin, criteria)]
        assert sorted(exported) == sorted(expected), criteria
    # a non-empty cohort cell was among them
    assert any(first_month(m) == "2024-01" for m in seeded)


def test_a_reports_members_are_listed_among_its_ids(store: Store, vault: Vault) -> None:
    # given the ids behind a report's figure (a campaign arm's buyers, a QR code's members)
    seeded = _seed(store, vault)
    admin = Principal(1, store.group_id, Role.ADMIN)
    picked = [m.member_id for m in seeded if m.i % 3 == 1]
    # when they are listed, alone and with a criterion, page by page and as CSV
    total, rows = _everyone(store, vault, admin, MemberCriteria(), ListView(per=25), picked)
    assert total == len(picked) and sorted(r.member_id for r in rows) == sorted(picked)
    s1 = {m.member_id for m in seeded if m.i % 3 == 1 and m.home == "S1"}
    total, rows = _everyone(store, vault, admin, MemberCriteria(store="S1"), ListView(), picked)
    assert total == len(s1) and {r.member_id for r in rows} == s1
    exported = [int(r["member_id"]) for r in _csv(store, vault, admin, MemberCriteria(), picked)]
    assert sorted(exported) == sorted(picked)
    # then no ids list no one (not everyone)
    assert _everyone(store, vault, admin, MemberCriteria(), ListView(), [])[0] == 0


def test_pages_sort_and_mask_as_the_role_may_see(store: Store, vault: Vault) -> None:
    seeded = _seed(store, vault)
    by_id = {m.member_id: m for m in seeded}
    admin = Principal(1, store.group_id, Role.ADMIN)
    analyst = Principal(2, store.group_id, Role.ANALYST)
    everyone = MemberCriteria()
    # when sorted by spend, most first, 25 a page
    total, rows = _everyone(store, vault, admin, everyone, ListView("spend", True, 1, 25))
    spend = [r.spend_fen for r in rows]
    assert total == N and len(rows) == N
    assert spend == sorted(spend, reverse=True)
    assert spend[0] == sum(o["paid_fen"] for o in _paid(by_id[rows[0].member_id]))
    # by orders, fewest first; by member id, both ways; by last order, latest first
    _, rows = _everyone(store, vault, admin, everyone, ListView("orders", False, 1, 25))
    assert [r.orders for r in rows] == sorted(r.orders for r in rows)
    _, rows = _everyone(store, vault, admin, everyone, ListView("member_id", True, 1, 25))
    assert [r.member_id for r in rows] == sorted(by_id, reverse=True)
    _, rows = _everyone(store, vault, admin, everyone, ListView("last_order", True, 1, 25))
    dated = [str(r.last_order_at) for r in rows if r.last_order_at is not None]
    assert dated == sorted(dated, reverse=True)
    assert all(r.last_order_at is None for r in rows[len(dated) :])  # no order: last
    # and the phones: in the clear for an admin, masked for an analyst, page and CSV alike
    phoned = {m.member_id: f"+86138{m.i:08d}" for m in seeded if m.i % 3 == 0}
    _, rows = _everyone(store, vault, admin, everyone, ListView("member_id", False, 1, 200))
    assert {r.member_id: r.phone for r in rows if r.phone} == phoned
    _, rows = _everyone(store, vault, analyst, everyone, ListView("member_id", False, 1, 200))
    assert {r.member_id: r.phone for r in rows if r.phone} == {
        k: mask_phone(v) for k, v in phoned.items()
    }
    assert all(r.phone_masked for r in rows)
    exported = _csv(store, vault, analyst, everyone)
    assert len(exported) == N
    for row in exported:
        assert "+86" not in row["phone"] and (not row["phone"] or "****" in row["phone"])
    clear = {int(r["member_id"]): r["phone"] for r in _csv(store, vault, admin, everyone)}
    assert {k: v for k, v in clear.items() if v} == phoned


def test_a_store_or_guide_key_lists_only_its_members(store: Store, vault: Vault) -> None:
    seeded = _seed(store, vault)
    shop = Principal(3, store.group_id, Role.STORE, stores=("S0",))
    guide = Principal(4, store.group_id, Role.GUIDE, guide_id="G1")
    mine = {
        m.member_id
        for m in seeded
        if m.home == "S0" or any(o["store_id"] == "S0" for o in m.orders)
    }
    served = {m.member_id for m in seeded if any(o["guide_id"] == "G1" for o in m.orders)}
    for who, expected in ((shop, mine), (guide, served)):
        total, rows = _everyone(store, vault, who, MemberCriteria(), ListView(per=25))
        assert total == len(expected) and {r.member_id for r in rows} == expected
        assert {int(r["member_id"]) for r in _csv(store, vault, who, MemberCriteria())} == expected
        # a criterion narrows within the scope, never past it
        total, rows = _everyone(store, vault, who, MemberCriteria(store="S1"), ListView())
        assert {r.member_id for r in rows} <= expected
    # a channel key lists nobody
    channel = Principal(5, store.group_id, Role.CHANNEL, channel="tmall")
    assert _everyone(store, vault, channel, MemberCriteria(), ListView())[0] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cohort": "2024-13"}, "cohort"),
        ({"active": "2"}, "active"),
        ({"r": "0"}, "r"),
        ({"store": "S1; DROP"}, "store"),
        ({"until": "yesterday"}, "until"),
        ({"funnel": "tmall"}, "step"),
    ],
)
def test_bad_criteria_name_the_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        lists.parse_criteria(params)
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("params", "field"),
    [({"sort": "name"}, "sort"), ({"per": "1000"}, "per"), ({"page": "0"}, "page")],
)
def test_bad_views_name_the_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        lists.parse_view(params)
    assert raised.value.field == field


def test_criteria_round_trip_through_the_url() -> None:
    c = MemberCriteria(stage="loyal", cohort="2024-01", active=2, until=UNTIL, r=3)
    assert lists.parse_criteria(c.query()) == c
