"""Commission postings by the set: the month's accruals, clawbacks or releases of every
guide written by a handful of INSERT ... SELECT statements, not one transaction per order.

`ledger.posting.post_in` makes one posting at a time (claim the key, lock the holder's
accounts, read, update, append): some 15 ms an order on a loaded server, so a month of a
10M-member brand (two million orders) would take hours. The commission jobs decide every
posting of a run in SQL instead and stage them here, in two temporary tables:

    cm_staged_postings  seq (1..n), posting_id (`new_posting_id`), member_id (the guide's
                        ledger number), kind, key,
                        request (the JSON whose SHA-256 is the request digest, the same
                        text `Request.digest` hashes), reference, store_id, channel,
                        business_at, detail (JSON)
    cm_staged_lines     seq, asset, amount: the posting's moves between the guide's four
                        accounts (a zero move is not written, as post_in does not)

`post_staged` then writes them as `post_in` would, in the caller's transaction: the
guides' accounts created if missing and locked in account-id order (as every single
posting locks them), posting ids from the table's own sequence, the entries with their
running balances (each account's balance before the run plus the moves of the postings
before, by posting id), and each account's balance moved once by the run's total. The
jobs stage only postings whose key is not yet taken (they read that under the group's
advisory lock), so the unique key never refuses a row; a plan that would take a frozen or
paid account below zero raises before commit, and nothing is half-applied.

What a posting made this way does not keep is `detail.balances` (the holder's balances
after it, which `post_in` keeps to answer a replay of an API request): no API request
makes these postings, so none replays them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from siyu.guides.models import COMMISSION_ASSETS, GUIDE_OWNER
from siyu.ledger.errors import InsufficientBalance
from siyu.store.dialect import dialect_of

POSTINGS = "cm_staged_postings"
LINES = "cm_staged_lines"
_DELTAS = "cm_staged_deltas"
_ACCOUNTS = "cm_staged_accounts"
_NEGATIVE = frozenset({"cm_accrued", "cm_payable"})  # commission_ledger.GUIDE.negative


def json_text(expression: str) -> str:
    """A text expression as a JSON string literal (quotes and backslashes escaped: codes
    hold no control characters)."""
    return f"""('"' || REPLACE(REPLACE({expression}, '\\', '\\\\'), '"', '\\"') || '"')"""


def month_of(timestamp: str) -> str:
    """The SQL of a timestamp's 'YYYY-MM' (both dialects store and cast it ISO-first)."""
    return f"SUBSTR(CAST({timestamp} AS VARCHAR(32)), 1, 7)"


def summaries_sql(rows: str, amount: str, at: str) -> str:
    """One summary posting per guide, store and month of `rows` (a table with holder,
    store: the store or '', store_id, month, order_id and the `amount` and `at` columns):
    seq, holder, store, month, store_id, total, orders, last (the latest `at`: the
    posting's business time) and first_order (which keys it: an order is in one summary
    of a kind, ever). Accruals and releases are both such summaries (sessions 19, 20):
    split by store and month only because one posting across them would misstate a
    store's or a month's statement."""
    return f"""
SELECT ROW_NUMBER() OVER (ORDER BY r.holder, r.store, r.month) AS seq, r.holder, r.store,
  r.month, MAX(r.store_id) AS store_id, CAST(SUM(r.{amount}) AS BIGINT) AS total,
  COUNT(*) AS orders, MAX(r.{at}) AS last, MIN(r.order_id) AS first_order
FROM {rows} r GROUP BY r.holder, r.store, r.month"""


def stage_moves(conn: Connection, summaries: str, source: str, target: str) -> None:
    """Stage each summary's move of its total from `source` to `target` (totals > 0)."""
    conn.execute(
        text(f"""INSERT INTO {LINES} (seq, asset, amount)
                 SELECT seq, '{source}', -total FROM {summaries} WHERE total > 0
                 UNION ALL
                 SELECT seq, '{target}', total FROM {summaries} WHERE total > 0""")
    )


def stage(conn: Connection) -> None:
    """Empty staging tables for one run (temporary: the connection's own)."""
    drop(conn)
    conn.execute(
        text(f"""CREATE TEMPORARY TABLE {POSTINGS} (seq BIGINT NOT NULL PRIMARY KEY,
                   posting_id BIGINT, member_id BIGINT NOT NULL, kind VARCHAR(16) NOT NULL,
                   idempotency_key VARCHAR(200) NOT NULL, request TEXT NOT NULL,
                   reference VARCHAR(128), store_id VARCHAR(64), channel VARCHAR(32),
                   business_at TIMESTAMP NOT NULL, detail TEXT NOT NULL)""")
    )
    conn.execute(
        text(f"""CREATE TEMPORARY TABLE {LINES} (seq BIGINT NOT NULL, asset VARCHAR(16) NOT NULL,
                   amount BIGINT NOT NULL)""")
    )


def new_posting_id(conn: Connection, seq: str) -> str:
    """The SQL of a staged posting's id (`seq`: its 1..n), to stage it with."""
    return dialect_of(conn).new_id_sql(conn, "ledger_postings", "posting_id", seq)


def drop(conn: Connection) -> None:
    for table in (POSTINGS, LINES, _DELTAS, _ACCOUNTS):
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))


