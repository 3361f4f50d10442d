"""Launching a campaign: assign its target's members to the treatment or the holdout, then
give the treatment its incentives.

Every step is safe to run again: the arm of a member already assigned is kept (the
campaign's `campaign_members` row), coupons are issued with the campaign's own key
(`campaign:<code>:<template>`, once per member), and points bonuses are ledger postings
keyed by campaign and member. A launch stopped half way is finished by launching again,
and members who entered the target since are assigned and given theirs. Members in the
group's global holdout (`global_holdout.py`) are skipped: no arm, nothing given.

The budget bounds what the campaign can cost: the coupons granted × their cost, as if
every one were redeemed. Members are granted in their assignment's bucket order (random,
but the same on every run) while the budget lasts (`grant`: a counter row, so a launch and
the scans that enrol members later never pass it together); the rest of the treatment is
assigned but given nothing, and the report says how many. What a granted member is given
(`give`) is keyed, so a launch stopped between the two is finished by the next.

A lottery needs nothing given: being granted is the entry to the campaign's pool
(lotteries.draw), so the granted members may draw from the moment they are granted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, DateTime, Engine, bindparam, text

from siyu.campaigns import global_holdout
from siyu.campaigns.assignment import bucket, in_holdout
from siyu.campaigns.errors import CampaignState
from siyu.campaigns.models import campaign_members
from siyu.campaigns.plan import Plan, Target, check_lottery, load
from siyu.coupons import catalog, limits
from siyu.coupons.issue import issue
from siyu.errors import NotFoundError
from siyu.ledger.batch import post_many
from siyu.ledger.points import earn_item
from siyu.ledger.posting import Request
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now

CHUNK = 2000
Progress = Callable[[str, int, int], None]  # (step, done, of)


@dataclass
class Launched:
    code: str
    target: int = 0
    treatment: int = 0
    holdout: int = 0
    global_holdout: int = 0  # target members skipped: held out of every campaign
    over_budget: int = 0  # treated members given nothing: the budget was spent
    coupons: dict[str, dict[str, int]] = field(default_factory=dict)  # template -> counts
    points_posted: int = 0


def target_members(conn: Connection, group_id: str, target: Target) -> list[int]:
    """The members of a campaign's (or an experiment's) segment or stage, now."""
    if target.segment is not None:
        found = conn.execute(
            text("""SELECT segment_id FROM segments WHERE group_id = :g AND slug = :s
                    AND archived_at IS NULL"""),
            {"g": group_id, "s": target.segment},
        ).scalar()
        if found is None:
            raise NotFoundError(f"target.segment: no segment {target.segment!r}")
        rows = conn.execute(
            text("""SELECT member_id FROM segment_members WHERE group_id = :g
                    AND segment_id = :s ORDER BY member_id"""),
            {"g": group_id, "s": found},
        )
    else:
        rows = conn.execute(
            text("""SELECT member_id FROM member_stages WHERE group_id = :g AND stage = :s
                    ORDER BY member_id"""),
            {"g": group_id, "s": target.stage},
        )
    return [int(m) for m in rows.scalars()]


def launch(
    engine: Engine,
    group_id: str,
    code: str,
    *,
    key_id: int | None = None,
    at: datetime | None = None,
    progress: Progress | None = None,
) -> Launched:
    now = as_stored(at) if at is not None else stored_now()
    with engine.begin() as conn:
        stored = load(conn, group_id, code)
        if stored.status == "ended":
            raise CampaignState(f"code: campaign {code} has ended")
        plan = stored.plan
        for template in plan.coupons:
            catalog.current(conn, group_id, template)  # NotFoundError names a missing one
        check_lottery(conn, group_id, plan)  # the pool exists and is this campaign's
        conn.execute(
            text("""UPDATE campaigns SET status = 'launched', launched_at = :now,
                      updated_at = :now WHERE campaign_id = :i AND status = 'draft'"""),
            {"now": now, "i": stored.campaign_id},
        )
        members = target_members(conn, group_id, plan.target)
        members, held = global_holdout.split(global_holdout.current(conn, group_id), members)
    report = Launched(code, target=len(members) + len(held), global_holdout=len(held))
    arms = _assign(engine, group_id, stored.campaign_id, plan, members, now, progress)
    treated = sorted(arms["treatment"], key=lambda m: bucket(plan.code, m))
    report.treatment, report.holdout = len(treated), len(arms["holdout"])
    given = grant(engine, group_id, stored.campaign_id, plan, treated)
    report.over_budget = len(treated) - len(given)
    report.coupons, report.points_posted = give(
        engine, group_id, plan, given, key_id=key_id, at=now, progress=progress
    )
    return report


def _step(progress: Progress | None, step: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, of: progress(step, done, of)


def _assign(
    engine: Engine,
    group_id: str,
    campaign_id: int,
    plan: Plan,
    members: list[int],
    now: datetime,
    progress: Progress | None,
) -> dict[str, list[int]]:
    """Each member's arm: the one already recorded, else the assignment's."""
    for start in range(0, len(members), CHUNK):
        chunk = members[start : start + CHUNK]
        with engine.begin() as conn:
            conn.execute(
                dialect_of(conn).insert_ignore(campaign_members),
                [
                    {
                        "group_id": group_id,
                        "campaign_id": campaign_id,
                        "member_id": m,
                        "arm": "holdout"
                        if in_holdout(plan.code, m, plan.holdout_bp)
                        else "treatment",
                        "assigned_at": now,
                    }
                    for m in chunk
                ],
            )
        if progress is not None:
            progress("assign", min(start + CHUNK, len(members)), len(members))
    arms: dict[str, list[int]] = {"treatment": [], "holdout": []}
    with engine.connect() as conn:
        for member_id, arm in conn.execute(
            text("""SELECT member_id, arm FROM campaign_members WHERE group_id = :g
                    AND campaign_id = :c ORDER BY member_id"""),
            {"g": group_id, "c": campaign_id},
        ):
            arms[str(arm)].append(int(member_id))
    return arms


def grant(
    engine: Engine, group_id: str, campaign_id: int, plan: Plan, candidates: list[int]
) -> list[int]:
    """Grant incentives to the treated `candidates` not granted yet, in order, while the
    budget lasts; returns every candidate granted (now or before). The budget is a count
    of members (budget ÷ the coupons' cost for one member) held in a counter row raised in
    the same transaction as the members are marked, so launches and scan triggers running
    at once never grant past it."""
    if not candidates:
        return []
    now = stored_now()
    with engine.begin() as conn:
        cap = None
        if plan.budget_fen is not None and plan.coupons:
            per_member = sum(
                catalog.current(conn, group_id, t).template.cost_fen for t in plan.coupons
            )
            cap = None if per_member == 0 else plan.budget_fen // per_member
        done = _granted(conn, group_id, campaign_id, candidates)
        fresh = [m for m in candidates if m not in done]
        left = limits.take_up_to(conn, group_id, f"campaign:{plan.code}:granted", len(fresh), cap)
        chosen = fresh[:left]
        if chosen:
            conn.execute(
                text("""UPDATE campaign_members SET granted_at = :now WHERE group_id = :g
                        AND campaign_id = :c AND member_id IN :ms AND arm = 'treatment'
                        AND granted_at IS NULL""").bindparams(
                    bindparam("ms", expanding=True), bindparam("now", type_=DateTime())
                ),
                {"now": now, "g": group_id, "c": campaign_id, "ms": chosen},
            )
    granted = done | set(chosen)
    return [m for m in candidates if m in granted]


def _granted(conn: Connection, group_id: str, campaign_id: int, members: list[int]) -> set[int]:
    found: set[int] = set()
    for start in range(0, len(members), CHUNK):
        rows = conn.execute(
            text("""SELECT member_id FROM campaign_members WHERE group_id = :g
                    AND campaign_id = :c AND member_id IN :ms
                    AND granted_at IS NOT NULL""").bindparams(bindparam("ms", expanding=True)),
            {"g": group_id, "c": campaign_id, "ms": members[start : start + CHUNK]},
        )
        found.update(int(m) for m in rows.scalars())
    return found


def give(
    engine: Engine,
    group_id: str,
    plan: Plan,
    members: list[int],
    *,
    key_id: int | None = None,
    at: datetime | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, dict[str, int]], int]:
    """The granted members' coupons and points bonus, each once (keys of the campaign's
    own); returns (counts per template, points postings made)."""
    coupons: dict[str, dict[str, int]] = {}
    for template in plan.coupons:
        issued = issue(
            engine,
            group_id,
            template,
            members,
            f"campaign:{plan.code}:{template}",
            campaign=plan.code,
            key_id=key_id,
            at=at,
            progress=_step(progress, template),
        )
        coupons[template] = issued.counts
    points = _points(engine, group_id, plan, members, key_id, progress) if plan.points_bonus else 0
    return coupons, points


def _points(
    engine: Engine,
    group_id: str,
    plan: Plan,
    members: list[int],
    key_id: int | None,
    progress: Progress | None,
) -> int:
    posted = 0
    for start in range(0, len(members), 500):
        chunk = members[start : start + 500]
        items = [
            earn_item(
                Request(
                    group_id,
                    m,
                    "earn",
                    f"campaign:{plan.code}:points:{m}",
                    {"campaign": plan.code, "points": plan.points_bonus},
                    reference=f"campaign:{plan.code}",
                    reason=f"campaign {plan.code}",
                    key_id=key_id,
                ),
                plan.points_bonus,
                None,
            )
            for m in chunk
        ]
        outcomes = post_many(engine, items)
        posted += sum(1 for o in outcomes if not isinstance(o, Exception))
        if progress is not None:
            progress("points", min(start + 500, len(members)), len(members))
    return posted
