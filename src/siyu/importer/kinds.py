"""The importable kinds: fields, rules beyond one field, and how accepted rows are stored.

Every loader moves rows with set-based `INSERT ... SELECT ... ON CONFLICT DO NOTHING`
from a staging table, so importing a file twice changes nothing, and returns how many
rows were new.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Column, ColumnElement, Connection, Table, and_, select, text

from siyu.catalog.models import CHANNELS
from siyu.identity.ingest import (
    Encoded,
    IdentifierColumn,
    IdentifierEncoder,
    ObservationBuffer,
    encode_column,
    encode_identifiers,
    observe_identifiers,
)
from siyu.identity.models import identities
from siyu.identity.types import IDENTITY_TYPES
from siyu.importer.batch import Batch, Context
from siyu.importer.fields import Field
from siyu.inventory.errors import OutOfStock
from siyu.inventory.locations import LOCATION_KINDS, count_once, location_rule
from siyu.inventory.stock import MAX_UNITS, announce, level, now_utc
from siyu.orders.models import EVENT_TYPES, ORDER_STATUSES, events, orders, refunds
from siyu.privacy import mask_name
from siyu.store.bulk import stage, unstage
from siyu.store.dialect import GROUP, dialect_of
from siyu.store.metadata import metadata

Loader = Callable[[Connection, Context, Batch], int]
Checker = Callable[[Context, Batch], None]
# A rule needing the store, run on the staged rows before they are written.
StagedCheck = Callable[[Connection, Context, Batch, Table], None]


@dataclass(frozen=True)
class Kind:
    name: str
    fields: tuple[Field, ...]
    check: Checker
    load: Loader
    # The stored column a row's id field (same name) becomes: lets an import of rows from
    # memory tell rows already stored from new ones (the batch API's `duplicate`).
    key: Column[str] | None = None
    # The fields naming one record: a second row with them is the same record again
    # (accepted, stored once) or, with other content, a conflicting duplicate (rejected).
    record_key: tuple[str, ...] = ()


def _text(name: str, required: bool = False, max_len: int = 200) -> Field:
    return Field(name, "text", required=required, max_len=max_len)


def _insert_select(
    conn: Connection,
    table: str,
    columns: str,
    select: str,
    group_id: str,
    staged: str,
    conflict: str,
) -> int:
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT {select} FROM {staged} s WHERE 1 = 1 "
        f"ON CONFLICT ({conflict}) DO NOTHING"
    )
    return int(conn.execute(text(sql), {"g": group_id}).rowcount)


def _stage_accepted(
    conn: Connection, prefix: str, batch: Batch, extra: dict[str, pa.Array] | None = None
) -> Table:
    cols = batch.accepted()
    cols["_i"] = pa.array(np.flatnonzero(batch.ok), pa.int64())  # the row's index in the batch
    if extra:
        mask = pa.array(batch.ok)
        cols.update({k: v.filter(mask) for k, v in extra.items()})
    return stage(conn, prefix, pa.table(cols))


def _reject_changed(
    conn: Connection,
    ctx: Context,
    batch: Batch,
    staged: Table,
    table: str,
    key: dict[str, str],
    compare: Sequence[str],
    what: str,
    identity: tuple[str, str, str] | None = None,
) -> None:
    """Rows whose key is already stored with other content are rejected, naming what
    differs: an import adds records, it never changes a stored one, and it never drops a
    changed one silently. `key` maps a field to its stored column; `identity` is (label,
    stored identity column, type field) for a buyer compared by its identifier."""
    target = metadata.tables[table]
    s, t = staged.c, target.c
    on = and_(t.group_id == ctx.group_id, *(t[c] == s[f] for f, c in key.items()))
    source = staged.join(target, on)
    pairs: dict[str, tuple[list[ColumnElement[object]], list[ColumnElement[object]]]] = {
        c: ([t[c]], [s[c]]) for c in compare
    }
    if identity is not None:
        label, column, type_field = identity
        i = identities.alias("i")
        source = source.join(i, i.c.identity_id == t[column])
        pairs[label] = ([i.c.type, i.c.value_key], [s[type_field], s["_key"]])
    stored = [e for left, _ in pairs.values() for e in left]
    given = [e for _, right in pairs.values() for e in right]
    names = list(key)
    query = select(s["_i"], *(s[f] for f in names), *stored, *given).select_from(source)
    for row in conn.execute(query):
        values = tuple(row)
        row_i, shown = int(values[0]), "/".join(str(v) for v in values[1 : 1 + len(names)])
        old, new = values[1 + len(names) :][: len(stored)], values[1 + len(names) + len(stored) :]
        differ, at = [], 0
        for label, (left, _) in pairs.items():
            if old[at : at + len(left)] != new[at : at + len(left)]:
                differ.append(label)
            at += len(left)
        if differ:
            batch.reject(
                row_i,
                names[0],
                f"{shown!r} is already stored with a different {', '.join(differ)}; "
                f"a stored {what} is never changed by an import",
            )


# --- reference data -------------------------------------------------------------------


def _check_nothing(ctx: Context, batch: Batch) -> None:
    return None


def _load_simple(table: str, key: str, columns: tuple[str, ...]) -> Loader:
    def load(conn: Connection, ctx: Context, batch: Batch) -> int:
        staged = _stage_accepted(conn, table, batch)
        compare = [c for c in columns if c != key]
        _reject_changed(conn, ctx, batch, staged, table, {key: key}, compare, table[:-1])
        cols = ", ".join(("group_id", *columns))
        select = ", ".join((GROUP, *(f"s.{c}" for c in columns)))
        n = _insert_select(conn, table, cols, select, ctx.group_id, staged.name, f"group_id, {key}")
        unstage(conn, staged)
        return n

    return load


def _check_stores(ctx: Context, batch: Batch) -> None:
    batch.check_reference("brand_id", ctx.brands, "brand")


def _check_products(ctx: Context, batch: Batch) -> None:
    batch.check_reference("brand_id", ctx.brands, "brand")


def _check_guides(ctx: Context, batch: Batch) -> None:
    batch.check_reference("store_id", ctx.stores, "store")


# --- members ---------------------------------------------------------------------------


def _encode_pair(ctx: Context, batch: Batch, type_name: str, field: str) -> list[Encoded | None]:
    values = batch.values(field)
    encoded, errors = encode_column(ctx.encoder, [type_name] * len(values), values, field)
    for i, rule in enumerate(errors):
        if rule is not None:
            batch.reject(i, field, rule)
    return encoded


def _check_members(ctx: Context, batch: Batch) -> None:
    batch.check_reference("brand_id", ctx.brands, "brand")
    batch.check_reference("home_store_id", ctx.stores, "store")
    no_id = np.array(
        [
            c is None and p is None
            for c, p in zip(batch.values("card"), batch.values("phone"), strict=True)
        ]
    )
    batch.reject_where(no_id, "card", "a member needs a card or a phone (or both)")
    _encode_pair(ctx, batch, "card", "card")
    _encode_pair(ctx, batch, "phone", "phone")


def _load_members(conn: Connection, ctx: Context, batch: Batch) -> int:
    vault = ctx.encoder.vault
    names = batch.values("name")
    enc = [None if n is None else vault.encrypt(n, "name") for n in names]
    masked = [None if n is None else mask_name(n) for n in names]
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    staged = _stage_accepted(
        conn,
        "members",
        batch,
        {
            "name_enc": pa.array(enc, pa.binary()),
            "name_masked": pa.array(masked, pa.string()),
            "now": pa.array([now] * len(batch), pa.timestamp("s")),
        },
    )
    compare = ("brand_id", "registered_at", "gender", "birth_date", "city", "home_store_id")
    _reject_changed(
        conn, ctx, batch, staged, "members", {"member_ref": "source_ref"}, compare, "member"
    )
    n = _insert_select(
        conn,
        "members",
        "group_id, status, source_ref, brand_id, registered_at, name_enc, name_masked, gender, "
        "birth_date, city, home_store_id, created_at, updated_at",
        f"{GROUP}, 'active', s.member_ref, s.brand_id, s.registered_at, s.name_enc, s.name_masked, "
        "s.gender, s.birth_date, s.city, s.home_store_id, s.now, s.now",
        ctx.group_id,
        staged.name,
        "group_id, source_ref",
    )
    unstage(conn, staged)
    buf = ObservationBuffer(ctx.encoder)
    cards = _encode_pair(ctx, batch, "card", "card")
    phones = _encode_pair(ctx, batch, "phone", "phone")
    refs, brands, channels, times = (
        batch.values(c) for c in ("member_ref", "brand_id", "channel", "registered_at")
    )
    for i in np.flatnonzero(batch.ok):
        card, phone = cards[i], phones[i]
        for ident in (card, phone):
            if ident is not None:
                buf.observe(ident, channels[i], times[i], brand_id=brands[i], member_ref=refs[i])
        if card is not None and phone is not None:
            # Typed at the till: unverified, which is why a shared family phone here
            # cannot outweigh a WeChat-verified account.
            buf.link(card, phone, channels[i], times[i], verified=False)
    buf.flush(conn, ctx.group_id)
    return n


# --- identities ------------------------------------------------------------------------


def _check_identities(ctx: Context, batch: Batch) -> None:
    lt, lv = batch.values("linked_type"), batch.values("linked_value")
    half = np.array([(a is None) != (b is None) for a, b in zip(lt, lv, strict=True)])
    batch.reject_where(half, "linked_value", "linked_type and linked_value come together")
    for field, type_field in (("value", "type"), ("linked_value", "linked_type")):
        _, errors = encode_column(ctx.encoder, batch.values(type_field), batch.values(field), field)
        for i, rule in enumerate(errors):
            if rule is not None:
                batch.reject(i, field, rule)
    batch.check_reference("brand_id", ctx.brands, "brand")


def _load_identities(conn: Connection, ctx: Context, batch: Batch) -> int:
    buf = ObservationBuffer(ctx.encoder)
    enc = ctx.encoder
    cols = {
        c: batch.values(c)
        for c in (
            "type",
            "value",
            "linked_type",
            "linked_value",
            "channel",
            "observed_at",
            "verified",
            "brand_id",
        )
    }
    for i in np.flatnonzero(batch.ok):
        ident = enc.encode(cols["type"][i], cols["value"][i])
        ch, at, ver = cols["channel"][i], cols["observed_at"][i], cols["verified"][i]
        buf.observe(ident, ch, at, ver, cols["brand_id"][i])
        if cols["linked_type"][i] is not None:
            other = enc.encode(cols["linked_type"][i], cols["linked_value"][i], "linked_value")
            buf.observe(other, ch, at, ver, cols["brand_id"][i])
            buf.link(ident, other, ch, at, ver)
    new_identities, new_links = buf.flush(conn, ctx.group_id)
    return new_identities + new_links


# --- orders, lines, refunds, events ----------------------------------------------------


def _check_orders(ctx: Context, batch: Batch) -> None:
    batch.check_reference("brand_id", ctx.brands, "brand")
    batch.check_reference("store_id", ctx.stores, "store")
    batch.check_reference("guide_id", ctx.guides, "guide")
    over = pc.fill_null(pc.greater(batch.columns["paid_fen"], batch.columns["total_fen"]), False)
    batch.reject_where(over.to_numpy(zero_copy_only=False), "paid_fen", "must not exceed total_fen")
    _encode_buyers(ctx, batch, "buyer_type", "buyer_value")


def _encode_buyers(ctx: Context, batch: Batch, type_field: str, value_field: str) -> None:
    """Encode each distinct buyer once; rows with a bad identifier are rejected."""
    column = encode_identifiers(
        ctx.encoder, batch.columns[type_field], batch.columns[value_field], value_field
    )
    batch.reject_rules(value_field, column.row_errors())
    batch.derived["buyers"] = column


def _record_buyers(conn: Connection, ctx: Context, batch: Batch, time_field: str) -> pa.Array:
    """Upsert the accepted rows' buyer identities; return the key per row for the join."""
    column: IdentifierColumn = batch.derived["buyers"]
    buf = ObservationBuffer(ctx.encoder)
    observe_identifiers(buf, column, batch.ok, batch.columns[time_field], batch.columns["channel"])
    buf.flush(conn, ctx.group_id, widen=False)
    return column.keys


