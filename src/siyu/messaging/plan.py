"""Planning a send: a few set statements record every targeted member, planned (or
deferred out of quiet hours) as a `send_recipients` row, or skipped with the reason in the
send's skip sets (`send_skips`: one row per reason and block of member ids).

Set-based on purpose (docs/benchmarks.md for a 10M-member segment): the members of the
target are mapped to their person after OneID merges, the duplicates among them found
(two identities of one person: one message), and each person given, by one aggregate
over the inputs stacked, their address on the channel, their consent and their touches
already planned or sent in the cap windows; the reason is the first rule a member breaks,
in this order: duplicate_after_oneid, no_consent, opted_out, no_identity_for_channel,
capped_week, capped_channel_month, capped_guide_day, global_holdout (a marketing send
only: the person, reachable, is in the group's global holdout). The people are grouped
by sorting, not hashing, and the rows written in the grouping's order (person order,
nearly member order), so each index is appended to or swept once, never written at random
(docs/architecture.md, "What a planning writes" and "Skipped members as sets").

Caps count touches of other sends, so two plannings at once must not both see a member's
last free slot: plannings of one group take turns (an advisory lock on PostgreSQL, BEGIN
IMMEDIATE on SQLite). Locking members one by one instead would write a lock into each of
ten million member rows and hold them against OneID for the whole planning; plannings
are few a day and each a few statements, so taking turns costs nothing that matters.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, TextClause, bindparam, text

from siyu.campaigns import global_holdout
from siyu.campaigns.assignment import bucket_sql
from siyu.errors import NotFoundError, ValidationError
from siyu.messaging import policy as policies
from siyu.messaging.errors import SendState
from siyu.messaging.models import SKIP_BLOCK, TOUCHING  # TOUCHING: what counts against a cap
from siyu.messaging.sends import Send, Stored, Target, load
from siyu.messaging.transports.registry import registry
from siyu.store.dialect import Dialect, dialect_of
from siyu.store.times import stored_now

WEEK = timedelta(days=7)
# Each sort and hash table of the planning in memory up to this (PostgreSQL), for one
# transaction: the aggregate by person holds about 240 bytes a person (2.4 GB at 10M
# members: beyond it, PostgreSQL spills it to disk in partitions and goes on).
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


# Each merged member of the group and its person: its survivor, followed along chains (A
# into B, B into C); none when the chain does not end (longer than 32, or a cycle). Few
# (1% of members in the benchmark): written to a temporary table and analysed, so the
# planner sees how few, not the recursion's estimate.
_ROOTS = """WITH RECURSIVE merged AS (
    SELECT member_id, merged_into FROM members WHERE group_id = :g AND status = 'merged'),
chain (member_id, person_id, depth) AS (
    SELECT member_id, merged_into, 1 FROM merged
    UNION ALL
    SELECT c.member_id, m.merged_into, c.depth + 1 FROM chain c
    JOIN merged m ON m.member_id = c.person_id WHERE c.depth < 32)
SELECT c.member_id, c.person_id FROM chain c
WHERE NOT EXISTS (SELECT 1 FROM merged m WHERE m.member_id = c.person_id)"""

# The targeted members of each person who has a merged member in the target, the person's
# own member too when targeted. One message a person, to the person's own member if
# targeted, else to its smallest merged member; the others are duplicates. Only these
# few are compared: no sort of the whole target by person.
_SHARED = """WITH targeted AS (
    SELECT r.member_id, r.person_id FROM plan_roots r
    WHERE r.member_id IN (SELECT member_id FROM ({target}) t)
    UNION ALL
    SELECT DISTINCT r.person_id, r.person_id FROM plan_roots r
    WHERE r.member_id IN (SELECT member_id FROM ({target}) t)
      AND r.person_id IN (SELECT member_id FROM ({target}) t)),
ranked AS (SELECT member_id, person_id,
             MAX(CASE WHEN member_id = person_id THEN 1 ELSE 0 END)
               OVER (PARTITION BY person_id) AS person_targeted,
             MIN(CASE WHEN member_id <> person_id THEN member_id END)
               OVER (PARTITION BY person_id) AS first_merged
           FROM targeted)
SELECT member_id, person_id,
       CASE WHEN member_id <> person_id
              AND (person_targeted = 1 OR member_id > first_merged) THEN 1 ELSE 0 END
         AS duplicate
