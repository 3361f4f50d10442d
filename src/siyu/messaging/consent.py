"""Consent per member, purpose and channel (PIPL: marketing only with consent; a
withdrawal honoured at once).

Every grant and withdrawal is an append-only `consent_events` row with its source and
time; `member_consents` keeps the current state as the last grant and the last withdrawal,
which only move forward, so the state is the same whatever order events arrive in, and a
merged person's state is the later of each over the members merged (any withdrawal after
the last grant wins: the most restrictive). A consent for channel '*' counts for every
channel.

A withdrawal also cancels, in its own transaction, every marketing message to the person
on that channel that no worker has claimed (skipped, `opted_out`); one already claimed is
re-checked by the outbox in the transaction that claims it, so what was withdrawn before
the claim is never delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, DateTime, Engine, bindparam, text

from siyu.errors import ValidationError
from siyu.messaging.models import ALL_CHANNELS, PURPOSES
from siyu.messaging.transports.registry import registry
from siyu.store.times import as_stored, stored_now, stored_time

# the later of a stored time and a new one (SQLite's MAX() of a NULL is NULL)
LATER = "CASE WHEN {old} IS NULL OR {new} > {old} THEN {new} ELSE {old} END"
# whether a (last_grant_at, last_withdrawal_at) pair grants
GRANTS = "({g} IS NOT NULL AND ({w} IS NULL OR {g} > {w}))"

_UPSERT = f"""INSERT INTO member_consents
    (group_id, member_id, purpose, channel, last_grant_at, last_withdrawal_at)
    VALUES (:g, :m, :p, :c, :grant_at, :withdrawal_at)
    ON CONFLICT (group_id, member_id, purpose, channel) DO UPDATE SET
      last_grant_at = {LATER.format(old="member_consents.last_grant_at", new="excluded.last_grant_at")},
      last_withdrawal_at = {LATER.format(old="member_consents.last_withdrawal_at", new="excluded.last_withdrawal_at")}"""  # noqa: E501

# unclaimed marketing messages of the person on the channel(s), cancelled by a withdrawal
_CANCEL = """UPDATE send_recipients SET status = 'skipped', reason = 'opted_out'
    WHERE group_id = :g AND person_id = :m AND purpose = :p
      AND status IN ('planned', 'deferred', 'retry')
      AND (claimed_until IS NULL OR claimed_until <= :now) {channel}"""


@dataclass(frozen=True)
class State:
    member_id: int
    purpose: str
    channel: str
    granted: bool
    last_grant_at: datetime | None
    last_withdrawal_at: datetime | None


def _check(purpose: str, channel: str) -> None:
    if purpose not in PURPOSES:
        raise ValidationError("purpose", f"one of {', '.join(PURPOSES)}", purpose)
    if channel != ALL_CHANNELS:
        registry.channel(channel)


def _person_chain(conn: Connection, member_id: int) -> list[int]:
    """The member and every member it is (transitively) merged into, the person last."""
    chain = [member_id]
    while len(chain) < 32:
        up = conn.execute(
            text("SELECT merged_into FROM members WHERE member_id = :m AND status = 'merged'"),
            {"m": chain[-1]},
        ).scalar()
        if up is None or int(up) in chain:
            break
        chain.append(int(up))
    return chain


def record(
    engine: Engine,
    group_id: str,
    member_id: int,
    action: str,
    *,
    purpose: str = "marketing",
    channel: str = ALL_CHANNELS,
    source: str,
    at: datetime | None = None,
) -> int:
    """Append a grant or withdrawal and apply it to the current state of the member and
    of the person it is merged into; a withdrawal cancels unclaimed messages at once.
    Returns the messages cancelled."""
    if action not in ("grant", "withdraw"):
        raise ValidationError("action", "grant or withdraw", action)
    _check(purpose, channel)
    if not source or len(source) > 64:
        raise ValidationError("source", "1-64 characters: where the consent was given", source)
    now = stored_now()
    when = now if at is None else as_stored(at)
    granted = action == "grant"
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO consent_events (group_id, member_id, purpose, channel, action,
                      source, at, recorded_at)
                    VALUES (:g, :m, :p, :c, :a, :s, :at, :now)""").bindparams(
                bindparam("at", type_=DateTime()), bindparam("now", type_=DateTime())
            ),
            {
                "g": group_id,
                "m": member_id,
                "p": purpose,
                "c": channel,
                "a": action,
                "s": source,
                "at": when,
                "now": now,
            },
        )
        chain = _person_chain(conn, member_id)
        upsert = text(_UPSERT).bindparams(
            bindparam("grant_at", type_=DateTime()), bindparam("withdrawal_at", type_=DateTime())
        )
        conn.execute(
            upsert,
            [
                {
                    "g": group_id,
                    "m": m,
                    "p": purpose,
                    "c": channel,
                    "grant_at": when if granted else None,
                    "withdrawal_at": None if granted else when,
                }
                for m in chain
            ],
        )
        if granted:
            return 0
        only = "" if channel == ALL_CHANNELS else "AND channel = :c"
        return int(
            conn.execute(
                text(_CANCEL.format(channel=only)).bindparams(bindparam("now", type_=DateTime())),
                {"g": group_id, "m": chain[-1], "p": purpose, "c": channel, "now": now},
            ).rowcount
        )


def state(
    conn: Connection, group_id: str, member_id: int, channel: str, purpose: str = "marketing"
) -> State:
    """The member's consent on `channel` for `purpose`, counting '*' events."""
    row = conn.execute(
        text("""SELECT MAX(last_grant_at) AS g, MAX(last_withdrawal_at) AS w
                FROM member_consents WHERE group_id = :g AND member_id = :m
                  AND purpose = :p AND channel IN (:c, '*')"""),
        {"g": group_id, "m": member_id, "p": purpose, "c": channel},
    ).one()
    g = None if row.g is None else stored_time(row.g)
    w = None if row.w is None else stored_time(row.w)
    return State(member_id, purpose, channel, g is not None and (w is None or g > w), g, w)


def consent_join(person: str, purpose: str, channel: str) -> str:
    """SQL: a LEFT JOIN (alias `cs`, columns g and w) of each person's consent on a channel,
    for the set-based planner and the outbox; `person`, `purpose` and `channel` are SQL
    expressions."""
    return f"""LEFT JOIN (SELECT member_id, MAX(last_grant_at) AS g,
                                 MAX(last_withdrawal_at) AS w
                          FROM member_consents WHERE group_id = :g AND purpose = {purpose}
                            AND channel IN ({channel}, '*')
                          GROUP BY member_id) cs ON cs.member_id = {person}"""
