"""HQ's programme by stage and training per audience, on SQLite and PostgreSQL: the stage in
force at its edges (a period starting on a stage's first day, before the first stage), the
programme version a period is reported by (the one in force at its end), the focus metrics
met or not against a Python count over the raw rows, bad programmes naming the field, and a
training item's audience following a guide who changes class between periods (an HQ task's
audience is its assignees)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from tests.guides.journey import Journey, at

from siyu.errors import ValidationError
from siyu.guides.attribution import attribute
from siyu.guides.classes import classify, save_rules
from siyu.guides.classes import parse as parse_rules
from siyu.guides.errors import ProgrammeMissing, ProgrammeNotStarted
from siyu.guides.metrics import BP
from siyu.guides.models import guide_programmes
from siyu.guides.programme import (
    Programme,
    current_programme,
    parse,
    programme_at,
    programme_report,
    save_programme,
    stage_for,
)
from siyu.guides.shares import record_share, record_touch
from siyu.guides.tasks import to_second
from siyu.guides.training import complete, parse_item, save_item, training_progress

NOVEMBER = (datetime(2024, 11, 1), at(1, 0))
DECEMBER = (at(1, 0), datetime(2025, 1, 1))
RUN = datetime(2025, 1, 1, 1)
LATER = datetime(2100, 1, 1)  # a period's end after every save: the current version


def _programme() -> dict[str, Any]:
    """E-Land's order: sales first, then sharing and what the shares draw."""
    return {
        "stages": [
            {
                "code": "sales",
                "name_zh": "销售",
                "name_en": "Sales",
                "starts_on": "2024-11-01",
                "focus": [{"metric": "sales_fen", "min": 10_000}],
            },
            {
                "code": "sharing",
                "name_zh": "分享",
                "name_en": "Sharing",
                "starts_on": "2024-12-01",
                "focus": [
                    {"metric": "sales_fen", "min": 45_000},  # G1 meets it exactly
                    {"metric": "share_openers", "min": 2},
                    {"metric": "conversion_bp", "min": 5_000},
                    {"metric": "refund_rate_bp", "max": 1_000},  # G1 meets it exactly
                    {"metric": "orders"},  # watched, no target
                ],
            },
            {
                "code": "conversion",
                "name_zh": "转化",
                "name_en": "Conversion",
                "starts_on": "2025-01-01",
                "focus": [{"metric": "carted_openers"}],
            },
        ]
    }


def test_the_stage_in_force_at_its_edges(journey: Journey) -> None:
    j = journey
    engine = j.store.engine
    with engine.connect() as conn, pytest.raises(ProgrammeMissing):
        stage_for(conn, j.g, at(1, 0), LATER)
    # a programme that breaks a rule spanning stages is refused whole: nothing stored
    unsorted = _programme()
    unsorted["stages"].reverse()
    with pytest.raises(ValidationError):
        save_programme(engine, j.g, Programme.model_validate(unsorted))
    with engine.connect() as conn, pytest.raises(ProgrammeMissing):
        current_programme(conn, j.g)
    saved = save_programme(engine, j.g, parse(_programme()))
    with engine.connect() as conn:
        assert stage_for(conn, j.g, at(1, 0), LATER)[1].code == "sharing"  # exactly its first day
        assert stage_for(conn, j.g, datetime(2024, 11, 30, 23, 59, 59), LATER)[1].code == "sales"
        assert stage_for(conn, j.g, datetime(2024, 11, 1), LATER)[1].code == "sales"
        assert stage_for(conn, j.g, datetime(2025, 6, 1), LATER)[1].code == "conversion"  # the last
        with pytest.raises(ProgrammeNotStarted) as early:
            stage_for(conn, j.g, datetime(2024, 10, 31, 23, 59, 59), LATER)
        with pytest.raises(ProgrammeNotStarted):
            programme_report(conn, j.g, datetime(2024, 10, 1), datetime(2024, 11, 1), RUN)
    assert early.value.code == "programme_not_started"
    assert "2024-11-01" in str(early.value) and str(early.value).startswith("since:")
    assert saved.version == 1
    assert save_programme(engine, j.g, parse(_programme())).version == 2


def _saved_at(j: Journey, version: int, when: datetime) -> None:
    """Date a version's save (Core, so the time is stored as a save stores it)."""
    with j.store.engine.begin() as conn:
        conn.execute(
            guide_programmes.update()
            .where(guide_programmes.c.group_id == j.g, guide_programmes.c.version == version)
            .values(created_at=when)
        )


