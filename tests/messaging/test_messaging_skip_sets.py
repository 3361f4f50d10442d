"""The members a planning skips are kept as sets (`send_skips`), not rows: on SQLite and
PostgreSQL, a hand-made target where rules overlap answers each member as the per-row
planning did (the first rule broken only), whichever way it is read: the counts, the
members behind each figure, the pages across blocks of member ids, a callback naming a
skipped message, the result's recipients."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import Engine, text
from tests.conftest import Store
from tests.messaging.msg_helpers import T, at_stage, send, statuses

from siyu.messaging import consent, outbox, recipients
from siyu.messaging.attribution import send_result
from siyu.messaging.models import SKIP_BLOCK
from siyu.messaging.plan import plan
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now

CHANNEL = "wechat_subscribe"
LONG_AGO = datetime(2029, 1, 1)


def _members(engine: Engine, group_id: str) -> list[int]:
    """Ten unused member ids spread over four blocks of skip sets or five (taken from the
    key's sequence: the shared PostgreSQL database's other tests keep theirs)."""
    with engine.begin() as conn:
        ids = dialect_of(conn).new_ids(conn, "members", "member_id", 4 * SKIP_BLOCK)
    return [int(m) for m in ids[:: 4 * SKIP_BLOCK // 10]]


def _given(engine: Engine, group_id: str, rows: dict[str, dict[str, object]]) -> None:
    """Members as OneID leaves them (merged ones point at their survivor, their openid
    moved to it), their consent, and touches of two earlier sends this week."""
    now = stored_now()
    earlier = [send(engine, group_id, f"EARLIER-{n}").send_id for n in (1, 2)]
    with engine.begin() as conn:
        for m in rows.values():
            conn.execute(
                text("""INSERT INTO members (member_id, group_id, status, merged_into,
                          registered_at, created_at, updated_at)
                        VALUES (:m, :g, :st, :into, :t, :t, :t)"""),
                {
                    "m": m["id"],
                    "g": group_id,
                    "st": "merged" if m.get("into") else "active",
                    "into": m.get("into"),
                    "t": now,
                },
            )
        for m in rows.values():
            if m.get("openid"):
                conn.execute(
                    text("""INSERT INTO identities (group_id, type, value_key, value,
                              value_masked, scope, verified, source_channel, first_seen,
                              last_seen, member_id)
                            VALUES (:g, 'openid', :k, :v, 'o-***', '', true, 'wechat_mp',
                              :t, :t, :m)"""),
                    {"g": group_id, "k": f"{group_id}-{m['id']}", "v": f"o-{m['id']}",
                     "t": now, "m": m["id"]},
                )  # fmt: skip
            if m.get("consent"):
                conn.execute(
                    text("""INSERT INTO member_consents (group_id, member_id, purpose,
                              channel, last_grant_at, last_withdrawal_at)
                            VALUES (:g, :m, 'marketing', '*', :t, NULL)"""),
                    {"g": group_id, "m": m["id"], "t": LONG_AGO},
                )
            if m.get("withdrawn"):
                conn.execute(
                    text("""INSERT INTO member_consents (group_id, member_id, purpose,
                              channel, last_grant_at, last_withdrawal_at)
                            VALUES (:g, :m, 'marketing', :c, NULL, :t)"""),
                    {"g": group_id, "m": m["id"], "c": CHANNEL, "t": T - timedelta(days=3)},
                )
            for send_id in earlier[: int(m.get("touched", 0))]:  # type: ignore[call-overload]
                conn.execute(
                    text("""INSERT INTO send_recipients (group_id, send_id, member_id,
                              person_id, status, purpose, channel, due_at, attempts, sent_at)
                            VALUES (:g, :s, :m, :m, 'sent', 'marketing', :c, :t, 1, :t)"""),
                    {"g": group_id, "s": send_id, "m": m["id"], "c": CHANNEL,
                     "t": T - timedelta(days=1)},
                )  # fmt: skip


def _brand(store: Store) -> tuple[dict[str, int], dict[int, tuple[str, str | None]]]:
    """The hand-made target: each member's name, and what the per-row planning answered
    for each (worked out by hand from the rules, in their order)."""
    ids = iter(_members(store.engine, store.group_id))
    rows: dict[str, dict[str, object]] = {
        # reachable: address, consent, one touch (the cap is two a week)
        "ok": {"openid": True, "consent": True, "touched": 1},
        # no consent at all, also no address and capped: the first reason only
        "never": {"touched": 2},
        # withdrawn on the channel AND capped for the week: opted_out, not capped_week
        "gone": {"openid": True, "consent": True, "withdrawn": True, "touched": 2},
        "capped": {"openid": True, "consent": True, "touched": 2},
        # consent, capped, but no address on the channel: no_identity_for_channel first
        "no_openid": {"consent": True, "touched": 2},
        # a person targeted with a merged member: the member is a duplicate
        "survivor": {"openid": True, "consent": True},
        "absorbed": {"into": "survivor"},
        # a person not targeted, two of its merged members are: the smaller one stands
        # in for the person (its consent and address), the larger is a duplicate
        "person": {"openid": True, "consent": True},
        "first": {"into": "person"},
        "second": {"into": "person"},
    }
    named = {name: next(ids) for name in rows}
    for name, m in rows.items():
        m["id"] = named[name]
        if "into" in m:
            m["into"] = named[str(m["into"])]
    _given(store.engine, store.group_id, rows)
    at_stage(store.engine, store.group_id, [named[n] for n in rows if n != "person"])
    expected = {
        "ok": ("planned", None),
        "never": ("skipped", "no_consent"),
        "gone": ("skipped", "opted_out"),
        "capped": ("skipped", "capped_week"),
        "no_openid": ("skipped", "no_identity_for_channel"),
        "survivor": ("planned", None),
        "absorbed": ("skipped", "duplicate_after_oneid"),
        "first": ("planned", None),
        "second": ("skipped", "duplicate_after_oneid"),
    }
    return named, {named[n]: answer for n, answer in expected.items()}


def _walk(store: Store, send_id: int, figure: str, limit: int) -> list[recipients.Recipient]:
    found: list[recipients.Recipient] = []
    with store.engine.connect() as conn:
        while True:
            after = found[-1].member_id if found else 0
            got = recipients.page(conn, store.group_id, send_id, figure, after=after, limit=limit)
            found += got
            if len(got) < limit:
                return found


def test_the_skipped_are_answered_as_the_per_row_planning_did(store: Store) -> None:
    g, e = store.group_id, store.engine
    named, expected = _brand(store)
    # ids in four blocks or more: each set holds one block's members, pages cross them
    assert len({m // SKIP_BLOCK for m in named.values()}) >= 4
    stored = send(e, g, "SETS")
    # when the send is planned
    planned = plan(e, g, "SETS", now=T - timedelta(hours=1))
    # then each member is answered with its status and first reason only
    assert statuses(e, g, "SETS") == expected
    assert planned.counts == Counter(r or s for s, r in expected.values())
    # the skipped are kept in sets, none as a row
    with e.connect() as conn:
        skipped_rows = conn.execute(
            text("SELECT COUNT(*) FROM send_recipients WHERE send_id = :s AND status = 'skipped'"),
            {"s": stored.send_id},
        ).scalar_one()
        in_sets = conn.execute(
            text("SELECT SUM(member_count) FROM send_skips WHERE send_id = :s"),
            {"s": stored.send_id},
        ).scalar_one()
    assert (skipped_rows, in_sets) == (0, 6)
    # the members behind each figure are the same, listed whole or a page at a time
    for figure in ("all", "skipped", "planned", *recipients.REASONS):
        behind = sorted(m for m, (s, r) in expected.items() if figure in ("all", s, r))
        assert recipients.member_ids(e, g, "SETS", figure) == behind, figure
        for limit in (1, 2, 100):
            assert [r.member_id for r in _walk(store, stored.send_id, figure, limit)] == behind
    # a skipped member keeps its person and the person's address, like its row did
    page = {r.member_id: r for r in _walk(store, stored.send_id, "all", 3)}
    second, person = named["second"], named["person"]
    assert (page[second].person_id, page[second].status) == (person, "skipped")
    assert page[second].reason == "duplicate_after_oneid"
    assert page[second].address == "o-***"  # the person's openid, masked
    assert page[named["no_openid"]].address is None
    assert page[named["first"]].person_id == person
    due = page[named["never"]].due_at
    assert due is not None and due.replace(tzinfo=None) == planned.due_at
    # a callback naming a skipped message finds it skipped; the result counts every member
    with e.connect() as conn:
        found = outbox.message_of(conn, g, stored.send_id, named["never"])
        assert found is not None and found.status == "skipped"
        assert outbox.message_of(conn, g, stored.send_id, named["person"]) is None
    assert send_result(e, g, "SETS").recipients == len(expected)


def test_a_withdrawal_after_planning_joins_the_planned_skips(store: Store) -> None:
    g, e = store.group_id, store.engine
    named, _ = _brand(store)
    stored = send(e, g, "LATER")
    plan(e, g, "LATER", now=T - timedelta(hours=1))
    # when a planned member withdraws before the outbox reaches it
    assert consent.record(e, g, named["ok"], "withdraw", source="console") == 1
    # then the figure holds both: skipped at planning (a set) and since (a row)
    both = sorted([named["gone"], named["ok"]])
    assert recipients.member_ids(e, g, "LATER", "opted_out") == both
    assert [r.member_id for r in _walk(store, stored.send_id, "opted_out", 1)] == both
    with e.connect() as conn:
        assert recipients.page(conn, g, stored.send_id, "planned", limit=10)[0].member_id == min(
            named["survivor"], named["first"]
        )
    assert statuses(e, g, "LATER")[named["ok"]] == ("skipped", "opted_out")


def test_quiet_hours_defer_the_reachable_and_the_skipped_stay_sets(store: Store) -> None:
    g, e = store.group_id, store.engine
    _, expected = _brand(store)
    send(e, g, "NIGHT", at=T.replace(hour=14, minute=30))  # 22:30 in Shanghai
    planned = plan(e, g, "NIGHT", now=T)
    assert planned.deferred
    deferred = {
        m: ("deferred", "quiet_hours") if s == "planned" else (s, r)
        for m, (s, r) in expected.items()
    }
    assert statuses(e, g, "NIGHT") == deferred
    assert planned.counts == Counter(
        {"deferred": 3, "no_consent": 1, "opted_out": 1, "capped_week": 1,
         "no_identity_for_channel": 1, "duplicate_after_oneid": 2}
    )  # fmt: skip


def test_chains_of_merges_and_a_cycle_are_planned_per_person(store: Store) -> None:
    """Adversarial merges: chains of two (the target holding the chain's end, or only
    members along it, the tip given the smaller id), and a cycle, which ends in no
    person (each of its members stands alone, as it is)."""
    ids = iter(_members(store.engine, store.group_id))
    rows: dict[str, dict[str, object]] = {
        "end": {"openid": True, "consent": True},
        "mid": {"into": "end"},
        "tip": {"into": "mid"},
        # the person not targeted: its tip (the smaller id) stands in, mid is a duplicate
        "tip2": {"into": "mid2"},
        "end2": {"openid": True, "consent": True},
        "mid2": {"into": "end2"},
        "loop_a": {"into": "loop_b", "openid": True, "consent": True},
        "loop_b": {"into": "loop_a"},
    }
    named = {name: next(ids) for name in rows}
    for name, m in rows.items():
        m["id"] = named[name]
        if "into" in m:
            m["into"] = named[str(m["into"])]
    _given(store.engine, store.group_id, rows)
    targeted = ["end", "tip", "tip2", "mid2", "loop_a", "loop_b"]
    at_stage(store.engine, store.group_id, [named[n] for n in targeted])
    send(store.engine, store.group_id, "CHAINS")
    planned = plan(store.engine, store.group_id, "CHAINS", now=T - timedelta(hours=1))
    expected = {
        "end": ("planned", None),
        "tip": ("skipped", "duplicate_after_oneid"),
        "tip2": ("planned", None),
        "mid2": ("skipped", "duplicate_after_oneid"),
        "loop_a": ("planned", None),
        "loop_b": ("skipped", "no_consent"),
    }
    assert statuses(store.engine, store.group_id, "CHAINS") == {
        named[n]: answer for n, answer in expected.items()
    }
    assert planned.counts == {"planned": 3, "duplicate_after_oneid": 2, "no_consent": 1}
    # each is planned to, or skipped for, the person at its chain's end, with that address
    with store.engine.connect() as conn:
        send_id = conn.execute(
            text("SELECT send_id FROM sends WHERE code = 'CHAINS' AND group_id = :g"),
            {"g": store.group_id},
        ).scalar_one()
        page = {
            r.member_id: r
            for r in recipients.page(conn, store.group_id, send_id, "all", after=0, limit=10)
        }
    people = {"end": "end", "tip": "end", "tip2": "end2", "mid2": "end2", "loop_a": "loop_a"}
    for member, person in people.items():
        assert page[named[member]].person_id == named[person], member
        assert page[named[member]].address == "o-***", member
    assert page[named["loop_b"]].person_id == named["loop_b"]
