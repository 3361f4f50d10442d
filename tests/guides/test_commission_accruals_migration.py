"""Migration 0035 (session 20): an accrual's business time moves from its own posting to
its `commission_accruals` row (`accrued_at`), so the per-order accruals posted before it
read as they did, beside the summary postings written after it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import text

from siyu.guides.commission_statements import statement, unbalanced_accruals
from siyu.importer.service import ensure_group
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

G = "g-0035"
PAID = datetime(2025, 2, 3, 10, 30)
CREATED = datetime(2025, 3, 1)


def test_per_order_accruals_before_0035_keep_their_payment_time(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine, "0034")
    ensure_group(engine, G)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO guide_accounts (group_id, guide_id, created_at) VALUES (:g, 'G1', :t)"
            ),
            {"g": G, "t": CREATED},
        )
        number = conn.execute(
            text("SELECT account_no FROM guide_accounts WHERE group_id = :g"), {"g": G}
        ).scalar_one()
        # the per-order accrual posting of sessions 17 to 19, paid February 3, written March 1
        conn.execute(
            text("""INSERT INTO ledger_postings (posting_id, group_id, idempotency_key,
                      request_sha256, kind, member_id, reference, store_id, business_at,
                      created_at)
                    VALUES (21, :g, 'commission:O1:accrue', 'x', 'cm_accrue', :m, 'O1', 'S1',
                      :paid, :t)"""),
            {"g": G, "m": -number, "paid": PAID, "t": CREATED},
        )
        for asset, amount in (("cm_accrued", -500), ("cm_frozen", 500)):
            conn.execute(
                text("""INSERT INTO ledger_entries (posting_id, group_id, account_id, member_id,
                          asset, amount, business_at, created_at)
                        VALUES (21, :g, 1, :m, :a, :f, :paid, :t)"""),
                {"g": G, "m": -number, "a": asset, "f": amount, "paid": PAID, "t": CREATED},
            )
        conn.execute(
            text("""INSERT INTO commission_accruals (group_id, order_id, guide_id, store_id,
                      rule, rules_version, basis_fen, attribution, commission_fen,
                      freeze_until, posting_id, created_at)
                    VALUES (:g, 'O1', 'G1', 'S1', NULL, 1, 50000, 'till', 500, :f, 21, :t)"""),
            {"g": G, "f": datetime(2025, 2, 10, 10, 30), "t": CREATED},
        )
    upgrade(engine)
    with engine.connect() as conn:
        accrued_at = conn.execute(
            text("SELECT accrued_at FROM commission_accruals WHERE group_id = :g"), {"g": G}
        ).scalar_one()
        assert str(accrued_at)[:19] == "2025-02-03 10:30:00"  # the payment, not the write
        assert unbalanced_accruals(conn, G) == []
        feb = statement(conn, G, "2025-02", guide_id="G1")
    assert [(x.reference, x.business_at, x.commission_fen) for x in feb.lines] == [
        ("O1", PAID, 500)
    ]
    assert feb.totals.accrued_fen == 500
    engine.dispose()
