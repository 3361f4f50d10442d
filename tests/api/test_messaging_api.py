"""The messaging API on SQLite and PostgreSQL: HQ composes a send, plans it held for
review (who will be reached, who is skipped and why), sends or cancels it; analysts read
masked; consent recorded by HQ or a store and withdrawn by the member itself, at once;
delivery callbacks and clicks recorded once per provider event id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from tests.api.conftest import PHONE_1, Api
from tests.messaging.msg_helpers import at_stage, bulk_members, grant_all, till_order

from siyu.campaigns import global_holdout
from siyu.messaging import outbox
from siyu.messaging.transports.base import Message, Outcome
from siyu.store.times import stored_now


def _10am_shanghai(days: int) -> datetime:
    day = datetime.now(UTC).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)


def _tomorrow_10am_shanghai() -> str:
    return _10am_shanghai(1).isoformat()


# when the outbox runs in these tests: a day after the sends are due, outside the quiet
# hours (a marketing message waits them out, whatever the hour the tests run at)
DELIVERY = _10am_shanghai(2)


def _send(code: str = "SMS-1", **more: Any) -> dict[str, Any]:
    return {
        "code": code,
        "channel": "sms",
        "content": {"template": "T1", "params": {"1": "春季上新"}},
        "target": {"stage": "at_risk"},
        "scheduled_at": _tomorrow_10am_shanghai(),
        **more,
    }


def _at_risk(api: Api, *refs: str) -> None:
    with api.store.engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO member_stages (group_id, member_id, stage, orders, computed_at)
                    VALUES (:g, :m, 'at_risk', 1, :t)"""),
            [{"g": api.store.group_id, "m": api.members[r], "t": stored_now()} for r in refs],
        )


def _compose(api: Api) -> None:
    _at_risk(api, "M1", "M2")
    granted = api.client.post(
        f"/v1/members/{api.members['M1']}/consent",
        json={"action": "grant", "source": "mini_program"},
        headers=api.as_("admin"),
    )
    assert granted.status_code == 200, granted.text
    put = api.client.put("/v1/sends/SMS-1", json=_send(), headers=api.as_("admin"))
    assert put.status_code == 200, put.text
    assert put.json()["state"] == "draft"


class Accepting:
    code = "test"

    def deliver(self, messages: list[Message]) -> list[Outcome]:
        return [Outcome(True, provider_ref=f"ref-{m.member_id}") for m in messages]


def test_a_send_is_planned_for_review_then_sent_and_read_masked(api: Api) -> None:
    # given a draft for two members at risk, one of whom consented
    _compose(api)
    m1, m2 = api.members["M1"], api.members["M2"]
    # when HQ plans it (held for review by default)
    planned = api.client.post("/v1/sends/SMS-1:plan", headers=api.as_("admin"))
    assert planned.status_code == 200, planned.text
    body = planned.json()
    # then the preview says who is reached and who is skipped and why
    assert body["state"] == "held"
    assert body["counts"] == {"planned": 1, "no_consent": 1}
    # and nothing is delivered while it is held
    messages, _ = outbox.claim(api.store.engine, api.store.group_id, "w", now=DELIVERY)
    assert messages == []
    # and the members behind a skip reason, masked for analysts, in the clear for HQ
    skipped = api.client.get(
        "/v1/sends/SMS-1/recipients?figure=no_consent", headers=api.as_("analyst")
    ).json()
    assert [r["member_id"] for r in skipped["recipients"]] == [m2]
    reached = api.client.get(
        "/v1/sends/SMS-1/recipients?figure=planned", headers=api.as_("analyst")
    ).json()["recipients"]
    assert [r["member_id"] for r in reached] == [m1]
    assert PHONE_1 not in reached[0]["address"] and reached[0]["address"].endswith("5678")
    clear = api.client.get(
        "/v1/sends/SMS-1/recipients?figure=planned", headers=api.as_("admin")
    ).json()["recipients"]
    assert PHONE_1 in clear[0]["address"]
    # when HQ sends it, the outbox delivers it from its time
    sent = api.client.post("/v1/sends/SMS-1:send", headers=api.as_("admin"))
    assert sent.status_code == 200 and sent.json()["state"] == "planned", sent.text
    again = api.client.post("/v1/sends/SMS-1:send", headers=api.as_("admin"))
    assert (again.status_code, again.json()["code"]) == (409, "send_state")
    done = outbox.deliver(
        api.store.engine,
        api.store.group_id,
        {"sms": Accepting()},
        now=DELIVERY,
        vault=api.app.state.services.vault,
    )
    assert done.sent == 1
    figures = api.client.get("/v1/sends/SMS-1/figures", headers=api.as_("analyst")).json()
    assert (figures["recipients"], figures["sent"], figures["buyers"]) == (2, 1, 0)
    assert figures["counts"] == {"sent": 1, "no_consent": 1}
    assert figures["against_holdout"] is None  # no global holdout: nobody held out
    listed = api.client.get("/v1/sends", headers=api.as_("analyst")).json()["sends"]
    assert [(s["code"], s["state"]) for s in listed] == [("SMS-1", "planned")]


