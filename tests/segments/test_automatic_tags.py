"""Automatic tags: every tag equals an independent pandas computation from the raw tables
(autotag_reference.py) on a generated brand, landed and read on DuckDB and on Spark, and on
UCI Online Retail; the refresh writes them back with history, and hand-made edge cases
(ties, only cancelled orders, a merge, a second refresh) do what docs/segments.md says."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ibis import BaseBackend
from sqlalchemy import Engine, text
from tests.analytics.data import shared_file
from tests.analytics.store_brand import T1, event, import_and_resolve, write_brand
from tests.brandfiles import write
from tests.conftest import Store
from tests.segments import autotag_reference as ref
from typer.testing import CliRunner

from siyu.analytics.engines import connect, engine_name, load_arrow, to_arrow
from siyu.analytics.landing import land
from siyu.analytics.schema import TABLES
from siyu.analytics.snapshot import compute_snapshots
from siyu.analytics.stages import StageConfig
from siyu.analytics.warehouse import Warehouse, open_warehouse
from siyu.catalog.models import ONLINE_CHANNELS
from siyu.cli import app
from siyu.config import DEFAULT_STRONG_TYPES
from siyu.demo.config import GeneratorConfig
from siyu.demo.generate import generate
from siyu.errors import ValidationError
from siyu.identity.resolve import resolve_all
from siyu.importer.service import ensure_group, import_directory
from siyu.privacy import Vault
from siyu.segments.automatic import CATALOGUE, refresh_automatic_tags
from siyu.segments.automatic import warehouse_tags as wt
from siyu.segments.automatic.refresh import warehouse_facts
from siyu.segments.automatic.warehouse_tags import facts
from siyu.segments.tags import archive_tag, define_tag
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

WAREHOUSE_TAGS = [t for t in CATALOGUE if t.side == "warehouse"]
STORE_TAGS = [t for t in CATALOGUE if t.side == "store"]


def frame(engine: Engine, sql: str, group_id: str) -> pd.DataFrame:
    with engine.connect() as conn:
        result = conn.execute(text(sql), {"g": group_id})
        return pd.DataFrame(result.all(), columns=list(result.keys()))


def raw_tables(engine: Engine, group_id: str) -> dict[str, pd.DataFrame]:
    """The store's own rows (orders carry their current member after OneID)."""
    sql = {
        "orders": "SELECT order_id, member_id, status, ordered_at, channel, store_id, brand_id, "
        "discount_fen, paid_fen FROM orders WHERE group_id = :g",
        "lines": "SELECT order_id, sku, qty, amount_fen FROM order_lines WHERE group_id = :g",
        "events": "SELECT member_id, type, occurred_at FROM events WHERE group_id = :g",
        "refunds": "SELECT order_id, amount_fen FROM refunds WHERE group_id = :g",
        "products": "SELECT sku, category FROM products WHERE group_id = :g",
        "stores": "SELECT store_id, city FROM stores WHERE group_id = :g",
        "members": "SELECT member_id, status, gender, birth_date, registered_at FROM members "
        "WHERE group_id = :g",
        "identities": "SELECT member_id, type, source_channel FROM identities "
        "WHERE group_id = :g AND member_id IS NOT NULL",
        "stages": "SELECT member_id, stage FROM member_stages WHERE group_id = :g",
        "rfm": "SELECT member_id, segment FROM member_rfm WHERE group_id = :g",
        "clv": "SELECT member_id, clv_fen FROM member_clv WHERE group_id = :g",
        "tiers": "SELECT member_id, scope_key, tier_code FROM member_tiers WHERE group_id = :g",
    }
    return {name: frame(engine, query, group_id) for name, query in sql.items()}


def data_end(raw: dict[str, pd.DataFrame]) -> datetime:
    """The documented as-of time: the newest order, event or registration."""
    times = [raw["orders"].ordered_at, raw["events"].occurred_at, raw["members"].registered_at]
    latest = max(pd.to_datetime(t).max() for t in times if len(t))
    return latest.to_pydatetime()


