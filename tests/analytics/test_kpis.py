"""The field's KPIs on every engine: a hand-counted example (every number below is counted
by hand from the rows), then a generated brand against the pandas reference."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from ibis import BaseBackend
from tests.analytics import reference
from tests.analytics.data import orders_table

from siyu.analytics.engines import load_arrow, load_orders
from siyu.analytics.kpi_service import kpi_report
from siyu.demo.config import GeneratorConfig
from siyu.demo.generate import generate
from siyu.errors import ValidationError

T_END = datetime(2024, 3, 31, 23, 59, 59)
# (order, member, time, fen, brand, channel, guide, store)
ROWS = [
    ("o1", "a", "2024-01-05T10:00:00", 1_000, "B1", "pos", "G1", "S1"),
    ("o1", "a", "2024-01-05T10:00:00", 100, "B1", "pos", "G1", "S1"),  # a second line of o1
    ("o2", "a", "2024-01-20T10:00:00", 500, "B2", "tmall", None, None),
    ("o3", "a", "2024-03-02T10:00:00", 2_000, "B1", "pos", "G1", "S2"),
    ("o4", "b", "2024-02-10T10:00:00", 300, "B1", "miniprogram", None, None),
    ("o5", "b", "2024-02-11T10:00:00", 700, "B1", "miniprogram", None, None),
    ("o6", "c", "2024-03-15T10:00:00", 4_000, "B2", "pos", "G2", "S2"),
    ("o7", "c", "2024-03-14T10:00:00", 999, "B1", "pos", "G2", "S1"),  # cancelled
    ("o8", "c", "2024-04-02T10:00:00", 50, "B1", "pos", "G2", "S1"),  # after T_END
]
# the catalog's stores: S1 in Shanghai, S2 in Hangzhou (S9 sold nothing)
STORES = {"store_id": ["S1", "S2", "S9"], "city": ["上海", "杭州", "上海"]}
# (member, channel, type, time, guide); None member: an identity OneID has not resolved
EVENTS = [
    ("a", "tmall", "view", "2024-01-19T10:00:00", "G2"),
    ("a", "tmall", "view", "2024-01-20T09:00:00", None),
    ("a", "tmall", "add_to_cart", "2024-01-20T09:30:00", None),
    ("a", "tmall", "order", "2024-01-20T10:00:00", None),
    ("a", "tmall", "pay", "2024-01-20T10:01:00", None),
    ("a", "tmall", "share", "2024-01-20T10:02:00", "G1"),  # not a funnel step
    ("b", "miniprogram", "view", "2024-02-10T09:00:00", "G1"),
    ("b", "miniprogram", "add_to_cart", "2024-02-10T09:10:00", "G1"),
    ("b", "miniprogram", "order", "2024-02-10T10:00:00", "G1"),
    ("b", "miniprogram", "pay", "2024-02-10T10:00:30", "G1"),
    ("c", "miniprogram", "view", "2024-03-01T10:00:00", "G2"),
    (None, "miniprogram", "view", "2024-03-01T11:00:00", "G2"),
    ("b", "miniprogram", "view", "2024-04-01T10:00:00", "G1"),  # after T_END
]
# (member, source channel, type, first seen): a's card came after o1, before o3; c's only
# after T_END (o6 is a non-member's till order, and c has not enrolled by the end)
IDENTITIES = [
    ("a", "pos", "phone", "2024-01-05T10:00:00"),
    ("a", "tmall", "tmall_ouid", "2024-01-20T09:00:00"),
    ("a", "pos", "card", "2024-02-01T10:00:00"),
    ("b", "miniprogram", "openid", "2024-02-10T09:00:00"),
    ("c", "pos", "phone", "2024-03-14T10:00:00"),
    ("c", "pos", "card", "2024-04-05T10:00:00"),
    (None, "wecom", "wecom_id", "2024-03-01T11:00:00"),
]


def _hand(con: BaseBackend) -> tuple[Any, ...]:
    orders = orders_table(
        [r[:4] for r in ROWS],
        brand_id=[r[4] for r in ROWS],
        channel=[r[5] for r in ROWS],
        guide_id=[r[6] for r in ROWS],
        store_id=[r[7] for r in ROWS],
        status=["cancelled" if r[0] == "o7" else "paid" for r in ROWS],
    )
    events = pa.table(
        {
            "member_id": [e[0] for e in EVENTS],
            "channel": [e[1] for e in EVENTS],
            "type": [e[2] for e in EVENTS],
            "occurred_at": pa.array(
                [datetime.fromisoformat(e[3]) for e in EVENTS], pa.timestamp("us")
            ),
            "guide_id": [e[4] for e in EVENTS],
        }
    )
    identities = pa.table(
        {
            "member_id": [i[0] for i in IDENTITIES],
            "source_channel": [i[1] for i in IDENTITIES],
            "type": [i[2] for i in IDENTITIES],
            "first_seen": pa.array(
                [datetime.fromisoformat(i[3]) for i in IDENTITIES], pa.timestamp("us")
            ),
        }
    )
    members = pa.table({"member_id": ["a", "b", "c", "d"]})
    return (
        load_orders(con, orders),
        load_arrow(con, events, "kpi_events"),
        load_arrow(con, identities, "kpi_identities"),
        load_arrow(con, members, "kpi_members"),
        load_arrow(con, pa.table(STORES), "kpi_stores"),
    )


def test_hand_counted_kpis(con: BaseBackend) -> None:
    # given the hand-made orders (o7 cancelled, o8 after the end), events and identities
    orders, events, identities, members, stores = _hand(con)
    # when the KPIs are computed up to the end of March
    got = kpi_report(con, orders, events, identities, members, as_of=T_END, stores=stores)
    # then: six orders (o1's two lines are one order of 1,100), 8,600 fen, three buyers
    assert got["totals"] == {"orders": 6, "sales_fen": 8_600, "members": 3}
    # cohorts by first-order month: a (Jan) came back in March, b (Feb) did not yet
    assert [(c["cohort"], c["members"], c["active"]) for c in got["cohorts"]] == [
        ("2024-01", 1, [1, 0, 1]),
        ("2024-02", 1, [1, 0]),
        ("2024-03", 1, [1]),
    ]
    # repurchase: a twice in January, b twice in February; in March a returns, c is new
    assert [
        (r["month"], r["buyers"], r["repeat_buyers"], r["returning_buyers"], r["returning_rate"])
        for r in got["repurchase"]
    ] == [("2024-01", 1, 1, 0, 0.0), ("2024-02", 1, 1, 0, 0.0), ("2024-03", 2, 0, 1, 0.5)]
    # cross-brand: a bought B1 and B2 (in January); b only B1, c only B2
    assert got["cross_brand"]["overall"] == {"buyers": 3, "cross_brand_buyers": 1, "rate": 0.333333}
    assert [(m["month"], m["cross_brand_buyers"]) for m in got["cross_brand"]["months"]] == [
        ("2024-01", 1),
        ("2024-02", 0),
        ("2024-03", 0),
    ]
    # channels: the till sold o1, o3, o6 to a and c; member shares overlap (a is in two)
    assert [
        (c["channel"], c["orders"], c["sales_fen"], c["members"], c["member_share"])
        for c in got["channels"]
    ] == [
        ("miniprogram", 2, 1_000, 1, 0.333333),
        ("pos", 3, 7_100, 2, 0.666667),
        ("tmall", 1, 500, 1, 0.333333),
    ]
    assert got["channels"][1]["sales_share"] == round(7_100 / 8_600, 6)
    # guides: o1 (G1, January), o3 (G1) and o6 (G2) in March
    guides = got["guides"]
    assert guides["overall"] == {
        "orders": 6,
        "sales_fen": 8_600,
        "guide_orders": 3,
        "guide_sales_fen": 7_100,
        "sales_share": round(7_100 / 8_600, 6),
    }
    assert [(m["month"], m["guide_sales_fen"], m["sales_share"]) for m in guides["months"]] == [
        ("2024-01", 1_100, 0.6875),
        ("2024-02", 0, 0.0),
        ("2024-03", 6_000, 1.0),
    ]
    assert [(g["guide_id"], g["orders"], g["sales_fen"]) for g in guides["top"]] == [
        ("G2", 1, 4_000),
        ("G1", 2, 3_100),
    ]
    # funnel: a viewed twice (one member); the unresolved view and April's do not count
    funnel = {f["channel"]: f["steps"] for f in got["funnel"]}
    assert [(s["step"], s["events"], s["members"], s["conversion"]) for s in funnel["tmall"]] == [
        ("view", 2, 1, None),
        ("add_to_cart", 1, 1, 1.0),
        ("order", 1, 1, 1.0),
        ("pay", 1, 1, 1.0),
    ]
    assert [(s["step"], s["members"], s["conversion"]) for s in funnel["miniprogram"]] == [
        ("view", 2, None),
        ("add_to_cart", 1, 0.5),
        ("order", 1, 1.0),
        ("pay", 1, 1.0),
    ]
    # online reach: a (till and Tmall), b (mini-program), c (till only), d (no identity)
    assert got["online"] == {
        "members": 4,
        "online_members": 2,
        "online_rate": 0.5,
        "offline_members": 2,
        "offline_online_members": 1,
        "offline_online_rate": 0.5,
    }
    # funnel by guide: G1 took b from view to pay; G2's views (a's, c's) went no further;
    # the unresolved view, the share and April's view do not count
    by_guide = {f["guide_id"]: f["steps"] for f in got["funnel_guides"]}
    assert [(s["step"], s["events"], s["members"], s["conversion"]) for s in by_guide["G1"]] == [
        ("view", 1, 1, None),
        ("add_to_cart", 1, 1, 1.0),
        ("order", 1, 1, 1.0),
        ("pay", 1, 1, 1.0),
    ]
    assert [(s["step"], s["events"], s["members"], s["conversion"]) for s in by_guide["G2"]] == [
        ("view", 2, 2, None),
        ("add_to_cart", 0, 0, 0.0),
        ("order", 0, 0, None),
        ("pay", 0, 0, None),
    ]
    # enrollment: till orders o1, o3, o6; o1 (a, before a's card) and o6 (c, no card by
    # T_END) are non-members'; a enrolled later, c has not (yet)
    assert got["enrollment"] == {
        "till_orders": 3,
        "non_member_orders": 2,
        "non_member_buyers": 2,
        "enrolled_buyers": 1,
        "non_member_order_share": 0.666667,
        "enrollment_rate": 0.5,
    }
    # same city: a's first store order o1 was in Shanghai (S1), c's first (o6; o7 was
    # cancelled) in Hangzhou (S2); o1 and o6 are in the member's city, o3 is not
    assert got["same_city"] == {
        "store_orders": 3,
        "store_sales_fen": 7_100,
        "same_city_orders": 2,
        "same_city_sales_fen": 5_100,
        "order_share": 0.666667,
        "sales_share": round(5_100 / 7_100, 6),
    }


def test_home_city_and_enrollment_look_before_the_window(con: BaseBackend) -> None:
    orders, _, identities, _, stores = _hand(con)
    # when only orders after January count
    got = kpi_report(
        con, orders, None, identities, None, as_of=T_END, since=datetime(2024, 1, 31), stores=stores
    )
    # then a's city is still Shanghai from o1 (before the window): o3 in Hangzhou is not
    # same-city, c's o6 is; and only o6 is a non-member till order in the window
    assert got["same_city"]["store_orders"] == 2 and got["same_city"]["same_city_orders"] == 1
    assert got["enrollment"]["till_orders"] == 2
    assert (got["enrollment"]["non_member_orders"], got["enrollment"]["enrolled_buyers"]) == (1, 0)
    # and as of a day after c's card (04-05), c counts as enrolled; o8 (04-02) was still a
    # non-member's till order
    later = kpi_report(con, orders, None, identities, None, as_of=datetime(2024, 4, 6))
    assert later["enrollment"]["enrolled_buyers"] == 2
    assert (later["enrollment"]["till_orders"], later["enrollment"]["non_member_orders"]) == (4, 3)


def test_since_starts_the_window(con: BaseBackend) -> None:
    orders, *_ = _hand(con)
    # when only orders after January count
    got = kpi_report(con, orders, None, None, None, as_of=T_END, since=datetime(2024, 1, 31))
    # then a's first order in the window is in March: a joins the March cohort
    assert got["totals"] == {"orders": 4, "sales_fen": 7_000, "members": 3}
    assert [(c["cohort"], c["members"]) for c in got["cohorts"]] == [("2024-02", 1), ("2024-03", 2)]
    assert "funnel" not in got and "online" not in got
    with pytest.raises(ValidationError, match="since: must be before the end of the data"):
        kpi_report(con, orders, None, None, None, as_of=T_END, since=T_END)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A generated brand's orders (with guides) and events, true persons as members."""
    out: Path = tmp_path_factory.mktemp("kpi-brand")
    generate(out, GeneratorConfig(members=2_000, seed=37, days=240))
    db = duckdb.connect()
    orders = db.sql(f"""
        select o.order_id, t.person_id::varchar as member_id, o.ordered_at,
               o.paid_fen as amount_fen, o.status, o.brand_id, o.channel, o.guide_id
        from read_parquet('{out}/orders.parquet') o
        join read_parquet('{out}/truth/identity_truth.parquet') t
          on t.type = o.buyer_type and t.value = o.buyer_value
         and (t.type <> 'card' or t.brand_id = o.brand_id)""").to_arrow_table()
    events = db.sql(f"""
        select t.person_id::varchar as member_id, e.channel, e.type, e.occurred_at
        from read_parquet('{out}/events.parquet') e
        join read_parquet('{out}/truth/identity_truth.parquet') t
          on t.type = e.identity_type and t.value = e.identity_value""").to_arrow_table()
    return {"orders": orders, "events": events}


