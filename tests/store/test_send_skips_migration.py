"""Migration 0026 on existing data, both dialects: the members earlier plannings skipped
move from rows into skip sets and are answered as before; down again, they are rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, text
from tests.store.test_identity_scope_migration import blank  # noqa: F401  (the fixture)

from siyu.messaging.recipients import recipients_sql
from siyu.store.migrate import downgrade, upgrade

AT = datetime(2030, 1, 7, 2, 0)
# member, person, address, status, reason, attempts: skipped by the planning (no consent,
# a duplicate), planned, and skipped after planning (a cancelled send, the outbox's
# re-check of a claimed message)
ROWS = [
    (70_001, 70_001, 501, "skipped", "no_consent", 0),
    (70_002, 70_001, 501, "skipped", "duplicate_after_oneid", 0),
    (200_003, 200_003, 503, "planned", None, 0),
    (200_004, 200_004, 504, "skipped", "send_cancelled", 0),
    (300_005, 300_005, 505, "skipped", "opted_out", 1),
]


def _rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("""SELECT member_id, person_id, identity_id, status, reason, attempts
                        FROM send_recipients ORDER BY member_id""")
            )
        ]


def test_skipped_rows_move_into_sets_and_back(blank: Engine) -> None:  # noqa: F811
    # given a store before skip sets, with one planned send's rows
    upgrade(blank, "0025")
    with blank.begin() as conn:
        conn.execute(
            text("""INSERT INTO sends (send_id, group_id, code, channel, purpose, body, status,
                      scheduled_at, due_at, planned_at, created_at)
                    VALUES (1, 'g', 'S', 'sms', 'marketing', '{}', 'planned', :t, :t, :t, :t)"""),
            {"t": AT},
        )
        for m, p, i, status, reason, attempts in ROWS:
            conn.execute(
                text("""INSERT INTO send_recipients (group_id, send_id, member_id, person_id,
                          identity_id, status, reason, purpose, channel, due_at, attempts)
                        VALUES ('g', 1, :m, :p, :i, :st, :r, 'marketing', 'sms', :t, :a)"""),
                {"m": m, "p": p, "i": i, "st": status, "r": reason, "t": AT, "a": attempts},
            )
    # when it is migrated to the head
    upgrade(blank)
    # then the planning's skips are sets, one per reason and block; the rest stay rows
    with blank.connect() as conn:
        sets = conn.execute(
            text("SELECT reason, id_block, member_count FROM send_skips ORDER BY reason")
        ).all()
        answered = conn.execute(
            text(f"""SELECT x.member_id, x.person_id, x.identity_id, x.status, x.reason,
                       x.attempts FROM ({recipients_sql(conn, "all")}) x
                     ORDER BY x.member_id"""),
            {"g": "g", "s": 1, "after": 0, "b0": 0, "b1": 2**62},
        ).all()
    assert [tuple(s) for s in sets] == [("duplicate_after_oneid", 1, 1), ("no_consent", 1, 1)]
    assert [r[0] for r in _rows(blank)] == [200_003, 200_004, 300_005]
    # and every member is answered as its row was
    assert [tuple(r) for r in answered] == ROWS
    # and down again, the sets are rows as they were
    downgrade(blank, "0025")
    assert _rows(blank) == ROWS
