"""Follow-up tasks in the browser: a guide sees its tasks as cards ranked by expected value
then urgency, marks one contacted with a note, then done; the task leaves the list and its
history says who changed it and when. A guide cannot act on another guide's task; HQ sees
every guide's tasks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.console.conftest import Brand, login, shoot

NOTE = "微信联系，周末到店试吃"


def cards(page: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": int(c.get_attribute("data-task-id")),
            "kind": c.get_attribute("data-task"),
            "member": int(c.get_attribute("data-member")),
            "state": c.get_attribute("data-state"),
            "value": int(c.get_attribute("data-value")),
            "urgency": int(c.get_attribute("data-urgency")),
        }
        for c in page.locator("article.task").all()
    ]


def test_the_demo_has_next_order_tasks_from_its_knee(brand: Brand) -> None:
    life = json.loads(
        brand.one(
            "SELECT payload FROM analytics_snapshots WHERE group_id = :g AND kind = 'lifecycle' "
            "ORDER BY snapshot_id DESC LIMIT 1"
        )
    )
    knee = life["knee"]  # what the small demo finds (the generator's true knee is 4)
    assert knee >= 2
    # every task of a kind the stages call for, the next order for members one before it
    kinds = dict(
        brand.all("SELECT kind, COUNT(*) FROM guide_tasks WHERE group_id = :g GROUP BY kind")
    )
    # (HQ's own tasks, kind 'hq', are test_console_guide_day's, maybe run before this)
    assert set(kinds) - {"hq"} == {"next_order", "win_back_at_risk", "win_back_lapsed"}
    assert (
        brand.one(
            "SELECT COUNT(*) FROM guide_tasks WHERE group_id = :g AND kind = 'next_order' "
            "AND stage <> :s",
            s=f"new_{knee - 1}",
        )
        == 0
    )


@pytest.mark.parametrize("lang", ["en"])
def test_a_guide_marks_a_task_contacted_with_a_note_then_done(
    brand: Brand, phone: Any, lang: str
) -> None:
    # given the guide logged in on a phone, on its tasks
    login(phone, brand.base, brand.keys["guide"], lang)
    phone.goto(f"{brand.base}/console/tasks")
    shown = cards(phone)
    assert shown
    # then the cards are ranked by expected value, then urgency
    ranks = [(-c["value"], -c["urgency"]) for c in shown]
    assert ranks == sorted(ranks)
    # and are the guide's, as the store holds them
    mine = {
        r[0]
        for r in brand.all(
            "SELECT task_id FROM guide_tasks WHERE group_id = :g AND guide_id = :d "
            "AND state IN ('open', 'contacted')",
            d=brand.guide_id,
        )
    }
    assert {c["id"] for c in shown} <= mine
    assert int(phone.locator("#task-count").get_attribute("data-total")) == len(mine)
    # each card shows the member (masked name), stage, last order and value, and fits
    first = phone.locator("article.task").first
    assert "*" in first.locator("dd").first.inner_text() or first.locator("dd").first.inner_text()
    for field in ("value", "last_order", "urgency", "due"):
        assert first.locator(f"[data-field={field}]").inner_text().strip() not in ("", "-")
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
    task = shown[0]["id"]
    card = phone.locator(f"#task-{task}")
    # when the guide marks it contacted with a note
    card.locator("input[name=note]").fill(NOTE)
    card.locator("[data-action=contacted]").click()
    phone.wait_for_load_state("load")
    assert "contacted" in phone.locator("#task-changed").inner_text().lower()
    card = phone.locator(f"#task-{task}")
    assert card.get_attribute("data-state") == "contacted"
    history = card.locator(".task-history li")
    assert history.count() == 2
    last = history.nth(1)
    assert last.get_attribute("data-actor") == str(brand.key_ids["guide"])
    assert NOTE in last.inner_text()
    assert f"key #{brand.key_ids['guide']}" in last.inner_text()
    shoot(phone, "guide-task-contacted")
    # when it marks it done: it leaves the list
    card.locator("[data-action=done]").click()
    phone.wait_for_load_state("load")
    assert phone.locator(f"#task-{task}").count() == 0
    assert task not in {c["id"] for c in cards(phone)}
    # and the closed view shows who changed what and when
    phone.goto(f"{brand.base}/console/tasks?view=closed")
    card = phone.locator(f"#task-{task}")
    assert card.get_attribute("data-state") == "done"
    states = [li.get_attribute("data-state") for li in card.locator(".task-history li").all()]
    assert states == ["open", "contacted", "done"]
    times = [t.get_attribute("datetime") for t in card.locator(".task-history time").all()]
    assert all(times) and times == sorted(times)
    assert card.locator("[data-action]").count() == 0  # a closed task has no actions
    assert brand.all(
        "SELECT state, actor_key_id, note FROM guide_task_events WHERE task_id = :t "
        "ORDER BY event_id",
        t=task,
    ) == [
        ("open", None, None),
        ("contacted", brand.key_ids["guide"], NOTE),
        ("done", brand.key_ids["guide"], None),
    ]
    shoot(phone, "guide-task-closed")


def test_a_guide_cannot_act_on_another_guides_task(brand: Brand, page: Any) -> None:
    other = brand.one(
        "SELECT MIN(task_id) FROM guide_tasks WHERE group_id = :g AND guide_id <> :d "
        "AND state = 'open'",
        d=brand.guide_id,
    )
    login(page, brand.base, brand.keys["guide"], "en")
    page.goto(f"{brand.base}/console/tasks")
    token = page.locator("input[name=csrf]").first.input_value()
    response = page.request.post(
        f"{brand.base}/console/tasks/{other}/done", form={"csrf": token}, max_redirects=0
    )
    assert response.status == 403
    # and without the form's token, not even its own
    mine = page.locator("article.task").first.get_attribute("data-task-id")
    forged = page.request.post(f"{brand.base}/console/tasks/{mine}/done", form={"csrf": "x"})
    assert forged.status == 403
    assert brand.one("SELECT state FROM guide_tasks WHERE task_id = :t", t=other) == "open"
    assert brand.one("SELECT state FROM guide_tasks WHERE task_id = :t", t=int(mine)) != "done"


def test_hq_sees_every_guides_tasks_and_a_closed_task_stays_closed(brand: Brand, page: Any) -> None:
    login(page, brand.base, brand.keys["admin"], "zh")
    page.goto(f"{brand.base}/console/tasks")
    live = brand.one(
        "SELECT COUNT(*) FROM guide_tasks WHERE group_id = :g AND state IN ('open', 'contacted')"
    )
    assert int(page.locator("#task-count").get_attribute("data-total")) == live
    guides = {g.inner_text() for g in page.locator("[data-field=guide]").all()}
    assert len(guides) > 1
    # one guide's, by the filter
    page.goto(f"{brand.base}/console/tasks?guide={brand.guide_id}")
    assert {g.inner_text() for g in page.locator("[data-field=guide]").all()} == {brand.guide_id}
    # HQ dismisses one; a second move of it is refused, naming the rule
    task = page.locator("article.task").first.get_attribute("data-task-id")
    page.locator(f"#task-{task} [data-action=dismiss]").click()
    page.wait_for_load_state("load")
    token = page.locator("input[name=csrf]").first.input_value()
    again = page.request.post(f"{brand.base}/console/tasks/{task}/done", form={"csrf": token})
    assert again.status == 409
    assert "完成和忽略是最终状态" in again.text()
    shoot(page, "hq-tasks")
