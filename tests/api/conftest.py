"""An API over a small brand, on each dialect, with one key per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from tests.brandfiles import write, write_reference
from tests.conftest import Store
from tests.inventory.helpers import network

from siyu.app import create_app
from siyu.auth.keys import create_key
from siyu.config import DEFAULT_STRONG_TYPES, Settings
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.privacy import Vault

PHONE_1, PHONE_2, NAME_1, NAME_2 = "13812345678", "13900001111", "张三丰", "李四娘"


@dataclass
class Api:
    app: FastAPI
    client: TestClient
    store: Store
    keys: dict[str, str]
    members: dict[str, int]  # member_ref -> member_id
    warehouse: Path  # SIYU_WAREHOUSE of the app: not landed until a test lands it

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def brand(directory: Path) -> Path:
    write_reference(directory)
    write(
        directory / "members.csv",
        [
            {
                "member_ref": "M1",
                "brand_id": "B1",
                "registered_at": "2024-01-01T10:00:00",
                "channel": "pos",
                "card": "C001",
                "birth_date": "1990-04-01",
                "phone": PHONE_1,
                "name": NAME_1,
                "home_store_id": "S1",
            },
            {
                "member_ref": "M2",
                "brand_id": "B2",
                "registered_at": "2024-02-01T10:00:00",
                "channel": "pos",
                "card": "D002",
                "phone": PHONE_2,
                "name": NAME_2,
                "home_store_id": "S2",
            },
        ],
    )
    write(
        directory / "orders.csv",
        [
            {
                "order_id": "O1",
                "brand_id": "B1",
                "channel": "pos",
                "buyer_type": "card",
                "buyer_value": "C001",
                "ordered_at": "2024-01-02T10:00:00",
                "total_fen": "9900",
                "paid_fen": "9900",
                "store_id": "S1",
                "guide_id": "G1",
            },
        ],
    )
    return directory


@pytest.fixture
def api(store: Store, vault: Vault, tmp_path: Path) -> Iterator[Api]:
    import_directory(store.engine, vault, store.group_id, brand(tmp_path / "b"), tmp_path / "r")
    resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    network(store.engine, store.group_id)  # stock locations S1, S2 (stores), W1
    with store.engine.connect() as conn:
        members = dict(
            conn.execute(
                text("SELECT source_ref, member_id FROM members WHERE group_id = :g"),
                {"g": store.group_id},
            ).all()
        )
    keys = {
        "admin": create_key(store.engine, vault, store.group_id, "admin").secret,
        "analyst": create_key(store.engine, vault, store.group_id, "analyst").secret,
        "store": create_key(store.engine, vault, store.group_id, "store", stores=("S1",)).secret,
        "guide": create_key(store.engine, vault, store.group_id, "guide", guide_id="G1").secret,
        "channel": create_key(
            store.engine, vault, store.group_id, "channel", channel="tmall"
        ).secret,
        "member": create_key(
            store.engine, vault, store.group_id, "member", member_id=members["M1"]
        ).secret,
    }
    url = store.engine.url.render_as_string(hide_password=False)
    warehouse = tmp_path / "warehouse.duckdb"
    settings = Settings(
        database_url=url,
        secret_key=bytes(range(32)),
        group_id=store.group_id,
        warehouse=str(warehouse),
    )
    app = create_app(settings, rate_per_second=0)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(app, client, store, keys, members, warehouse)
    app.state.services.engine.dispose()