def test_a_period_is_reported_by_the_version_in_force_at_its_end(journey: Journey) -> None:
    j = journey
    engine = j.store.engine
    _facts(j)
    # given v1, saved mid-November, and v2, saved at the very first instant of January,
    # which renames December's stage and raises its sales target
    save_programme(engine, j.g, parse(_programme()))
    _saved_at(j, 1, datetime(2024, 11, 15, 9))
    second = _programme()
    second["stages"][1].update(code="sharing2", focus=[{"metric": "sales_fen", "min": 90_000}])
    save_programme(engine, j.g, parse(second))
    _saved_at(j, 2, DECEMBER[1])
    with engine.connect() as conn:
        december = programme_report(conn, j.g, *DECEMBER, at=RUN)
        # the same period a second longer: still open when v2 was saved
        to_the_second = programme_report(
            conn, j.g, DECEMBER[0], DECEMBER[1] + timedelta(seconds=1), at=RUN
        )
        # a period that ended before v1's save had none in force: the current version
        november_week = programme_at(conn, j.g, datetime(2024, 11, 8))
        later = programme_report(conn, j.g, DECEMBER[0], datetime(2025, 2, 1), at=RUN)
        current = current_programme(conn, j.g)
    # December ended exactly when v2 was saved: v1's stage and target, and it says so
    assert (december.version, december.stage.code) == (1, "sharing")
    assert {g.guide_id: g.met_all for g in december.guides}["G1"] is True  # 45,000 >= 45,000
    # a period still running when v2 was saved (even by a second) reads v2
    assert (to_the_second.version, to_the_second.stage.code) == (2, "sharing2")
    assert (later.version, later.stage.code) == (2, "sharing2")
    assert {g.guide_id: g.met_all for g in later.guides}["G1"] is False  # 45,000 < 90,000
    assert november_week.version == 2
    # the programme itself is the current version
    assert current.version == 2


def _facts(j: Journey) -> None:
    """December: G1 sells twice at its till (one order part refunded) and its share is
    opened by two members who buy nothing; G2's share is opened twice by one member; G3
    sells once, refunded in full; G4 does nothing. G1 also sold in November (another
    period)."""
    j.order("M1", "o-nov", datetime(2024, 11, 20, 10), guide="G1", paid=99_000)
    j.order("M1", "o1", at(2), guide="G1", paid=30_000)
    j.order("M2", "o2", at(3), guide="G1", paid=20_000)
    j.order("M6", "o3", at(20), guide="G3", paid=10_000)
    j._run(
        "INSERT INTO refunds (group_id, refund_id, order_id, refunded_at, amount_fen) VALUES "
        "(:g, 'r1', 'o1', :t, 5000), (:g, 'r3', 'o3', :t, 10000), "
        "(:g, 'r-late', 'o2', :late, 20000)",
        t=at(21),
        late=RUN + timedelta(days=2),  # after the report's moment: not counted
    )
    for guide, code in (("G1", "g1-coat"), ("G2", "g2-bag")):
        record_share(j.store.engine, j.g, guide, "product", "K1", code)
    j._run("UPDATE guide_shares SET created_at = :t WHERE group_id = :g", t=at(1))
    for code, member, day in (("g1-coat", "M3", 5), ("g1-coat", "M4", 6), ("g2-bag", "M5", 7)):
        record_touch(
            j.store.engine, j.g, code, f"{member}-{day}", at(day), member_id=j.members[member]
        )
    record_touch(j.store.engine, j.g, "g2-bag", "M5-again", at(8), member_id=j.members["M5"])
    attribute(j.store.engine, j.g, NOVEMBER[0], DECEMBER[1], at=RUN)


def _by_python(j: Journey, since: datetime, until: datetime) -> dict[str, dict[str, int | None]]:
    """The focus metrics from the raw rows, one loop each (refunds recorded before RUN)."""

    def q(sql: str) -> list[Any]:
        with j.store.engine.connect() as conn:
            return list(conn.execute(text(sql), {"g": j.g}).all())

    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    paid = dict(q("SELECT order_id, paid_fen FROM orders WHERE group_id = :g"))
    sold: dict[str, str] = {}
    for order_id, guide, ordered in q(
        "SELECT order_id, guide_id, ordered_at FROM order_attributions WHERE group_id = :g"
    ):
        if since <= to_second(ordered) < until:
            sold[order_id] = guide
            counts[guide]["orders"] += 1
            counts[guide]["paid"] += paid[order_id]
    for order_id, amount, when in q(
        "SELECT order_id, amount_fen, refunded_at FROM refunds WHERE group_id = :g"
    ):
        if order_id in sold and to_second(when) < RUN:
            counts[sold[order_id]]["refunded"] += amount
    share_guide = dict(q("SELECT share_id, guide_id FROM guide_shares WHERE group_id = :g"))
    openers: dict[str, set[int]] = defaultdict(set)
    for share, member, when in q(
        "SELECT share_id, member_id, touched_at FROM share_touches WHERE group_id = :g"
    ):
        if since <= to_second(when) < until:
            openers[share_guide[share]].add(member)
    found: dict[str, dict[str, int | None]] = {}
    for (guide,) in q("SELECT guide_id FROM guides WHERE group_id = :g"):
        c, uv = counts[guide], len(openers[guide])
        found[guide] = {
            "sales_fen": c["paid"] - c["refunded"],
            "orders": c["orders"],
            "share_openers": uv,
            "conversion_bp": c["orders"] * BP // uv if uv else None,
            "refund_rate_bp": c["refunded"] * BP // c["paid"] if c["paid"] else None,
        }
    return found


