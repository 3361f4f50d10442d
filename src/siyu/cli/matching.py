"""Probabilistic OneID by hand: the nightly batch pass, or one member against its
candidates."""

from __future__ import annotations

from typing import Annotated

import typer

from siyu.cli.common import GroupOption, emit_json, errors, load_settings, open_store, progress_bars

_STEPS = ("load", "train", "score", "record", "merge")


def match_cmd(
    member: Annotated[
        int | None,
        typer.Option(help="Match this one member against its candidates (incremental)."),
    ] = None,
    engine_name: Annotated[
        str, typer.Option("--engine", help="duckdb (default) or spark (needs siyu[spark]).")
    ] = "duckdb",
    group: GroupOption = None,
) -> None:
    """Probabilistic matching (Splink): train on the members, merge pairs above the auto
    threshold (undoable), queue those between the thresholds for review."""
    from siyu.privacy import Vault

    settings = load_settings()
    vault = Vault(settings.secret_key)
    group_id = group or settings.group_id
    if engine_name not in ("duckdb", "spark"):
        from siyu.cli.common import fail
        from siyu.errors import ValidationError

        fail(ValidationError("engine", "must be duckdb or spark", engine_name))
    with errors(), open_store(settings.database_url) as engine:
        if member is not None:
            from siyu.identity.matching.incremental import match_member

            emit_json(vars(match_member(engine, vault, group_id, member)))
            return
        from siyu.identity.matching.run import run_matching

        spark = None
        if engine_name == "spark":
            from siyu.analytics.engines import spark_session

            spark = spark_session()
        with progress_bars() as progress:
            task = progress.add_task("match", total=len(_STEPS))
            report = run_matching(
                engine,
                vault,
                group_id,
                settings.strong_identity_types,
                match_engine=engine_name,
                spark=spark,
                step=lambda name: progress.update(task, advance=1, description=f"match: {name}"),
            )
    payload = {k: v for k, v in vars(report).items() if k != "timings"}
    payload["seconds"] = {k: round(v, 3) for k, v in report.timings.items()}
    emit_json(payload)
