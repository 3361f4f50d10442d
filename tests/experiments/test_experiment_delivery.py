"""An experiment's treatments delivered at start, on SQLite and PostgreSQL: a message
variant's send planned once to its variant's members (held when it asks for review), a
campaign variant's members enrolled in the campaign's treatment and given its coupons and
points once, the global holdout given nothing; starting again delivers nothing twice; a
variant naming what does not exist or does not fit is refused by name before anything
is written; the campaign's report keeps its own arms apart from the members an experiment
enrolled (guide tasks: test_guide_task_treatment.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from tests.conftest import Store
from tests.coupons.helpers import T0, basket, save_template
from tests.experiments.helpers import END, make_plan, put_in_stage, save_send
from tests.messaging.msg_helpers import bulk_members, grant_all, statuses

from siyu.campaigns import global_holdout
from siyu.campaigns import plan as campaign_plans
from siyu.campaigns.assignment import in_holdout
from siyu.campaigns.launch import launch
from siyu.campaigns.report import report
from siyu.coupons.redeem import Redemption, redeem
from siyu.errors import NotFoundError, ValidationError
from siyu.experiments import plan as plans
from siyu.experiments.assign import start
from siyu.experiments.results import arm_sums
from siyu.messaging.plan import plan as plan_send
from siyu.segments.models import segment_members, segments

DAY = timedelta(days=1)


def _rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def _arms(store: Store) -> dict[int, str]:
    found = _rows(
        store.engine,
        "SELECT member_id, variant FROM experiment_members WHERE group_id = :g",
        g=store.group_id,
    )
    return {int(m): str(v) for m, v in found}


def _recipients(store: Store, code: str) -> dict[int, str]:
    """Every member the send recorded, as a row or in a skip set, with its status."""
    return {m: status for m, (status, _) in statuses(store.engine, store.group_id, code).items()}


def _status(store: Store, table: str, code: str) -> str:
    (row,) = _rows(
        store.engine,
        f"SELECT status FROM {table} WHERE group_id = :g AND code = :c",
        g=store.group_id,
        c=code,
    )
    return str(row.status)


MESSAGES = [
    {"name": "control", "weight_bp": 4000, "kind": "none"},
    {"name": "note", "weight_bp": 3000, "kind": "message", "ref": "M1"},
    {"name": "check", "weight_bp": 3000, "kind": "message", "ref": "M2"},
]


def test_a_message_variants_send_is_planned_once_to_its_members(store: Store) -> None:
    g, e = store.group_id, store.engine
    # given members with an address and consent, a fifth held out globally
    ids = bulk_members(e, g, 300)
    grant_all(e, g, ids)
    put_in_stage(e, g, ids, "new_1")
    held = global_holdout.set_share(e, g, 2000)
    # and two draft sends to the experiment's arms, the second asking for review
    save_send(e, g, "M1")
    save_send(e, g, "M2", variant="check", review=True)
    plans.save(e, g, make_plan(variants=MESSAGES), None)
    # when the experiment starts
    first = start(e, g, "KNEE2", at=T0)
    arms = _arms(store)
    # then each send reaches exactly its variant's members, and nobody held out
    note, check = first.messages["note"], first.messages["check"]
    assert (note.send, note.state, note.planned_now) == ("M1", "planned", True)
    assert (check.send, check.state, check.planned_now) == ("M2", "held", True)
    reached = _recipients(store, "M1")
    assert set(reached) == {m for m, v in arms.items() if v == "note"}
    assert set(reached.values()) == {"planned"} and note.recipients == {"planned": len(reached)}
    assert set(_recipients(store, "M2")) == {m for m, v in arms.items() if v == "check"}
    assert not set(reached) & {m for m in ids if held.holds(m)}
    assert first.global_holdout == sum(held.holds(m) for m in ids) > 0
    # when it starts again, with newcomers in the target
    later = bulk_members(e, g, 40)
    grant_all(e, g, later)
    put_in_stage(e, g, later, "new_1")
    again = start(e, g, "KNEE2", at=T0 + DAY)
    # then the sends are not planned again: a send is planned once, so newcomers get none
    assert again.assigned > 0 and not again.messages["note"].planned_now
    assert again.messages["note"].recipients == note.recipients
    assert _recipients(store, "M1") == reached
    assert _status(store, "sends", "M2") == "held"


def test_a_send_that_does_not_fit_refuses_the_start_and_nothing_is_written(
    store: Store,
) -> None:
    g, e = store.group_id, store.engine
    ids = bulk_members(e, g, 60)
    put_in_stage(e, g, ids, "new_1")
    save_template(e, g)
    variants = [
        {"name": "control", "weight_bp": 4000, "kind": "none"},
        {"name": "coupon", "weight_bp": 3000, "kind": "coupon", "ref": "SPRING20"},
        {"name": "note", "weight_bp": 3000, "kind": "message", "ref": "M1"},
    ]
    # saving: a missing send is 404, a send to another variant 422, by the variant's ref
    with pytest.raises(NotFoundError, match=r"variants\[2\]\.ref: no send 'M1'"):
        plans.save(e, g, make_plan(variants=variants), None)
    save_send(e, g, "M1", variant="control")
    with pytest.raises(ValidationError) as refused:
        plans.save(e, g, make_plan(variants=variants), None)
    assert refused.value.field == "variants[2].ref"
    assert "must target experiment KNEE2 variant note" in refused.value.rule
    assert not _rows(e, "SELECT 1 FROM experiments WHERE group_id = :g", g=g)
    # given a draft stored before the check, naming that send (as an older version saved)
    save_send(e, g, "M9")
    plans.save(e, g, make_plan(variants=[*variants[:2], {**variants[2], "ref": "M9"}]), None)
    with e.begin() as conn:
        conn.execute(
            text("UPDATE experiments SET body = :b WHERE group_id = :g"),
            {"b": make_plan(variants=variants).model_dump_json(), "g": g},
        )
    # when it starts, it is refused naming the field, with nothing half applied
    with pytest.raises(ValidationError, match=r"variants\[2\]\.ref: send M1 must target"):
        start(e, g, "KNEE2", at=T0)
    assert _status(store, "experiments", "KNEE2") == "draft"
    assert not _rows(e, "SELECT 1 FROM experiment_members WHERE group_id = :g", g=g)
    assert not _rows(e, "SELECT 1 FROM coupons WHERE group_id = :g", g=g)
    assert _status(store, "sends", "M1") == "draft"
    # a send planned by hand before the start would reach no one: refused as well
    with e.begin() as conn:
        conn.execute(
            text("UPDATE experiments SET body = :b WHERE group_id = :g"),
            {
                "b": make_plan(
                    variants=[*variants[:2], {**variants[2], "ref": "M9"}]
                ).model_dump_json(),
                "g": g,
            },
        )
    plan_send(e, g, "M9", now=T0.replace(tzinfo=None))
    with pytest.raises(ValidationError, match=r"variants\[2\]\.ref: send M9 is planned"):
        start(e, g, "KNEE2", at=T0)
    assert not _rows(e, "SELECT 1 FROM experiment_members WHERE group_id = :g", g=g)


def _segment(engine: Engine, group_id: str, slug: str, ids: list[int]) -> None:
    now = T0.replace(tzinfo=None)
    with engine.begin() as conn:
        seg = conn.execute(
            segments.insert().values(
                group_id=group_id,
                slug=slug,
                name_zh=slug,
                name_en=slug,
                owner="hq",
                refresh="manual",
                version=1,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
        conn.execute(
            segment_members.insert(),
            [
                {
                    "group_id": group_id,
                    "segment_id": seg,
                    "member_id": m,
                    "set_by": "t",
                    "set_at": now,
                }
                for m in ids
            ],
        )


CAMPAIGN = {
    "code": "CAMP",
    "name_zh": "老客回馈",
    "name_en": "Thank you",
    "target": {"segment": "vip"},
    "starts_at": T0.isoformat(),
    "ends_at": END.isoformat(),
    "coupons": ["SPRING20"],
    "points_bonus": 50,
    "holdout_bp": 2000,
}
CAMPAIGNS = [
    {"name": "control", "weight_bp": 5000, "kind": "none"},
    {"name": "camp", "weight_bp": 5000, "kind": "campaign", "ref": "CAMP"},
]


def test_a_campaign_variant_gets_the_campaigns_incentive_once(store: Store) -> None:
    g, e = store.group_id, store.engine
    # given 200 members in the experiment's stage, a tenth held out globally, and a
    # campaign launched on its own to the first 60 of them (a fifth in its holdout)
    ids = bulk_members(e, g, 200)
    put_in_stage(e, g, ids, "new_1")
    held = global_holdout.set_share(e, g, 1000)
    save_template(e, g)
    _segment(e, g, "vip", ids[:60])
    campaign_plans.save(e, g, campaign_plans.Plan.model_validate(CAMPAIGN), None)
    own = launch(e, g, "CAMP", at=T0)
    # when an experiment gives the campaign to one arm
    plans.save(e, g, make_plan(variants=CAMPAIGNS), None)
    first = start(e, g, "KNEE2", at=T0)
    arms = _arms(store)
    camp = sorted(m for m, v in arms.items() if v == "camp")
    launched = {m for m in ids[:60] if not held.holds(m)}
    in_own_holdout = {m for m in launched if in_holdout("CAMP", m, 2000)}
    # then the arm's members not in the campaign's own holdout are treated and given
    got = first.campaigns["camp"]
    assert got.campaign == "CAMP" and got.treated + got.campaign_holdout == len(camp)
    assert got.campaign_holdout == len(in_own_holdout & set(camp)) > 0
    assert got.enrolled == len(set(camp) - launched) and got.over_budget == 0
    assert got.granted == got.treated and got.coupons["SPRING20"]["issued"] > 0
    enrolled = _rows(
        e,
        """SELECT member_id, arm FROM campaign_members WHERE group_id = :g
           AND experiment_id IS NOT NULL""",
        g=g,
    )
    assert {int(m) for m, _ in enrolled} == set(camp) - launched
    assert {a for _, a in enrolled} == {"treatment"}
    treated = (set(camp) - in_own_holdout) | (launched - in_own_holdout)
    coupons = _rows(
        e, "SELECT member_id FROM coupons WHERE group_id = :g AND campaign = 'CAMP'", g=g
    )
    assert sorted(int(m) for (m,) in coupons) == sorted(treated)  # one each, no more
    points = _rows(
        e,
        """SELECT idempotency_key FROM ledger_postings WHERE group_id = :g
           AND idempotency_key LIKE 'campaign:CAMP:points:%'""",
        g=g,
    )
    assert len(points) == len(treated)
    # and nobody held out globally got anything
    everyone = {
        int(m)
        for (m,) in _rows(e, "SELECT member_id FROM campaign_members WHERE group_id = :g", g=g)
    }
    assert not everyone & {m for m in ids if held.holds(m)}
    # when it starts again: nothing enrolled, issued or posted twice
    again = start(e, g, "KNEE2", at=T0 + DAY)
    assert again.campaigns["camp"].enrolled == 0
    assert again.campaigns["camp"].coupons["SPRING20"]["issued"] == 0
    assert len(_rows(e, "SELECT 1 FROM coupons WHERE group_id = :g", g=g)) == len(treated)
    assert len(_rows(e, "SELECT 1 FROM ledger_postings WHERE group_id = :g", g=g)) == len(points)
    # the campaign's report compares its own arms only, and counts the enrolled apart
    out = report(e, g, "CAMP", at=T0 + DAY)
    assert out.treatment.members + out.holdout.members == own.treatment + own.holdout
    assert out.experiment_members == got.enrolled
    assert out.coupons_issued == own.treatment
    # a redemption of the campaign's coupon by the arm counts as the experiment's
    code, who = next(
        (str(c), int(m))
        for c, m in _rows(
            e, "SELECT code, member_id FROM coupons WHERE group_id = :g AND campaign = 'CAMP'", g=g
        )
        if int(m) in set(camp)
    )
    redeem(e, g, Redemption(code, "O-1", basket(), "r1", who), T0 + DAY)
    sums = arm_sums(e, g, "KNEE2", at=T0 + 2 * DAY)
    assert sums[("camp", "new_1")].metrics["coupon_redemption"][0] == 1
    assert sums[("control", "new_1")].metrics["coupon_redemption"][0] == 0


def test_a_campaign_variant_refuses_a_missing_campaign_by_name(store: Store) -> None:
    g, e = store.group_id, store.engine
    with pytest.raises(NotFoundError, match=r"variants\[1\]\.ref: no campaign 'CAMP'"):
        plans.save(e, g, make_plan(variants=CAMPAIGNS), None)
    # the campaign's own coupon template must be there too
    doc = json.loads(json.dumps(CAMPAIGN))
    campaign_plans.save(e, g, campaign_plans.Plan.model_validate(doc), None)
    with pytest.raises(NotFoundError, match=r"variants\[1\]\.ref \(campaign CAMP\)"):
        plans.save(e, g, make_plan(variants=CAMPAIGNS), None)