def post_staged(conn: Connection, group_id: str, now: datetime) -> int:
    """Write the staged postings and their entries; returns how many postings."""
    dialect = dialect_of(conn)
    dialect.refresh_statistics(conn, POSTINGS, LINES)
    params = {"g": group_id, "o": GUIDE_OWNER, "now": dialect.time_param(now)}
    assets = " UNION ALL ".join(
        f"SELECT '{a}' AS asset, {'TRUE' if a in _NEGATIVE else 'FALSE'} AS neg"
        for a in COMMISSION_ASSETS
    )
    conn.execute(
        text(f"""INSERT INTO ledger_accounts (group_id, owner, member_id, asset, balance,
                   allow_negative, created_at)
                 SELECT :g, :o, m.member_id, a.asset, 0, a.neg, :now
                 FROM (SELECT DISTINCT member_id FROM {POSTINGS}) m CROSS JOIN ({assets}) a
                 WHERE TRUE
                 ON CONFLICT (group_id, member_id, owner, asset) DO NOTHING"""),
        params,
    )
    conn.execute(
        text(f"""SELECT account_id FROM ledger_accounts WHERE group_id = :g AND owner = :o
                 AND member_id IN (SELECT member_id FROM {POSTINGS})
                 {dialect.lock_rows_in_order("account_id")}"""),
        params,
    ).all()
    # The run's accounts apart, with their statistics: the planner's of ledger_accounts
    # may date from before the guides' accounts were made, and would loop over them.
    conn.execute(
        text(f"""CREATE TEMPORARY TABLE {_ACCOUNTS} (account_id BIGINT NOT NULL PRIMARY KEY,
                   member_id BIGINT NOT NULL, asset VARCHAR(16) NOT NULL,
                   balance BIGINT NOT NULL)""")
    )
    conn.execute(
        text(f"""INSERT INTO {_ACCOUNTS} SELECT account_id, member_id, asset, balance
                 FROM ledger_accounts WHERE group_id = :g AND owner = :o
                   AND member_id IN (SELECT member_id FROM {POSTINGS})"""),
        params,
    )
    dialect.refresh_statistics(conn, _ACCOUNTS)
    written = conn.execute(
        text(f"""INSERT INTO ledger_postings (posting_id, group_id, idempotency_key,
                   request_sha256, kind, member_id, reference, store_id, channel, detail,
                   business_at, created_at)
                 SELECT posting_id, :g, idempotency_key, {dialect.sha256_hex("request")}, kind,
                   member_id, reference, store_id, channel, detail, business_at, :now
                 FROM {POSTINGS} ORDER BY posting_id"""),
        params,
    ).rowcount
    # Each entry's balance: the account's before the run plus the run's moves up to it.
    conn.execute(
        text(f"""INSERT INTO ledger_entries (posting_id, group_id, account_id, member_id, asset,
                   amount, balance_before, balance_after, business_at, created_at)
                 SELECT x.posting_id, :g, x.account_id, x.member_id, x.asset, x.amount,
                   x.after - x.amount, x.after, x.business_at, :now
                 FROM (SELECT p.posting_id, a.account_id, p.member_id, l.asset, l.amount,
                         p.business_at, a.balance + SUM(l.amount) OVER (
                           PARTITION BY a.account_id ORDER BY p.posting_id
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS after
                       FROM {LINES} l JOIN {POSTINGS} p ON p.seq = l.seq
                       JOIN {_ACCOUNTS} a ON a.member_id = p.member_id AND a.asset = l.asset
                       WHERE l.amount <> 0) x
                 ORDER BY x.posting_id, x.account_id"""),
        params,
    )
    conn.execute(
        text(f"""CREATE TEMPORARY TABLE {_DELTAS} (member_id BIGINT NOT NULL,
                   asset VARCHAR(16) NOT NULL, delta BIGINT NOT NULL,
                   PRIMARY KEY (member_id, asset))""")
    )
    conn.execute(
        text(f"""INSERT INTO {_DELTAS} SELECT p.member_id, l.asset, SUM(l.amount)
                 FROM {LINES} l JOIN {POSTINGS} p ON p.seq = l.seq
                 GROUP BY p.member_id, l.asset""")
    )
    conn.execute(
        text(f"""UPDATE ledger_accounts SET balance = balance + (SELECT d.delta FROM {_DELTAS} d
                   WHERE d.member_id = ledger_accounts.member_id
                     AND d.asset = ledger_accounts.asset)
                 WHERE group_id = :g AND owner = :o AND EXISTS (SELECT 1 FROM {_DELTAS} d
                   WHERE d.member_id = ledger_accounts.member_id
                     AND d.asset = ledger_accounts.asset)"""),
        params,
    )
    below = conn.execute(
        text(f"""SELECT asset, balance FROM ledger_accounts
                 WHERE group_id = :g AND owner = :o AND balance < 0 AND NOT allow_negative
                   AND member_id IN (SELECT member_id FROM {_DELTAS})"""),
        params,
    ).first()
    if below is not None:  # a bug in a job's plan: the whole run rolls back
        raise InsufficientBalance(below.asset, 0, int(below.balance))
    return int(written)
