"""Stock usable without the demo: from an empty store, `siyu import` (or HQ over the API)
sets up the locations and which channel ships from where; then counts and reservations
work."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.api.conftest import brand
from tests.brandfiles import write
from tests.conftest import Store

from siyu.app import create_app
from siyu.auth.keys import create_key
from siyu.config import Settings
from siyu.privacy import Vault

SECRET = bytes(range(32))


@dataclass
class Setup:
    client: TestClient
    keys: dict[str, str]
    url: str
    store: Store

    def send(self, role: str, method: str, path: str, body: Any = None, key: str = "") -> Any:
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        if key:
            headers["Idempotency-Key"] = key
        return self.client.request(method, path, json=body, headers=headers)


@pytest.fixture
def empty(store: Store, tmp_path: Path) -> Iterator[Setup]:
    """A store with nothing in it but the brand group; an API over it."""
    url = store.engine.url.render_as_string(hide_password=False)
    vault = Vault(SECRET)
    keys = {
        "admin": create_key(store.engine, vault, store.group_id, "admin").secret,
        "store": create_key(store.engine, vault, store.group_id, "store", stores=("S1",)).secret,
        "channel": create_key(
            store.engine, vault, store.group_id, "channel", channel="tmall"
        ).secret,
    }
    app = create_app(Settings(database_url=url, secret_key=SECRET, group_id=store.group_id))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Setup(client, keys, url, store)
    app.state.services.engine.dispose()


def siyu_import(setup: Setup, directory: Path) -> str:
    env = {
        **os.environ,
        "SIYU_DATABASE_URL": setup.url,
        "SIYU_SECRET_KEY": SECRET.hex(),
        "SIYU_GROUP": setup.store.group_id,
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "siyu.cli", "import", str(directory), "--rejects-dir",
         str(directory / "rejects")],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def count_and_reserve(setup: Setup) -> None:
    """The store counts its shelf; Tmall reserves from the warehouse and the store."""
    body = {"on_hand": 4, "reason": "morning count"}
    counted = setup.send("store", "PUT", "/v1/inventory/K1/locations/S1", body, "c-1")
    assert counted.status_code == 200, counted.text
    body = {"delta": 10, "kind": "receive", "reason": "delivery"}
    received = setup.send("admin", "PUT", "/v1/inventory/K1/locations/W1", body, "r-1")
    assert received.status_code == 200, received.text
    seen = setup.send("channel", "GET", "/v1/inventory/K1").json()
    assert seen["channels"] == {"tmall": 4 + 10 - 2}
    order = {"order_id": "TB-1", "lines": [{"sku": "K1", "qty": 5}], "city": "上海"}
    made = setup.send("channel", "POST", "/v1/reservations", order)
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "open"
    more = {"order_id": "TB-2", "lines": [{"sku": "K1", "qty": 11}]}
    assert setup.send("channel", "POST", "/v1/reservations", more).json()["code"] == "out_of_stock"


def test_stock_works_after_siyu_import_alone(empty: Setup, tmp_path: Path) -> None:
    # given a brand's members and orders, and its stock files
    d = brand(tmp_path / "brand")
    write(
        d / "stock_locations.csv",
        [
            {"location_id": "S1", "kind": "store", "store_id": "S1", "city": "上海"},
            {"location_id": "W1", "kind": "warehouse", "city": "上海"},
        ],
    )
    write(
        d / "channel_locations.csv",
        [
            {"channel": "tmall", "location_id": "W1", "safety_stock": "2"},
            {"channel": "tmall", "location_id": "S1", "safety_stock": "2"},
        ],
    )
    write(
        d / "stock.csv",
        [{"location_id": "S1", "sku": "K1", "on_hand": "9", "counted_at": "2024-03-01T08:00"}],
    )
    # when `siyu import` reads the directory into the empty store
    out = siyu_import(empty, d)
    assert "stock_locations" in out and "channel_locations" in out
    assert empty.store.count("members") == 2 and empty.store.count("orders") == 1
    level = empty.send("admin", "GET", "/v1/inventory/K1").json()["locations"]
    assert [(x["location_id"], x["on_hand"]) for x in level] == [("S1", 9)]
    # then stock is counted and moved over the API, and reservations work
    count_and_reserve(empty)


def test_stock_works_after_hq_sets_it_up_over_the_api(empty: Setup, tmp_path: Path) -> None:
    # given only the members and orders imported
    siyu_import(empty, brand(tmp_path / "brand"))
    # when HQ creates the locations and lets Tmall ship from them
    for location, body in (
        ("S1", {"kind": "store", "store_id": "S1", "city": "上海"}),
        ("W1", {"kind": "warehouse", "city": "上海", "lat_e6": 31100000, "lon_e6": 121300000}),
    ):
        made = empty.send("admin", "PUT", f"/v1/stock-locations/{location}", body)
        assert made.status_code == 200, made.text
        blank = {"store_id": None, "lat_e6": None, "lon_e6": None}
        assert made.json() == {"location_id": location, **blank, **body}
    first = empty.send("admin", "PUT", "/v1/channels/tmall/locations/W1", {"safety_stock": 2})
    assert first.json() == {"channel": "tmall", "locations": ["W1"], "safety_stock": 2}
    second = empty.send("admin", "PUT", "/v1/channels/tmall/locations/S1", {})
    assert second.json() == {"channel": "tmall", "locations": ["S1", "W1"], "safety_stock": 2}
    # then stock is counted and moved, and reservations work
    count_and_reserve(empty)
    # and a location changed later keeps its stock
    moved = {"kind": "store", "store_id": "S1", "city": "上海", "lat_e6": 1, "lon_e6": 2}
    assert empty.send("admin", "PUT", "/v1/stock-locations/S1", moved).status_code == 200
    level = empty.send("admin", "GET", "/v1/inventory/K1").json()["locations"]
    assert {x["location_id"]: x["on_hand"] for x in level} == {"S1": 4, "W1": 10}


def test_bad_setup_is_refused_with_field_and_rule(empty: Setup, tmp_path: Path) -> None:
    siyu_import(empty, brand(tmp_path / "brand"))
    for body, field in (
        ({"kind": "store", "store_id": "S9", "city": "上海"}, "store_id"),
        ({"kind": "store", "city": "上海"}, "store_id"),
        ({"kind": "warehouse", "store_id": "S1", "city": "上海"}, "store_id"),
        ({"kind": "warehouse", "city": "上海", "lat_e6": 1}, "lon_e6"),
        ({"kind": "shelf", "city": "上海"}, "kind"),
    ):
        refused = empty.send("admin", "PUT", "/v1/stock-locations/X", body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["errors"][0]["field"] == field
    unknown = empty.send("admin", "PUT", "/v1/channels/nowhere/locations/X", {})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "channel"
    missing = empty.send("admin", "PUT", "/v1/channels/tmall/locations/X", {})
    assert missing.status_code == 404
    assert empty.store.count("stock_locations") == empty.store.count("channel_locations") == 0
    # only HQ sets stock up
    body = {"kind": "store", "store_id": "S1", "city": "上海"}
    assert empty.send("store", "PUT", "/v1/stock-locations/S1", body).status_code == 403
    assert empty.send("channel", "PUT", "/v1/channels/tmall/locations/S1", {}).status_code == 403
