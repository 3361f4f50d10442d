"""OneID by hand: batch resolve, unmerge, the conflicts it refused, quality against truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from siyu.cli.common import GroupOption, emit_json, errors, fail, load_settings, open_store, out
from siyu.errors import SiyuError


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
        typer.Option(help="exclusive_clash, phone_change or weak_ambiguous (default: all)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    group: GroupOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """What OneID refused to merge (and the phone changes it accepted), masked."""
    from siyu.identity.conflicts import list_conflicts

    settings = load_settings()
    if kind is not None and kind not in ("exclusive_clash", "phone_change", "weak_ambiguous"):
        fail(
            SiyuError(
                f"kind: must be exclusive_clash, phone_change or weak_ambiguous, got {kind!r}"
            )
        )
    with errors(), open_store(settings.database_url) as engine:
        found = list_conflicts(engine, group or settings.group_id, kind, limit)
    for c in found:
        if as_json:
            emit_json(vars(c))
        else:
            out.print(f"#{c.conflict_id} {c.kind}: {c.identity_x} / {c.identity_y} — {c.detail}")


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