def _load_orders(conn: Connection, ctx: Context, batch: Batch) -> int:
    column: IdentifierColumn = batch.derived["buyers"]
    staged = _stage_accepted(conn, "orders", batch, {"_key": column.keys})
    compare = [f.name for f in KINDS["orders"].fields if not f.name.startswith("buyer_")]
    _reject_changed(
        conn,
        ctx,
        batch,
        staged,
        "orders",
        {"order_id": "order_id"},
        compare[1:],
        "order",
        ("buyer", "buyer_identity_id", "buyer_type"),
    )
    _record_buyers(conn, ctx, batch, "ordered_at")
    n = int(
        conn.execute(
            text(f"""
        INSERT INTO orders (group_id, order_id, brand_id, channel, store_id, guide_id,
            coupon_code, buyer_identity_id, member_id, status, ordered_at, paid_at,
            total_fen, discount_fen, paid_fen)
        SELECT {GROUP}, s.order_id, s.brand_id, s.channel, s.store_id, s.guide_id,
            s.coupon_code, i.identity_id, i.member_id, s.status, s.ordered_at, s.paid_at,
            s.total_fen, s.discount_fen, s.paid_fen
        FROM {staged.name} s JOIN identities i
          ON i.group_id = :g AND i.type = s.buyer_type AND i.value_key = s._key
        WHERE 1 = 1
        ON CONFLICT (group_id, order_id) DO NOTHING"""),
            {"g": ctx.group_id},
        ).rowcount
    )
    unstage(conn, staged)
    return n


