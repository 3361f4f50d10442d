"""`siyu guides tasks author | assign | report` (HQ's own tasks for guides,
guides.campaigns) and `siyu guides training add | report` (training content); registered
by cli/guides.py."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from siyu.cli.common import (
    GroupOption,
    JsonOption,
    emit_json,
    errors,
    load_settings,
    open_store,
    out,
    read_document,
    yuan,
)

training_app = typer.Typer(help="Training content for guides.", no_args_is_help=True)
FileArg = Annotated[Path, typer.Argument(help="A JSON document.", exists=True, dir_okay=False)]
CodeArg = Annotated[str, typer.Argument(help="The task's code.")]
AtOption = Annotated[
    datetime | None, typer.Option("--at", help="As of (default now, UTC); for replays.")
]


def tasks_author(file: FileArg, group: GroupOption = None, as_json: JsonOption = False) -> None:
    """Store an HQ task document (code, title_zh, title_en, target {kind: segment | stage |
    funnel, value}, due_on, script, training_code, holdout_pct); the same one again is a
    no-op, a different one under a used code is refused."""
    from siyu.guides.campaigns import TaskDocument, author_task
    from siyu.store.migrate import upgrade

    settings = load_settings()
    group_id = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine:
        doc = read_document(file, TaskDocument, "task")
        upgrade(engine)
        created = author_task(engine, group_id, doc)
    summary = {"code": doc.code, "created": created}
    if as_json:
        emit_json(summary)
    else:
        out.print(f"{doc.code}: {'authored' if created else 'unchanged'}")


def tasks_assign(
    code: CodeArg, at: AtOption = None, group: GroupOption = None, as_json: JsonOption = False
) -> None:
    """One task per target member for the member's guide; members held out (the control)
    and without a guide counted. Safe to re-run: only members new to the target are added."""
    from siyu.guides.campaigns import assign_tasks
    from siyu.store.migrate import upgrade

    settings = load_settings()
    group_id = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        done = assign_tasks(engine, group_id, code, at)
    summary = {k: getattr(done, k) for k in ("code", "targeted", "tasked", "control", "no_guide")}
    summary["already"] = done.already
    if as_json:
        emit_json(summary)
    else:
        out.print(", ".join(f"{k} {v}" for k, v in summary.items()))


def tasks_report(
    code: CodeArg, at: AtOption = None, group: GroupOption = None, as_json: JsonOption = False
) -> None:
    """Completion (assigned, open, contacted, done, dismissed, overdue) and the effect:
    orders and revenue per member, tasked against the held-out control, Welch's 95%
    interval."""
    from siyu.experiments.guide_task_effect import task_report

    settings = load_settings()
    group_id = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine:
        report = task_report(engine, group_id, code, at)
    lift = report.revenue
    payload = {
        "code": code,
        "completion": report.completion,
        "no_guide": report.no_guide,
        "window": None if report.window is None else [t.isoformat() for t in report.window],
        "arms": {k: vars(v) for k, v in report.arms.items()},
        "revenue_per_member_lift_fen": None
        if lift is None
        else {
            "estimate": lift.absolute.estimate,
            "ci_low": lift.absolute.ci_low,
            "ci_high": lift.absolute.ci_high,
            "p_value": lift.absolute.p_value,
        },
        "why": report.why,
    }
    if as_json:
        emit_json(payload)
        return
    out.print(" ".join(f"{k} {v}" for k, v in report.completion.items()))
    for arm, o in report.arms.items():
        out.print(f"{arm}: members {o.members}, orders {o.orders}, revenue {yuan(o.revenue_fen)}")
    if lift is None:
        out.print(f"effect: none ({report.why})")
    else:
        a = lift.absolute
        out.print(
            f"revenue per member: {a.estimate / 100:+.2f} yuan "
            f"(95% {a.ci_low / 100:.2f} .. {a.ci_high / 100:.2f}, p {a.p_value:.3f})"
        )


@training_app.command("add")
def training_add(file: FileArg, group: GroupOption = None) -> None:
    """Create or replace a training item (code, title_zh, title_en, url or body,
    for_class A/B/C, for_task)."""
    from siyu.guides.training import TrainingItem, save_item
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        item = read_document(file, TrainingItem, "training")
        upgrade(engine)
        save_item(engine, group or settings.group_id, item)
    out.print(f"{item.code}: saved")


@training_app.command("report")
def training_report(
    at: AtOption = None, group: GroupOption = None, as_json: JsonOption = False
) -> None:
    """Each item's completion over its audience (the guides of its class as of --at, or
    those assigned its task), the guides outside it who completed it, and per class."""
    from siyu.guides.training import training_progress

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine, engine.connect() as conn:
        items = training_progress(conn, group or settings.group_id, at=at)
    rows = [
        {
            "code": i.code,
            "for_class": i.for_class,
            "for_task": i.for_task,
            "completed": i.completed,
            "guides": i.guides,
            "outside": i.outside,
            "by_class": {c: list(n) for c, n in i.by_class.items()},
        }
        for i in items
    ]
    if as_json:
        emit_json(rows)
        return
    for i in items:
        per_class = " ".join(f"{c} {n}/{of}" for c, (n, of) in i.by_class.items())
        out.print(f"{i.code}: {i.completed}/{i.guides}, {i.outside} outside; {per_class}")


Reason = Annotated[str, typer.Option(help="Why (kept in the member's history).")]
