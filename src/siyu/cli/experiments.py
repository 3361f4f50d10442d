"""`siyu experiments`: save a plan from a JSON document, start and stop it, read its
results (a table per metric: each variant against the control) and the members behind a
figure as CSV. Thin over `siyu.experiments`; revenue in yuan, member ids only."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    progress_bars,
    progress_steps,
    save_draft,
)

if TYPE_CHECKING:
    from siyu.experiments.assign import Started
    from siyu.experiments.results import Breakdown

app = typer.Typer(
    help="Experiments: variants of a stage or segment against a control; start, results.",
    no_args_is_help=True,
)
AnchorOption = Annotated[
    str, typer.Option(help="Outcomes from each member's assignment or first exposure.")
]


@app.command("save")
def save_cmd(
    file: Annotated[Path, typer.Argument(help="An experiment plan (JSON).")],
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store the plan as a draft (a started experiment's plan is fixed); a refusal names
    the field and the rule, exit 2, and stores nothing."""
    from siyu.experiments.plan import Plan, save

    save_draft(file, Plan, "experiment", save, group, as_json)


@app.command("list")
def list_cmd(group: GroupOption = None, as_json: JsonOption = False) -> None:
    """Every experiment, newest first: status, target, variants, when started."""
    from siyu.experiments.plan import listed

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine, engine.connect() as conn:
        found = listed(conn, group or settings.group_id)
    if as_json:
        emit_json(
            [
                {
                    "code": e.plan.code,
                    "status": e.status,
                    "started_at": None if e.started_at is None else e.started_at.isoformat(),
                    "plan": e.plan.model_dump(mode="json"),
                }
                for e in found
            ]
        )
        return
    tab = Table(title="experiments")
    for column in ("code", "status", "target", "variants", "started"):
        tab.add_column(column)
    for e in found:
        target = e.plan.target.model_dump(exclude_none=True)
        tab.add_row(
            e.plan.code,
            e.status,
            ", ".join(f"{k} {v}" for k, v in target.items()),
            ", ".join(f"{v.name} {v.weight_bp / 100:g}%" for v in e.plan.variants),
            "" if e.started_at is None else f"{e.started_at:%Y-%m-%d %H:%M}",
        )
    out.print(tab)


