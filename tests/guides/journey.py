"""Hand-made journeys for binding and attribution: a brand with stores S1 (guides G1, G2,
G3) and S2 (guide G4), members M1..M6 registered at S1 with a card each (imported and
resolved as any member is), and helpers that write the facts a journey needs (orders,
events, QR scenes and scans) straight into the store, each at a stated time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from tests.brandfiles import REFERENCE, write
from tests.conftest import Store

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.privacy import Vault

MEMBERS = ("M1", "M2", "M3", "M4", "M5", "M6")
GUIDES = [
    {"guide_id": "G1", "store_id": "S1", "alias": "小王"},
    {"guide_id": "G2", "store_id": "S1", "alias": "小李"},
    {"guide_id": "G3", "store_id": "S1", "alias": "小张"},
    {"guide_id": "G4", "store_id": "S2", "alias": "小陈"},
]


def at(day: int, hour: int = 10) -> datetime:
    """A time in December 2024."""
    return datetime(2024, 12, day, hour)


@dataclass
class Journey:
    store: Store
    members: dict[str, int]
    cards: dict[str, int]  # member -> its card's identity id

    @property
    def g(self) -> str:
        return self.store.group_id

    def _run(self, sql: str, **params: object) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(text(sql), {"g": self.g, **params})

    def order(
        self,
        member: str,
        order_id: str,
        when: datetime,
        guide: str | None = None,
        channel: str = "pos",
        paid: int = 10_000,
        status: str = "paid",
    ) -> None:
        self._run(
            "INSERT INTO orders (group_id, order_id, brand_id, channel, store_id, guide_id, "
            "buyer_identity_id, member_id, status, ordered_at, paid_at, total_fen, "
            "discount_fen, paid_fen) VALUES (:g, :o, 'B1', :ch, :s, :gd, :b, :m, :st, :t, :t, "
            ":p, 0, :p)",
            o=order_id,
            ch=channel,
            s="S1" if channel == "pos" else None,
            gd=guide,
            b=self.cards[member],
            m=self.members[member],
            st=status,
            t=when,
            p=paid,
        )

    def event(
        self, member: str, kind: str, when: datetime, guide: str | None = None, scene: str = ""
    ) -> None:
        self._run(
            "INSERT INTO events (group_id, event_id, type, channel, identity_id, member_id, "
            "occurred_at, guide_id, scene) VALUES (:g, :e, :k, :ch, :i, :m, :t, :gd, :sc)",
            e=f"{member}-{kind}-{when.isoformat()}",
            k=kind,
            ch="wecom" if kind.startswith("wecom") else "miniprogram",
            i=self.cards[member],
            m=self.members[member],
            t=when,
            gd=guide,
            sc=scene or None,
        )

    def scan(self, member: str, scene: str, guide: str, when: datetime) -> None:
        """The member's first scan, of a permanent code naming `guide` (made if new)."""
        self._run(
            "INSERT INTO qr_scenes (group_id, scene, kind, guide_id, store_id, created_at) "
            "SELECT CAST(:g AS VARCHAR(64)), CAST(:sc AS VARCHAR(64)), 'permanent', "
            "CAST(:gd AS VARCHAR(64)), 'S1', :t WHERE NOT EXISTS "
            "(SELECT 1 FROM qr_scenes WHERE group_id = :g AND scene = :sc)",
            sc=scene,
            gd=guide,
            t=when,
        )
        self._run(
            "INSERT INTO qr_scans (group_id, idempotency_key, scene, member_id, first_touch, "
            "at) VALUES (:g, :k, :sc, :m, :ft, :t)",
            k=f"{member}-{scene}",
            sc=scene,
            m=self.members[member],
            ft=True,
            t=when,
        )

    def bindings(self, member: str) -> list[tuple[str, str, str | None]]:
        """(guide, rule, ended reason) of each of the member's bindings, oldest first."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT guide_id, rule, ended_reason FROM guide_bindings WHERE group_id = :g "
                    "AND member_id = :m ORDER BY binding_id"
                ),
                {"g": self.g, "m": self.members[member]},
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def live(self, member: str) -> str | None:
        live = [b for b in self.bindings(member) if b[2] is None]
        assert len(live) <= 1
        return live[0][0] if live else None


def make_journey(store: Store, vault: Vault, tmp_path: Path) -> Journey:
    files = tmp_path / "journey"
    for kind, rows in REFERENCE.items():
        write(files / f"{kind}.csv", GUIDES if kind == "guides" else rows)
    write(
        files / "members.csv",
        [
            {
                "member_ref": ref,
                "brand_id": "B1",
                "registered_at": f"2024-01-0{i + 1}T10:00:00",
                "channel": "pos",
                "card": f"C-{ref}",
                "name": f"会员{ref}",
                "home_store_id": "S1",
            }
            for i, ref in enumerate(MEMBERS)
        ],
    )
    import_directory(store.engine, vault, store.group_id, files, tmp_path / "rejects")
    resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    with store.engine.connect() as conn:
        members = dict(
            conn.execute(
                text("SELECT source_ref, member_id FROM members WHERE group_id = :g"),
                {"g": store.group_id},
            ).all()
        )
        cards = dict(
            conn.execute(
                text(
                    "SELECT m.source_ref, i.identity_id FROM identities i JOIN members m "
                    "ON m.member_id = i.member_id WHERE i.group_id = :g AND i.type = 'card'"
                ),
                {"g": store.group_id},
            ).all()
        )
    assert set(members) == set(MEMBERS), members
    return Journey(store, members, cards)
