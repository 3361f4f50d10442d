"""The members behind each liability count, on SQLite and PostgreSQL: the holders of the
coupons with an event of that kind by a time, outstanding ones by the events' sum; a
merge's survivor holds what it absorbed; a state the liability has not is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.conftest import Store
from tests.coupons.helpers import T0, basket, new_member, save_template

from siyu.coupons.expiry import expire
from siyu.coupons.issue import issue
from siyu.coupons.liability import holders, liability
from siyu.coupons.redeem import Redemption, redeem
from siyu.coupons.returns import give_back
from siyu.errors import ValidationError
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.service import merge_members

DAY = timedelta(days=1)


def test_each_count_opens_its_holders_as_of_any_time(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    a, b, c, d = (new_member(e, encoder, g, f"u-{i}") for i in range(4))
    save_template(e, g)  # 30 days from issue
    save_template(e, g, code="OTHER")
    coupons = {m.member_id: m for m in issue(e, g, "SPRING20", [a, b, c], "w", at=T0).issued}
    issue(e, g, "OTHER", [d], "w-other", at=T0)
    # given: a redeems and is refunded (its coupon back), b redeems, c's coupon expires
    for i, m in enumerate((a, b)):
        redeem(e, g, Redemption(coupons[m].code, f"O-{i}", basket(), f"r{i}"), T0 + DAY)
    give_back(e, g, coupons[a].code, "O-0", "back-0", at=T0 + 2 * DAY)
    assert expire(e, g, T0 + 30 * DAY) == 3  # a's and c's, and d's of the other template
    owed = {x.template_code: x for x in liability(e, g, T0 + 31 * DAY)}["SPRING20"]
    assert (owed.issued, owed.redeemed, owed.returned, owed.expired) == (3, 2, 1, 2)
    # then each count opens exactly its holders, and the outstanding ones are none
    later = T0 + 31 * DAY
    assert holders(e, g, "issued", "SPRING20", later) == sorted([a, b, c])
    assert holders(e, g, "redeemed", "SPRING20", later) == sorted([a, b])
    assert holders(e, g, "returned", "SPRING20", later) == [a]
    assert holders(e, g, "expired", "SPRING20", later) == sorted([a, c])
    assert holders(e, g, "outstanding", "SPRING20", later) == []
    assert holders(e, g, "expired", None, later) == sorted([a, c, d])  # every template
    # and as of before the redemptions, everyone still held a coupon
    assert holders(e, g, "outstanding", None, T0 + DAY / 2) == sorted([a, b, c, d])
    assert holders(e, g, "redeemed", "SPRING20", T0 + DAY / 2) == []
    # as of after the refund, a holds one again and b's is spent
    assert holders(e, g, "outstanding", "SPRING20", T0 + 3 * DAY) == sorted([a, c])


def test_a_survivor_holds_what_it_absorbed_and_a_bad_state_is_refused(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    a = new_member(e, encoder, g, "u-a")
    b = new_member(e, encoder, g, "o-b", "openid")
    save_template(e, g)
    issue(e, g, "SPRING20", [a, b], "w", at=T0)
    merge_members(e, g, a, b, "same person")
    assert holders(e, g, "outstanding", "SPRING20", T0 + DAY) == [a]
    with pytest.raises(ValidationError, match="state"):
        holders(e, g, "moved", "SPRING20")  # type: ignore[arg-type]
