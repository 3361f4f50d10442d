"""How good is OneID? Compare the store's members with a ground truth of true persons.

Only the synthetic generator has such a truth; the product reads it for nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from sqlalchemy import Engine, text

from siyu.errors import ValidationError
from siyu.identity.evaluate import pairwise_scores
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.types import scope_of


@dataclass(frozen=True)
class Quality:
    identities: int
    members: int
    true_persons: int
    precision: float
    recall: float
    f1: float
    missing: int  # truth identities the store does not have (each counted as its own member)


def evaluate_against_truth(
    engine: Engine, group_id: str, truth_file: Path, encoder: IdentifierEncoder
) -> Quality:
    if not truth_file.is_file():
        raise ValidationError("truth", f"{truth_file}: no such file")
    # An identifier is (type, scope, value): the truth names a scope, or a card's brand
    # (its scope: card numbers repeat across brands), or neither, and then an identifier
    # is found in any scope. Dropping the brand would fold two brands' cards into one key
    # and count two people as one.
    names = set(pq.read_schema(truth_file).names)
    extra = [c for c in ("scope", "brand_id") if c in names]
    truth = pq.read_table(truth_file, columns=["type", "value", "person_id", *extra])
    scoped = bool(extra)
    with engine.connect() as conn:
        stored = {
            (t, s if scoped else "", k): int(m) if m is not None else -1
            for t, s, k, m in conn.execute(
                text(
                    "SELECT type, scope, value_key, member_id FROM identities WHERE group_id = :g"
                ),
                {"g": group_id},
            )
        }
        members = int(
            conn.execute(
                text("SELECT COUNT(DISTINCT member_id) FROM identities WHERE group_id = :g"),
                {"g": group_id},
            ).scalar_one()
        )
    predicted = np.empty(truth.num_rows, dtype=np.int64)
    missing = 0
    none = [None] * truth.num_rows
    scopes = truth.column("scope").to_pylist() if "scope" in names else none
    brands = truth.column("brand_id").to_pylist() if "brand_id" in names else none
    for i, (t, v, s, b) in enumerate(
        zip(
            truth.column("type").to_pylist(),
            truth.column("value").to_pylist(),
            scopes,
            brands,
            strict=True,
        )
    ):
        # scope_of reads brand_id only for a type scoped by brand (a card)
        scope = scope_of(t, s, b) if scoped else ""
        member = stored.get((t, scope, encoder.encode(t, v).key), -1)
        if member < 0:
            missing += 1
            member = -(i + 1)  # unresolved: a cluster of its own
        predicted[i] = member
    persons = truth.column("person_id").to_numpy()
    scores = pairwise_scores(predicted, persons)
    return Quality(
        identities=truth.num_rows,
        members=members,
        true_persons=len(np.unique(persons)),
        precision=scores.precision,
        recall=scores.recall,
        f1=scores.f1,
        missing=missing,
    )
