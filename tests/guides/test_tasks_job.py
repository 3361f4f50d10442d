"""Tasks follow the lifecycle snapshot: saving one creates them (same transaction), and
`siyu guides tasks generate` makes them from the latest snapshot, nothing twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from sqlalchemy import text
from tests.guides.conftest import AS_OF, Brand

from siyu.analytics.snapshot import save_snapshots

LIFECYCLE: dict[str, Any] = {
    "as_of": AS_OF.isoformat(),
    "knee": 4,
    "config": {"at_risk_days": 60, "lapsed_days": 120, "window_days": 120},
    "curve": [{"k": 1, "rate": 0.3}, {"k": 2, "rate": 0.4}, {"k": 3, "rate": 0.5}],
    "transitions": {
        "matrix": {"at_risk": {"at_risk": 8, "new_3": 2}, "lapsed": {"lapsed": 19, "new_1": 1}}
    },
    "stages": [],
}


def siyu(brand: Brand, *args: str) -> subprocess.CompletedProcess[str]:
    url = brand.store.engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "SIYU_DATABASE_URL": url, "SIYU_GROUP": brand.store.group_id}
    env.update(SIYU_SECRET_KEY=bytes(range(32)).hex(), SIYU_LANG="en", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "siyu.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_saving_the_lifecycle_snapshot_creates_the_tasks(brand: Brand) -> None:
    # when the snapshot run stores its lifecycle payload (knee 4)
    save_snapshots(brand.store.engine, brand.store.group_id, {"lifecycle": LIFECYCLE})
    # then the stages' tasks exist, next-order tasks among them
    kinds = sorted(r[2] for r in brand.task_rows())
    assert kinds == ["next_order", "win_back_at_risk", "win_back_at_risk", "win_back_lapsed"]
    # and storing it again makes none twice
    save_snapshots(brand.store.engine, brand.store.group_id, {"lifecycle": LIFECYCLE})
    assert brand.store.count("guide_tasks") == 4


def test_the_generate_job_reads_the_latest_snapshot(brand: Brand) -> None:
    # given no snapshot yet: a clear error naming what to run
    refused = siyu(brand, "guides", "tasks", "generate")
    assert refused.returncode == 2
    assert "run siyu analyze snapshot first" in refused.stderr + refused.stdout
    # given a lifecycle snapshot stored (without the snapshot's own generation)
    with brand.store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO analytics_snapshots (group_id, kind, as_of, computed_at, payload) "
                "VALUES (:g, 'lifecycle', :a, :a, :p)"
            ),
            {"g": brand.store.group_id, "a": AS_OF, "p": json.dumps(LIFECYCLE)},
        )
    # when the job runs, twice
    first = siyu(brand, "guides", "tasks", "generate", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) | {"group": None} == {
        "group": None,
        "knee": 4,
        "as_of": AS_OF.isoformat(),
        "created": 4,
        "closed": 0,
        "live": 4,
    }
    again = siyu(brand, "guides", "tasks", "generate")
    assert again.returncode == 0, again.stderr
    assert "created 0, closed 0, to do 4" in again.stdout
    # R1 and R2 are worth the same: 5,000 x P, P from the at-risk share who came back in
    # the month (2 of 10) over the 120-day window
    values = {m: v for m, _, _, _, v, _ in brand.task_rows()}
    assert values["R1"] == values["R2"] == round(5_000 * (1 - 0.8**4))
