"""Set-wise merges (what an import uses for thousands of duplicate records): the same
rules and the same records as one merge, undone the same way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from tests.brandfiles import write, write_reference
from tests.conftest import Store

from siyu.identity.errors import MergeError
from siyu.identity.merge import merge_many, unmerge
from siyu.importer.service import import_directory
from siyu.privacy import Vault


def _members(store: Store, vault: Vault, tmp: Path) -> dict[str, int]:
    """Four members, one card each, registered M3 first, then M1, M2, M4."""
    write_reference(tmp)
    at = {"M1": "2023-01-01", "M2": "2023-06-01", "M3": "2022-01-01", "M4": "2024-01-01"}
    rows = [
        {"member_ref": r, "brand_id": "B1", "registered_at": t, "channel": "pos", "card": f"C-{r}"}
        for r, t in at.items()
    ]
    write(tmp / "members.csv", rows)
    import_directory(store.engine, vault, store.group_id, tmp, tmp / "rejects")
    with store.engine.connect() as conn:
        return {
            r: int(m)
            for r, m in conn.execute(
                text("SELECT source_ref, member_id FROM members WHERE group_id = :g"),
                {"g": store.group_id},
            )
        }


def test_pairs_sharing_a_member_merge_into_the_oldest_of_them(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given four members; when M1-M2 and M2-M3 are merged in one call, M4 left alone
    ids = _members(store, vault, tmp_path)
    with store.engine.begin() as conn:
        done = merge_many(
            conn,
            store.group_id,
            [(ids["M1"], ids["M2"], "first"), (ids["M2"], ids["M3"], "second")],
            "import",
        )
    # then the oldest (M3) survives and the other two are merged into it, each recorded
    # with the identities it brought
    assert sorted(done) == sorted([(ids["M1"], ids["M3"]), (ids["M2"], ids["M3"])])
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT merged_id, survivor_id, mode, reason, evidence FROM merges "
                "WHERE group_id = :g ORDER BY merged_id"
            ),
            {"g": store.group_id},
        ).all()
        holders = {
            int(m)
            for (m,) in conn.execute(
                text("SELECT DISTINCT member_id FROM identities WHERE group_id = :g"),
                {"g": store.group_id},
            )
        }
    assert [(r.merged_id, r.survivor_id, r.mode, r.reason) for r in rows] == [
        (ids["M1"], ids["M3"], "import", "first"),
        (ids["M2"], ids["M3"], "import", "first"),
    ]
    assert all(len(json.loads(r.evidence)["identities"]) == 1 for r in rows)
    assert holders == {ids["M3"], ids["M4"]}
    # and undoing one merge gives that member back exactly its identity
    with store.engine.connect() as conn:
        merge_id = int(
            conn.execute(
                text("SELECT merge_id FROM merges WHERE group_id = :g AND merged_id = :m"),
                {"g": store.group_id, "m": ids["M2"]},
            ).scalar_one()
        )
    undone = unmerge(store.engine, store.group_id, merge_id, "not the same person")
    assert (undone.restored_member_id, undone.identities_moved_back) == (ids["M2"], 1)


def test_a_member_that_is_not_active_refuses_the_whole_call(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given M1 already merged into M3
    ids = _members(store, vault, tmp_path)
    with store.engine.begin() as conn:
        merge_many(conn, store.group_id, [(ids["M1"], ids["M3"], "dup")], "import")
    # when a call names M1 again, then nothing of it is applied
    with pytest.raises(MergeError), store.engine.begin() as conn:
        merge_many(
            conn,
            store.group_id,
            [(ids["M4"], ids["M2"], "dup"), (ids["M1"], ids["M2"], "dup")],
            "import",
        )
    with store.engine.connect() as conn:
        count = conn.execute(
            text("SELECT COUNT(*) FROM merges WHERE group_id = :g"), {"g": store.group_id}
        ).scalar_one()
    assert count == 1
