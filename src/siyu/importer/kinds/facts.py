"""Facts: orders, their lines and refunds (bounded by what was paid), behaviour events."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Table, text

from siyu.identity.ingest import (
    IdentifierColumn,
    ObservationBuffer,
    encode_identifiers,
    observe_identifiers,
    scope_column,
)
from siyu.importer.batch import Batch, Context
from siyu.importer.fields import Field
from siyu.importer.kinds.base import (
    CHANNEL,
    ID_TYPES,
    Kind,
    Loader,
    StagedCheck,
    reject_changed,
    reject_unknown_card_brands,
    stage_accepted,
    text_field,
)
from siyu.orders.models import EVENT_TYPES, ORDER_STATUSES, events, orders, refunds
from siyu.store.bulk import unstage
from siyu.store.dialect import GROUP, dialect_of


def _check_orders(ctx: Context, batch: Batch) -> None:
    batch.check_reference("brand_id", ctx.brands, "brand")
    batch.check_reference("store_id", ctx.stores, "store")
    batch.check_reference("guide_id", ctx.guides, "guide")
    over = pc.fill_null(pc.greater(batch.columns["paid_fen"], batch.columns["total_fen"]), False)
    batch.reject_where(over.to_numpy(zero_copy_only=False), "paid_fen", "must not exceed total_fen")
    _encode_buyers(ctx, batch, "buyer_type", "buyer_value", "buyer_scope", "brand_id")


def _encode_buyers(
    ctx: Context,
    batch: Batch,
    type_field: str,
    value_field: str,
    scope_field: str,
    brand_field: str | None = None,
) -> None:
    """Encode each distinct buyer once, in its scope (an order's card buyer in the order's
    brand); rows with a bad identifier or scope are rejected."""
    types = batch.columns[type_field]
    brands = batch.columns[brand_field] if brand_field else None
    scopes, broken = scope_column(types, batch.columns[scope_field], brands)
    for i, exc in broken:
        if exc.field == "brand_id" and brand_field is None:
            # an event names no brand: its card's brand is its scope field
            batch.reject(i, scope_field, f"a card is issued per brand: name it in {scope_field}")
        elif exc.field == "brand_id" and brand_field is not None:
            batch.reject(i, brand_field, exc.rule)
        else:
            batch.reject(i, scope_field, exc.rule)
    if brand_field is None:
        reject_unknown_card_brands(ctx, batch, types, scopes, scope_field)
    column = encode_identifiers(ctx.encoder, types, batch.columns[value_field], value_field, scopes)
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
    staged = stage_accepted(conn, "orders", batch, {"_key": column.keys, "_scope": column.scopes})
    compare = [f.name for f in _KIND["orders"].fields if not f.name.startswith("buyer_")]
    reject_changed(
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
         AND i.scope = s._scope
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
        staged = stage_accepted(conn, table, batch)
        was_ok = batch.ok
        _reject_orphans(conn, ctx, batch, staged.name)
        keys = [k.strip() for k in key.split(",")]
        compare = [c for c in columns if c not in keys]
        reject_changed(conn, ctx, batch, staged, table, {k: k for k in keys}, compare, what)
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
        SELECT s._i FROM {staged.name} s {dialect_of(conn).staged_join} refunds r
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
    _encode_buyers(ctx, batch, "identity_type", "identity_value", "identity_scope")


def _load_events(conn: Connection, ctx: Context, batch: Batch) -> int:
    column: IdentifierColumn = batch.derived["buyers"]
    staged = stage_accepted(conn, "events", batch, {"_key": column.keys, "_scope": column.scopes})
    compare = [f.name for f in _KIND["events"].fields if not f.name.startswith("identity_")]
    reject_changed(
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
         AND i.scope = s._scope
        WHERE 1 = 1
        ON CONFLICT (group_id, event_id) DO NOTHING"""),
            {"g": ctx.group_id},
        ).rowcount
    )
    unstage(conn, staged)
    return n


KINDS: tuple[Kind, ...] = (
    Kind(
        "orders",
        (
            text_field("order_id", True, 128),
            text_field("brand_id", True, 64),
            CHANNEL,
            Field("buyer_type", "enum", required=True, choices=ID_TYPES),
            text_field("buyer_value", True, 256),
            # the buyer's scope (an openid's app, ...); a card's is the order's brand_id
            text_field("buyer_scope", max_len=64),
            Field("ordered_at", "timestamp", required=True, when="business"),
            Field("total_fen", "fen", required=True),
            Field("paid_fen", "fen", required=True),
            Field("discount_fen", "fen", default=0),
            Field("status", "enum", choices=ORDER_STATUSES, default="paid"),
            Field("paid_at", "timestamp", when="business"),
            text_field("store_id", max_len=64),
            text_field("guide_id", max_len=64),
            text_field("coupon_code", max_len=64),
        ),
        _check_orders,
        _load_orders,
        orders.c.order_id,
        ("order_id",),
        analyse=("orders", "identities"),
    ),
    Kind(
        "order_lines",
        (
            text_field("order_id", True, 128),
            Field("line_no", "int", required=True, minimum=1),
            text_field("sku", True, 64),
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
        analyse=("order_lines",),
    ),
    Kind(
        "refunds",
        (
            text_field("refund_id", True, 128),
            text_field("order_id", True, 128),
            Field("refunded_at", "timestamp", required=True, when="business"),
            Field("amount_fen", "fen", required=True),
            Field("line_no", "int", minimum=1),
            Field("qty", "int", minimum=1),
            text_field("reason", max_len=200),
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
        analyse=("refunds",),
    ),
    Kind(
        "events",
        (
            text_field("event_id", True, 128),
            Field("type", "enum", required=True, choices=EVENT_TYPES),
            CHANNEL,
            Field("identity_type", "enum", required=True, choices=ID_TYPES),
            text_field("identity_value", True, 256),
            # the identifier's scope: a card's brand (required), an openid's app, ...
            text_field("identity_scope", max_len=64),
            Field("occurred_at", "timestamp", required=True, when="business"),
            text_field("sku", max_len=64),
            text_field("store_id", max_len=64),
            text_field("guide_id", max_len=64),
            text_field("order_id", max_len=128),
            text_field("scene", max_len=128),
        ),
        _check_events,
        _load_events,
        events.c.event_id,
        ("event_id",),
        analyse=("events", "identities"),
    ),
)
_KIND = {k.name: k for k in KINDS}
