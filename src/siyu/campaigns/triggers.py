"""Campaign triggers: a scan of a code printed for a campaign enrols the member who scanned.

A scene names the campaign it was printed for (`qr_scenes.campaign`). When a member scans
it while the campaign runs, the member is assigned an arm by the campaign's own hash, like
every member of its target, and a treated member is granted its incentives within the
budget and given them under the campaign's keys: a second scan gives nothing twice, and a
member of the holdout gets nothing, so the report still compares like with like. A
flagged scan (an expired or archived code) enrols no one, nor does a scan by a member of
the group's global holdout (arm `global_holdout`, nothing recorded or given).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, text

from siyu.campaigns import global_holdout
from siyu.campaigns.assignment import in_holdout
from siyu.campaigns.launch import give, grant
from siyu.campaigns.models import campaign_members
from siyu.campaigns.plan import load
from siyu.errors import NotFoundError
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored


@dataclass
class Enrolled:
    campaign: str
    arm: str
    granted: bool
    coupons: dict[str, dict[str, int]] = field(default_factory=dict)


def on_scan(
    engine: Engine,
    group_id: str,
    scene: str,
    member_id: int | None,
    flagged: bool,
    at: datetime,
    key_id: int | None = None,
) -> Enrolled | None:
    """Enrol the scanning member in the scene's campaign, if it names one that runs."""
    if member_id is None or flagged:
        return None
    when = as_stored(at)
    with engine.connect() as conn:
        code = conn.execute(
            text("SELECT campaign FROM qr_scenes WHERE group_id = :g AND scene = :s"),
            {"g": group_id, "s": scene},
        ).scalar()
        if not code:
            return None
        try:
            stored = load(conn, group_id, code)
        except NotFoundError:
            return None
    plan = stored.plan
    if stored.status != "launched" or not (
        as_stored(plan.starts_at) <= when < as_stored(plan.ends_at)
    ):
        return None
    with engine.connect() as conn:
        if global_holdout.current(conn, group_id).holds(member_id):
            return Enrolled(plan.code, "global_holdout", False)
    arm = "holdout" if in_holdout(plan.code, member_id, plan.holdout_bp) else "treatment"
    with engine.begin() as conn:
        conn.execute(
            dialect_of(conn).insert_ignore(campaign_members),
            [
                {
                    "group_id": group_id,
                    "campaign_id": stored.campaign_id,
                    "member_id": member_id,
                    "arm": arm,
                    "assigned_at": when,
                }
            ],
        )
    out = Enrolled(plan.code, arm, False)
    if arm == "treatment" and grant(engine, group_id, stored.campaign_id, plan, [member_id]):
        out.granted = True
        out.coupons, _ = give(engine, group_id, plan, [member_id], key_id=key_id, at=when)
    return out
