"""`siyu guides`: the shopping guides' jobs. `tasks generate` makes the follow-up tasks the
members' lifecycle stages call for (the snapshot does it too); `bind` binds members to
their own guide by rule, `rebind` and `release` are HQ's moves, `attribute` attributes a
period's orders to guides, `classes` classes them A/B/C and `programme` measures them by
the programme's stage (issue #19). Each is safe to re-run. `commission` is
cli/guides_commission.py. `tasks author | assign | report` are
HQ's own tasks (guides.campaigns); `training add | report` the training content guides
complete."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated

import typer

from siyu.cli import guide_classes, guide_programme
from siyu.cli.common import (
    GroupOption,
    JsonOption,
    emit_json,
    errors,
    load_settings,
    open_store,
    out,
)
from siyu.cli.guides_commission import app as commission_app
from siyu.cli.guides_hq import tasks_assign, tasks_author, tasks_report, training_app

app = typer.Typer(
    help="Shopping guides: follow-up tasks, own guides, attribution, classes, commission.",
    no_args_is_help=True,
)
tasks_app = typer.Typer(help="Follow-up tasks for guides.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(training_app, name="training")
tasks_app.command("author")(tasks_author)
tasks_app.command("assign")(tasks_assign)
tasks_app.command("report")(tasks_report)
app.add_typer(commission_app, name="commission")
app.add_typer(guide_classes.app, name="classes")
app.add_typer(guide_programme.app, name="programme")


@tasks_app.command("generate")
def tasks_generate(group: GroupOption = None, as_json: JsonOption = False) -> None:
    """Create the tasks the members' stages call for (win back at-risk and lapsed members,
    the next order one before the knee) from the latest lifecycle snapshot and the stages
    written back; close live tasks whose member moved on. Creates nothing twice."""
    from siyu.analytics.snapshot import latest_snapshot
    from siyu.errors import ValidationError
    from siyu.guides.service import generate_tasks
    from siyu.guides.tasks import plan_from_lifecycle
    from siyu.i18n import t
    from siyu.store.migrate import upgrade
    from siyu.store.reads import make_reads

    settings = load_settings()
    group_id = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)

        async def lifecycle() -> dict[str, object] | None:
            reads = make_reads(engine)
            try:
                async with reads.connection() as reader:
                    found = await latest_snapshot(reader, group_id, "lifecycle")
            finally:
                await reads.close()
            return None if found is None else found.payload

        payload = asyncio.run(lifecycle())
        plan = None if payload is None else plan_from_lifecycle(payload)
        if plan is None:
            raise ValidationError("snapshot", t("tasks.no_snapshot", settings.lang))
        with engine.begin() as conn:
            done = generate_tasks(conn, group_id, plan)
    summary = {
        "group": group_id,
        "knee": plan.knee,
        "as_of": plan.as_of.isoformat(),
        "created": done.created,
        "closed": done.closed,
        "live": done.live,
    }
    if as_json:
        emit_json(summary)
    else:
        out.print(
            t(
                "tasks.generated",
                settings.lang,
                **{k: v for k, v in summary.items() if k != "group"},
            )
        )


Reason = Annotated[str, typer.Option(help="Why (kept in the member's history).")]


@app.command("bind")
def bind_cmd(group: GroupOption = None, as_json: JsonOption = False) -> None:
    """Bind every unbound member to its own guide by the rules (the QR scene or WeCom
    contact that brought it, else its first store purchase's guide); binds nobody twice."""
    from siyu.guides.binding import bind_all
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        bound = bind_all(engine, group or settings.group_id)
    if as_json:
        emit_json({"bound": bound.total, "by_rule": bound.by_rule})
    else:
        parts = ", ".join(f"{rule} {n}" for rule, n in sorted(bound.by_rule.items()))
        out.print(f"bound {bound.total} members" + (f" ({parts})" if parts else ""))


@app.command("rebind")
def rebind_cmd(
    member_id: Annotated[int, typer.Argument(help="The member (a merged id: its survivor).")],
    guide_id: Annotated[str, typer.Argument(help="The guide to bind it to.")],
    reason: Reason,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """HQ binds a member to a guide; the member's live binding ends with the reason."""
    from siyu.guides.binding import rebind
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        made = rebind(engine, group or settings.group_id, member_id, guide_id, reason)
    if as_json:
        emit_json({"member_id": made.member_id, "guide_id": made.guide_id, "rule": made.rule})
    else:
        out.print(f"member {made.member_id}: guide {made.guide_id} ({made.rule})")


@app.command("release")
def release_cmd(
    guide_id: Annotated[str, typer.Argument(help="The guide who leaves.")],
    reason: Reason,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """A guide leaves: its members' bindings end, the rules bind them to another guide of
    the store where there is one; the rest stay unbound."""
    from siyu.guides.binding import release_guide
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        done = release_guide(engine, group or settings.group_id, guide_id, reason)
    if as_json:
        emit_json({"guide_id": guide_id, "released": done.released, "rebound": done.rebound})
    else:
        out.print(
            f"{guide_id}: {done.released} members released, {done.rebound} bound again, "
            f"{done.released - done.rebound} unbound"
        )


@app.command("attribute")
def attribute_cmd(
    since: Annotated[str, typer.Option(help="First day or time of the period (ISO, UTC).")],
    until: Annotated[str, typer.Option(help="End of the period, not included (ISO, UTC).")],
    window_days: Annotated[int, typer.Option(help="Last-touch window in days.")] = 7,
    protect_days: Annotated[
        int, typer.Option(help="Days a new binding protects the own guide (0: none).")
    ] = 30,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record the touches the period's events carry, then attribute the period's orders to
    guides (last touch in the window, else the till's guide, else the protected own
    guide), replacing the period's earlier attribution."""
    from siyu.guides.attribution import AttributionRules, attribute
    from siyu.guides.shares import touches_from_events
    from siyu.store.migrate import upgrade

    settings = load_settings()
    group_id = group or settings.group_id
    with errors():
        start, end = _when(since, "since"), _when(until, "until")
        rules = AttributionRules(window_days, protect_days)
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            opened = start - timedelta(days=rules.window_days)  # touches that can count
            touches = touches_from_events(engine, group_id, opened, end)
            done = attribute(engine, group_id, start, end, rules)
    summary = {
        "since": start.isoformat(),
        "until": end.isoformat(),
        "touches_recorded": touches,
        "attributed": done.total,
        "by_basis": done.by_basis,
    }
    if as_json:
        emit_json(summary)
    else:
        parts = ", ".join(f"{basis} {n}" for basis, n in sorted(done.by_basis.items()))
        out.print(
            f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M}: {done.total} orders attributed"
            + (f" ({parts})" if parts else "")
            + f"; {touches} touches recorded from events"
        )


def _when(value: str, name: str) -> datetime:
    """An ISO date or time (naive: UTC, as the store keeps it)."""
    from siyu.errors import ValidationError
    from siyu.store.times import as_stored

    try:
        return as_stored(datetime.fromisoformat(value))
    except ValueError:
        raise ValidationError(name, "an ISO date or time, e.g. 2026-12-01") from None
