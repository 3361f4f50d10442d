"""Starting an experiment: every member of its target gets a variant, by the hash of the
member and the experiment's salt; and exposure logged, the first time a caller says a
member was shown it (a treatment's delivery counts as exposure too: `exposure.py`).

Starting is safe to run again, like a campaign's launch: a member's row is written once
(insert-or-ignore on (experiment, member)), so a start stopped half way is finished by the
next, and members who entered the target since are assigned. Members absorbed by a OneID
merge are not assigned (their survivor is), nor are members of the group's global holdout
(`campaigns/global_holdout.py`): they get no variant at all, so the arms keep their
planned weights. The variant is the slice of 0..9,999 holding the member's bucket, slices
in the plan's order (`Plan.variant_of`), and the member's lifecycle stage at that moment
is kept with it.

What each variant names is checked before anything is written (`treatments.check`: a
send targeting another variant, a missing campaign, a guide task assigned to its own
target refuse the start and leave no assignment), and after the assignment each variant's
treatment is delivered to its live members by the capability that owns it (`deliver.py`:
coupons issued, the send planned, the campaign's incentive granted, the guide task given
to the members' guides), each once; `Started` reports what was
delivered per variant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, DateTime, Engine, bindparam, text

from siyu.campaigns import global_holdout
from siyu.campaigns.assignment import bucket
from siyu.campaigns.launch import target_members
from siyu.experiments import treatments
from siyu.experiments.deliver import (
    CampaignDelivery,
    GuideTaskDelivery,
    MessageDelivery,
    deliver,
)
from siyu.experiments.errors import ExperimentState
from siyu.experiments.models import experiment_members
from siyu.experiments.plan import Plan, load
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now

CHUNK = 2000
Progress = Callable[[str, int, int], None]  # (step, done, of)


@dataclass
class Started:
    code: str
    target: int = 0
    global_holdout: int = 0  # target members held out of every treatment: not assigned
    assigned: int = 0  # rows written by this run (0 when run again)
    variants: dict[str, int] = field(default_factory=dict)  # live members per variant
    # what was delivered, per variant of each kind (`deliver.py`)
    coupons: dict[str, dict[str, int]] = field(default_factory=dict)  # variant -> counts
    messages: dict[str, MessageDelivery] = field(default_factory=dict)
    campaigns: dict[str, CampaignDelivery] = field(default_factory=dict)
    guide_tasks: dict[str, GuideTaskDelivery] = field(default_factory=dict)


def variant_of(plan: Plan, salt: str, member_id: int) -> tuple[str, int]:
    """(variant, bucket) of a member: a pure function of the salt and the member."""
    b = bucket(salt, member_id)
    return plan.variant_of(b), b


def start(
    engine: Engine,
    group_id: str,
    code: str,
    *,
    key_id: int | None = None,
    at: datetime | None = None,
    progress: Progress | None = None,
) -> Started:
    """Start the experiment (or finish a start, or assign newcomers to its target)."""
    now = as_stored(at) if at is not None else stored_now()
    with engine.begin() as conn:
        stored = load(conn, group_id, code)
        if stored.status == "stopped":
            raise ExperimentState(f"code: experiment {code} has stopped")
        plan = stored.plan
        # before anything is written: a refusal leaves no assignment behind
        treatments.check(conn, group_id, code, plan.variants, stored.status != "draft")
        conn.execute(
            text("""UPDATE experiments SET status = 'running', started_at = :now,
                      updated_at = :now WHERE experiment_id = :i AND status = 'draft'"""),
            {"now": now, "i": stored.experiment_id},
        )
        merged = set(
            conn.execute(
                text("SELECT member_id FROM members WHERE group_id = :g AND status = 'merged'"),
                {"g": group_id},
            ).scalars()
        )
        found = [m for m in target_members(conn, group_id, plan.target) if m not in merged]
        holdout = global_holdout.current(conn, group_id)
        before = _count(conn, group_id, stored.experiment_id)
    members, held = global_holdout.split(holdout, found)
    out = Started(code, target=len(found), global_holdout=len(held))
    for i in range(0, len(members), CHUNK):
        chunk = members[i : i + CHUNK]
        with engine.begin() as conn:
            stages = _stages(conn, group_id, chunk)
            rows = []
            for m in chunk:
                variant, b = variant_of(plan, stored.salt, m)
                rows.append(
                    {
                        "group_id": group_id,
                        "experiment_id": stored.experiment_id,
                        "member_id": m,
                        "variant": variant,
                        "bucket": b,
                        "stage": stages.get(m),
                        "assigned_at": now,
                    }
                )
            conn.execute(dialect_of(conn).insert_ignore(experiment_members), rows)
        if progress is not None:
            progress("assign", min(i + CHUNK, len(members)), len(members))
    with engine.connect() as conn:
        arms = _arms(conn, group_id, stored.experiment_id)
        out.assigned = _count(conn, group_id, stored.experiment_id) - before
    out.variants = {v.name: len(arms.get(v.name, [])) for v in plan.variants}
    done = deliver(engine, group_id, stored, arms, key_id=key_id, at=now, progress=progress)
    out.coupons, out.messages, out.campaigns = done.coupons, done.messages, done.campaigns
    out.guide_tasks = done.guide_tasks
    return out


def _count(conn: Connection, group_id: str, experiment_id: int) -> int:
    return int(
        conn.execute(
            text(
                "SELECT COUNT(*) FROM experiment_members WHERE group_id = :g AND experiment_id = :e"
            ),
            {"g": group_id, "e": experiment_id},
        ).scalar_one()
    )


def _stages(conn: Connection, group_id: str, members: list[int]) -> dict[int, str]:
    rows = conn.execute(
        text("""SELECT member_id, stage FROM member_stages WHERE group_id = :g
                AND member_id IN :ms""").bindparams(bindparam("ms", expanding=True)),
        {"g": group_id, "ms": members},
    )
    return {int(m): str(s) for m, s in rows}


def _arms(conn: Connection, group_id: str, experiment_id: int) -> dict[str, list[int]]:
    """The live members of each variant (absorbed members' rows left out)."""
    arms: dict[str, list[int]] = {}
    for member_id, variant in conn.execute(
        text("""SELECT member_id, variant FROM experiment_members WHERE group_id = :g
                AND experiment_id = :e AND merged_into IS NULL ORDER BY member_id"""),
        {"g": group_id, "e": experiment_id},
    ):
        arms.setdefault(str(variant), []).append(int(member_id))
    return arms


def expose(
    engine: Engine, group_id: str, code: str, member_ids: Iterable[int], at: datetime
) -> int:
    """Log that these members were shown their variant at `at`: the first exposure is kept
    (later ones change nothing). An absorbed member's id exposes its survivor. Returns how
    many members were exposed for the first time by a log. The exposure the results read
    is the earlier of this log and the treatment's own delivery (`exposure.py`): a member a
    delivery exposed earlier keeps that time."""
    when = as_stored(at)
    ids = sorted({int(m) for m in member_ids})
    exposed = 0
    with engine.begin() as conn:
        stored = load(conn, group_id, code)
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i : i + CHUNK]
            survivors = conn.execute(
                text("""SELECT merged_into FROM experiment_members WHERE group_id = :g
                        AND experiment_id = :e AND member_id IN :ms
                        AND merged_into IS NOT NULL""").bindparams(bindparam("ms", expanding=True)),
                {"g": group_id, "e": stored.experiment_id, "ms": chunk},
            ).scalars()
            targets = sorted(set(chunk) | {int(s) for s in survivors})
            exposed += conn.execute(
                text("""UPDATE experiment_members SET exposed_at = :at WHERE group_id = :g
                        AND experiment_id = :e AND member_id IN :ms
                        AND merged_into IS NULL AND exposed_at IS NULL""").bindparams(
                    bindparam("ms", expanding=True), bindparam("at", type_=DateTime())
                ),
                {"g": group_id, "e": stored.experiment_id, "ms": targets, "at": when},
            ).rowcount
    return exposed
