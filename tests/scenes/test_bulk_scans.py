"""The bulk scan import against the per-scan service, on SQLite and PostgreSQL.

Given two brand groups set up alike (codes live, expired and archived; members signed up
at T0, one pair merged), when one group records a script of scans with `record_scan` one
call at a time and the other with one `record_scans` call in batches of four, then both
answer the same scans and store the same rows in the same order: acquisitions by the
window, by the caller's word and not twice (also across batches), flags, referrers,
merged members followed to the survivor, and replays of keys recorded before and earlier
in the import. A row that breaks a rule names itself and the import applies nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from tests.conftest import Store
from tests.scenes.helpers import T0, new_member, permanent

from siyu.errors import NotFoundError, ValidationError
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.service import merge_members
from siyu.importer.service import ensure_group
from siyu.ledger.errors import IdempotencyConflict
from siyu.scenes import registry
from siyu.scenes.bulk import ScanIn, record_scans
from siyu.scenes.scans import Scan, record_scan

MIN = timedelta(minutes=1)
NAMES = ("u1", "u2", "u3", "u4", "u5", "u6", "x", "y")


def world(store: Store, encoder: IdentifierEncoder, g: str) -> dict[str, int]:
    """Codes and members of group `g`; names -> member ids ('gone' merged into 'kept')."""
    e = store.engine
    ensure_group(e, g)
    permanent(e, g, "A")
    permanent(e, g, "B")
    registry.create(e, g, "tmp", "temporary", expires_at=T0 + timedelta(days=1), at=T0)
    permanent(e, g, "old")
    registry.archive(e, g, "old", at=T0 + MIN)
    members = {name: new_member(e, encoder, g, f"{g}-{name}") for name in NAMES[:-1]}
    # the same person signed up again in a mini-program, before it knew her unionid
    members["y"] = new_member(e, encoder, g, f"{g}-y", "openid")
    _, kept = merge_members(e, g, members["x"], members["y"], "same person")
    members["kept"] = kept
    members["gone"] = members["y"] if kept == members["x"] else members["x"]
    # a scan recorded before the import, which the import delivers again
    record_scan(e, g, "B", "k0", member_id=members["u6"], at=T0 + 50 * MIN)
    return members


def script(m: dict[str, int]) -> list[ScanIn]:
    return [
        ScanIn("A", "k1", member_id=m["u1"], at=T0 + 5 * MIN),  # acquires u1
        ScanIn("B", "k2", member_id=m["u1"], at=T0 + 6 * MIN),  # u1 is not acquired twice
        ScanIn("A", "k1", member_id=m["u1"], at=T0 + 5 * MIN),  # delivered again
        ScanIn("B", "k3", member_id=m["u2"], at=T0 + 31 * MIN),  # past the window
        ScanIn("B", "k4", member_id=m["u2"], at=T0 + 40 * MIN, acquired=True),  # caller's word
        ScanIn("A", "k5", identity_id=77, at=T0),  # a visitor
        ScanIn("A", "k6", member_id=m["u3"], referrer_member_id=m["u3"], at=T0 + MIN),
        ScanIn("A", "k7", member_id=m["u4"], referrer_member_id=m["u3"], at=T0 + 2 * MIN),
        ScanIn("tmp", "k8", member_id=m["u5"], at=T0 + timedelta(days=2), acquired=True),
        ScanIn("old", "k9", member_id=m["u5"], at=T0 + 2 * MIN),  # archived
        ScanIn("tmp", "k10", member_id=m["u5"], at=T0 + 3 * MIN),  # acquires u5
        ScanIn("A", "k11", member_id=m["gone"], referrer_member_id=m["u1"], at=T0 + 4 * MIN),
        ScanIn("A", "k12", member_id=m["u6"], at=T0 + MIN, acquired=False),
        ScanIn("B", "k13", member_id=m["u6"], at=T0 + 2 * MIN),  # acquires u6 (a later batch)
        ScanIn("B", "k0", member_id=m["u6"], at=T0 + 50 * MIN),  # recorded before the import
        ScanIn("B", "k14", member_id=m["u1"], at=T0 + 7 * MIN),  # still not acquired again
        ScanIn("A", "k15", member_id=m["kept"], at=T0 + 8 * MIN),
    ]


def answers(scans: list[Scan], m: dict[str, int]) -> list[tuple[Any, ...]]:
    """The scans with member ids as names and scan ids as their rank in the group."""
    name = {v: k for k, v in m.items() if k not in ("x", "y")}
    rank = {s: i for i, s in enumerate(sorted({s.scan_id for s in scans}))}
    return [
        (rank[s.scan_id], s.scene, name.get(s.member_id), s.identity_id,
         name.get(s.referrer_member_id), s.first_touch, s.flag, s.at, s.replayed)
        for s in scans
    ]  # fmt: skip


def stored(store: Store, g: str, m: dict[str, int]) -> list[tuple[Any, ...]]:
    name = {v: k for k, v in m.items() if k not in ("x", "y")}
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT idempotency_key, scene, member_id, identity_id, referrer_member_id,
                           first_touch, flag, at, key_id
                    FROM qr_scans WHERE group_id = :g ORDER BY scan_id"""),
            {"g": g},
        ).all()
    return [
        (k, s, name.get(mem), i, name.get(ref), bool(f), flag, str(at), key)
        for k, s, mem, i, ref, f, flag, at, key in rows
    ]


