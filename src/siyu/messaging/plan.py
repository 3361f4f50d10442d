"""Planning a send: one INSERT ... SELECT writes every targeted member into
`send_recipients`, planned (or deferred out of quiet hours) or skipped with the reason.

Set-based on purpose (docs/benchmarks.md for a 10M-member segment): the members of the
target are mapped to their person after OneID merges, the duplicates among them found
(two identities of one person: one message), joined to their consent, their address on
the channel and their touches already planned or sent in the cap windows, and the reason
is the first rule a member breaks, in this order: duplicate_after_oneid, no_consent,
opted_out, no_identity_for_channel, capped_week, capped_channel_month, capped_guide_day.
The rows are written in member order, so each index is appended to or swept once, never
written at random (docs/architecture.md, "What a planning writes").

Caps count touches of other sends, so two plannings at once must not both see a member's
last free slot: plannings of one group take turns (an advisory lock on PostgreSQL, BEGIN
IMMEDIATE on SQLite). Locking members one by one instead would write a lock into each of
ten million member rows and hold them against OneID for the whole planning; plannings
are few a day and each one statement, so taking turns costs nothing that matters.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, TextClause, bindparam, text

from siyu.errors import NotFoundError, ValidationError
from siyu.messaging import policy as policies
from siyu.messaging.errors import SendState
from siyu.messaging.models import TOUCHING  # what counts against a cap
from siyu.messaging.sends import Send, Stored, Target, load
from siyu.messaging.transports.registry import registry
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now

WEEK = timedelta(days=7)
# Each sort and hash table of the planning statement in memory up to this (PostgreSQL),
# for one transaction: at 10M members its aggregates and hash joins need a few hundred MB
# each, and spilled in batches they scatter the rows written over the indexes.
WORK_MEM = "512MB"


def _segment(conn: Connection, group_id: str, target: Target) -> tuple[str, dict[str, Any]]:
    found = conn.execute(
        text("SELECT segment_id FROM segments WHERE group_id = :g AND slug = :s"),
        {"g": group_id, "s": target.segment},
    ).scalar()
    if found is None:
        raise NotFoundError(f"target.segment: no segment {target.segment!r}")
    sql = "SELECT member_id FROM segment_members WHERE group_id = :g AND segment_id = :seg"
    return sql, {"seg": int(found)}


def _stage(conn: Connection, group_id: str, target: Target) -> tuple[str, dict[str, Any]]:
    sql = "SELECT member_id FROM member_stages WHERE group_id = :g AND stage = :stage"
    return sql, {"stage": target.stage}


def _experiment(conn: Connection, group_id: str, target: Target) -> tuple[str, dict[str, Any]]:
    """An experiment's variant: its members still assigned (a member absorbed by a merge
    has left the experiment; its survivor holds the assignment)."""
    found = conn.execute(
        text("SELECT body FROM experiments WHERE group_id = :g AND code = :x"),
        {"g": group_id, "x": target.experiment},
    ).first()
    if found is None:
        raise NotFoundError(f"target.experiment: no experiment {target.experiment!r}")
    variants = [v["name"] for v in json.loads(found.body)["variants"]]
    if target.variant not in variants:
        raise ValidationError(
            "target.variant", f"one of the experiment's variants: {', '.join(variants)}"
        )
    sql = """SELECT em.member_id FROM experiment_members em
             JOIN experiments e ON e.experiment_id = em.experiment_id
             WHERE e.group_id = :g AND e.code = :x AND em.group_id = :g AND em.variant = :v
               AND em.merged_into IS NULL"""
    return sql, {"x": target.experiment, "v": target.variant}


def target_sql(conn: Connection, group_id: str, target: Target) -> tuple[str, dict[str, Any]]:
    """The SQL giving the target's member ids (parameter :g is the group), and its
    parameters. Experiments are read by their tables' names, as the experiments domain
    may import messaging, not the other way."""
    if target.segment is not None:
        return _segment(conn, group_id, target)
    if target.stage is not None:
        return _stage(conn, group_id, target)
    return _experiment(conn, group_id, target)


# Each merged member's person: its survivor, followed along chains (A into B, B into C).
# One message a person, to the person's own member if targeted, else to its smallest
# merged member: a merged member is a duplicate when the target holds its person or a
# merged member of the same person with a smaller id. Only the (few) merged members are
# compared: no sort of the whole target by person.
_PEOPLE = """WITH RECURSIVE chain (member_id, person_id, depth) AS (
    SELECT member_id, merged_into, 1 FROM members WHERE group_id = :g AND status = 'merged'
    UNION ALL
    SELECT c.member_id, m.merged_into, c.depth + 1 FROM chain c
    JOIN members m ON m.member_id = c.person_id AND m.status = 'merged' WHERE c.depth < 32
),
roots AS (SELECT c.member_id, c.person_id FROM chain c
          JOIN members p ON p.member_id = c.person_id AND p.status = 'active'),
