"""`siyu inventory`: the stock jobs (reservation sweep, outbox delivery)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from siyu.channels.webhook import Outgoing, event_json, sender
from siyu.cli.common import GroupOption, emit_json, errors, fail, load_settings, open_store
from siyu.errors import SiyuError

app = typer.Typer(
    help="Stock jobs: expire reservations past their TTL, deliver the outbox to channels.",
    no_args_is_help=True,
)


@app.command("sweep")
def inventory_sweep(group: GroupOption = None) -> None:
    """Expire open reservations past their TTL; their units go back on sale."""
    from siyu.inventory.reservations import sweep_expired

    settings = load_settings()
    with open_store(settings.database_url) as engine, errors():
        expired = sweep_expired(engine, group or settings.group_id)
    emit_json({"expired": expired})


@app.command("deliver")
def inventory_deliver(
    to: Annotated[
        str,
        typer.Option(help="'stdout' (JSON lines) or an http(s) URL each event is POSTed to."),
    ] = "stdout",
    limit: Annotated[int, typer.Option(min=1, help="At most this many events.")] = 1000,
    group: GroupOption = None,
) -> None:
    """Deliver pending stock events (available to promise per channel) at least once;
    consumers dedupe by event_id."""
    from siyu.inventory.outbox import deliver

    if to != "stdout" and not to.startswith(("http://", "https://")):
        fail(SiyuError("--to: 'stdout' or an http(s) URL"))
    send = _to_stdout if to == "stdout" else sender(to)
    settings = load_settings()
    with open_store(settings.database_url) as engine, errors():
        sent = deliver(engine, group or settings.group_id, send, limit)
    if to != "stdout":
        emit_json({"delivered": sent})


def _to_stdout(event: Outgoing) -> None:
    """One stock event as a JSON line on stdout, the same body a webhook is sent."""
    sys.stdout.write(event_json(event) + "\n")
    sys.stdout.flush()
