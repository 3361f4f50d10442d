"""Experiments in the console (issue #18), under Marketing: the experiments (status,
target, variants, started), a form that saves a draft from a stage or a segment, Start
and Stop, and the results: per metric the control beside each variant with the lift, its
95% interval and p-value, the always-valid (sequential) interval, the CUPED-adjusted lift
when a pre-period is set, a banner when the sample-ratio check fires, and the same per
stage. Every count (a variant's members, the members a yes/no metric was positive for)
opens the member list among them (`member_lists.show_list`: paged, sorted, masked, CSV).

The pages open for the roles `GET /v1/experiments` serves (`experiments:read`); saving,
starting and stopping need `experiments:write` (HQ admins), checked again on each POST.
The figures are `experiments.results`', called in the thread pool as the API calls them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu.console import i18n, member_lists
from siyu.console.campaign_pages import paged
from siyu.console.segment_pages import coded_or_404, read
from siyu.console.web import (
    ConsoleExit,
    Ctx,
    authenticated,
    need,
    posted_form,
    redirect,
    render,
)
from siyu.errors import NotFoundError, ValidationError, parse_document
from siyu.experiments import plan as plans
from siyu.experiments.assign import start
from siyu.experiments.errors import ExperimentState
from siyu.experiments.results import (
    BINARY,
    METRICS,
    Anchor,
    Breakdown,
    Comparison,
    Metric,
    members,
    results,
)
from siyu.messaging.sends import STAGES

router = APIRouter()

PAGE = "experiments"
FORM_BYTES = 32 * 1024
ZONE = ZoneInfo("Asia/Shanghai")  # the form's dates are the brand's days
KINDS = ("none", "campaign", "message", "coupon", "guide_task")
FIELDS = ("code", "name_zh", "name_en", "target_kind", "target", "variants", "window_days",
          "pre_period_days", "starts_at", "ends_at")  # fmt: skip
EXAMPLE = "control:50:none\nnote:50:message:M1"


def experiment_path(code: str) -> str:
    return f"/console/experiments/{quote(code, safe='')}"


def name_of(ctx: Ctx, plan: plans.Plan) -> str:
    return plan.name_zh if ctx.lang == "zh" else plan.name_en


async def _list_page(
    ctx: Ctx, typed: dict[str, str] | None = None, error: str | None = None, status: int = 200
) -> Response:
    assert ctx.who is not None
    found: list[plans.Stored] = await read(ctx, plans.listed, ctx.who.group_id)
    shown, page_no, pages = paged(found, ctx.request.query_params.get("page"))
    return render(
        ctx,
        "experiments.html",
        status=status,
        experiments=shown,
        total=len(found),
        page_no=page_no,
        pages=pages,
        link=lambda page: f"/console/experiments?{urlencode({'page': page})}",
        path_of=experiment_path,
        name_of=lambda p: name_of(ctx, p),
        stages=STAGES,
        kinds=KINDS,
        may_write=ctx.who.may("experiments:write"),
        typed=typed
        or {
            "target_kind": "stage",
            "variants": EXAMPLE,
            "window_days": "30",
            "pre_period_days": "0",
        },
        error=error,
    )


@router.get("/experiments")
async def experiment_list(request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    return await _list_page(ctx)


def parse_variants(ctx: Ctx, raw: str) -> list[dict[str, Any]]:
    """`name:weight:kind:ref` lines, the weight in percent (up to two decimals: basis
    points); blank lines skipped; a line that is not so is refused by number."""
    found: list[dict[str, Any]] = []
    for n, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(":")]
        if len(parts) not in (3, 4):
            raise ValidationError("variants", ctx.t("exp.bad_line", line=n))
        try:
            weight = round(float(parts[1]) * 100)
        except ValueError:
            raise ValidationError("variants", ctx.t("exp.bad_weight", line=n)) from None
        found.append(
            {
                "name": parts[0],
                "weight_bp": weight,
                "kind": parts[2],
                "ref": (parts[3] or None) if len(parts) == 4 else None,
            }
        )
    return found


def _day(ctx: Ctx, fields: dict[str, str], name: str) -> datetime:
    try:
        day = datetime.strptime(fields.get(name, "").strip(), "%Y-%m-%d")
    except ValueError:
        raise ValidationError(name, ctx.t("exp.bad_date")) from None
    return day.replace(tzinfo=ZONE)


def plan_document(ctx: Ctx, fields: dict[str, str]) -> plans.Plan:
    """The form as a plan (its dates the brand's days, Asia/Shanghai)."""
    kind = fields.get("target_kind", "stage")
    if kind not in ("segment", "stage"):
        raise ValidationError("target_kind", "segment or stage", kind)
    doc = {
        "code": fields.get("code", "").strip(),
        "name_zh": fields.get("name_zh", "").strip(),
        "name_en": fields.get("name_en", "").strip(),
        "target": {kind: fields.get("target", "").strip()},
        "variants": parse_variants(ctx, fields.get("variants", "")),
        "window_days": fields.get("window_days", "").strip(),
        "pre_period_days": fields.get("pre_period_days", "").strip() or "0",
        "starts_at": _day(ctx, fields, "starts_at"),
        "ends_at": _day(ctx, fields, "ends_at"),
    }
    return parse_document(plans.Plan, doc, "experiment")


@router.post("/experiments")
async def save_draft(request: Request) -> Response:
    """Save the form as a draft and open it; a refusal shows the form again with what was
    typed and the field's rule."""
    ctx = await authenticated(request, PAGE)
    assert ctx.who is not None
    fields = await posted_form(request, FORM_BYTES)
    need(ctx, "experiments:write")
    typed = {k: fields.get(k, "") for k in FIELDS}
    try:
        plan = plan_document(ctx, fields)
        await run_in_threadpool(plans.save, ctx.svc.engine, ctx.who.group_id, plan, ctx.who.key_id)
    except (ValidationError, NotFoundError) as exc:
        return await _list_page(ctx, typed, str(exc), 422)
    except ExperimentState as exc:
        return await _list_page(ctx, typed, str(exc), 409)
    return redirect(ctx, f"{experiment_path(plan.code)}?done=saved")


@router.post("/experiments/{code:path}/{action}")
async def act(code: str, action: str, request: Request) -> Response:
    """Start (assign the target's members; again: newcomers) or Stop."""
    ctx = await authenticated(request, PAGE)
    assert ctx.who is not None
    await posted_form(request)
    if action not in ("start", "stop"):
        raise ConsoleExit(404)
    need(ctx, "experiments:write")
    found = await coded_or_404(ctx, plans.load, code)
    group, engine, real = ctx.who.group_id, ctx.svc.engine, found.plan.code
    try:
        if action == "start":
            done = await run_in_threadpool(start, engine, group, real, key_id=ctx.who.key_id)
            query = {"done": "started", "n": done.assigned, "held": done.global_holdout}
            return redirect(ctx, f"{experiment_path(real)}?{urlencode(query)}")
        await run_in_threadpool(plans.stop, engine, group, real)
        return redirect(ctx, f"{experiment_path(real)}?done=stopped")
    except (ExperimentState, ValidationError, NotFoundError) as exc:
        return await _show(ctx, found, error=str(exc), status=409)


def _anchor(ctx: Ctx) -> str:
    anchor = ctx.request.query_params.get("anchor", "assignment")
    if anchor not in ("assignment", "exposure"):
        raise ConsoleExit(404)
    return anchor


async def _figure_ids(ctx: Ctx, code: str) -> tuple[plans.Stored, dict[str, str], list[int]]:
    """The experiment, the figure's query (variant; metric and positive; stage; anchor)
    and its members; a 404 for a figure the results have not."""
    assert ctx.who is not None
    found = await coded_or_404(ctx, plans.load, code)
    params = ctx.request.query_params
    variant, metric = params.get("variant", ""), params.get("metric") or None
    stage, positive = params.get("stage") or None, params.get("positive", "1") != "0"
    anchor = _anchor(ctx)
    if variant not in {v.name for v in found.plan.variants}:
        raise ConsoleExit(404)
    if metric is not None and metric not in METRICS:
        raise ConsoleExit(404)
    ids = await run_in_threadpool(
        members,
        ctx.svc.engine,
        ctx.who.group_id,
        found.plan.code,
        variant,
        cast(Metric | None, metric),
        positive,
        stage,
        cast(Anchor, anchor),
    )
    keep = {
        "variant": variant,
        "anchor": anchor,
        **({"metric": metric, "positive": "1" if positive else "0"} if metric else {}),
        **({"stage": stage} if stage else {}),
    }
    return found, keep, ids


@router.get("/experiments/{code:path}/members.csv")
async def experiment_members_csv(code: str, request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    found, keep, ids = await _figure_ids(ctx, code)
    return await member_lists.export(
        ctx, ids, f"experiment-{found.plan.code}-{keep['variant']}.csv"
    )


@router.get("/experiments/{code:path}/members")
async def experiment_members(code: str, request: Request) -> Response:
    """The members behind one count of the results: a variant's members (of a stage), or
    those a yes/no metric was positive for."""
    ctx = await authenticated(request, PAGE)
    found, keep, ids = await _figure_ids(ctx, code)
    path = experiment_path(found.plan.code)
    name = name_of(ctx, found.plan)
    parts = [name, keep["variant"]]
    if "stage" in keep:
        parts.append(i18n.stage_label(keep["stage"], ctx.lang))
    if "metric" in keep:
        parts.append(
            ctx.t(f"exp.metric.{keep['metric']}.{'yes' if keep['positive'] == '1' else 'no'}")
        )
    return await member_lists.show_list(
        ctx,
        f"{path}/members",
        ctx.t("exp.members_title", what=" · ".join(parts)),
        among=ids,
        keep=keep,
        csv_path=f"{path}/members.csv",
        back=(f"{path}?{urlencode({'anchor': keep['anchor']})}", name),
    )


@dataclass(frozen=True)
class Row:
    """One variant's line in a metric's table: the control's has no comparison."""

    variant: str
    n: int
    mean: float | None
    positives: int | None  # a yes/no metric's members with yes
    comparison: Comparison | None


@dataclass(frozen=True)
class MetricTable:
    metric: str
    binary: bool
    rows: list[Row]


def tables(found: Breakdown, control: str, order: list[str]) -> list[MetricTable]:
    out = []
    for metric in METRICS:
        by_variant = {c.variant: c for c in found.comparisons if c.metric == metric}
        control_mean = next((c.control_mean for c in by_variant.values()), None)
        rows = []
        for name in order:
            n = found.counts.get(name, 0)
            c = by_variant.get(name)
            mean = control_mean if name == control else (None if c is None else c.treatment_mean)
            positives = round(mean * n) if metric in BINARY and mean is not None else None
            if metric in BINARY and n == 0:
                positives = 0
            rows.append(Row(name, n, mean, positives, None if name == control else c))
        out.append(MetricTable(metric, metric in BINARY, rows))
    return out


async def _show(
    ctx: Ctx, found: plans.Stored, error: str | None = None, status: int = 200
) -> Response:
    assert ctx.who is not None
    anchor = _anchor(ctx)
    out = await run_in_threadpool(
        results,
        ctx.svc.engine,
        ctx.who.group_id,
        found.plan.code,
        anchor,  # type: ignore[arg-type]
    )
    path = experiment_path(found.plan.code)
    order = [v.name for v in found.plan.variants]

    def members_link(variant: str, stage: str | None = None, metric: str | None = None,
                     positive: bool = True) -> str:  # fmt: skip
        query = {"variant": variant, "anchor": anchor}
        if stage is not None:
            query["stage"] = stage
        if metric is not None:
            query |= {"metric": metric, "positive": "1" if positive else "0"}
        return f"{path}/members?{urlencode(query)}"

    params = ctx.request.query_params
    return render(
        ctx,
        "experiment.html",
        status=status,
        e=found,
        plan=found.plan,
        name=name_of(ctx, found.plan),
        r=out,
        sections=[(b, tables(b, out.control, order)) for b in [out.overall, *out.stages]],
        members_link=members_link,
        exp_url=path,
        anchor=anchor,
        may_write=ctx.who.may("experiments:write"),
        error=error,
        done=params.get("done"),
        done_n=params.get("n"),
        done_held=params.get("held"),
    )


@router.get("/experiments/{code:path}")
async def experiment_page(code: str, request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    return await _show(ctx, await coded_or_404(ctx, plans.load, code))
