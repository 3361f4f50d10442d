"""No console page asks for something that is not there (issue #14: one 404 on every page
load, the browser's own request for /favicon.ico): every page of every console role,
opened in Chromium, makes no request that fails or answers an error, and the icon the
browser fetches for it (the one the page declares, else /favicon.ico) is there."""

from __future__ import annotations

from typing import Any

from tests.console.conftest import Brand, login

from siyu.auth.principal import Role
from siyu.console.access import PAGES

# The browser fetches the tab's icon itself, outside the page's requests: what it asks for.
ICON = """() => {
  const link = document.querySelector('link[rel~="icon"]');
  return link ? link.href : location.origin + '/favicon.ico';
}"""


def test_every_page_loads_without_a_failed_request(brand: Brand, page: Any) -> None:
    failed: list[str] = []

    def on_failure(request: Any) -> None:
        # ERR_ABORTED: a load the browser gave up on when the test moved on to the next
        # page (the login form is submitted without waiting for its icon); not an answer
        if request.failure != "net::ERR_ABORTED":
            failed.append(f"{request.url} failed: {request.failure}")

    page.on("requestfailed", on_failure)
    page.on("response", lambda r: failed.append(f"{r.url} {r.status}") if r.status >= 400 else 0)
    member = brand.one(
        "SELECT MIN(member_id) FROM orders WHERE group_id = :g AND guide_id = :gd",
        gd=brand.guide_id,
    )
    # an order the demo's guides step attributed, for the attribution page
    attributed = brand.one("SELECT MIN(order_id) FROM order_attributions WHERE group_id = :g")
    ids = {"guide_id": brand.guide_id, "store_id": brand.store_id, "order_id": attributed}
    icons: dict[str, str] = {}
    # given the login page, and each console role logged in
    page.goto(f"{brand.base}/console/login")
    icons["/console/login"] = page.evaluate(ICON)
    for role in (Role.ADMIN, Role.STORE, Role.GUIDE):
        page.context.clear_cookies()
        login(page, brand.base, brand.keys[role.value])
        paths = [p.path.format(**ids) for p in PAGES if role in p.roles]
        if role is not Role.STORE:  # the guide's member need not be the store's
            paths.append(f"/console/members/{member}")
        for path in paths:
            # when each of its pages is opened and has settled
            page.goto(f"{brand.base}{path}")
            page.wait_for_load_state("networkidle")
            icons[path] = page.evaluate(ICON)
    # then no request of any page failed or answered an error
    assert failed == []
    # and the icon each page makes the browser fetch is there, an image
    for path, icon in icons.items():
        answer = page.request.get(icon)
        assert answer.status == 200, f"{path}: its icon {icon} answers {answer.status}"
        assert answer.headers["content-type"].startswith("image/"), icon
