"""The probabilistic matches' review queue on both dialects: accepting a pair merges it (an
undoable merge that batch OneID keeps), undoing that merge blocks the pair, a rejection
blocks it too, a decision is made once, and a member merged elsewhere meanwhile is
followed to the member holding it now. The queue is seeded by hand (as the batch run
fills it), for members imported through the normal importer."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import insert, text
from tests.brandfiles import write, write_reference
from tests.conftest import Store

from siyu.auth.principal import Principal, Role
from siyu.config import DEFAULT_STRONG_TYPES
from siyu.errors import ValidationError
from siyu.identity import service
from siyu.identity.errors import MergeError, ReviewDecided, ReviewNotFound, StrongConflict
from siyu.identity.matching.merge import MATCH_CHANNEL, merge_matched
from siyu.identity.matching.review import (
    ReviewDetail,
    ReviewPage,
    accept_review,
    blocked_pairs,
    get_review,
    list_reviews,
    reject_review,
)
from siyu.identity.models import match_reviews
from siyu.importer.service import import_directory
from siyu.ledger import points
from siyu.ledger.posting import Request
from siyu.privacy import Vault
from siyu.store.reads import Reader, make_reads
from siyu.store.times import stored_now

T = TypeVar("T")
NAME = "王小明"
WEIGHTS = [
    {"field": "name", "level": "exact", "weight": 6.5},
    {"field": "phone", "level": "one digit off", "weight": 4.2},
    {"field": "city", "level": "different", "weight": -1.3},
]


@dataclass
class Queue:
    store: Store
    vault: Vault
    members: dict[str, int]  # member_ref -> member_id
    imported: dict[int, int]  # identity_id -> the member it had before any match

    def review(self, a: str, b: str, weight: float = 12.0, status: str = "pending") -> int:
        """A review row as the batch run writes it, for members `a` and `b`."""
        low, high = sorted((self.members[a], self.members[b]))
        with self.store.engine.begin() as conn:
            return int(
                conn.execute(
                    insert(match_reviews)
                    .values(
                        group_id=self.store.group_id,
                        member_a=low,
                        member_b=high,
                        match_weight=weight,
                        match_probability=2**weight / (1 + 2**weight),
                        field_weights=json.dumps(WEIGHTS),
                        status=status,
                        detected_at=stored_now(),
                    )
                    .returning(match_reviews.c.review_id)
                ).scalar_one()
            )

    def row(self, sql: str, **params: Any) -> Any:
        with self.store.engine.connect() as conn:
            return conn.execute(text(sql), {"g": self.store.group_id, **params}).first()

    def status(self, ref: str) -> tuple[str, int | None]:
        found = self.row(
            "SELECT status, merged_into FROM members WHERE group_id = :g AND member_id = :m",
            m=self.members[ref],
        )
        return str(found.status), found.merged_into

    def holders(self, *refs: str) -> set[int]:
        """The members now holding the identities the members `refs` were imported with."""
        wanted = {self.members[r] for r in refs}
        ids = [i for i, m in self.imported.items() if m in wanted]
        assert ids
        with self.store.engine.connect() as conn:
            return {
                int(m)
                for (m,) in conn.execute(
                    text(
                        "SELECT DISTINCT member_id FROM identities WHERE group_id = :g "
                        f"AND identity_id IN ({','.join(map(str, ids))})"
                    ),
                    {"g": self.store.group_id},
                )
            }

    def resolve(self) -> Any:
        return service.resolve_all(self.store.engine, self.store.group_id, DEFAULT_STRONG_TYPES)

    def read(self, work: Callable[[Reader], Any]) -> Any:
        """Run an async read on the store's read port (PostgreSQL: the async pool)."""

        async def run() -> Any:
            reads = make_reads(self.store.engine, pool_size=1)
            try:
                async with reads.connection() as reader:
                    return await work(reader)
            finally:
                await reads.close()

        return asyncio.run(run())


