"""A small brand whose members' stages are known, so the follow-up tasks they call for
are known: guides G1 and G2, lifecycle stages as of 2024-12-31 with a knee of 4.

    member  orders (paid fen)        last order  guide (last)  stage     task
    N3      3 x 10,000               2024-12-01  G1            new_3     next_order
    R1      2 x 5,000                2024-10-15  G1            at_risk   win back (at risk)
    R2      2 x 5,000                2024-09-15  G1            at_risk   win back (at risk)
    L1      4,000 + 12,000           2024-04-01  G1, then G2   lapsed    win back (lapsed), G2
    F1      1 x 3,000                2024-12-20  G1            new_1     none
    Y1      4 x 2,000                2024-12-10  G1            loyal     none
    Q1      2 x 5,000                2024-10-01  none          at_risk   none (nobody served)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from tests.brandfiles import REFERENCE, write
from tests.conftest import Store
from tests.guides.journey import Journey, make_journey

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.guides.tasks import TaskPlan
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.privacy import Vault

AS_OF = datetime(2024, 12, 31, 10)
# (member, [(ordered_at, paid_fen, guide)], stage)
PEOPLE: dict[str, tuple[list[tuple[str, int, str | None]], str]] = {
    "N3": (
        [("2024-10-01", 10_000, "G1"), ("2024-11-01", 10_000, "G1"), ("2024-12-01", 10_000, "G1")],
        "new_3",
    ),
    "R1": ([("2024-08-01", 5_000, "G1"), ("2024-10-15", 5_000, "G1")], "at_risk"),
    "R2": ([("2024-07-01", 5_000, "G1"), ("2024-09-15", 5_000, "G1")], "at_risk"),
    "L1": ([("2024-03-01", 4_000, "G1"), ("2024-04-01", 12_000, "G2")], "lapsed"),
    "F1": ([("2024-12-20", 3_000, "G1")], "new_1"),
    "Y1": ([(f"2024-12-{d:02d}", 2_000, "G1") for d in (1, 4, 7, 10)], "loyal"),
    "Q1": ([("2024-07-01", 5_000, None), ("2024-10-01", 5_000, None)], "at_risk"),
}
PLAN = TaskPlan(
    knee=4,
    as_of=AS_OF,
    at_risk_days=60,
    lapsed_days=120,
    rates={1: 0.3, 2: 0.4, 3: 0.5, 4: 0.8},
    returns={"at_risk": 0.2, "lapsed": 0.05},
)


@dataclass
class Brand:
    store: Store
    vault: Vault
    members: dict[str, int]
    files: Path

    def order(self, member: str, order_id: str, at: str, paid: int, guide: str | None) -> None:
        """One more order of `member` (imported and resolved as any order is)."""
        rows = [_order(member, order_id, at, paid, guide)]
        directory = self.files / order_id
        write(directory / "orders.csv", rows)
        import_directory(
            self.store.engine, self.vault, self.store.group_id, directory, directory / "r"
        )
        resolve_all(self.store.engine, self.store.group_id, DEFAULT_STRONG_TYPES)

    def set_stage(self, member: str, stage: str, orders: int, last: str) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE member_stages SET stage = :s, orders = :n, last_order_at = :t "
                    "WHERE group_id = :g AND member_id = :m"
                ),
                {
                    "s": stage,
                    "n": orders,
                    "t": datetime.fromisoformat(last),
                    "g": self.store.group_id,
                    "m": self.members[member],
                },
            )

    def task_rows(self) -> list[tuple[str, str, str, str, int, int]]:
        """(member, guide, kind, state, value, urgency) of every task, by task id."""
        names = {v: k for k, v in self.members.items()}
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT member_id, guide_id, kind, state, expected_value_fen, urgency "
                    "FROM guide_tasks WHERE group_id = :g ORDER BY task_id"
                ),
                {"g": self.store.group_id},
            ).all()
        return [(names[r[0]], r[1], r[2], r[3], int(r[4]), int(r[5])) for r in rows]


def _order(
    member: str, order_id: str, at: str, paid: int, guide: str | None
) -> dict[str, str | None]:
    return {
        "order_id": order_id,
        "brand_id": "B1",
        "channel": "pos",
        "buyer_type": "card",
        "buyer_value": f"C-{member}",
        "ordered_at": f"{at}T10:00:00",
        "total_fen": str(paid),
        "paid_fen": str(paid),
        "store_id": "S1",
        "guide_id": guide,
    }


@pytest.fixture
def brand(store: Store, vault: Vault, tmp_path: Path) -> Iterator[Brand]:
    files = tmp_path / "brand"
    for kind, rows in REFERENCE.items():
        if kind == "guides":
            rows = [*rows, {"guide_id": "G2", "store_id": "S1", "alias": "小李"}]
        write(files / f"{kind}.csv", rows)
    write(
        files / "members.csv",
        [
            {
                "member_ref": ref,
                "brand_id": "B1",
                "registered_at": "2024-01-01T10:00:00",
                "channel": "pos",
                "card": f"C-{ref}",
                "name": f"会员{ref}",
                "home_store_id": "S1",
            }
            for ref in PEOPLE
        ],
    )
    write(
        files / "orders.csv",
        [
            _order(ref, f"{ref}-{i}", at, paid, guide)
            for ref, (orders, _) in PEOPLE.items()
            for i, (at, paid, guide) in enumerate(orders)
        ],
    )
    import_directory(store.engine, vault, store.group_id, files, tmp_path / "rejects")
    resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    with store.engine.begin() as conn:
        members = dict(
            conn.execute(
                text("SELECT source_ref, member_id FROM members WHERE group_id = :g"),
                {"g": store.group_id},
            ).all()
        )
        for ref, (orders, stage) in PEOPLE.items():
            conn.execute(
                text(
                    "INSERT INTO member_stages (group_id, member_id, stage, orders, "
                    "last_order_at, computed_at) VALUES (:g, :m, :s, :n, :t, :c)"
                ),
                {
                    "g": store.group_id,
                    "m": members[ref],
                    "s": stage,
                    "n": len(orders),
                    "t": datetime.fromisoformat(f"{orders[-1][0]}T10:00:00"),
                    "c": AS_OF,
                },
            )
    yield Brand(store, vault, members, tmp_path / "more")


@pytest.fixture
def journey(store: Store, vault: Vault, tmp_path: Path) -> Journey:
    """Members M1..M6 and guides G1..G3 (S1), G4 (S2), no facts yet (tests.guides.journey)."""
    return make_journey(store, vault, tmp_path)