FROM ranked"""

# Each person reached by the target, with what the rules need: the member to address,
# their address on the channel, consent and touches in the cap windows. One aggregate by
# person over the inputs stacked (not three aggregates and four hash joins of millions of
# rows), and no join after it: a targeted member is its own person unless it is in
# plan_shared, whose rows key each such person to its one member not a duplicate and
# close each merged member's own key (-1: MIN makes it no person). Mapping each of the
# target's millions of members to its person by a join, and joining the people back to
# plan_shared, cost 12 of the 54 s at 10M (docs/benchmarks.md).
_FACTS = """WITH facts AS (
    SELECT t.member_id AS person_id, t.member_id AS addressed,
           CAST(NULL AS BIGINT) AS identity_id, {no_times}, 0 AS week, 0 AS month, 0 AS day
    FROM ({target}) t
    UNION ALL
    SELECT person_id, CASE WHEN duplicate = 0 THEN member_id END, NULL, {no_times}, 0, 0, 0
    FROM plan_shared
    UNION ALL
    SELECT member_id, -1, NULL, {no_times}, 0, 0, 0 FROM plan_shared
    WHERE member_id <> person_id
    UNION ALL
    SELECT member_id, NULL, identity_id, {no_times}, 0, 0, 0 FROM identities
    WHERE group_id = :g AND type = :itype {scope}{marketing}
),
people AS (SELECT person_id, MIN(addressed) AS addressed, MIN(identity_id) AS identity_id,
             MAX(cg) AS cg, MAX(cw) AS cw, SUM(week) AS week, SUM(month) AS month,
             SUM(day) AS day
           FROM facts GROUP BY person_id)"""
_NO_TIMES = "CAST(NULL AS TIMESTAMP) AS cg, CAST(NULL AS TIMESTAMP) AS cw"
_MARKETING = """
    UNION ALL
    SELECT member_id, NULL, NULL, last_grant_at, last_withdrawal_at, 0, 0, 0
    FROM member_consents WHERE group_id = :g AND purpose = :purpose
      AND channel IN (:channel, '*')
    UNION ALL
    SELECT person_id, NULL, NULL, NULL, NULL,
           CASE WHEN due_at > :wk_lo AND due_at < :wk_hi THEN 1 ELSE 0 END,
           CASE WHEN channel = :channel AND due_at >= :mo_lo AND due_at < :mo_hi
             THEN 1 ELSE 0 END,
           CASE WHEN sender = :sender AND due_at >= :day_lo AND due_at < :day_hi
             THEN 1 ELSE 0 END
    FROM send_recipients WHERE group_id = :g AND purpose = 'marketing'
      AND status IN {touching} AND due_at > :lo AND due_at < :hi"""

# Each targeted member, its person, its address and the first rule it breaks (NULL:
# none): the people addressed, then the duplicates among the merged members' (the
# first rule, so they need none of the facts but their person's address). The people
# come in person order, which the grouping's sort gives for nothing; it is member order
# but for the few people addressed through a merged member, so the rows written from
# this table (read back in the order written) reach each index in order without a sort
# of their own (a 4.75M-row sort at 10M; docs/benchmarks.md).
_CLASSIFY = """SELECT * FROM (
        SELECT k.addressed AS member_id, k.person_id, k.identity_id,
               CASE {rules} END AS reason
        FROM people k WHERE k.addressed > 0 ORDER BY k.person_id) addressed
      UNION ALL
      SELECT s.member_id, s.person_id,
             (SELECT MIN(i.identity_id) FROM identities i WHERE i.member_id = s.person_id
                AND i.group_id = :g AND i.type = :itype {identity_scope}),
             'duplicate_after_oneid'
      FROM plan_shared s WHERE s.duplicate = 1"""

# In plan_classified's order: person order (above).
_RECIPIENTS = """
INSERT INTO send_recipients (group_id, send_id, member_id, person_id, identity_id, status,
    reason, purpose, channel, sender, due_at, attempts)
SELECT CAST(:g AS VARCHAR(64)), CAST(:s AS BIGINT), x.member_id, x.person_id, x.identity_id,
       CAST(:ok AS VARCHAR(16)), CAST(:ok_reason AS VARCHAR(32)), CAST(:purpose AS VARCHAR(16)),
       CAST(:channel AS VARCHAR(32)), CAST(:sender AS VARCHAR(64)), :t, 0