def _member(ref: str, at: str, brand: str, card: str, phone: str, name: str) -> dict[str, str]:
    row = {
        "member_ref": ref,
        "brand_id": brand,
        "registered_at": at,
        "channel": "pos",
        "phone": phone,
        "name": name,
        "birth_date": "1990-04-01",
        "city": "上海",
    }
    return {**row, "card": card} if card else row


@pytest.fixture
def queue(store: Store, vault: Vault, tmp_path: Path) -> Queue:
    # given members imported from two brands' tills: M1/M2 one person (a phone typed with
    # two digits swapped), M3/M4/M5 another (M5 registered online: a phone, no card); M6/M7
    # each hold a WeChat unionid of their own
    write_reference(tmp_path)
    write(
        tmp_path / "members.csv",
        [
            _member("M1", "2024-01-01T10:00:00", "B1", "C1", "13812345678", NAME),
            _member("M2", "2024-03-01T10:00:00", "B2", "D2", "13812345687", NAME),
            _member("M3", "2024-01-05T10:00:00", "B1", "C3", "13900001111", "李四"),
            _member("M4", "2024-02-05T10:00:00", "B2", "D4", "13900001112", "李四"),
            _member("M5", "2024-04-05T10:00:00", "B1", "", "13700002222", "李四"),
            _member("M6", "2024-01-07T10:00:00", "B1", "C6", "13600003333", "赵六"),
            _member("M7", "2024-02-07T10:00:00", "B2", "D7", "13600003334", "赵六"),
        ],
    )
    write(
        tmp_path / "identities.csv",
        [
            {
                "type": "unionid",
                "value": unionid,
                "channel": "miniprogram",
                "observed_at": "2024-05-01T00:00:00",
                "verified": "true",
                "linked_type": "card",
                "linked_value": card,
                "brand_id": brand,
            }
            for unionid, card, brand in (("u-6", "C6", "B1"), ("u-7", "D7", "B2"))
        ],
    )
    import_directory(store.engine, vault, store.group_id, tmp_path, tmp_path / "rejects")
    service.resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    with store.engine.connect() as conn:
        members = dict(
            conn.execute(
                text("SELECT source_ref, member_id FROM members WHERE group_id = :g"),
                {"g": store.group_id},
            ).all()
        )
        imported = dict(
            conn.execute(
                text("SELECT identity_id, member_id FROM identities WHERE group_id = :g"),
                {"g": store.group_id},
            ).all()
        )
    assert len(members) == 7 and len(set(members.values())) == 7
    return Queue(
        store,
        vault,
        {str(k): int(v) for k, v in members.items()},
        {int(k): int(v) for k, v in imported.items()},
    )


ADMIN = "key:1"


def test_accepting_merges_the_pair_and_batch_oneid_keeps_it(queue: Queue) -> None:
    review = queue.review("M1", "M2")
    m1, m2 = queue.members["M1"], queue.members["M2"]
    # when a reviewer accepts the pair
    decision = accept_review(queue.store.engine, queue.store.group_id, review, ADMIN)
    # then the younger member merged into the older, as a recorded merge of mode review
    assert decision.status == "accepted" and decision.survivor_id == m1
    assert queue.status("M2") == ("merged", m1)
    merge = queue.row(
        "SELECT survivor_id, merged_id, mode, evidence FROM merges WHERE merge_id = :m",
        m=decision.merge_id,
    )
    assert (merge.survivor_id, merge.merged_id, merge.mode) == (m1, m2, "review")
    # and the review says who decided, when, and which merge it made
    row = queue.row("SELECT * FROM match_reviews WHERE review_id = :r", r=review)
    assert (row.status, row.decided_by, row.merge_id) == ("accepted", ADMIN, decision.merge_id)
    assert row.decided_at is not None
    # and an unverified evidence link joins one identity of each, the merge's bridge
    link = queue.row(
        "SELECT link_id, identity_a, identity_b, kind, channel, verified, blocked "
        "FROM identity_links WHERE group_id = :g AND kind = 'evidence'"
    )
    assert (link.channel, bool(link.verified), bool(link.blocked)) == (MATCH_CHANNEL, False, False)
    assert json.loads(merge.evidence)["links"] == [link.link_id]
    assert {queue.imported[link.identity_a], queue.imported[link.identity_b]} == {m1, m2}
    # when batch OneID recomputes every member from the identity links
    report = queue.resolve()
    # then the pair stays one member: nothing moved, nothing new
    assert (report.new_members, report.moved_identities) == (0, 0)
    assert queue.holders("M1", "M2") == {m1}
    assert queue.status("M2") == ("merged", m1)


