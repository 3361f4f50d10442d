"""Imported tags: rows name a member (member_ref or an identifier) and an imported tag;
bad rows are rejected with field and rule, good ones land with history, and importing
the file again changes nothing."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import text
from tests.api.conftest import NAME_1, PHONE_1, PHONE_2, brand
from tests.brandfiles import write
from tests.conftest import Store

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory, import_file
from siyu.privacy import Vault
from siyu.segments import tags as svc


def _rejects(path: str | None) -> dict[str, str]:
    assert path is not None
    with open(path, encoding="utf-8-sig") as fh:
        return {r["reject_row"]: r["reject_reason"] for r in csv.DictReader(fh)}


def test_imported_tags_land_with_history_and_bad_rows_are_rejected(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    g = store.group_id
    import_directory(store.engine, vault, g, brand(tmp_path / "b"), tmp_path / "r")
    resolve_all(store.engine, g, DEFAULT_STRONG_TYPES)
    with store.engine.begin() as conn:
        for slug, kind in (("crm_vip", "imported"), ("hand", "manual")):
            svc.define_tag(conn, g, slug, name_zh="标签", name_en="Tag", kind=kind, owner="hq")
        members = dict(
            conn.execute(text("SELECT source_ref, member_id FROM members WHERE group_id = :g"),
                         {"g": g}).all()
        )  # fmt: skip
    rows = [
        {"tag": "crm_vip", "member_ref": "M1", "value": "gold", "source": "crm"},  # line 2
        {"tag": "crm_vip", "identity_type": "phone", "identity_value": PHONE_2},  # 3
        {"tag": "crm_vip", "member_ref": "M404"},  # 4: no such member
        {"tag": "nope", "member_ref": "M1"},  # 5: no such tag
        {"tag": "hand", "member_ref": "M1"},  # 6: a manual tag
        {"tag": "Bad Slug", "member_ref": "M1"},  # 7
        {"tag": "crm_vip"},  # 8: no member named
        {"tag": "crm_vip", "identity_type": "phone", "identity_value": "12"},  # 9: bad phone
        {"tag": "crm_vip", "identity_type": "phone", "identity_value": "13700000000"},  # 10
    ]
    path = tmp_path / "tags.csv"
    write(path, rows)
    report = import_file(store.engine, vault, g, "tags", path, tmp_path / "r")
    assert (report.read, report.accepted, report.rejected) == (9, 2, 7)
    reasons = _rejects(report.rejects_path)
    assert sorted(reasons) == ["10", "4", "5", "6", "7", "8", "9"]
    assert reasons["4"].startswith("member_ref: no member")
    assert reasons["5"].startswith("tag: no tag")
    assert "manual" in reasons["6"] and reasons["7"].startswith("tag:")
    assert reasons["8"].startswith("member_ref:") and reasons["9"].startswith("identity_value:")
    assert reasons["10"] == "identity_value: no member holds this identifier"
    for reason in reasons.values():  # the phone in the clear is in no reason
        assert PHONE_1 not in reason and "13700000000" not in reason and NAME_1 not in reason
    with store.engine.connect() as conn:
        total, page, _ = svc.tag_members(conn, g, "crm_vip")
        changes = svc.history(conn, g, slug="crm_vip")
    assert total == 2
    assert {(h.member_id, h.value, h.set_by) for h in page} == {
        (members["M1"], "gold", "import:crm"),
        (members["M2"], None, "import:file"),
    }
    assert sorted(c.change for c in changes) == ["enter", "enter"]
    # again: nothing changes; a new value is a value change, not a second enter
    again = import_file(store.engine, vault, g, "tags", path, tmp_path / "r")
    assert (again.accepted, again.inserted) == (2, 0)
    write(path, [{"tag": "crm_vip", "member_ref": "M1", "value": "platinum"}])
    changed = import_file(store.engine, vault, g, "tags", path, tmp_path / "r")
    assert (changed.accepted, changed.inserted) == (1, 1)
    with store.engine.connect() as conn:
        held = svc.member_tag_list(conn, g, members["M1"])
        changes = svc.history(conn, g, slug="crm_vip")
    assert [(h.value, h.set_by) for h in held] == [("platinum", "import:file")]
    assert sorted(c.change for c in changes) == ["enter", "enter", "value"]
