"""`siyu loyalty`: the ledger's periodic jobs, each safe to re-run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from siyu.cli.common import (
    GroupOption,
    emit_json,
    errors,
    load_settings,
    open_store,
    out,
    progress_bars,
)

app = typer.Typer(
    help="Loyalty jobs: earn for orders, expire points, review tiers. Safe to re-run.",
    no_args_is_help=True,
)


@app.command("settle-orders")
def loyalty_settle_orders(
    group: GroupOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Orders earn points by the rules (once each); refunds claw them back."""
    from siyu.ledger.jobs import settle_orders
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with open_store(settings.database_url) as engine, errors():
        upgrade(engine)
        with progress_bars() as progress:
            task = progress.add_task("orders and refunds", total=None)
            report = settle_orders(
                engine,
                group or settings.group_id,
                lambda done, total: progress.update(task, completed=done, total=total),
            )
    if as_json:
        emit_json(vars(report))
    else:
        out.print(vars(report))


@app.command("expire-points")
def loyalty_expire_points(
    as_of: Annotated[
        str | None, typer.Option(help="Expire what is due by this time (default: now).")
    ] = None,
    group: GroupOption = None,
) -> None:
    """Lots past their expiry become breakage (one posting per member)."""
    from siyu.ledger.points import expire_due

    settings = load_settings()
    with open_store(settings.database_url) as engine, errors():
        made = expire_due(engine, group or settings.group_id, _as_of_or_now(as_of))
    emit_json({"postings": made})


@app.command("review-tiers")
def loyalty_review_tiers(
    as_of: Annotated[
        str | None, typer.Option(help="Review as of this time (default: now).")
    ] = None,
    group: GroupOption = None,
) -> None:
    """The periodic tier review: upgrades, grace periods and downgrades."""
    from collections import Counter

    from siyu.ledger.tiers import review

    settings = load_settings()
    with open_store(settings.database_url) as engine, errors():
        changes = review(engine, group or settings.group_id, _as_of_or_now(as_of))
    emit_json(dict(Counter(c.reason for c in changes)))


def _as_of_or_now(value: str | None) -> datetime:
    from siyu.errors import ValidationError

    if value is None:
        return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError("--as-of", "an ISO date or time, e.g. 2026-12-31T23:59:59") from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