def test_balances_follow_an_accepted_merge(queue: Queue) -> None:
    # given the younger member holds points
    engine, group = queue.store.engine, queue.store.group_id
    m1, m2 = queue.members["M1"], queue.members["M2"]
    points.earn(engine, Request(group, m2, "earn", "p-m2", {}), 120, None)
    review = queue.review("M1", "M2")
    # when the pair is accepted
    accept_review(engine, group, review, ADMIN)
    # then the survivor holds them (the ledger settled the merge)
    held = queue.row(
        "SELECT member_id, balance FROM ledger_accounts WHERE group_id = :g AND "
        "owner = 'member' AND asset = 'points' AND balance <> 0"
    )
    assert (held.member_id, held.balance) == (m1, 120)


def test_undoing_an_accepted_merge_blocks_the_pair_for_good(queue: Queue) -> None:
    engine, group = queue.store.engine, queue.store.group_id
    m1, m2 = queue.members["M1"], queue.members["M2"]
    review = queue.review("M1", "M2")
    decision = accept_review(engine, group, review, ADMIN)
    assert decision.merge_id is not None
    # when an operator undoes the merge
    undone = service.unmerge(engine, group, decision.merge_id, "two people after all")
    # then both members are back, the review is undone and its evidence link blocked
    assert undone.restored_member_id == m2
    assert queue.status("M2") == ("active", None)
    assert queue.row("SELECT status FROM match_reviews WHERE review_id = :r", r=review).status == (
        "undone"
    )
    link = queue.row("SELECT blocked FROM identity_links WHERE group_id = :g AND kind = 'evidence'")
    assert bool(link.blocked)
    # and batch OneID keeps them apart, and later runs skip the pair
    queue.resolve()
    assert queue.holders("M1") == {m1} and queue.holders("M2") == {m2}
    with engine.connect() as conn:
        assert (m1, m2) in blocked_pairs(conn, group)
    # and the review cannot be decided again
    with pytest.raises(ReviewDecided) as refused:
        accept_review(engine, group, review, ADMIN)
    assert refused.value.code == "review_decided" and "undone" in str(refused.value)


def test_a_rejection_blocks_the_pair_and_changes_no_member(queue: Queue) -> None:
    engine, group = queue.store.engine, queue.store.group_id
    review = queue.review("M3", "M4")
    other = queue.review("M1", "M2")
    # when the reviewer rejects it
    decision = reject_review(engine, group, review, ADMIN)
    # then it is rejected, by whom and when, and both members stay as they were
    assert (decision.status, decision.merge_id) == ("rejected", None)
    row = queue.row("SELECT * FROM match_reviews WHERE review_id = :r", r=review)
    assert (row.status, row.decided_by, row.merge_id) == ("rejected", ADMIN, None)
    assert queue.status("M3")[0] == queue.status("M4")[0] == "active"
    assert (
        queue.row("SELECT COUNT(*) AS n FROM merges WHERE group_id = :g AND mode = 'review'").n == 0
    )
    # and the pair is blocked, while a pending pair is not
    m3, m4 = queue.members["M3"], queue.members["M4"]
    with engine.connect() as conn:
        blocked = blocked_pairs(conn, group)
    assert (m3, m4) in blocked
    assert tuple(sorted((queue.members["M1"], queue.members["M2"]))) not in blocked
    # and a rejection, like an acceptance, is made once
    for decide in (reject_review, accept_review):
        with pytest.raises(ReviewDecided):
            decide(engine, group, review, ADMIN)
    assert queue.row("SELECT status FROM match_reviews WHERE review_id = :r", r=other).status == (
        "pending"
    )