def _reject_orphans(conn: Connection, ctx: Context, batch: Batch, name: str) -> None:
    """Rows naming an order the store does not have are rejected, not dropped."""
    rows = (
        conn.execute(
            text(f"""
        SELECT s._i FROM {name} s WHERE NOT EXISTS (
            SELECT 1 FROM orders o WHERE o.group_id = :g AND o.order_id = s.order_id)"""),
            {"g": ctx.group_id},
        )
        .scalars()
        .all()
    )
    for i in rows:
        batch.reject(int(i), "order_id", "no such order in this brand group")


def _load_child(
    table: str, columns: tuple[str, ...], key: str, what: str, check: StagedCheck | None = None
) -> Loader:
    def load(conn: Connection, ctx: Context, batch: Batch) -> int:
        staged = _stage_accepted(conn, table, batch)
        was_ok = batch.ok
        _reject_orphans(conn, ctx, batch, staged.name)
        keys = [k.strip() for k in key.split(",")]
        compare = [c for c in columns if c not in keys]
        _reject_changed(conn, ctx, batch, staged, table, {k: k for k in keys}, compare, what)
        if check is not None:
            check(conn, ctx, batch, staged)
        _unstage_rejected(conn, batch, staged, was_ok)
        cols = ", ".join(("group_id", *columns))
        select = ", ".join((GROUP, *(f"s.{c}" for c in columns)))
        n = int(
            conn.execute(
                text(
                    f"INSERT INTO {table} ({cols}) SELECT {select} FROM {staged.name} s "
                    "WHERE EXISTS ("
                    "SELECT 1 FROM orders o WHERE o.group_id = :g AND o.order_id = s.order_id) "
                    f"ON CONFLICT (group_id, {key}) DO NOTHING"
                ),
                {"g": ctx.group_id},
            ).rowcount
        )
        unstage(conn, staged)
        return n

    return load


