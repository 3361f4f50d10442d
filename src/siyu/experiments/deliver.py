"""Delivering an experiment's treatments at start, each by the capability that owns it, to
the live members of each variant (`assign._arms`: the global holdout and absorbed members
are never among them). Every step is keyed or conditional, so starting again delivers
nothing twice and finishes what a start stopped half way left.

- `coupon`: one coupon a member of the template `ref`, issued under the experiment's own
  key (`experiment:<code>:<variant>`), tagged `campaign = experiment:<code>`: the results
  count their redemptions.
- `message`: the send `ref` (which targets this variant: `treatments.check`) is planned
  once, draft → planned, or → held when the send asks for review (`Send.review`); the
  outbox delivers it. A later start finds it planned and leaves it: the send's members are
  the variant's members when it was planned (messaging plans a send once), so members
  assigned by a later start get no message, and the report says the send was not planned
  by that run.
- `campaign`: the variant's members are enrolled in the campaign `ref`'s treatment
  (`campaign_members`, `experiment_id` = this experiment; no campaign-side holdout: the
  experiment's control is the comparison), then granted within the campaign's budget and
  given its coupons and points bonus (`campaigns.launch.grant` / `give`, under the
  campaign's own keys, so a person gets a campaign's incentive once whichever way they
  came to it). A member already in the campaign's own holdout keeps that arm (an arm is
  decided once) and gets nothing; counted as `campaign_holdout`, so the variant is then
  read as intent to treat. The campaign's report leaves the enrolled members out of its
  arms and counts them apart (`campaigns/report.py`).
- `guide_task`: the HQ task `ref` is given to the variant's members, and only them, for
  their own or serving guide (`guides.task_members.give_task`: one task a member, none
  held out, since the experiment's control is the comparison); a member no guide serves
  gets none and is counted as `no_guide`, the variant then read as intent to treat. A
  member the code placed before keeps what it got, so a later start tasks only newcomers.
  The stage generator leaves these tasks alone (`guides.service.generate_tasks`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, bindparam, text

from siyu.campaigns import plan as campaign_plans
from siyu.campaigns.assignment import bucket
from siyu.campaigns.launch import give, grant
from siyu.campaigns.models import campaign_members
from siyu.coupons.issue import issue
from siyu.experiments.plan import Stored
from siyu.guides.task_members import give_task
from siyu.messaging import plan as message_plans
from siyu.messaging import sends
from siyu.messaging.errors import SendState
from siyu.store.dialect import dialect_of

CHUNK = 2000
Progress = Callable[[str, int, int], None]  # (step, done, of)


@dataclass
class MessageDelivery:
    send: str
    state: str  # the send's status after this start: held, planned (or cancelled since)
    planned_now: bool  # planned by this start; False: by an earlier one
    recipients: dict[str, int]  # by status, the skipped by reason (`messaging.plan.counts`)


@dataclass
class CampaignDelivery:
    campaign: str
    enrolled: int = 0  # members put in the campaign's treatment by this start
    treated: int = 0  # variant members in the campaign's treatment (now or before)
    campaign_holdout: int = 0  # already in the campaign's own holdout: given nothing
    granted: int = 0  # treated members granted within the budget (now or before)
    over_budget: int = 0  # treated members given nothing: the budget was spent
    coupons: dict[str, dict[str, int]] = field(default_factory=dict)  # template -> counts
    points_posted: int = 0


@dataclass
class GuideTaskDelivery:
    task: str
    tasked_now: int = 0  # tasks made by this start
    tasked: int = 0  # variant members holding the task (made now or before)
    no_guide: int = 0  # variant members no guide serves: given no task (now or before)


@dataclass
class Delivered:
    coupons: dict[str, dict[str, int]] = field(default_factory=dict)  # variant -> counts
    messages: dict[str, MessageDelivery] = field(default_factory=dict)
    campaigns: dict[str, CampaignDelivery] = field(default_factory=dict)
    guide_tasks: dict[str, GuideTaskDelivery] = field(default_factory=dict)


def coupon_campaign(code: str) -> str:
    """What a coupon issued by the experiment names as its campaign."""
    return f"experiment:{code}"


def deliver(
    engine: Engine,
    group_id: str,
    stored: Stored,
    arms: dict[str, list[int]],
    *,
    key_id: int | None,
    at: datetime,
    progress: Progress | None = None,
) -> Delivered:
    """Deliver every variant's treatment to its members in `arms` (variant -> members)."""
    code = stored.plan.code
    out = Delivered()
    for v in stored.plan.variants:
        members = arms.get(v.name, [])
        step = None if progress is None else _step(progress, v.name)
        if v.ref is None:
            continue
        if v.kind == "coupon":
            out.coupons[v.name] = issue(
                engine,
                group_id,
                v.ref,
                members,
                f"{coupon_campaign(code)}:{v.name}",
                campaign=coupon_campaign(code),
                key_id=key_id,
                at=at,
                progress=step,
            ).counts
        elif v.kind == "message":
            out.messages[v.name] = message(engine, group_id, v.ref, at)
        elif v.kind == "campaign":
            out.campaigns[v.name] = campaign(
                engine, group_id, stored.experiment_id, v.ref, members, key_id, at, progress
            )
        elif v.kind == "guide_task":
            given = give_task(engine, group_id, v.ref, members, at)
            out.guide_tasks[v.name] = GuideTaskDelivery(
                v.ref, given.tasked_now, given.tasked, given.no_guide
            )
    return out


