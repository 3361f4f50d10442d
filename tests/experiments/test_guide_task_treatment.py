"""A guide task as an experiment's treatment, on SQLite and PostgreSQL: the variant names an
HQ task code; the start gives that task to the variant's members (and only them) through
their own or serving guide, once; members no guide serves are counted; the stage
generator leaves the tasks alone; the code is then refused to its own target; a variant
naming a missing task, a task assigned to its target, or a task another variant names is
refused by `variants[i].ref`, at save and at start, before anything is written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from tests.conftest import Store
from tests.coupons.helpers import T0
from tests.experiments.helpers import make_plan, put_in_stage
from tests.messaging.msg_helpers import bulk_members

from siyu.cli.experiments import delivered_lines
from siyu.errors import NotFoundError, ValidationError
from siyu.experiments import plan as plans
from siyu.experiments.assign import start
from siyu.guides.campaigns import assign_tasks, author_task, parse_task
from siyu.guides.service import generate_tasks
from siyu.guides.tasks import TaskPlan
from siyu.orders.models import orders

NOW = T0.replace(tzinfo=None)
TASK = "call-second"


def _rows(store: Store, sql: str, **params: Any) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(text(sql), {"g": store.group_id, **params}).all())


def _author(store: Store, code: str = TASK) -> None:
    doc = {
        "code": code,
        "title_zh": "邀请第二次购买",
        "title_en": "Invite a second purchase",
        "target": {"kind": "stage", "value": "new_1"},
        "due_on": (NOW + timedelta(days=14)).date().isoformat(),
        "script": "您好，第二次到店有惊喜",
    }
    assert author_task(store.engine, store.group_id, parse_task(doc))


def _variants(ref: str = TASK) -> list[dict[str, Any]]:
    return [
        {"name": "control", "weight_bp": 5000, "kind": "none"},
        {"name": "tasked", "weight_bp": 5000, "kind": "guide_task", "ref": ref},
    ]


def _bind(store: Store, members: dict[int, str]) -> None:
    """Each member's own guide (a live HQ binding)."""
    with store.engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO guide_bindings (group_id, member_id, guide_id, rule, bound_at)
                    VALUES (:g, :m, :d, 'hq', :t)"""),
            [{"g": store.group_id, "m": m, "d": d, "t": NOW} for m, d in members.items()],
        )


def _served(store: Store, members: dict[int, str]) -> None:
    """An order each member placed with a guide: the guide who served it last."""
    with store.engine.begin() as conn:
        conn.execute(
            orders.insert(),
            [
                {
                    "group_id": store.group_id,
                    "order_id": f"GT-{m}",
                    "brand_id": "B1",
                    "channel": "pos",
                    "store_id": "S1",
                    "buyer_identity_id": 0,
                    "member_id": m,
                    "guide_id": d,
                    "status": "paid",
                    "ordered_at": NOW - timedelta(days=10),
                    "total_fen": 5000,
                    "discount_fen": 0,
                    "paid_fen": 5000,
                }
                for m, d in members.items()
            ],
        )


def _brand(store: Store, n: int = 60) -> dict[int, str | None]:
    """`n` members in stage new_1: a third bound to a guide, a third served by one, a
    third with no guide. Returns each member's expected guide."""
    ids = bulk_members(store.engine, store.group_id, n)
    put_in_stage(store.engine, store.group_id, ids, "new_1")
    third = n // 3
    bound = {m: f"own-{m % 2}" for m in ids[:third]}
    served = {m: f"shop-{m % 3}" for m in ids[third : 2 * third]}
    _bind(store, bound)
    _served(store, served)
    return {**{m: None for m in ids}, **bound, **served}


def _variant_of(store: Store) -> dict[int, str]:
    found = _rows(store, "SELECT member_id, variant FROM experiment_members WHERE group_id = :g")
    return {int(m): str(v) for m, v in found}