def _check_lines(ctx: Context, batch: Batch) -> None:
    batch.check_reference("sku", ctx.skus, "product")


def _check_refunds(ctx: Context, batch: Batch) -> None:
    return None


def _bound_refunds(conn: Connection, ctx: Context, batch: Batch, staged: Table) -> None:
    """A refund may not take an order's refunds past its paid amount: refunds already
    stored count first, then this batch's in row order (one file's several refunds of an
    order are bounded together). A refund stored before is the same refund again, not a
    second one. The orders are locked (PostgreSQL), so concurrent imports add up too."""
    lock = dialect_of(conn).lock_rows_in_order("o.order_id")
    found = conn.execute(
        text(f"""
        SELECT o.order_id, o.paid_fen, o.channel, o.store_id FROM orders o
        WHERE o.group_id = :g AND o.order_id IN (SELECT s.order_id FROM {staged.name} s)
        {lock}"""),
        {"g": ctx.group_id},
    ).all()
    orders_by_id = {r.order_id: r for r in found}
    sums = conn.execute(
        text(f"""
        SELECT r.order_id, SUM(r.amount_fen) FROM refunds r
        WHERE r.group_id = :g AND r.order_id IN (SELECT s.order_id FROM {staged.name} s)
        GROUP BY r.order_id"""),
        {"g": ctx.group_id},
    )
    refunded: dict[str, int] = {row[0]: int(row[1]) for row in sums}
    stored = set(
        conn.execute(
            text(f"""
        SELECT s._i FROM {staged.name} s JOIN refunds r
          ON r.group_id = :g AND r.refund_id = s.refund_id"""),
            {"g": ctx.group_id},
        ).scalars()
    )
    ids, order_ids, amounts = (batch.values(c) for c in ("refund_id", "order_id", "amount_fen"))
    decided: dict[str, str | None] = {}  # refund id -> the rule it broke, None if accepted
    scope = ctx.scope
    for i in (int(i) for i in np.flatnonzero(batch.ok)):
        order = orders_by_id.get(order_ids[i])
        if order is None:
            continue
        if scope.channel is not None and order.channel != scope.channel:
            batch.reject(i, "order_id", f"this key refunds {scope.channel!r} orders only")
            continue
        if scope.stores is not None and order.store_id not in scope.stores:
            batch.reject(i, "order_id", "this key refunds its own stores' orders only")
            continue
        if i in stored:
            continue  # the same refund again: counted once, in what is stored
        if ids[i] in decided:
            rule = decided[ids[i]]  # an identical repeat in this batch shares the answer
        else:
            before = int(refunded.get(order.order_id) or 0)
            total = before + amounts[i]
            rule = None
            if total > order.paid_fen:
                rule = (
                    f"refunds of order {order.order_id!r} would total {total} fen, more than "
                    f"its paid_fen {order.paid_fen} ({before} refunded before this one)"
                )
            else:
                refunded[order.order_id] = total
            decided[ids[i]] = rule
        if rule is not None:
            batch.reject(i, "amount_fen", rule)


