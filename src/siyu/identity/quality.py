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
    # A truth may name each identifier's scope; without it an identifier is found in any
    # scope (the generator's card numbers differ between brands).
    scoped = "scope" in pq.read_schema(truth_file).names
    columns = ["type", "value", "person_id", *(["scope"] if scoped else [])]
    truth = pq.read_table(truth_file, columns=columns)
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
    scopes = truth.column("scope").to_pylist() if scoped else [""] * truth.num_rows
    for i, (t, v, s) in enumerate(
        zip(
            truth.column("type").to_pylist(),
            truth.column("value").to_pylist(),
            scopes,
            strict=True,
        )
    ):
        member = stored.get((t, s or "", encoder.encode(t, v).key), -1)
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
