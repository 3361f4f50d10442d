"""`siyu loyalty`: the ledger's periodic jobs, each safe to re-run, and the affinity score
(its rules, a member's score explained)."""

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
    help="Loyalty jobs (earn for orders, expire points, review tiers; safe to re-run) and "
    "the affinity score (its rules, a member's score).",
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


@app.command("affinity-rules")
def loyalty_affinity_rules(
    set_: Annotated[
        str | None,
        typer.Option("--set", help="A JSON file of rules (or the JSON): a new version."),
    ] = None,
    group: GroupOption = None,
) -> None:
    """The affinity rules in force (coefficients, window, half-life, bands) as JSON; with
    --set, validate and store new ones first (a refusal names the field, exit 2)."""
    from siyu.segments.affinity import affinity_rules, parse_rules, save_rules
    from siyu.store.migrate import upgrade

    settings = load_settings()
    group_id = group or settings.group_id
    with open_store(settings.database_url) as engine, errors():
        upgrade(engine)
        if set_ is not None:
            save_rules(engine, group_id, parse_rules(_json_doc(set_)), None)
        with engine.connect() as conn:
            version, rules = affinity_rules(conn, group_id)
    emit_json({"version": version, "rules": rules.model_dump(mode="json")})


@app.command("affinity")
def loyalty_affinity(
    member_id: Annotated[int, typer.Argument(help="The member (a merged one: its survivor).")],
    as_of: Annotated[str | None, typer.Option(help="Score as of this time (default: now).")] = None,
    group: GroupOption = None,
) -> None:
    """A member's affinity score with what each behaviour adds, as JSON."""
    from siyu.segments.affinity import explain
    from siyu.segments.tags import current_member

    settings = load_settings()
    group_id = group or settings.group_id
    with open_store(settings.database_url) as engine, errors():
        with engine.connect() as conn:
            member = current_member(conn, group_id, member_id)
        found = explain(engine, group_id, member, _as_of_or_now(as_of))
    emit_json(
        {**vars(found), "as_of": found.as_of.isoformat(), "parts": [vars(p) for p in found.parts]}
    )


def _json_doc(value: str) -> object:
    """A JSON document from a file path or from the JSON itself."""
    import json
    from pathlib import Path

    from siyu.errors import ValidationError

    try:
        raw = value if value.lstrip().startswith("{") else Path(value).read_text("utf-8")
        return json.loads(raw)
    except OSError as exc:
        raise ValidationError("--set", f"cannot read {value!r}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValidationError("--set", f"is not JSON ({exc.msg} at line {exc.lineno})") from None


def _as_of_or_now(value: str | None) -> datetime:
    from siyu.errors import ValidationError

    if value is None:
        return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError("--as-of", "an ISO date or time, e.g. 2026-12-31T23:59:59") from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