def _unstage_rejected(conn: Connection, batch: Batch, staged: Table, was_ok: np.ndarray) -> None:
    """Drop staged rows a check rejected after staging, so they are not written."""
    gone = [int(i) for i in np.flatnonzero(was_ok & ~batch.ok)]
    for start in range(0, len(gone), 500):
        conn.execute(staged.delete().where(staged.c["_i"].in_(gone[start : start + 500])))


def _check_events(ctx: Context, batch: Batch) -> None:
    batch.check_reference("store_id", ctx.stores, "store")
    batch.check_reference("guide_id", ctx.guides, "guide")
    _encode_buyers(ctx, batch, "identity_type", "identity_value")


def _load_events(conn: Connection, ctx: Context, batch: Batch) -> int:
    column: IdentifierColumn = batch.derived["buyers"]
    staged = _stage_accepted(conn, "events", batch, {"_key": column.keys})
    compare = [f.name for f in KINDS["events"].fields if not f.name.startswith("identity_")]
    _reject_changed(
        conn,
        ctx,
        batch,
        staged,
        "events",
        {"event_id": "event_id"},
        compare[1:],
        "event",
        ("identity", "identity_id", "identity_type"),
    )
    _record_buyers(conn, ctx, batch, "occurred_at")
    n = int(
        conn.execute(
            text(f"""
        INSERT INTO events (group_id, event_id, type, channel, identity_id, member_id,
            occurred_at, sku, store_id, guide_id, order_id, scene)
        SELECT {GROUP}, s.event_id, s.type, s.channel, i.identity_id, i.member_id,
            s.occurred_at, s.sku, s.store_id, s.guide_id, s.order_id, s.scene
        FROM {staged.name} s JOIN identities i
          ON i.group_id = :g AND i.type = s.identity_type AND i.value_key = s._key
        WHERE 1 = 1
        ON CONFLICT (group_id, event_id) DO NOTHING"""),
            {"g": ctx.group_id},
        ).rowcount
    )
    unstage(conn, staged)
    return n


