"""Lottery pools in the console: the pools, paged, and a pool's page (its entry rule and
period, each prize's awarded against its units, the draws by outcome, the seed's
commitment, and the audit: every draw recomputed from the seed by `lotteries.audit`).

The audit reads every draw of the pool, so it runs when asked (`?audit=1`), in the thread
pool, as the API's `/audit` does. A prize's awarded count opens its winners through the
member list; the seed itself is never shown (the API answers it once revealed).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu.console import member_lists
from siyu.console.segment_pages import coded_or_404, page_number, read
from siyu.console.web import ConsoleExit, Ctx, authenticated, render
from siyu.lotteries import audit, pools
from siyu.lotteries.models import ODDS_SCALE, OUTCOMES

router = APIRouter()

PER_PAGE = 50
PROBLEMS_SHOWN = 50


def pool_path(code: str) -> str:
    return f"/console/lotteries/{quote(code, safe='')}"


def winners_link(code: str, prize: str | None = None) -> str:
    query = urlencode({"prize": prize}) if prize else ""
    return f"{pool_path(code)}/winners" + (f"?{query}" if query else "")


@router.get("/lotteries")
async def pool_list(request: Request) -> Response:
    ctx = await authenticated(request, "lotteries")
    assert ctx.who is not None
    total: int = await read(ctx, pools.counted, ctx.who.group_id)
    pages = max(1, -(-total // PER_PAGE))
    page_no = min(page_number(request.query_params.get("page")), pages)
    found: list[pools.Pool] = await read(
        ctx, pools.listed, ctx.who.group_id, PER_PAGE, (page_no - 1) * PER_PAGE
    )
    return render(
        ctx,
        "lotteries.html",
        pools=found,
        total=total,
        page_no=page_no,
        pages=pages,
        link=lambda page: f"/console/lotteries?{urlencode({'page': page})}",
        name_of=lambda p: p.name_zh if ctx.lang == "zh" else p.name_en,
        path_of=pool_path,
    )


async def _winners(ctx: Ctx, code: str) -> tuple[pools.Pool, str | None, list[int]]:
    assert ctx.who is not None
    pool = await coded_or_404(ctx, pools.load, code)
    prize = ctx.request.query_params.get("prize") or None
    if prize is not None and prize not in {p.prize_code for p in pool.prizes}:
        raise ConsoleExit(404)
    ids: list[int] = await read(ctx, pools.winners, ctx.who.group_id, pool.code, prize)
    return pool, prize, ids


@router.get("/lotteries/{code:path}/winners.csv")
async def winners_csv(code: str, request: Request) -> Response:
    ctx = await authenticated(request, "lotteries")
    _, _, ids = await _winners(ctx, code)
    return await member_lists.export(ctx, ids, "winners.csv")


@router.get("/lotteries/{code:path}/winners")
async def winners(code: str, request: Request) -> Response:
    """The members who won the pool's prize (any prize, when none is named)."""
    ctx = await authenticated(request, "lotteries")
    pool, prize, ids = await _winners(ctx, code)
    name = pool.name_zh if ctx.lang == "zh" else pool.name_en
    prize_name = next(
        (
            (p.name_zh if ctx.lang == "zh" else p.name_en)
            for p in pool.prizes
            if p.prize_code == prize
        ),
        ctx.t("pool.any_prize"),
    )
    return await member_lists.show_list(
        ctx,
        f"{pool_path(pool.code)}/winners",
        ctx.t("pool.winners_title", pool=name, prize=prize_name),
        among=ids,
        keep={"prize": prize} if prize else {},
        csv_path=f"{pool_path(pool.code)}/winners.csv",
        back=(pool_path(pool.code), name),
    )


@router.get("/lotteries/{code:path}")
async def pool_page(code: str, request: Request) -> Response:
    ctx = await authenticated(request, "lotteries")
    assert ctx.who is not None
    pool = await coded_or_404(ctx, pools.load, code)
    counts: dict[str, int] = await read(ctx, pools.draw_counts, ctx.who.group_id, pool.code)
    checked = None
    if request.query_params.get("audit") == "1":
        checked = await run_in_threadpool(audit.verify, ctx.svc.engine, ctx.who.group_id, pool.code)
    return render(
        ctx,
        "lottery.html",
        p=pool,
        name=pool.name_zh if ctx.lang == "zh" else pool.name_en,
        prize_name=lambda x: x.name_zh if ctx.lang == "zh" else x.name_en,
        counts=counts,
        outcomes=OUTCOMES,
        odds=lambda ppm: ppm / ODDS_SCALE,
        checked=checked,
        problems=checked.problems[:PROBLEMS_SHOWN] if checked else [],
        pool_url=pool_path(pool.code),
        winners_link=lambda prize=None: winners_link(pool.code, prize),
        campaign_url=f"/console/campaigns/{quote(pool.campaign or '', safe='')}",
    )
