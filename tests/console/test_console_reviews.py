"""OneID's review queue in the browser: HQ opens the queue (strongest pair first), opens a
pair side by side with the weight of each field, an admin accepts one (Member 360 then
shows the merge) and rejects another, an analyst reads masked and cannot decide, a pair a
strong identifier refuses says why, and no page shows a code without its label.

Its own small brand (imported through the importer, the queue seeded as the batch run
fills it), served by a real uvicorn and driven in a real Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, insert, text
from tests.api.live import live_server
from tests.brandfiles import write, write_reference
from tests.console.conftest import SECRET, login, shoot
from tests.console.test_console_labels import Scanner, known_codes, page_strings

from siyu.auth.keys import create_key
from siyu.config import DEFAULT_STRONG_TYPES
from siyu.console.i18n import LANGS
from siyu.identity.matching.merge import merge_matched
from siyu.identity.matching.review import reject_review
from siyu.identity.models import REVIEW_STATUSES, match_reviews
from siyu.identity.service import resolve_all
from siyu.importer.service import ensure_group, import_directory
from siyu.privacy import Vault
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade
from siyu.store.times import stored_now

NAME, PHONE_TYPO = "王小明", "13812345687"
WEIGHTS = [
    {"field": "name", "level": "exact", "weight": 6.5},
    {"field": "phone", "level": "transposed", "weight": 4.2},
    {"field": "birth_date", "level": "exact", "weight": 3.1},
    {"field": "city", "level": "different", "weight": -1.3},
]


@dataclass
class Queue:
    engine: Engine
    group: str
    base: str
    keys: dict[str, str]
    members: dict[str, int]
    reviews: dict[str, int]  # name -> review id

    def one(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), {"g": self.group, **params}).scalar()


def _member(ref: str, at: str, brand: str, card: str, phone: str, name: str) -> dict[str, str]:
    return {
        "member_ref": ref,
        "brand_id": brand,
        "registered_at": at,
        "channel": "pos",
        "card": card,
        "phone": phone,
        "name": name,
        "gender": "m",
        "birth_date": "1990-04-01",
        "city": "上海",
    }


@pytest.fixture(scope="module")
def queue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Queue]:
    work = tmp_path_factory.mktemp("reviews")
    engine = make_engine(f"sqlite:///{work / 'siyu.db'}")
    upgrade(engine)
    group, vault = "g-reviews", Vault(SECRET)
    ensure_group(engine, group)
    files = work / "brand"
    write_reference(files)
    write(
        files / "members.csv",
        [
            _member("M1", "2024-01-01T10:00:00", "B1", "C1", "13812345678", NAME),
            _member("M2", "2024-03-01T10:00:00", "B2", "D2", PHONE_TYPO, NAME),
            _member("M3", "2024-01-05T10:00:00", "B1", "C3", "13900001111", "李四"),
            _member("M4", "2024-02-05T10:00:00", "B2", "D4", "13900001112", "李四"),
            _member("M5", "2024-04-05T10:00:00", "B1", "C5", "13700002222", "李四"),
            _member("M6", "2024-01-07T10:00:00", "B1", "C6", "13600003333", "赵六"),
            _member("M7", "2024-02-07T10:00:00", "B2", "D7", "13600003334", "赵六"),
        ],
    )
    write(
        files / "identities.csv",
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
    import_directory(engine, vault, group, files, work / "rejects")
    resolve_all(engine, group, DEFAULT_STRONG_TYPES)
    with engine.connect() as conn:
        members = {
            str(k): int(v)
            for k, v in conn.execute(
                text("SELECT source_ref, member_id FROM members WHERE group_id = :g"), {"g": group}
            ).all()
        }

    def seed(a: str, b: str, weight: float) -> int:
        low, high = sorted((members[a], members[b]))
        with engine.begin() as conn:
            return int(
                conn.execute(
                    insert(match_reviews)
                    .values(
                        group_id=group,
                        member_a=low,
                        member_b=high,
                        match_weight=weight,
                        match_probability=2**weight / (1 + 2**weight),
                        field_weights=json.dumps(WEIGHTS),
                        status="pending",
                        model_id=1,
                        detected_at=stored_now(),
                    )
                    .returning(match_reviews.c.review_id)
                ).scalar_one()
            )

    # the queue: a typo'd phone (strongest), a pair to reject, a pair whose unionids
    # refuse it; a pair the run merged itself and one HQ rejected before
    reviews = {
        "typo": seed("M1", "M2", 11.4),
        "other": seed("M3", "M4", 8.2),
        "unionids": seed("M6", "M7", 6.9),
        "auto": seed("M4", "M5", 16.0),
        "rejected": seed("M1", "M6", 6.1),
    }
    with engine.begin() as conn:
        merge_matched(
            conn, group, members["M4"], members["M5"], "probabilistic", review_id=reviews["auto"]
        )
    reject_review(engine, group, reviews["rejected"], "key:1")
    keys = {
        role: create_key(engine, vault, group, role, **extra).secret
        for role, extra in (("admin", {}), ("analyst", {}), ("store", {"stores": ("S1",)}))
    }
    with live_server(engine, group, SECRET, workers=1) as base:
        yield Queue(engine, group, base, keys, members, reviews)
    engine.dispose()


def rows(page: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": int(r.get_attribute("data-review")),
            "weight": float(r.get_attribute("data-weight")),
            "status": r.get_attribute("data-status"),
        }
        for r in page.locator("#reviews tbody tr[data-review]").all()
    ]


def side_values(page: Any, field: str) -> list[str]:
    return [
        s.locator(f"[data-field={field}]").inner_text()
        for s in page.locator("section.review-side").all()
    ]


def test_hq_opens_the_queue_and_a_pair_side_by_side(queue: Queue, page: Any) -> None:
    # given an admin logged in
    login(page, queue.base, queue.keys["admin"], "en")
    # when it opens the queue from the navigation
    page.click("nav.side a[data-page=reviews]")
    page.wait_for_load_state("load")
    assert page.url.endswith("/console/oneid/reviews")
    # then the pending pairs are listed strongest first, with weight and probability
    listed = rows(page)
    assert [r["id"] for r in listed] == [queue.reviews[k] for k in ("typo", "other", "unionids")]
    assert {r["status"] for r in listed} == {"pending"}
    assert page.locator("#review-count").get_attribute("data-total") == "3"
    first = page.locator(f"tr[data-review='{queue.reviews['typo']}']")
    assert first.locator("[data-probability]").inner_text() == "99.96%"
    # and each member links to Member 360
    links = first.locator("a[data-member]").all()
    assert [a.get_attribute("href") for a in links] == [
        f"/console/members/{queue.members['M1']}",
        f"/console/members/{queue.members['M2']}",
    ]
    shoot(page, "reviews-queue-en")
    # when it opens the strongest pair
    first.locator("a.review-open").click()
    page.wait_for_load_state("load")
    # then both members are side by side, in the clear for an admin
    assert side_values(page, "name") == [NAME, NAME]
    phones = page.locator("section.review-side tr[data-type=phone] .identity-value").all()
    assert [p.inner_text() for p in phones] == ["+8613812345678", f"+86{PHONE_TYPO}"]
    assert side_values(page, "gender") == ["Male", "Male"]
    # and the match weight of each field, labelled, with a bar against for the city
    fields = page.locator("#review-fields tbody tr").all()
    assert [f.get_attribute("data-field") for f in fields] == [w["field"] for w in WEIGHTS]
    assert fields[0].locator("td").first.inner_text() == "Name"
    assert fields[1].locator("td").nth(1).inner_text() == "Two digits swapped"
    assert page.locator("#review-fields meter.against").count() == 1
    assert page.locator("#review-accept").is_visible()
    assert page.locator("#review-reject").is_visible()
    shoot(page, "review-pair-en")


def test_an_analyst_reads_masked_and_cannot_decide(queue: Queue, page: Any) -> None:
    login(page, queue.base, queue.keys["analyst"], "zh")
    page.goto(f"{queue.base}/console/oneid/reviews/{queue.reviews['typo']}")
    # then names and phones are masked, birth dates hidden, and no decision is offered
    names = side_values(page, "name")
    assert NAME not in names and all("*" in n for n in names)
    phones = page.locator("section.review-side tr[data-type=phone] .identity-value").all()
    assert [p.inner_text() for p in phones] == ["138****5678", "138****5687"]
    assert side_values(page, "birth_date") == ["-", "-"]
    assert page.locator("#review-accept").count() == 0
    assert page.locator("#review-read-only").is_visible()
    # and a decision posted anyway (with the session's CSRF token) is refused
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    answer = page.request.post(
        f"{queue.base}/console/oneid/reviews/{queue.reviews['typo']}/accept",
        form={"csrf": token},
    )
    assert answer.status == 403
    assert queue.one(
        "SELECT status FROM match_reviews WHERE review_id = :r", r=queue.reviews["typo"]
    ) == ("pending")
    shoot(page, "review-pair-analyst-zh")
    # and a store key may not open the queue at all
    page.context.clear_cookies()
    login(page, queue.base, queue.keys["store"], "en")
    assert page.goto(f"{queue.base}/console/oneid/reviews").status == 403


def test_an_admin_accepts_one_pair_and_rejects_another(queue: Queue, page: Any) -> None:
    m1, m2 = queue.members["M1"], queue.members["M2"]
    login(page, queue.base, queue.keys["admin"], "en")
    # when the admin accepts the typo'd phone's pair
    page.goto(f"{queue.base}/console/oneid/reviews/{queue.reviews['typo']}")
    page.click("#review-accept")
    page.wait_for_load_state("load")
    # then the pair says so, and the two are one member
    assert page.locator("#review-status").get_attribute("data-status") == "accepted"
    assert page.locator("#review-notice").inner_text() == (
        f"Accepted: the two are now member #{m1}."
    )
    assert page.locator("#review-decided").is_visible()
    shoot(page, "review-accepted-en")
    # and Member 360 of the younger member shows the survivor and the merge in review
    page.click("section.review-side[data-side='1'] a.member-link")
    page.wait_for_load_state("load")
    assert page.locator("#member-id").get_attribute("data-member") == str(m1)
    assert page.locator("#merged-note").inner_text() == (
        f"Member {m2} was merged into {m1}; showing the survivor."
    )
    merges = page.locator("#timeline li[data-kind=merge]").all_inner_texts()
    assert any(f"member {m2} → {m1} (Accepted in review)" in m for m in merges), merges
    cards = page.locator("#identities tr[data-type=card] .identity-value").all_inner_texts()
    assert sorted(cards) == ["C1", "D2"]
    shoot(page, "review-member-360-en")
    # when the admin rejects the next pair
    page.goto(f"{queue.base}/console/oneid/reviews/{queue.reviews['other']}")
    page.click("#review-reject")
    page.wait_for_load_state("load")
    # then it is rejected and both members stay
    assert page.locator("#review-status").get_attribute("data-status") == "rejected"
    assert "never proposed again" in page.locator("#review-notice").inner_text()
    assert queue.one("SELECT status FROM members WHERE member_id = :m", m=queue.members["M3"]) == (
        "active"
    )
    # and the queue holds only the pair left, the rejected list the two rejected
    page.goto(f"{queue.base}/console/oneid/reviews")
    assert [r["id"] for r in rows(page)] == [queue.reviews["unionids"]]
    page.click("#review-statuses a[data-status=rejected]")
    page.wait_for_load_state("load")
    assert {r["id"] for r in rows(page)} == {queue.reviews["other"], queue.reviews["rejected"]}
    # when a stale form accepts the rejected pair again: a 409 page naming the rule
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    again = page.request.post(
        f"{queue.base}/console/oneid/reviews/{queue.reviews['other']}/accept",
        form={"csrf": token},
    )
    assert again.status == 409
    assert "is Rejected: only a pending pair can be accepted or rejected" in again.text()


def test_a_pair_a_strong_identifier_refuses_says_why(queue: Queue, page: Any) -> None:
    login(page, queue.base, queue.keys["admin"], "zh")
    page.goto(f"{queue.base}/console/oneid/reviews/{queue.reviews['unionids']}")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("#review-accept")
    assert answer.value.status == 409
    assert "两位会员各有一个微信 UnionID" in page.locator("main").inner_text()
    assert queue.one(
        "SELECT status FROM match_reviews WHERE review_id = :r", r=queue.reviews["unionids"]
    ) == ("pending")
    shoot(page, "review-refused-zh")


@pytest.mark.parametrize("lang", LANGS)
def test_no_review_page_shows_a_code_without_its_label(queue: Queue, page: Any, lang: str) -> None:
    # given every code the queue can show: statuses, the compared fields and their levels
    codes = known_codes() | set(REVIEW_STATUSES) | {w["field"] for w in WEIGHTS}
    # (genders are single letters; "u" is left out: a unionid such as u-6 is data)
    codes |= {"f", "m", "exact", "transposed", "different"}
    scanner = Scanner(lang, codes)
    login(page, queue.base, queue.keys["admin"], lang)
    paths = [f"/console/oneid/reviews?status={s}" for s in REVIEW_STATUSES]
    paths += [f"/console/oneid/reviews/{r}" for r in queue.reviews.values()]
    bad = {}
    for path in paths:
        # when each list and each pair is opened
        response = page.goto(f"{queue.base}{path}")
        assert response is not None and response.status == 200, path
        for where, shown in page_strings(page).items():
            found = scanner.untranslated(shown)
            if found:
                bad[f"{path} {where}"] = sorted(found)
    # then every code is shown as its label
    assert not bad, json.dumps(bad, ensure_ascii=False, indent=1)
