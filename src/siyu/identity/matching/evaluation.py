"""siyu's matching engine and Splink alone, on the same labelled records in one run.

siyu: train without labels, score, cluster at AUTO_THRESHOLD (Splink's connected
components). Splink: its own demo for the data set (`splink_demos`). Both are scored
with the pairwise precision, recall and F1 of `siyu.identity.evaluate`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from siyu.identity.evaluate import PairwiseScores, pairwise_scores
from siyu.identity.matching.cluster import cluster
from siyu.identity.matching.labelled import LOADERS, LabelledSet
from siyu.identity.matching.predict import predict
from siyu.identity.matching.splink_demos import DEMOS, THRESHOLDS
from siyu.identity.matching.train import train


@dataclass(frozen=True)
class EngineRun:
    engine: str  # "siyu" or "splink"
    threshold: float  # the match probability clustered at
    scores: PairwiseScores
    seconds: float


@dataclass(frozen=True)
class Evaluation:
    data_set: str
    records: int
    siyu: EngineRun
    splink: EngineRun


def run_siyu(data: LabelledSet) -> EngineRun:
    started = time.perf_counter()
    model = train(data.records)
    pairs = predict(model, data.records)
    clusters = cluster(data.records.column("record_id"), pairs, model.auto_threshold)
    labels = dict(
        zip(*(clusters.column(c).to_pylist() for c in ("record_id", "cluster_id")), strict=True)
    )
    predicted = np.array([labels[i] for i in data.records.column("record_id").to_pylist()])
    return EngineRun(
        "siyu",
        model.auto_threshold,
        pairwise_scores(predicted, data.truth),
        time.perf_counter() - started,
    )


def run_splink(data: LabelledSet) -> EngineRun:
    started = time.perf_counter()
    predicted = DEMOS[data.name](data)
    return EngineRun(
        "splink",
        THRESHOLDS[data.name],
        pairwise_scores(predicted, data.truth),
        time.perf_counter() - started,
    )


def evaluate(data_dir: Path, name: str) -> Evaluation:
    """Load labelled set `name` (febrl3, febrl4, fake_1000) from `data_dir` and run both."""
    data = LOADERS[name](data_dir)
    return Evaluation(name, data.records.num_rows, run_siyu(data), run_splink(data))
