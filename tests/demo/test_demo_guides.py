"""The demo's guides (issue #19 acceptance: "the demo shows guides with classes, tasks and
commission statements", and "metrics per stage of the programme"): the HQ task's tasks
are the target's members with a guide less the held-out control, counted apart from the
service; the programme's met counts are the metrics' against the stage's targets; and a
second run of the step changes nothing in the store."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from sqlalchemy import Engine, MetaData, text
from tests.demo.demo_support import Demo

from siyu.demo.guide_plans import HOLDOUT_PCT, ORDERS_TARGET, SALES_TARGET_FEN, TASK_CODE
from siyu.demo.guides import seed_guides
from siyu.demo.summary import print_summary
from siyu.guides.campaigns import held_out
from siyu.guides.metrics import guide_metrics
from siyu.store.times import stored_time


def _month(demo: Demo) -> tuple[datetime, datetime, datetime]:
    """The last full month of the data and the data's end, as the demo takes them."""
    last = stored_time(demo.one("SELECT MAX(ordered_at) FROM orders WHERE group_id = :g"))
    end = last + timedelta(seconds=1)
    until = datetime(end.year, end.month, 1)
    return (until - timedelta(days=1)).replace(day=1), until, end


def test_the_tasks_are_the_targets_members_with_a_guide_less_the_control(demo: Demo) -> None:
    # given the demo's report of its HQ task
    assert demo.result.guides is not None and demo.result.guides.plans is not None
    task = demo.result.guides.plans.task
    assert task.note == "" and task.tasks > 0 and task.held_out > 0
    # when the target is counted from the store: the active members one order before the
    # knee of the latest lifecycle snapshot, with a live own guide or served by one
    knee = json.loads(
        demo.one(
            "SELECT payload FROM analytics_snapshots WHERE group_id = :g AND kind = 'lifecycle' "
            "ORDER BY snapshot_id DESC LIMIT 1"
        )
    )["knee"]
    with demo.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT s.member_id, CASE WHEN EXISTS (SELECT 1 FROM guide_bindings b "
                "  WHERE b.group_id = s.group_id AND b.member_id = s.member_id "
                "  AND b.ended_at IS NULL) OR EXISTS (SELECT 1 FROM orders o "
                "  WHERE o.group_id = s.group_id AND o.member_id = s.member_id "
                "  AND o.guide_id IS NOT NULL) OR EXISTS (SELECT 1 FROM events e "
                "  WHERE e.group_id = s.group_id AND e.member_id = s.member_id "
                "  AND e.guide_id IS NOT NULL) THEN 1 ELSE 0 END AS guided "
                "FROM member_stages s JOIN members m ON m.group_id = s.group_id "
                "AND m.member_id = s.member_id "
                "WHERE s.group_id = :g AND s.stage = :stage AND m.status = 'active'"
            ),
            {"g": demo.result.group_id, "stage": f"new_{knee - 1}"},
        ).all()
    guided = [int(r.member_id) for r in rows if r.guided]
    control = [m for m in guided if held_out(TASK_CODE, m, HOLDOUT_PCT)]
    # then the tasks are the guided members less the control, one each, and so is the store
    assert task.tasks == len(guided) - len(control)
    assert task.held_out == len(control)
    assert task.no_guide == len(rows) - len(guided)
    stored = demo.one(
        "SELECT COUNT(*) FROM guide_tasks WHERE group_id = :g AND campaign_code = :c",
        c=TASK_CODE,
    )
    assert stored == task.tasks
    # and the summary says so
    console = Console(record=True, width=300)
    print_summary(console, demo.result, "en")
    assert f"HQ task {TASK_CODE}: {task.tasks:,} tasks for {task.guides:,} guides" in (
        console.export_text()
    )


def test_the_stages_met_counts_are_the_metrics_against_its_targets(demo: Demo) -> None:
    # given the demo's stage in force for its last full month
    assert demo.result.guides is not None and demo.result.guides.plans is not None
    stage = demo.result.guides.plans.stage
    assert stage is not None and stage.code == "sales"
    # when each guide's metrics of the month are judged against the sales stage's targets
    since, until, end = _month(demo)
    with demo.engine.connect() as conn:
        metrics = guide_metrics(conn, demo.result.group_id, since, until, end)
    sales = [m.sales_fen >= SALES_TARGET_FEN for m in metrics]
    orders = [m.orders >= ORDERS_TARGET for m in metrics]
    # then the report's counts are those, every guide measured, and some met and some not
    assert stage.guides == len(metrics)
    assert stage.met_by_metric == {"sales_fen": sum(sales), "orders": sum(orders)}
    assert stage.met == sum(1 for s, o in zip(sales, orders, strict=True) if s and o)
    assert 0 < stage.met < stage.guides
    # and the programme's later stages start after the month: the plan, not yet in force
    assert demo.result.guides.plans.stages == ["sales", "sharing", "conversion"]


def _contents(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, less surrogate keys (a row deleted and written again as it was
    is the same row)."""
    meta = MetaData()
    meta.reflect(engine)
    found = {}
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            keys = list(table.primary_key.columns)
            surrogate = {c.name for c in keys} if len(keys) == 1 and keys[0].autoincrement else {}
            columns = [c for c in table.columns if c.name not in surrogate]
            if not columns:  # a table of ids only: its count says whether it grew
                columns = list(keys)
            names = ", ".join(f'"{c.name}"' for c in columns)
            # raw values: a reflected column's type would parse what the store wrote
            rows = conn.exec_driver_sql(f'SELECT {names} FROM "{table.name}"').all()
            found[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return found


def test_a_second_run_changes_nothing(demo: Demo) -> None:
    # given the store after the demo
    before = _contents(demo.engine)
    # when the guides' step runs again
    again = seed_guides(demo.engine, demo.result.group_id)
    # then it reports the same and every table holds the same rows
    assert again == demo.result.guides
    after = _contents(demo.engine)
    changed = [name for name in before if before[name] != after[name]]
    assert changed == []
