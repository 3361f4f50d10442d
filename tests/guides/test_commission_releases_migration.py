"""Migration 0034 (session 19): the releases posted one per order before it become a
`commission_releases` row each, pointing at their own posting, so the release job does
not release those orders again and every release posting still equals its rows."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import text

from siyu.guides import commission_accrual as jobs
from siyu.guides.commission_statements import unbalanced_releases
from siyu.importer.service import ensure_group
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

G = "g-0034"
T = datetime(2025, 2, 1)


def test_per_order_releases_before_0034_become_their_rows(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine, "0033")
    ensure_group(engine, G)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO guide_accounts (group_id, guide_id, created_at) VALUES (:g, 'G1', :t)"
            ),
            {"g": G, "t": T},
        )
        for order, posting, fen in (("O1", 11, 500), ("O2", 12, 0)):
            conn.execute(
                text("""INSERT INTO commission_accruals (group_id, order_id, guide_id, rule,
                          rules_version, basis_fen, attribution, commission_fen, freeze_until,
                          posting_id, created_at)
                        VALUES (:g, :o, 'G1', NULL, 1, 10000, 'till', 500, :t, 1, :t)"""),
                {"g": G, "o": order, "t": T},
            )
            # the per-order release posting of session 17 (O2: clawed back in full before
            # its release, a posting that moved nothing)
            conn.execute(
                text("""INSERT INTO ledger_postings (posting_id, group_id, idempotency_key,
                          request_sha256, kind, member_id, reference, business_at, created_at)
                        VALUES (:p, :g, :k, 'x', 'cm_release', -1, :o, :t, :t)"""),
                {"p": posting, "g": G, "k": f"commission:{order}:release", "o": order, "t": T},
            )
            for asset, amount in (("cm_frozen", -fen), ("cm_payable", fen)):
                if amount:
                    conn.execute(
                        text("""INSERT INTO ledger_entries (posting_id, group_id, account_id,
                                  member_id, asset, amount, business_at, created_at)
                                VALUES (:p, :g, 1, -1, :a, :f, :t, :t)"""),
                        {"p": posting, "g": G, "a": asset, "f": amount, "t": T},
                    )
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT order_id, guide_id, posting_id, released_fen FROM commission_releases
                    WHERE group_id = :g ORDER BY order_id"""),
            {"g": G},
        ).all()
        assert [tuple(r) for r in rows] == [("O1", "G1", 11, 500), ("O2", "G1", 12, 0)]
        assert unbalanced_releases(conn, G) == []
    # and the release job finds nothing left to release
    again = jobs.release(engine, G, datetime(2025, 3, 1))
    assert (again.released, again.postings) == (0, 0)
    engine.dispose()
