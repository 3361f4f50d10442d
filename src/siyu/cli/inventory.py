"""`siyu inventory`: the stock jobs (reservation sweep, outbox delivery)."""

from __future__ import annotations

import json
import sys
from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

from siyu.cli.common import GroupOption, emit_json, errors, fail, load_settings, open_store
from siyu.errors import SiyuError

if TYPE_CHECKING:
    from siyu.inventory.outbox import Event

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
    settings = load_settings()
    with open_store(settings.database_url) as engine, errors():
        sent = deliver(engine, group or settings.group_id, partial(send_event, to), limit)
    if to != "stdout":
        emit_json({"delivered": sent})


def send_event(to: str, event: Event) -> None:
    """One stock event as a JSON line on stdout (`to` = 'stdout'), or POSTed to the
    http(s) URL `to`; an error status raises, so the event stays pending."""
    import urllib.request

    body = json.dumps(
        {
            "event_id": event.event_id,
            "topic": event.topic,
            "key": event.key,
            "payload": event.payload,
        },
        ensure_ascii=False,
    )
    if to == "stdout":
        sys.stdout.write(body + "\n")
        sys.stdout.flush()
        return
    request = urllib.request.Request(
        to, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10):
        pass