target AS ({target}),
people AS (SELECT t.member_id, COALESCE(r.person_id, t.member_id) AS person_id
           FROM target t LEFT JOIN roots r ON r.member_id = t.member_id),
merged AS (SELECT member_id, person_id FROM roots
           WHERE member_id IN (SELECT member_id FROM ({target}) t)),
duplicates AS (SELECT a.member_id FROM merged a JOIN ({target}) t ON t.member_id = a.person_id
               UNION
               SELECT a.member_id FROM merged a
               JOIN merged b ON b.person_id = a.person_id AND b.member_id < a.member_id),
address AS (SELECT member_id, MIN(identity_id) AS identity_id FROM identities
            WHERE group_id = :g AND type = :itype {scope} GROUP BY member_id),
consent AS (SELECT member_id, MAX(last_grant_at) AS cg, MAX(last_withdrawal_at) AS cw
            FROM member_consents WHERE group_id = :g AND purpose = :purpose
              AND channel IN (:channel, '*') GROUP BY member_id),
touches AS (SELECT person_id,
              SUM(CASE WHEN due_at > :wk_lo AND due_at < :wk_hi THEN 1 ELSE 0 END) AS week,
              SUM(CASE WHEN channel = :channel AND due_at >= :mo_lo AND due_at < :mo_hi
                  THEN 1 ELSE 0 END) AS month,
              SUM(CASE WHEN sender = :sender AND due_at >= :day_lo AND due_at < :day_hi
                  THEN 1 ELSE 0 END) AS day
            FROM send_recipients WHERE group_id = :g AND purpose = 'marketing'
              AND status IN {touching} AND due_at > :lo AND due_at < :hi
            GROUP BY person_id)"""

# Each targeted member, its person, its address and the first rule it breaks (NULL: none).
_CLASSIFY = """SELECT k.member_id, k.person_id, a.identity_id, CASE {rules} END AS reason
      FROM people k
      LEFT JOIN duplicates d ON d.member_id = k.member_id
      LEFT JOIN address a ON a.member_id = k.person_id
      LEFT JOIN consent cs ON cs.member_id = k.person_id
      LEFT JOIN touches tc ON tc.person_id = k.person_id"""

_INSERT = """
INSERT INTO send_recipients (group_id, send_id, member_id, person_id, identity_id, status,
    reason, purpose, channel, sender, due_at, attempts)
SELECT CAST(:g AS VARCHAR(64)), CAST(:s AS BIGINT), x.member_id, x.person_id, x.identity_id,
       CASE WHEN x.reason IS NULL THEN CAST(:ok AS VARCHAR(16)) ELSE 'skipped' END,
       COALESCE(x.reason, CAST(:ok_reason AS VARCHAR(32))), CAST(:purpose AS VARCHAR(16)),
       CAST(:channel AS VARCHAR(32)),
       CAST(:sender AS VARCHAR(64)), :t, 0
