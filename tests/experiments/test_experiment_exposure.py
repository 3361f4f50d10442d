"""A treatment's own delivery counts as exposure, on SQLite and PostgreSQL (derived when
read, `experiments/exposure.py`): a coupon variant's members exposed when their coupon
was issued; a message variant's when the outbox sent their message (delivered to a real
HTTP receiver), not when it failed, was skipped or reported failed; a guide task
variant's when the guide marked the task contacted; an earlier logged exposure wins over
a later delivery; the survivor of a merge made after the delivery is exposed by what was
delivered to the member it absorbed; the exposure-anchored results read the derived
times (an order between assignment and delivery is not in the window)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from tests.conftest import Store
from tests.coupons.helpers import T0, save_template
from tests.experiments.helpers import add_order, make_plan, put_in_stage, save_send
from tests.experiments.test_guide_task_treatment import TASK, _author, _bind, _variants
from tests.messaging.msg_helpers import Receiver, bulk_members, grant_all, receiving, statuses

from siyu.experiments import plan as plans
from siyu.experiments.assign import expose, start
from siyu.experiments.exposure import counts, first_exposures
from siyu.experiments.results import PER_PROTOCOL, members, results
from siyu.guides.service import change_state
from siyu.identity.merge import merge_many
from siyu.identity.service import follow
from siyu.messaging import outbox
from siyu.messaging.transports.registry import registry
from siyu.store.times import stored_time

NOW = T0.replace(tzinfo=None)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def _arms(store: Store) -> dict[int, str]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT member_id, variant FROM experiment_members WHERE group_id = :g
                    AND merged_into IS NULL"""),
            {"g": store.group_id},
        ).all()
    return {int(m): str(v) for m, v in rows}


def test_a_coupon_variants_members_are_exposed_when_their_coupon_is_issued(store: Store) -> None:
    g, e = store.group_id, store.engine
    ids = bulk_members(e, g, 40)
    put_in_stage(e, g, ids, "new_1")
    save_template(e, g)
    variants = [
        {"name": "control", "weight_bp": 5000, "kind": "none"},
        {"name": "coupon", "weight_bp": 5000, "kind": "coupon", "ref": "SPRING20"},
    ]
    plans.save(e, g, make_plan(variants=variants), None)
    # when the experiment starts, and again a day later with newcomers in the target
    start(e, g, "KNEE2", at=T0)
    first = _arms(store)
    later = bulk_members(e, g, 20)
    put_in_stage(e, g, later, "new_1")
    start(e, g, "KNEE2", at=T0 + DAY)
    arms = _arms(store)
    # then each coupon member is exposed when its coupon was issued, the control not at all
    want = {m: NOW if m in first else NOW + DAY for m, v in arms.items() if v == "coupon"}
    assert want and first_exposures(e, g, "KNEE2") == want
    assert counts(e, g, "KNEE2") == {"control": 0, "coupon": len(want)}
    # read before the second start: only the first coupons had been issued
    early = counts(e, g, "KNEE2", NOW + DAY / 2)
    assert early["coupon"] == sum(1 for m in want if m in first) < len(want)


class Failing(Receiver):
    """Accepts every message but those to `refused` members, answered 503 each time."""

    def __init__(self, refused: set[int]) -> None:
        super().__init__()
        self.refused = refused

    def handle(self, key: str, body: dict[str, Any]) -> int:
        if int(key.rsplit(":", 1)[1]) in self.refused:
            with self.lock:
                self.requests.append(body)
            return 503
        return super().handle(key, body)


