"""The demo's lifecycle step: land the orders in DuckDB, find the knee of retention by
order count on the members OneID resolved, stage every member from it and write the
stages back to the store, as of the data's end or of an earlier moment (the demo's
experiment is assigned on the stages of its start, before the history after it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from siyu.analytics.engines import connect, to_pandas
from siyu.analytics.knee import find_knee
from siyu.analytics.landing import land
from siyu.analytics.lifecycle import stages_from_warehouse, write_member_stages
from siyu.analytics.retention import RetentionRow, retention_counts, retention_rows
from siyu.analytics.stages import StageConfig
from siyu.analytics.warehouse import open_warehouse

MAX_K = 8  # the curve shown: k = 1..8 orders
# what retention and stages read, and events: the data's end (the as-of time of the
# curve, the stages and the console's snapshot alike) is the newest of them
LANDED = ("orders", "identities", "members", "events")


@dataclass
class Lifecycle:
    """Retention by order count on the resolved members, its knee, the generator's."""

    warehouse: str
    window_days: int
    curve: list[RetentionRow]
    knee_found: int | None
    knee_true: int
    stages: list[tuple[str, int]]  # (stage, members), empty when no knee was found

    def as_json(self) -> dict[str, Any]:
        return {
            "knee_found": self.knee_found,
            "knee_true": self.knee_true,
            "retention_window_days": self.window_days,
            "retention": [
                {
                    k: v
                    for k, v in r.to_json().items()
                    if k in ("k", "members", "eligible", "retained", "rate")
                }
                for r in self.curve
            ],
            "stages": dict(self.stages),
            "warehouse": self.warehouse,
        }


def stage_members(
    engine: Engine, group: str, warehouse: Path, data_dir: Path, as_of: datetime | None = None
) -> Lifecycle:
    """Land the orders (DuckDB), find the knee on the members OneID resolved, stage every
    member from it and write the stages back to the store; all as of `as_of` (default: the
    data's end), orders after it ignored."""
    truth = json.loads((data_dir / "truth" / "truth.json").read_text(encoding="utf-8"))
    window = int(truth["retention_window"]["recommended_days"])
    for suffix in ("", ".wal"):
        Path(f"{warehouse}{suffix}").unlink(missing_ok=True)
    land(engine, group, warehouse, tables=LANDED)
    con = connect("duckdb")
    try:
        wh = open_warehouse(con, warehouse, group)
        # as of the data's end, as the console's snapshot is: the same curve and stages
        t_end = as_of or wh.data_end()
        counts = retention_counts(wh.purchases(), window, MAX_K, t_end)
        curve = retention_rows(to_pandas(con, counts), MAX_K)
        knee = find_knee(curve).k
        stages: list[tuple[str, int]] = []
        if knee is not None:
            config = StageConfig(knee=knee, window_days=window)
            report = stages_from_warehouse(warehouse, group, config, as_of=t_end, con=con)
            write_member_stages(engine, group, report.members, computed_at=as_of)
            stages = [(s["stage"], s["members"]) for s in report.payload["stages"]]
    finally:
        con.disconnect()
    return Lifecycle(str(warehouse), window, curve, knee, int(truth["knee"]), stages)
