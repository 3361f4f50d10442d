"""`siyu campaigns`: plan a campaign from a JSON document, launch it, read its report and
the members behind a figure. Thin over `siyu.campaigns`; amounts in yuan, member ids only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

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
    yuan,
)
from siyu.errors import ValidationError

app = typer.Typer(
    help="Campaigns: a target, a period, incentives, a budget and a holdout; launch, report.",
    no_args_is_help=True,
)


@app.command("put")
def put_cmd(
    file: Annotated[Path, typer.Argument(help="A campaign plan (JSON).")],
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store the plan as a draft (a launched campaign's plan is fixed); a refusal names
    the field and the rule, exit 2, and stores nothing."""
    from siyu.campaigns.plan import Plan, save

    save_draft(file, Plan, "plan", save, group, as_json)


@app.command("holdout")
def holdout_cmd(
    share_bp: Annotated[
        int | None,
        typer.Argument(help="Set the share held out, in basis points (500 = 5%); omit to show."),
    ] = None,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """The group's global holdout: members kept out of every campaign, experiment and
    marketing send, for measuring all of them together; show it, or set its share."""
    from siyu.campaigns import global_holdout
    from siyu.store.migrate import upgrade

    settings = load_settings()
    g = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        if share_bp is None:
            with engine.connect() as conn:
                found = global_holdout.current(conn, g)
        else:
            found = global_holdout.set_share(engine, g, share_bp)
    since = None if found.updated_at is None else found.updated_at.isoformat()
    started = None if found.started_at is None else found.started_at.isoformat()
    if as_json:
        emit_json({"share_bp": found.share_bp, "updated_at": since, "started_at": started})
        return
    out.print(
        f"global holdout: {found.share_bp / 100:g}% of members ({found.share_bp} bp)"
        + (f", set {since}" if since else ", never set")
    )


@app.command("holdout-report")
def holdout_report_cmd(
    months: Annotated[int, typer.Option(help="How many months, the current one last (1-24).")] = 6,
    members: Annotated[
        str | None,
        typer.Option(
            help="Print the member ids behind a figure instead: PERIOD:SIDE:FIGURE, e.g. "
            "2026-11:held_out:buyers or since:others:members."
        ),
    ] = None,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """What all marketing together is worth: the global holdout's members against every
    other member, month by month and since it began (revenue net of refunds, in yuan; the
    differences are others minus held out, with 95% intervals, each member's revenue
    capped at the 99th percentile of the period's buyers). The months before it began
    check the split: there the two sides should not differ."""
    from siyu.experiments.holdout_effect import holdout_effect, member_ids
    from siyu.store.migrate import upgrade

    settings = load_settings()
    g = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        if members is not None:
            period, side, figure = [*members.split(":"), "", "", ""][:3]
            for m in member_ids(engine, g, period, side, figure):  # type: ignore[arg-type]
                out.print(m)
            return
        found = holdout_effect(engine, g, months)
    if found is None:
        out.print("nothing is held out: set a share with `siyu campaigns holdout BP`")
        raise typer.Exit(1)
    if as_json:
        emit_json(found.as_dict())
        return
    since = "never" if found.started_at is None else found.started_at.isoformat(" ")[:16]
    out.print(f"global holdout: {found.share_bp / 100:g}% held out since {since} UTC")
    table = Table("period", "phase", "held out", "buyers", "per member", "others", "buyers",
                  "per member", "capped difference (95% CI)")  # fmt: skip
    periods = [*found.months, *([found.since_start] if found.since_start else [])]
    for p in periods:
        row = [p.label, p.phase]
        for half in (p.held_out, p.others):
            per = half.revenue_fen // half.people if half.people else 0
            row += [f"{half.people:,}", f"{half.buyers:,}", yuan(per)]
        d = p.capped_revenue_per_member_fen
        row.append(
            "-"
            if d is None
            else f"{yuan(round(d.absolute.estimate))} "
            f"[{yuan(round(d.absolute.ci_low))}, {yuan(round(d.absolute.ci_high))}]"
        )
        table.add_row(*row)
    out.print(table)


@app.command("launch")
def launch_cmd(
    code: Annotated[str, typer.Argument(help="The campaign's code.")],
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Assign the target's members to arms and give the treatment its incentives (safe
    to run again: nothing is given twice; members who entered the target since join)."""
    from siyu.campaigns.launch import launch
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine, progress_bars() as bars:
        upgrade(engine)
        done = launch(engine, group or settings.group_id, code, progress=progress_steps(bars))
    if as_json:
        emit_json(vars(done))
        return
    out.print(
        f"{code}: {done.target:,} in the target, {done.treatment:,} treated, "
        f"{done.holdout:,} held out, {done.over_budget:,} over budget"
        + (f", {done.global_holdout:,} in the global holdout" if done.global_holdout else "")
    )
    for template, counts in done.coupons.items():
        out.print(f"  {template}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    if done.points_posted:
        out.print(f"  points bonus posted to {done.points_posted:,} members")


@app.command("report")
def report_cmd(
    code: Annotated[str, typer.Argument(help="The campaign's code.")],
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reach, redemptions, revenue per arm, incremental revenue against the holdout with
    Welch's test and its 95% interval, cost and ROI, and the lottery's draws and winners."""
    from siyu.campaigns.report import report

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        found = report(engine, group or settings.group_id, code)
    if as_json:
        emit_json(json.loads(json.dumps(found.as_dict(), default=str)))
        return
    tab = Table(title=f"{code} ({found.since:%Y-%m-%d} – {found.until:%Y-%m-%d})")
    for column in ("", "treatment", "holdout"):
        tab.add_column(column, justify="left" if not column else "right")
    arms = (found.treatment, found.holdout)
    tab.add_row("members", *(f"{a.members:,}" for a in arms))
    tab.add_row("buyers", *(f"{a.buyers:,}" for a in arms))
    tab.add_row("revenue (yuan)", *(yuan(a.revenue_fen) for a in arms))
    tab.add_row("per member (yuan)", *(f"{a.revenue_per_member_fen / 100:,.2f}" for a in arms))
    out.print(tab)
    out.print(
        f"coupons issued {found.coupons_issued:,}, redeemed {found.redemptions:,} by "
        f"{found.redeemers:,} members, discount ¥{yuan(found.discount_fen)}, "
        f"cost ¥{yuan(found.cost_fen)}"
    )
    if found.lottery is not None:
        out.print(
            f"lottery {found.lottery}: {found.draws:,} draws, {found.wins:,} won by "
            f"{found.winners:,} members (prizes carry no cost)"
        )
    if found.incremental_revenue_fen is not None:
        line = f"incremental revenue ¥{found.incremental_revenue_fen / 100:,.2f}"
        if found.ci95_per_member_fen is not None and found.p_value is not None:
            low, high = found.ci95_per_member_fen
            line += (
                f" (per member 95% CI ¥{low / 100:,.2f} to ¥{high / 100:,.2f},"
                f" p={found.p_value:.3f})"
            )
        if found.roi is not None:
            line += f", ROI {found.roi:.2f}"
        out.print(line)
    if found.note:
        out.print(found.note)


@app.command("members")
def members_cmd(
    code: Annotated[str, typer.Argument(help="The campaign's code.")],
    arm: Annotated[str, typer.Option(help="treatment or holdout")] = "treatment",
    who: Annotated[str, typer.Option(help="all, buyers, redeemers or winners")] = "all",
    group: GroupOption = None,
) -> None:
    """The member ids behind a figure of the report, one a line."""
    from siyu.campaigns.report import members

    settings = load_settings()
    with errors():
        if arm not in ("treatment", "holdout"):
            raise ValidationError("--arm", "treatment or holdout")
        if who not in ("all", "buyers", "redeemers", "winners"):
            raise ValidationError("--who", "all, buyers, redeemers or winners")
        with open_store(settings.database_url) as engine:
            found = members(engine, group or settings.group_id, code, arm, who)  # type: ignore[arg-type]
    for member_id in found:
        print(member_id)
