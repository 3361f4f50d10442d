"""The `siyu` command. Thin: each command parses options and calls one service."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from siyu.config import Settings
from siyu.errors import SiyuError
from siyu.i18n import t

app = typer.Typer(
    name="siyu",
    help="siyu (私域): one member, one ledger and one stock across every store and channel.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)
out = Console()


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SiyuError as exc:
        _fail(exc)
        raise


def _fail(exc: Exception) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(2)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except SiyuError as exc:
        _fail(exc)


def _emit_json(payload: object) -> None:
    """Machine-readable output: one line on stdout, never wrapped or styled by Rich."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )


@app.command("migrate")
def migrate_cmd() -> None:
    """Create or upgrade the operational store's schema (SIYU_DATABASE_URL)."""
    from siyu.store.engine import make_engine
    from siyu.store.migrate import upgrade

    settings = _settings()
    with _errors():
        upgrade(make_engine(settings.database_url))
    console.print(f"schema up to date: {settings.database_url.split('@')[-1]}")


@app.command("generate")
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

    with _errors(), _progress() as progress:
        try:
            config = GeneratorConfig(members=members, seed=seed, knee=knee)
        except ValueError as exc:
            _fail(exc)
            return
        task = progress.add_task("generate", total=members)
        report = generate(
            out_dir, config, lambda done, total: progress.update(task, completed=done, total=total)
        )
    _emit_json({"out": str(out_dir), "rows": report.rows, "seconds": round(report.seconds, 2)})


