"""Rows from memory (the batch API's path) go through the same rules and loaders as
files, in one transaction, with a result per row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tests.brandfiles import write_reference
from tests.conftest import Store

from siyu.importer.batch import Batch
from siyu.importer.service import import_directory, import_rows
from siyu.privacy import Vault


def _event(event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "view",
        "channel": "miniprogram",
        "identity_type": "openid",
        "identity_value": f"o-{event_id}",
        "occurred_at": "2024-04-01T09:30:00",
        **extra,
    }


def test_rows_answer_per_row_and_tell_stored_ids(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given the reference data, and a screen refusing one event id
    write_reference(tmp_path / "ref")
    import_directory(store.engine, vault, store.group_id, tmp_path / "ref", tmp_path / "rej")

    def screen(batch: Batch) -> None:
        bad = np.array([e == "E-3" for e in batch.values("event_id")])
        batch.reject_where(bad, "event_id", "not this one")

    rows = [_event("E-1"), _event("E-2", colour="red"), _event("E-3"), _event("E-4", store_id="S9")]
    # when the rows are imported twice
    first = import_rows(store.engine, vault, store.group_id, "events", rows, screen)
    again = import_rows(store.engine, vault, store.group_id, "events", rows[:1])
    # then each row has its own answer, and the second time the id is known
    assert first.errors == [
        None,
        "colour: unknown field; known: event_id, type, channel, identity_type, identity_value, "
        "identity_scope, occurred_at, sku, store_id, guide_id, order_id, scene",
        "event_id: not this one",
        "store_id: no store 'S9' in this brand group",
    ]
    assert first.stored == [False, False, False, False]
    assert (first.report.read, first.report.accepted, first.report.rejected) == (4, 1, 3)
    assert first.report.inserted == 1
    assert again.stored == [True] and again.report.inserted == 0
    assert store.count("events") == 1