def expected(raw: dict[str, pd.DataFrame], as_of: datetime) -> dict[str, ref.Tagged]:
    members = raw["members"]
    active = set(members.member_id[members.status == "active"].astype(int))
    t = int(pd.Timestamp(as_of).value // 1_000_000_000)
    tags = ref.warehouse_tags(
        raw["orders"],
        raw["lines"],
        raw["events"],
        raw["products"],
        raw["stores"],
        active,
        t,
        set(ONLINE_CHANNELS),
    )
    tags["auto.affinity"] = ref.affinity(raw["orders"], raw["refunds"], raw["events"], active, t)
    return tags | ref.store_tags(
        members,
        raw["identities"],
        raw["stages"],
        raw["rfm"],
        raw["clv"],
        raw["tiers"],
        as_of.date(),
    )


def as_tagged(rows: pa.Table) -> ref.Tagged:
    out = dict(zip(rows["member_id"].to_pylist(), rows["value"].to_pylist(), strict=True))
    assert len(out) == rows.num_rows, "one row per member"
    return out


def held(engine: Engine, group_id: str) -> dict[str, ref.Tagged]:
    rows = frame(
        engine,
        "SELECT t.slug, mt.member_id, mt.value FROM member_tags mt JOIN tags t "
        "ON t.tag_id = mt.tag_id WHERE mt.group_id = :g AND t.kind = 'automatic'",
        group_id,
    )
    out: dict[str, ref.Tagged] = {t.slug: {} for t in CATALOGUE}
    for slug, member, value in rows.itertuples(index=False, name=None):
        out[slug][int(member)] = value
    return out


def history_rows(engine: Engine, group_id: str) -> int:
    return int(
        frame(
            engine, "SELECT COUNT(*) AS n FROM member_tag_history WHERE group_id = :g", group_id
        ).n[0]
    )


# --- a generated brand ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A generated brand (four months) imported into SQLite, resolved by OneID, landed as a
    DuckDB file and as Parquet, with stages, RFM and CLV written back by a snapshot."""
    root = tmp_path_factory.mktemp("autotags")
    generate(root / "brand", GeneratorConfig(members=600, seed=31, days=120))
    engine = make_engine(f"sqlite:///{root / 'siyu.db'}")
    upgrade(engine)
    ensure_group(engine, "g1")
    import_directory(engine, Vault(bytes(range(32))), "g1", root / "brand", root / "rejects")
    resolve_all(engine, "g1", DEFAULT_STRONG_TYPES)
    land(engine, "g1", root / "siyu.duckdb")
    land(engine, "g1", root / "lake", "parquet")
    compute_snapshots(engine, "g1", root / "siyu.duckdb", StageConfig(knee=3, window_days=60))
    raw = raw_tables(engine, "g1")
    yield {"root": root, "engine": engine, "raw": raw, "as_of": data_end(raw)}
    engine.dispose()


def test_every_engine_computes_the_warehouse_tags_as_pandas_does(
    con: BaseBackend, demo: dict[str, Any]
) -> None:
    # given the landed brand: DuckDB reads its file, Spark the Parquet warehouse
    where = demo["root"] / ("siyu.duckdb" if engine_name(con) == "duckdb" else "lake")
    wh = open_warehouse(con, where, "g1")
    as_of = demo["as_of"]
    assert wh.data_end() == as_of
    want = expected(demo["raw"], as_of)
    # when each warehouse tag's expression runs, then it holds the pandas members and values
    with warehouse_facts(demo["engine"], wh, as_of) as inputs:
        for tag in WAREHOUSE_TAGS:
            got = as_tagged(to_arrow(con, tag.compute(inputs)))
            assert got == want[tag.slug], tag.slug
    # and the data is rich enough for every tag to mean something
    sizes = {t.slug: len(want[t.slug]) for t in WAREHOUSE_TAGS}
    assert min(sizes.values()) > 5, sizes
    assert len(set(want["auto.preferred_channel"].values())) > 2
    assert {"none", "low", "high"} <= set(want["auto.discount_sensitivity"].values())
    assert set(want["auto.price_band"].values()) == {"low", "mid", "high"}


def test_refresh_writes_every_tag_and_a_second_refresh_changes_nothing(
    demo: dict[str, Any],
) -> None:
    engine, raw = demo["engine"], demo["raw"]
    con = connect("duckdb")
    wh = open_warehouse(con, demo["root"] / "siyu.duckdb", "g1")
    lines: list[str] = []
    # when the automatic tags are refreshed
    report = refresh_automatic_tags(engine, wh, "g1", progress=lambda t: lines.append(t.slug))
    # then each tag's holders and values are the pandas ones, store-side tags included
    want = expected(raw, demo["as_of"])
    got = held(engine, "g1")
    for tag in CATALOGUE:
        assert got[tag.slug] == want[tag.slug], tag.slug
    assert lines == [t.slug for t in CATALOGUE]
    by_slug = {t.slug: t for t in report.tags}
    assert all(by_slug[s].entered == by_slug[s].size == len(want[s]) for s in by_slug)
    for slug in (
        "auto.stage",
        "auto.rfm",
        "auto.clv_band",
        "auto.contact_method",
        "auto.gender",
        "auto.birth_month",
        "auto.age_band",
        "auto.affinity",
    ):
        assert len(want[slug]) > 50, slug
    assert {"medium", "low"} <= set(want["auto.affinity"].values())
    # and merged members (OneID merged some) hold none
    merged = set(raw["members"].member_id[raw["members"].status == "merged"].astype(int))
    assert merged
    assert not merged & {m for tagged in got.values() for m in tagged}
    # and each tag is defined as automatic, owned by the system, refreshed nightly
    defined = frame(
        engine, "SELECT slug, kind, owner, refresh, definition FROM tags WHERE group_id = :g", "g1"
    )
    assert set(defined.slug) == {t.slug for t in CATALOGUE}
    assert set(zip(defined.kind, defined.owner, defined.refresh, strict=True)) == {
        ("automatic", "system", "nightly")
    }
    # when it runs again on the same data, then nothing changes and no history is written
    before = history_rows(engine, "g1")
    again = refresh_automatic_tags(engine, wh, "g1")
    assert [(t.entered, t.left, t.changed) for t in again.tags] == [(0, 0, 0)] * len(CATALOGUE)
    assert history_rows(engine, "g1") == before
    con.disconnect()


# --- UCI Online Retail ------------------------------------------------------------------------


def _landed(name: str, columns: dict[str, Any]) -> pa.Table:
    """A table shaped like the warehouse's `name`, the missing columns null."""
    schema = TABLES[name].schema()
    n = len(next(iter(columns.values())))
    return pa.table(
        {f.name: pa.array(columns.get(f.name, [None] * n), f.type) for f in schema}, schema=schema
    )


@pytest.fixture(scope="module")
def retail() -> dict[str, Any]:
    """UCI invoices as orders (CustomerID the member, 'C' invoices cancelled). Its own
    columns stand in for what it lacks: the country is the store (and the city), invoices
    before noon are the till's and later ones online, the first two characters of the
    StockCode are the category and its first character the brand (of the invoice's first
    line); no discounts, no events."""
    raw = pq.read_table(shared_file("online_retail", "online_retail_uci352_full.parquet"))
    df = raw.to_pandas()
    df = df[df.CustomerID.notna()].copy()
    df["member_id"] = df.CustomerID.astype("int64")
    df["sku"] = df.StockCode.astype(str)
    df["amount_fen"] = (df.Quantity * df.UnitPrice * 100).round().astype("int64")
    invoices = df.groupby("InvoiceNo").agg(
        member_id=("member_id", "first"),
        ordered_at=("InvoiceDate", "min"),
        country=("Country", "first"),
        sku=("sku", "first"),
        paid_fen=("amount_fen", "sum"),
    )
    orders = pd.DataFrame(
        {
            "order_id": invoices.index,
            "member_id": invoices.member_id.to_numpy(),
            "status": ["cancelled" if i.startswith("C") else "paid" for i in invoices.index],
            "ordered_at": invoices.ordered_at.to_numpy(),
            "channel": ["pos" if t.hour < 12 else "tmall" for t in invoices.ordered_at],
            "store_id": invoices.country.to_numpy(),
            "brand_id": ["B" + s[:1] for s in invoices.sku],
            "discount_fen": 0,
            "paid_fen": invoices.paid_fen.to_numpy(),
        }
    )
    lines = pd.DataFrame(
        {
            "order_id": df.InvoiceNo.to_numpy(),
            "sku": df.sku.to_numpy(),
            "qty": df.Quantity.astype("int64").to_numpy(),
            "amount_fen": df.amount_fen.to_numpy(),
        }
    )
    skus = sorted(set(df.sku))
    products = pd.DataFrame({"sku": skus, "category": [s[:2] for s in skus]})
    countries = sorted(set(df.Country))
    stores = pd.DataFrame({"store_id": countries, "city": countries})
    members = sorted(set(df.member_id))
    return {
        "orders": orders,
        "lines": lines,
        "products": products,
        "stores": stores,
        "members": members,
    }


def retail_warehouse(con: BaseBackend, data: dict[str, Any]) -> Warehouse:
    o, ln = data["orders"], data["lines"]
    ordered = pa.array(o.ordered_at, pa.timestamp("us"))
    of = ln[["order_id"]].merge(o[["order_id", "member_id", "status", "ordered_at"]], how="left")
    tables = {
        "orders": _landed(
            "orders",
            {
                "group_id": ["uci"] * len(o),
                "order_id": o.order_id,
                "brand_id": o.brand_id,
                "channel": o.channel,
                "store_id": o.store_id,
                "member_id": o.member_id,
                "buyer_identity_id": o.member_id,
                "status": o.status,
                "ordered_at": ordered,
                "total_fen": o.paid_fen,
                "discount_fen": o.discount_fen,
                "paid_fen": o.paid_fen,
            },
        ),
        "order_lines": _landed(
            "order_lines",
            {
                "group_id": ["uci"] * len(ln),
                "order_id": ln.order_id,
                "sku": ln.sku,
                "qty": ln.qty,
                "amount_fen": ln.amount_fen,
                # each line with its order's buyer, time and status, as landing gives them
                "member_id": of.member_id,
                "buyer_identity_id": of.member_id,
                "status": of.status,
                "ordered_at": pa.array(of.ordered_at, pa.timestamp("us")),
            },
        ),
        "members": _landed(
            "members",
            {
                "group_id": ["uci"] * len(data["members"]),
                "member_id": data["members"],
                "status": ["active"] * len(data["members"]),
            },
        ),
    }
    loaded = {name: load_arrow(con, table, f"uci_{name}") for name, table in tables.items()}
    for name in ("events", "identities", "refunds"):  # none: OneID keeps the landed member
        loaded[name] = ibis.memtable(TABLES[name].schema().empty_table())
    return Warehouse(con, "uci", "uci", loaded)


@pytest.mark.slow
def test_warehouse_tags_match_pandas_on_online_retail(retail: dict[str, Any]) -> None:
    # given the invoices as a warehouse on DuckDB, as of the last invoice
    con = connect("duckdb")
    wh = retail_warehouse(con, retail)
    as_of = pd.Timestamp(retail["orders"].ordered_at.max()).to_pydatetime()
    products = load_arrow(con, pa.Table.from_pandas(retail["products"]), "uci_products")
    stores = load_arrow(con, pa.Table.from_pandas(retail["stores"]), "uci_stores")
    inputs = facts(wh, products, stores, as_of, sorted(ONLINE_CHANNELS))
    t = int(pd.Timestamp(as_of).value // 1_000_000_000)
    empty_events = pd.DataFrame({"member_id": [], "type": [], "occurred_at": []})
    want = ref.warehouse_tags(
        retail["orders"],
        retail["lines"],
        empty_events,
        retail["products"],
        retail["stores"],
        set(retail["members"]),
        t,
        set(ONLINE_CHANNELS),
    )
    # when each warehouse tag runs, then it equals the pandas computation
    for tag in WAREHOUSE_TAGS:
        got = as_tagged(to_arrow(con, tag.compute(inputs)))
        assert got == want[tag.slug], tag.slug
    # and the real data exercises them: thousands of buyers, several bands and choices
    assert len(want["auto.preferred_category"]) > 3_000
    assert len(want["auto.online_offline"]) > 10
    assert set(want["auto.recency"].values()) == {"0-30", "31-90", "91-180", "181-365", "366+"}
    assert set(want["auto.frequency"].values()) == {"1", "2-3", "4-9", "10+"}
    con.disconnect()


# --- hand-made edge cases ---------------------------------------------------------------------


def _member(engine: Engine, group_id: str, order_id: str) -> int:
    sql = "SELECT member_id FROM orders WHERE group_id = :g AND order_id = :o"
    with engine.connect() as conn:
        return int(conn.execute(text(sql), {"g": group_id, "o": order_id}).scalar_one())


def _refresh(store: Store, where: Path) -> dict[str, Any]:
    land(store.engine, store.group_id, where)
    con = connect("duckdb")
    try:
        wh = open_warehouse(con, where, store.group_id)
        report = refresh_automatic_tags(store.engine, wh, store.group_id)
    finally:
        con.disconnect()
    return {t.slug: t for t in report.tags}


def test_ties_cancelled_orders_merges_and_leaves(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given the small brand: M1 (O1 at the till), M2 (O2, O5), M3 (only a cancelled order)
    # and the Tmall buyer T-1 (O4), a member of its own
    import_and_resolve(store.engine, vault, store.group_id, write_brand(tmp_path / "brand"))
    m1, m2, t1 = (_member(store.engine, store.group_id, o) for o in ("O1", "O2", "O4"))
    m3 = _member(store.engine, store.group_id, "O3")
    warehouse = tmp_path / "siyu.duckdb"
    # when the tags are refreshed
    _refresh(store, warehouse)
    got = held(store.engine, store.group_id)
    # then each buyer prefers its only channel and the cancelled-only member holds no
    # order-based tag
    assert got["auto.preferred_channel"] == {m1: "pos", m2: "pos", t1: "tmall"}
    assert all(m3 not in got[t.slug] for t in WAREHOUSE_TAGS)
    assert got["auto.online_offline"] == {}
    # when an identity link ties T-1 to M1's card and OneID merges the two
    write(
        tmp_path / "link" / "identities.csv",
        [
            {
                "type": "card",
                "value": "C001",
                "scope": "B1",
                "channel": "tmall",
                "observed_at": "2024-03-10T10:00:00",
                "verified": "true",
                "linked_type": T1[0],
                "linked_value": T1[1],
            }
        ],
    )
    import_directory(store.engine, vault, store.group_id, tmp_path / "link", tmp_path / "rej")
    resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    survivor = _member(store.engine, store.group_id, "O1")
    gone = t1 if survivor == m1 else m1
    assert _member(store.engine, store.group_id, "O4") == survivor
    report = _refresh(store, warehouse)
    got = held(store.engine, store.group_id)
    # then the survivor has one order at the till (03-01) and one on Tmall (03-03): a tie
    # the later order breaks; it buys online and offline; the merged member holds nothing
    assert got["auto.preferred_channel"] == {survivor: "tmall", m2: "pos"}
    assert got["auto.online_offline"] == {survivor: None}
    assert all(gone not in tagged for tagged in got.values())
    # and the merged member's leaving is in the history, as is the survivor's new value
    changes = frame(
        store.engine,
        "SELECT t.slug, h.member_id, h.change, h.value FROM member_tag_history h "
        "JOIN tags t ON t.tag_id = h.tag_id WHERE h.group_id = :g AND h.by = 'system'",
        store.group_id,
    )
    channel = changes[changes.slug == "auto.preferred_channel"]
    last = channel.groupby("member_id").tail(1).set_index("member_id").change.to_dict()
    assert last[gone] == "leave"
    if survivor == m1:  # M1 went from pos to tmall; T-1's member would have entered again
        assert last[survivor] == "value"
    assert report["auto.preferred_channel"].left == 1
    assert report["auto.online_offline"].entered == 1


def test_content_and_social_events_are_imported_and_tagged(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given the small brand (data end T = 2024-03-05 08:00) and, imported after it, M1's
    # three reads within 30 days and one exactly 30 days before T (outside: the window is
    # (T - 30 days, T]), T-1's like 89 days before T, and M2's survey answer
    import_and_resolve(store.engine, vault, store.group_id, write_brand(tmp_path / "brand"))
    m1, m2, t1 = (_member(store.engine, store.group_id, o) for o in ("O1", "O2", "O4"))
    m1_card, m2_card = ("card", "C001"), ("card", "D002")
    write(
        tmp_path / "social" / "events.csv",
        [
            event("R1", "read", "2024-03-05T08:00:00", m1_card),
            event("R2", "read", "2024-02-20T08:00:00", m1_card),
            event("R3", "read", "2024-02-04T08:00:01", m1_card),
            event("R4", "read", "2024-02-04T08:00:00", m1_card),
            event("L1", "like", "2023-12-07T08:00:00", T1),
            event("S1", "survey", "2024-01-15T12:00:00", m2_card),
        ],
    )
    report = import_directory(
        store.engine, vault, store.group_id, tmp_path / "social", tmp_path / "rejects"
    )
    assert not list((tmp_path / "rejects").glob("*")), report
    # when the tags are refreshed
    _refresh(store, tmp_path / "siyu.duckdb")
    got = held(store.engine, store.group_id)
    # then
    assert got["auto.read"] == {m1: "3-9"}
    assert got["auto.like"] == {t1: "1-2"}
    assert got["auto.survey"] == {m2: "1-2"}


def test_store_side_tags_copy_tiers_and_band_ages_on_the_birthday(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given the small brand (data end 2024-03-05 08:00) with a tier per member, M2's per
    # brand, M1 18 on that very day and M2 18 the day after, and M1's phone
    import_and_resolve(store.engine, vault, store.group_id, write_brand(tmp_path / "brand"))
    m1, m2, t1 = (_member(store.engine, store.group_id, o) for o in ("O1", "O2", "O4"))
    tiers = [(m1, "*", "gold"), (m2, "B2", "gold"), (m2, "B1", "silver")]
    people = [(m1, "f", "2006-03-05"), (m2, "m", "2006-03-06"), (t1, "u", None)]
    with store.engine.begin() as conn:
        for member, scope, code in tiers:
            conn.execute(
                text(
                    "INSERT INTO member_tiers (group_id, member_id, scope_key, tier_code, since) "
                    "VALUES (:g, :m, :s, :c, '2024-01-01 00:00:00')"
                ),
                {"g": store.group_id, "m": member, "s": scope, "c": code},
            )
        for member, gender, born in people:
            conn.execute(
                text("UPDATE members SET gender = :x, birth_date = :b WHERE member_id = :m"),
                {"x": gender, "b": None if born is None else date.fromisoformat(born), "m": member},
            )
    # when the tags are refreshed
    _refresh(store, tmp_path / "siyu.duckdb")
    got = held(store.engine, store.group_id)
    # then tiers are copied (per-brand ones in scope order), the unknown gender is left out,
    # birth months have no day or year, and the age counts whole years to the data's end
    assert got["auto.tier"] == {m1: "gold", m2: "B1:silver,B2:gold"}
    assert got["auto.gender"] == {m1: "f", m2: "m"}
    assert got["auto.birth_month"] == {m1: "03", m2: "03"}
    assert got["auto.age_band"] == {m1: "18-24", m2: "<18"}
    # and both gave a phone (SMS); the Tmall buyer has no reachable identifier
    assert got["auto.contact_method"] == {m1: "sms", m2: "sms"}


def test_a_slug_of_another_kind_is_refused_and_an_archived_tag_is_skipped(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    import_and_resolve(store.engine, vault, store.group_id, write_brand(tmp_path / "brand"))
    land(store.engine, store.group_id, tmp_path / "siyu.duckdb")
    con = connect("duckdb")
    wh = open_warehouse(con, tmp_path / "siyu.duckdb", store.group_id)
    # given a manual tag holding an automatic tag's slug (define_tag refuses one now; a
    # store from before that rule may still hold one)
    with store.engine.begin() as conn:
        define_tag(
            conn,
            store.group_id,
            "auto.gender",
            name_zh="性别",
            name_en="Gender",
            kind="automatic",
            owner="hq",
        )
        conn.execute(text("UPDATE tags SET kind = 'manual' WHERE slug = 'auto.gender'"))
    # then the refresh refuses, naming the slug
    with pytest.raises(ValidationError, match=r"auto\.gender"):
        refresh_automatic_tags(store.engine, wh, store.group_id)
    # given it archived instead of manual: it takes no writes and the rest are refreshed
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM tags WHERE slug = 'auto.gender'"))
    only = ["auto.gender", "auto.preferred_channel"]
    refresh_automatic_tags(store.engine, wh, store.group_id, only=only)
    with store.engine.begin() as conn:
        archive_tag(conn, store.group_id, "auto.gender")
    report = refresh_automatic_tags(store.engine, wh, store.group_id, only=only)
    assert [(t.slug, t.skipped) for t in report.tags] == [
        ("auto.preferred_channel", None),
        ("auto.gender", "archived"),
    ]
    # and an unknown slug is refused before anything runs
    with pytest.raises(ValidationError, match=r"auto\.nope"):
        refresh_automatic_tags(store.engine, wh, store.group_id, only=["auto.nope"])
    con.disconnect()


def test_siyu_tags_refresh_prints_a_line_per_tag(tmp_path: Path) -> None:
    # given a SQLite store holding the small brand, landed in SIYU_WAREHOUSE
    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    engine = make_engine(url)
    upgrade(engine)
    ensure_group(engine, "shop")
    import_and_resolve(engine, Vault(bytes(range(32))), "shop", write_brand(tmp_path / "brand"))
    land(engine, "shop", tmp_path / "siyu.duckdb")
    engine.dispose()
    env = {
        "SIYU_DATABASE_URL": url,
        "SIYU_SECRET_KEY": bytes(range(32)).hex(),
        "SIYU_GROUP": "shop",
        "SIYU_WAREHOUSE": str(tmp_path / "siyu.duckdb"),
        "COLUMNS": "200",
    }
    # when `siyu tags refresh` runs for two tags
    only = ["--only", "auto.preferred_channel", "--only", "auto.multi_brand"]
    result = CliRunner().invoke(app, ["tags", "refresh", *only], env=env)
    # then it prints one line per tag as written, then the total
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("auto.preferred_channel: 3 members, +3 -0 ~0 (")
    assert lines[1].startswith("auto.multi_brand: 0 members, +0 -0 ~0 (")
    assert lines[2].startswith("2 automatic tags as of 2024-03-05 08:00:00 in ")
    # and --json prints the report, here with nothing changed
    again = CliRunner().invoke(app, ["tags", "refresh", *only, "--json"], env=env)
    report = json.loads(again.stdout)
    assert [(t["slug"], t["size"], t["entered"]) for t in report["tags"]] == [
        ("auto.preferred_channel", 3, 0),
        ("auto.multi_brand", 0, 0),
    ]
    # and an unknown tag is refused naming the option
    bad = CliRunner().invoke(app, ["tags", "refresh", "--only", "auto.nope"], env=env)
    assert bad.exit_code != 0
    assert "only" in bad.output


def test_every_automatic_tag_is_documented_with_its_rule_and_window() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "segments.md").read_text(encoding="utf-8")
    section = docs[docs.index("# Automatic tags") :]
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in section.splitlines()
        if "`auto." in line[:8]
    }
    assert sorted(rows) == sorted(t.slug for t in CATALOGUE)
    # each row says the rule the console shows (the docs mark a value's code in backticks)
    for tag in CATALOGUE:
        assert tag.rule in rows[tag.slug].replace("`", ""), tag.slug
    for tag in WAREHOUSE_TAGS:
        window = "all data" if tag.window_days is None else f"{tag.window_days} days"
        assert rows[tag.slug].rstrip(" |").endswith(window), tag.slug


def test_bands_on_their_edges() -> None:
    # given six buyers on one day: average item prices 10, 10, 20, 30, 40 and 50 fen (two
    # equal), and buyer 1 with one discounted order of three (exactly 1/3)
    at = pd.Timestamp("2024-03-01 10:00:00")
    prices = {1: 10, 2: 10, 3: 20, 4: 30, 5: 40, 6: 50}
    orders = pd.DataFrame(
        {
            "order_id": [f"O{m}-{k}" for m in prices for k in range(3)],
            "member_id": [m for m in prices for _ in range(3)],
            "status": "paid",
            "ordered_at": at,
            "channel": "pos",
            "store_id": "S1",
            "brand_id": "B1",
            "discount_fen": [1 if (m, k) == (1, 0) else 0 for m in prices for k in range(3)],
            "paid_fen": [2 * prices[m] for m in prices for _ in range(3)],
        }
    )
    lines = pd.DataFrame(
        {
            "order_id": orders.order_id,
            "sku": "K1",
            "qty": 2,
            "amount_fen": orders.paid_fen,
        }
    )
    con = connect("duckdb")
    wh = retail_warehouse(con, {"orders": orders, "lines": lines, "members": sorted(prices)})
    empty = pa.table({"sku": pa.array([], pa.string()), "category": pa.array([], pa.string())})
    none = load_arrow(con, empty, "edge_products")
    stores = load_arrow(con, empty.rename_columns(["store_id", "city"]), "edge_stores")
    inputs = facts(wh, none, stores, at.to_pydatetime(), sorted(ONLINE_CHANNELS))
    by_slug = {t.slug: t for t in WAREHOUSE_TAGS}

    def run(slug: str) -> ref.Tagged:
        return as_tagged(to_arrow(con, by_slug[slug].compute(inputs)))

    # then ranks 0, 0, 2, 3, 4, 5 of 6: low while 3 x rank < 6 (rank 2 is on the edge: mid),
    # mid while < 12 (rank 4 on the edge: high), then high
    bands = {1: "low", 2: "low", 3: "mid", 4: "mid", 5: "high", 6: "high"}
    assert run("auto.price_band") == bands
    # and one order in three discounted is not under 1/3: mid
    others = {m: "none" for m in range(2, 7)}
    assert run("auto.discount_sensitivity") == {1: "mid", **others}
    # and three orders are the 2-3 band; an order at T itself is within every window
    assert set(run("auto.frequency").values()) == {"2-3"}
    assert set(run("auto.recency").values()) == {"0-30"}
    con.disconnect()


def test_same_city_takes_the_first_store_order_and_its_ties() -> None:
    # given stores in Shanghai (S1, S2) and Hangzhou (H1), and as of T = 2024-06-01:
    # member 1 first bought in Shanghai, later in Hangzhou within the year: elsewhere;
    # member 2 first bought in Hangzhou exactly 365 days before T (outside the window, but
    # its first store order), then in Shanghai: elsewhere;
    # member 6 bought twice at its first instant, S1 as order "A6" and H1 as "B6", then in
    # Shanghai: home_city (the tie goes to the smaller order id);
    # member 3 bought in Hangzhou only before the year and online within it: no tag;
    # member 4 bought online only: no tag; member 5 bought at T itself (in the window) and
    # in Hangzhou a day after T (ignored)
    t = pd.Timestamp("2024-06-01 00:00:00")
    day = pd.Timedelta(days=1)
    rows = [  # order id, member, when, channel, store
        ("O1a", 1, t - 400 * day, "pos", "S1"),
        ("O1b", 1, t - 10 * day, "pos", "H1"),
        ("O2a", 2, t - 365 * day, "pos", "H1"),
        ("O2b", 2, t - 364 * day, "pos", "S1"),
        ("B6", 6, t - 400 * day, "pos", "H1"),
        ("A6", 6, t - 400 * day, "pos", "S1"),
        ("O6", 6, t - 3 * day, "pos", "S2"),
        ("O3a", 3, t - 366 * day, "pos", "H1"),
        ("O3b", 3, t - 5 * day, "tmall", None),
        ("O4", 4, t - 5 * day, "jd", None),
        ("O5a", 5, t, "pos", "S2"),
        ("O5b", 5, t + day, "pos", "H1"),
    ]
    orders = pd.DataFrame(
        {
            "order_id": [r[0] for r in rows],
            "member_id": [r[1] for r in rows],
            "status": "paid",
            "ordered_at": [r[2] for r in rows],
            "channel": [r[3] for r in rows],
            "store_id": [r[4] for r in rows],
            "brand_id": "B1",
            "discount_fen": 0,
            "paid_fen": 100,
        }
    )
    lines = pd.DataFrame(
        {"order_id": orders.order_id, "sku": "K1", "qty": 1, "amount_fen": orders.paid_fen}
    )
    cities = pd.DataFrame({"store_id": ["S1", "S2", "H1"], "city": ["上海", "上海", "杭州"]})
    con = connect("duckdb")
    wh = retail_warehouse(con, {"orders": orders, "lines": lines, "members": [1, 2, 3, 4, 5, 6]})
    empty = pa.table({"sku": pa.array([], pa.string()), "category": pa.array([], pa.string())})
    none = load_arrow(con, empty, "city_products")
    stores = load_arrow(con, pa.Table.from_pandas(cities, preserve_index=False), "city_stores")
    inputs = facts(wh, none, stores, t.to_pydatetime(), sorted(ONLINE_CHANNELS))
    tag = next(t for t in WAREHOUSE_TAGS if t.slug == "auto.same_city")
    # when the tag is computed, then
    got = as_tagged(to_arrow(con, tag.compute(inputs)))
    want = {1: "elsewhere", 2: "elsewhere", 5: "home_city", 6: "home_city"}
    assert got == want
    # and the pandas reference agrees
    ref_tags = ref.warehouse_tags(
        orders,
        lines,
        pd.DataFrame({"member_id": [], "type": [], "occurred_at": []}),
        pd.DataFrame({"sku": [], "category": []}),
        cities,
        {1, 2, 3, 4, 5, 6},
        int(t.value // 1_000_000_000),
        set(ONLINE_CHANNELS),
    )
    assert ref_tags["auto.same_city"] == want
    con.disconnect()


def test_an_event_tag_reads_only_a_window_the_facts_count() -> None:
    # the facts count each event type within 30, 90 and 365 days, and nothing else
    assert wt.event_count("read", 90).__name__ == "event_count_read"
    for days in (0, 7, 366, 730):
        with pytest.raises(ValueError, match=f"not {days}"):
            wt.event_count("read", days)
