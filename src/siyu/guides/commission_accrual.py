"""The commission jobs: accrue a period's orders (and claw back their refunds), release
what has matured. Both are safe to re-run: every posting has its key
(guides/commission_ledger.py), orders already accrued are not decided again, so a rule
changed since keeps the commission already accrued (a new version applies to new orders),
and an order is released once (its `commission_releases` row). Accruals and releases are
summary postings: a run writes one posting per guide (and store and month), each order's
amount a row of its sub-ledger, `commission_accruals` or `commission_releases` (sessions
19 and 20; a clawback stays one posting per refund).

Which guide an order is attributed to is decided in ONE place, `_STAGE_ORDERS`: the
period's attribution (`guides.attribution`: last share touch in its window, else the
till's guide, else a protected own guide, as HQ last ran it for the period), else the
till's guide (`orders.guide_id`) for an order attribution has not seen (the period was
never attributed, or the order came after the run), which is what attribution itself
would give it without a share touch: commission never waits on an attribution run, and
never overrides one.

Both jobs work by the set (issue #19: a month of a 10M-member brand is two million
orders): one transaction under the group's commission lock stages the run's orders, picks
a rule per combination of terms (`CommissionRules.choose`), and writes the amounts, the
postings and their entries with INSERT ... SELECT (`guides.commission_postings`), with
the amounts the single postings of session 17 gave (tests/guides/test_commission_ledger.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from siyu.guides import commission_ledger as cl
from siyu.guides import commission_postings as cp
from siyu.guides.classes import classes_before
from siyu.guides.commission_rules import CommissionRules, OrderTerms, rate_sql, stored
from siyu.guides.commission_statements import month_range
from siyu.guides.models import (
    CM_ACCRUE,
    CM_ACCRUED,
    CM_CLAWBACK,
    CM_FROZEN,
    CM_PAYABLE,
    CM_RELEASE,
    TILL,
)
from siyu.store.dialect import Dialect, dialect_of
from siyu.store.times import as_stored, stored_now

WORK_MEM = "256MB"  # the month's orders sorted and hashed in memory (PostgreSQL)
_ORDERS = "cm_orders"
_CLASSES = "cm_classes"
_CHOICES = "cm_choices"
_DECIDED = "cm_decided"
# A clawback's key: 'commission:<order>' then the bound ':clawback:' || refund; bound,
# because text() would take ':clawback' in a literal for a parameter. (Accrual and release
# postings are summaries, keyed by guide and first order: `_ACCRUAL_KEY`, `_RELEASE_KEY`;
# before revision 0035 an accrual was 'commission:<order>:accrue'.)
_KEY = "'commission' || :colon || {order} || "
_SUFFIXES = {"colon": ":", "clawback": ":clawback:"}


@dataclass
class AccrualRun:
    accrued: int = 0  # orders accrued by this run
    accrued_fen: int = 0
    already: int = 0  # orders accrued by an earlier run
    no_commission: int = 0  # orders whose rule gives 0 fen
    clawbacks: int = 0
    clawed_back_fen: int = 0
    postings: int = 0  # accrual postings written: one per guide, store and month (below)


# The orders to decide, with what a rule matches on, in one statement: those attribution
# gave a guide (`commission_basis`'s first half), else those naming a till guide, with
# whether an earlier run accrued them (`done`); the campaign of the coupon; the category of
# the largest line (ties: the smaller code), for the orders still to accrue only, ranked
# over their lines in one pass: as a subquery per order it probed order_lines' index two
# million times at 10M members (24 s of the statement's 29).
_STAGE_ORDERS = f"""INSERT INTO {_ORDERS} (seq, order_id, guide_id, basis, paid_fen, brand_id,
    channel, category, campaign, guide_class, paid_at, done)
  WITH b AS (
    SELECT x.order_id, x.guide_id, x.basis,
      CASE WHEN EXISTS (SELECT 1 FROM commission_accruals d WHERE d.group_id = :g
        AND d.order_id = x.order_id) THEN 1 ELSE 0 END AS done
    FROM (SELECT a.order_id, a.guide_id, a.basis FROM order_attributions a
          WHERE a.group_id = :g AND a.ordered_at >= :s AND a.ordered_at < :u
          UNION ALL
          SELECT t.order_id, t.guide_id, '{TILL}' FROM orders t
          WHERE t.group_id = :g AND t.guide_id IS NOT NULL AND t.status <> 'cancelled'
            AND t.ordered_at >= :s AND t.ordered_at < :u
            AND NOT EXISTS (SELECT 1 FROM order_attributions a
              WHERE a.group_id = t.group_id AND a.order_id = t.order_id)) x
  ), top_line AS (
    SELECT r.order_id, r.category FROM (
      SELECT l.order_id, p.category, ROW_NUMBER() OVER (PARTITION BY l.order_id
        ORDER BY l.amount_fen DESC, p.category) AS rn
      FROM b JOIN order_lines l ON l.group_id = :g AND l.order_id = b.order_id
      JOIN products p ON p.group_id = l.group_id AND p.sku = l.sku
      WHERE b.done = 0) r
    WHERE r.rn = 1
  )
  SELECT ROW_NUMBER() OVER (ORDER BY o.ordered_at, o.order_id), o.order_id, b.guide_id,
    b.basis, o.paid_fen, o.brand_id, o.channel, COALESCE(tl.category, ''),
    COALESCE(c.campaign, ''), COALESCE(k.guide_class, ''), COALESCE(o.paid_at, o.ordered_at),
    b.done
  FROM b
  JOIN orders o ON o.group_id = :g AND o.order_id = b.order_id
  LEFT JOIN top_line tl ON tl.order_id = b.order_id
  LEFT JOIN coupons c ON c.group_id = o.group_id AND c.code = o.coupon_code
  LEFT JOIN {_CLASSES} k ON k.guide_id = b.guide_id"""


def _stage_orders(
    conn: Connection, group_id: str, since: datetime, until: datetime, classes: dict[str, str]
) -> None:
    for table in (_ORDERS, _CLASSES, _CHOICES):
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    conn.execute(
        text(f"""CREATE TEMPORARY TABLE {_ORDERS} (seq BIGINT NOT NULL PRIMARY KEY,
                   order_id VARCHAR(128) NOT NULL, guide_id VARCHAR(64) NOT NULL,
                   basis VARCHAR(16) NOT NULL, paid_fen BIGINT NOT NULL,
                   brand_id VARCHAR(64) NOT NULL, channel VARCHAR(32) NOT NULL,
                   category VARCHAR(64) NOT NULL, campaign VARCHAR(64) NOT NULL,
                   guide_class VARCHAR(1) NOT NULL, paid_at TIMESTAMP NOT NULL,
                   done INTEGER NOT NULL)""")
    )
    conn.execute(
        text(f"""CREATE TEMPORARY TABLE {_CLASSES} (guide_id VARCHAR(64) NOT NULL PRIMARY KEY,
                   guide_class VARCHAR(1) NOT NULL)""")
    )
    if classes:
        conn.execute(
            text(f"INSERT INTO {_CLASSES} VALUES (:guide, :cls)"),
            [{"guide": g, "cls": c} for g, c in classes.items()],
        )
    dialect_of(conn).refresh_statistics(conn, _CLASSES)
    t = dialect_of(conn).time_param
    conn.execute(text(_STAGE_ORDERS), {"g": group_id, "s": t(since), "u": t(until)})
    dialect_of(conn).refresh_statistics(conn, _ORDERS)


# A rule matches on five terms, staged with NULL (no category, no campaign, no class) as ''
# (a code is never empty), so that the decisions join on plain equality.
_TERMS = ("brand_id", "channel", "category", "campaign", "guide_class")


def _stage_choices(conn: Connection, rules: CommissionRules) -> None:
    """The rule of every combination of terms among the orders to accrue, decided in
    Python (`CommissionRules.choose`: the one precedence there is), a row each."""
    conn.execute(
        text(f"""CREATE TEMPORARY TABLE {_CHOICES} (brand_id VARCHAR(64) NOT NULL,
                   channel VARCHAR(32) NOT NULL, category VARCHAR(64) NOT NULL,
                   campaign VARCHAR(64) NOT NULL, guide_class VARCHAR(1) NOT NULL,
                   rule VARCHAR(64), rule_json TEXT NOT NULL, rate_bp INTEGER,
                   fixed_fen BIGINT, freeze_days INTEGER NOT NULL)""")
    )
    combos = conn.execute(
        text(f"SELECT DISTINCT {', '.join(_TERMS)} FROM {_ORDERS} WHERE done = 0")
    ).all()
    rows = []
    for c in combos:
        terms = [None if v == "" else v for v in c]
        chosen = rules.choose(OrderTerms(c.brand_id, c.channel, terms[2], terms[3], terms[4], 0))
        rows.append(
            {
                **dict(zip(_TERMS, c, strict=True)),
                "rule": chosen.rule,
                "rule_json": json.dumps(chosen.rule),
                "rate_bp": chosen.rate_bp,
                "fixed_fen": chosen.fixed_fen,
                "freeze_days": chosen.freeze_days,
            }
        )
    if rows:
        conn.execute(
            text(f"""INSERT INTO {_CHOICES} VALUES (:brand_id, :channel, :category, :campaign,
                       :guide_class, :rule, :rule_json, :rate_bp, :fixed_fen, :freeze_days)"""),
            rows,
        )
    dialect_of(conn).refresh_statistics(conn, _CHOICES)


def _decided_sql(dialect: Dialect) -> str:
    """Every order to accrue with its guide's ledger number, rule, fen and freeze end."""
    on = " AND ".join(f"d.{t} = o.{t}" for t in _TERMS)
    fen = f"COALESCE(d.fixed_fen, {rate_sql('o.paid_fen', 'd.rate_bp')})"
    return f"""SELECT o.seq, o.order_id, o.guide_id, -ga.account_no AS holder, gd.store_id,
                 COALESCE(gd.store_id, '') AS store, {cp.month_of("o.paid_at")} AS month,
                 o.channel, o.basis, o.paid_fen, o.paid_at, d.rule, d.rule_json,
                 {fen} AS fen, {dialect.plus_days("o.paid_at", "d.freeze_days")} AS freeze_until
               FROM {_ORDERS} o JOIN {_CHOICES} d ON {on}
               JOIN guide_accounts ga ON ga.group_id = :g AND ga.guide_id = o.guide_id
               LEFT JOIN guides gd ON gd.group_id = :g AND gd.guide_id = o.guide_id
               WHERE o.done = 0"""