def test_a_cancelled_send_frees_its_members_and_is_cancelled_once(api: Api) -> None:
    _compose(api)
    api.client.post("/v1/sends/SMS-1:plan", headers=api.as_("admin"))
    cancelled = api.client.post("/v1/sends/SMS-1:cancel", headers=api.as_("admin"))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["skipped"] == 1
    assert cancelled.json()["counts"] == {"send_cancelled": 1, "no_consent": 1}
    again = api.client.post("/v1/sends/SMS-1:cancel", headers=api.as_("admin"))
    assert (again.status_code, again.json()["code"]) == (409, "send_state")
    # and an analyst may not write
    denied = api.client.put("/v1/sends/X", json=_send("X"), headers=api.as_("analyst"))
    assert denied.status_code == 403


def test_bad_input_names_the_field(api: Api) -> None:
    bad = api.client.put(
        "/v1/sends/B", json=_send("B", channel="fax"), headers=api.as_("admin")
    ).json()
    assert bad["code"] == "validation_failed" and "fax" in bad["detail"]
    other = api.client.put("/v1/sends/B", json=_send("C"), headers=api.as_("admin")).json()
    assert "code" in other["detail"]
    _compose(api)
    changed = api.client.put(
        "/v1/sends/SMS-1", json=_send(sender="G1"), headers=api.as_("admin")
    ).json()
    assert changed["code"] == "send_exists"
    figure = api.client.get("/v1/sends/SMS-1/recipients?figure=nope", headers=api.as_("admin"))
    assert figure.status_code == 422 and "figure" in figure.text
    policy = api.client.put(
        "/v1/messaging/policy", json={"timezone": "Mars/Base"}, headers=api.as_("admin")
    )
    assert policy.status_code == 422 and "timezone" in policy.text


def test_the_policy_is_read_and_replaced_by_hq(api: Api) -> None:
    first = api.client.get("/v1/messaging/policy", headers=api.as_("analyst")).json()
    assert first["policy_id"] is None and first["policy"]["per_week"] == 2
    put = api.client.put("/v1/messaging/policy", json={"per_week": 1}, headers=api.as_("admin"))
    assert put.status_code == 200
    now = api.client.get("/v1/messaging/policy", headers=api.as_("analyst")).json()
    assert now["policy"]["per_week"] == 1 and now["policy_id"] == put.json()["policy_id"]


def test_consent_hq_and_stores_record_a_member_withdraws_its_own_at_once(api: Api) -> None:
    m1, m2 = api.members["M1"], api.members["M2"]
    _compose(api)
    api.client.post("/v1/sends/SMS-1:plan?hold=false", headers=api.as_("admin"))
    # a member key reads its own state and may not grant
    own = api.client.get(f"/v1/members/{m1}/consent", headers=api.as_("member")).json()
    sms = [c for c in own["consents"] if (c["channel"], c["purpose"]) == ("sms", "marketing")]
    assert sms[0]["granted"] is True
    grant = api.client.post(
        f"/v1/members/{m1}/consent", json={"action": "grant"}, headers=api.as_("member")
    )
    assert grant.status_code == 403
    other = api.client.post(
        f"/v1/members/{m2}/consent", json={"action": "withdraw"}, headers=api.as_("member")
    )
    assert other.status_code == 403
    # when the member withdraws, its waiting message is cancelled at once
    gone = api.client.post(
        f"/v1/members/{m1}/consent",
        json={"action": "withdraw", "channel": "sms"},
        headers=api.as_("member"),
    )
    assert gone.status_code == 200, gone.text
    assert gone.json()["cancelled"] == 1
    sms = [
        c for c in gone.json()["consents"] if (c["channel"], c["purpose"]) == ("sms", "marketing")
    ]
    assert sms[0]["granted"] is False
    counts = api.client.get("/v1/sends/SMS-1", headers=api.as_("admin")).json()["counts"]
    assert counts == {"opted_out": 1, "no_consent": 1}
    # a store records for its own members only (M2 is another store's)
    ok = api.client.post(
        f"/v1/members/{m1}/consent",
        json={"action": "grant", "source": "store_till"},
        headers=api.as_("store"),
    )
    assert ok.status_code == 200
    denied = api.client.post(
        f"/v1/members/{m2}/consent", json={"action": "grant"}, headers=api.as_("store")
    )
    assert denied.status_code == 403
    bad = api.client.post(
        f"/v1/members/{m1}/consent",
        json={"action": "grant", "channel": "fax"},
        headers=api.as_("admin"),
    )
    assert bad.status_code == 422 and "channel" in bad.text


