"""`siyu messages sends`: a send from a JSON file saved as a draft, planned (held for
review with --hold), sent, cancelled, listed; its figures as a table and the recipients
behind one as CSV (addresses masked unless --clear)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

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
from siyu.cli.messages import CodeArg, FileArg, sends_app

# --- sends --------------------------------------------------------------------------------


@sends_app.command("create")
def sends_create(file: FileArg, group: GroupOption = None) -> None:
    """Save a send as a draft (the same document again changes nothing)."""
    from siyu.messaging.sends import Send, save
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors():
        send = read_document(file, Send, "send")
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            stored = save(engine, group or settings.group_id, send)
    out.print(f"{send.code}: {stored.status}")


def _counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) or "nobody"


@sends_app.command("plan")
def sends_plan(
    code: CodeArg,
    hold: Annotated[bool, typer.Option(help="Keep it for review; `send` releases it.")] = False,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Plan the draft: every member of its target planned, deferred or skipped with the
    reason; released to the outbox unless --hold."""
    from siyu.messaging.plan import plan

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        done = plan(engine, group or settings.group_id, code, hold=hold)
    if as_json:
        emit_json(
            {
                "code": code,
                "state": done.state,
                "due_at": done.due_at.isoformat(),
                "counts": done.counts,
            }
        )
        return
    then = " (`siyu messages sends send` releases it)" if done.state == "held" else ""
    out.print(
        f"{code}: {done.state}{then}, due {done.due_at:%Y-%m-%d %H:%M} UTC: "
        f"{_counts_line(done.counts)}"
    )


@sends_app.command("send")
def sends_send(code: CodeArg, group: GroupOption = None) -> None:
    """Release a held plan to the outbox."""
    from siyu.messaging.lifecycle import release

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        row = release(engine, group or settings.group_id, code)
    out.print(f"{code}: {row.state}, due {row.due_at:%Y-%m-%d %H:%M} UTC")


@sends_app.command("cancel")
def sends_cancel(code: CodeArg, group: GroupOption = None) -> None:
    """Cancel the send; the messages no worker holds are skipped."""
    from siyu.messaging.lifecycle import cancel

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        _, skipped = cancel(engine, group or settings.group_id, code)
    out.print(f"{code}: cancelled, {skipped:,} waiting messages skipped")


@sends_app.command("list")
def sends_list(group: GroupOption = None, as_json: JsonOption = False) -> None:
    """The sends, newest first."""
    from siyu.messaging.lifecycle import listed

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine, engine.connect() as conn:
        rows = listed(conn, group or settings.group_id)
    if as_json:
        emit_json(
            [{"code": r.send.code, "state": r.state, "channel": r.send.channel} for r in rows]
        )
        return
    tab = Table()
    for column in ("code", "channel", "state", "due (UTC)"):
        tab.add_column(column)
    for r in rows:
        due = "" if r.due_at is None else f"{r.due_at:%Y-%m-%d %H:%M}"
        tab.add_row(r.send.code, r.send.channel, r.state, due)
    out.print(tab)


@sends_app.command("show")
def sends_show(
    code: CodeArg,
    window_days: Annotated[int, typer.Option(help="Attribution window, days.")] = 7,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """The send's figures: planned, deferred, skipped by reason; sent, delivered,
    clicked; buyers, orders and revenue attributed to it."""
    from siyu.experiments.send_effect import send_effect
    from siyu.messaging.attribution import send_result
    from siyu.messaging.lifecycle import one, tally

    settings = load_settings()
    g = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine:
        with engine.connect() as conn:
            row = one(conn, g, code)
            counts = tally(conn, g, row.send_id)
        result = send_result(engine, g, code, window_days)
        effect = send_effect(engine, g, code, window_days)
    figures = {
        "sent": result.sent,
        "delivered": result.delivered,
        "clicked": result.clicked,
        "buyers": result.buyers,
        "orders": result.orders,
    }
    if as_json:
        emit_json(
            {
                "code": code,
                "state": row.state,
                "counts": counts,
                **figures,
                "revenue_fen": result.revenue_fen,
                "against_holdout": None if effect is None else effect.as_dict(),
            }
        )
        return
    tab = Table(title=f"{code} ({row.send.channel}, {row.state})")
    tab.add_column("figure")
    tab.add_column("members", justify="right")
    for name, n in sorted(counts.items()):
        tab.add_row(name, f"{n:,}")
    for name, n in figures.items():
        tab.add_row(name, f"{n:,}")
    tab.add_row("revenue (yuan)", yuan(result.revenue_fen))
    out.print(tab)
    if effect is None:
        return
    versus = Table(title=f"against the global holdout, {window_days} days from its due time")
    for column in ("", "people", "buyers", "revenue (yuan)"):
        versus.add_column(column, justify="right" if column else "left")
    for name, side in (("reached", effect.reached), ("held out", effect.held_out)):
        versus.add_row(name, f"{side.people:,}", f"{side.buyers:,}", yuan(side.revenue_fen))
    out.print(versus)
    for name, found in (
        ("buyer rate", effect.buyer_rate),
        ("revenue per person", effect.revenue_per_person_fen),
    ):
        if found is None:
            out.print(f"{name}: not estimable (a side without variation, or no held-out buyer)")
        else:
            r = found.relative
            out.print(
                f"{name}: {r.estimate:+.1%} (95% interval {r.ci_low:+.1%} to {r.ci_high:+.1%},"
                f" p = {r.p_value:.3g})"
            )


@sends_app.command("recipients")
def sends_recipients(
    code: CodeArg,
    figure: Annotated[
        str, typer.Option(help="all, a status, a skip reason, delivered, clicked or buyers.")
    ] = "all",
    output: Annotated[Path | None, typer.Option("--out", help="CSV file (default stdout).")] = None,
    clear: Annotated[bool, typer.Option(help="Addresses in the clear (personal data).")] = False,
    group: GroupOption = None,
) -> None:
    """The recipients behind a figure as CSV (addresses masked unless --clear)."""
    from siyu.messaging.recipients import every
    from siyu.privacy import Vault

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        vault = Vault(settings.secret_key) if clear and settings.secret_key else None
        rows = every(engine, group or settings.group_id, code, figure, clear=clear, vault=vault)
        fh = sys.stdout if output is None else output.open("w", newline="", encoding="utf-8")
        try:
            writer = csv.writer(fh)
            names = (
                "member_id",
                "person_id",
                "status",
                "reason",
                "due_at",
                "sent_at",
                "attempts",
                "last_error",
                "address",
            )
            writer.writerow(names)
            n = 0
            for r in rows:
                writer.writerow(["" if v is None else v for v in (getattr(r, k) for k in names)])
                n += 1
        finally:
            if output is not None:
                fh.close()
    if output is not None:
        out.print(f"{n:,} recipients written to {output}")