# CHANNELS reads the channel registry when a batch is checked, so a channel registered
# after this module was imported is accepted like a built-in.
_CHANNEL = Field("channel", "enum", required=True, choices=CHANNELS)
_ID_TYPES = tuple(IDENTITY_TYPES)

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "brands",
            (_text("brand_id", True, 64), _text("name", True)),
            _check_nothing,
            _load_simple("brands", "brand_id", ("brand_id", "name")),
            record_key=("brand_id",),
        ),
        Kind(
            "stores",
            (
                _text("store_id", True, 64),
                _text("brand_id", True, 64),
                _text("name", True),
                _text("city", True, 64),
                _text("region", max_len=64),
                Field("kind", "enum", choices=("store", "counter", "warehouse"), default="store"),
                Field("opened_at", "timestamp"),
            ),
            _check_stores,
            _load_simple(
                "stores",
                "store_id",
                ("store_id", "brand_id", "name", "city", "region", "kind", "opened_at"),
            ),
            record_key=("store_id",),
        ),
        Kind(
            "products",
            (
                _text("sku", True, 64),
                _text("brand_id", True, 64),
                _text("name", True),
                _text("category", True, 64),
                Field("list_price_fen", "fen", required=True),
            ),
            _check_products,
            _load_simple(
                "products", "sku", ("sku", "brand_id", "name", "category", "list_price_fen")
            ),
            record_key=("sku",),
        ),
        Kind(
            "guides",
            (
                _text("guide_id", True, 64),
                _text("store_id", True, 64),
                _text("alias", True, 64),
                Field("hired_at", "timestamp"),
            ),
            _check_guides,
            _load_simple("guides", "guide_id", ("guide_id", "store_id", "alias", "hired_at")),
            record_key=("guide_id",),
        ),
        Kind(
            "members",
            (
                _text("member_ref", True, 128),
                _text("brand_id", True, 64),
                Field("registered_at", "timestamp", required=True, when="business"),
                _CHANNEL,
                _text("card", max_len=64),
                _text("phone", max_len=32),
                _text("name", max_len=64),
                Field("gender", "enum", choices=("f", "m", "u")),
                Field("birth_date", "date", when="birth"),
                _text("city", max_len=64),
                _text("home_store_id", max_len=64),
            ),
            _check_members,
            _load_members,
            record_key=("member_ref",),
        ),
        Kind(
            "identities",
            (
                Field("type", "enum", required=True, choices=_ID_TYPES),
                _text("value", True, 256),
                _CHANNEL,
                Field("observed_at", "timestamp", required=True, when="business"),
                Field("verified", "bool", default=False),
                Field("linked_type", "enum", choices=_ID_TYPES),
                _text("linked_value", max_len=256),
                _text("brand_id", max_len=64),
            ),
            _check_identities,
            _load_identities,
        ),
        Kind(
            "orders",
            (
                _text("order_id", True, 128),
                _text("brand_id", True, 64),
                _CHANNEL,
                Field("buyer_type", "enum", required=True, choices=_ID_TYPES),
                _text("buyer_value", True, 256),
                Field("ordered_at", "timestamp", required=True, when="business"),
                Field("total_fen", "fen", required=True),
                Field("paid_fen", "fen", required=True),
                Field("discount_fen", "fen", default=0),
                Field("status", "enum", choices=ORDER_STATUSES, default="paid"),
                Field("paid_at", "timestamp", when="business"),
                _text("store_id", max_len=64),
                _text("guide_id", max_len=64),
                _text("coupon_code", max_len=64),
            ),
            _check_orders,
            _load_orders,
            orders.c.order_id,
            ("order_id",),
        ),
        Kind(
            "order_lines",
            (
                _text("order_id", True, 128),
                Field("line_no", "int", required=True, minimum=1),
                _text("sku", True, 64),
                Field("qty", "int", required=True, minimum=1),
                Field("unit_price_fen", "fen", required=True),
                Field("amount_fen", "fen", required=True),
            ),
            _check_lines,
            _load_child(
                "order_lines",
                ("order_id", "line_no", "sku", "qty", "unit_price_fen", "amount_fen"),
                "order_id, line_no",
                "order line",
            ),
            record_key=("order_id", "line_no"),
        ),
        Kind(
            "refunds",
            (
                _text("refund_id", True, 128),
                _text("order_id", True, 128),
                Field("refunded_at", "timestamp", required=True, when="business"),
                Field("amount_fen", "fen", required=True),
                Field("line_no", "int", minimum=1),
                Field("qty", "int", minimum=1),
                _text("reason", max_len=200),
            ),
            _check_refunds,
            _load_child(
                "refunds",
                ("refund_id", "order_id", "line_no", "qty", "refunded_at", "amount_fen", "reason"),
                "refund_id",
                "refund",
                _bound_refunds,
            ),
            key=refunds.c.refund_id,
            record_key=("refund_id",),
        ),
        Kind(
            "events",
            (
                _text("event_id", True, 128),
                Field("type", "enum", required=True, choices=EVENT_TYPES),
                _CHANNEL,
                Field("identity_type", "enum", required=True, choices=_ID_TYPES),
                _text("identity_value", True, 256),
                Field("occurred_at", "timestamp", required=True, when="business"),
                _text("sku", max_len=64),
                _text("store_id", max_len=64),
                _text("guide_id", max_len=64),
                _text("order_id", max_len=128),
                _text("scene", max_len=128),
            ),
            _check_events,
            _load_events,
            events.c.event_id,
            ("event_id",),
        ),
    )
}