def test_deciding_twice_or_an_unknown_review_is_refused(queue: Queue) -> None:
    engine, group = queue.store.engine, queue.store.group_id
    review = queue.review("M1", "M2")
    first = accept_review(engine, group, review, ADMIN)
    # when it is accepted again, or rejected after
    for decide in (accept_review, reject_review):
        with pytest.raises(ReviewDecided) as refused:
            decide(engine, group, review, "key:2")
        assert "accepted" in str(refused.value)
    # then nothing changed: one merge, the first decider
    row = queue.row("SELECT decided_by, merge_id FROM match_reviews WHERE review_id = :r", r=review)
    assert (row.decided_by, row.merge_id) == (ADMIN, first.merge_id)
    assert queue.row("SELECT COUNT(*) AS n FROM merges WHERE group_id = :g").n == 1
    # and a review another group (or nobody) holds is not found
    with pytest.raises(ReviewNotFound) as missing:
        reject_review(engine, "another-group", review, ADMIN)
    assert missing.value.code == "review_not_found"


def test_a_member_merged_elsewhere_meanwhile_is_followed(queue: Queue) -> None:
    engine, group = queue.store.engine, queue.store.group_id
    m3, m4, m5 = (queue.members[r] for r in ("M3", "M4", "M5"))
    review = queue.review("M4", "M5")
    # given M4 was merged into M3 by another match after the pair was scored
    with engine.begin() as conn:
        merge_matched(conn, group, m3, m4, "probabilistic")
    # when the reviewer accepts M4 and M5
    decision = accept_review(engine, group, review, ADMIN)
    # then M5 merges into M3, which holds M4 now
    assert decision.survivor_id == m3
    assert queue.status("M5") == ("merged", m3)
    assert queue.holders("M3", "M4", "M5") == {m3}
    merged = queue.row("SELECT merged_id FROM merges WHERE merge_id = :m", m=decision.merge_id)
    assert merged.merged_id == m5
    # and batch OneID keeps all three together
    queue.resolve()
    assert queue.holders("M3", "M4", "M5") == {m3}


def test_a_pair_already_one_member_is_accepted_without_a_merge(queue: Queue) -> None:
    engine, group = queue.store.engine, queue.store.group_id
    m1, m2 = queue.members["M1"], queue.members["M2"]
    review = queue.review("M1", "M2")
    service.merge_members(engine, group, m1, m2, "same person")
    merges_before = queue.row("SELECT COUNT(*) AS n FROM merges WHERE group_id = :g").n
    # when the pair, one member since, is accepted
    decision = accept_review(engine, group, review, ADMIN)
    # then it is accepted with no merge of its own, and nothing was written (the only
    # evidence link is the hand merge's)
    assert (decision.status, decision.merge_id, decision.survivor_id) == ("accepted", None, m1)
    assert queue.row("SELECT COUNT(*) AS n FROM merges WHERE group_id = :g").n == merges_before
    links = queue.row(
        "SELECT COUNT(*) AS n, MIN(channel) AS channel FROM identity_links "
        "WHERE group_id = :g AND kind = 'evidence'"
    )
    assert (links.n, links.channel) == (1, "oneid.manual")
    row = queue.row("SELECT status, merge_id FROM match_reviews WHERE review_id = :r", r=review)
    assert (row.status, row.merge_id) == ("accepted", None)