# One summary accrual posting per guide a run (issue #19: a posting and two entries per order
# were most of the 10M month's accrual), split by store and month of payment as a release
# is (`commission_postings.summaries_sql`), dated at the latest payment among its orders
# and keyed by its first order. Each order's amount is its `commission_accruals` row.
_ACCRUAL_POSTINGS = cp.summaries_sql(f"(SELECT * FROM {_DECIDED} WHERE fen > 0)", "fen", "paid_at")
# 'commission:accrue:' bound: text() would take ':accrue' in a literal for a parameter
_ACCRUAL_KEY = ":accrue_prefix || CAST(-x.holder AS VARCHAR(20)) || :colon || x.first_order"


def accrue(
    engine: Engine,
    group_id: str,
    since: datetime,
    until: datetime,
    guide_classes: dict[str, str] | None = None,
) -> AccrualRun:
    """Accrue the commission of the orders placed in [since, until), then claw back every
    refund (up to `until`) of an accrued order not yet clawed back. `guide_classes`: guide
    -> A/B/C; none given: each guide's class from the latest period classified
    (`guides.classes`) that ended by `since`, so a month's commission pays by the class the
    guide earned before it (a guide never classified matches no class rule).

    By the set, in one transaction under the group's commission lock (a second run waits,
    then finds everything done): the orders staged with their terms, a rule chosen per
    combination of terms, the amounts and postings written by INSERT ... SELECT
    (`guides.commission_postings`): one posting per guide, store and month of payment
    (`_ACCRUAL_POSTINGS`) moving its orders' total from cm_accrued to cm_frozen, each
    order's fen its `commission_accruals` row. An order already accrued is not decided
    again; an order whose rule gives 0 fen is not recorded (a later run decides it again)."""
    run = AccrualRun()
    s, u, now = as_stored(since), as_stored(until), stored_now()
    with engine.begin() as conn:
        dialect = dialect_of(conn)
        t = dialect.time_param
        params = {"g": group_id, "s": t(s), "u": t(u), "now": t(now), **_SUFFIXES}
        dialect.advisory_lock(conn, "commission", group_id)
        dialect.tune_for_set_statement(conn, WORK_MEM)
        classes = (
            guide_classes if guide_classes is not None else classes_before(conn, group_id, since)
        )
        version, rules = stored(conn, group_id)
        _stage_orders(conn, group_id, s, u, classes)
        _stage_choices(conn, rules)
        conn.execute(
            text(f"""INSERT INTO guide_accounts (group_id, guide_id, created_at)
                     SELECT DISTINCT :g, guide_id, :now FROM {_ORDERS} WHERE done = 0
                     ON CONFLICT (group_id, guide_id) DO NOTHING"""),
            params,
        )
        dialect.refresh_statistics(conn, "guide_accounts")
        conn.execute(text(f"DROP TABLE IF EXISTS {_DECIDED}"))
        conn.execute(
            text(f"""CREATE TEMPORARY TABLE {_DECIDED} (seq BIGINT NOT NULL PRIMARY KEY,
                       order_id VARCHAR(128) NOT NULL, guide_id VARCHAR(64) NOT NULL,
                       holder BIGINT NOT NULL, store_id VARCHAR(64),
                       store VARCHAR(64) NOT NULL, month VARCHAR(7) NOT NULL,
                       channel VARCHAR(32),
                       basis VARCHAR(16) NOT NULL, paid_fen BIGINT NOT NULL,
                       paid_at TIMESTAMP NOT NULL, rule VARCHAR(64), rule_json TEXT NOT NULL,
                       fen BIGINT NOT NULL, freeze_until TIMESTAMP NOT NULL)""")
        )
        conn.execute(text(f"INSERT INTO {_DECIDED} {_decided_sql(dialect)}"), params)
        dialect.refresh_statistics(conn, _DECIDED)
        counts = conn.execute(
            text(f"""SELECT (SELECT COUNT(*) FROM {_ORDERS} WHERE done = 1) AS done_before,
                       (SELECT COUNT(*) FROM {_DECIDED} WHERE fen <= 0) AS zero""")
        ).one()
        run.already, run.no_commission = int(counts.done_before), int(counts.zero)
        cp.stage(conn)
        conn.execute(text("DROP TABLE IF EXISTS cm_accrual_postings"))
        conn.execute(text(f"CREATE TEMPORARY TABLE cm_accrual_postings AS {_ACCRUAL_POSTINGS}"))
        detail = (
            "'{\"accrued_fen\": ' || CAST(x.total AS VARCHAR(20)) "
            "|| ', \"orders\": ' || CAST(x.orders AS VARCHAR(20)) "
            "|| ', \"rules_version\": ' || CAST(:v AS VARCHAR(20)) || '}'"
        )
        request = _request("x.holder", CM_ACCRUE, ("first_order", "x.first_order"))
        conn.execute(
            text(f"""INSERT INTO {cp.POSTINGS} (seq, posting_id, member_id, kind, idempotency_key,
                       request, reference, store_id, channel, business_at, detail)
                     SELECT x.seq, {cp.new_posting_id(conn, "x.seq")}, x.holder, '{CM_ACCRUE}',
                       {_ACCRUAL_KEY}, {request}, NULL, x.store_id, NULL, x.last, {detail}
                     FROM cm_accrual_postings x"""),
            {**params, "v": version, "accrue_prefix": "commission:accrue:"},
        )
        cp.stage_moves(conn, "cm_accrual_postings", CM_ACCRUED, CM_FROZEN)
        run.postings = cp.post_staged(conn, group_id, now)
        accrued = conn.execute(
            text(f"""INSERT INTO commission_accruals (group_id, order_id, guide_id, store_id,
                       rule, rules_version, basis_fen, attribution, commission_fen,
                       freeze_until, posting_id, created_at, accrued_at)
                     SELECT :g, x.order_id, x.guide_id, x.store_id, x.rule, :v, x.paid_fen,
                       x.basis, x.fen, x.freeze_until, p.posting_id, :now, x.paid_at
                     FROM {_DECIDED} x
                     JOIN cm_accrual_postings y ON y.holder = x.holder AND y.store = x.store
                       AND y.month = x.month
                     JOIN {cp.POSTINGS} p ON p.seq = y.seq
                     WHERE x.fen > 0
                     ORDER BY x.order_id"""),
            {**params, "v": version},
        )
        run.accrued = int(accrued.rowcount)
        run.accrued_fen = int(
            conn.execute(
                text("SELECT COALESCE(SUM(total), 0) FROM cm_accrual_postings")
            ).scalar_one()
        )
        conn.execute(text("DROP TABLE cm_accrual_postings"))
        cp.drop(conn)
        for table in (_ORDERS, _CLASSES, _CHOICES, _DECIDED):
            conn.execute(text(f"DROP TABLE {table}"))
        # what the run wrote, seen by the planner of the clawbacks' joins
        dialect.refresh_statistics(conn, "ledger_postings", "ledger_entries", "commission_accruals")
        _claw_back(conn, group_id, u, now, run)
        dialect.refresh_statistics(conn, "ledger_postings", "ledger_entries", "commission_accruals")
    return run