@app.command("start")
def start_cmd(
    code: Annotated[str, typer.Argument(help="The experiment's code.")],
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Assign the target's members to variants and deliver each variant's treatment
    (coupons issued, the message's send planned, the campaign's incentive granted), then
    print what was delivered. Safe to run again: nobody is assigned or given anything
    twice; members who entered the target since join; the global holdout gets nothing."""
    from siyu.experiments.assign import start
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine, progress_bars() as bars:
        upgrade(engine)
        done = start(engine, group or settings.group_id, code, progress=progress_steps(bars))
    if as_json:
        emit_json(asdict(done))
        return
    out.print(
        f"{code}: {done.target:,} in the target, {done.assigned:,} newly assigned, "
        f"{done.global_holdout:,} in the global holdout"
    )
    for name, n in done.variants.items():
        out.print(f"  {name}: {n:,}")
    for line in delivered_lines(done):
        out.print(f"  {line}")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def delivered_lines(done: Started) -> list[str]:
    """What a start delivered, a line per variant: coupons issued, the send planned (or
    left as an earlier start planned it) and its recipients, the campaign's grants, the
    guide task's members tasked and those no guide serves."""
    lines = [f"{name} coupons: {_counts(c)}" for name, c in done.coupons.items()]
    for name, m in done.messages.items():
        how = "planned by this start" if m.planned_now else "planned before, left as it is"
        lines.append(f"{name} send {m.send} {m.state} ({how}): {_counts(m.recipients)}")
    for name, c in done.campaigns.items():
        lines.append(
            f"{name} campaign {c.campaign}: {c.enrolled:,} enrolled, {c.granted:,} granted, "
            f"{c.over_budget:,} over budget, {c.campaign_holdout:,} in its own holdout"
        )
        lines += [f"{name} campaign coupons {t}: {_counts(n)}" for t, n in c.coupons.items()]
        if c.points_posted:
            lines.append(f"{name} campaign points: {c.points_posted:,} postings")
    for name, t in done.guide_tasks.items():
        lines.append(
            f"{name} guide task {t.task}: {t.tasked:,} tasked ({t.tasked_now:,} by this start), "
            f"{t.no_guide:,} with no guide serving them (no task)"
        )
    return lines


@app.command("stop")
def stop_cmd(
    code: Annotated[str, typer.Argument(help="The experiment's code.")],
    group: GroupOption = None,
) -> None:
    """Stop a running experiment: nobody is assigned after this; its results stay."""
    from siyu.experiments.plan import stop

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        stopped = stop(engine, group or settings.group_id, code)
    out.print(f"{code}: {stopped.status}")


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def _mean(metric: str, value: float | None) -> str:
    if value is None:
        return ""
    return f"¥{value / 100:,.2f}" if metric == "revenue_fen" else f"{value * 100:.1f}%"


def _tables(found: Breakdown, control: str, title: str) -> None:
    from siyu.experiments.results import METRICS

    if found.srm is not None:
        out.print(
            f"{title}: SRM p={found.srm.p_value:.4f}"
            + (
                " — MISMATCH: the arms are not in their planned shares; read no lift"
                if found.srm.mismatch
                else " (arms in their planned shares)"
            )
        )
    for metric in METRICS:
        rows = [c for c in found.comparisons if c.metric == metric]
        tab = Table(title=f"{title}: {metric}")
        for column in ("variant", "n", "mean", "lift", "95% CI", "p", "sequential CI", "CUPED"):
            tab.add_column(column, justify="left" if column == "variant" else "right")
        control_mean = rows[0].control_mean if rows else None
        tab.add_row(control, f"{found.counts.get(control, 0):,}", _mean(metric, control_mean))
        for c in rows:
            d, s, cu = c.difference, c.sequential, c.cuped
            tab.add_row(
                c.variant,
                f"{found.counts.get(c.variant, 0):,}",
                _mean(metric, c.treatment_mean),
                "" if d is None else _pct(d.relative.estimate),
                "" if d is None else f"{_pct(d.relative.ci_low)} … {_pct(d.relative.ci_high)}",
                "" if d is None else f"{d.relative.p_value:.3f}",
                "" if s is None else f"{_pct(s.relative.ci_low)} … {_pct(s.relative.ci_high)}",
                "" if cu is None else _pct(cu.relative.estimate),
            )
        out.print(tab)
        for c in rows:
            if c.note:
                out.print(f"  {c.variant}: {c.note}")


@app.command("results")
def results_cmd(
    code: Annotated[str, typer.Argument(help="The experiment's code.")],
    anchor: AnchorOption = "assignment",
    by_stage: Annotated[bool, typer.Option("--by-stage", help="A table per stage too.")] = False,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each variant against the control per metric: members, mean, relative lift with its
    95% interval and p-value (Welch), the always-valid (sequential) interval, the CUPED
    lift when a pre-period is set; the sample-ratio check; `--by-stage` per stage."""
    from siyu.experiments.results import results

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        found = results(engine, group or settings.group_id, code, anchor)  # type: ignore[arg-type]
    if as_json:
        emit_json(json.loads(json.dumps(found.as_dict(), default=str)))
        return
    out.print(
        f"{code} ({found.status}), outcomes over {found.window_days} days from {found.anchor},"
        f" up to {found.until:%Y-%m-%d %H:%M}; control {found.control}"
    )
    out.print(f"exposed (first exposure logged or delivered): {_counts(found.exposed)}")
    if found.exposure_note:
        out.print(found.exposure_note)
    _tables(found.overall, found.control, "all")
    if by_stage:
        for b in found.stages:
            _tables(b, found.control, f"stage {b.stage or '(none)'}")
    for name, why in found.not_measured.items():
        out.print(f"{name}: {why}")


@app.command("members")
def members_cmd(
    code: Annotated[str, typer.Argument(help="The experiment's code.")],
    variant: Annotated[str, typer.Option(help="The variant's name.")],
    metric: Annotated[
        str | None,
        typer.Option(help="revenue_fen, repurchase, next_order, coupon_redemption or unsubscribe."),
    ] = None,
    negative: Annotated[
        bool, typer.Option("--negative", help="Those whose metric was not positive.")
    ] = False,
    stage: Annotated[str | None, typer.Option(help="Only those in this stage.")] = None,
    anchor: AnchorOption = "assignment",
    group: GroupOption = None,
) -> None:
    """The members behind a figure as CSV (member_id, variant): a variant's, or those whose
    metric was positive (`--negative`: was not); ids only, no personal data."""
    from siyu.experiments.results import members

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        found = members(
            engine,
            group or settings.group_id,
            code,
            variant,
            metric,  # type: ignore[arg-type]
            not negative,
            stage,
            anchor,  # type: ignore[arg-type]
        )
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["member_id", "variant"])
    for member_id in found:
        writer.writerow([member_id, variant])
