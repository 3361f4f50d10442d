"""The transactional outbox: planned recipients delivered at least once, each message
once from the receiver's point of view (its idempotency key is the send and the member).

A worker claims a batch (rows locked skipping those another worker holds, on PostgreSQL:
workers share the queue; BEGIN IMMEDIATE on SQLite) and, in that same transaction,
re-checks each marketing message's consent: what was withdrawn before the claim is skipped
(`opted_out`), never delivered. A claim is a lease: the rows carry `claimed_until`, the
worker delivers outside any transaction, then marks each sent, retry (exponential
backoff) or failed. A worker that dies leaves its rows to be claimed again when the lease
runs out; the platform may then see a message twice, with the same key.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, Connection, DateTime, Engine, Row, bindparam, text

from siyu.errors import ConfigError, ValidationError
from siyu.identity.types import IDENTITY_TYPES
from siyu.messaging import policy as policies
from siyu.messaging import receipts
from siyu.messaging.consent import GRANTS
from siyu.messaging.models import EVENT_KINDS, SKIP_BLOCK
from siyu.messaging.transports.base import Message, Outcome, Transport
from siyu.privacy import Vault
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now

LEASE = timedelta(minutes=5)
BACKOFF = timedelta(minutes=1)  # the first retry; doubled each attempt
MAX_BACKOFF = timedelta(hours=6)
MAX_ATTEMPTS = 6
WAITING = "('planned', 'deferred', 'retry')"

WAITING_STATES = ("planned", "deferred", "retry")
# One purpose and waiting state at a time, in due order alone: the due index (group,
# purpose, status, due_at) gives those rows already in order, so LIMIT stops after `n` of
# them. Over all three states at once (IN), or with a tie-breaker after due_at, every
# waiting row was read and sorted on every batch (docs/benchmarks.md, "Messaging:
# delivering the outbox"). The purpose leads so that in quiet hours the marketing rows
# are not read at all: a send of millions still going at 21:00 stops until 09:00, while
# an order's service message goes on.
_DUE = """SELECT r.send_id, r.member_id, r.due_at FROM send_recipients r
    WHERE r.group_id = :g AND r.purpose = :purpose AND r.status = :st AND r.due_at <= :now
      AND (r.next_attempt_at IS NULL OR r.next_attempt_at <= :now)
      AND (r.claimed_until IS NULL OR r.claimed_until <= :now)
      AND r.send_id IN (SELECT send_id FROM sends WHERE group_id = :g AND status = 'planned')
    ORDER BY r.due_at LIMIT :n{lock}"""
# the person's marketing consent on the row's channel, as (last grant, last withdrawal)
_CONSENT = """(SELECT MAX(c.last_{x}) FROM member_consents c
    WHERE c.group_id = send_recipients.group_id AND c.member_id = send_recipients.person_id
      AND c.purpose = 'marketing' AND c.channel IN (send_recipients.channel, '*'))"""
_REVOKE = """UPDATE send_recipients SET status = 'skipped',
      reason = CASE WHEN {g} IS NULL THEN 'no_consent' ELSE 'opted_out' END
    WHERE group_id = :g AND ({keys}) AND purpose = 'marketing' AND NOT {grants}"""
_CLAIM = """UPDATE send_recipients SET claimed_until = :until, claimed_by = :w,
      attempts = attempts + 1
    WHERE group_id = :g AND ({keys}) AND status IN {waiting}"""
_MESSAGES = """SELECT r.send_id, s.code, s.body, r.member_id, r.channel, r.sender,
      i.type, i.value, i.value_enc
    FROM send_recipients r JOIN sends s ON s.send_id = r.send_id
    LEFT JOIN identities i ON i.identity_id = r.identity_id
    WHERE r.group_id = :g AND ({keys}) AND r.claimed_by = :w
      AND r.status IN {waiting}
    ORDER BY r.send_id, r.member_id"""
# one message's state and channel, for a callback naming it by its key: a row, or a
# member the planning skipped (in a skip set, block :b)
_MESSAGE_OF = """SELECT status, channel FROM send_recipients
    WHERE group_id = :g AND send_id = :s AND member_id = :m
    UNION ALL
    SELECT 'skipped', s.channel FROM send_skips k JOIN sends s ON s.send_id = k.send_id
    {entries}
    WHERE k.group_id = :g AND k.send_id = :s AND k.id_block = :b AND {member} = :m"""


@dataclass(frozen=True)
class Delivered:
    claimed: int
    sent: int
    retry: int
    failed: int
    revoked: int  # consent withdrawn before the claim: skipped, not delivered


def _keys(pairs: Sequence[tuple[int, int]], alias: str = "") -> str:
    """The rows of a batch as a condition: per send, its member ids as one IN list (ints
    read back from the store). Not `(send_id, member_id) IN ((s, m), ...)`: PostgreSQL
    plans those row values as an OR of one index probe per row, which took longer to
    plan (~150 ms for 500) than to run."""
    members: dict[int, list[str]] = defaultdict(list)
    for s, m in pairs:
        members[int(s)].append(str(int(m)))
    return " OR ".join(
        f"({alias}send_id = {s} AND {alias}member_id IN ({', '.join(ms)}))"
        for s, ms in sorted(members.items())
    )


def _times(*names: str) -> list[BindParameter[Any]]:
    return [bindparam(n, type_=DateTime()) for n in names]


def _address(kind: str, value: str | None, enc: bytes | None, vault: Vault | None) -> str:
    if IDENTITY_TYPES[kind].personal == "encrypt":
        if vault is None:
            raise ConfigError(f"delivering to {kind} needs the vault (SIYU_SECRET_KEY)")
        assert enc is not None
        return vault.decrypt(enc, kind)
    if value is None:
        raise ValidationError("identity", f"{kind} keeps no value to deliver to")
    return value


def claim(
    engine: Engine,
    group_id: str,
    worker: str,
    *,
    limit: int = 500,
    lease: timedelta = LEASE,
    now: datetime | None = None,
    vault: Vault | None = None,
) -> tuple[list[Message], int]:
    """Lease up to `limit` due messages to `worker`, re-checking consent in the same
    transaction; returns the messages and how many were revoked (withdrawn consent)."""
    at = as_stored(now) if now is not None else stored_now()
    with engine.begin() as conn:
        d = dialect_of(conn)
        due: list[Row[Any]] = []
        for purpose in _open_purposes(conn, group_id, at):
            for state in WAITING_STATES:  # earliest due first across them, merged here
                due += conn.execute(
                    text(_DUE.format(lock=d.row_lock_skip_locked)).bindparams(*_times("now")),
                    {"g": group_id, "purpose": purpose, "st": state, "now": at, "n": limit},
                ).all()
        if not due:
            return [], 0
        due.sort(key=lambda r: (r.due_at, r.send_id, r.member_id))
        # the rows past `limit` (of another state) stay unclaimed; only their row locks,
        # gone at commit, were taken
        pairs = [(r.send_id, r.member_id) for r in due[:limit]]
        keys = _keys(pairs)
        grant, withdrawal = _CONSENT.format(x="grant_at"), _CONSENT.format(x="withdrawal_at")
        revoked = conn.execute(
            text(_REVOKE.format(keys=keys, g=grant, grants=GRANTS.format(g=grant, w=withdrawal))),
            {"g": group_id},
        ).rowcount
        conn.execute(
            text(_CLAIM.format(keys=keys, waiting=WAITING)).bindparams(*_times("until")),
            {"g": group_id, "until": at + lease, "w": worker},
        )
        return _messages(conn, group_id, worker, _keys(pairs, "r."), vault), int(revoked)


def _open_purposes(conn: Connection, group_id: str, at: datetime) -> tuple[str, ...]:
    """The purposes a message may be delivered for at `at`: a marketing message waits out
    the group's quiet hours (planning defers a send asked in them; this holds the rest of
    a send still going when they begin, and its retries), a service message never does."""
    _, policy = policies.current(conn, group_id)
    return ("service",) if policy.out_of_quiet(at) != at else ("service", "marketing")


def _messages(
    conn: Connection, group_id: str, worker: str, keys: str, vault: Vault | None
) -> list[Message]:
    rows = conn.execute(
        text(_MESSAGES.format(keys=keys, waiting=WAITING)), {"g": group_id, "w": worker}
    ).all()
    found = []
    for r in rows:
        body = json.loads(r.body)
        found.append(
            Message(
                group_id=group_id,
                send_id=int(r.send_id),
                send_code=r.code,
                member_id=int(r.member_id),
                channel=r.channel,
                address=_address(r.type, r.value, r.value_enc, vault),
                idempotency_key=f"{group_id}:{int(r.send_id)}:{int(r.member_id)}",
                content=body["content"],
                sender=r.sender,
            )
        )
    return found


def waiting(engine: Engine, group_id: str, now: datetime | None = None) -> int:
    """How many messages are due now (a worker's progress bar's total)."""
    at = as_stored(now) if now is not None else stored_now()
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(f"""SELECT COUNT(*) FROM send_recipients r
                    WHERE r.group_id = :g AND r.status IN {WAITING} AND r.due_at <= :now
                      AND r.send_id IN (SELECT send_id FROM sends
                                        WHERE group_id = :g AND status = 'planned')""").bindparams(
                    *_times("now")
                ),
                {"g": group_id, "now": at},
            ).scalar()
            or 0
        )


def backoff(attempts: int) -> timedelta:
    """The wait before attempt `attempts + 1`: 1 min, 2, 4, ... at most 6 h."""
    return min(BACKOFF * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)


_HELD = (
    """WHERE group_id = :g AND send_id = :s AND member_id = :m AND claimed_by = :w
      AND status IN """
    + WAITING
)
_SENT = f"""UPDATE send_recipients SET status = 'sent', sent_at = :at, provider_ref = :ref,
      claimed_until = NULL, last_error = NULL {_HELD}"""
_NOT_SENT = f"""UPDATE send_recipients SET status = :st, next_attempt_at = :next,
      claimed_until = NULL, last_error = :e {_HELD}"""


def settle(
    engine: Engine,
    group_id: str,
    worker: str,
    outcomes: Sequence[tuple[Message, Outcome]],
    now: datetime | None = None,
) -> tuple[int, int, int]:
    """Mark each message sent, retry or failed, where `worker` still holds it, and record
    the receipts parked for the messages sent; returns (sent, retry, failed). One statement
    executed for all of a kind (executemany: one round trip on PostgreSQL's pipeline), not
    one per message."""
    at = as_stored(now) if now is not None else stored_now()
    ok = [(m, o) for m, o in outcomes if o.ok]
    not_ok = [(m, o) for m, o in outcomes if not o.ok]
    sent = retry = failed = 0
    if not outcomes:
        return 0, 0, 0
    with engine.begin() as conn:
        p = {"g": group_id, "w": worker}
        held = {  # the attempts of the rows still held; a row not here another worker has
            (int(r.send_id), int(r.member_id)): (int(r.attempts), r.purpose)
            for r in conn.execute(
                text(f"""SELECT send_id, member_id, attempts, purpose FROM send_recipients
                         WHERE group_id = :g AND claimed_by = :w AND status IN {WAITING}
                           AND ({_keys([(m.send_id, m.member_id) for m, _ in outcomes])})"""),
                p,
            )
        }
        if ok:
            sent = conn.execute(
                text(_SENT).bindparams(*_times("at")),
                [
                    {**p, "s": m.send_id, "m": m.member_id, "at": at, "ref": o.provider_ref}
                    for m, o in ok
                ],
            ).rowcount
            # receipts the platform pushed before this batch was settled
            receipts.adopt(
                conn,
                group_id,
                [
                    (m.send_id, m.member_id, m.channel, o.provider_ref)
                    for m, o in ok
                    if o.provider_ref is not None and (m.send_id, m.member_id) in held
                ],
            )
        marks = []
        _, policy = policies.current(conn, group_id)
        for m, o in not_ok:
            found = held.get((m.send_id, m.member_id))
            if found is None:
                continue  # the lease ran out and another worker has it
            attempts, purpose = found
            final = o.permanent or attempts >= MAX_ATTEMPTS
            retry_at = at + backoff(attempts)
            if purpose == "marketing":  # a retry is not sent in quiet hours either
                retry_at = policy.out_of_quiet(retry_at)
            failed += final
            retry += not final
            marks.append(
                {
                    **p,
                    "s": m.send_id,
                    "m": m.member_id,
                    "st": "failed" if final else "retry",
                    "next": None if final else retry_at,
                    "e": (o.error or "")[:300],
                }
            )
        if marks:
            conn.execute(text(_NOT_SENT).bindparams(*_times("next")), marks)
    return sent, retry, failed


def deliver(
    engine: Engine,
    group_id: str,
    transports: Mapping[str, Transport],
    *,
    worker: str = "worker",
    limit: int = 500,
    lease: timedelta = LEASE,
    now: datetime | None = None,
    vault: Vault | None = None,
) -> Delivered:
    """Claim one batch, hand each channel's messages to its transport, settle them."""
    messages, revoked = claim(
        engine, group_id, worker, limit=limit, lease=lease, now=now, vault=vault
    )
    by_channel: dict[str, list[Message]] = defaultdict(list)
    for message in messages:
        by_channel[message.channel].append(message)
    outcomes: list[tuple[Message, Outcome]] = []
    for channel, batch in by_channel.items():
        transport = transports.get(channel)
        if transport is None:
            raise ConfigError(f"no transport configured for messaging channel {channel!r}")
        try:
            answers = transport.deliver(batch)
        except Exception as exc:  # the batch is retried, whatever broke
            answers = [Outcome(False, error=f"{type(exc).__name__}")] * len(batch)
        outcomes.extend(zip(batch, answers, strict=True))
    sent, retry, failed = settle(engine, group_id, worker, outcomes, now)
    return Delivered(len(messages), sent, retry, failed, revoked)


def message_of(conn: Connection, group_id: str, send_id: int, member_id: int) -> Row[Any] | None:
    """The state (`status`) and `channel` of the message of `send_id` to `member_id`, None
    if the send never recorded the member."""
    entries, (member,) = dialect_of(conn).id_set_rows("k.members", 1)
    return conn.execute(
        text(_MESSAGE_OF.format(entries=entries, member=member)),
        {"g": group_id, "s": send_id, "m": member_id, "b": member_id // SKIP_BLOCK},
    ).first()


def record_event(
    engine: Engine,
    group_id: str,
    send_id: int,
    member_id: int,
    kind: str,
    external_id: str,
    at: datetime | None = None,
    detail: str | None = None,
) -> bool:
    """A delivery status callback or a click, once per provider event id; True if new."""
    if kind not in EVENT_KINDS:
        raise ValidationError("kind", f"one of {', '.join(EVENT_KINDS)}", kind)
    if not external_id or len(external_id) > 128:
        raise ValidationError("external_id", "1-128 characters: the provider's event id")
    with engine.begin() as conn:
        return bool(
            conn.execute(
                text("""INSERT INTO message_events (group_id, send_id, member_id, kind,
                          external_id, detail, at)
                        VALUES (:g, :s, :m, :k, :x, :d, :at)
                        ON CONFLICT (group_id, external_id) DO NOTHING""").bindparams(
                    *_times("at")
                ),
                {
                    "g": group_id,
                    "s": send_id,
                    "m": member_id,
                    "k": kind,
                    "x": external_id,
                    "d": None if detail is None else detail[:300],
                    "at": as_stored(at) if at is not None else stored_now(),
                },
            ).rowcount
        )