def _request(holder: str, kind: str, *fields: tuple[str, str]) -> str:
    """The SQL of the text `ledger.posting.Request.digest` hashes: json.dumps of
    [member_id, kind, fields] with sorted keys (fields: name -> a text expression)."""
    body = " || ', ' || ".join(
        f"""'"{name}": ' || {cp.json_text(expression)}""" for name, expression in sorted(fields)
    )
    return f"""('[' || CAST({holder} AS VARCHAR(20)) || ', "{kind}", {{' || {body} || '}}]')"""


# Every refund (up to `until`) of an accrued order without its clawback posting, in the
# order the refunds happened, with what the order's clawback so far stands on:
#   accrued  the accrual's fen; c0 what earlier runs clawed back; f0 what is still frozen:
#            accrued + the clawbacks' cm_frozen moves - what a release run moved of it
#            (its commission_releases row: releases are one posting per guide and run)
#   cum      the order's refunds clawed back before plus this run's up to this one
# Then, one refund at a time in SQL (cumulative, so the clawbacks of an order sum to its
# accrual once refunded in full, never more):
#   owed  = floor(accrued x min(cum, paid) / paid)   (paid 0: accrued)
#   take  = max(c0, owed) - max(c0, owed of the refund before)
#   frozen first: of the run's takes up to this one, min(total, f0) came from frozen.
_PENDING = f"""
WITH pending AS (
  SELECT r.refund_id, r.order_id, r.amount_fen, r.refunded_at, a.guide_id, a.store_id,
    a.basis_fen, a.commission_fen AS accrued, -ga.account_no AS holder
  FROM refunds r JOIN commission_accruals a ON a.group_id = r.group_id AND a.order_id = r.order_id
  JOIN guide_accounts ga ON ga.group_id = a.group_id AND ga.guide_id = a.guide_id
  WHERE r.group_id = :g AND r.refunded_at < :u
    AND NOT EXISTS (SELECT 1 FROM ledger_postings p WHERE p.group_id = :g
      AND p.idempotency_key = 'commission' || :colon || r.order_id || :clawback || r.refund_id)
), orders_of AS (SELECT DISTINCT order_id, holder, accrued FROM pending
), before AS (
  SELECT o.order_id, o.accrued,
    CAST(COALESCE(SUM(CASE WHEN e.asset = '{CM_ACCRUED}' THEN e.amount END), 0) AS BIGINT)
      AS c0,
    CAST(COALESCE(SUM(CASE WHEN e.asset = '{CM_FROZEN}' THEN e.amount END), 0) AS BIGINT)
      AS clawed_frozen
  FROM orders_of o
  LEFT JOIN ledger_postings p ON p.group_id = :g AND p.reference = o.order_id
    AND p.kind = '{CM_CLAWBACK}' AND p.member_id = o.holder
  LEFT JOIN ledger_entries e ON e.posting_id = p.posting_id AND e.member_id = o.holder
  GROUP BY o.order_id, o.accrued
), refunded_before AS (
  SELECT r.order_id, SUM(r.amount_fen) AS fen FROM refunds r JOIN orders_of o
    ON r.group_id = :g AND r.order_id = o.order_id
  WHERE EXISTS (SELECT 1 FROM ledger_postings p WHERE p.group_id = :g
      AND p.idempotency_key = 'commission' || :colon || r.order_id || :clawback || r.refund_id)
  GROUP BY r.order_id
), cumulative AS (
  SELECT q.*, b.c0, CASE WHEN b.f0 > 0 THEN b.f0 ELSE 0 END AS f0,
    -- sums of BIGINT are NUMERIC on PostgreSQL: cast back, so that division truncates
    CAST(COALESCE(rb.fen, 0) + SUM(q.amount_fen) OVER (PARTITION BY q.order_id
      ORDER BY q.refunded_at, q.refund_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
      AS BIGINT) AS cum,
    ROW_NUMBER() OVER (ORDER BY q.refunded_at, q.refund_id) AS seq
  FROM pending q JOIN (SELECT bb.order_id, bb.c0,
      bb.accrued + bb.clawed_frozen - COALESCE(cr.released_fen, 0) AS f0
    FROM before bb LEFT JOIN commission_releases cr ON cr.group_id = :g
      AND cr.order_id = bb.order_id) b ON b.order_id = q.order_id
  LEFT JOIN refunded_before rb ON rb.order_id = q.order_id
), owed AS (
  SELECT c.*, CASE WHEN c.basis_fen <= 0 THEN c.accrued
    ELSE c.accrued * (CASE WHEN c.cum < c.basis_fen THEN c.cum ELSE c.basis_fen END)
      / c.basis_fen END AS owed
  FROM cumulative c
), taken AS (
  SELECT w.*,
    (CASE WHEN w.owed > w.c0 THEN w.owed ELSE w.c0 END) - w.c0 AS upto,
    (CASE WHEN w.prior > w.c0 THEN w.prior ELSE w.c0 END) - w.c0 AS upto_before
  FROM (SELECT o.*, LAG(o.owed, 1, 0) OVER (PARTITION BY o.order_id
          ORDER BY o.refunded_at, o.refund_id) AS prior FROM owed o) w
)
SELECT t.seq, t.refund_id, t.order_id, t.amount_fen, t.refunded_at, t.store_id, t.holder,
  t.upto - t.upto_before AS take,
  (CASE WHEN t.upto < t.f0 THEN t.upto ELSE t.f0 END)
    - (CASE WHEN t.upto_before < t.f0 THEN t.upto_before ELSE t.f0 END) AS from_frozen
FROM taken t"""