def test_callbacks_and_clicks_are_recorded_once_per_event_and_channel(api: Api) -> None:
    m1 = api.members["M1"]
    _compose(api)
    api.client.post("/v1/sends/SMS-1:plan?hold=false", headers=api.as_("admin"))
    outbox.deliver(
        api.store.engine,
        api.store.group_id,
        {"sms": Accepting()},
        now=DELIVERY,
        vault=api.app.state.services.vault,
    )
    with api.store.engine.connect() as conn:
        sid = conn.execute(
            text("SELECT send_id FROM sends WHERE group_id = :g AND code = 'SMS-1'"),
            {"g": api.store.group_id},
        ).scalar()
    key = f"{api.store.group_id}:{sid}:{m1}"
    items = [
        {"message_key": key, "kind": "delivered", "event_id": "dr-1"},
        {"message_key": key, "kind": "clicked", "event_id": "ck-1"},
        {
            "message_key": f"{api.store.group_id}:{sid}:{api.members['M2']}",
            "kind": "clicked",
            "event_id": "ck-2",
        },
        {"message_key": "nonsense", "kind": "clicked", "event_id": "ck-3"},
    ]
    first = api.client.post(
        "/v1/message-events:batch", json={"items": items}, headers=api.as_("admin")
    ).json()
    assert (first["read"], first["recorded"], first["duplicate"]) == (4, 2, 0)
    assert [r["item"] for r in first["rejected"]] == [2, 3]
    assert "skipped" in first["rejected"][0]["reason"]
    again = api.client.post(
        "/v1/message-events:batch", json={"items": items[:2]}, headers=api.as_("admin")
    ).json()
    assert (again["recorded"], again["duplicate"]) == (0, 2)
    # a channel key for another channel records nothing of SMS
    tmall = api.client.post(
        "/v1/message-events:batch",
        json={"items": [{"message_key": key, "kind": "read", "event_id": "rd-1"}]},
        headers=api.as_("channel"),
    ).json()
    assert tmall["recorded"] == 0 and "tmall only" in tmall["rejected"][0]["reason"]
    figures = api.client.get("/v1/sends/SMS-1/figures", headers=api.as_("analyst")).json()
    assert (figures["delivered"], figures["clicked"]) == (1, 1)
    clicked = api.client.get(
        "/v1/sends/SMS-1/recipients?figure=clicked", headers=api.as_("analyst")
    ).json()
    assert [r["member_id"] for r in clicked["recipients"]] == [m1]


def test_the_figures_set_a_send_against_its_held_out_people(api: Api) -> None:
    e, g = api.store.engine, api.store.group_id
    # given 40 reachable members at a stage, half of the group held out of everything
    ids = bulk_members(e, g, 40)
    at_stage(e, g, ids, stage="loyal")
    grant_all(e, g, ids)
    holdout = global_holdout.set_share(e, g, 5_000)
    held = [m for m in ids if holdout.holds(m)]
    doc = {**_send("LOYAL"), "channel": "wechat_subscribe", "target": {"stage": "loyal"}}
    doc["content"] = {"template": "TPL-1", "params": {"thing1": "x"}}
    assert api.client.put("/v1/sends/LOYAL", json=doc, headers=api.as_("admin")).status_code == 200
    planned = api.client.post("/v1/sends/LOYAL:plan?hold=false", headers=api.as_("admin"))
    assert planned.json()["counts"]["global_holdout"] == len(held), planned.text
    # and a held-out person and a reached one who buy at the till the day after
    reached = [m for m in ids if m not in held]
    for n, (member, fen) in enumerate(((held[0], 5000), (reached[0], 8000))):
        till_order(e, g, f"TILL-{n}", member, fen, DELIVERY)
    # when the figures are read
    figures = api.client.get("/v1/sends/LOYAL/figures", headers=api.as_("analyst")).json()
    # then the send is set against its held-out people over the window
    against = figures["against_holdout"]
    assert against["window_days"] == 7
    assert against["reached"] == {
        "people": len(reached), "buyers": 1, "orders": 1, "revenue_fen": 8000
    }  # fmt: skip
    assert against["held_out"] == {
        "people": len(held), "buyers": 1, "orders": 1, "revenue_fen": 5000
    }  # fmt: skip
    rate, revenue = against["buyer_rate"], against["revenue_per_person_fen"]
    assert rate["reached"] == pytest.approx(1 / len(reached))
    assert rate["difference"] == pytest.approx(1 / len(reached) - 1 / len(held))
    assert revenue["difference"] == pytest.approx(8000 / len(reached) - 5000 / len(held))
    assert revenue["ci_low"] < revenue["difference"] < revenue["ci_high"]
    assert 0 < revenue["p_value"] <= 1
