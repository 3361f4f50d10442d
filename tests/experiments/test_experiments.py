"""Experiments on SQLite and PostgreSQL: a plan validated field by field, variants by the
hash (uniform by the chi-square test, stable when started again), exposure logged once,
the global holdout kept out of every treatment, one assignment per person across OneID
merges and back on unmerge, and the sample-ratio check firing on a broken split."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from scipy import stats as sps
from sqlalchemy import text
from tests.conftest import Store
from tests.coupons.helpers import T0, new_member, save_template
from tests.experiments.helpers import END, make_plan, plan_doc, put_in_stage, save_plan

from siyu.campaigns import global_holdout
from siyu.campaigns import plan as campaign_plans
from siyu.campaigns.launch import launch
from siyu.errors import NotFoundError, ValidationError, parse_document
from siyu.experiments import plan as plans
from siyu.experiments.assign import expose, start, variant_of
from siyu.experiments.errors import ExperimentState
from siyu.experiments.results import results
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.merge import merge_many
from siyu.identity.service import follow, merge_members, unmerge


def _refused(**fields: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        parse_document(plans.Plan, plan_doc(**fields), "experiment")
    return caught.value


def test_a_plan_refuses_what_makes_no_sense_naming_the_field() -> None:
    assert _refused(window_days=0).field == "window_days"
    assert _refused(pre_period_days=400).field == "pre_period_days"
    assert _refused(extra=1).field == "extra"
    assert _refused(target={"stage": "sleepy"}).field == "target"
    bad_kind = [{"name": "a", "weight_bp": 10000, "kind": "lottery"}]
    assert _refused(variants=bad_kind).field.startswith("variants")
    two = [
        {"name": "control", "weight_bp": 5000, "kind": "none"},
        {"name": "coupon", "weight_bp": 4000, "kind": "coupon"},
    ]
    assert "ref" in _refused(variants=two).rule
    two[1]["ref"] = "SPRING20"
    assert "sum to 10000" in _refused(variants=two).rule
    no_control = [
        {"name": "a", "weight_bp": 5000, "kind": "message", "ref": "M1"},
        {"name": "b", "weight_bp": 5000, "kind": "message", "ref": "M2"},
    ]
    assert "none" in _refused(variants=no_control).rule
    twice = [
        {"name": "a", "weight_bp": 5000, "kind": "none"},
        {"name": "a", "weight_bp": 5000, "kind": "none"},
    ]
    assert "unique" in _refused(variants=twice).rule
    assert "ends_at" in _refused(ends_at=T0.isoformat()).rule
    assert "at most 53" in _refused(code="X" * 60).rule
    named = [{"name": "a", "weight_bp": 5000, "kind": "none", "ref": "X"}, two[1]]
    assert "names nothing" in _refused(variants=named).rule


def test_variants_are_slices_of_the_buckets_in_the_plans_order() -> None:
    plan = make_plan()
    assert [plan.variant_of(b) for b in (0, 4999, 5000, 7999, 8000, 9999)] == [
        "control",
        "control",
        "note",
        "note",
        "idle",
        "idle",
    ]
    with pytest.raises(ValueError, match="bucket"):
        plan.variant_of(10_000)


def test_assignment_is_uniform_by_the_chi_square_test() -> None:
    plan = make_plan()
    ids = range(1, 20_001)
    picked = [variant_of(plan, "a1b2c3", m) for m in ids]
    counts = [sum(v == name for v, _ in picked) for name in ("control", "note", "idle")]
    assert sps.chisquare(counts, f_exp=[10_000, 6_000, 4_000]).pvalue > 0.001
    # the buckets themselves, in 20 bins of 500
    bins = np.bincount([b // 500 for _, b in picked], minlength=20)
    assert sps.chisquare(bins).pvalue > 0.001
    # independent of another salt (another experiment)
    other = [variant_of(plan, "ffff", m)[0] for m in ids]
    both = sum(a == "control" and b == "control" for (a, _), b in zip(picked, other, strict=True))
    assert 0.23 < both / 20_000 < 0.27


def test_start_is_idempotent_and_follows_the_hash(store: Store) -> None:
    g = store.group_id
    ids = list(range(1001, 1401))
    put_in_stage(store.engine, g, ids, "new_1")
    stored = save_plan(store.engine, g)
    assert stored.status == "draft" and len(stored.salt) == 16
    # a draft's plan may change, and keeps its salt
    again = save_plan(store.engine, g, window_days=14)
    assert again.salt == stored.salt and again.plan.window_days == 14
    steps: list[tuple[str, int, int]] = []
    first = start(store.engine, g, "KNEE2", at=T0, progress=lambda *s: steps.append(s))
    assert first.target == 400 and first.assigned == 400 and sum(first.variants.values()) == 400
    assert steps[-1] == ("assign", 400, 400)
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT member_id, variant, bucket, stage FROM experiment_members
                    WHERE group_id = :g ORDER BY member_id"""),
            {"g": g},
        ).all()
    assert [(m, v, b) for m, v, b, _ in rows] == [
        (m, *variant_of(again.plan, stored.salt, m)) for m in ids
    ]
    assert {s for *_, s in rows} == {"new_1"}
    # started again: nothing written twice, the same arms
    second = start(store.engine, g, "KNEE2", at=T0 + timedelta(days=1))
    assert second.assigned == 0 and second.variants == first.variants
    with pytest.raises(ExperimentState, match="fixed"):
        save_plan(store.engine, g)
    # exposure: the first one is kept
    assert expose(store.engine, g, "KNEE2", ids[:10], T0 + timedelta(hours=1)) == 10
    assert expose(store.engine, g, "KNEE2", ids[:20], T0 + timedelta(hours=2)) == 10
    with store.engine.connect() as conn:
        first_seen = conn.execute(
            text(
                "SELECT exposed_at FROM experiment_members WHERE group_id = :g AND member_id = :m"
            ),
            {"g": g, "m": ids[0]},
        ).scalar_one()
    assert str(first_seen).startswith("2026-03-01 11:00")
    plans.stop(store.engine, g, "KNEE2", at=END)
    with pytest.raises(ExperimentState, match="stopped"):
        start(store.engine, g, "KNEE2")
    with pytest.raises(ExperimentState, match="not running"):
        plans.stop(store.engine, g, "KNEE2")
    with pytest.raises(NotFoundError):
        start(store.engine, g, "NOPE")