def test_a_message_variants_members_are_exposed_when_their_message_is_sent(
    store: Store,
) -> None:
    g, e = store.group_id, store.engine
    # given x, an older member outside the target, and 60 reachable members in it
    (x,) = bulk_members(e, g, 1)
    ids = bulk_members(e, g, 60)
    grant_all(e, g, ids)
    put_in_stage(e, g, ids, "new_1")
    save_send(e, g, "M1")
    variants = [
        {"name": "control", "weight_bp": 5000, "kind": "none"},
        {"name": "note", "weight_bp": 5000, "kind": "message", "ref": "M1"},
    ]
    plans.save(e, g, make_plan(variants=variants), None)
    start(e, g, "KNEE2", at=T0)
    arms = _arms(store)
    note = sorted(m for m, v in arms.items() if v == "note")
    control = sorted(m for m, v in arms.items() if v == "control")
    assert len(note) >= 10 and len(control) >= 5
    opted_out, refused, reported_failed, logged_early, logged_late, absorbed = note[:6]
    # planned at the start, not delivered yet: nobody is exposed by the send
    assert first_exposures(e, g, "KNEE2") == {}
    # one member withdraws consent before the outbox claims its message
    with e.begin() as conn:
        conn.execute(
            text("""UPDATE member_consents SET last_withdrawal_at = :t WHERE group_id = :g
                    AND member_id = :m"""),
            {"t": datetime(2029, 6, 1), "g": g, "m": opted_out},
        )
    # one member's message is logged as shown before the outbox delivers it
    expose(e, g, "KNEE2", [logged_early], NOW + 5 * MINUTE)
    # when the outbox delivers (18:10 in Shanghai), one platform refusing a member always
    receiver = Failing({refused})
    sent_at = NOW + 10 * MINUTE
    with receiving(receiver) as url:
        transports = {"wechat_subscribe": registry.transport("http", {"url": url})}
        for k in range(outbox.MAX_ATTEMPTS + 1):
            outbox.deliver(e, g, transports, now=sent_at + k * 10 * MINUTE)
    found = statuses(e, g, "M1")
    assert found[opted_out] == ("skipped", "opted_out")
    assert found[refused][0] == "failed"
    assert {found[m][0] for m in note if m not in (opted_out, refused)} == {"sent"}
    with e.connect() as conn:
        send_id = conn.execute(
            text("SELECT send_id FROM sends WHERE group_id = :g AND code = 'M1'"), {"g": g}
        ).scalar_one()
    # the platform reports one sent message failed
    assert outbox.record_event(
        e, g, send_id, reported_failed, "failed", "rcpt-1", at=sent_at + MINUTE
    )
    # a later log changes nothing: the delivery was first
    expose(e, g, "KNEE2", [logged_late], NOW + DAY)
    # the control's exposures are logged by the caller
    expose(e, g, "KNEE2", control[:5], sent_at)
    # and, after the delivery, x absorbs a member the message reached
    with e.begin() as conn:
        merged = merge_many(conn, g, [(x, absorbed, "same person")], "manual")
    assert {s for _, s in merged} == {x}
    follow(e, g)
    # then the members the message reached are exposed when it was sent, an earlier log
    # wins, the failed, skipped and reported failed are not exposed, and the survivor is
    # exposed by what was delivered to the member it absorbed
    not_reached = {opted_out, refused, reported_failed, absorbed}
    want = {m: sent_at for m in note if m not in not_reached}
    want |= {logged_early: NOW + 5 * MINUTE, x: sent_at}
    want |= {m: sent_at for m in control[:5]}
    assert first_exposures(e, g, "KNEE2") == want
    assert counts(e, g, "KNEE2") == {"control": 5, "note": len(note) - 3}
    # read before the delivery: only the early log
    assert first_exposures(e, g, "KNEE2", sent_at - MINUTE) == {logged_early: NOW + 5 * MINUTE}
    assert counts(e, g, "KNEE2", sent_at - MINUTE) == {"control": 0, "note": 1}
    # the results from exposure read the derived times: an order between the assignment
    # and the delivery is before the window, an order after it is in it
    bought_early, bought_late = note[6], note[7]
    add_order(e, g, "EARLY", bought_early, 5000, T0 + 2 * MINUTE)
    add_order(e, g, "LATE", bought_late, 5000, T0 + DAY)
    add_order(e, g, "CTRL", control[0], 5000, T0 + DAY)
    at = T0 + 40 * DAY
    assert members(e, g, "KNEE2", "note", "next_order", at=at) == sorted(
        [bought_early, bought_late]
    )
    assert members(e, g, "KNEE2", "note", "next_order", anchor="exposure", at=at) == [bought_late]
    assert members(e, g, "KNEE2", "note", anchor="exposure", at=at) == sorted(
        m for m in want if m not in control
    )
    read = results(e, g, "KNEE2", anchor="exposure", at=at)
    assert read.overall.counts == read.exposed == {"control": 5, "note": len(note) - 3}
    assert read.exposure_note == PER_PROTOCOL
    by_assignment = results(e, g, "KNEE2", at=at)
    assert by_assignment.exposed == read.exposed and by_assignment.exposure_note is None
    assert by_assignment.overall.counts == {"control": len(control), "note": len(note)}


def test_a_control_with_no_logged_exposure_is_said_to_have_nothing_to_compare(
    store: Store,
) -> None:
    g, e = store.group_id, store.engine
    ids = bulk_members(e, g, 20)
    put_in_stage(e, g, ids, "new_1")
    save_template(e, g)
    variants = [
        {"name": "control", "weight_bp": 5000, "kind": "none"},
        {"name": "coupon", "weight_bp": 5000, "kind": "coupon", "ref": "SPRING20"},
    ]
    plans.save(e, g, make_plan(variants=variants), None)
    start(e, g, "KNEE2", at=T0)
    read = results(e, g, "KNEE2", anchor="exposure", at=T0 + 40 * DAY)
    assert read.overall.counts["control"] == 0 < read.overall.counts["coupon"]
    assert read.exposure_note is not None
    assert (
        read.exposure_note.startswith(PER_PROTOCOL) and "no logged exposure" in read.exposure_note
    )


@dataclass(frozen=True)
class Guide:
    key_id: int
    group_id: str
    guide_id: str | None
    role: str = "guide"


def test_a_guide_task_variants_members_are_exposed_when_the_guide_makes_contact(
    store: Store,
) -> None:
    g, e = store.group_id, store.engine
    ids = bulk_members(e, g, 30)
    put_in_stage(e, g, ids, "new_1")
    _bind(store, {m: "own-1" for m in ids})
    _author(store)
    plans.save(e, g, make_plan(variants=_variants()), None)
    start(e, g, "KNEE2", at=T0)
    with e.connect() as conn:
        tasks = {
            int(m): int(t)
            for m, t in conn.execute(
                text("""SELECT member_id, task_id FROM guide_tasks WHERE group_id = :g
                        AND campaign_code = :c ORDER BY member_id"""),
                {"g": g, "c": TASK},
            )
        }
    assert len(tasks) >= 3
    # given open tasks: nobody exposed yet
    assert first_exposures(e, g, "KNEE2") == {}
    contacted, finished, dismissed = sorted(tasks)[:3]
    guide = Guide(7, g, "own-1")
    # when the guide contacts one member twice, finishes another's task and dismisses one
    first = change_state(e, guide, tasks[contacted], "contacted", "发了微信")
    change_state(e, guide, tasks[contacted], "contacted", "到店了")
    done = change_state(e, guide, tasks[finished], "done")
    change_state(e, guide, tasks[dismissed], "dismissed")
    # then the contacted member is exposed at the first contact, the finished one when done
    got = first_exposures(e, g, "KNEE2")
    assert got == {contacted: stored_time(first.at), finished: stored_time(done.at)}
    assert counts(e, g, "KNEE2") == {"control": 0, "tasked": 2}
