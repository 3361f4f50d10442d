"""The guide's day on a phone (390 px, zh): an HQ task (assigned from a document) shows
its title and script with a call and WeCom link, is marked contacted with a note and then
done through the CSRF-checked forms; a training item is marked completed."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from tests.console.conftest import Brand, login, shoot

from siyu.guides.campaigns import assign_tasks, author_task, guide_of_members, parse_task
from siyu.guides.training import complete, parse_item, save_item

NOTE = "企业微信已联系，周六到店"
PER_PAGE = 50


def test_the_guides_day_on_a_phone(brand: Brand, phone: Any) -> None:
    engine, g = brand.engine, brand.group
    # given an HQ task for the stage of one of the guide's members, and a training item
    with engine.connect() as conn:
        served = [
            int(r[0])
            for r in conn.execute(
                text(
                    "SELECT DISTINCT member_id FROM orders WHERE group_id = :g AND guide_id = :gd "
                    "AND member_id IS NOT NULL ORDER BY member_id LIMIT 200"
                ),
                {"g": g, "gd": brand.guide_id},
            )
        ]
        mine = [m for m, gd in guide_of_members(conn, g, served).items() if gd == brand.guide_id]
        stage = conn.execute(
            text("SELECT stage FROM member_stages WHERE group_id = :g AND member_id = :m"),
            {"g": g, "m": mine[0]},
        ).scalar_one()
    author_task(
        engine,
        g,
        parse_task(
            {
                "code": "day-1",
                "title_zh": "新品品鉴邀约",
                "title_en": "Tasting invitation",
                "target": {"kind": "stage", "value": stage},
                "due_on": (date.today() + timedelta(days=7)).isoformat(),
                "script": "您好，本周六新品品鉴，欢迎到店",
                "holdout_pct": 0,
            }
        ),
    )
    assign_tasks(engine, g, "day-1")
    item = {"code": "sop-day", "title_zh": "邀约话术", "title_en": "Invitation", "body": "先问好"}
    save_item(engine, g, parse_item(item))
    with engine.connect() as conn:
        ranked = [
            int(r[0])
            for r in conn.execute(
                text(
                    "SELECT task_id, campaign_code FROM guide_tasks WHERE group_id = :g "
                    "AND guide_id = :gd AND state IN ('open', 'contacted') "
                    "ORDER BY expected_value_fen DESC, urgency DESC, task_id"
                ),
                {"g": g, "gd": brand.guide_id},
            )
        ]
        task = conn.execute(
            text(
                "SELECT task_id FROM guide_tasks WHERE group_id = :g AND campaign_code = 'day-1' "
                "AND member_id = :m"
            ),
            {"g": g, "m": mine[0]},
        ).scalar_one()
    page_no = ranked.index(task) // PER_PAGE + 1
    # when the guide opens its tasks on a phone, in Chinese
    login(phone, brand.base, brand.keys["guide"], "zh")
    phone.goto(f"{brand.base}/console/tasks?view=live&page={page_no}")
    card = phone.locator(f"#task-{task}")
    # then the HQ task reads with its title, script and ways to reach the member
    assert card.locator("[data-field=title]").inner_text() == "新品品鉴邀约"
    assert "本周六新品品鉴" in card.locator("[data-field=script]").inner_text()
    reach = card.locator(".task-reach a")
    hrefs = [a.get_attribute("href") for a in reach.all()]
    assert hrefs and all(h.startswith(("tel:", "wxwork://message/?username=")) for h in hrefs)
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
    shoot(phone, "guide-day-hq-task")
    # when it logs a contact with a note, then marks it done
    card.locator("input[name=note]").fill(NOTE)
    card.locator("[data-action=contacted]").click()
    phone.wait_for_load_state("load")
    assert "已联系" in phone.locator("#task-changed").inner_text()
    phone.goto(f"{brand.base}/console/tasks?view=live&page={page_no}")
    phone.locator(f"#task-{task} [data-action=done]").click()
    phone.wait_for_load_state("load")
    states = brand.all(
        "SELECT state, note FROM guide_task_events WHERE group_id = :g AND task_id = :t "
        "ORDER BY event_id",
        t=task,
    )
    assert [(s, n) for s, n in states] == [("open", None), ("contacted", NOTE), ("done", None)]
    # and it marks the training item completed
    training = phone.locator("#training [data-code=sop-day]")
    training.locator("[data-action=complete]").click()
    phone.wait_for_load_state("load")
    assert phone.locator("#training [data-code=sop-day]").get_attribute("data-done") == "1"
    done = brand.one(
        "SELECT COUNT(*) FROM training_completions WHERE group_id = :g AND guide_id = :gd "
        "AND code = 'sop-day'",  # the brand is shared: other tests' guide completes others
        gd=brand.guide_id,
    )
    assert done == 1


def test_hq_sees_completion_and_each_count_opens_its_members(brand: Brand, page: Any) -> None:
    # given an HQ task assigned (held out 50%: a control to compare against)
    engine, g = brand.engine, brand.group
    author_task(
        engine,
        g,
        parse_task(
            {
                "code": "winback-1",
                "title_zh": "流失挽回",
                "title_en": "Win back",
                "target": {"kind": "stage", "value": "lapsed"},
                "due_on": (date.today() + timedelta(days=7)).isoformat(),
                "script": "好久不见",
                "holdout_pct": 50,
            }
        ),
    )
    done = assign_tasks(engine, g, "winback-1")
    assert done.tasked > 0 and done.control > 0
    item = {"code": "sop-hq", "title_zh": "挽回话术", "title_en": "Win-back", "body": "先问好"}
    save_item(engine, g, parse_item(item))
    complete(engine, g, brand.guide_id, "sop-hq")
    # when an analyst opens the guide tasks page
    login(page, brand.base, brand.keys["analyst"], "zh")
    page.goto(f"{brand.base}/console/guide-tasks")
    row = page.locator("#guide-tasks tr[data-code=winback-1]")
    # then the counts are the assignment's, and each opens the members behind it
    assigned = row.locator("[data-figure=assigned]")
    assert int(assigned.get_attribute("data-n")) == done.tasked
    assert int(row.locator("[data-figure=control]").get_attribute("data-n")) == done.control
    assert int(row.locator("[data-figure=no_guide]").get_attribute("data-n")) == done.no_guide
    row.locator("[data-figure=control] a").click()
    page.wait_for_load_state("load")
    assert "对照组" in page.locator("h1").inner_text()
    assert int(page.locator("#list-summary").get_attribute("data-total")) == done.control
    control = brand.all(
        "SELECT member_id FROM guide_task_targets WHERE group_id = :g AND code = 'winback-1' "
        "AND arm = 'control'"
    )
    listed = {
        int(m)
        for m in page.locator("tr[data-member]").evaluate_all(
            "rows => rows.map(r => r.dataset.member)"
        )
    }
    assert listed and listed <= {int(r[0]) for r in control}
    # and the training items' completion over the guides
    page.goto(f"{brand.base}/console/guide-tasks")
    item = page.locator("#training-rates tr[data-code=sop-hq]")
    guides = brand.one("SELECT COUNT(*) FROM guides WHERE group_id = :g")
    assert (item.get_attribute("data-completed"), item.get_attribute("data-guides")) == (
        "1",
        str(guides),
    )
