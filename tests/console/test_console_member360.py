"""Member 360 in the browser: found by any identifier (the search is a POST, so a phone
never reaches a URL or a log), with identities, orders, ledger, stage, tags and timeline
as the store holds them; a merged member's id leads to the survivor."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from tests.console.conftest import SECRET, Brand, login, shoot

from siyu.privacy import Vault
from siyu.segments import affinity
from siyu.store.times import stored_now


def busiest(brand: Brand) -> int:
    member: int = brand.one(
        "SELECT o.member_id FROM orders o JOIN members m ON m.member_id = o.member_id "
        "WHERE o.group_id = :g AND m.status = 'active' AND EXISTS (SELECT 1 FROM identities i "
        "WHERE i.member_id = o.member_id AND i.type = 'phone') "
        "GROUP BY o.member_id ORDER BY COUNT(*) DESC, o.member_id LIMIT 1"
    )
    return member


def test_search_by_phone_opens_the_members_360(brand: Brand, page: Any) -> None:
    # given a member with a phone, and that phone in the clear (decrypted as an admin may)
    member = busiest(brand)
    with brand.engine.connect() as conn:
        blob = conn.execute(
            text("SELECT value_enc FROM identities WHERE member_id = :m AND type = 'phone'"),
            {"m": member},
        ).scalar()
    phone = Vault(SECRET).decrypt(bytes(blob), "phone")
    # when an admin searches for it (national form, as typed at a till)
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/members")
    page.select_option("#type", "phone")
    page.fill("#value", phone.removeprefix("+86"))
    page.click("form.search button[type=submit]")
    page.wait_for_load_state("load")
    # then the member's page opens, and its URL holds the member id, not the phone
    assert page.url.endswith(f"/console/members/{member}")
    assert phone[-8:] not in page.url
    # and it shows every identity the store holds for the member
    types = sorted(
        r[0]
        for r in brand.all(
            "SELECT type FROM identities WHERE group_id = :g AND member_id = :m", m=member
        )
    )
    shown = sorted(r.get_attribute("data-type") for r in page.locator("#identities tbody tr").all())
    assert shown == types
    # and its orders (the latest 50), with the amounts paid
    orders = brand.all(
        "SELECT order_id, paid_fen FROM orders WHERE group_id = :g AND member_id = :m",
        m=member,
    )
    rows = page.locator("#orders tbody tr[data-order]").all()
    assert len(rows) == min(50, len(orders))
    paid = dict(orders)
    for row in rows:
        order = row.get_attribute("data-order")
        assert int(row.locator("[data-paid]").get_attribute("data-paid")) == paid[order]
    # and its stage as written by the analytics, and a timeline newest first
    stage = brand.one(
        "SELECT stage FROM member_stages WHERE group_id = :g AND member_id = :m", m=member
    )
    assert page.locator("#member-stage").get_attribute("data-stage") == stage
    times = [t.inner_text() for t in page.locator("#timeline time").all()]
    assert times and times == sorted(times, reverse=True)
    assert page.locator("#timeline li[data-kind=order]").count() >= 1
    # and balances as the ledger holds them now (zero when the member has no account)
    held = balances_now(brand, member)
    for row in page.locator("#balances tr[data-asset]").all():
        asset = row.get_attribute("data-asset")
        assert int(row.locator("[data-balance]").get_attribute("data-balance")) == held.get(
            asset, 0
        )
    shoot(page, "admin-member-360")


def balances_now(brand: Brand, member: int) -> dict[str, int]:
    """The member's balances with the points of lots past their date taken off, as the
    expiry job will when it runs."""
    held = {
        asset: int(balance)
        for asset, balance in brand.all(
            "SELECT asset, balance FROM ledger_accounts WHERE group_id = :g AND member_id = :m "
            "AND owner = 'member'",
            m=member,
        )
    }
    expired = brand.one(
        "SELECT COALESCE(SUM(remaining), 0) FROM point_lots WHERE group_id = :g "
        "AND member_id = :m AND remaining > 0 AND expires_at <= :now",
        m=member,
        now=stored_now(),
    )
    held["points"] = held.get("points", 0) - int(expired)
    return held


def test_expired_points_are_not_in_the_balance_and_the_next_expiries_are_shown(
    brand: Brand, page: Any
) -> None:
    # given a member holding points in lots past their date (the demo settles two years of
    # orders and never runs the expiry job) and, if any are left, lots still to expire
    now = stored_now()
    member = brand.one(
        "SELECT member_id FROM point_lots WHERE group_id = :g AND remaining > 0 "
        "GROUP BY member_id HAVING SUM(CASE WHEN expires_at <= :now THEN remaining END) > 0 "
        "ORDER BY SUM(CASE WHEN expires_at > :now THEN remaining ELSE 0 END) DESC, member_id "
        "LIMIT 1",
        now=now,
    )
    assert member is not None
    due = [
        (str(at)[:10], int(n))
        for at, n in brand.all(
            "SELECT expires_at, SUM(remaining) FROM point_lots WHERE group_id = :g "
            "AND member_id = :m AND remaining > 0 AND expires_at > :now "
            "GROUP BY expires_at ORDER BY expires_at LIMIT 5",
            m=member,
            now=now,
        )
    ]
    # when an analyst opens the member's page, in Chinese and in English
    for lang in ("zh", "en"):
        login(page, brand.base, brand.keys["analyst"], lang)
        page.goto(f"{brand.base}/console/members/{member}")
        # then the points balance leaves out the expired points
        points = page.locator("#balances tr[data-asset=points] [data-balance]")
        assert int(points.get_attribute("data-balance")) == balances_now(brand, member)["points"]
        # and the points still to expire are listed with their dates, soonest first
        rows = page.locator("#expiring tr[data-expires]").all()
        shown = [
            (
                str(r.get_attribute("data-expires"))[:10],
                int(r.locator("[data-points]").get_attribute("data-points")),
            )
            for r in rows
        ]
        assert shown == due
        label = "到期日" if lang == "zh" else "Expires on"
        for (day, _), row in zip(due, rows, strict=True):
            assert f"{label} {day}" in row.inner_text()
        heading = "即将到期的积分" if lang == "zh" else "Points expiring"
        assert heading in page.locator("#expiring").locator("xpath=..").inner_text()


def test_search_by_card_and_by_id_and_an_unknown_value(brand: Brand, page: Any) -> None:
    card, member = brand.all(
        "SELECT i.value, i.member_id FROM identities i JOIN members m ON m.member_id = "
        "i.member_id WHERE i.group_id = :g AND i.type = 'card' AND m.status = 'active' "
        "ORDER BY i.identity_id LIMIT 1"
    )[0]
    login(page, brand.base, brand.keys["analyst"], "zh")
    for kind, value in (("card", card.lower()), ("member_id", str(member))):
        page.goto(f"{brand.base}/console/members")
        page.select_option("#type", kind)
        page.fill("#value", value)
        page.click("form.search button[type=submit]")
        page.wait_for_load_state("load")
        assert page.url.endswith(f"/console/members/{member}"), kind
    page.goto(f"{brand.base}/console/members")
    page.select_option("#type", "card")
    page.fill("#value", "NO-SUCH-CARD-0")
    page.click("form.search button[type=submit]")
    page.wait_for_load_state("load")
    assert page.locator("#search-error").inner_text() == "没有会员使用这个身份。"
    page.select_option("#type", "phone")
    page.fill("#value", "12")
    page.click("form.search button[type=submit]")
    page.wait_for_load_state("load")
    assert page.locator("#search-error").inner_text().startswith("value: ")


def test_a_merged_members_id_shows_the_survivor(brand: Brand, page: Any) -> None:
    merged, survivor = brand.all(
        "SELECT m.member_id, m.merged_into FROM members m WHERE m.group_id = :g "
        "AND m.status = 'merged' AND m.merged_into IN (SELECT member_id FROM members "
        "WHERE status = 'active') ORDER BY m.member_id LIMIT 1"
    )[0]
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/members/{merged}")
    assert page.locator("#member-id").get_attribute("data-member") == str(survivor)
    assert (
        f"Member {merged} was merged into {survivor}" in page.locator("#merged-note").inner_text()
    )
    assert page.goto(f"{brand.base}/console/members/999999999").status == 404


def affinity_parts(page: Any) -> dict[str, tuple[float, float, float]]:
    """behaviour -> (count, coefficient, points) as the affinity panel shows them."""
    return {
        r.get_attribute("data-behaviour"): (
            float(r.locator("[data-count]").get_attribute("data-count")),
            float(r.locator("[data-coefficient]").get_attribute("data-coefficient")),
            float(r.get_attribute("data-points")),
        )
        for r in page.locator("#affinity-parts tbody tr").all()
    }


def test_member_360_explains_the_affinity_score_behaviour_by_behaviour(
    brand: Brand, page: Any
) -> None:
    member = busiest(brand)
    login(page, brand.base, brand.keys["admin"], "en")
    try:
        # given no affinity rules set: the page says so and shows the defaults' score, the
        # service's (GET /v1/members/{id}/affinity) to its rounding
        assert affinity.rules_version(brand.engine, brand.group) == 0
        page.goto(f"{brand.base}/console/members/{member}")
        assert (
            page.locator("#affinity-defaults")
            .inner_text()
            .startswith("HQ has not set affinity rules")
        )
        want = affinity.explain(brand.engine, brand.group, member)
        shown = affinity_parts(page)
        assert set(shown) == {p.behaviour for p in want.parts}
        assert float(page.locator("#affinity").get_attribute("data-score")) == pytest.approx(
            want.score, rel=1e-3, abs=1e-3
        )
        # when HQ sets rules without decay over ten years: orders, spend and views weighed
        rules = affinity.AffinityRules(
            coefficients={"orders": 2, "spend_per_100_yuan": 1, "view": 0.5},
            window_days=3650,
            half_life_days=None,
        )
        version = affinity.save_rules(brand.engine, brand.group, rules, brand.key_ids["admin"])
        page.goto(f"{brand.base}/console/members/{member}?lang=zh")
        assert page.locator("#affinity-defaults").count() == 0
        assert f"规则第 {version} 版" in page.locator("#affinity-terms").inner_text()
        # then each behaviour's count is the member's facts, counted by hand, and the points
        # are coefficient x count, their sum the score
        orders = brand.one(
            "SELECT COUNT(*) FROM orders WHERE group_id = :g AND member_id = :m "
            "AND status <> 'cancelled'",
            m=member,
        )
        net = brand.one(
            "SELECT SUM(o.paid_fen - COALESCE((SELECT SUM(r.amount_fen) FROM refunds r "
            "WHERE r.group_id = :g AND r.order_id = o.order_id), 0)) FROM orders o "
            "WHERE o.group_id = :g AND o.member_id = :m AND o.status <> 'cancelled'",
            m=member,
        )
        views = brand.one(
            "SELECT COUNT(*) FROM events WHERE group_id = :g AND member_id = :m AND type = 'view'",
            m=member,
        )
        assert orders > 0
        shown = affinity_parts(page)
        assert shown == {
            "orders": (orders, 2, 2 * orders),
            "spend_per_100_yuan": pytest.approx((net / 10_000, 1, net / 10_000), abs=1e-4),
            "view": (views, 0.5, 0.5 * views),
        }
        score = float(page.locator("#affinity").get_attribute("data-score"))
        assert score == pytest.approx(2 * orders + net / 10_000 + 0.5 * views, abs=1e-3)
        assert page.locator("#affinity-parts tbody tr").first.get_attribute(
            "data-behaviour"
        ) == max(shown, key=lambda b: shown[b][2])
        labels = page.locator("#affinity-parts tbody td:first-child").all_inner_texts()
        assert set(labels) == {"订单（未取消）", "消费额（每 100 元）", "浏览"}
        shoot(page, "member-affinity")
        # when the rules weigh nothing: said plainly, no score table
        empty = affinity.AffinityRules(coefficients={})
        affinity.save_rules(brand.engine, brand.group, empty, brand.key_ids["admin"])
        page.goto(f"{brand.base}/console/members/{member}?lang=en")
        assert page.locator("#affinity-none").inner_text() == (
            "The affinity rules weigh no behaviour, so every member scores 0."
        )
        assert page.locator("#affinity-parts").count() == 0
        # and the staff who serve a member see its score too (affinity:read), a guide on
        # its own member
        page.context.clear_cookies()
        own = brand.one(
            "SELECT MIN(o.member_id) FROM orders o JOIN members m ON m.member_id = o.member_id "
            "WHERE o.group_id = :g AND o.guide_id = :d AND m.status = 'active'",
            d=brand.guide_id,
        )
        login(page, brand.base, brand.keys["guide"], "en")
        page.goto(f"{brand.base}/console/members/{own}")
        assert page.locator("#affinity").count() == 1
    finally:
        affinity.save_rules(brand.engine, brand.group, affinity.AffinityRules(), None)