def _claw_back(
    conn: Connection, group_id: str, until: datetime, now: datetime, run: AccrualRun
) -> None:
    params = {"g": group_id, "u": dialect_of(conn).time_param(until), **_SUFFIXES}
    cp.stage(conn)
    conn.execute(text("DROP TABLE IF EXISTS cm_clawbacks"))
    conn.execute(text(f"CREATE TEMPORARY TABLE cm_clawbacks AS {_PENDING}"), params)
    detail = (
        "'{\"clawback_fen\": ' || CAST(x.take AS VARCHAR(20)) "
        "|| ', \"from_frozen_fen\": ' || CAST(x.from_frozen AS VARCHAR(20)) "
        "|| ', \"refund_fen\": ' || CAST(x.amount_fen AS VARCHAR(20)) "
        f"|| ', \"refund_id\": ' || {cp.json_text('x.refund_id')} || '}}'"
    )
    request = _request(
        "x.holder", CM_CLAWBACK, ("order_id", "x.order_id"), ("refund_id", "x.refund_id")
    )
    conn.execute(
        text(f"""INSERT INTO {cp.POSTINGS} (seq, posting_id, member_id, kind, idempotency_key,
                       request,
                   reference, store_id, channel, business_at, detail)
                 SELECT x.seq, {cp.new_posting_id(conn, "x.seq")}, x.holder, '{CM_CLAWBACK}',
                   {_KEY.format(order="x.order_id")} :clawback || x.refund_id, {request},
                   x.order_id, x.store_id, NULL, x.refunded_at, {detail}
                 FROM cm_clawbacks x"""),
        params,
    )
    conn.execute(
        text(f"""INSERT INTO {cp.LINES} (seq, asset, amount)
                 SELECT seq, '{CM_ACCRUED}', take FROM cm_clawbacks
                 UNION ALL SELECT seq, '{CM_FROZEN}', -from_frozen FROM cm_clawbacks
                 UNION ALL SELECT seq, '{CM_PAYABLE}', from_frozen - take FROM cm_clawbacks""")
    )
    cp.post_staged(conn, group_id, now)
    made = conn.execute(
        text("SELECT COUNT(*) AS n, COALESCE(SUM(take), 0) AS fen FROM cm_clawbacks")
    ).one()
    run.clawbacks, run.clawed_back_fen = int(made.n), int(made.fen)
    cp.drop(conn)
    conn.execute(text("DROP TABLE cm_clawbacks"))


