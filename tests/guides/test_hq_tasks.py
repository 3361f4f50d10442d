"""HQ-authored tasks on SQLite and PostgreSQL (the small brand of tests/guides/conftest.py):
a document is validated whole; assigning makes one task per target member for the member's
guide, idempotently, counts members without a guide, holds out a hash-drawn control; each
funnel step picks the members its rule names; tasks move through the usual states."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from tests.brandfiles import write
from tests.guides.conftest import AS_OF, Brand

from siyu.auth.principal import Principal, Role
from siyu.config import DEFAULT_STRONG_TYPES
from siyu.errors import ValidationError
from siyu.guides.campaigns import (
    assign_tasks,
    author_task,
    held_out,
    parse_task,
)
from siyu.guides.errors import TaskCampaignExists
from siyu.guides.service import change_state
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory


def doc(code: str = "winback-dec", target: dict[str, str] | None = None, **more: Any) -> Any:
    return parse_task(
        {
            "code": code,
            "title_zh": "挽回沉睡会员",
            "title_en": "Win back",
            "target": target or {"kind": "stage", "value": "at_risk"},
            "due_on": "2025-01-10",
            "script": "您好，新品到店，欢迎回来看看",
            "holdout_pct": 0,
            **more,
        }
    )


def arms(brand: Brand, code: str) -> dict[str, tuple[str, str | None]]:
    names = {v: k for k, v in brand.members.items()}
    with brand.store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT member_id, arm, guide_id FROM guide_task_targets WHERE code = :c "
                "AND group_id = :g"
            ),
            {"c": code, "g": brand.store.group_id},
        ).all()
    return {names[r[0]]: (r[1], r[2]) for r in rows}


def test_document_is_validated_naming_the_field() -> None:
    with pytest.raises(ValidationError) as bad_step:
        doc(target={"kind": "funnel", "value": "carted_forever"})
    assert bad_step.value.field == "target" and "funnel step" in bad_step.value.rule
    with pytest.raises(ValidationError) as no_script:
        doc(script="")
    assert no_script.value.field == "script"
    with pytest.raises(ValidationError) as big_holdout:
        doc(holdout_pct=80)
    assert big_holdout.value.field == "holdout_pct"


def test_assign_by_stage_is_idempotent_and_counts_members_without_a_guide(brand: Brand) -> None:
    engine, g = brand.store.engine, brand.store.group_id
    assert author_task(engine, g, doc()) is True
    assert author_task(engine, g, doc()) is False  # the same document again: nothing
    with pytest.raises(TaskCampaignExists):
        author_task(engine, g, doc(script="另一个话术"))
    first = assign_tasks(engine, g, "winback-dec", AS_OF)
    assert (first.targeted, first.tasked, first.control, first.no_guide) == (3, 2, 0, 1)
    assert arms(brand, "winback-dec") == {
        "R1": ("task", "G1"),
        "R2": ("task", "G1"),
        "Q1": ("no_guide", None),
    }
    again = assign_tasks(engine, g, "winback-dec", AS_OF)
    assert (again.tasked, again.no_guide, again.already) == (0, 0, 3)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT task_id, kind, campaign_code, script, due_on, state FROM guide_tasks "
                "WHERE group_id = :g ORDER BY task_id"
            ),
            {"g": g},
        ).all()
    assert len(rows) == 2
    assert {(r.kind, r.campaign_code, r.state) for r in rows} == {("hq", "winback-dec", "open")}
    assert rows[0].script == "您好，新品到店，欢迎回来看看"
    # the usual state machine moves an HQ task
    guide = Principal(key_id=7, group_id=g, role=Role.GUIDE, guide_id="G1")
    moved = change_state(engine, guide, int(rows[0].task_id), "contacted", "已发微信")
    assert (moved.previous, moved.state) == ("open", "contacted")


def test_held_out_draw_is_stable_and_near_its_share() -> None:
    draws = [held_out("c1", m, 10) for m in range(20_000)]
    assert draws == [held_out("c1", m, 10) for m in range(20_000)]
    assert 0.09 < sum(draws) / len(draws) < 0.11  # binomial sd 0.002: 5 sd each side
    other = [held_out("c2", m, 10) for m in range(20_000)]
    assert draws != other  # each code draws afresh


def test_lapsed_vip_is_lapsed_at_or_above_the_90th_percentile_of_paid(brand: Brand) -> None:
    engine, g = brand.store.engine, brand.store.group_id
    author_task(engine, g, doc("vip-1", {"kind": "funnel", "value": "lapsed_vip"}))
    # paid totals 30,000 16,000 10,000 x3 8,000 3,000: the 90th percentile is 21,600
    assert assign_tasks(engine, g, "vip-1", AS_OF).targeted == 0
    brand.order("L1", "L1-big", "2024-04-02", 20_000, "G2")  # L1 now 36,000 >= 32,400
    author_task(engine, g, doc("vip-2", {"kind": "funnel", "value": "lapsed_vip"}))
    assert arms(brand, "vip-2") == {}
    assign_tasks(engine, g, "vip-2", AS_OF)
    assert arms(brand, "vip-2") == {"L1": ("task", "G2")}


def test_birthday_this_week_reads_month_and_day_in_the_next_seven_days(brand: Brand) -> None:
    engine, g = brand.store.engine, brand.store.group_id
    births = {"N3": date(1990, 1, 6), "R1": date(1985, 1, 7), "F1": date(1992, 12, 31)}
    with engine.begin() as conn:
        for ref, born in births.items():
            conn.execute(
                text("UPDATE members SET birth_date = :b WHERE group_id = :g AND member_id = :m"),
                {"b": born, "g": g, "m": brand.members[ref]},
            )
    author_task(engine, g, doc("bday", {"kind": "funnel", "value": "birthday_this_week"}))
    # from 2024-12-31: 31 Dec to 6 Jan; R1's 7 Jan is the eighth day
    assign_tasks(engine, g, "bday", AS_OF)
    assert set(arms(brand, "bday")) == {"N3", "F1"}


def test_carted_not_paid_24h(brand: Brand, tmp_path: Path) -> None:
    engine, g = brand.store.engine, brand.store.group_id

    def cart(event_id: str, member: str, at: str) -> dict[str, str | None]:
        return {
            "event_id": event_id,
            "type": "add_to_cart",
            "channel": "pos",
            "identity_type": "card",
            "identity_value": f"C-{member}",
            "identity_scope": "B1",
            "occurred_at": at,
            "sku": "SKU1",
        }

    write(
        tmp_path / "carts" / "events.csv",
        [
            cart("E1", "F1", "2024-12-29T09:00:00"),  # 2 days before, not ordered since
            cart("E2", "Y1", "2024-12-09T09:00:00"),  # ordered on the 10th: paid
            cart("E3", "N3", "2024-12-31T08:00:00"),  # 2 h ago: not yet 24 h
            cart("E4", "R1", "2024-12-01T09:00:00"),  # a month ago: stale
        ],
    )
    import_directory(engine, brand.vault, g, tmp_path / "carts", tmp_path / "rej")
    resolve_all(engine, g, DEFAULT_STRONG_TYPES)
    author_task(engine, g, doc("cart", {"kind": "funnel", "value": "carted_not_paid_24h"}))
    assign_tasks(engine, g, "cart", AS_OF)
    assert set(arms(brand, "cart")) == {"F1"}


def test_cli_author_assign_report(brand: Brand, tmp_path: Path) -> None:
    from tests.guides.test_tasks_job import siyu

    document = {
        "code": "cli-1",
        "title_zh": "挽回",
        "title_en": "Win back",
        "target": {"kind": "stage", "value": "at_risk"},
        "due_on": "2025-01-10",
        "script": "您好",
        "holdout_pct": 0,
    }
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**document, "due_on": "soon"}), encoding="utf-8")
    refused = siyu(brand, "guides", "tasks", "author", str(bad))
    assert refused.returncode == 2 and "due_on" in refused.stderr + refused.stdout
    assert brand.store.count("guide_task_campaigns") == 0
    good = tmp_path / "good.json"
    good.write_text(json.dumps(document), encoding="utf-8")
    assert siyu(brand, "guides", "tasks", "author", str(good)).returncode == 0
    assigned = siyu(
        brand, "guides", "tasks", "assign", "cli-1", "--at", "2024-12-31T10:00:00", "--json"
    )
    assert json.loads(assigned.stdout) == {
        "code": "cli-1",
        "targeted": 3,
        "tasked": 2,
        "control": 0,
        "no_guide": 1,
        "already": 0,
    }
    report = json.loads(siyu(brand, "guides", "tasks", "report", "cli-1", "--json").stdout)
    assert report["completion"]["assigned"] == 2 and report["no_guide"] == 1
    assert report["revenue_per_member_lift_fen"] is None  # no control: held out 0%


def test_a_live_binding_decides_the_members_guide(brand: Brand) -> None:
    engine, g = brand.store.engine, brand.store.group_id
    with engine.begin() as conn:  # R1, served by G1, is bound to G2 (and Q1 to G1)
        for ref, guide in (("R1", "G2"), ("Q1", "G1")):
            conn.execute(
                text(
                    "INSERT INTO guide_bindings (group_id, member_id, guide_id, rule, bound_at) "
                    "VALUES (:g, :m, :gd, 'hq', :t)"
                ),
                {"g": g, "m": brand.members[ref], "gd": guide, "t": AS_OF},
            )
    author_task(engine, g, doc("bound"))
    assign_tasks(engine, g, "bound", AS_OF)
    assert arms(brand, "bound") == {
        "R1": ("task", "G2"),
        "R2": ("task", "G1"),
        "Q1": ("task", "G1"),
    }
