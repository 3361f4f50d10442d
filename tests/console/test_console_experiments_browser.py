"""Experiments in Chromium, in Chinese: HQ opens Experiments from the Marketing section,
saves a draft over the members at risk with the form, starts it, reads the results
(control beside each variant: lift, 95% interval, p-value, sequential interval, CUPED,
per stage), clicks a variant's member count and lands on the member list of exactly those
members. (The rest is tested in process: `test_console_experiments.py`.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from tests.console.conftest import Served, login, serve_seeded, shoot_and_copy
from tests.console.test_console_labels import Scanner, known_codes, page_strings
from tests.console.test_console_messages import seed_messaging
from tests.experiments.helpers import add_order, save_send

from siyu.privacy import Vault

GROUP = "g-experiments"


def _seed(
    engine: Engine, vault: Vault, group: str, work: Path
) -> tuple[dict[str, int], dict[str, str]]:
    found = seed_messaging(engine, vault, group, work)
    save_send(engine, group, experiment="WAKE-TEST")  # the `note` variant's message
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_seeded(tmp_path_factory.mktemp("experiments"), GROUP, _seed) as s:
        yield s


def _more_members(engine: Engine) -> None:
    """400 more assigned members ten days ago (ids without profiles), half of each
    variant, the note's buying more often: figures to read beside the two real members."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        experiment = conn.execute(
            text("SELECT experiment_id FROM experiments WHERE group_id = :g"), {"g": GROUP}
        ).scalar_one()
        conn.execute(
            text("""INSERT INTO experiment_members (group_id, experiment_id, member_id,
                    variant, bucket, stage, assigned_at) VALUES (:g, :e, :m, :v, 0, :s, :at)"""),
            [
                {
                    "g": GROUP,
                    "e": experiment,
                    "m": 500_000 + i,
                    "v": "control" if i % 2 else "note",
                    "s": "at_risk" if i % 3 else "lapsed",
                    "at": now - timedelta(days=10),
                }
                for i in range(400)
            ],
        )
    for i in range(400):
        if (i % 2 == 0 and i % 5 < 3) or (i % 2 == 1 and i % 5 < 2):
            add_order(engine, GROUP, f"X{i}", 500_000 + i, 5000 + 37 * i, now - timedelta(days=5))


def test_save_start_read_results_and_click_a_variants_members_in_chinese(
    served: Served, page: Any
) -> None:
    scanner = Scanner("zh", known_codes())
    today = datetime.now(UTC).date()
    # given an admin logged in, in Chinese
    login(page, served.base, served.keys["admin"])
    # when it opens Experiments from the Marketing section
    link = page.locator("nav.side a[data-page=experiments]")
    assert link.inner_text() == "实验"
    link.click()
    page.wait_for_load_state("load")
    # and saves a draft over the members at risk, half of them sent a message
    page.fill("#f-code", "WAKE-TEST")
    page.fill("#f-name-zh", "唤醒实验")
    page.fill("#f-name-en", "Wake-up test")
    page.select_option("#f-target-kind", "stage")
    page.fill("#f-target", "at_risk")
    page.fill("#f-variants", "control:50:none\nnote:50:message:M1")
    page.fill("#f-window", "30")
    page.fill("#f-pre", "30")
    page.fill("#f-starts", f"{today:%Y-%m-%d}")
    page.fill("#f-ends", f"{today + timedelta(days=60):%Y-%m-%d}")
    shoot_and_copy(page, "experiments-new-zh")
    page.click("#experiment-submit")
    page.wait_for_load_state("load")
    assert page.locator("#experiment-status").inner_text() == "草稿"
    # and starts it
    page.click("#experiment-start")
    page.wait_for_load_state("load")
    assert page.locator("#experiment-status").inner_text() == "进行中"
    assert "新分配 2 人" in page.locator("#experiment-done").inner_text()
    # then, with more members' outcomes in, the results
    _more_members(served.engine)
    page.reload()
    page.wait_for_load_state("load")
    table = page.locator("#m-all-repurchase")
    assert "复购" in table.locator("caption").inner_text()
    row = table.locator("tr[data-variant=note]")
    assert row.get_attribute("data-lift") and row.get_attribute("data-p")
    assert page.locator("#breakdown-lapsed").count() == 1
    assert "CUPED 调整后提升" in page.inner_text("body")
    shoot_and_copy(page, "experiments-results-zh")
    assert not scanner.untranslated("\n".join(page_strings(page).values()))
    # when it clicks the note variant's members
    with served.engine.connect() as conn:
        real = sorted(
            conn.execute(
                text("""SELECT member_id FROM experiment_members WHERE variant = 'note'
                        AND member_id < 500000""")
            ).scalars()
        )
    count = page.locator("#n-all-revenue_fen-note")
    total = int(count.get_attribute("data-n") or 0)
    assert total == 200 + len(real)
    count.click()
    page.wait_for_load_state("load")
    # then the member list of those members (those with a profile are listed)
    assert "唤醒实验 · note" in page.locator("h1").inner_text()
    assert page.locator("#list-summary").get_attribute("data-total") == str(len(real))
    for m in real:
        assert page.locator(f"tr[data-member='{m}']").count() == 1
    shoot_and_copy(page, "experiments-members-zh")