def _meets(value: int | None, low: int | None, high: int | None) -> bool | None:
    if low is None and high is None:
        return None
    return value is not None and (low is None or value >= low) and (high is None or value <= high)


def test_focus_metrics_met_or_not_equal_a_python_count(journey: Journey) -> None:
    j = journey
    _facts(j)
    save_programme(j.store.engine, j.g, parse(_programme()))
    with j.store.engine.connect() as conn:
        report = programme_report(conn, j.g, *DECEMBER, at=RUN)
        november = programme_report(conn, j.g, *NOVEMBER, at=RUN)
        s2 = programme_report(conn, j.g, *DECEMBER, at=RUN, stores=("S2",))
    expected = _by_python(j, *DECEMBER)
    assert report.stage.code == "sharing" and report.version == 1
    targets = {f.metric: (f.min, f.max) for f in report.stage.focus}
    assert [g.guide_id for g in report.guides] == ["G1", "G2", "G3", "G4"]
    for g in report.guides:
        for m in g.measured:
            assert m.value == expected[g.guide_id][m.metric], (g.guide_id, m.metric)
            assert m.met == _meets(m.value, *targets[m.metric]), (g.guide_id, m.metric)
    met = {g.guide_id: g.met_all for g in report.guides}
    assert met == {"G1": True, "G2": False, "G3": False, "G4": False}
    g1 = {m.metric: m for m in report.guides[0].measured}
    assert (g1["sales_fen"].value, g1["refund_rate_bp"].value) == (45_000, 1_000)  # the edges
    assert g1["orders"].met is None  # no target
    g4 = {m.metric: m for m in report.guides[3].measured}
    assert g4["conversion_bp"].value is None and g4["conversion_bp"].met is False
    # totals: counts summed, ratios over the summed counts; guides meeting each target
    totals = {t.metric: t for t in report.totals}
    orders = sum(e["orders"] or 0 for e in expected.values())
    uv = sum(e["share_openers"] or 0 for e in expected.values())
    assert totals["sales_fen"].value == sum(e["sales_fen"] or 0 for e in expected.values())
    assert totals["conversion_bp"].value == orders * BP // uv
    assert totals["refund_rate_bp"].value == 15_000 * BP // 60_000
    assert [totals[n].guides_met for n in targets] == [1, 1, 1, 1, 0]
    assert all(t.guides == 4 for t in report.totals)
    # November is the sales stage: only sales, and only G1 sold
    assert november.stage.code == "sales" and [f.metric for f in november.stage.focus] == [
        "sales_fen"
    ]
    assert {g.guide_id: g.met_all for g in november.guides} == {
        "G1": True,
        "G2": False,
        "G3": False,
        "G4": False,
    }
    # a store's report holds its guides and totals over them alone
    assert [g.guide_id for g in s2.guides] == ["G4"] and s2.totals[0].value == 0


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            lambda d: d["stages"][0]["focus"].append({"metric": "salez_fen"}),
            "stages.0.focus.1",
            "salez_fen",
        ),
        (lambda d: d["stages"][1].update(focus=[]), "stages.1.focus", "at least 1"),
        (lambda d: d["stages"][1].update(starts_on="2024-10-01"), "stages.1.starts_on", "order"),
        (lambda d: d["stages"][2].update(starts_on="2024-12-01"), "stages.2.starts_on", "overlap"),
        (lambda d: d["stages"][2].update(code="sales"), "stages.2.code", "already"),
        (lambda d: d["stages"][0]["focus"][0].update(min=-1), "stages.0.focus.0.min", ""),
        (lambda d: d["stages"][0]["focus"][0].update(max=1), "stages.0.focus.0", "above max"),
        (lambda d: d["stages"][1]["focus"].append({"metric": "orders"}), "stages.1.focus", "twice"),
        (lambda d: d.update(stages=[]), "stages", ""),
        (lambda d: d["stages"][0].pop("name_zh"), "stages.0.name_zh", ""),
    ],
)
def test_bad_programmes_name_the_field(change: Any, field: str, words: str) -> None:
    doc = _programme()
    change(doc)
    with pytest.raises(ValidationError) as raised:
        parse(doc)
    assert raised.value.field.startswith(field), raised.value
    assert words in raised.value.rule, raised.value