def test_a_bulk_import_records_what_the_per_scan_service_records(
    store: Store, encoder: IdentifierEncoder
) -> None:
    one, bulk = f"{store.group_id}-one", f"{store.group_id}-bulk"
    m1, m2 = world(store, encoder, one), world(store, encoder, bulk)
    e = store.engine
    # when one group records each scan in turn and the other imports them all at once
    singly = []
    for s in script(m1):
        singly.append(
            record_scan(
                e, one, s.scene, s.key, member_id=s.member_id, identity_id=s.identity_id,
                referrer_member_id=s.referrer_member_id, acquired=s.acquired, at=s.at,
            )
        )  # fmt: skip
    imported = record_scans(e, bulk, script(m2), batch=4)
    # then the answers and the stored rows are the same
    assert answers(imported, m2) == answers(singly, m1)
    assert stored(store, bulk, m2) == stored(store, one, m1)
    # and they are the ones the script says (the service's own rules, spelled out once)
    got = {(s.scene, s.first_touch, s.flag, s.replayed) for s in imported}
    assert ("A", True, None, False) in got and ("tmp", False, "expired", False) in got
    names = {v: k for k, v in m2.items() if k not in ("x", "y")}
    firsts = sorted(names[s.member_id] for s in imported if s.first_touch and not s.replayed)
    assert firsts == ["kept", "u1", "u2", "u3", "u4", "u5", "u6"]
    assert [s.replayed for s in imported].count(True) == 2  # k1 again, k0
    assert imported[6].referrer_member_id is None  # u3 scanning its own code
    assert imported[11].member_id == m2["kept"]  # the merged member's scan goes to the survivor
    # an import delivered again is all replays, and writes nothing more
    again = record_scans(e, bulk, script(m2), batch=4)
    assert all(s.replayed for s in again)
    assert [s.scan_id for s in again] == [s.scan_id for s in imported]
    assert store.count("qr_scans") == 0  # the fixture's own group saw none
    assert len(stored(store, bulk, m2)) == len(stored(store, one, m1)) == 16


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (ScanIn("A B", "k9"), "scans[2].scene"),
        (ScanIn("A", ""), "scans[2].key"),
        (ScanIn("A", "k9", acquired=True), "scans[2].acquired"),
        (ScanIn("A", "k9", member_id=999_999_999), "scans[2].member_id"),
    ],
)
def test_a_row_that_breaks_a_rule_names_itself_and_nothing_is_applied(
    store: Store, encoder: IdentifierEncoder, row: ScanIn, field: str
) -> None:
    g, e = store.group_id, store.engine
    permanent(e, g, "A")
    m = new_member(e, encoder, g, "u-1")
    good = [ScanIn("A", "k1", member_id=m, at=T0), ScanIn("A", "k2", member_id=m, at=T0)]
    with pytest.raises(ValidationError) as refused:
        record_scans(e, g, [*good, row], batch=2)  # the first batch was written, then undone
    assert refused.value.field == field
    assert store.count("qr_scans") == 0


def test_unknown_codes_referrers_and_reused_keys_apply_nothing(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    permanent(e, g, "A")
    permanent(e, g, "B")
    m = new_member(e, encoder, g, "u-1")
    record_scan(e, g, "A", "before", member_id=m, at=T0)
    good = [ScanIn("A", "k1", member_id=m, at=T0), ScanIn("B", "k2", member_id=m, at=T0)]
    with pytest.raises(NotFoundError, match=r"scans\[2\]\.scene: no code 'nowhere'"):
        record_scans(e, g, [*good, ScanIn("nowhere", "k3", member_id=m)], batch=2)
    with pytest.raises(ValidationError) as refused:
        record_scans(e, g, [*good, ScanIn("A", "k3", referrer_member_id=999_999_999)], batch=2)
    assert refused.value.field == "scans[2].referrer_member_id"
    # a key reused for another scan: earlier in the import, or recorded before it
    with pytest.raises(IdempotencyConflict):
        record_scans(e, g, [*good, ScanIn("B", "k1", member_id=m, at=T0)], batch=2)
    with pytest.raises(IdempotencyConflict):
        record_scans(e, g, [*good, ScanIn("B", "before", member_id=m, at=T0)])
    assert store.count("qr_scans") == 1
    assert record_scans(e, g, []) == []
