"""A trained matching model, and the thresholds that turn its probabilities into action.

Thresholds are match probabilities fixed a priori, not fitted to any labelled set: above
AUTO_THRESHOLD a pair is merged without a person (recorded and undoable), between
REVIEW_THRESHOLD and AUTO_THRESHOLD it waits in the review queue, below it nothing
happens. 0.99 is the probability at which Splink's own FEBRL4 demo clusters (match
weight about 6.6: the evidence is a hundred to one); 0.5 is where a match becomes more
likely than not, the least a reviewer should be asked to look at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from splink import SettingsCreator

from siyu.errors import ValidationError
from siyu.identity.matching.blocking import RULES_BY_NAME, Rule
from siyu.identity.matching.columns import UNIQUE_ID
from siyu.identity.matching.comparisons import comparisons

AUTO_THRESHOLD = 0.99
REVIEW_THRESHOLD = 0.5
# Stored with the model so a model knows which siyu rules and fields it was built from.
SIYU_KEY = "siyu"


@dataclass(frozen=True)
class MatchModel:
    settings_json: str  # Splink's model (DuckDB SQL) with trained m, u and lambda
    engine: str  # where it was trained
    records: int  # how many records it was trained on
    auto_threshold: float = AUTO_THRESHOLD
    review_threshold: float = REVIEW_THRESHOLD

    def __post_init__(self) -> None:
        if not 0.0 < self.review_threshold <= self.auto_threshold < 1.0:
            raise ValidationError(
                "review_threshold",
                "thresholds must satisfy 0 < review_threshold <= auto_threshold < 1",
                (self.review_threshold, self.auto_threshold),
            )

    @property
    def settings(self) -> dict[str, Any]:
        return dict(json.loads(self.settings_json))

    @property
    def fields(self) -> list[str]:
        return list(self.settings[SIYU_KEY]["fields"])

    @property
    def rules(self) -> list[Rule]:
        return [RULES_BY_NAME[name] for name in self.settings[SIYU_KEY]["rules"]]


def settings_creator(fields: list[str], rules: list[Rule], **extra: Any) -> SettingsCreator:
    """Untrained Splink settings for these fields and prediction rules. Matching columns
    are not kept in predictions: a scored pair carries ids, weights and level labels only."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name=UNIQUE_ID,
        comparisons=comparisons(fields),
        blocking_rules_to_generate_predictions=[r.creator() for r in rules],
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
        additional_columns_to_retain=[],
        **extra,
    )


def trained_settings(settings: dict[str, Any], dialect: str) -> dict[str, Any]:
    """`settings` (one dialect's trained model) rewritten for `dialect`: the SQL comes
    from siyu's own definitions, the parameters (lambda, m, u) from `settings`."""
    fields, rule_names = settings[SIYU_KEY]["fields"], settings[SIYU_KEY]["rules"]
    rules = [RULES_BY_NAME[name] for name in rule_names]
    fresh = settings_creator(fields, rules).create_settings_dict(dialect)
    fresh["probability_two_random_records_match"] = settings["probability_two_random_records_match"]
    trained = {c["output_column_name"]: c for c in settings["comparisons"]}
    for comparison in fresh["comparisons"]:
        levels = trained[comparison["output_column_name"]]["comparison_levels"]
        for level, source in zip(comparison["comparison_levels"], levels, strict=True):
            for key in ("m_probability", "u_probability"):
                if key in source:
                    level[key] = source[key]
    fresh["sql_dialect"] = dialect
    fresh[SIYU_KEY] = settings[SIYU_KEY]
    return fresh


def for_splink(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings without siyu's own key, which Splink would refuse."""
    return {k: v for k, v in settings.items() if k != SIYU_KEY}
