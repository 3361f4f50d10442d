"""Guide metrics and A/B/C classes on a hand-made December: the one-statement metrics equal
a Python count over the same rows (and, narrowed to stores or a guide, the brand's run
filtered), a guide whose shares are opened but who sells nothing is flagged, a class
boundary is met exactly at its threshold, a re-run replaces the period's rows, and bad
rules name the field. SQLite and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from tests.guides.journey import Journey, at

from siyu.errors import ValidationError
from siyu.guides.attribution import attribute
from siyu.guides.binding import rebind
from siyu.guides.classes import classes, classify, current_rules, parse, save_rules
from siyu.guides.errors import ClassRulesMissing
from siyu.guides.metrics import BP, COUNTED, guide_metrics
from siyu.guides.shares import record_share, record_touch
from siyu.guides.tasks import to_second

DECEMBER = (at(1, 0), at(31, 0))
RUN = at(31, 1)
PLAYBOOKS = {
    "A": {"zh": "工具", "en": "Tools"},
    "B": {"zh": "SOP 与最佳案例", "en": "SOPs and best cases"},
    "C": {"zh": "督导", "en": "Supervision"},
}


def _rules(a_sales: int, a_conversion: int, b_sales: int) -> dict[str, Any]:
    return {
        "A": {
            "min": {"sales_fen": a_sales, "conversion_bp": a_conversion},
            "playbook": dict(PLAYBOOKS["A"]),
        },
        "B": {"min": {"sales_fen": b_sales}, "playbook": dict(PLAYBOOKS["B"])},
        "C": {"playbook": dict(PLAYBOOKS["C"])},
    }


def _touch(j: Journey, code: str, day: int, member: str | None = None, card: str = "") -> None:
    who = member or card
    record_touch(
        j.store.engine,
        j.g,
        code,
        f"{who}-{code}-{day}",
        at(day),
        member_id=j.members[member] if member else None,
        identity_id=j.cards[card] if card else None,
    )


def _task(
    j: Journey, guide: str, member: str, state: str, due: int, closed: datetime | None
) -> None:
    with j.store.engine.begin() as conn:
        task_id = conn.execute(
            text(
                "INSERT INTO guide_tasks (group_id, guide_id, member_id, kind, cycle, stage, "
                "state, expected_value_fen, urgency, due_on, created_at, updated_at) VALUES "
                "(:g, :gd, :m, 'next_order', :c, 'new_1', :s, 100, 1, :due, :t, :t) "
                "RETURNING task_id"
            ),
            {
                "g": j.g,
                "gd": guide,
                "m": j.members[member],
                "c": f"{state}-{due}",
                "s": state,
                "due": (at(1) + timedelta(days=due - 1)).date(),
                "t": at(1),
            },
        ).scalar_one()
        if closed is not None:
            conn.execute(
                text(
                    "INSERT INTO guide_task_events (group_id, task_id, state, at) "
                    "VALUES (:g, :i, :s, :t)"
                ),
                {"g": j.g, "i": task_id, "s": state, "t": closed},
            )


def _december(j: Journey) -> None:
    """G1 shares and sells; G2's share is opened by two members who buy nothing (spam);
    G3 sells at its till with a refund; G4 does nothing."""
    for guide, code in (("G1", "g1-coat"), ("G2", "g2-spam")):
        record_share(j.store.engine, j.g, guide, "product", "K1", code)
    j._run("UPDATE guide_shares SET created_at = :t WHERE group_id = :g", t=at(1))
    rebind(j.store.engine, j.g, j.members["M5"], "G1", "HQ", at=at(1))
    # G1: M1 opens twice, M2 once, M3 as a visitor card and as itself (one opener)
    _touch(j, "g1-coat", 2, member="M1")
    _touch(j, "g1-coat", 3, member="M1")
    _touch(j, "g1-coat", 2, member="M2")
    _touch(j, "g1-coat", 2, card="M3")
    _touch(j, "g1-coat", 4, member="M3")
    j.event("M1", "add_to_cart", at(3, 12))  # within 7 days of its open: carted
    j.event("M2", "add_to_cart", at(20))  # 18 days later: not the share's
    j.order("M1", "o-m1", at(4), channel="miniprogram", paid=30_000)
    j.order("M2", "o-m2", at(5), guide="G3", paid=20_000)  # the share wins over the till
    # G2: opened by M4 and M6, nothing bought through it
    _touch(j, "g2-spam", 3, member="M4")
    _touch(j, "g2-spam", 4, member="M6")
    # G3: a till order, part refunded in December, and a refund after the run
    j.order("M6", "o-m6", at(20), guide="G3", paid=10_000)
    j._run(
        "INSERT INTO refunds (group_id, refund_id, order_id, refunded_at, amount_fen) VALUES "
        "(:g, 'r1', 'o-m1', :t1, 3000), (:g, 'r2', 'o-m6', :t1, 2500), "
        "(:g, 'r3', 'o-m6', :t2, 1000)",
        t1=at(22),
        t2=RUN + timedelta(days=3),
    )
    # tasks: G1 done one and dismissed one in December, one open due in December, one open
    # due in January (not yet due), one done in November (another period)
    _task(j, "G1", "M1", "done", 10, at(10))
    _task(j, "G1", "M2", "dismissed", 10, at(11))
    _task(j, "G1", "M3", "open", 15, None)
    _task(j, "G1", "M4", "contacted", 40, None)
    _task(j, "G1", "M5", "done", 1, datetime(2024, 11, 20))
    attribute(j.store.engine, j.g, *DECEMBER, at=RUN)


def _by_python(j: Journey) -> dict[str, dict[str, int]]:
    """The same counts, from the raw rows, one Python loop per metric."""
    since, until = DECEMBER

    def q(sql: str) -> list[Any]:
        with j.store.engine.connect() as conn:
            return list(conn.execute(text(sql), {"g": j.g}).all())

    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    paid = {r[0]: r[1] for r in q("SELECT order_id, paid_fen FROM orders WHERE group_id = :g")}
    sold: dict[str, str] = {}
    buyers: dict[str, set[int]] = defaultdict(set)
    for order_id, guide, member, ordered in q(
        "SELECT order_id, guide_id, member_id, ordered_at FROM order_attributions "
        "WHERE group_id = :g"
    ):
        if since <= to_second(ordered) < until:
            sold[order_id] = guide
            out[guide]["orders"] += 1
            out[guide]["paid_fen"] += paid[order_id]
            buyers[guide].add(member)
    for order_id, amount, when in q(
        "SELECT order_id, amount_fen, refunded_at FROM refunds WHERE group_id = :g"
    ):
        if order_id in sold and to_second(when) < RUN:
            out[sold[order_id]]["refunded_fen"] += amount
    bound: dict[str, set[int]] = defaultdict(set)
    for guide, member, start, end in q(
        "SELECT guide_id, member_id, bound_at, ended_at FROM guide_bindings WHERE group_id = :g"
    ):
        if to_second(start) < until and (end is None or to_second(end) > since):
            bound[guide].add(member)
    shares: dict[int, str] = {}
    for share, guide, made in q(
        "SELECT share_id, guide_id, created_at FROM guide_shares WHERE group_id = :g"
    ):
        shares[share] = guide
        out[guide]["shares"] += since <= to_second(made) < until
    member_of = dict(q("SELECT identity_id, member_id FROM identities WHERE group_id = :g"))
    openers: dict[str, set[int]] = defaultdict(set)
    opens: list[tuple[str, int, datetime]] = []
    for share, member, identity, when in q(
        "SELECT share_id, member_id, identity_id, touched_at FROM share_touches WHERE group_id = :g"
    ):
        when = to_second(when)
        if since <= when < until:
            who = member or member_of[identity]
            out[shares[share]]["share_opens"] += 1
            openers[shares[share]].add(who)
            opens.append((shares[share], who, when))
    carts = [
        (m, to_second(t))
        for kind, m, t in q("SELECT type, member_id, occurred_at FROM events WHERE group_id = :g")
        if kind == "add_to_cart" and since <= to_second(t) < until
    ]
    for guide in {g for g, _, _ in opens}:
        out[guide]["carted_openers"] = len(
            {
                who
                for g, who, opened in opens
                for m, t in carts
                if g == guide and m == who and opened <= t < opened + timedelta(days=7)
            }
        )
    for guide, state, due, closed in q(
        "SELECT t.guide_id, t.state, t.due_on, e.at FROM guide_tasks t LEFT JOIN "
        "guide_task_events e ON e.task_id = t.task_id WHERE t.group_id = :g"
    ):
        due = date.fromisoformat(str(due)[:10])
        if state in ("done", "dismissed") and since <= to_second(closed) < until:
            out[guide][f"tasks_{state}"] += 1
        if state in ("open", "contacted") and since.date() <= due < until.date():
            out[guide]["tasks_overdue"] += 1
    for guide in set(out) | set(bound):
        out[guide]["buyers"] = len(buyers[guide])
        out[guide]["members_bound"] = len(bound[guide])
        out[guide]["members_served"] = len(buyers[guide] | bound[guide])
        out[guide]["share_openers"] = len(openers[guide])
    return {g: dict(v) for g, v in out.items()}


def test_metrics_equal_a_python_count_and_the_spammer_is_flagged(journey: Journey) -> None:
    j = journey
    _december(j)
    with j.store.engine.connect() as conn:
        found = {m.guide_id: m for m in guide_metrics(conn, j.g, *DECEMBER, at=RUN)}
    expected = _by_python(j)
    assert set(found) == {"G1", "G2", "G3", "G4"}
    for guide, metrics in found.items():
        for name in COUNTED:
            assert metrics.value(name) == expected.get(guide, {}).get(name, 0), (guide, name)
    g1, g2, g3, g4 = (found[g] for g in ("G1", "G2", "G3", "G4"))
    # G1: two orders through its share (M1's, and M2's bought at G3's till), PV 5, UV 3
    assert (g1.orders, g1.paid_fen, g1.refunded_fen) == (2, 50_000, 3000)
    assert (g1.share_opens, g1.share_openers, g1.carted_openers) == (5, 3, 1)
    assert g1.conversion_bp == 2 * BP // 3
    assert g1.refund_rate_bp == 3000 * BP // 50_000 and g1.sales_fen == 47_000
    assert (g1.members_bound, g1.buyers, g1.members_served) == (1, 2, 3)
    assert (g1.tasks_done, g1.tasks_dismissed, g1.tasks_overdue) == (1, 1, 1)
    assert g1.task_completion_bp == BP // 3
    # G3: its till order, the refund before the run counted, the later one not
    assert (g3.orders, g3.paid_fen, g3.refunded_fen, g3.share_opens) == (1, 10_000, 2500, 0)
    assert g3.conversion_bp is None and g3.task_completion_bp is None
    # G2's shares were opened twice and sold nothing: flagged; nobody else
    assert (g2.share_opens, g2.share_openers, g2.orders) == (2, 2, 0)
    assert [m.guide_id for m in found.values() if m.spam_risk] == ["G2"]
    assert not g4.spam_risk and g4.snapshot()["orders"] == 0


@pytest.mark.parametrize(
    ("stores", "guide_id"),
    [
        *[(("S1",), None), (("S2",), None), (("S1", "S2"), None), ((), None), (("S9",), None)],
        *[(None, "G1"), (None, "G2"), (None, "G3"), (("S1",), "G1"), (("S2",), "G1")],
    ],
)
def test_narrowed_metrics_equal_the_brands_filtered(
    journey: Journey, stores: tuple[str, ...] | None, guide_id: str | None
) -> None:
    j = journey
    _december(j)
    # given G1, G2, G3 at S1 and G4 at S2, when the statement is narrowed to stores or a guide
    with j.store.engine.connect() as conn:
        every = guide_metrics(conn, j.g, *DECEMBER, at=RUN)
        narrowed = guide_metrics(conn, j.g, *DECEMBER, at=RUN, stores=stores, guide_id=guide_id)
    # then it is the brand's run, filtered: same guides, same figures
    expected = [
        m
        for m in every
        if (stores is None or m.store_id in stores) and (guide_id is None or m.guide_id == guide_id)
    ]
    assert narrowed == expected
    assert any(m.orders or m.share_opens for m in every)  # the figures compared are not all 0


def test_classes_meet_thresholds_exactly_and_a_rerun_replaces(journey: Journey) -> None:
    j = journey
    _december(j)
    with pytest.raises(ClassRulesMissing):
        classify(j.store.engine, j.g, *DECEMBER, at=RUN)
    # G1 sells 47,000 at a conversion of 6,666 bp; G3 sells 7,500
    first = save_rules(j.store.engine, j.g, parse(_rules(47_000, 6_666, 7_500)))
    done = classify(j.store.engine, j.g, *DECEMBER, at=RUN)
    assert (done.by_class, done.flagged, done.rules_version) == ({"A": 1, "B": 1, "C": 2}, 1, 1)
    with j.store.engine.connect() as conn:
        now = {c.guide_id: c for c in classes(conn, j.g)}
    assert {g: c.guide_class for g, c in now.items()} == {
        "G1": "A",
        "G2": "C",
        "G3": "B",
        "G4": "C",
    }
    assert now["G2"].spam_risk and now["G2"].metrics["share_opens"] == 2
    assert now["G1"].playbook.en == "Tools" and now["G4"].playbook.zh == "督导"
    assert now["G1"].metrics["conversion_bp"] == 6666 and now["G1"].rules_version == 1
    # one fen above each threshold: G1 falls to B (its sales still meet B), G3 to C
    second = save_rules(j.store.engine, j.g, parse(_rules(47_001, 6_666, 7_501)))
    assert (first.version, second.version) == (1, 2)
    again = classify(j.store.engine, j.g, *DECEMBER, at=RUN + timedelta(hours=1))
    assert again.by_class == {"A": 0, "B": 1, "C": 3}
    with j.store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT COUNT(*) FROM guide_classes WHERE group_id = :g"), {"g": j.g}
        ).scalar_one()
        now = {c.guide_id: c for c in classes(conn, j.g)}
        assert current_rules(conn, j.g).version == 2
    assert rows == 4  # replaced, not added
    assert (now["G1"].guide_class, now["G3"].guide_class, now["G1"].rules_version) == ("B", "C", 2)
    # a later period is the current class; the history keeps both
    january = (at(31, 0), at(31, 0) + timedelta(days=31))
    classify(j.store.engine, j.g, *january, at=RUN)
    with j.store.engine.connect() as conn:
        now = {c.guide_id: c for c in classes(conn, j.g)}
        past = classes(conn, j.g, guide_id="G1", history=True)
        store_s2 = classes(conn, j.g, stores=("S2",))
        december = {c.guide_id: c.guide_class for c in classes(conn, j.g, *DECEMBER)}
    assert now["G1"].guide_class == "C" and now["G1"].period_start == january[0]
    assert [c.guide_class for c in past] == ["C", "B"]
    assert [c.guide_id for c in store_s2] == ["G4"]
    assert december == {"G1": "B", "G2": "C", "G3": "C", "G4": "C"}  # the period's, kept


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["A"]["min"].update(salez_fen=1), "A.min"),
        (lambda d: d["B"]["min"].update(sales_fen=-1), "B.min.sales_fen"),
        (lambda d: d["C"].update(min={"orders": 1}), "C.min"),
        (lambda d: d["A"]["playbook"].pop("zh"), "A.playbook.zh"),
        (lambda d: d.pop("B"), "B"),
    ],
)
def test_bad_rules_name_the_field(change: Any, field: str) -> None:
    doc = _rules(1, 1, 1)
    change(doc)
    with pytest.raises(ValidationError) as raised:
        parse(doc)
    assert raised.value.field == field, raised.value