def _task(j: Journey, guide: str, member: str, code: str, created: datetime) -> None:
    """An HQ task as `guides.campaigns.assign_tasks` writes it."""
    j._run(
        "INSERT INTO guide_tasks (group_id, guide_id, member_id, kind, cycle, stage, state, "
        "expected_value_fen, urgency, due_on, created_at, updated_at, campaign_code, script) "
        "VALUES (:g, :gd, :m, 'hq', :c, '-', 'open', 0, 0, :due, :t, :t, :c, 'hi')",
        gd=guide,
        m=j.members[member],
        c=code,
        due=(created + timedelta(days=7)).date(),
        t=created,
    )


def test_training_counts_each_items_audience_as_guides_change_class(journey: Journey) -> None:
    j = journey
    engine = j.store.engine
    # given November: G1 sells twice (A), G2 once (B); December: G2 twice (A), G1 once (B)
    for member, order_id, when, guide in (
        ("M1", "n1", datetime(2024, 11, 5, 10), "G1"),
        ("M2", "n2", datetime(2024, 11, 6, 10), "G1"),
        ("M3", "n3", datetime(2024, 11, 7, 10), "G2"),
        ("M1", "d1", at(5), "G2"),
        ("M2", "d2", at(6), "G2"),
        ("M3", "d3", at(7), "G1"),
    ):
        j.order(member, order_id, when, guide=guide)
    attribute(engine, j.g, NOVEMBER[0], DECEMBER[1], at=RUN)
    rules = {
        "A": {"min": {"orders": 2}, "playbook": {"zh": "工具", "en": "Tools"}},
        "B": {"min": {"orders": 1}, "playbook": {"zh": "SOP", "en": "SOPs"}},
        "C": {"playbook": {"zh": "督导", "en": "Supervision"}},
    }
    save_rules(engine, j.g, parse_rules(rules))
    assert classify(engine, j.g, *NOVEMBER, at=RUN).by_class == {"A": 1, "B": 1, "C": 2}
    assert classify(engine, j.g, *DECEMBER, at=RUN).by_class == {"A": 1, "B": 1, "C": 2}
    # items for class A, for class B, for an HQ task (assigned to G3 on 5 December)
    for code, extra in (("tools-a", {"for_class": "A"}), ("sop-b", {"for_class": "B"})):
        item = {"code": code, "title_zh": "培训", "title_en": "Training", "body": "x", **extra}
        save_item(engine, j.g, parse_item(item))
    item = {"code": "call-hq", "title_zh": "话术", "title_en": "Script", "body": "y"}
    save_item(engine, j.g, parse_item({**item, "for_task": "winback"}))
    _task(j, "G3", "M4", "winback", at(5))
    for guide, code, when in (
        ("G1", "tools-a", datetime(2024, 11, 25)),
        ("G2", "sop-b", datetime(2024, 11, 26)),
        ("G2", "tools-a", at(20)),
        ("G3", "call-hq", at(10)),
        ("G4", "call-hq", at(11)),  # never assigned the task: outside its audience
    ):
        assert complete(engine, j.g, guide, code, at=when)
    # when HQ reads the completion as of 1 December (November's classes) and 1 January
    with engine.connect() as conn:
        before = {i.code: i for i in training_progress(conn, j.g, at=NOVEMBER[1])}
        after = {i.code: i for i in training_progress(conn, j.g, at=DECEMBER[1])}
        mine = {i.code: i for i in training_progress(conn, j.g, "G1", at=DECEMBER[1])}

    def rate(i: Any) -> tuple[int, int, int]:
        return i.completed, i.guides, i.outside

    # then in November G1 is the A audience, G2 the B one, and the task has none yet
    assert rate(before["tools-a"]) == (1, 1, 0)
    assert rate(before["sop-b"]) == (1, 1, 0)
    assert rate(before["call-hq"]) == (0, 0, 0)
    # in December they swapped: G1's A item completion is counted apart, not in the rate
    assert rate(after["tools-a"]) == (1, 1, 1)
    assert rate(after["sop-b"]) == (0, 1, 1)
    assert rate(after["call-hq"]) == (1, 1, 1)
    assert after["tools-a"].by_class == {"A": (1, 1), "B": (1, 1), "C": (0, 2), "-": (0, 0)}
    assert before["tools-a"].by_class["A"] == (1, 1) and before["tools-a"].by_class["B"] == (0, 1)
    assert mine["tools-a"].done_at == datetime(2024, 11, 25) and mine["sop-b"].done_at is None
