"""`siyu messages deliver` and `wecom-status`: the outbox's worker and the WeCom tasks'
results, with the transports built from SIYU_MESSAGING_FILE (secrets from the variables it
names, never from the file)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from siyu.cli.common import (
    GroupOption,
    JsonOption,
    emit_json,
    errors,
    load_settings,
    open_store,
    out,
    progress_bars,
)
from siyu.cli.messages import app
from siyu.errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from siyu.config import Settings
    from siyu.messaging.transports.base import Transport


# --- the outbox's worker ---------------------------------------------------------------------


def transports(settings: Settings) -> dict[str, Transport]:
    """The transport of each channel in SIYU_MESSAGING_FILE (secrets from the variables
    it names)."""
    from siyu.config import messaging_transports
    from siyu.messaging.transports.registry import registry

    if not settings.messaging_file:
        raise ConfigError("SIYU_MESSAGING_FILE is not set: name the transports' settings file")
    found = messaging_transports(settings.messaging_file)
    return {channel: registry.transport(kind, conf) for channel, (kind, conf) in found.items()}


@app.command("deliver")
def deliver_cmd(
    loop: Annotated[bool, typer.Option("--loop", help="Keep polling the outbox.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls with --loop.")] = 10.0,
    batch: Annotated[int, typer.Option(help="Messages claimed at a time.")] = 500,
    worker: Annotated[str, typer.Option(help="This worker's name (its leases).")] = "cli",
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deliver the due messages: drain the outbox once, or keep at it with --loop."""
    from siyu.messaging import outbox
    from siyu.privacy import Vault

    settings = load_settings()
    g = group or settings.group_id
    totals = {"claimed": 0, "sent": 0, "retry": 0, "failed": 0, "revoked": 0}
    with errors():
        if not 1 <= batch <= 10_000:
            raise ValidationError("--batch", "1 to 10000", batch)
        senders = transports(settings)
        vault = Vault(settings.secret_key) if settings.secret_key else None
        with open_store(settings.database_url) as engine, progress_bars() as bars:
            task = bars.add_task("delivering", total=outbox.waiting(engine, g))
            try:
                while True:
                    done = outbox.deliver(
                        engine, g, senders, worker=worker, limit=batch, vault=vault
                    )
                    for name in totals:
                        totals[name] += getattr(done, name)
                    bars.update(task, advance=done.claimed + done.revoked)
                    if done.claimed or done.revoked:
                        continue
                    if not loop:
                        break
                    time.sleep(interval)
                    bars.update(task, total=totals["claimed"] + outbox.waiting(engine, g))
            except KeyboardInterrupt:
                pass
    if as_json:
        emit_json(totals)
    else:
        out.print(", ".join(f"{k} {v:,}" for k, v in totals.items()))


@app.command("wecom-status")
def wecom_status_cmd(
    send: Annotated[str | None, typer.Option(help="Only this send's tasks.")] = None,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Read each sent WeCom group-send task's results and record them once (delivered,
    failed); customers whose guide has not confirmed yet are read again next time."""
    from siyu.messaging.transports import wecom

    settings = load_settings()
    g = group or settings.group_id
    totals = {"tasks": 0, "waiting": 0, "delivered": 0, "failed": 0, "recorded": 0}
    with errors():
        transport = transports(settings).get("wecom_group_send")
        if not isinstance(transport, wecom.WecomGroupSendTransport):
            raise ConfigError("SIYU_MESSAGING_FILE: no [wecom_group_send] WeCom transport")
        with open_store(settings.database_url) as engine, progress_bars() as bars:
            tasks = wecom.sent_tasks(engine, g, send)
            bar = bars.add_task("WeCom tasks", total=len(tasks))
            for msgid in tasks:
                found = wecom.task_status(engine, g, transport, msgid)
                totals["tasks"] += 1
                for name in ("waiting", "delivered", "failed", "recorded"):
                    totals[name] += getattr(found, name)
                bars.update(bar, advance=1)
    if as_json:
        emit_json(totals)
    else:
        out.print(", ".join(f"{k} {v:,}" for k, v in totals.items()))
