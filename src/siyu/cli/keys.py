"""`siyu keys`: API keys."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from siyu.cli.common import GroupOption, console, errors, load_settings, open_store, out

app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)


@app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin, analyst, store, guide, channel or member.")],
    store: Annotated[
        list[str] | None, typer.Option(help="A store the key may act for (repeat for several).")
    ] = None,
    guide: Annotated[str | None, typer.Option(help="The guide of a guide key.")] = None,
    channel: Annotated[str | None, typer.Option(help="The channel of a channel key.")] = None,
    member: Annotated[int | None, typer.Option(help="The member of a member token.")] = None,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    expires_in_days: Annotated[int, typer.Option(help="0 = never expires.")] = 365,
    group: GroupOption = None,
) -> None:
    """Issue an API key and print it once; only its keyed hash is stored."""
    from siyu.auth.keys import create_key
    from siyu.importer.service import ensure_group
    from siyu.privacy import Vault
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        ensure_group(engine, group or settings.group_id)
        issued = create_key(
            engine,
            Vault(settings.secret_key),
            group or settings.group_id,
            role,
            name,
            tuple(store or ()),
            guide,
            channel,
            member,
            expires_in_days or None,
        )
    console.print(f"key {issued.key_id} ({role}); store it now, it is not shown again:")
    sys.stdout.write(issued.secret + "\n")


@app.command("list")
def keys_list(group: GroupOption = None) -> None:
    """The group's keys: id, role, scope, expiry, revocation (never the secrets)."""
    from siyu.auth.keys import list_keys

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        keys = list_keys(engine, group or settings.group_id)
    for k in keys:
        scope = {n: v for n, v in k.scope.items() if v}
        state = "revoked" if k.revoked_at else f"expires {k.expires_at or 'never'}"
        out.print(f"{k.key_id}\t{k.role}\t{k.name}\t{scope}\t{state}")


@app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key to revoke.")],
    group: GroupOption = None,
) -> None:
    """Revoke a key at once."""
    from siyu.auth.keys import revoke_key

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        revoke_key(engine, group or settings.group_id, key_id)
    console.print(f"key {key_id} revoked")
