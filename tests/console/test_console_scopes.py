"""Identifier scopes in the console: a card shows the brand that issued it, and a card
number two brands issued to two members is not silently taken for one of them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from tests.console.conftest import Brand, login


def test_a_card_number_of_two_brands_asks_for_the_member_id(brand: Brand, page: Any) -> None:
    # given an active member's card, and the same number issued by another brand to another
    card_id, card, scope, member, other = brand.all(
        "SELECT i.identity_id, i.value, i.scope, i.member_id, "
        "(SELECT MIN(m2.member_id) FROM members m2 WHERE m2.group_id = :g "
        " AND m2.status = 'active' AND m2.member_id <> i.member_id) "
        "FROM identities i JOIN members m ON m.member_id = i.member_id "
        "WHERE i.group_id = :g AND i.type = 'card' AND m.status = 'active' "
        "ORDER BY i.identity_id LIMIT 1"
    )[0]
    with brand.engine.begin() as conn:
        copy = conn.execute(
            text("""INSERT INTO identities (group_id, type, scope, value_key, value,
                        value_masked, brand_id, verified, source_channel, first_seen,
                        last_seen, member_id)
                    SELECT group_id, type, 'B-OTHER', value_key, value, value_masked,
                        'B-OTHER', verified, source_channel, first_seen, last_seen, :m
                    FROM identities WHERE identity_id = :i
                    RETURNING identity_id"""),
            {"i": card_id, "m": other},
        ).scalar_one()
    try:
        login(page, brand.base, brand.keys["analyst"], "en")
        # when the number is searched without its brand
        page.goto(f"{brand.base}/console/members")
        page.select_option("#type", "card")
        page.fill("#value", card)
        page.click("form.search button[type=submit]")
        page.wait_for_load_state("load")
        # then the console names the ambiguity instead of opening one of the two
        assert page.locator("#search-error").inner_text() == (
            "Members of several scopes (brands, apps) hold this identifier: search by member id."
        )
        # and each member's page shows its card with the brand that issued it
        page.goto(f"{brand.base}/console/members/{member}")
        cards = page.locator("#identities tr[data-type=card]").all_inner_texts()
        assert any(f"· {scope}" in row for row in cards), cards
        page.goto(f"{brand.base}/console/members/{other}")
        cards = page.locator("#identities tr[data-type=card]").all_inner_texts()
        assert any("· B-OTHER" in row for row in cards), cards
    finally:
        with brand.engine.begin() as conn:
            conn.execute(text("DELETE FROM identities WHERE identity_id = :i"), {"i": copy})