def test_the_sample_ratio_check_fires_when_part_of_an_arm_is_lost(store: Store) -> None:
    g = store.group_id
    put_in_stage(store.engine, g, list(range(1, 3001)), "new_1")
    save_plan(store.engine, g)
    start(store.engine, g, "KNEE2", at=T0)
    fair = results(store.engine, g, "KNEE2", at=T0 + timedelta(days=1))
    assert fair.overall.srm is not None and not fair.overall.srm.mismatch
    assert fair.overall.note is None
    # a third of the `note` arm goes missing (a broken join, a lost import)
    with store.engine.begin() as conn:
        conn.execute(
            text("""DELETE FROM experiment_members WHERE group_id = :g AND variant = 'note'
                    AND bucket < 6000"""),
            {"g": g},
        )
    skewed = results(store.engine, g, "KNEE2", at=T0 + timedelta(days=1))
    assert skewed.overall.srm is not None and skewed.overall.srm.mismatch
    assert skewed.overall.note is not None and "mismatch" in skewed.overall.note


def test_the_global_holdout_gets_no_treatment(store: Store, encoder: IdentifierEncoder) -> None:
    from siyu.campaigns.triggers import on_scan
    from siyu.scenes.registry import create

    g = store.group_id
    with pytest.raises(ValidationError, match="share_bp"):
        global_holdout.set_share(store.engine, g, 6000)
    held_out = global_holdout.set_share(store.engine, g, 3000)
    assert global_holdout.set_share(store.engine, g, 2500).salt == held_out.salt
    ids = [new_member(store.engine, encoder, g, f"u-{i}") for i in range(40)]
    put_in_stage(store.engine, g, ids, "new_1")
    with store.engine.connect() as conn:
        holdout = global_holdout.current(conn, g)
    held = [m for m in ids if holdout.holds(m)]
    assert 0 < len(held) < 40
    # an experiment assigns none of them
    save_plan(store.engine, g)
    started = start(store.engine, g, "KNEE2", at=T0)
    assert started.global_holdout == len(held) and started.assigned == 40 - len(held)
    # a campaign gives none of them anything, nor puts them in an arm
    save_template(store.engine, g)
    campaign = campaign_plans.Plan.model_validate(
        {
            "code": "SPRING",
            "name_zh": "春季",
            "name_en": "Spring",
            "target": {"stage": "new_1"},
            "starts_at": T0.isoformat(),
            "ends_at": END.isoformat(),
            "coupons": ["SPRING20"],
            "holdout_bp": 2000,
        }
    )
    campaign_plans.save(store.engine, g, campaign, None)
    launched = launch(store.engine, g, "SPRING", at=T0)
    assert launched.global_holdout == len(held) and launched.target == 40
    assert launched.treatment + launched.holdout == 40 - len(held)
    with store.engine.connect() as conn:
        armed = set(
            conn.execute(
                text("SELECT member_id FROM campaign_members WHERE group_id = :g"), {"g": g}
            ).scalars()
        )
        treated_coupons = set(
            conn.execute(
                text("SELECT member_id FROM coupons WHERE group_id = :g"), {"g": g}
            ).scalars()
        )
        assigned = set(
            conn.execute(
                text("SELECT member_id FROM experiment_members WHERE group_id = :g"), {"g": g}
            ).scalars()
        )
    assert not armed & set(held) and not treated_coupons & set(held)
    assert not assigned & set(held)
    # nor does scanning the campaign's code enrol them
    create(store.engine, g, "poster-1", "permanent", campaign="SPRING")
    scan = on_scan(store.engine, g, "poster-1", held[0], False, T0 + timedelta(days=1))
    assert scan is not None and scan.arm == "global_holdout" and not scan.granted