@app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="A file, or a directory of kind-named files.")],
    kind: Annotated[
        str | None, typer.Option(help="Kind of a single file (default: from its name).")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
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
    from siyu.identity.resolve import resolve_all
    from siyu.importer.kinds import KINDS
    from siyu.importer.service import ensure_group, import_directory, import_file
    from siyu.privacy import Vault
    from siyu.store.engine import make_engine
    from siyu.store.migrate import upgrade

    settings = _settings()
    group_id = group or settings.group_id
    with _errors(), _progress() as progress:
        engine = make_engine(settings.database_url)
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
                _fail(
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
        if r.rejects_path:
            out.print("  " + t("import.rejects", settings.lang, path=r.rejects_path))
    if resolve:
        out.print(
            f"OneID: {resolved.members} members, {resolved.merges} merges, "
            f"{resolved.conflicts} conflicts refused, {resolved.seconds:.2f} s"
        )


@app.command("resolve")
def resolve_cmd(
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Batch OneID: resolve the whole identity graph into members."""
    from siyu.identity.resolve import resolve_all
    from siyu.store.engine import make_engine

    settings = _settings()
    with _errors():
        report = resolve_all(
            make_engine(settings.database_url),
            group or settings.group_id,
            settings.strong_identity_types,
        )
    payload = {
        **{k: v for k, v in vars(report).items() if k != "timings"},
        "seconds": round(report.seconds, 3),
        "timings": {k: round(v, 3) for k, v in report.timings.items()},
    }
    if as_json:
        _emit_json(payload)
    else:
        out.print(payload)


@app.command("unmerge")
def unmerge_cmd(
    merge_id: Annotated[int, typer.Argument(help="The merge to undo (see the merges table).")],
    reason: Annotated[str, typer.Option(help="Why: kept with the merge record.")],
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
) -> None:
    """Undo a merge: both members come back with their identities; the bridging links are
    blocked so the next resolution does not merge them again."""
    from siyu.identity.merge import unmerge
    from siyu.store.engine import make_engine

    settings = _settings()
    with _errors():
        result = unmerge(
            make_engine(settings.database_url), group or settings.group_id, merge_id, reason
        )
    _emit_json(vars(result))


@app.command("conflicts")
def conflicts_cmd(
    kind: Annotated[
        str | None,
        typer.Option(help="exclusive_clash, phone_change or weak_ambiguous (default: all)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """What OneID refused to merge (and the phone changes it accepted), masked."""
    from siyu.identity.conflicts import list_conflicts
    from siyu.store.engine import make_engine

    settings = _settings()
    if kind is not None and kind not in ("exclusive_clash", "phone_change", "weak_ambiguous"):
        _fail(
            SiyuError(
                f"kind: must be exclusive_clash, phone_change or weak_ambiguous, got {kind!r}"
            )
        )
    with _errors():
        found = list_conflicts(
            make_engine(settings.database_url), group or settings.group_id, kind, limit
        )
    for c in found:
        if as_json:
            _emit_json(vars(c))
        else:
            out.print(f"#{c.conflict_id} {c.kind}: {c.identity_x} / {c.identity_y} — {c.detail}")


@app.command("evaluate")
def evaluate_cmd(
    truth: Annotated[Path, typer.Argument(help="identity_truth.parquet written by generate.")],
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
) -> None:
    """Pairwise precision, recall and F1 of OneID against a generator's ground truth."""
    from siyu.identity.ingest import IdentifierEncoder
    from siyu.identity.quality import evaluate_against_truth
    from siyu.privacy import Vault
    from siyu.store.engine import make_engine

    settings = _settings()
    with _errors():
        quality = evaluate_against_truth(
            make_engine(settings.database_url),
            group or settings.group_id,
            truth,
            IdentifierEncoder(Vault(settings.secret_key)),
        )
    _emit_json(vars(quality))


keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
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
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
) -> None:
    """Issue an API key and print it once; only its keyed hash is stored."""
    from siyu.auth.keys import create_key
    from siyu.importer.service import ensure_group
    from siyu.privacy import Vault
    from siyu.store.engine import make_engine
    from siyu.store.migrate import upgrade

    settings = _settings()
    with _errors():
        engine = make_engine(settings.database_url)
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


@keys_app.command("list")
def keys_list(
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
) -> None:
    """The group's keys: id, role, scope, expiry, revocation (never the secrets)."""
    from siyu.auth.keys import list_keys
    from siyu.store.engine import make_engine

    settings = _settings()
    with _errors():
        keys = list_keys(make_engine(settings.database_url), group or settings.group_id)
    for k in keys:
        scope = {n: v for n, v in k.scope.items() if v}
        state = "revoked" if k.revoked_at else f"expires {k.expires_at or 'never'}"
        out.print(f"{k.key_id}\t{k.role}\t{k.name}\t{scope}\t{state}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key to revoke.")],
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
) -> None:
    """Revoke a key at once."""
    from siyu.auth.keys import revoke_key
    from siyu.store.engine import make_engine

    settings = _settings()
    with _errors():
        revoke_key(make_engine(settings.database_url), group or settings.group_id, key_id)
    console.print(f"key {key_id} revoked")


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) on the configured store."""
    import uvicorn

    from siyu.store.engine import make_engine
    from siyu.store.migrate import upgrade

    settings = _settings()
    with _errors():
        upgrade(make_engine(settings.database_url))
    uvicorn.run(
        "siyu.api.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )


@app.command("demo")
def demo_cmd(
    members: Annotated[int, typer.Option(min=100, help="True persons to generate.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 11,
    workdir: Annotated[Path, typer.Option(help="Where data and the demo database go.")] = Path(
        "demo-data"
    ),
    database_url: Annotated[
        str | None, typer.Option(help="Use this store instead of a fresh SQLite file in --workdir.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object, nothing else.")
    ] = False,
    lang: Annotated[str | None, typer.Option(help="zh or en (default SIYU_LANG).")] = None,
) -> None:
    """Run the whole path: generate -> import -> resolve -> quality against the truth."""
    from siyu.demo.pipeline import run_demo

    settings = _settings()
    language = lang or settings.lang
    if language not in ("zh", "en"):
        _fail(SiyuError(f"lang: must be 'zh' or 'en', got {language!r}"))
    with _errors(), _progress() as progress:
        gen_task = progress.add_task(t("step.generate", language), total=members)
        step_task = progress.add_task("", total=4)
        names = {
            "generate": "step.generate",
            "import": "step.import",
            "resolve": "step.resolve",
            "evaluate": "step.evaluate",
        }

        def on_step(name: str) -> None:
            progress.update(step_task, description=t(names[name], language), advance=1)

        result = run_demo(
            settings,
            members,
            seed,
            workdir,
            database_url,
            on_step,
            lambda done, total: progress.update(gen_task, completed=done, total=total),
        )
    if as_json:
        _emit_json(result.as_json())
        return
    from siyu.demo.summary import print_summary

    print_summary(out, result, language)


if __name__ == "__main__":  # pragma: no cover
    app()
