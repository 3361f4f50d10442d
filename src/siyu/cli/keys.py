"""`siyu keys`: API keys."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from siyu.cli.common import GroupOption, console, errors, load_settings, open_store, out
from siyu.i18n import t
from siyu.store.times import stored_now

if TYPE_CHECKING:
    from siyu.auth.keys import KeyInfo

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
    """The group's keys as a table: id, role, name, scope, expiry or revocation (never the
    secrets), in the language SIYU_LANG names."""
    from siyu.auth.keys import list_keys

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        keys = list_keys(engine, group or settings.group_id)
    out.print(keys_table(keys, settings.lang) if keys else t("keys.none", settings.lang))


def keys_table(keys: list[KeyInfo], lang: str) -> Table:
    """One row per key. The role is its code: what `keys create --role` takes."""
    now = stored_now()
    table = Table(title=t("keys.title", lang))
    for key in ("col.key", "col.role", "col.name", "col.scope", "col.state"):
        table.add_column(t(key, lang), overflow="fold")
    for k in keys:
        scope = [
            t(f"keys.scope.{name}", lang, value=_scope_value(value))
            for name, value in k.scope.items()
            if value
        ]
        if k.revoked_at is not None:
            state = t("keys.revoked", lang, at=_minute(k.revoked_at))
        elif k.expires_at is None:
            state = t("keys.never", lang)
        elif k.expires_at <= now:
            state = t("keys.expired", lang, at=_minute(k.expires_at))
        else:
            state = t("keys.expires", lang, at=_minute(k.expires_at))
        table.add_row(
            str(k.key_id),
            k.role,
            k.name or "-",
            "; ".join(scope) or t("keys.scope.all", lang),
            state,
        )
    return table


def _scope_value(value: object) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def _minute(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M}"


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
