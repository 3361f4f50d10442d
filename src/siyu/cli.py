"""The `siyu` command. Thin: each command parses options and calls one service."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from sqlalchemy import Engine as SqlEngine

    from siyu.analytics.engines import Engine

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
    from siyu.ledger.merges import settle_merges
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
            settle_merges(engine, group_id)  # balances follow merged members
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
    from siyu.ledger.merges import settle_merges
    from siyu.store.engine import make_engine

    settings = _settings()
    with _errors():
        engine = make_engine(settings.database_url)
        report = resolve_all(engine, group or settings.group_id, settings.strong_identity_types)
        settle_merges(engine, group or settings.group_id)  # balances follow merged members
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
    from siyu.ledger.merges import settle_merges
    from siyu.store.engine import make_engine

    settings = _settings()
    with _errors():
        engine = make_engine(settings.database_url)
        result = unmerge(engine, group or settings.group_id, merge_id, reason)
        settle_merges(engine, group or settings.group_id)  # balances go back
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


analyze_app = typer.Typer(
    help="Member analytics on an orders file (no database): retention, RFM, CLV.",
    no_args_is_help=True,
)
app.add_typer(analyze_app, name="analyze")

OrdersOption = Annotated[
    Path,
    typer.Option("--orders", help="CSV or Parquet: order_id, member_id, ordered_at, amount_fen."),
]
EngineOption = Annotated[
    str, typer.Option(help="duckdb (default) or spark (needs the spark extra).")
]
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="End of the data (ISO date or time; default: last order)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object, nothing else.")]


def _engine(name: str) -> Engine:
    if name == "duckdb":
        return "duckdb"
    if name == "spark":
        return "spark"
    _fail(SiyuError(f"engine: must be duckdb or spark, got {name!r}"))
    raise AssertionError  # _fail exits


def _analysis_end(text: str | None) -> datetime | None:
    from siyu.analytics.orders import parse_as_of

    with _errors():
        return None if text is None else parse_as_of(text)
    return None


@analyze_app.command("retention")
def analyze_retention(
    orders: OrdersOption,
    window_days: Annotated[int, typer.Option(help="W: a next order within W days retains.")],
    max_k: Annotated[int, typer.Option(help="Report k = 1..N orders.")] = 10,
    as_of: AsOfOption = None,
    by: Annotated[
        list[str] | None,
        typer.Option(help="Break down by a column of the first order, or cohort_month (repeat)."),
    ] = None,
    knee_method: Annotated[str, typer.Option(help="jump (default) or kneedle.")] = "jump",
    min_support: Annotated[int, typer.Option(help="Eligible members a point needs to count.")] = 30,
    engine: EngineOption = "duckdb",
    as_json: JsonOption = False,
) -> None:
    """Retention by order count (会员四次): rate_k, its 95% interval, and the knee."""
    from siyu.analytics.render import print_retention
    from siyu.analytics.service import retention_report

    if knee_method not in ("jump", "kneedle"):
        _fail(SiyuError(f"knee-method: must be jump or kneedle, got {knee_method!r}"))
    with _errors():
        report = retention_report(
            orders,
            window_days,
            max_k,
            _analysis_end(as_of),
            tuple(by or ()),
            "kneedle" if knee_method == "kneedle" else "jump",
            min_support,
            _engine(engine),
        )
    if as_json:
        _emit_json(report.payload)
    else:
        print_retention(out, report.rows, report.payload)


@analyze_app.command("rfm")
def analyze_rfm(
    orders: OrdersOption,
    as_of: AsOfOption = None,
    layering: Annotated[
        str, typer.Option(help="quantile (scores by share of members) or threshold.")
    ] = "quantile",
    members_out: Annotated[
        Path | None, typer.Option("--out", help="Write every member's scores (.csv/.parquet).")
    ] = None,
    engine: EngineOption = "duckdb",
    as_json: JsonOption = False,
) -> None:
    """RFM scores 1-5 and segments: vip, loyal, ordinary, at_risk, lapsed."""
    from siyu.analytics.render import print_rfm
    from siyu.analytics.rfm import RFMConfig
    from siyu.analytics.service import rfm_report

    if layering not in ("quantile", "threshold"):
        _fail(SiyuError(f"layering: must be quantile or threshold, got {layering!r}"))
    with _errors():
        config = RFMConfig(layering="threshold" if layering == "threshold" else "quantile")
        payload = rfm_report(orders, _analysis_end(as_of), config, members_out, _engine(engine))
    if as_json:
        _emit_json(payload)
    else:
        print_rfm(out, payload)


@analyze_app.command("clv")
def analyze_clv(
    summary: Annotated[
        Path | None,
        typer.Option(help="CSV: frequency,recency,T (or x,t_x,T), optional zbar/monetary_value."),
    ] = None,
    orders: Annotated[
        Path | None, typer.Option(help="Or an orders file: the summary is computed from it.")
    ] = None,
    period_days: Annotated[int, typer.Option(help="Days per period (orders only).")] = 7,
    horizon: Annotated[int, typer.Option(help="Periods to predict.")] = 52,
    as_of: AsOfOption = None,
    members_out: Annotated[
        Path | None, typer.Option("--out", help="Per-member predictions, CSV (orders only).")
    ] = None,
    engine: EngineOption = "duckdb",
    as_json: JsonOption = False,
) -> None:
    """CLV: BG/NBD (how many purchases) and Gamma-Gamma (worth how much)."""
    from siyu.analytics.render import print_clv
    from siyu.analytics.service import clv_from_orders, clv_from_summary, write_members

    if (summary is None) == (orders is None):
        _fail(SiyuError("summary/orders: give exactly one of --summary and --orders"))
    with _errors():
        if summary is not None:
            payload = clv_from_summary(summary, horizon)
        else:
            assert orders is not None
            result = clv_from_orders(
                orders, period_days, horizon, _analysis_end(as_of), engine=_engine(engine)
            )
            payload = result.to_json()
            if members_out is not None:
                write_members(result.members(), members_out)
                payload["out"] = str(members_out)
    if as_json:
        _emit_json(payload)
    else:
        print_clv(out, payload)


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) and the operations
    console (/console) on the configured store."""
    import uvicorn

    from siyu.console.routes import bundle_missing
    from siyu.store.engine import make_engine
    from siyu.store.migrate import upgrade

    settings = _settings()
    missing = bundle_missing()
    if missing:
        _fail(SiyuError(missing))
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
    serve: Annotated[
        bool,
        typer.Option(
            help="End by serving the console on the demo brand (Ctrl-C stops); --json never serves."
        ),
    ] = True,
    host: Annotated[str, typer.Option(help="Interface the console listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the console.")] = 8000,
) -> None:
    """Run the whole path: generate -> import -> resolve -> quality against the truth ->
    warehouse, stages and the console's snapshot; then serve the console on it."""
    from siyu.demo.pipeline import run_demo

    settings = _settings()
    language = lang or settings.lang
    if language not in ("zh", "en"):
        _fail(SiyuError(f"lang: must be 'zh' or 'en', got {language!r}"))
    if serve and not as_json:
        from siyu.console.routes import bundle_missing

        missing = bundle_missing()
        if missing:  # before minutes of work, not after
            _fail(SiyuError(f"{missing}; or run the demo with --no-serve"))
    with _errors(), _progress() as progress:
        gen_task = progress.add_task(t("step.generate", language), total=members)
        step_task = progress.add_task("", total=6)
        names = {
            "generate": "step.generate",
            "import": "step.import",
            "resolve": "step.resolve",
            "evaluate": "step.evaluate",
            "operations": "step.operations",
            "snapshot": "step.snapshot",
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
    if serve:
        _serve_demo(settings, result.database_url, result.group_id, language, host, port)


def _serve_demo(
    settings: Settings, database_url: str, group: str, lang: str, host: str, port: int
) -> None:
    """Keys for the demo brand (an admin's, and an analyst's and a store's to try the
    roles), the console's URL, then the server in the foreground."""
    from dataclasses import replace

    import uvicorn

    from siyu.app import create_app
    from siyu.auth.keys import create_key
    from siyu.demo.summary import print_console
    from siyu.privacy import Vault
    from siyu.store.engine import make_engine

    engine = make_engine(database_url)
    try:
        vault = Vault(settings.secret_key)
        with engine.connect() as conn:
            from sqlalchemy import text

            store = conn.execute(
                text("SELECT MIN(store_id) FROM stores WHERE group_id = :g AND kind = 'store'"),
                {"g": group},
            ).scalar()
        keys = {
            "admin": create_key(engine, vault, group, "admin", "demo admin", expires_in_days=30),
            "analyst": create_key(
                engine, vault, group, "analyst", "demo analyst", expires_in_days=30
            ),
        }
        if store is not None:
            keys["store"] = create_key(
                engine, vault, group, "store", "demo store", stores=(store,), expires_in_days=30
            )
    finally:
        engine.dispose()
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    print_console(
        out, f"http://{shown}:{port}/console", {r: k.secret for r, k in keys.items()}, lang
    )
    served = replace(settings, database_url=database_url, group_id=group, lang=lang)
    uvicorn.run(
        create_app(served, rate_per_second=settings.rate_limit),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":  # pragma: no cover
    app()


loyalty_app = typer.Typer(
    help="Loyalty jobs: earn for orders, expire points, review tiers. Safe to re-run.",
    no_args_is_help=True,
)
app.add_typer(loyalty_app, name="loyalty")


@loyalty_app.command("settle-orders")
def loyalty_settle_orders(
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Orders earn points by the rules (once each); refunds claw them back."""
    from siyu.ledger.jobs import settle_orders
    from siyu.store.migrate import upgrade

    settings = _settings()
    with _store(settings) as engine, _errors():
        upgrade(engine)
        with _progress() as progress:
            task = progress.add_task("orders and refunds", total=None)
            report = settle_orders(
                engine,
                group or settings.group_id,
                lambda done, total: progress.update(task, completed=done, total=total),
            )
    if as_json:
        _emit_json(vars(report))
    else:
        out.print(vars(report))


@loyalty_app.command("expire-points")
def loyalty_expire_points(
    as_of: Annotated[
        str | None, typer.Option(help="Expire what is due by this time (default: now).")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
) -> None:
    """Lots past their expiry become breakage (one posting per member)."""
    from siyu.ledger.points import expire_due

    settings = _settings()
    with _store(settings) as engine, _errors():
        made = expire_due(engine, group or settings.group_id, _as_of_or_now(as_of))
    _emit_json({"postings": made})


@loyalty_app.command("review-tiers")
def loyalty_review_tiers(
    as_of: Annotated[
        str | None, typer.Option(help="Review as of this time (default: now).")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
) -> None:
    """The periodic tier review: upgrades, grace periods and downgrades."""
    from collections import Counter

    from siyu.ledger.tiers import review

    settings = _settings()
    with _store(settings) as engine, _errors():
        changes = review(engine, group or settings.group_id, _as_of_or_now(as_of))
    _emit_json(dict(Counter(c.reason for c in changes)))


@contextmanager
def _store(settings: Settings) -> Iterator[SqlEngine]:
    """The operational store's engine for one command, disposed at the end (its pooled
    connections closed, not left to the garbage collector)."""
    from siyu.store.engine import make_engine

    engine = make_engine(settings.database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _as_of_or_now(value: str | None) -> datetime:
    from siyu.errors import ValidationError

    if value is None:
        return datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError("--as-of", "an ISO date or time, e.g. 2026-12-31T23:59:59") from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


warehouse_app = typer.Typer(
    help="The analytics warehouse: land the store's facts (DuckDB file or Parquet), status.",
    no_args_is_help=True,
)
app.add_typer(warehouse_app, name="warehouse")


def _warehouse_path(fmt: str, path: Path | None, settings: Settings) -> Path:
    if path is not None:
        return path
    if fmt == "parquet":
        _fail(SiyuError("out: --format parquet needs --out DIR (a directory of Parquet files)"))
    return Path(settings.warehouse)


@warehouse_app.command("land")
def warehouse_land(
    fmt: Annotated[
        str, typer.Option("--format", help="duckdb (one file, default) or parquet (for Spark).")
    ] = "duckdb",
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="The DuckDB file (default SIYU_WAREHOUSE) or Parquet DIR."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Compare and land only days from this date on (YYYY-MM-DD)."),
    ] = None,
    full: Annotated[bool, typer.Option(help="Land every day and snapshot again.")] = False,
    table: Annotated[
        list[str] | None, typer.Option(help="Land only this table (repeat; default: all).")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Copy the store's orders, lines, refunds, events, identities and members (no personal
    data) into the warehouse. Incremental and idempotent: only days whose rows changed."""
    from datetime import date

    from siyu.analytics.landing import land
    from siyu.analytics.render import print_landing
    from siyu.errors import ValidationError
    from siyu.store.engine import make_engine
    from siyu.store.migrate import upgrade

    settings = _settings()
    target = _warehouse_path(fmt, out_path, settings)
    engine = make_engine(settings.database_url)
    try:
        with _errors():
            try:
                since_day = None if since is None else date.fromisoformat(since)
            except ValueError:
                raise ValidationError(
                    "since", f"must be a date YYYY-MM-DD, got {since!r}"
                ) from None
            upgrade(engine)
            with _progress() as progress:

                def bar(name: str, total: int) -> Callable[[int], None]:
                    task = progress.add_task(name, total=total)
                    return lambda rows: progress.advance(task, rows)

                report = land(
                    engine,
                    group or settings.group_id,
                    target,
                    fmt,
                    since_day,
                    full,
                    progress=bar,
                    tables=table or None,
                )
    finally:
        engine.dispose()
    if as_json:
        _emit_json(report.to_json())
    else:
        print_landing(out, report.to_json())
        out.print(f"{report.rows:,} rows landed in {report.seconds:.2f} s")


@warehouse_app.command("status")
def warehouse_status_cmd(
    location: Annotated[
        Path | None,
        typer.Option("--warehouse", help="DuckDB file or Parquet DIR (default SIYU_WAREHOUSE)."),
    ] = None,
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
) -> None:
    """What the warehouse holds: rows and days per table, and the last landing run."""
    from siyu.analytics.warehouse import warehouse_status

    settings = _settings()
    with _errors():
        payload = warehouse_status(location or Path(settings.warehouse), group or settings.group_id)
    _emit_json(payload)


@analyze_app.command("stages")
def analyze_stages(
    orders: Annotated[
        Path | None,
        typer.Option(help="An orders file instead of the warehouse (buyers only, no write-back)."),
    ] = None,
    location: Annotated[
        Path | None,
        typer.Option("--warehouse", help="DuckDB file or Parquet DIR (default SIYU_WAREHOUSE)."),
    ] = None,
    knee: Annotated[
        int | None, typer.Option(help="Order count from which members stay (default: found).")
    ] = None,
    at_risk_days: Annotated[int, typer.Option(help="At risk after this many silent days.")] = 60,
    lapsed_days: Annotated[int, typer.Option(help="Lapsed after this many silent days.")] = 120,
    window_days: Annotated[
        int, typer.Option(help="W of the retention curve the knee is found on.")
    ] = 120,
    min_support: Annotated[int, typer.Option(help="Eligible members a point needs to count.")] = 30,
    months: Annotated[
        int, typer.Option(help="Month-over-month transition matrices to report.")
    ] = 1,
    as_of: AsOfOption = None,
    write: Annotated[
        bool, typer.Option(help="Write the stages to the store's member_stages (warehouse only).")
    ] = True,
    members_out: Annotated[
        Path | None, typer.Option("--out", help="Write every member's stage (.csv/.parquet).")
    ] = None,
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
    engine: EngineOption = "duckdb",
    as_json: JsonOption = False,
) -> None:
    """Lifecycle stages from the knee (new_1 .. loyal, at_risk, lapsed, prospect) and the
    month-over-month transition matrix; written back to the store for serving."""
    from siyu.analytics.lifecycle import (
        stages_from_orders,
        stages_from_warehouse,
        write_member_stages,
        write_stages_file,
    )
    from siyu.analytics.render import print_stages
    from siyu.analytics.stages import StageConfig
    from siyu.store.engine import make_engine
    from siyu.store.migrate import upgrade

    settings = _settings()
    group_id = group or settings.group_id
    with _errors():
        config = StageConfig(
            knee=knee,
            at_risk_days=at_risk_days,
            lapsed_days=lapsed_days,
            window_days=window_days,
            min_support=min_support,
        )
        end = _analysis_end(as_of)
        if orders is not None:
            report = stages_from_orders(orders, config, end, months, _engine(engine))
        else:
            where = location or Path(settings.warehouse)
            report = stages_from_warehouse(where, group_id, config, end, months, _engine(engine))
            if write:
                store = make_engine(settings.database_url)
                try:
                    upgrade(store)
                    report.payload["written"] = write_member_stages(store, group_id, report.members)
                finally:
                    store.dispose()
        if members_out is not None:
            write_stages_file(report.members, members_out)
            report.payload["out"] = str(members_out)
    if as_json:
        _emit_json(report.payload)
    else:
        print_stages(out, report.payload)


inventory_app = typer.Typer(
    help="Stock jobs: expire reservations past their TTL, deliver the outbox to channels.",
    no_args_is_help=True,
)
app.add_typer(inventory_app, name="inventory")


@inventory_app.command("sweep")
def inventory_sweep(
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
) -> None:
    """Expire open reservations past their TTL; their units go back on sale."""
    from siyu.inventory.reservations import sweep_expired

    settings = _settings()
    with _store(settings) as engine, _errors():
        expired = sweep_expired(engine, group or settings.group_id)
    _emit_json({"expired": expired})


@inventory_app.command("deliver")
def inventory_deliver(
    to: Annotated[
        str,
        typer.Option(help="'stdout' (JSON lines) or an http(s) URL each event is POSTed to."),
    ] = "stdout",
    limit: Annotated[int, typer.Option(min=1, help="At most this many events.")] = 1000,
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
) -> None:
    """Deliver pending stock events (available to promise per channel) at least once;
    consumers dedupe by event_id."""
    import json as json_lib
    import urllib.request

    from siyu.inventory.outbox import Event, deliver

    if to != "stdout" and not to.startswith(("http://", "https://")):
        _fail(SiyuError("--to: 'stdout' or an http(s) URL"))

    def send(event: Event) -> None:
        body = json_lib.dumps(
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

    settings = _settings()
    with _store(settings) as engine, _errors():
        sent = deliver(engine, group or settings.group_id, send, limit)
    if to != "stdout":
        _emit_json({"delivered": sent})


@analyze_app.command("snapshot")
def analyze_snapshot(
    location: Annotated[
        Path | None,
        typer.Option("--warehouse", help="DuckDB file or Parquet DIR (default SIYU_WAREHOUSE)."),
    ] = None,
    land_first: Annotated[
        bool,
        typer.Option(
            "--land/--no-land", help="Land what changed in the store first (DuckDB file only)."
        ),
    ] = True,
    knee: Annotated[
        int | None, typer.Option(help="Stage from this knee instead of the data's.")
    ] = None,
    window_days: Annotated[int, typer.Option(help="Retention window W in days.")] = 120,
    write_stages: Annotated[
        bool, typer.Option(help="Write every member's stage to member_stages too.")
    ] = True,
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
    as_json: JsonOption = False,
) -> None:
    """The console's numbers: KPIs, retention and stages, RFM, sales, stores and guides
    computed from the warehouse and stored in the store (analytics_snapshots), so pages
    never query the warehouse. Run after each landing (e.g. nightly)."""
    from siyu.analytics.landing import land
    from siyu.analytics.snapshot import compute_snapshots, save_snapshots
    from siyu.analytics.stages import StageConfig
    from siyu.store.migrate import upgrade

    settings = _settings()
    target = location or Path(settings.warehouse)
    group_id = group or settings.group_id
    with _errors(), _store(settings) as engine:
        upgrade(engine)
        if land_first and not target.is_dir():
            land(engine, group_id, target)
        config = StageConfig(knee=knee, window_days=window_days)
        payloads = compute_snapshots(engine, group_id, target, config, write_stages)
        save_snapshots(engine, group_id, payloads)
    summary = {
        "group": group_id,
        "warehouse": str(target),
        "kinds": sorted(payloads),
        "as_of": payloads["kpis"]["as_of"],
        "knee": payloads["lifecycle"]["knee"],
    }
    if as_json:
        _emit_json(summary)
    else:
        out.print(
            f"snapshot of {group_id} as of {summary['as_of']}: {', '.join(summary['kinds'])}"
            f" (knee {summary['knee']}); the console shows it now"
        )


@analyze_app.command("kpis")
def analyze_kpis(
    location: Annotated[
        Path | None,
        typer.Option("--warehouse", help="DuckDB file or Parquet DIR (default SIYU_WAREHOUSE)."),
    ] = None,
    as_of: AsOfOption = None,
    since: Annotated[
        str | None, typer.Option(help="Count facts after this time only (ISO date or time).")
    ] = None,
    max_months: Annotated[int, typer.Option(help="Months after the first order in cohorts.")] = 12,
    top_guides: Annotated[int, typer.Option(help="Guides listed by sales.")] = 10,
    group: Annotated[str | None, typer.Option(help="Brand group (default SIYU_GROUP).")] = None,
    engine: EngineOption = "duckdb",
    as_json: JsonOption = False,
) -> None:
    """KPIs from the warehouse: cohort retention, monthly repurchase, cross-brand rate,
    channel shares, funnel by channel and guide, guide share of sales, online reach,
    non-member enrollment, same-city share."""
    from siyu.analytics.kpi_service import kpis_from_warehouse
    from siyu.analytics.render import print_kpis
    from siyu.analytics.store_read import StoreReader
    from siyu.store.engine import make_engine

    settings = _settings()
    with _errors():
        # the stores' cities are catalog data the warehouse does not hold (same-city share)
        store = make_engine(settings.database_url)
        try:
            stores = StoreReader(store, group or settings.group_id).store_cities()
        finally:
            store.dispose()
        payload = kpis_from_warehouse(
            location or Path(settings.warehouse),
            group or settings.group_id,
            _analysis_end(as_of),
            _analysis_end(since),
            max_months,
            top_guides,
            _engine(engine),
            stores=stores,
        )
    if as_json:
        _emit_json(payload)
    else:
        print_kpis(out, payload)