def _rows(store: Store) -> dict[int, tuple[str, int | None, int | None]]:
    with store.engine.connect() as conn:
        found = conn.execute(
            text("""SELECT member_id, variant, merged_into, inherited_by FROM experiment_members
                    WHERE group_id = :g"""),
            {"g": store.group_id},
        ).all()
    return {int(m): (str(v), mi, ib) for m, v, mi, ib in found}


def test_a_person_keeps_one_assignment_across_merges_and_unmerge_restores(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g = store.group_id
    # x is the oldest (the survivor of its merges) and was never in the target
    # (the later ones signed up again in a mini-program: an openid, no second unionid)
    x, p = (new_member(store.engine, encoder, g, f"u-{n}") for n in "xp")
    y, z, q = (new_member(store.engine, encoder, g, f"o-{n}", "openid") for n in "yzq")
    put_in_stage(store.engine, g, [y, p, q], "new_1")
    save_plan(store.engine, g)
    start(store.engine, g, "KNEE2", at=T0)
    put_in_stage(store.engine, g, [z], "new_1")  # z enters the target a day later
    start(store.engine, g, "KNEE2", at=T0 + timedelta(days=1))
    before = _rows(store)
    assert set(before) == {y, z, p, q}
    # p and q are one person: p (older) keeps its own variant, q's row is kept, marked
    pq_merge, survivor = merge_members(store.engine, g, p, q, "same person")
    assert survivor == p
    after = _rows(store)
    assert after[p] == before[p] and after[q] == (before[q][0], p, None)
    # x, y and z are one person, merged at once: x had no row, so it gets a copy of the
    # earliest-assigned absorbed member's (y's), and both absorbed rows are marked
    with store.engine.begin() as conn:
        merged = merge_many(conn, g, [(x, y, "same"), (x, z, "same")], "manual")
    assert {s for _, s in merged} == {x}
    follow(store.engine, g)
    after = _rows(store)
    assert after[x][0] == before[y][0] and after[x][2] is not None
    assert after[y][1] == x and after[z][1] == x
    # the results count each person once: p, x
    live = results(store.engine, g, "KNEE2", at=T0 + timedelta(days=2)).overall.counts
    assert sum(live.values()) == 2
    # following again changes nothing
    follow(store.engine, g)
    assert _rows(store) == after
    # unmerged: everyone has their own row back, and x's copy is gone
    unmerge(store.engine, g, pq_merge, "two people")
    for merge_id in _merge_ids(store, x):
        unmerge(store.engine, g, merge_id, "three people")
    assert _rows(store) == before


def _merge_ids(store: Store, survivor: int) -> list[int]:
    with store.engine.connect() as conn:
        return [
            int(m)
            for m in conn.execute(
                text("""SELECT merge_id FROM merges WHERE group_id = :g AND survivor_id = :s
                        AND undone_at IS NULL ORDER BY merge_id"""),
                {"g": store.group_id, "s": survivor},
            ).scalars()
        ]