def _hq_tasks(store: Store) -> dict[int, tuple[str, str]]:
    found = _rows(
        store,
        "SELECT member_id, guide_id, state FROM guide_tasks WHERE group_id = :g "
        "AND kind = 'hq' AND campaign_code = :c",
        c=TASK,
    )
    return {int(m): (str(d), str(s)) for m, d, s in found}


def test_the_variant_members_get_the_task_through_their_guide_once(store: Store) -> None:
    g, e = store.group_id, store.engine
    guide_of = _brand(store)
    _author(store)
    plans.save(e, g, make_plan(variants=_variants()), None)

    first = start(e, g, "KNEE2", at=T0)

    variant = _variant_of(store)
    tasked = {m for m, v in variant.items() if v == "tasked"}
    control = {m for m, v in variant.items() if v == "control"}
    assert tasked and control  # both arms have members: the test can tell them apart
    tasks = _hq_tasks(store)
    with_guide = {m for m in tasked if guide_of[m] is not None}
    assert set(tasks) == with_guide  # the variant's members with a guide, no control member
    assert not set(tasks) & control
    assert all(tasks[m] == (guide_of[m], "open") for m in tasks)  # own, else serving guide
    no_guide = len(tasked) - len(with_guide)
    assert no_guide > 0
    done = first.guide_tasks["tasked"]
    assert (done.task, done.tasked_now, done.tasked, done.no_guide) == (
        TASK,
        len(with_guide),
        len(with_guide),
        no_guide,
    )
    assert (
        f"tasked guide task {TASK}: {len(with_guide)} tasked ({len(with_guide)} by this start), "
        f"{no_guide} with no guide serving them (no task)"
    ) in delivered_lines(first)
    # no hash-held-out control inside the variant: the experiment's control is the comparison
    arms = _rows(
        store, "SELECT arm, COUNT(*) FROM guide_task_targets WHERE group_id = :g GROUP BY arm"
    )
    assert dict((str(a), int(n)) for a, n in arms) == {
        "task": len(with_guide),
        "no_guide": no_guide,
    }
    # the task's script and due date are the document's
    (row,) = _rows(
        store,
        "SELECT MIN(script), MIN(due_on), COUNT(DISTINCT due_on) FROM guide_tasks "
        "WHERE group_id = :g AND campaign_code = :c",
        c=TASK,
    )
    assert row[0] == "您好，第二次到店有惊喜" and str(row[1])[:10] == "2026-03-15" and row[2] == 1

    # when started again with newcomers to the target, only the newcomers are tasked
    newcomers = bulk_members(e, g, 12)
    put_in_stage(e, g, newcomers, "new_1")
    _bind(store, {m: "own-new" for m in newcomers})
    again = start(e, g, "KNEE2", at=T0 + timedelta(days=1))
    variant = _variant_of(store)
    new_tasked = {m for m in newcomers if variant[m] == "tasked"}
    assert again.guide_tasks["tasked"].tasked_now == len(new_tasked)
    assert again.guide_tasks["tasked"].tasked == len(with_guide) + len(new_tasked)
    assert again.guide_tasks["tasked"].no_guide == no_guide
    assert set(_hq_tasks(store)) == with_guide | new_tasked
    # a third start makes nothing
    third = start(e, g, "KNEE2", at=T0 + timedelta(days=2))
    assert third.guide_tasks["tasked"].tasked_now == 0
    assert len(_rows(store, "SELECT 1 FROM guide_tasks WHERE kind = 'hq' AND group_id = :g")) == (
        len(with_guide) + len(new_tasked)
    )