# --- stock: locations, where each channel ships from, counts ------------------------


def _reject_conflicting(batch: Batch, key: tuple[str, ...], values: tuple[str, ...]) -> None:
    """A row repeating an earlier row's key with another value is a reject naming the row
    that gave the first value (identical repeats are accepted: they change nothing).
    A value left out agrees with anything."""
    keys = list(zip(*(batch.values(k) for k in key), strict=True))
    columns = {v: batch.values(v) for v in values}
    first: dict[tuple[tuple[object, ...], str], tuple[int, object]] = {}
    for i in (int(i) for i in np.flatnonzero(batch.ok)):
        for name in values:
            value = columns[name][i]
            if value is None:
                continue
            j, before = first.setdefault((keys[i], name), (i, value))
            if before != value:
                batch.reject(i, name, f"differs from file row {j + 1} with the same {key[0]}")
                break


def _check_stock_locations(ctx: Context, batch: Batch) -> None:
    batch.check_reference("store_id", ctx.stores, "store")
    rows = zip(*(batch.values(c) for c in ("kind", "store_id", "lat_e6", "lon_e6")), strict=True)
    for i, (kind, store, lat, lon) in enumerate(rows):
        broken = location_rule(kind, store, lat, lon)
        if broken is not None:
            batch.reject(i, *broken)
    _reject_conflicting(batch, ("location_id",), ("kind", "store_id", "city", "lat_e6", "lon_e6"))


def _reject_unknown_locations(conn: Connection, ctx: Context, batch: Batch) -> set[str]:
    known = set(
        conn.execute(
            text("SELECT location_id FROM stock_locations WHERE group_id = :g"),
            {"g": ctx.group_id},
        ).scalars()
    )
    unknown = np.array([loc not in known for loc in batch.values("location_id")])
    batch.reject_where(unknown & batch.ok, "location_id", "no stock location of this id")
    return known


