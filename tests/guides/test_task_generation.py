"""Generating follow-up tasks from the lifecycle stages, on SQLite and PostgreSQL: the
right members get the right task for the right guide, ranked by expected value then
urgency; generating again creates nothing twice; a closed task is not made again until
the member's stage changes; a live task whose member moved on is closed by the job."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from tests.guides.conftest import PLAN, Brand

from siyu.guides.service import generate_tasks
from siyu.guides.tasks import plan_from_lifecycle


def generate(brand: Brand) -> tuple[int, int, int]:
    with brand.store.engine.begin() as conn:
        done = generate_tasks(conn, brand.store.group_id, PLAN)
    return done.created, done.closed, done.live


def test_tasks_go_to_the_right_members_and_guides_with_their_value(brand: Brand) -> None:
    # given the stages as of 2024-12-31, knee 4
    # when tasks are generated
    assert generate(brand) == (4, 0, 4)
    # then: a next-order task for the member one order before the knee (new_3), win-backs
    # for the members at risk and lapsed, each for the guide who served the member last;
    # nobody served Q1, and new_1 and loyal members call for no task
    found = {(m, g, k, s) for m, g, k, s, _, _ in brand.task_rows()}
    assert found == {
        ("N3", "G1", "next_order", "open"),
        ("R1", "G1", "win_back_at_risk", "open"),
        ("R2", "G1", "win_back_at_risk", "open"),
        ("L1", "G2", "win_back_lapsed", "open"),
    }
    values = {m: (v, u) for m, _, _, _, v, u in brand.task_rows()}
    # value = average order value x P(orders again): the curve at k = 3 for next_order,
    # the stage's return share for win-backs
    assert values["N3"][0] == round(10_000 * 0.5)
    assert values["R1"][0] == values["R2"][0] == round(5_000 * 0.2)
    assert values["L1"][0] == round(8_000 * 0.05)
    # urgency: days since the last order relative to the stage's edge (per mille)
    assert values["N3"][1] == round(1000 * 30 / 60)  # 30 days of the 60 before at risk
    assert values["R1"][1] == round(1000 * 77 / 120)
    assert values["R2"][1] == round(1000 * 107 / 120)
    assert values["L1"][1] == round(1000 * 120 / 274)  # lapsed 274 days ago: chances fall


def test_generating_twice_creates_nothing_twice(brand: Brand) -> None:
    assert generate(brand)[0] == 4
    assert generate(brand) == (0, 0, 4)
    assert brand.store.count("guide_tasks") == 4
    # one "open" event per task: the log of who made it (the generator, no key) and when
    with brand.store.engine.connect() as conn:
        events = conn.execute(
            text("SELECT state, actor_key_id FROM guide_task_events WHERE group_id = :g"),
            {"g": brand.store.group_id},
        ).all()
    assert sorted(events) == [("open", None)] * 4


def test_ranked_by_expected_value_then_urgency(brand: Brand) -> None:
    import asyncio

    from siyu.guides.queries import task_page
    from siyu.store.reads import make_reads

    generate(brand)

    async def ranked(guide: str | None) -> list[int]:
        reads = make_reads(brand.store.engine)
        try:
            async with reads.connection() as reader:
                page = await task_page(reader, brand.store.group_id, guide, ["open"], 50)
        finally:
            await reads.close()
        return [t.member_id for t in page.tasks]

    m = brand.members
    # N3 is worth most; R1 and R2 are worth the same, R2 is more urgent (nearer lapsing)
    assert asyncio.run(ranked("G1")) == [m["N3"], m["R2"], m["R1"]]
    assert asyncio.run(ranked(None)) == [m["N3"], m["R2"], m["R1"], m["L1"]]


def test_a_closed_task_is_not_made_again_until_the_stage_changes(brand: Brand) -> None:
    generate(brand)
    # given R2's win-back dismissed and L1's done
    with brand.store.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE guide_tasks SET state = CASE member_id WHEN :r THEN 'dismissed' "
                "ELSE 'done' END WHERE group_id = :g AND member_id IN (:r, :l)"
            ),
            {"g": brand.store.group_id, "r": brand.members["R2"], "l": brand.members["L1"]},
        )
    # when the job runs again with the same stages: nothing is made again
    assert generate(brand) == (0, 0, 2)
    # when R2's stage changes (it lapses, with no new order): a lapsed win-back is made
    brand.set_stage("R2", "lapsed", 2, "2024-09-15T10:00:00")
    assert generate(brand) == (1, 0, 3)
    assert ("R2", "G1", "win_back_lapsed", "open") in {r[:4] for r in brand.task_rows()}


def test_a_member_who_moved_on_has_the_live_task_closed_by_the_job(brand: Brand) -> None:
    generate(brand)
    # given R1 (at risk) orders again and is new_3 now: one order before the knee
    brand.order("R1", "R1-back", "2024-12-28", 6_000, "G1")
    brand.set_stage("R1", "new_3", 3, "2024-12-28T10:00:00")
    # and N3 lapses without ordering (a stage change with no order)
    brand.set_stage("N3", "lapsed", 3, "2024-12-01T10:00:00")
    created, closed, live = generate(brand)
    assert (created, closed) == (2, 2)
    rows = brand.task_rows()
    # then R1's win-back is done (the member came back), N3's next order dismissed
    assert ("R1", "G1", "win_back_at_risk", "done") in {r[:4] for r in rows}
    assert ("N3", "G1", "next_order", "dismissed") in {r[:4] for r in rows}
    # and each has the task its new stage calls for
    assert ("R1", "G1", "next_order", "open") in {r[:4] for r in rows}
    assert ("N3", "G1", "win_back_lapsed", "open") in {r[:4] for r in rows}
    assert live == 4


def test_the_plan_is_read_from_the_lifecycle_snapshot() -> None:
    payload = {
        "as_of": "2024-12-31T00:00:00",
        "knee": 4,
        "config": {"at_risk_days": 45, "lapsed_days": 90, "window_days": 90},
        "curve": [
            {"k": 1, "rate": 0.2},
            {"k": 2, "rate": 0.35},
            {"k": 3, "rate": 0.5},
            {"k": 4, "rate": None},
        ],
        "transitions": {
            "matrix": {
                "at_risk": {"at_risk": 50, "lapsed": 40, "new_2": 6, "loyal": 4},
                "lapsed": {"lapsed": 95, "new_1": 5},
            }
        },
    }
    plan = plan_from_lifecycle(payload)
    assert plan is not None
    assert plan.stages == {
        "at_risk": "win_back_at_risk",
        "lapsed": "win_back_lapsed",
        "new_3": "next_order",
    }
    assert (plan.at_risk_days, plan.lapsed_days) == (45, 90)
    assert plan.rates == {1: 0.2, 2: 0.35, 3: 0.5}
    # a month's share who came back, over the 90-day window: 1 - (1 - m) ^ 3
    assert plan.returns == pytest.approx({"at_risk": 1 - 0.9**3, "lapsed": 1 - 0.95**3})
    assert plan_from_lifecycle({**payload, "knee": None}) is None


def test_a_members_clv_is_the_tasks_value_and_ranks_them(brand: Brand) -> None:
    import asyncio

    from siyu.analytics.models import member_clv
    from siyu.guides.queries import task_page
    from siyu.store.reads import make_reads

    # given R1 and R2 at risk since the same day (equal urgency), and the snapshot's CLV
    # written back for N3, R1 and R2 (R1 worth three times R2), none for L1
    brand.set_stage("R1", "at_risk", 2, "2024-09-15T10:00:00")
    m = brand.members
    with brand.store.engine.begin() as conn:
        conn.execute(
            member_clv.insert(),
            [
                {
                    "group_id": brand.store.group_id,
                    "member_id": m[name],
                    "expected_purchases": purchases,
                    "p_alive": alive,
                    "clv_fen": fen,
                    "horizon_days": 364,
                    "computed_at": PLAN.as_of,
                }
                for name, purchases, alive, fen in (
                    ("N3", 2.5, 0.9, 50_000),
                    ("R1", 1.8, 0.6, 90_000),
                    ("R2", 0.6, 0.6, 30_000),
                )
            ],
        )
    # when tasks are generated
    generate(brand)
    # then a member's task is worth the member's CLV; L1, without one, one order's worth
    rows = {r[0]: r for r in brand.task_rows()}
    assert {n: rows[n][4] for n in rows} == {
        "N3": 50_000,
        "R1": 90_000,
        "R2": 30_000,
        "L1": round(8_000 * 0.05),
    }
    assert rows["R1"][5] == rows["R2"][5]  # equal urgency

    async def ranked() -> list[int]:
        reads = make_reads(brand.store.engine)
        try:
            async with reads.connection() as reader:
                page = await task_page(reader, brand.store.group_id, "G1", ["open"], 50)
        finally:
            await reads.close()
        return [t.member_id for t in page.tasks]

    # and the guide's list puts the member worth most first: R1 before R2 (same urgency)
    # and before N3 (the next order of a member worth less)
    assert asyncio.run(ranked()) == [m["R1"], m["N3"], m["R2"]]


def test_live_tasks_follow_the_latest_value_and_closed_ones_keep_theirs(brand: Brand) -> None:
    from siyu.analytics.models import member_clv

    # given tasks made before any CLV was written back (one order's worth each), and R2's
    # task dismissed by its guide
    generate(brand)
    before = {r[0]: r for r in brand.task_rows()}
    with brand.store.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE guide_tasks SET state = 'dismissed' WHERE group_id = :g AND member_id = :m"
            ),
            {"g": brand.store.group_id, "m": brand.members["R2"]},
        )
        # when the next snapshot writes back R1's and R2's CLV and tasks are generated again
        conn.execute(
            member_clv.insert(),
            [
                {
                    "group_id": brand.store.group_id,
                    "member_id": brand.members[name],
                    "expected_purchases": 1.0,
                    "p_alive": 0.5,
                    "clv_fen": fen,
                    "horizon_days": 364,
                    "computed_at": PLAN.as_of,
                }
                for name, fen in (("R1", 77_000), ("R2", 55_000))
            ],
        )
    created, _, _ = generate(brand)
    after = {r[0]: r for r in brand.task_rows()}
    # then no task is made twice, R1's open task is now worth its CLV, and R2's dismissed
    # task keeps the value it had when it was closed
    assert created == 0
    assert before["R1"][4] != 77_000 and after["R1"][4] == 77_000
    assert after["R2"][4] == before["R2"][4]
