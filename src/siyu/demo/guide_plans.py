"""What HQ plans for the demo brand's guides (issue #19), after the month is classed and
paid (demo.guides): an HQ task on a funnel step, the programme of stages as E-Land ran it,
and training content for each class and for the task.

- The task: members one order before the lifecycle knee (`one_before_knee`), with a
  script, due a week after the data's end, 10% held out as the control; assigned as of the
  data's end, so its tasks are those of the brand's last day.
- The programme: "sales" from the month before the last full month (the last full month
  is measured on sales, as E-Land began), "sharing" from the data's last (partial) month,
  "conversion" a month later. The generator makes no shares, so the stage that has data
  to measure is the one in force; the later ones are the plan.
- Training: one item per class carrying the class's playbook, and one for the task; the
  titles in both languages, the content in the brand's (Chinese), as HQ writes it.

Every step is re-runnable: a document the store already holds as is is not written again
(a programme or a training item saved twice would be a new version or a new row), and
assigning the task again adds only members new to its target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, text

from siyu.errors import ValidationError
from siyu.guides.campaigns import assign_tasks, author_task, parse_task
from siyu.guides.errors import ProgrammeMissing
from siyu.guides.models import training_items
from siyu.guides.programme import current_programme, programme_report, save_programme
from siyu.guides.programme import parse as parse_programme
from siyu.guides.training import TrainingItem, parse_item, save_item

TASK_CODE = "knee-followup"
TRAINING_FOR_TASK = "knee-followup-script"
HOLDOUT_PCT = 10
SALES_TARGET_FEN = 30_000  # ¥300 of sales in the month
ORDERS_TARGET = 2


@dataclass
class TaskReport:
    code: str = TASK_CODE
    tasks: int = 0  # tasks assigned to guides
    held_out: int = 0  # members with a guide held out as the control
    no_guide: int = 0  # members of the target without a guide (never compared)
    guides: int = 0  # guides with a task of the code
    note: str = ""  # why no task was assigned, when none was


@dataclass
class StageReport:
    code: str
    name_zh: str
    name_en: str
    starts_on: str
    guides: int  # guides measured
    met: int  # guides meeting every target of the stage
    met_by_metric: dict[str, int] = field(default_factory=dict)


@dataclass
class PlansReport:
    task: TaskReport
    stage: StageReport | None
    stages: list[str]  # the programme's stage codes, in date order
    training: list[str]  # the training items' codes


def task_document(end: datetime) -> dict[str, Any]:
    return {
        "code": TASK_CODE,
        "title_zh": "拐点前一单的会员回访",
        "title_en": "Customers one buy short of the knee",
        "target": {"kind": "funnel", "value": "one_before_knee"},
        "due_on": (end + timedelta(days=7)).date().isoformat(),
        "script": "您好，我是您的专属导购。新品本周到店，为您留了试穿名额，这周来店里看看吗？",
        "training_code": TRAINING_FOR_TASK,
        "holdout_pct": HOLDOUT_PCT,
    }


def programme_document(since: datetime, until: datetime) -> dict[str, Any]:
    """Stages relative to the data: the last full month [since, until) is in "sales"."""
    started = (since - timedelta(days=1)).replace(day=1).date()
    after = _next_month(until.date())
    return {
        "stages": [
            {
                "code": "sales",
                "name_zh": "销售",
                "name_en": "Sales",
                "starts_on": started.isoformat(),
                "focus": [
                    {"metric": "sales_fen", "min": SALES_TARGET_FEN},
                    {"metric": "orders", "min": ORDERS_TARGET},
                    {"metric": "members_served"},
                ],
            },
            {
                "code": "sharing",
                "name_zh": "分享",
                "name_en": "Sharing",
                "starts_on": until.date().isoformat(),
                "focus": [
                    {"metric": "shares", "min": 8},
                    {"metric": "share_opens", "min": 40},
                ],
            },
            {
                "code": "conversion",
                "name_zh": "转化",
                "name_en": "Conversion",
                "starts_on": after.isoformat(),
                "focus": [
                    {"metric": "conversion_bp", "min": 500},
                    {"metric": "refund_rate_bp", "max": 1_000},
                ],
            },
        ]
    }


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def training_documents(playbooks: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """One item per class with its playbook, and the task's script guide."""
    items: list[dict[str, Any]] = [
        {
            "code": f"playbook-{cls.lower()}",
            "title_zh": f"{cls} 类导购手册",
            "title_en": f"Class {cls} playbook",
            "body": book["zh"],  # content as HQ writes it, in the brand's language
            "for_class": cls,
        }
        for cls, book in sorted(playbooks.items())
    ]
    items.append(
        {
            "code": TRAINING_FOR_TASK,
            "title_zh": "拐点前一单：回访话术",
            "title_en": "One buy short of the knee: the call script",
            "body": "先问候，再说新品到店与试穿名额；不催单，记录回访结果。",
            "for_task": TASK_CODE,
        }
    )
    return items


