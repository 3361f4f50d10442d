"""The demo brand's shopping guides for the last full month of its data: every member bound
to its own guide by the rules, the month's orders attributed, the guides classed A/B/C,
and their commission accrued on the ledger, released where the freeze has ended, with a
statement per guide (issue #19).

The rules are the demo's choice, written as HQ would: 2% on every attributed order, 4% on
the till's own (a guide serving in store), 3 days' freeze; class A at 6 orders and ¥1,000
of sales in the month, B at 2 orders, C the rest (a demo brand's guides sell a few orders
a month each). The generator made no shares, so
every order is attributed by the till's guide or a protected own guide.

Run after the stages and the marketing seed: it reads the orders as they stand. Every step
is one the services promise can be run again, so a second run changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, text

from siyu.guides import commission_accrual as commission
from siyu.guides.attribution import attribute
from siyu.guides.binding import bind_all
from siyu.guides.classes import classify, parse, save_rules
from siyu.guides.commission_rules import CommissionRules
from siyu.guides.commission_rules import save as save_commission
from siyu.guides.commission_statements import statement
from siyu.store.times import stored_time

CLASS_RULES = {
    "A": {
        "min": {"sales_fen": 100_000, "orders": 6},
        "playbook": {
            "zh": "工具：分享海报、专属券与群发模板",
            "en": "Tools: posters, own coupons, templates",
        },
    },
    "B": {
        "min": {"orders": 2},
        "playbook": {"zh": "标准流程与优秀案例", "en": "SOPs and the best cases"},
    },
    "C": {
        "playbook": {
            "zh": "店长督导，每周复盘",
            "en": "Supervision by the manager, weekly",
        }
    },
}
COMMISSION_RULES = {
    "default_rate_bp": 200,
    "freeze_days": 3,
    "rules": [{"name": "in-store", "channel": "pos", "rate_bp": 400}],
}


@dataclass
class GuidesReport:
    month: str
    bound: int = 0  # members bound to their own guide
    attributed: dict[str, int] = field(default_factory=dict)  # basis -> orders
    classes: dict[str, int] = field(default_factory=dict)  # A/B/C -> guides
    flagged: int = 0
    commission_fen: int = 0
    released_fen: int = 0
    guides_paid: int = 0  # guides with a statement this month


def seed_guides(engine: Engine, group_id: str) -> GuidesReport | None:
    """Bind, attribute, class and pay commission for the data's last full month."""
    with engine.connect() as conn:
        last = conn.execute(
            text("SELECT MAX(ordered_at) FROM orders WHERE group_id = :g"), {"g": group_id}
        ).scalar()
    if last is None:
        return None
    end = stored_time(last) + timedelta(seconds=1)
    until = datetime(end.year, end.month, 1)
    since = (until - timedelta(days=1)).replace(day=1)
    out = GuidesReport(f"{since:%Y-%m}")
    bind_all(engine, group_id, at=end)
    attributed = attribute(engine, group_id, since, until, at=end)
    out.attributed = dict(attributed.by_basis)
    save_rules(engine, group_id, parse(CLASS_RULES))
    classed = classify(engine, group_id, since, until, at=end)
    out.classes, out.flagged = dict(classed.by_class), classed.flagged
    save_commission(engine, group_id, CommissionRules.model_validate(COMMISSION_RULES), None)
    # the month's class is the one just computed: the demo has no earlier month classed
    with engine.connect() as conn:
        classes: dict[str, str] = dict(
            conn.execute(
                text("SELECT guide_id, guide_class FROM guide_classes WHERE group_id = :g"),
                {"g": group_id},
            ).all()
        )
        out.bound = int(
            conn.execute(
                text("""SELECT COUNT(*) FROM guide_bindings WHERE group_id = :g
                        AND ended_at IS NULL"""),
                {"g": group_id},
            ).scalar_one()
        )
    commission.accrue(engine, group_id, since, until, guide_classes=classes)
    commission.release(engine, group_id, at=end)
    with engine.connect() as conn:
        month = statement(conn, group_id, out.month, with_lines=False)
    out.commission_fen = month.totals.commission_fen
    out.released_fen = month.totals.released_fen
    out.guides_paid = sum(1 for t in month.by_guide.values() if t.commission_fen)
    return out
