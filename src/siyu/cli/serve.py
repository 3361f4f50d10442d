"""Serving: the API and console on the configured store, and the demo that ends serving
its own brand."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from siyu.cli.common import (
    JsonOption,
    console,
    emit_json,
    errors,
    fail,
    load_settings,
    open_store,
    out,
    progress_bars,
)
from siyu.config import Settings
from siyu.demo.config import DEFAULT_UPLIFT
from siyu.errors import SiyuError
from siyu.i18n import t

if TYPE_CHECKING:
    from siyu.demo.summary import DemoKey


def serve_cmd(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) and the operations
    console (/console) on the configured store."""
    import uvicorn

    from siyu.console.routes import bundle_missing, bundle_path
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
    missing = bundle_missing(bundle_path(settings.console_bundle))
    if missing:  # a plain install (no Node): the API is served, the console says why
        console.print(t("serve.console_off", settings.lang, why=missing), soft_wrap=True)
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
    true_effect: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="The stage experiment's true effect: the chance that a treated member who "
            "would not have bought in the window comes back.",
        ),
    ] = DEFAULT_UPLIFT,
) -> None:
    """Run the whole path: generate -> import -> resolve -> quality against the truth ->
    warehouse, stages and the console's snapshot; then serve the console on it."""
    from siyu.demo.pipeline import demo_database_url, run_demo

    try:
        # The settings later commands get with SIYU_DATABASE_URL set to the demo's store:
        # its secret is found (or, for the fresh store, made) where they will look for it.
        url = database_url or demo_database_url(workdir)
        settings = Settings.from_env({**os.environ, "SIYU_DATABASE_URL": url})
    except SiyuError as exc:
        fail(exc)
        raise
    language = lang or settings.lang
    if language not in ("zh", "en"):
        fail(SiyuError(f"lang: must be 'zh' or 'en', got {language!r}"))
    with errors(), progress_bars() as progress:
        gen_task = progress.add_task(t("step.generate", language), total=members)
        step_task = progress.add_task("", total=11)
        names = {
            "generate": "step.generate",
            "import": "step.import",
            "resolve": "step.resolve",
            "match": "step.match",
            "evaluate": "step.evaluate",
            "experiment": "step.experiment",
            "operations": "step.operations",
            "snapshot": "step.snapshot",
            "tags": "step.tags",
            "marketing": "step.marketing",
            "guides": "step.guides",
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
            uplift=true_effect,
        )
    if as_json:
        emit_json(result.as_json())
        return
    from siyu.console.routes import bundle_missing, bundle_path
    from siyu.demo.summary import print_console, print_keys, print_summary, print_where

    print_summary(out, result, language)
    print_where(out, result.settings, language)
    keys = _demo_keys(result.settings)
    if not serve:
        print_keys(out, keys, language)
        out.print(t("demo.serve_later", language), soft_wrap=True, highlight=False)
        return
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    missing = bundle_missing(bundle_path(settings.console_bundle))
    print_console(out, f"http://{shown}:{port}/console", keys, language, missing)
    _serve_demo(result.settings, language, host, port)


def _demo_keys(settings: Settings) -> list[DemoKey]:
    """Keys for the demo brand, one per console role: an admin's, an analyst's, a store's
    (the store with the most home members) and a guide's (the guide with the most members,
    so the guide pages have people on them). They expire in 30 days."""
    from sqlalchemy import text

    from siyu.auth.keys import create_key
    from siyu.demo.summary import DemoKey
    from siyu.privacy import Vault

    group = settings.group_id
    g = {"g": group}
    keys: list[DemoKey] = []
    with open_store(settings.database_url) as engine:
        vault = Vault(settings.secret_key)
        with engine.connect() as conn:
            store = conn.execute(
                text(
                    "SELECT s.store_id, COUNT(m.member_id) FROM stores s LEFT JOIN members m "
                    "ON m.group_id = s.group_id AND m.home_store_id = s.store_id "
                    "AND m.status = 'active' "
                    "WHERE s.group_id = :g AND s.kind = 'store' "
                    "GROUP BY s.store_id ORDER BY 2 DESC, s.store_id LIMIT 1"
                ),
                g,
            ).first()
            guide = conn.execute(
                text(
                    "SELECT guide_id, COUNT(DISTINCT member_id) FROM orders "
                    "WHERE group_id = :g AND guide_id IS NOT NULL AND member_id IS NOT NULL "
                    "GROUP BY guide_id ORDER BY 2 DESC, guide_id LIMIT 1"
                ),
                g,
            ).first()
        for role in ("admin", "analyst"):
            issued = create_key(engine, vault, group, role, f"demo {role}", expires_in_days=30)
            keys.append(DemoKey(role, issued.secret))
        if store is not None:
            issued = create_key(
                engine, vault, group, "store", "demo store", stores=(store[0],), expires_in_days=30
            )
            keys.append(DemoKey("store", issued.secret, store[0], int(store[1])))
        if guide is not None:
            issued = create_key(
                engine, vault, group, "guide", "demo guide", guide_id=guide[0], expires_in_days=30
            )
            keys.append(DemoKey("guide", issued.secret, guide[0], int(guide[1])))
    return keys


def _serve_demo(settings: Settings, lang: str, host: str, port: int) -> None:
    """The API and console on the demo brand, in the foreground."""
    from dataclasses import replace

    import uvicorn

    from siyu.app import create_app

    served = replace(settings, lang=lang)
    uvicorn.run(
        create_app(served, rate_per_second=settings.rate_limit),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )
