"""`siyu messages`: the contact policy, consent, sends (a draft from a JSON file, planned
for review, sent, cancelled, their figures and recipients as CSV), the outbox's worker
(`deliver`) and WeCom task results (`wecom-status`). Thin over `siyu.messaging`; the
transports' settings come from SIYU_MESSAGING_FILE, their secrets from the environment
variables it names. Addresses in the CSV are masked unless `--clear` is given."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from siyu.cli.common import (
    GroupOption,
    emit_json,
    errors,
    load_settings,
    open_store,
    out,
    read_json,
)

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
        parsed = policy.parse(read_json(file))
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
