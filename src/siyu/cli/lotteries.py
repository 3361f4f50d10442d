"""`siyu lotteries`: define a prize pool from a JSON document, list and show pools,
reveal a pool's seed once it has ended, and audit its draws. Thin over
`siyu.lotteries.pools` and `siyu.lotteries.audit`. The seed is printed only once
revealed (before, draws could be foreseen); claim codes are never printed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from siyu.cli.common import (
    GroupOption,
    JsonOption,
    emit_json,
    errors,
    load_settings,
    open_store,
    out,
    read_document,
    yuan,
)

if TYPE_CHECKING:
    from siyu.lotteries.pools import Pool

app = typer.Typer(
    help="Lottery pools: define (odds fixed), list, show, reveal the seed, audit the draws.",
    no_args_is_help=True,
)
CodeArgument = Annotated[str, typer.Argument(help="The pool's code.")]


@app.command("define")
def define_cmd(
    file: Annotated[Path, typer.Argument(help="A prize pool document (JSON).")],
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store the pool and its prizes once (its odds never change; the same document again
    is a replay); a refusal names the field and the rule, exit 2, and stores nothing.
    Prints the SHA-256 the seed is committed to, never the seed."""
    from siyu.lotteries.pools import PoolDef, define
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors():
        pool_def = read_document(file, PoolDef, "pool")
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            pool = define(engine, group or settings.group_id, pool_def, None)
    if as_json:
        emit_json(pool_out(pool))
    else:
        out.print(
            f"{pool.code}: defined, {len(pool.prizes)} prizes, seed SHA-256 {pool.seed_sha256}"
        )


@app.command("list")
def list_cmd(group: GroupOption = None, as_json: JsonOption = False) -> None:
    """The group's pools, the newest first: period, entry, prizes awarded of their units."""
    from siyu.lotteries.pools import listed
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        with engine.connect() as conn:
            found = listed(conn, group or settings.group_id, limit=10_000)
    if as_json:
        emit_json({"pools": [pool_out(p) for p in found]})
        return
    if not found:
        out.print("No prize pools.")
        return
    table = Table(title="Prize pools")
    for column in ("code", "name", "from", "until", "entry", "awarded", "revealed"):
        table.add_column(column, overflow="fold")
    for p in found:
        table.add_row(
            p.code,
            p.name_zh if settings.lang == "zh" else p.name_en,
            f"{p.starts_at:%Y-%m-%d %H:%M}",
            f"{p.ends_at:%Y-%m-%d %H:%M}",
            _entry(p),
            f"{sum(x.awarded for x in p.prizes):,} / {sum(x.units for x in p.prizes):,}",
            "yes" if p.revealed_at else "no",
        )
    out.print(table)


@app.command("show")
def show_cmd(code: CodeArgument, group: GroupOption = None, as_json: JsonOption = False) -> None:
    """One pool: its rules, each prize's odds and awarded of units, and its draws."""
    from siyu.lotteries.pools import draw_counts, load
    from siyu.store.migrate import upgrade

    settings = load_settings()
    group_id = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        with engine.connect() as conn:
            pool = load(conn, group_id, code)
            draws = draw_counts(conn, group_id, code)
    if as_json:
        emit_json({**pool_out(pool), "draws": draws})
        return
    name = pool.name_zh if settings.lang == "zh" else pool.name_en
    out.print(
        f"{pool.code} ({name}): {pool.starts_at:%Y-%m-%d %H:%M} – {pool.ends_at:%Y-%m-%d %H:%M}"
        f" UTC, claims until {pool.claim_until:%Y-%m-%d %H:%M}; entry {_entry(pool)}, "
        f"{pool.per_member} draws per member"
    )
    table = Table(title="Prizes")
    for column in ("prize", "name", "sku", "location", "odds", "awarded", "units"):
        table.add_column(
            column, justify="right" if column in ("odds", "awarded", "units") else "left"
        )
    for x in pool.prizes:
        table.add_row(
            x.prize_code,
            x.name_zh if settings.lang == "zh" else x.name_en,
            x.sku,
            x.location_id,
            f"{x.odds_ppm / 10_000:.2f}%",
            f"{x.awarded:,}",
            f"{x.units:,}",
        )
    out.print(table)
    out.print("draws: " + ", ".join(f"{k} {v:,}" for k, v in sorted(draws.items())))
    out.print(f"seed SHA-256 {pool.seed_sha256}" + ("" if pool.revealed_at else " (not revealed)"))


@app.command("reveal")
def reveal_cmd(code: CodeArgument, group: GroupOption = None, as_json: JsonOption = False) -> None:
    """Publish the pool's seed, once it has ended (refused before: draws could be
    foreseen), so anyone can recompute its draws."""
    from siyu.lotteries.pools import reveal
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        pool = reveal(engine, group or settings.group_id, code)
    if as_json:
        emit_json(pool_out(pool))
    else:
        out.print(f"{pool.code}: seed {pool.seed.hex()} (SHA-256 {pool.seed_sha256})")


@app.command("audit")
def audit_cmd(code: CodeArgument, group: GroupOption = None, as_json: JsonOption = False) -> None:
    """Recompute every draw from the seed and check the counts (prizes won = awarded <=
    units, draws per member within the limit); exit 1 when a problem is found."""
    from siyu.lotteries.audit import verify
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        report = verify(engine, group or settings.group_id, code)
    if as_json:
        emit_json(
            {
                "pool": report.pool_code,
                "seed_sha256": report.seed_sha256,
                "draws": report.draws,
                "won": report.won,
                "ok": report.ok,
                "problems": report.problems,
            }
        )
    else:
        won = ", ".join(f"{k} {v:,}" for k, v in sorted(report.won.items())) or "none"
        out.print(f"{report.pool_code}: {report.draws:,} draws recomputed, won: {won}")
        for problem in report.problems:
            out.print(f"  problem: {problem}")
        out.print("ok" if report.ok else f"{len(report.problems):,} problems")
    if not report.ok:
        raise typer.Exit(1)


def pool_out(pool: Pool) -> dict[str, Any]:
    """The pool as the API answers it: the seed only once revealed, no claim codes."""
    return {
        "code": pool.code,
        "name_zh": pool.name_zh,
        "name_en": pool.name_en,
        "starts_at": pool.starts_at,
        "ends_at": pool.ends_at,
        "claim_until": pool.claim_until,
        "entry": pool.entry,
        "scenes": list(pool.scenes),
        "min_paid_fen": pool.min_paid_fen,
        "points": pool.points,
        "campaign": pool.campaign,
        "per_member": pool.per_member,
        "seed_sha256": pool.seed_sha256,
        "seed": pool.seed.hex() if pool.revealed_at is not None else None,
        "revealed_at": pool.revealed_at,
        "prizes": [
            {
                "code": p.prize_code,
                "name_zh": p.name_zh,
                "name_en": p.name_en,
                "sku": p.sku,
                "location_id": p.location_id,
                "odds_ppm": p.odds_ppm,
                "units": p.units,
                "awarded": p.awarded,
            }
            for p in pool.prizes
        ],
    }


def _entry(pool: Pool) -> str:
    if pool.entry == "scan":
        return "scan of " + ", ".join(pool.scenes)
    if pool.entry == "purchase" and pool.min_paid_fen is not None:
        return f"purchase of ¥{yuan(pool.min_paid_fen)}+"
    if pool.entry == "points" and pool.points is not None:
        return f"{pool.points:,} points"
    if pool.entry == "campaign":
        return f"granted by campaign {pool.campaign}"
    return pool.entry