# Accruals whose freeze has ended by `at` and that no run has released (no
# commission_releases row: an order is released once), with what is still frozen of each:
# its accrual less the clawbacks taken from frozen (those stay per refund, reference the
# order; summed per order once, joined by the set: a lookup per order was 8.7 s of the
# 10M release's 10.7 s read). Never below zero: a clawback takes from frozen at most what
# is there.
_MATURED = f"""
SELECT y.order_id, y.guide_id, y.holder, COALESCE(y.store_id, '') AS store, y.store_id,
  {cp.month_of("y.freeze_until")} AS month, y.freeze_until,
  CASE WHEN y.frozen > 0 THEN y.frozen ELSE 0 END AS frozen
FROM (SELECT a.order_id, a.guide_id, -ga.account_no AS holder, a.store_id, a.freeze_until,
  a.commission_fen + CAST(COALESCE(c.moved, 0) AS BIGINT) AS frozen
  FROM commission_accruals a
  JOIN guide_accounts ga ON ga.group_id = a.group_id AND ga.guide_id = a.guide_id
  LEFT JOIN (SELECT p.reference, p.member_id, SUM(e.amount) AS moved FROM ledger_postings p
    JOIN ledger_entries e ON e.posting_id = p.posting_id AND e.member_id = p.member_id
    WHERE p.group_id = :g AND p.kind = '{CM_CLAWBACK}' AND e.asset = '{CM_FROZEN}'
    GROUP BY p.reference, p.member_id) c
    ON c.reference = a.order_id AND c.member_id = -ga.account_no
  WHERE a.group_id = :g AND a.freeze_until <= :at
    AND NOT EXISTS (SELECT 1 FROM commission_releases r WHERE r.group_id = a.group_id
      AND r.order_id = a.order_id)) y"""