FROM ({classify}) x
ORDER BY x.member_id"""


@dataclass(frozen=True)
class Planned:
    send_id: int
    due_at: datetime
    deferred: bool  # moved out of quiet hours
    counts: dict[str, int]  # status or skip reason -> members
    state: str  # the send's status: held (for review) or planned


def _rules(send: Send, month_cap: int | None) -> str:
    rules = ["WHEN d.member_id IS NOT NULL THEN 'duplicate_after_oneid'"]
    marketing = send.purpose == "marketing"
    if marketing:
        rules += [
            "WHEN cs.cg IS NULL THEN 'no_consent'",
            "WHEN cs.cw IS NOT NULL AND cs.cw >= cs.cg THEN 'opted_out'",
        ]
    rules.append("WHEN a.identity_id IS NULL THEN 'no_identity_for_channel'")
    if marketing:
        rules.append("WHEN COALESCE(tc.week, 0) >= :cap_week THEN 'capped_week'")
        if month_cap is not None:
            rules.append("WHEN COALESCE(tc.month, 0) >= :cap_month THEN 'capped_channel_month'")
        if send.sender is not None:
            rules.append("WHEN COALESCE(tc.day, 0) >= :cap_day THEN 'capped_guide_day'")
    return "\n             ".join(rules)


_TIMES = ("t", "wk_lo", "wk_hi", "mo_lo", "mo_hi", "day_lo", "day_hi", "lo", "hi")


@dataclass(frozen=True)
class Planning:
    """The planning statement of one send, in its parts: the CTEs, the classifying SELECT
    (each member and the first rule it breaks) and the parameters; `insert()` is what
    `plan` runs, `query(select)` runs any SELECT over the CTEs (the benchmark's
    classification without the write)."""

    ctes: str
    classify: str
    params: dict[str, Any]

    def query(self, select: str) -> TextClause:
        sql = f"{self.ctes}\n{select}"
        return text(sql).bindparams(
            *(bindparam(n, type_=DateTime()) for n in _TIMES if re.search(rf":{n}\b", sql))
        )

    def insert(self) -> TextClause:
        return self.query(_INSERT.format(classify=self.classify))


def planning(
    conn: Connection,
    group_id: str,
    stored: Stored,
    policy: policies.Policy,
    due: datetime,
    deferred: bool = False,
) -> Planning:
    """The statement planning `stored` to go at `due` under `policy`; `deferred`: `due`
    is the end of the quiet hours it was asked in."""
    send = stored.send
    channel = registry.channel(send.channel)
    sql, params = target_sql(conn, group_id, send.target)
    month_cap = policy.per_channel_month.get(send.channel)
    wk_lo, wk_hi = due - WEEK, due + WEEK
    mo_lo, mo_hi = policy.local_month(due)
    day_lo, day_hi = policy.local_day(due)
    scope = "" if send.scope is None else "AND scope = :scope"
    return Planning(
        _PEOPLE.format(target=sql, scope=scope, touching=TOUCHING),
        _CLASSIFY.format(rules=_rules(send, month_cap)),
        {
            **params,
            "g": group_id,
            "s": stored.send_id,
            "t": due,
            "itype": channel.identity_type,
            "scope": send.scope,
            "purpose": send.purpose,
            "channel": send.channel,
            "sender": send.sender,
            "ok": "deferred" if deferred else "planned",
            "ok_reason": "quiet_hours" if deferred else None,
            "cap_week": policy.per_week,
            "cap_month": month_cap,
            "cap_day": policy.per_guide_day,
            "wk_lo": wk_lo,
            "wk_hi": wk_hi,
            "mo_lo": mo_lo,
            "mo_hi": mo_hi,
            "day_lo": day_lo,
            "day_hi": day_hi,
            "lo": min(wk_lo, mo_lo, day_lo) - timedelta(seconds=1),
            "hi": max(wk_hi, mo_hi, day_hi) + timedelta(seconds=1),
        },
    )


def plan(
    engine: Engine, group_id: str, code: str, now: datetime | None = None, hold: bool = False
) -> Planned:
    """Plan the draft send `code`: every member of its target gets a row, planned,
    deferred or skipped with the reason; once only (409 `send_state` after).

    `hold` (or the send's own `review`): the send becomes `held`, kept for review (a
    preview whose members already hold their cap slots); the outbox delivers nothing until
    `lifecycle.release` makes it `planned`."""
    with engine.begin() as conn:
        dialect = dialect_of(conn)
        dialect.advisory_lock(conn, "messaging-plan", group_id)
        dialect.tune_for_set_statement(conn, WORK_MEM)
        stored = load(conn, group_id, code)
        send = stored.send
        policy_id, policy = policies.current(conn, group_id)
        asked = max(send.scheduled_at.replace(tzinfo=None), now or stored_now())
        due = policy.out_of_quiet(asked) if send.purpose == "marketing" else asked
        deferred = due != asked
        status = "held" if hold or send.review else "planned"
        changed = conn.execute(
            text("""UPDATE sends SET status = :status, due_at = :due, planned_at = :now,
                      policy_id = :p
                    WHERE send_id = :s AND status = 'draft'""").bindparams(
                bindparam("due", type_=DateTime()), bindparam("now", type_=DateTime())
            ),
            {
                "status": status,
                "due": due,
                "now": stored_now(),
                "p": policy_id,
                "s": stored.send_id,
            },
        ).rowcount
        if changed != 1:
            raise SendState(f"send: {code} is {stored.status}; it is planned once")
        statement = planning(conn, group_id, stored, policy, due, deferred)
        conn.execute(statement.insert(), statement.params)
        return Planned(
            stored.send_id, due, deferred, counts(conn, group_id, stored.send_id), status
        )


def counts(conn: Connection, group_id: str, send_id: int) -> dict[str, int]:
    """Members of the send by status, and the skipped by reason."""
    rows = conn.execute(
        text("""SELECT CASE WHEN status = 'skipped' THEN reason ELSE status END AS k, COUNT(*)
                FROM send_recipients WHERE group_id = :g AND send_id = :s GROUP BY 1"""),
        {"g": group_id, "s": send_id},
    ).all()
    return {str(k): int(n) for k, n in rows}
