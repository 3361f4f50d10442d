"""A small demo brand (real generator, import, OneID, warehouse, snapshot) served by a real
uvicorn, keys for every role, and a real headless Chromium driven by Playwright.

Chromium is the system's (Debian's `chromium`, `make browser`); Playwright never downloads
one. Without it the browser tests skip with the reason, except under CI=true.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from tests.api.live import live_server
from tests.conftest import IN_CI, ROOT

from siyu.auth.keys import create_key
from siyu.config import Settings
from siyu.demo.pipeline import DemoResult, run_demo
from siyu.importer.service import ensure_group
from siyu.privacy import Vault
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

SECRET = bytes(range(32))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "console"
SCREENSHOTS = Path("/tmp")  # where `shoot_and_copy` leaves a copy, for a person to look at
PHONE = {"width": 390, "height": 844}


@dataclass
class Brand:
    engine: Engine
    group: str
    base: str  # the live server
    keys: dict[str, str]  # role (or a name) -> secret
    key_ids: dict[str, int]
    store_id: str  # the store key's store
    guide_id: str  # the guide key's guide
    demo: DemoResult

    def one(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), {"g": self.group, **params}).scalar()

    def all(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), {"g": self.group, **params}).all())


@pytest.fixture(scope="session")
def brand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brand]:
    work = tmp_path_factory.mktemp("console")
    demo = run_demo(Settings(secret_key=SECRET), 2_000, 11, work)
    engine = make_engine(demo.database_url)
    group = demo.group_id
    vault = Vault(SECRET)
    with engine.connect() as conn:
        # the busiest store and guide, so their pages have members to show
        store_id = conn.execute(
            text(
                "SELECT home_store_id FROM members WHERE group_id = :g AND status = 'active' "
                "AND home_store_id IS NOT NULL GROUP BY home_store_id ORDER BY COUNT(*) DESC, "
                "home_store_id LIMIT 1"
            ),
            {"g": group},
        ).scalar_one()
        guide_id = conn.execute(
            text(
                "SELECT guide_id FROM orders WHERE group_id = :g AND guide_id IS NOT NULL "
                "GROUP BY guide_id ORDER BY COUNT(DISTINCT member_id) DESC, guide_id LIMIT 1"
            ),
            {"g": group},
        ).scalar_one()
    issued = {
        "admin": create_key(engine, vault, group, "admin"),
        "analyst": create_key(engine, vault, group, "analyst"),
        "store": create_key(engine, vault, group, "store", stores=(store_id,)),
        "guide": create_key(engine, vault, group, "guide", guide_id=guide_id),
        "channel": create_key(engine, vault, group, "channel", channel="tmall"),
        "member": create_key(engine, vault, group, "member", member_id=1),
        "to_revoke": create_key(engine, vault, group, "admin", "revoked in a test"),
    }
    # the demo's warehouse, which the segment pages preview and evaluate on
    warehouse = {"SIYU_WAREHOUSE": demo.settings.warehouse}
    with live_server(engine, group, SECRET, workers=1, extra_env=warehouse) as base:
        yield Brand(
            engine,
            group,
            base,
            {r: k.secret for r, k in issued.items()},
            {r: k.key_id for r, k in issued.items()},
            store_id,
            guide_id,
            demo,
        )
    engine.dispose()


# Per module, not per session: Playwright's sync API runs an asyncio loop in the main
# thread while it is open, and tests after the console's (asyncio.run in tests/store)
# cannot start a loop of their own beside it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        message = f"no Chromium at {CHROMIUM}: `make browser` installs Debian's chromium"
        if IN_CI:
            pytest.fail(f"CI=true requires Chromium: {message}")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    tab = context.new_page()
    yield tab
    context.close()


def login(page: Any, base: str, key: str, lang: str = "zh") -> None:
    """Log in through the form, as a person would."""
    page.goto(f"{base}/console/login?lang={lang}")
    page.fill("#key", key)
    page.click("form button[type=submit]")
    page.wait_for_load_state("load")


def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def shoot_and_copy(page: Any, name: str) -> None:
    """A screenshot in the artefacts, and a copy of it in /tmp."""
    shoot(page, name)
    shutil.copy(ARTIFACTS / f"{name}.png", SCREENSHOTS / f"{name}.png")


@dataclass
class Served:
    """A small seeded SQLite store served by a live uvicorn, for one module's browser
    tests: the keys by role, and the ids the seed named (members, receipts)."""

    engine: Engine
    base: str
    keys: dict[str, str]
    ids: dict[str, int]


# what a seed writes into a migrated store (the engine, its vault, the group, a folder for
# its files) and answers: the ids it named, and the keys' secrets by role
Seed = Callable[[Engine, Vault, str, Path], tuple[dict[str, int], dict[str, str]]]


@contextmanager
def serve_seeded(work: Path, group: str, seed: Seed) -> Iterator[Served]:
    """A new store in `work` with the brand group, seeded, and served while in use."""
    engine = make_engine(f"sqlite:///{work / 'siyu.db'}")
    upgrade(engine)
    ensure_group(engine, group)
    ids, keys = seed(engine, Vault(SECRET), group, work)
    with live_server(engine, group, SECRET, workers=1) as base:
        yield Served(engine, base, keys, ids)
    engine.dispose()


# Per chart: how many pixels carry colour (series are coloured; axes, grid lines and
# text are grey or black). A chart whose series did not draw has next to none.
COLOURED_PIXELS = """() => Array.from(document.querySelectorAll('.chart')).map(el => {
  const canvas = el.querySelector('canvas');
  if (!canvas) return [el.id, -1];
  const ctx = canvas.getContext('2d');
  const d = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
    if (a > 0 && (Math.abs(r - g) > 24 || Math.abs(g - b) > 24 || Math.abs(r - b) > 24)) n++;
  }
  return [el.id, n];
})"""


def coloured(page: Any) -> dict[str, int]:
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.chart')).every(e => e.dataset.drawn)"
    )
    return dict(page.evaluate(COLOURED_PIXELS))