def test_a_strong_identifier_conflict_wins_over_the_match(queue: Queue) -> None:
    engine, group = queue.store.engine, queue.store.group_id
    review = queue.review("M6", "M7")  # each holds a unionid of its own
    # when the reviewer accepts them
    with pytest.raises(MergeError) as refused:
        accept_review(engine, group, review, ADMIN)
    # then the policy refuses, naming the rule, and nothing was written
    assert refused.value.code == "merge_conflict" and "unionid" in str(refused.value)
    assert isinstance(refused.value, StrongConflict) and refused.value.type == "unionid"
    assert queue.status("M7") == ("active", None)
    assert queue.row("SELECT status FROM match_reviews WHERE review_id = :r", r=review).status == (
        "pending"
    )
    assert (
        queue.row(
            "SELECT COUNT(*) AS n FROM identity_links WHERE group_id = :g AND kind = 'evidence'"
        ).n
        == 0
    )


def test_an_automatic_merge_is_recorded_undoable_and_blocked_once_undone(queue: Queue) -> None:
    engine, group = queue.store.engine, queue.store.group_id
    m3, m4 = queue.members["M3"], queue.members["M4"]
    review = queue.review("M3", "M4", weight=20.0)
    # when the batch run merges a pair above the auto threshold
    with engine.begin() as conn:
        merged = merge_matched(conn, group, m4, m3, "probabilistic", review_id=review)
    service.resolve_all(engine, group, DEFAULT_STRONG_TYPES)
    # then it is a merge of mode probabilistic, the review says merged, OneID keeps it
    assert merged.survivor_id == m3 and merged.merge_id is not None
    mode = queue.row("SELECT mode FROM merges WHERE merge_id = :m", m=merged.merge_id).mode
    assert mode == "probabilistic"
    row = queue.row("SELECT status, merge_id FROM match_reviews WHERE review_id = :r", r=review)
    assert (row.status, row.merge_id) == ("merged", merged.merge_id)
    assert queue.holders("M3", "M4") == {m3}
    # and undoing it marks the review undone and blocks the pair
    service.unmerge(engine, group, merged.merge_id, "not the same")
    assert queue.row("SELECT status FROM match_reviews WHERE review_id = :r", r=review).status == (
        "undone"
    )
    service.resolve_all(engine, group, DEFAULT_STRONG_TYPES)
    assert queue.holders("M4") == {m4}
    with engine.connect() as conn:
        assert (m3, m4) in blocked_pairs(conn, group)
    # and a mode that is not a match's, or a review of another pair, is refused
    with engine.begin() as conn, pytest.raises(ValidationError) as bad:
        merge_matched(conn, group, m3, m4, "manual")
    assert bad.value.field == "mode"
    other = queue.review("M1", "M2")
    with engine.begin() as conn, pytest.raises(ValidationError) as wrong:
        merge_matched(conn, group, m3, m4, "probabilistic", review_id=other)
    assert wrong.value.field == "review_id"


def test_a_blocked_pair_follows_its_members_into_later_merges(queue: Queue) -> None:
    engine, group = queue.store.engine, queue.store.group_id
    m1, m3, m4 = (queue.members[r] for r in ("M1", "M3", "M4"))
    reject_review(engine, group, queue.review("M3", "M4"), ADMIN)
    # when M4 is later merged into M1 (older), which now holds M4's records
    service.merge_members(engine, group, m1, m4, "same person")
    with engine.connect() as conn:
        blocked = blocked_pairs(conn, group)
    # then the pair is blocked as stored and as the members holding it now
    assert blocked == {(m3, m4), (min(m1, m3), max(m1, m3))}


