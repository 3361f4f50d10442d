"""Probabilistic matching of member records on Splink: weak evidence (names, birth dates,
addresses, e-mail, phones typed wrong, nicknames, devices) scored by a Fellegi-Sunter
model trained without labels, in batch (DuckDB or Spark) and one record at a time.

The store is not touched here: callers load records as RAW_COLUMNS, and write back what
the scores decide (AUTO_THRESHOLD merges, REVIEW_THRESHOLD queues for review).
"""

from siyu.identity.matching.blocking import KEY_SCHEMA, RULES, blocking_keys
from siyu.identity.matching.cluster import cluster
from siyu.identity.matching.columns import RAW_COLUMNS, STANDARD_COLUMNS
from siyu.identity.matching.model import AUTO_THRESHOLD, REVIEW_THRESHOLD, MatchModel
from siyu.identity.matching.predict import PAIR_SCHEMA, predict
from siyu.identity.matching.realtime import score_against
from siyu.identity.matching.standardise import standardise
from siyu.identity.matching.train import train

__all__ = [
    "AUTO_THRESHOLD",
    "KEY_SCHEMA",
    "PAIR_SCHEMA",
    "RAW_COLUMNS",
    "REVIEW_THRESHOLD",
    "RULES",
    "STANDARD_COLUMNS",
    "MatchModel",
    "blocking_keys",
    "cluster",
    "predict",
    "score_against",
    "standardise",
    "train",
]