# One summary posting per guide and run (`commission_postings.summaries_sql`: per store
# the orders were accrued at and month the freeze ended), dated at the latest freeze end
# among its orders (never after `at`) and keyed by its first order.
_RUN_POSTINGS = cp.summaries_sql("cm_matured", "frozen", "freeze_until")
# The key of a guide's release posting of a run: its ledger number, the run's `at` and its
# first order ('commission:release:' bound: text() would take ':release' for a parameter).
_RELEASE_KEY = (
    ":release_prefix || CAST(-x.holder AS VARCHAR(20)) || :colon || :run_at "
    "|| :colon || x.first_order"
)


@dataclass
class ReleaseRun:
    released: int = 0  # orders released by this run
    released_fen: int = 0
    postings: int = 0  # summary postings written: one per guide with fen > 0 (see below)


def release(engine: Engine, group_id: str, at: datetime | None = None) -> ReleaseRun:
    """Move to payable what is still frozen of every accrual whose freeze ended by `at`
    (default now). An accrual still inside its freeze is not touched; an order is released
    once (`commission_releases`), so a second run finds nothing and writes nothing.

    By the set, in one transaction under the group's commission lock, like `accrue`, and
    as a summary: ONE posting per guide a run (`_RUN_POSTINGS`: per store and month of the
    freeze's end when a run spans them) moves its total from cm_frozen to cm_payable (kind
    cm_release, reference NULL, dated at the latest freeze end of its orders), and each
    order's amount is a `commission_releases` row pointing at it (issue #19: a posting and
    two entries per order were 62 s of the 10M month's 79 s release). A guide whose orders
    release 0 fen (clawed back in full while frozen) gets no posting (a posting moves
    something); their rows keep posting_id NULL and released_fen 0."""
    when = as_stored(at) if at is not None else stored_now()
    run = ReleaseRun()
    now = stored_now()
    with engine.begin() as conn:
        dialect = dialect_of(conn)
        params = {
            "g": group_id,
            "at": dialect.time_param(when),
            "now": dialect.time_param(now),
            "run_at": when.isoformat(),
            "release_prefix": "commission:release:",
            **_SUFFIXES,
        }
        dialect.advisory_lock(conn, "commission", group_id)
        dialect.tune_for_set_statement(conn, WORK_MEM)
        for table in ("cm_matured", "cm_run_postings"):
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(text(f"CREATE TEMPORARY TABLE cm_matured AS {_MATURED}"), params)
        conn.execute(text(f"CREATE TEMPORARY TABLE cm_run_postings AS {_RUN_POSTINGS}"))
        cp.stage(conn)
        detail = (
            "'{\"orders\": ' || CAST(x.orders AS VARCHAR(20)) "
            "|| ', \"released_fen\": ' || CAST(x.total AS VARCHAR(20)) "
            f"|| ', \"run_at\": ' || {cp.json_text(':run_at')} || '}}'"
        )
        request = _request(
            "x.holder", CM_RELEASE, ("first_order", "x.first_order"), ("run_at", ":run_at")
        )
        conn.execute(
            text(f"""INSERT INTO {cp.POSTINGS} (seq, posting_id, member_id, kind, idempotency_key,
                       request, reference, store_id, channel, business_at, detail)
                     SELECT x.seq, {cp.new_posting_id(conn, "x.seq")}, x.holder, '{CM_RELEASE}',
                       {_RELEASE_KEY}, {request}, NULL, x.store_id, NULL, x.last, {detail}
                     FROM cm_run_postings x WHERE x.total > 0"""),
            params,
        )
        cp.stage_moves(conn, "cm_run_postings", CM_FROZEN, CM_PAYABLE)
        run.postings = cp.post_staged(conn, group_id, now)
        made = conn.execute(
            text(f"""INSERT INTO commission_releases (group_id, order_id, guide_id, posting_id,
                       released_fen, freeze_until, created_at)
                     SELECT :g, m.order_id, m.guide_id, p.posting_id, m.frozen, m.freeze_until,
                       :now
                     FROM cm_matured m
                     JOIN cm_run_postings x ON x.holder = m.holder AND x.store = m.store
                       AND x.month = m.month
                     LEFT JOIN {cp.POSTINGS} p ON p.seq = x.seq
                     ORDER BY m.order_id"""),
            params,
        )
        run.released = int(made.rowcount)
        run.released_fen = int(
            conn.execute(text("SELECT COALESCE(SUM(total), 0) FROM cm_run_postings")).scalar_one()
        )
        cp.drop(conn)
        for table in ("cm_matured", "cm_run_postings"):
            conn.execute(text(f"DROP TABLE {table}"))
        # the run wrote a posting per guide to the ledger (its statistics barely move: not
        # re-read, 0.5 of the 1M month's 3.9 s) and a row per order here
        dialect.refresh_statistics(conn, "commission_releases")
    return run


def pay(engine: Engine, group_id: str, guide_id: str, month: str) -> int:
    """Pay the guide what is payable, settling the statement of `month`; returns the fen
    paid (0 when this month was already paid, or nothing is payable)."""
    month_range(month)  # a ValidationError naming `month` unless YYYY-MM
    with engine.begin() as conn:
        store_id = conn.execute(
            text("SELECT store_id FROM guides WHERE group_id = :g AND guide_id = :i"),
            {"g": group_id, "i": guide_id},
        ).scalar()
        guide = cl.holder_id(conn, group_id, guide_id)
        result = cl.pay(conn, group_id, guide, guide_id, month, store_id)
    return 0 if result.replayed else int(result.detail["paid_fen"])
