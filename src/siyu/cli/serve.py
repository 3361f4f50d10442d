"""Serving: the API and console on the configured store, and the demo that ends serving
its own brand."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from siyu.cli.common import (
    JsonOption,
    emit_json,
    errors,
    fail,
    load_settings,
    open_store,
    out,
    progress_bars,
)
from siyu.config import Settings
from siyu.errors import SiyuError
from siyu.i18n import t


def serve_cmd(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) and the operations
    console (/console) on the configured store."""
    import uvicorn

    from siyu.console.routes import bundle_missing
    from siyu.store.migrate import upgrade

    settings = load_settings()
    missing = bundle_missing()
    if missing:
        fail(SiyuError(missing))
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
    uvicorn.run(
        "siyu.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )


def demo_cmd(
    members: Annotated[int, typer.Option(min=100, help="True persons to generate.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 11,
    workdir: Annotated[Path, typer.Option(help="Where data and the demo database go.")] = Path(
        "demo-data"
    ),
    database_url: Annotated[
        str | None, typer.Option(help="Use this store instead of a fresh SQLite file in --workdir.")
    ] = None,
    as_json: JsonOption = False,
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

    settings = load_settings()
    language = lang or settings.lang
    if language not in ("zh", "en"):
        fail(SiyuError(f"lang: must be 'zh' or 'en', got {language!r}"))
    if serve and not as_json:
        from siyu.console.routes import bundle_missing

        missing = bundle_missing()
        if missing:  # before minutes of work, not after
            fail(SiyuError(f"{missing}; or run the demo with --no-serve"))
    with errors(), progress_bars() as progress:
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
        emit_json(result.as_json())
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
    from sqlalchemy import text

    from siyu.app import create_app
    from siyu.auth.keys import create_key
    from siyu.demo.summary import print_console
    from siyu.privacy import Vault

    with open_store(database_url) as engine:
        vault = Vault(settings.secret_key)
        with engine.connect() as conn:
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