def _step(progress: Progress, name: str) -> Callable[[int, int], None]:
    return lambda done, of: progress(name, done, of)


def message(engine: Engine, group_id: str, code: str, at: datetime) -> MessageDelivery:
    """Plan the draft send `code` (held if it asks for review); a planned one is left."""
    with engine.connect() as conn:
        found = sends.load(conn, group_id, code)
    planned_now = False
    if found.status == "draft":
        try:
            message_plans.plan(engine, group_id, code, now=at)
            planned_now = True
        except SendState:
            pass  # another start planned it meanwhile: planned once, by that one
    with engine.connect() as conn:
        found = sends.load(conn, group_id, code)
        counts = message_plans.counts(conn, group_id, found.send_id)
    return MessageDelivery(code, found.status, planned_now, counts)


def campaign(
    engine: Engine,
    group_id: str,
    experiment_id: int,
    code: str,
    members: list[int],
    key_id: int | None,
    at: datetime,
    progress: Progress | None = None,
) -> CampaignDelivery:
    """Enrol `members` in the campaign's treatment (an arm already recorded is kept),
    grant them within its budget and give them its incentives, each once."""
    with engine.connect() as conn:
        stored = campaign_plans.load(conn, group_id, code)
    cid = stored.campaign_id
    before = _enrolled(engine, group_id, cid, experiment_id)
    arm: dict[int, str] = {}
    for i in range(0, len(members), CHUNK):
        chunk = members[i : i + CHUNK]
        with engine.begin() as conn:
            conn.execute(
                dialect_of(conn).insert_ignore(campaign_members),
                [
                    {
                        "group_id": group_id,
                        "campaign_id": cid,
                        "member_id": m,
                        "arm": "treatment",
                        "assigned_at": at,
                        "experiment_id": experiment_id,
                    }
                    for m in chunk
                ],
            )
            arm.update(
                (int(m), str(a))
                for m, a in conn.execute(
                    text("""SELECT member_id, arm FROM campaign_members WHERE group_id = :g
                            AND campaign_id = :c AND member_id IN :ms""").bindparams(
                        bindparam("ms", expanding=True)
                    ),
                    {"g": group_id, "c": cid, "ms": chunk},
                )
            )
    # served in the campaign's own bucket order while the budget lasts, as a launch does
    treated = sorted(
        (m for m in members if arm.get(m) == "treatment"), key=lambda m: bucket(code, m)
    )
    out = CampaignDelivery(code, treated=len(treated), campaign_holdout=len(members) - len(treated))
    given = grant(engine, group_id, cid, stored.plan, treated)
    out.granted, out.over_budget = len(given), len(treated) - len(given)
    out.coupons, out.points_posted = give(
        engine, group_id, stored.plan, given, key_id=key_id, at=at, progress=progress
    )
    out.enrolled = _enrolled(engine, group_id, cid, experiment_id) - before
    return out


def _enrolled(engine: Engine, group_id: str, campaign_id: int, experiment_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("""SELECT COUNT(*) FROM campaign_members WHERE group_id = :g
                        AND campaign_id = :c AND experiment_id = :e"""),
                {"g": group_id, "c": campaign_id, "e": experiment_id},
            ).scalar_one()
        )
