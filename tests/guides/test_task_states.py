"""A task's states, on SQLite and PostgreSQL: open -> contacted (again) -> done; dismissed;
done and dismissed are final (409 naming the rule, nothing applied); a guide acts only on
its own tasks, an HQ admin on any; every change is logged with who and when."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from tests.guides.conftest import PLAN, Brand

from siyu.auth.principal import Principal, Role
from siyu.errors import ValidationError
from siyu.guides.errors import NotYourTask, TaskNotFound, TaskTransitionRefused
from siyu.guides.service import change_state, generate_tasks


def task_of(brand: Brand, member: str) -> int:
    with brand.store.engine.begin() as conn:
        generate_tasks(conn, brand.store.group_id, PLAN)
        return int(
            conn.execute(
                text("SELECT task_id FROM guide_tasks WHERE group_id = :g AND member_id = :m"),
                {"g": brand.store.group_id, "m": brand.members[member]},
            ).scalar_one()
        )


def who(brand: Brand, role: Role, key_id: int, guide: str | None = None) -> Principal:
    return Principal(key_id=key_id, group_id=brand.store.group_id, role=role, guide_id=guide)


def log(brand: Brand, task: int) -> list[tuple[str, int | None, str | None]]:
    with brand.store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT state, actor_key_id, note FROM guide_task_events WHERE task_id = :t "
                "ORDER BY event_id"
            ),
            {"t": task},
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def state(brand: Brand, task: int) -> str:
    with brand.store.engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT state FROM guide_tasks WHERE task_id = :t"), {"t": task}
            ).scalar_one()
        )


def test_open_contacted_twice_then_done(brand: Brand) -> None:
    task = task_of(brand, "N3")
    g1 = who(brand, Role.GUIDE, 11, "G1")
    moved = change_state(brand.store.engine, g1, task, "contacted", "  发了新品券  ")
    assert (moved.previous, moved.state, moved.actor_key_id) == ("open", "contacted", 11)
    change_state(brand.store.engine, g1, task, "contacted", "到店了")
    change_state(brand.store.engine, g1, task, "done")
    assert state(brand, task) == "done"
    assert log(brand, task) == [
        ("open", None, None),
        ("contacted", 11, "发了新品券"),
        ("contacted", 11, "到店了"),
        ("done", 11, None),
    ]


@pytest.mark.parametrize("final", ["done", "dismissed"])
def test_done_and_dismissed_are_final(brand: Brand, final: str) -> None:
    task = task_of(brand, "R1")
    g1 = who(brand, Role.GUIDE, 11, "G1")
    change_state(brand.store.engine, g1, task, final)
    for to in ("contacted", "done", "dismissed"):
        with pytest.raises(TaskTransitionRefused) as refused:
            change_state(brand.store.engine, g1, task, to, "too late")
        assert refused.value.code == "task_transition"
        assert str(refused.value) == (
            f"task {task} is {final}, cannot become {to}: done and dismissed are final"
        )
    assert state(brand, task) == final and len(log(brand, task)) == 2


def test_a_guide_acts_only_on_its_own_tasks_and_hq_on_any(brand: Brand) -> None:
    task = task_of(brand, "L1")  # G2's
    for outsider in (
        who(brand, Role.GUIDE, 11, "G1"),
        who(brand, Role.ANALYST, 12),
        who(brand, Role.STORE, 13),
    ):
        with pytest.raises(NotYourTask):
            change_state(brand.store.engine, outsider, task, "done")
    assert log(brand, task) == [("open", None, None)]
    change_state(brand.store.engine, who(brand, Role.ADMIN, 14), task, "dismissed", "moved away")
    assert log(brand, task)[-1] == ("dismissed", 14, "moved away")


def test_unknown_tasks_and_bad_notes_are_named(brand: Brand) -> None:
    task = task_of(brand, "N3")
    g1 = who(brand, Role.GUIDE, 11, "G1")
    with pytest.raises(TaskNotFound, match="task_id: no task 999999"):
        change_state(brand.store.engine, g1, 999_999, "done")
    with pytest.raises(ValidationError, match="note: must be at most 500 characters"):
        change_state(brand.store.engine, g1, task, "contacted", "x" * 501)
    with pytest.raises(ValidationError, match="state: must be one of"):
        change_state(brand.store.engine, g1, task, "open")
    # another brand group's task is unknown, not forbidden
    stranger = Principal(key_id=1, group_id="elsewhere", role=Role.ADMIN)
    with pytest.raises(TaskNotFound):
        change_state(brand.store.engine, stranger, task, "done")
    assert log(brand, task) == [("open", None, None)]
