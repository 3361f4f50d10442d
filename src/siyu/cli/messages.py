"""`siyu messages`: the contact policy, consent, sends (a draft from a JSON file, planned
for review, sent, cancelled, their figures and recipients as CSV), the outbox's worker
(`deliver`) and WeCom task results (`wecom-status`). Thin over `siyu.messaging`; the
transports' settings come from SIYU_MESSAGING_FILE, their secrets from the environment
variables it names. Addresses in the CSV are masked unless `--clear` is given."""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    progress_bars,
    yuan,
)
from siyu.errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from siyu.config import Settings
    from siyu.messaging.transports.base import Transport

app = typer.Typer(
    help="Messages to members: contact policy, consent, sends, the outbox worker.",
    no_args_is_help=True,
)
policy_app = typer.Typer(
    help="The group's contact policy (caps, quiet hours).", no_args_is_help=True
)
consent_app = typer.Typer(help="Record a member's consent or its withdrawal.", no_args_is_help=True)
sends_app = typer.Typer(help="Sends: draft, plan, send, cancel, figures.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(consent_app, name="consent")
app.add_typer(sends_app, name="sends")

FileArg = Annotated[Path, typer.Argument(help="A JSON document.")]
CodeArg = Annotated[str, typer.Argument(help="The send's code.")]


def _document(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationError("FILE", f"cannot read a JSON document: {exc}") from None


# --- policy -------------------------------------------------------------------------------


@policy_app.command("show")
def policy_show(group: GroupOption = None) -> None:
    """The policy in force, as JSON (the defaults if none was set)."""
    from siyu.messaging.policy import current

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine, engine.connect() as conn:
        policy_id, policy = current(conn, group or settings.group_id)
    emit_json({"policy_id": policy_id, "policy": policy.model_dump(mode="json")})


@policy_app.command("set")
def policy_set(file: FileArg, group: GroupOption = None) -> None:
    """Replace the policy with the file's (a new version); a refusal names the field."""
    from siyu.messaging import policy
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors():
        parsed = policy.parse(_document(file))
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            policy_id = policy.save(engine, group or settings.group_id, parsed)
    out.print(f"policy version {policy_id} in force")


# --- consent ------------------------------------------------------------------------------


def _consent(
    action: str, member_id: int, channel: str, purpose: str, source: str, group: str | None
) -> None:
    from siyu.messaging import consent

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        cancelled = consent.record(
            engine,
            group or settings.group_id,
            member_id,
            action,
            purpose=purpose,
            channel=channel,
            source=source,
        )
    extra = f"; {cancelled:,} waiting messages cancelled" if action == "withdraw" else ""
    out.print(f"member {member_id}: {purpose} on {channel} {action} recorded{extra}")


ChannelOpt = Annotated[str, typer.Option(help="A messaging channel, or * for every one.")]
PurposeOpt = Annotated[str, typer.Option(help="marketing or service.")]
SourceOpt = Annotated[str, typer.Option(help="Where the person said it.")]


@consent_app.command("grant")
def consent_grant(
    member_id: int,
    channel: ChannelOpt = "*",
    purpose: PurposeOpt = "marketing",
    source: SourceOpt = "cli",
    group: GroupOption = None,
) -> None:
    """Record the member's grant."""
    _consent("grant", member_id, channel, purpose, source, group)


@consent_app.command("withdraw")
def consent_withdraw(
    member_id: int,
    channel: ChannelOpt = "*",
    purpose: PurposeOpt = "marketing",
    source: SourceOpt = "cli",
    group: GroupOption = None,
) -> None:
    """Record the member's withdrawal: its waiting messages are cancelled at once."""
    _consent("withdraw", member_id, channel, purpose, source, group)


# --- sends --------------------------------------------------------------------------------


@sends_app.command("create")
def sends_create(file: FileArg, group: GroupOption = None) -> None:
    """Save a send as a draft (the same document again changes nothing)."""
    from siyu.errors import parse_document
    from siyu.messaging.sends import Send, save
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors():
        send = parse_document(Send, _document(file), "send")
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
        emit_json({"code": code, "due_at": done.due_at.isoformat(), "counts": done.counts})
        return
    held = " (held: `siyu messages sends send` releases it)" if hold else ""
    out.print(f"{code}: due {done.due_at:%Y-%m-%d %H:%M} UTC{held}: {_counts_line(done.counts)}")


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
    from siyu.messaging.attribution import send_result
    from siyu.messaging.lifecycle import one, tally

    settings = load_settings()
    g = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine:
        with engine.connect() as conn:
            row = one(conn, g, code)
            counts = tally(conn, g, row.send_id)
        result = send_result(engine, g, code, window_days)
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
