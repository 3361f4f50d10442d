"""Set-up shared by the experiments tests: a plan as HQ writes it (with the send its
message variant names), members put in a lifecycle stage, and orders and refunds written
as ingestion writes them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text
from tests.coupons.helpers import T0
from tests.messaging.msg_helpers import till_order

from siyu.experiments import plan as plans
from siyu.messaging import sends

START = T0
END = T0 + timedelta(days=60)


def plan_doc(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "code": "KNEE2",
        "name_zh": "第二单实验",
        "name_en": "Second order test",
        "target": {"stage": "new_1"},
        "variants": [
            {"name": "control", "weight_bp": 5000, "kind": "none"},
            {"name": "note", "weight_bp": 3000, "kind": "message", "ref": "M1"},
            {"name": "idle", "weight_bp": 2000, "kind": "none"},
        ],
        "window_days": 30,
        "pre_period_days": 60,
        "starts_at": START.isoformat(),
        "ends_at": END.isoformat(),
    }
    return {**doc, **fields}


def make_plan(**fields: Any) -> plans.Plan:
    return plans.Plan.model_validate(plan_doc(**fields))


def save_send(
    engine: Engine,
    group_id: str,
    code: str = "M1",
    experiment: str = "KNEE2",
    variant: str = "note",
    **fields: Any,
) -> sends.Stored:
    """A draft marketing send to an experiment's variant, as a message variant names it
    (saving the same document again changes nothing)."""
    doc: dict[str, Any] = {
        "code": code,
        "channel": "wechat_subscribe",
        "content": {"template": "TPL-1", "params": {"thing1": "第二单有礼"}},
        "target": {"experiment": experiment, "variant": variant},
        "scheduled_at": START.isoformat(),
        **fields,
    }
    return sends.save(engine, group_id, sends.Send.model_validate(doc))


def save_plan(engine: Engine, group_id: str, **fields: Any) -> plans.Stored:
    """The plan saved as a draft, with the send its `note` variant names."""
    save_send(engine, group_id, experiment=fields.get("code", "KNEE2"))
    return plans.save(engine, group_id, make_plan(**fields), None)


def put_in_stage(engine: Engine, group_id: str, ids: list[int], stage: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO member_stages (group_id, member_id, stage, orders, computed_at)
                    VALUES (:g, :m, :s, 1, :at)"""),
            [{"g": group_id, "m": m, "s": stage, "at": T0.replace(tzinfo=None)} for m in ids],
        )


def add_order(
    engine: Engine,
    group_id: str,
    order_id: str,
    member_id: int,
    paid: int,
    at: datetime,
    status: str = "paid",
    channel: str = "pos",
) -> None:
    """An order of store S1 (`msg_helpers.till_order`)."""
    till_order(engine, group_id, order_id, member_id, paid, at, status, channel, "S1")


def add_refund(engine: Engine, group_id: str, order_id: str, amount: int, at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO refunds (group_id, refund_id, order_id, refunded_at, amount_fen)
                    VALUES (:g, :r, :o, :at, :a)"""),
            {
                "g": group_id,
                "r": f"R-{order_id}",
                "o": order_id,
                "at": at.replace(tzinfo=None),
                "a": amount,
            },
        )