def _check_channel_locations(ctx: Context, batch: Batch) -> None:
    _reject_conflicting(batch, ("channel",), ("safety_stock",))


def _load_channel_locations(conn: Connection, ctx: Context, batch: Batch) -> int:
    _reject_unknown_locations(conn, ctx, batch)
    if not batch.ok.any():
        return 0
    staged = _stage_accepted(conn, "channel_locations", batch)
    n = _insert_select(
        conn,
        "channel_locations",
        "group_id, channel, location_id",
        f"{GROUP}, s.channel, s.location_id",
        ctx.group_id,
        staged.name,
        "group_id, channel, location_id",
    )
    # The channel's safety stock: the first value stored stays (the API changes it).
    conn.execute(
        text(f"""INSERT INTO channel_safety_stock (group_id, channel, units)
                 SELECT DISTINCT {GROUP}, s.channel, s.safety_stock FROM {staged.name} s
                 WHERE s.safety_stock IS NOT NULL
                 ON CONFLICT (group_id, channel) DO NOTHING"""),
        {"g": ctx.group_id},
    )
    unstage(conn, staged)
    return n


def _check_stock(ctx: Context, batch: Batch) -> None:
    batch.check_reference("sku", ctx.skus, "product")
    over = pc.fill_null(pc.greater(batch.columns["on_hand"], MAX_UNITS), False)
    batch.reject_where(over.to_numpy(zero_copy_only=False), "on_hand", f"at most {MAX_UNITS}")
    _reject_conflicting(batch, ("location_id", "sku", "counted_at"), ("on_hand",))


def _load_stock(conn: Connection, ctx: Context, batch: Batch) -> int:
    """Each row is a count (on hand set to what was counted, a `count` movement for the
    difference) keyed by location, SKU and time of the count: importing it again changes
    nothing. Counts are applied in time order; one below the units reserved for open
    orders is a reject."""
    _reject_unknown_locations(conn, ctx, batch)
    cols = {c: batch.values(c) for c in ("location_id", "sku", "on_hand", "counted_at")}
    now = now_utc()
    applied, touched = 0, set()
    for i in sorted(np.flatnonzero(batch.ok), key=lambda i: (cols["counted_at"][i], i)):
        location, sku, at = cols["location_id"][i], cols["sku"][i], cols["counted_at"][i]
        try:
            done = count_once(
                conn,
                ctx.group_id,
                sku,
                location,
                cols["on_hand"][i],
                now,
                f"import: count of {at.isoformat()}",
                f"import:count:{location}:{sku}:{at.isoformat()}",
            )
        except OutOfStock:
            reserved = level(conn, ctx.group_id, sku, location).reserved
            batch.reject(int(i), "on_hand", f"below the {reserved} units reserved for open orders")
            continue
        if done is not None:
            applied += 1
            touched.add(sku)
    announce(conn, ctx.group_id, sorted(touched), now)
    return applied


for _kind in (
    Kind(
        "stock_locations",
        (
            _text("location_id", True, 64),
            Field("kind", "enum", choices=LOCATION_KINDS, default="store"),
            _text("store_id", max_len=64),
            _text("city", True, 64),
            Field("lat_e6", "int"),
            Field("lon_e6", "int"),
        ),
        _check_stock_locations,
        _load_simple(
            "stock_locations",
            "location_id",
            ("location_id", "kind", "store_id", "city", "lat_e6", "lon_e6"),
        ),
    ),
    Kind(
        "channel_locations",
        (_CHANNEL, _text("location_id", True, 64), Field("safety_stock", "int", minimum=0)),
        _check_channel_locations,
        _load_channel_locations,
    ),
    Kind(
        "stock",
        (
            _text("location_id", True, 64),
            _text("sku", True, 64),
            Field("on_hand", "int", required=True, minimum=0),
            Field("counted_at", "timestamp", required=True),
        ),
        _check_stock,
        _load_stock,
    ),
):
    KINDS[_kind.name] = _kind
IMPORT_ORDER = tuple(KINDS)

__all__ = ["IMPORT_ORDER", "KINDS", "IdentifierEncoder", "Kind"]