def test_the_queue_pages_strongest_first_by_status(queue: Queue) -> None:
    group = queue.store.group_id
    ids = {
        queue.review("M1", "M2", 9.0),
        queue.review("M3", "M4", 14.5),
        queue.review("M3", "M5", 9.0),
        queue.review("M4", "M5", 11.0),
        queue.review("M1", "M3", 3.0, status="rejected"),
    }
    assert len(ids) == 5

    async def pages(reader: Reader) -> list[ReviewPage]:
        found = [await list_reviews(reader, group, "pending", limit=2)]
        while found[-1].next_after is not None:
            found.append(
                await list_reviews(reader, group, "pending", limit=2, after=found[-1].next_after)
            )
        found.append(await list_reviews(reader, group, "rejected"))
        return found

    # when the pending queue is read two by two, then the rejected ones
    *pending, rejected = queue.read(pages)
    # then it comes strongest first, ties by id, each pair once, with the total
    listed = [r for page in pending for r in page.reviews]
    assert [r.match_weight for r in listed] == [14.5, 11.0, 9.0, 9.0]
    assert listed[2].review_id < listed[3].review_id
    assert [len(p.reviews) for p in pending] == [2, 2]
    assert all(p.total == 4 for p in pending)
    assert [r.status for r in rejected.reviews] == ["rejected"] and rejected.total == 1
    # and each lists the per-field weights and the masked names, never a clear one
    first = listed[0]
    assert [(f.field, f.weight) for f in first.fields] == [
        ("name", 6.5),
        ("phone", 4.2),
        ("city", -1.3),
    ]
    assert first.name_a and first.name_a != "李四" and "*" in first.name_a


def test_a_review_shows_both_members_masked_for_the_role(queue: Queue) -> None:
    group = queue.store.group_id
    review = queue.review("M1", "M2")

    def as_role(role: Role) -> Callable[[Reader], Any]:
        who = Principal(key_id=1, group_id=group, role=role)
        return lambda reader: get_review(reader, queue.vault, who, review)

    # when an admin and an analyst open the pair
    admin: ReviewDetail = queue.read(as_role(Role.ADMIN))
    analyst: ReviewDetail = queue.read(as_role(Role.ANALYST))
    # then both see the two members side by side, with the weights
    for seen in (admin, analyst):
        assert [s.member_id for s in seen.sides] == [queue.members["M1"], queue.members["M2"]]
        assert [f.field for f in seen.review.fields] == ["name", "phone", "city"]
        assert not seen.same_member
    # and the admin sees names and phones in the clear, the analyst their masks
    assert [s.profile["name"] for s in admin.sides] == [NAME, NAME]
    phones = [i["value"] for i in admin.sides[1].profile["identities"] if i["type"] == "phone"]
    assert phones == ["+8613812345687"]
    assert all(s.profile["name"] != NAME for s in analyst.sides)
    masked = [i for i in analyst.sides[1].profile["identities"] if i["type"] == "phone"]
    assert masked[0]["masked"] and "13812345687" not in masked[0]["value"]
    assert analyst.sides[0].profile["birth_date"] is None
    # and an unknown review is not found
    with pytest.raises(ReviewNotFound):
        queue.read(
            lambda reader: get_review(
                reader, queue.vault, Principal(1, group, Role.ADMIN), review + 1000
            )
        )


@pytest.mark.parametrize("second", ["accept", "reject"])
def test_two_reviewers_deciding_at_once_make_one_decision(queue: Queue, second: str) -> None:
    engine, group = queue.store.engine, queue.store.group_id
    review = queue.review("M1", "M2")
    decide = {"accept": accept_review, "reject": reject_review}
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def run(action: str, by: str) -> None:
        barrier.wait()
        try:
            outcomes.append(decide[action](engine, group, review, by))
        except ReviewDecided as refused:
            outcomes.append(refused)

    # when two admins decide the same pair at the same moment
    threads = [
        threading.Thread(target=run, args=("accept", "key:1")),
        threading.Thread(target=run, args=(second, "key:2")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then the database lets one decide and refuses the other, whatever the order
    refused = [o for o in outcomes if isinstance(o, ReviewDecided)]
    assert len(outcomes) == 2 and len(refused) == 1, outcomes
    row = queue.row("SELECT status, decided_by FROM match_reviews WHERE review_id = :r", r=review)
    merges = queue.row("SELECT COUNT(*) AS n FROM merges WHERE group_id = :g").n
    assert merges == (1 if row.status == "accepted" else 0)
    assert refused[0].status == row.status
