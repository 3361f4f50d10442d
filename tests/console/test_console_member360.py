"""Member 360 in the browser: found by any identifier (the search is a POST, so a phone
never reaches a URL or a log), with identities, orders, ledger, stage, tags and timeline
as the store holds them; a merged member's id leads to the survivor."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from tests.console.conftest import SECRET, Brand, login, shoot

from siyu.privacy import Vault
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
