"""`siyu guides`: the shopping guides' jobs. `tasks generate` makes the follow-up tasks the
members' lifecycle stages call for (the snapshot does it too); safe to re-run. `commission`
is cli/guides_commission.py."""

from __future__ import annotations

import asyncio

import typer

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

app = typer.Typer(help="Shopping guides: follow-up tasks, commission.", no_args_is_help=True)
tasks_app = typer.Typer(help="Follow-up tasks for guides.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(commission_app, name="commission")


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