def seed_plans(
    engine: Engine,
    group_id: str,
    since: datetime,
    until: datetime,
    end: datetime,
    playbooks: dict[str, dict[str, str]],
) -> PlansReport:
    """Author and assign the task, set the programme, add the training; report them."""
    items = [parse_item(d) for d in training_documents(playbooks)]
    for item in items:
        _save_item_once(engine, group_id, item)
    task = seed_task(engine, group_id, end)
    programme = parse_programme(programme_document(since, until))
    with engine.connect() as conn:
        try:
            unchanged = current_programme(conn, group_id).programme == programme
        except ProgrammeMissing:
            unchanged = False
    if not unchanged:
        save_programme(engine, group_id, programme)
    with engine.connect() as conn:
        report = programme_report(conn, group_id, since, until, at=end)
    stage = StageReport(
        report.stage.code,
        report.stage.name_zh,
        report.stage.name_en,
        report.stage.starts_on.isoformat(),
        len(report.guides),
        sum(1 for g in report.guides if g.met_all),
        {t.metric: t.guides_met for t in report.totals if t.min is not None or t.max is not None},
    )
    codes = [s.code for s in programme.stages]
    return PlansReport(task, stage, codes, [i.code for i in items])


def seed_task(engine: Engine, group_id: str, end: datetime) -> TaskReport:
    """Author the task (the same document again is a no-op) and assign it as of `end`."""
    author_task(engine, group_id, parse_task(task_document(end)))
    out = TaskReport()
    try:
        assign_tasks(engine, group_id, TASK_CODE, at=end)
    except ValidationError as refused:  # no knee found in a small brand's data
        out.note = str(refused)
    with engine.connect() as conn:
        arms: dict[str, int] = dict(
            conn.execute(
                text("""SELECT arm, COUNT(*) FROM guide_task_targets
                        WHERE group_id = :g AND code = :c GROUP BY arm"""),
                {"g": group_id, "c": TASK_CODE},
            ).all()
        )
        guides = conn.execute(
            text("""SELECT COUNT(DISTINCT guide_id) FROM guide_tasks
                    WHERE group_id = :g AND campaign_code = :c"""),
            {"g": group_id, "c": TASK_CODE},
        ).scalar_one()
    out.tasks, out.held_out = int(arms.get("task", 0)), int(arms.get("control", 0))
    out.no_guide, out.guides = int(arms.get("no_guide", 0)), int(guides)
    return out


def _save_item_once(engine: Engine, group_id: str, item: TrainingItem) -> None:
    """Save the item unless the store holds it as is (saving replaces the row)."""
    t = training_items.c
    columns = [t[name] for name in item.model_dump()]
    with engine.connect() as conn:
        row = conn.execute(
            select(*columns).where(t.group_id == group_id, t.code == item.code)
        ).first()
    if row is None or dict(row._mapping) != item.model_dump():
        save_item(engine, group_id, item)
