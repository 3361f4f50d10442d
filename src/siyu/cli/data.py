"""Getting data in: migrate the store, generate a synthetic brand, import files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from siyu.cli.common import (
    GroupOption,
    console,
    emit_json,
    errors,
    fail,
    load_settings,
    open_store,
    out,
    progress_bars,
)
from siyu.errors import SiyuError
from siyu.i18n import t


def migrate_cmd() -> None:
    """Create or upgrade the operational store's schema (SIYU_DATABASE_URL)."""
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
    console.print(f"schema up to date: {settings.database_url.split('@')[-1]}")


def generate_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the files to.")] = Path(
        "demo-data/brand"
    ),
    members: Annotated[int, typer.Option(help="True persons to generate.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 11,
    knee: Annotated[int, typer.Option(help="Order count after which churn drops.")] = 4,
) -> None:
    """Write a synthetic omnichannel brand group (and its ground truth) as import files."""
    from siyu.demo.config import GeneratorConfig
    from siyu.demo.generate import generate

    with errors(), progress_bars() as progress:
        try:
            config = GeneratorConfig(members=members, seed=seed, knee=knee)
        except ValueError as exc:
            fail(exc)
            return
        task = progress.add_task("generate", total=members)
        report = generate(
            out_dir, config, lambda done, total: progress.update(task, completed=done, total=total)
        )
    emit_json({"out": str(out_dir), "rows": report.rows, "seconds": round(report.seconds, 2)})


def import_cmd(
    path: Annotated[Path, typer.Argument(help="A file, or a directory of kind-named files.")],
    kind: Annotated[
        str | None, typer.Option(help="Kind of a single file (default: from its name).")
    ] = None,
    group: GroupOption = None,
    rejects_dir: Annotated[Path, typer.Option(help="Where rejected rows are written.")] = Path(
        "siyu-rejects"
    ),
    batch_rows: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 100_000,
    resolve: Annotated[bool, typer.Option(help="Run batch OneID after importing.")] = True,
) -> None:
    """Import members, identities, orders, lines, refunds and events (CSV, JSONL, Parquet).

    Idempotent: importing the same file again adds nothing. Every row is accounted for:
    read = accepted + rejected, with rejected rows and reasons in --rejects-dir.
    """
    from siyu.identity.service import resolve_all
    from siyu.importer.kinds import KINDS
    from siyu.importer.service import ensure_group, import_directory, import_file
    from siyu.privacy import Vault
    from siyu.store.migrate import upgrade

    settings = load_settings()
    group_id = group or settings.group_id
    with errors(), progress_bars() as progress, open_store(settings.database_url) as engine:
        upgrade(engine)
        ensure_group(engine, group_id)
        vault = Vault(settings.secret_key)

        def bar(kind_name: str, file: Path) -> Callable[[int, int | None], None]:
            task = progress.add_task(f"{kind_name} ({file.name})", total=None)
            return lambda done, total: progress.update(task, completed=done, total=total)

        if path.is_dir():
            reports = import_directory(engine, vault, group_id, path, rejects_dir, batch_rows, bar)
        else:
            kind_name = kind or path.name.split(".")[0]
            if kind_name not in KINDS:
                fail(
                    SiyuError(
                        f"kind: cannot tell the kind of {path.name}; pass --kind "
                        f"({', '.join(KINDS)})"
                    )
                )
            reports = [
                import_file(
                    engine,
                    vault,
                    group_id,
                    kind_name,
                    path,
                    rejects_dir,
                    batch_rows,
                    bar(kind_name, path),
                )
            ]
        if resolve:
            task = progress.add_task("OneID", total=None)
            resolved = resolve_all(engine, group_id, settings.strong_identity_types)
            progress.update(task, total=1, completed=1)
    for r in reports:
        out.print(
            t(
                "import.summary",
                settings.lang,
                kind=r.kind,
                read=r.read,
                accepted=r.accepted,
                rejected=r.rejected,
                inserted=r.inserted,
            )
        )
        if r.kind == "members" and r.outcomes:
            out.print(t("import.members", settings.lang, **r.outcomes))
        if r.rejects_path:
            out.print("  " + t("import.rejects", settings.lang, path=r.rejects_path))
    if resolve:
        out.print(
            f"OneID: {resolved.members} members, {resolved.merges} merges, "
            f"{resolved.conflicts} conflicts refused, {resolved.seconds:.2f} s"
        )
