"""A channel a third party registers through the public path appears wherever a built-in
does: the catalog's names, import validation (files and the batch path), and the
`channels` table after `siyu migrate`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from tests.brandfiles import write, write_reference
from tests.conftest import Store

import siyu.channels
from siyu.catalog.models import CHANNELS, ONLINE_CHANNELS
from siyu.channels import Channel, Label
from siyu.identity.types import phone_hash_of
from siyu.importer.service import import_directory, import_file, import_rows
from siyu.privacy import Vault
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

XHS = Channel("xhs", "marketplace", ("phone_hash",), Label("小红书", "Xiaohongshu"))


@pytest.fixture
def xhs(request: pytest.FixtureRequest) -> Iterator[Channel]:
    """XHS registered for one test. A store the test uses is migrated before, as a
    deployment's would be: the session's PostgreSQL store must not keep its row."""
    store: Store | None = None
    if "store" in request.fixturenames:
        store = request.getfixturevalue("store")
    siyu.channels.register(XHS)
    try:
        yield XHS
    finally:
        siyu.channels.registry.unregister(XHS.code)
        if store is not None:
            with store.engine.begin() as conn:
                conn.execute(text("DELETE FROM channels WHERE channel_id = 'xhs'"))


def _order(order_id: str, channel: str) -> dict[str, str]:
    return {
        "order_id": order_id,
        "brand_id": "B1",
        "channel": channel,
        "buyer_type": "phone_hash",
        "buyer_value": phone_hash_of("+8613812345678"),
        "ordered_at": "2024-05-01T12:00:00",
        "total_fen": "5000",
        "paid_fen": "4500",
    }


def _reference(store: Store, vault: Vault, tmp_path: Path) -> None:
    write_reference(tmp_path / "ref")
    import_directory(store.engine, vault, store.group_id, tmp_path / "ref", tmp_path / "rej")


def test_it_is_in_the_catalog_names(xhs: Channel) -> None:
    assert CHANNELS["xhs"] == "marketplace"
    assert list(CHANNELS)[-1] == "xhs"
    assert "xhs" in ONLINE_CHANNELS
    assert siyu.channels.get("xhs") is xhs


def test_it_is_gone_once_withdrawn() -> None:
    assert "xhs" not in CHANNELS and "xhs" not in ONLINE_CHANNELS


def test_an_order_file_on_it_imports(
    xhs: Channel, store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given the reference data and an order file on the new channel and on an unknown one
    _reference(store, vault, tmp_path)
    path = write(tmp_path / "orders.csv", [_order("X-1", "xhs"), _order("X-2", "weibo")])
    # when it is imported
    report = import_file(store.engine, vault, store.group_id, "orders", path, tmp_path / "rej")
    # then the new channel's order is accepted, and the unknown channel's rule names it
    assert (report.accepted, report.rejected) == (1, 1)
    assert store.count("orders") == 1
    rejects = Path(report.rejects_path or "").read_text(encoding="utf-8")
    assert "channel: must be one of: douyin, jd, miniprogram" in rejects
    assert "wecom, xhs, youzan" in rejects


def test_an_order_batch_on_it_imports(
    xhs: Channel, store: Store, vault: Vault, tmp_path: Path
) -> None:
    _reference(store, vault, tmp_path)
    rows = [_order("X-3", "xhs"), _order("X-4", "weibo")]
    done = import_rows(store.engine, vault, store.group_id, "orders", rows)
    assert done.errors[0] is None
    assert (done.errors[1] or "").startswith("channel: must be one of:")
    assert done.report.inserted == 1


def test_migrate_gives_it_a_row(store: Store) -> None:
    def rows() -> dict[str, str]:
        with store.engine.connect() as conn:
            found = conn.execute(text("SELECT channel_id, kind FROM channels"))
            return {row.channel_id: row.kind for row in found}

    # given a store migrated before the channel was registered
    assert "xhs" not in rows()
    siyu.channels.register(XHS)
    try:
        # when it is migrated again (a no-op for the schema), twice
        upgrade(store.engine)
        upgrade(store.engine)
        # then the channel has its row, once, beside the built-ins
        assert rows() == {**dict(CHANNELS), "xhs": "marketplace"}
    finally:
        siyu.channels.registry.unregister(XHS.code)
        with store.engine.begin() as conn:  # the PostgreSQL store is shared by the session
            conn.execute(text("DELETE FROM channels WHERE channel_id = 'xhs'"))


def test_a_fresh_store_has_it_from_the_start(xhs: Channel, tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        upgrade(engine)
        with engine.connect() as conn:
            kind = conn.execute(
                text("SELECT kind FROM channels WHERE channel_id = 'xhs'")
            ).scalar_one()
        assert kind == "marketplace"
    finally:
        engine.dispose()