def test_the_stage_generator_leaves_the_variant_tasks_alone(store: Store) -> None:
    g, e = store.group_id, store.engine
    _brand(store)
    _author(store)
    plans.save(e, g, make_plan(variants=_variants()), None)
    start(e, g, "KNEE2", at=T0)
    before = _hq_tasks(store)
    assert before

    # knee 2: new_1 calls for a next-order task for each member a guide served
    with e.begin() as conn:
        made = generate_tasks(conn, g, TaskPlan(knee=2, as_of=NOW), now=NOW)
    assert made.created > 0  # the generator did run over these members
    assert made.closed == 0
    assert _hq_tasks(store) == before  # every HQ task still open, none added
    # and a second run, with the members' stage gone, closes only the stages' own tasks
    with e.begin() as conn:
        conn.execute(text("DELETE FROM member_stages WHERE group_id = :g"), {"g": g})
        later = generate_tasks(conn, g, TaskPlan(knee=2, as_of=NOW), now=NOW)
    assert later.closed == made.created
    assert _hq_tasks(store) == before


def test_the_code_given_to_a_variant_is_refused_to_its_target(store: Store) -> None:
    g, e = store.group_id, store.engine
    _brand(store, 12)
    _author(store)
    plans.save(e, g, make_plan(variants=_variants()), None)
    start(e, g, "KNEE2", at=T0)
    tasks = _hq_tasks(store)
    with pytest.raises(ValidationError) as refused:
        assign_tasks(e, g, TASK, NOW)
    assert refused.value.field == "code" and "experiment's variant" in refused.value.rule
    assert _hq_tasks(store) == tasks


def _nothing_written(store: Store) -> None:
    assert not _rows(store, "SELECT 1 FROM experiment_members WHERE group_id = :g")
    assert not _rows(
        store, "SELECT 1 FROM guide_task_targets WHERE group_id = :g AND code = :c", c=TASK
    )


def test_refusals_name_the_variant_at_save_and_start(store: Store) -> None:
    g, e = store.group_id, store.engine
    _brand(store, 12)

    # no such task: 404 naming the variant's ref
    with pytest.raises(NotFoundError, match=r"variants\[1\]\.ref: no guide task 'call-second'"):
        plans.save(e, g, make_plan(variants=_variants()), None)

    # the same task in two variants
    _author(store)
    twice = [
        {"name": "control", "weight_bp": 4000, "kind": "none"},
        {"name": "a", "weight_bp": 3000, "kind": "guide_task", "ref": TASK},
        {"name": "b", "weight_bp": 3000, "kind": "guide_task", "ref": TASK},
    ]
    with pytest.raises(ValidationError) as both:
        plans.save(e, g, make_plan(variants=twice), None)
    assert both.value.field == "variants[2].ref" and "variant a's already" in both.value.rule

    # a task another experiment names
    plans.save(e, g, make_plan(variants=_variants()), None)
    with pytest.raises(ValidationError) as other:
        plans.save(e, g, make_plan(code="OTHER", variants=_variants()), None)
    assert other.value.field == "variants[1].ref"
    assert "treatment of experiment KNEE2 (variant tasked)" in other.value.rule

    # a task assigned to its own target: refused at save
    _author(store, "by-target")
    assign_tasks(e, g, "by-target", NOW)
    with pytest.raises(ValidationError) as assigned:
        plans.save(e, g, make_plan(code="THIRD", variants=_variants("by-target")), None)
    assert assigned.value.field == "variants[1].ref"
    assert "assigned to its own target (stage new_1) on 2026-03-01" in assigned.value.rule
    _nothing_written(store)

    # and at start, when the assignment came after the save: nothing is written
    with e.begin() as conn:
        conn.execute(text("DELETE FROM guide_task_targets WHERE group_id = :g"), {"g": g})
        conn.execute(text("DELETE FROM guide_tasks WHERE group_id = :g"), {"g": g})
    assign_tasks(e, g, TASK, NOW)
    with e.begin() as conn:  # keep the targets table clear of the assignment's rows
        conn.execute(text("DELETE FROM guide_task_targets WHERE group_id = :g"), {"g": g})
    with pytest.raises(ValidationError, match=r"variants\[1\]\.ref: guide task call-second was"):
        start(e, g, "KNEE2", at=T0)
    _nothing_written(store)
    assert _rows(
        store, "SELECT status FROM experiments WHERE code = 'KNEE2' AND group_id = :g"
    ) == [("draft",)]
