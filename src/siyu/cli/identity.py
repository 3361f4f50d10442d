"""OneID by hand: batch resolve, unmerge, the conflicts it refused, quality against truth."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from siyu.cli.common import GroupOption, emit_json, errors, fail, load_settings, open_store, out
from siyu.errors import SiyuError
from siyu.i18n import t

if TYPE_CHECKING:
    from siyu.identity.conflicts import Conflict


def resolve_cmd(
    group: GroupOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Batch OneID: resolve the whole identity graph into members."""
    from siyu.identity.service import resolve_all

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        report = resolve_all(engine, group or settings.group_id, settings.strong_identity_types)
    payload = {
        **{k: v for k, v in vars(report).items() if k != "timings"},
        "seconds": round(report.seconds, 3),
        "timings": {k: round(v, 3) for k, v in report.timings.items()},
    }
    if as_json:
        emit_json(payload)
    else:
        out.print(payload)


def unmerge_cmd(
    merge_id: Annotated[int, typer.Argument(help="The merge to undo (see the merges table).")],
    reason: Annotated[str, typer.Option(help="Why: kept with the merge record.")],
    group: GroupOption = None,
) -> None:
    """Undo a merge: both members come back with their identities; the bridging links are
    blocked so the next resolution does not merge them again."""
    from siyu.identity.service import unmerge

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        result = unmerge(engine, group or settings.group_id, merge_id, reason)
    emit_json(vars(result))


def conflicts_cmd(
    kind: Annotated[
        str | None,
        typer.Option(
            help="exclusive_clash, phone_change, weak_ambiguous, duplicate_registration or "
            "card_change (default: all)."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    group: GroupOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """What OneID refused to merge (and the phone changes it accepted), masked, in the
    language SIYU_LANG names (--json: the codes, for scripts)."""
    from siyu.identity.conflicts import list_conflicts
    from siyu.identity.models import CONFLICT_KINDS

    settings = load_settings()
    if kind is not None and kind not in CONFLICT_KINDS:
        fail(SiyuError(f"kind: must be {', '.join(CONFLICT_KINDS)}, got {kind!r}"))
    with errors(), open_store(settings.database_url) as engine:
        found = list_conflicts(engine, group or settings.group_id, kind, limit)
    if as_json:
        for c in found:
            emit_json(vars(c))
        return
    out.print(
        conflicts_table(found, settings.lang) if found else t("conflicts.none", settings.lang)
    )


def conflicts_table(found: list[Conflict], lang: str) -> Table:
    """The conflicts as a table in `lang`: kinds and identity types by their labels, the
    reason worded from the kind (the stored `detail` is the English audit text)."""
    from siyu.console.i18n import label
    from siyu.identity.models import CONFLICT_KINDS

    def identity(
        type_: str | None, masked: str | None, member: int | None, scope: str | None
    ) -> str:
        if type_ is None:
            return "-"
        named = label("idtype", type_, lang) + (f"@{scope}" if scope else "")
        return t("conflict.identity", lang, type=named, value=masked or "-", member=member or "-")

    table = Table(title=t("conflicts.title", lang))
    for key in ("col.conflict", "col.type", "col.identity_x", "col.identity_y", "col.detail"):
        table.add_column(t(key, lang), overflow="fold")
    table.add_column(t("col.detected", lang), no_wrap=True)
    for c in found:
        same = c.kind == "weak_ambiguous"  # one identifier seen with several members
        table.add_row(
            str(c.conflict_id),
            t(f"conflict.{c.kind}", lang) if c.kind in CONFLICT_KINDS else c.kind,
            identity(c.type_x, c.masked_x, c.member_x, c.scope_x),
            "-" if same else identity(c.type_y, c.masked_y, c.member_y, c.scope_y),
            t(f"conflict.detail.{c.kind}", lang, type=label("idtype", c.type_x, lang))
            if c.kind in CONFLICT_KINDS
            else c.detail,
            str(c.detected_at)[:16],  # SQLite answers text, PostgreSQL a datetime
        )
    return table


def evaluate_cmd(
    truth: Annotated[Path, typer.Argument(help="identity_truth.parquet written by generate.")],
    group: GroupOption = None,
) -> None:
    """Pairwise precision, recall and F1 of OneID against a generator's ground truth."""
    from siyu.identity.ingest import IdentifierEncoder
    from siyu.identity.quality import evaluate_against_truth
    from siyu.privacy import Vault

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        quality = evaluate_against_truth(
            engine,
            group or settings.group_id,
            truth,
            IdentifierEncoder(Vault(settings.secret_key)),
        )
    emit_json(vars(quality))
