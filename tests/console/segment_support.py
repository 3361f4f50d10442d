"""What the segment, builder and tag page tests share: the demo's segments and tags made
through the services, the rule previewed in this process for comparison, posting a form
with the browser's session, and the guide's members."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from tests.console.conftest import Brand

from siyu.analytics.engines import connect
from siyu.analytics.warehouse import open_warehouse
from siyu.console.session import CSRF_COOKIE
from siyu.segments import evaluate as runs
from siyu.segments import stored
from siyu.segments import tags as tag_service


def preview_count(brand: Brand, rule: dict[str, Any]) -> int:
    """`evaluate.preview_rule`'s size for the rule, on the demo's warehouse."""
    backend = connect("duckdb")
    try:
        wh = open_warehouse(backend, Path(brand.demo.settings.warehouse), brand.group)
        return runs.preview_rule(brand.engine, backend, wh, rule, None, 0).size
    finally:
        backend.disconnect()


def define(brand: Brand, slug: str, rule: dict[str, Any], evaluate: bool = True) -> None:
    """A segment (if missing), evaluated on the demo's warehouse."""
    with brand.engine.begin() as conn:
        if not any(s.slug == slug for s in stored.list_segments(conn, brand.group, True)):
            stored.define_segment(
                conn,
                brand.group,
                slug,
                name_zh=f"测试{slug}",
                name_en=f"Test {slug}",
                rule=rule,
                owner="key:1",
            )
    if evaluate:
        backend = connect("duckdb")
        try:
            wh = open_warehouse(backend, Path(brand.demo.settings.warehouse), brand.group)
            runs.evaluate_segments(brand.engine, backend, wh, [slug], None, "manual")
        finally:
            backend.disconnect()


def manual_tag(brand: Brand, slug: str, members: list[int], kind: str = "manual") -> None:
    """A tag (if missing) held by `members`, set by key 1 (an import for imported tags)."""
    with brand.engine.begin() as conn:
        if not any(t.slug == slug for t in tag_service.list_tags(conn, brand.group, True)):
            tag_service.define_tag(
                conn,
                brand.group,
                slug,
                name_zh=f"标签{slug}",
                name_en=f"Tag {slug}",
                kind=kind,
                owner="key:1",
            )
        for m in members:
            tag_service.set_member_tag(
                conn, brand.group, slug, m, "key:1", None, kinds=("manual", "imported")
            )


def members_of(brand: Brand, sql: str, **params: Any) -> set[int]:
    return {int(r[0]) for r in brand.all(sql, **params)}


def guide_members(brand: Brand) -> set[int]:
    """The guide key's members: an order or an event carrying the guide, active."""
    return members_of(
        brand,
        "SELECT member_id FROM members WHERE group_id = :g AND status = 'active' AND "
        "member_id IN (SELECT member_id FROM orders WHERE group_id = :g AND guide_id = :d "
        "UNION SELECT member_id FROM events WHERE group_id = :g AND guide_id = :d)",
        d=brand.guide_id,
    )


def post(page: Any, path: str, fields: dict[str, str], csrf: bool = True) -> Any:
    """POST a form with the page's session cookies (and its CSRF token), no redirects
    followed: the answer's status and location are the test's."""
    token = next(c["value"] for c in page.context.cookies() if c["name"] == CSRF_COOKIE)
    body = {**({"csrf": token} if csrf else {}), **fields}
    base = page.url.split("/console")[0]
    return page.request.post(f"{base}{path}", form=body, max_redirects=0)


def ids_on(page: Any, table: str = "table.members") -> list[int]:
    return [
        int(r.get_attribute("data-member"))
        for r in page.locator(f"{table} tbody tr[data-member]").all()
    ]


def export(page: Any) -> list[dict[str, str]]:
    href = page.locator("#export-csv").get_attribute("href")
    response = page.request.get(page.url.split("/console")[0] + href)
    assert response.status == 200, href
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text().lstrip("\ufeff"))))