FROM plan_classified x WHERE x.reason IS NULL"""

_SKIPS = """
INSERT INTO send_skips (group_id, send_id, reason, id_block, member_count, members)
SELECT CAST(:g AS VARCHAR(64)), CAST(:s AS BIGINT), x.reason, x.member_id / {block},
       COUNT(*), {triples}
FROM plan_classified x WHERE x.reason IS NOT NULL
GROUP BY x.reason, x.member_id / {block}"""

TEMPORARY = ("plan_roots", "plan_shared", "plan_classified")


@dataclass(frozen=True)
class Planned:
    send_id: int
    due_at: datetime
    deferred: bool  # moved out of quiet hours
    counts: dict[str, int]  # status or skip reason -> members
    state: str  # the send's status: held (for review) or planned


def _rules(send: Send, month_cap: int | None, held_out: str | None) -> str:
    """The rules after duplicate_after_oneid (the duplicates are classified apart);
    `held_out`: the SQL condition on `k` of the global holdout, for a marketing send."""
    rules: list[str] = []
    marketing = send.purpose == "marketing"
    if marketing:
        rules += [
            "WHEN k.cg IS NULL THEN 'no_consent'",
            "WHEN k.cw IS NOT NULL AND k.cw >= k.cg THEN 'opted_out'",
        ]
    rules.append("WHEN k.identity_id IS NULL THEN 'no_identity_for_channel'")
    if marketing:
        rules.append("WHEN k.week >= :cap_week THEN 'capped_week'")
        if month_cap is not None:
            rules.append("WHEN k.month >= :cap_month THEN 'capped_channel_month'")
        if send.sender is not None:
            rules.append("WHEN k.day >= :cap_day THEN 'capped_guide_day'")
    if held_out is not None:
        # last: the held out are those the send would have reached (what holding them out
        # withholds), and only they are hashed (1.2 us a person on PostgreSQL)
        rules.append(f"WHEN {held_out} THEN 'global_holdout'")
    return "\n             ".join(rules)


_TIMES = ("t", "wk_lo", "wk_hi", "mo_lo", "mo_hi", "day_lo", "day_hi", "lo", "hi")


def _bound(sql: str) -> TextClause:
    return text(sql).bindparams(
        *(bindparam(n, type_=DateTime()) for n in _TIMES if re.search(rf":{n}\b", sql))
    )


@dataclass(frozen=True)
class Planning:
    """The planning of one send, in its steps: `prepare()` writes the temporary tables
    (the merged members' people, then each targeted member classified), `write()` the
    recipients and the skip sets from them, `drop()` removes them; `query(select)` runs
    any SELECT over the classification's CTEs instead (the benchmark's classification
    without the write, after the first two temporary tables)."""

    target: str
    facts: str
    classify: str
    params: dict[str, Any]
    dialect: Dialect

    def query(self, select: str) -> TextClause:
        return _bound(f"{self.facts}\n{select}")

    def people(self, conn: Connection) -> None:
        """The first two temporary tables: the group's merged members and their people,
        the targeted members of the people with a merged member in the target."""
        self.drop(conn)
        conn.execute(text(f"CREATE TEMPORARY TABLE plan_roots AS {_ROOTS}"), self.params)
        self.dialect.refresh_statistics(conn, "plan_roots")
        shared = _SHARED.format(target=self.target)
        conn.execute(text(f"CREATE TEMPORARY TABLE plan_shared AS {shared}"), self.params)
        # looked up by person for each of millions of people: SQLite, which keeps no
        # statistics of a temporary table, would otherwise scan it for each
        conn.execute(text("CREATE INDEX plan_shared_person ON plan_shared (person_id)"))
        self.dialect.refresh_statistics(conn, "plan_shared")

    def prepare(self, conn: Connection) -> None:
        self.people(conn)
        classified = f"CREATE TEMPORARY TABLE plan_classified AS {self.facts}\n{self.classify}"
        with self.dialect.grouping_by_sort(conn):  # millions of people
            conn.execute(_bound(classified), self.params)

    def write(self, conn: Connection) -> int:
        """Write the rows that may be sent and the skip sets; returns how many rows."""
        written = conn.execute(_bound(_RECIPIENTS), self.params).rowcount
        triples = self.dialect.id_set_agg("x.member_id", "x.person_id", "x.identity_id")
        conn.execute(text(_SKIPS.format(block=SKIP_BLOCK, triples=triples)), self.params)
        return int(written)

    def drop(self, conn: Connection) -> None:
        for name in TEMPORARY:
            conn.execute(text(f"DROP TABLE IF EXISTS {name}"))


def planning(
    conn: Connection,
    group_id: str,
    stored: Stored,
    policy: policies.Policy,
    due: datetime,
    deferred: bool = False,
) -> Planning:
    """The statements planning `stored` to go at `due` under `policy`; `deferred`: `due`
    is the end of the quiet hours it was asked in."""
    send = stored.send
    channel = registry.channel(send.channel)
    sql, params = target_sql(conn, group_id, send.target)
    month_cap = policy.per_channel_month.get(send.channel)
    wk_lo, wk_hi = due - WEEK, due + WEEK
    mo_lo, mo_hi = policy.local_month(due)
    day_lo, day_hi = policy.local_day(due)
    scope = "" if send.scope is None else "AND scope = :scope"
    marketing = _MARKETING.format(touching=TOUCHING) if send.purpose == "marketing" else ""
    # the person (the member after merges) is held out, as campaigns and experiments
    # hold out the members they target (campaigns.global_holdout); a service message
    # (an order's, a password's) is no treatment and still goes
    holdout = global_holdout.current(conn, group_id)
    held_out = None
    if send.purpose == "marketing" and holdout.share_bp > 0:
        bucket = bucket_sql(dialect_of(conn), "CAST(:holdout_salt AS TEXT)", "k.person_id")
        held_out = f"{bucket} < :holdout_bp"
    return Planning(
        sql,
        _FACTS.format(target=sql, scope=scope, marketing=marketing, no_times=_NO_TIMES),
        _CLASSIFY.format(
            rules=_rules(send, month_cap, held_out),
            identity_scope="" if send.scope is None else "AND i.scope = :scope",
        ),
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
            "holdout_salt": holdout.salt,
            "holdout_bp": holdout.share_bp,
            "wk_lo": wk_lo,
            "wk_hi": wk_hi,
            "mo_lo": mo_lo,
            "mo_hi": mo_hi,
            "day_lo": day_lo,
            "day_hi": day_hi,
            "lo": min(wk_lo, mo_lo, day_lo) - timedelta(seconds=1),
            "hi": max(wk_hi, mo_hi, day_hi) + timedelta(seconds=1),
        },
        dialect_of(conn),
    )


def plan(
    engine: Engine, group_id: str, code: str, now: datetime | None = None, hold: bool = False
) -> Planned:
    """Plan the draft send `code`: every member of its target is recorded, planned or
    deferred (a row of `send_recipients`), or skipped with the reason (in `send_skips`);
    once only (409 `send_state` after).

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
        steps = planning(conn, group_id, stored, policy, due, deferred)
        steps.prepare(conn)
        written = steps.write(conn)
        steps.drop(conn)
        # the rows just written are all of one status: their count is the write's, not a
        # second read of millions of rows (counts() reads them for a send planned earlier)
        planned = {str(steps.params["ok"]): written} if written else {}
        return Planned(
            stored.send_id, due, deferred, planned | skipped(conn, group_id, stored.send_id), status
        )


def skipped(conn: Connection, group_id: str, send_id: int) -> dict[str, int]:
    """Members the planning of a send skipped, by reason (its skip sets)."""
    rows = conn.execute(
        text("""SELECT reason, SUM(member_count) FROM send_skips
                WHERE group_id = :g AND send_id = :s GROUP BY reason"""),
        {"g": group_id, "s": send_id},
    ).all()
    return {str(k): int(n) for k, n in rows}


def counts(conn: Connection, group_id: str, send_id: int) -> dict[str, int]:
    """Members of the send by status, and the skipped by reason (rows and skip sets)."""
    rows = conn.execute(
        text("""SELECT CASE WHEN status = 'skipped' THEN reason ELSE status END AS k, COUNT(*)
                FROM send_recipients WHERE group_id = :g AND send_id = :s GROUP BY 1
                UNION ALL
                SELECT reason, SUM(member_count) FROM send_skips
                WHERE group_id = :g AND send_id = :s GROUP BY reason"""),
        {"g": group_id, "s": send_id},
    ).all()
    found: dict[str, int] = {}
    for k, n in rows:
        found[str(k)] = found.get(str(k), 0) + int(n)
    return found