def test_generated_brand_matches_the_reference(con: BaseBackend, generated: dict[str, Any]) -> None:
    # given the brand on an engine
    orders = load_orders(con, generated["orders"])
    events = load_arrow(con, generated["events"], "gen_events")
    # when every KPI is computed with six months of cohort
    got = kpi_report(con, orders, events, None, None, max_months=6, top_guides=1_000)
    t_end = datetime.fromisoformat(got["as_of"])
    frame = generated["orders"].to_pandas()
    ref = reference.kpis(frame, t_end, 6)
    # then each is the reference's, count for count
    assert {_index(c["cohort"]): c["active"] for c in got["cohorts"]} == ref["cohorts"]
    assert {
        _index(r["month"]): (r["buyers"], r["repeat_buyers"], r["returning_buyers"])
        for r in got["repurchase"]
    } == ref["repurchase"]
    overall = got["cross_brand"]["overall"]
    assert (overall["buyers"], overall["cross_brand_buyers"]) == ref["cross_overall"]
    assert {
        _index(m["month"]): (m["buyers"], m["cross_brand_buyers"])
        for m in got["cross_brand"]["months"]
    } == ref["cross_months"]
    assert {
        c["channel"]: (c["orders"], c["sales_fen"], c["members"]) for c in got["channels"]
    } == ref["channels"]
    assert {
        _index(m["month"]): (m["orders"], m["sales_fen"], m["guide_orders"], m["guide_sales_fen"])
        for m in got["guides"]["months"]
    } == ref["guides"]
    assert [
        (g["guide_id"], g["orders"], g["sales_fen"], g["members"]) for g in got["guides"]["top"]
    ] == ref["ranking"]
    events_frame = generated["events"].to_pandas()
    expected = reference.funnel(events_frame, t_end)
    funnel = {
        (f["channel"], s["step"]): (s["events"], s["members"])
        for f in got["funnel"]
        for s in f["steps"]
        if s["events"]
    }
    assert funnel == expected
    # and the data is not trivial: several cohorts, channels, guides and a real funnel
    assert len(got["cohorts"]) >= 6 and len(got["channels"]) >= 4 and len(got["guides"]["top"]) > 5
    assert any(s["conversion"] not in (None, 1.0) for f in got["funnel"] for s in f["steps"])


def _index(month: str) -> int:
    year, mon = month.split("-")
    return int(year) * 12 + int(mon) - 1


def test_one_member_and_missing_columns(con: BaseBackend) -> None:
    one = orders_table(
        [("o1", "a", "2024-01-01T10:00:00", 5)],
        brand_id=["B1"],
        channel=["pos"],
        guide_id=pa.array([None], pa.string()),
    )
    got = kpi_report(con, load_orders(con, one), None, None, None)
    assert got["cohorts"] == [{"cohort": "2024-01", "members": 1, "active": [1], "rates": [1.0]}]
    assert got["guides"]["overall"]["sales_share"] == 0.0
    bare = load_orders(con, orders_table([("o1", "a", "2024-01-01T10:00:00", 5)]))
    with pytest.raises(ValidationError, match="brand_id: column is missing; the KPIs need"):
        kpi_report(con, bare, None, None, None)
