"""The effect of an HQ task on SQLite and PostgreSQL: forty at-risk members of guide G1
(beside the small brand), half held out by hash; orders in the window are counted per arm
and the lift's Welch interval matches SciPy's on the same per-member values; completion
counts each state and the overdue."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
from scipy import stats
from sqlalchemy import text
from tests.brandfiles import write
from tests.guides.conftest import AS_OF, Brand

from siyu.auth.principal import Principal, Role
from siyu.config import DEFAULT_STRONG_TYPES
from siyu.experiments.guide_task_effect import task_report
from siyu.guides.campaigns import assign_tasks, author_task, parse_task
from siyu.guides.service import change_state
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory

REFS = [f"X{i:02d}" for i in range(40)]


def order(ref: str, order_id: str, at: str, paid: int) -> dict[str, str | None]:
    return {
        "order_id": order_id,
        "brand_id": "B1",
        "channel": "pos",
        "buyer_type": "card",
        "buyer_value": f"C-{ref}",
        "ordered_at": at,
        "total_fen": str(paid),
        "paid_fen": str(paid),
        "store_id": "S1",
        "guide_id": "G1",
    }


def load(brand: Brand, directory: Path, files: dict[str, list[dict[str, str | None]]]) -> None:
    for name, rows in files.items():
        write(directory / f"{name}.csv", rows)
    engine, g = brand.store.engine, brand.store.group_id
    import_directory(engine, brand.vault, g, directory, directory / "rejects")
    resolve_all(engine, g, DEFAULT_STRONG_TYPES)


def test_effect_against_the_held_out_control(brand: Brand, tmp_path: Path) -> None:
    engine, g = brand.store.engine, brand.store.group_id
    # given forty more members of G1, each with one order in June, in a segment-like stage
    members = [
        {
            "member_ref": ref,
            "brand_id": "B1",
            "registered_at": "2024-01-01T10:00:00",
            "channel": "pos",
            "card": f"C-{ref}",
            "name": f"会员{ref}",
        }
        for ref in REFS
    ]
    june = [order(ref, f"{ref}-0", "2024-06-01T10:00:00", 5_000) for ref in REFS]
    load(brand, tmp_path / "x", {"members": members, "orders": june})
    with engine.begin() as conn:
        ids = dict(
            conn.execute(
                text("SELECT source_ref, member_id FROM members WHERE group_id = :g"), {"g": g}
            ).all()
        )
        for ref in REFS:
            conn.execute(
                text(
                    "INSERT INTO member_stages (group_id, member_id, stage, orders, "
                    "last_order_at, computed_at) VALUES (:g, :m, 'new_2', 1, :t, :t)"
                ),
                {"g": g, "m": ids[ref], "t": datetime(2024, 6, 1, 10)},
            )
    task = parse_task(
        {
            "code": "second-order",
            "title_zh": "第二单",
            "title_en": "Second order",
            "target": {"kind": "stage", "value": "new_2"},
            "due_on": "2025-01-10",
            "script": "新品到了",
            "holdout_pct": 50,
        }
    )
    author_task(engine, g, task)
    done = assign_tasks(engine, g, "second-order", AS_OF)
    assert done.tasked + done.control == 40 and done.no_guide == 0
    assert min(done.tasked, done.control) >= 2
    with engine.connect() as conn:
        arm = {
            int(r[0]): str(r[1])
            for r in conn.execute(
                text("SELECT member_id, arm FROM guide_task_targets WHERE group_id = :g"),
                {"g": g},
            )
        }
    # when members order: in the window (tasked more), before it and after it (not counted)
    paid: dict[str, list[float]] = {"task": [], "control": []}
    later = []
    for i, ref in enumerate(REFS):
        side = arm[ids[ref]]
        amount = (3_000 + 100 * i) if side == "task" and i % 2 == 0 else 0
        if side == "control" and i % 5 == 0:
            amount = 2_000 + 50 * i
        if amount:
            later.append(order(ref, f"{ref}-1", "2025-01-05T12:00:00", amount))
        later.append(order(ref, f"{ref}-late", "2025-01-11T00:00:00", 99_999))
        paid[side].append(float(amount))
    load(brand, tmp_path / "later", {"orders": later})
    # and G1 works its list: one done, one dismissed, the rest still open when due
    guide = Principal(key_id=3, group_id=g, role=Role.GUIDE, guide_id="G1")
    with engine.connect() as conn:
        tasks = [
            int(r[0])
            for r in conn.execute(
                text(
                    "SELECT task_id FROM guide_tasks WHERE campaign_code = 'second-order' "
                    "AND group_id = :g ORDER BY task_id"
                ),
                {"g": g},
            )
        ]
    change_state(engine, guide, tasks[0], "done")
    change_state(engine, guide, tasks[1], "dismissed")
    change_state(engine, guide, tasks[2], "contacted")
    report = task_report(engine, g, "second-order", datetime(2025, 2, 1))
    # then completion and the arms' outcomes
    n = done.tasked
    assert report.completion == {
        "assigned": n,
        "open": n - 3,
        "contacted": 1,
        "done": 1,
        "dismissed": 1,
        "overdue": n - 2,
    }
    assert report.window == (AS_OF, datetime(2025, 1, 11))
    assert report.arms["task"].members == n
    assert report.arms["task"].revenue_fen == sum(paid["task"])
    assert report.arms["control"].revenue_fen == sum(paid["control"])
    assert report.arms["task"].orders == sum(1 for p in paid["task"] if p)
    # and the lift is Welch's, as SciPy computes it on the per-member values
    assert report.revenue is not None
    welch = stats.ttest_ind(paid["task"], paid["control"], equal_var=False)
    interval = welch.confidence_interval(0.95)
    assert np.isclose(
        report.revenue.absolute.estimate, np.mean(paid["task"]) - np.mean(paid["control"])
    )
    assert np.isclose(report.revenue.absolute.ci_low, interval.low)
    assert np.isclose(report.revenue.absolute.ci_high, interval.high)
    assert np.isclose(report.revenue.absolute.p_value, welch.pvalue)


def test_report_before_assignment_says_why(brand: Brand) -> None:
    engine, g = brand.store.engine, brand.store.group_id
    author_task(
        engine,
        g,
        parse_task(
            {
                "code": "later",
                "title_zh": "稍后",
                "title_en": "Later",
                "target": {"kind": "stage", "value": "lapsed"},
                "due_on": "2025-01-10",
                "script": "x",
            }
        ),
    )
    report = task_report(engine, g, "later", AS_OF)
    assert report.completion["assigned"] == 0
    assert (report.revenue, report.why) == (None, "not assigned yet")
