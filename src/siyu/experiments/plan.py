"""An experiment as HQ writes it: a validated document, like a campaign's plan. Saved as
a draft, editable until started; starting fixes it; stopping ends assignment for good
(draft → running → stopped).

An experiment targets a segment or a lifecycle stage (the campaigns' `Target`) and splits
it into variants by weight (basis points summing to 10,000). A variant's treatment is a
campaign, a message (a send targeting this variant), a coupon or a guide task, named by
`ref`, or `none`: at least one variant is a `none` control, which every other variant is
compared with. The treatments are delivered at start (`deliver.py`); what a variant names
is checked when the plan is saved and again at start (`treatments.py`). A guide task is
an HQ task's code (`guides.campaigns`), given at start to the variant's members' guides.
Outcomes are read over `window_days` from each member's assignment (or first exposure);
CUPED adjusts them by the member's spend over `pre_period_days` before it (0: none).

The salt the assignment hashes with is drawn when the experiment is first saved and never
changes, so a member's variant is the same on every run and independent of every other
experiment's and campaign's arms.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, Engine, text

from siyu.campaigns.assignment import BUCKETS
from siyu.campaigns.plan import Target
from siyu.errors import NotFoundError
from siyu.experiments import treatments
from siyu.experiments.errors import ExperimentState
from siyu.experiments.models import experiments
from siyu.ledger.program import Code
from siyu.store.times import as_stored, stored_now, stored_time

Name = Annotated[str, Field(min_length=1, max_length=128)]
Kind = Literal["campaign", "message", "coupon", "guide_task", "none"]
CONTROL: Kind = "none"
MAX_CODE = 64 - len("experiment:")


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Variant(_Doc):
    """One arm: its share of the target and what its members get."""

    name: Code
    weight_bp: int = Field(ge=1, le=BUCKETS)
    kind: Kind
    # the campaign, message, coupon template or guide-task code given; none for `none`
    ref: Code | None = None

    @model_validator(mode="after")
    def _ref(self) -> Variant:
        if self.kind == CONTROL and self.ref is not None:
            raise ValueError("ref: a `none` variant gives nothing, so names nothing")
        if self.kind != CONTROL and self.ref is None:
            raise ValueError(f"ref: a `{self.kind}` variant names the {self.kind} it gives")
        return self


class Plan(_Doc):
    code: Code
    name_zh: Name
    name_en: Name
    target: Target
    variants: list[Variant] = Field(min_length=2, max_length=20)
    window_days: int = Field(ge=1, le=365)  # outcomes read over this many days
    pre_period_days: int = Field(default=0, ge=0, le=365)  # CUPED's covariate; 0: none
    starts_at: datetime
    ends_at: datetime

    @model_validator(mode="after")
    def _whole(self) -> Plan:
        if len(self.code) > MAX_CODE:
            # its coupons name it as their campaign, `experiment:<code>` (64 characters)
            raise ValueError(f"code: at most {MAX_CODE} characters")
        if as_stored(self.ends_at) <= as_stored(self.starts_at):
            raise ValueError("ends_at must be after starts_at")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variants: each variant's name must be unique")
        total = sum(v.weight_bp for v in self.variants)
        if total != BUCKETS:
            raise ValueError(f"variants: weight_bp must sum to {BUCKETS}, got {total}")
        if not any(v.kind == CONTROL for v in self.variants):
            raise ValueError("variants: at least one `none` variant (the control)")
        return self

    @property
    def control(self) -> Variant:
        """The first `none` variant: what every other variant is compared with."""
        return next(v for v in self.variants if v.kind == CONTROL)

    def variant_of(self, bucket: int) -> str:
        """The variant whose slice of 0..9,999 holds `bucket` (slices in the plan's order)."""
        edge = 0
        for v in self.variants:
            edge += v.weight_bp
            if bucket < edge:
                return v.name
        raise ValueError(f"bucket: must be 0..{BUCKETS - 1}, got {bucket}")


@dataclass(frozen=True)
class Stored:
    experiment_id: int
    plan: Plan
    salt: str
    status: str
    started_at: datetime | None
    stopped_at: datetime | None


def save(
    engine: Engine, group_id: str, plan: Plan, key_id: int | None, salt: str | None = None
) -> Stored:
    """Create the experiment as a draft (drawing its salt), or replace a draft's plan; a
    running or stopped experiment's plan is fixed (409 `experiment_state`). What the
    variants name is checked first (`treatments.check`: 404 or 422 naming the variant)."""
    now = stored_now()
    body = plan.model_dump_json()
    with engine.begin() as conn:
        found = conn.execute(
            text("SELECT experiment_id, status FROM experiments WHERE group_id = :g AND code = :c"),
            {"g": group_id, "c": plan.code},
        ).first()
        if found is None or found.status == "draft":
            # what the variants name, before anything is written (treatments.py)
            treatments.check(conn, group_id, plan.code, plan.variants, started=False)
        if found is None:
            conn.execute(
                experiments.insert().values(
                    group_id=group_id,
                    code=plan.code,
                    body=body,
                    # a given salt only for a reproducible run (the demo); HQ's are drawn
                    salt=salt or secrets.token_hex(8),
                    status="draft",
                    key_id=key_id,
                    created_at=now,
                    updated_at=now,
                )
            )
        elif (
            conn.execute(
                text("""UPDATE experiments SET body = :b, updated_at = :now, key_id = :k
                    WHERE experiment_id = :i AND status = 'draft'"""),
                {"b": body, "now": now, "k": key_id, "i": found.experiment_id},
            ).rowcount
            != 1
        ):
            raise ExperimentState(
                f"code: experiment {plan.code} is {found.status}; its plan is fixed"
            )
        return load(conn, group_id, plan.code)


_COLUMNS = "experiment_id, body, salt, status, started_at, stopped_at"


def load(conn: Connection, group_id: str, code: str) -> Stored:
    row = conn.execute(
        text(f"SELECT {_COLUMNS} FROM experiments WHERE group_id = :g AND code = :c"),
        {"g": group_id, "c": code},
    ).first()
    if row is None:
        raise NotFoundError(f"experiment: no experiment {code!r}")
    return _stored(row)


def listed(conn: Connection, group_id: str) -> list[Stored]:
    rows = conn.execute(
        text(f"""SELECT {_COLUMNS} FROM experiments WHERE group_id = :g
                 ORDER BY created_at DESC, code"""),
        {"g": group_id},
    )
    return [_stored(row) for row in rows]


def _stored(row: Any) -> Stored:
    return Stored(
        int(row.experiment_id),
        Plan.model_validate(json.loads(row.body)),
        str(row.salt),
        str(row.status),
        None if row.started_at is None else stored_time(row.started_at),
        None if row.stopped_at is None else stored_time(row.stopped_at),
    )


def stop(engine: Engine, group_id: str, code: str, at: datetime | None = None) -> Stored:
    """Stop a running experiment: no one is assigned after this; its results stay
    readable. Stopping a draft or a stopped experiment is refused."""
    now = as_stored(at) if at is not None else stored_now()
    with engine.begin() as conn:
        stored = load(conn, group_id, code)
        if (
            conn.execute(
                text("""UPDATE experiments SET status = 'stopped', stopped_at = :now,
                          updated_at = :now WHERE experiment_id = :i AND status = 'running'"""),
                {"now": now, "i": stored.experiment_id},
            ).rowcount
            != 1
        ):
            raise ExperimentState(f"code: experiment {code} is {stored.status}, not running")
        return load(conn, group_id, code)
