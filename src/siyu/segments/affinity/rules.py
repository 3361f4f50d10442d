"""A brand group's affinity rules: a coefficient per behaviour, the window, the half-life
of the decay and the bands of `auto.affinity`, as a validated document.

HQ sets them (`PUT /v1/affinity/rules`, `siyu loyalty affinity-rules --set`); they are
stored like the earn and tier rules, as versions in `loyalty_programs` (kind `affinity`),
the newest in force, every one kept for the audit trail. A group that never set them
gets the defaults below.

Coefficients are numbers (a view may be worth 0.1): the score is a ranking, never money
or points, so it may be fractional. Every refusal names the field and the rule
(`coefficients.sign_in: must be a number ≥ 0 and ≤ 10000`).
"""

from __future__ import annotations

import json
import math
from itertools import pairwise
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import Connection, Engine

from siyu.errors import parse_document
from siyu.ledger.program import Kind, save_body, stored, version
from siyu.orders.models import EVENT_TYPES
from siyu.orders.scoring import ORDERS, SPEND

# What a coefficient may weigh: the store's event types, non-cancelled orders and spend.
BEHAVIOURS: tuple[str, ...] = (ORDERS, SPEND, *EVENT_TYPES)
MAX_COEFFICIENT = 10_000
KIND: Kind = "affinity"


def _coefficient(value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0 <= value <= MAX_COEFFICIENT:
        raise PydanticCustomError(
            "coefficient", "must be a number ≥ 0 and ≤ {most}", {"most": MAX_COEFFICIENT}
        )
    return float(value)


Coefficient = Annotated[float, BeforeValidator(_coefficient)]


class Band(BaseModel):
    """A value of `auto.affinity`, held by members whose score reaches `min_score`."""

    model_config = ConfigDict(extra="forbid")

    value: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    min_score: float = Field(gt=0, le=1e9)


def _default_coefficients() -> dict[str, float]:
    return {
        ORDERS: 10,
        SPEND: 5,
        "sign_in": 1,
        "share": 3,
        "view": 0.1,
        "add_to_cart": 0.5,
        "follow": 2,
        "wecom_add": 3,
    }


def _default_bands() -> list[Band]:
    return [
        Band(value="high", min_score=100),
        Band(value="medium", min_score=30),
        Band(value="low", min_score=1),
    ]


class AffinityRules(BaseModel):
    """Score = Σ coefficient × decayed count over the behaviours named, in the last
    `window_days`; a fact t days old counts 0.5^(t / half_life_days) (null: 1, no decay).
    A member reaching a band's `min_score` holds the first such band (highest first);
    below the last band, no `auto.affinity` tag."""

    model_config = ConfigDict(extra="forbid")

    coefficients: dict[str, Coefficient] = Field(
        default_factory=_default_coefficients,
        description="Behaviour -> coefficient: an event type, 'orders' (per non-cancelled "
        "order) or 'spend_per_100_yuan' (per 100 yuan paid, less refunds).",
    )
    window_days: int = Field(default=365, ge=1, le=3650)
    half_life_days: int | None = Field(default=90, ge=1, le=3650)
    bands: list[Band] = Field(default_factory=_default_bands, min_length=1, max_length=10)

    @field_validator("coefficients")
    @classmethod
    def _behaviours(cls, found: dict[str, float]) -> dict[str, float]:
        for name in found:
            if name not in BEHAVIOURS:
                raise PydanticCustomError(
                    "behaviour",
                    "'{name}' is not a behaviour (one of {known})",
                    {"name": name, "known": ", ".join(BEHAVIOURS)},
                )
        return found

    @field_validator("bands")
    @classmethod
    def _ordered(cls, bands: list[Band]) -> list[Band]:
        values = [b.value for b in bands]
        if len(set(values)) != len(values):
            raise PydanticCustomError("bands", "values must be unique", {})
        scores = [b.min_score for b in bands]
        if any(high <= low for high, low in pairwise(scores)):
            raise PydanticCustomError(
                "bands", "must go from the highest min_score down, each lower than the last", {}
            )
        return bands


def parse_rules(doc: Any) -> AffinityRules:
    """A document (parsed JSON) as rules, or a ValidationError naming the field."""
    return parse_document(AffinityRules, doc, "rules")


def affinity_rules(conn: Connection, group_id: str) -> tuple[int, AffinityRules]:
    """The rules in force and their version (0 and the defaults while the group never
    set any)."""
    number, body = stored(conn, group_id, KIND)
    return number, AffinityRules.model_validate_json(body) if body else AffinityRules()


def rules_version(engine: Engine, group_id: str) -> int:
    """The version in force; 0 while the group runs on the defaults."""
    return version(engine, group_id, KIND)


def save_rules(engine: Engine, group_id: str, rules: AffinityRules, key_id: int | None) -> int:
    """Store the rules as the next version; returns its number."""
    body = json.loads(rules.model_dump_json())
    return save_body(engine, group_id, KIND, body, key_id)
