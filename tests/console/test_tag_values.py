"""Automatic tags read as a membership manager reads them: every coded value by its label in
Chinese and English, a store, brand or tier by its name, and each tag's rule in the page's
language (the English one for a definition stored before the Chinese rule existed)."""

from __future__ import annotations

import re
from http.cookiejar import CookieJar
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, build_opener

import numpy as np
import pytest
from tests.console.conftest import Brand

from siyu.console.i18n import STRINGS, stage_label, tr
from siyu.console.tag_values import (
    FREE_TEXT,
    LABELLED_ELSEWHERE,
    NAMED,
    VALUE_SETS,
    VALUELESS,
    Names,
    tag_rule,
    tag_value,
)
from siyu.ledger.program import tier_names
from siyu.segments import tags as tag_service
from siyu.segments.automatic import store_tags as st
from siyu.segments.automatic import warehouse_tags as wt
from siyu.segments.automatic.catalogue import BY_SLUG, CATALOGUE
from siyu.segments.automatic.refresh import ensure_tags

CJK = re.compile(r"[\u4e00-\u9fff]")
EVENT_BANDS = ("1-2", "3-9", "10+")
# The codes each coded tag writes, read from the compute modules (their band tables) and,
# for the literals of warehouse_tags' expressions, written out here.
CODES: dict[str, tuple[str, ...]] = {
    "auto.discount_sensitivity": ("none", "low", "mid", "high"),
    "auto.price_band": ("low", "mid", "high"),
    "auto.clv_band": (*(code for _, code in st.CLV_BANDS), "low"),
    "auto.affinity": ("high", "medium", "low"),
    "auto.customer": ("new", "existing"),
    "auto.same_city": ("home_city", "elsewhere"),
    "auto.contact_method": st.CONTACT_METHODS,
    "auto.gender": st.GENDERS,
    "auto.birth_month": tuple(f"{m:02d}" for m in range(1, 13)),
    "auto.age_band": (*(code for _, code in st.AGE_BANDS), "55+"),
    "auto.frequency": (*(code for _, code in wt.FREQUENCY_BANDS), "10+"),
    "auto.recency": (*(code for _, code in wt.RECENCY_BANDS), "366+"),
    **{t.slug: EVENT_BANDS for t in CATALOGUE if t.compute.__name__.startswith("event_count_")},
}


def test_every_automatic_tag_says_how_its_value_is_shown() -> None:
    # given the catalogue, then each tag is coded, valueless, named, free text or labelled
    # elsewhere: exactly one of them
    kinds = [set(VALUE_SETS), set(VALUELESS), set(NAMED), set(FREE_TEXT), set(LABELLED_ELSEWHERE)]
    for tag in CATALOGUE:
        assert sum(tag.slug in kind for kind in kinds) == 1, tag.slug
    assert set().union(*kinds) == set(BY_SLUG)
    # and the coded ones are exactly those whose codes the compute modules write
    assert set(VALUE_SETS) == set(CODES)


@pytest.mark.parametrize("slug", sorted(CODES))
def test_every_coded_value_has_a_label_in_both_languages(slug: str) -> None:
    for code in CODES[slug]:
        zh, en = tag_value(slug, code, "zh"), tag_value(slug, code, "en")
        # then it is shown by a label, not the code, Chinese in Chinese
        assert code not in (zh, en), (slug, code)
        assert CJK.search(zh) and not CJK.search(en), (slug, code, zh, en)
    # and two codes of one tag never read the same
    for lang in ("zh", "en"):
        shown = [tag_value(slug, code, lang) for code in CODES[slug]]
        assert len(set(shown)) == len(shown), (slug, lang, shown)


def test_other_values_read_as_labels_names_or_themselves() -> None:
    assert tag_value("auto.stage", "loyal", "zh") == stage_label("loyal", "zh")
    assert tag_value("auto.rfm", "vip", "en") == STRINGS["segment.vip"][1]
    assert tag_value("auto.multi_brand", "3", "zh") == "3 个品牌"
    assert tag_value("auto.online_offline", None, "zh") == "线上线下都买过"
    # a store, a brand and a tier by their names; an id without one as itself
    names = Names({"s1": "静安店"}, {"b1": "榴莲铺"}, tier_names(None))
    assert tag_value("auto.preferred_store", "s1", "zh", names) == "静安店"
    assert tag_value("auto.preferred_store", "s9", "zh", names) == "s9"
    assert tag_value("auto.preferred_brand", "b1", "en", names) == "榴莲铺"
    basic = tier_names(None)["basic"]
    assert (
        tag_value("auto.tier", "b1:basic,b2:basic", "zh", names) == f"榴莲铺：{basic}，b2：{basic}"
    )
    assert tag_value("auto.tier", "basic", "en", names) == basic
    # free text, a manual tag's value, a group's own affinity band: as they are
    assert tag_value("auto.preferred_city", "上海", "en") == "上海"
    assert tag_value("t-gift", "high", "zh") == "high"
    assert tag_value("auto.affinity", "platinum", "zh") == "platinum"
    assert tag_value("auto.price_band", None, "zh") == "-"


def test_every_tag_has_a_chinese_rule_and_its_definition_holds_both() -> None:
    for tag in CATALOGUE:
        assert tag.rule_zh.strip() and CJK.search(tag.rule_zh), tag.slug
        assert not CJK.search(tag.rule), tag.slug
        defined = tag.definition()
        assert (defined["rule"], defined["rule_zh"]) == (tag.rule, tag.rule_zh)
        assert tag_rule(defined, "zh") == tag.rule_zh
        assert tag_rule(defined, "en") == tag.rule
    # a definition stored before rule_zh existed gives its English rule in Chinese too
    assert tag_rule({"rule": "three orders or more"}, "zh") == "three orders or more"
    assert tag_rule({"source": "crm"}, "zh") is None


# ------------------------------------------------------------------ over HTTP


@pytest.fixture(scope="module")
def tagged(brand: Brand) -> dict[str, int]:
    """Two members holding automatic tags with coded values, a store and a tier."""
    member, other = (
        int(r[0])
        for r in brand.all(
            "SELECT member_id FROM members WHERE group_id = :g AND status = 'active' "
            "ORDER BY member_id LIMIT 2"
        )
    )
    chosen = [BY_SLUG[s] for s in ("auto.discount_sensitivity", "auto.preferred_store")]
    with brand.engine.begin() as conn:
        ids = ensure_tags(conn, brand.group, chosen)
        put = tag_service.apply_membership
        put(conn, brand.group, ids["auto.discount_sensitivity"], np.array([member, other]), "high")
        put(conn, brand.group, ids["auto.preferred_store"], np.array([member]), brand.store_id)
    return {"member": member, "other": other}


class Console:
    """The console over plain HTTP (no browser): a session cookie, pages as HTML."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = CookieJar()
        self.opener = build_opener(HTTPCookieProcessor(self.cookies))

    def get(self, path: str, **query: str) -> str:
        with self.opener.open(f"{self.base}{path}?{urlencode(query)}") as response:
            return str(response.read().decode("utf-8"))

    def login(self, key: str) -> None:
        self.get("/console/login")
        csrf = next(c.value for c in self.cookies if c.name == "siyu_csrf")
        data = urlencode({"csrf": csrf, "key": key}).encode()
        with self.opener.open(f"{self.base}/console/login", data) as response:
            assert response.status == 200


@pytest.fixture
def admin(brand: Brand) -> Console:
    console = Console(brand.base)
    console.login(brand.keys["admin"])
    return console


def cells(html: str, table: str, column: int) -> list[str]:
    """The text of one column of a table's body rows."""
    body = html[html.index(f'id="{table}"') :]
    body = body[: body.index("</table>")]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body[body.index("<tbody>") :], re.S)
    return [
        re.sub(r"<[^>]+>", "", re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)[column]) for r in rows
    ]


def test_a_tag_page_shows_values_by_label_and_the_rule_in_the_pages_language(
    brand: Brand, admin: Console, tagged: dict[str, int]
) -> None:
    tag = BY_SLUG["auto.discount_sensitivity"]
    # when an admin opens the tag's page in Chinese
    html = admin.get(f"/console/tags/{tag.slug}", lang="zh")
    # then each holder's value is its Chinese label, and the rule is the Chinese one
    high = tr("tv.discount.high", "zh")
    assert cells(html, "holdings", 1) == [high, high]
    assert tag.rule_zh in html and tag.rule not in html
    assert high in cells(html, "tag-history", 3)
    # and in English the English label and rule
    html = admin.get(f"/console/tags/{tag.slug}", lang="en")
    assert set(cells(html, "holdings", 1)) == {tr("tv.discount.high", "en")}
    assert tag.rule.replace("'", "&#39;") in html
    # and the preferred store is shown by its name
    store = brand.one(
        "SELECT name FROM stores WHERE group_id = :g AND store_id = :s", s=brand.store_id
    )
    assert store != brand.store_id
    html = admin.get("/console/tags/auto.preferred_store", lang="zh")
    assert cells(html, "holdings", 1) == [store]


def test_member_360_shows_values_by_label_and_why_in_chinese(
    brand: Brand, admin: Console, tagged: dict[str, int]
) -> None:
    html = admin.get(f"/console/members/{tagged['member']}", lang="zh")
    rows = dict(zip(cells(html, "member-tags", 0), cells(html, "member-tags", 1), strict=True))
    store = brand.one(
        "SELECT name FROM stores WHERE group_id = :g AND store_id = :s", s=brand.store_id
    )
    assert rows["优惠敏感度 auto.discount_sensitivity"] == tr("tv.discount.high", "zh")
    assert rows["偏好门店 auto.preferred_store"] == store
    why = cells(html, "member-tags", 3)
    assert any(BY_SLUG["auto.discount_sensitivity"].rule_zh in w for w in why)
    assert not any(BY_SLUG["auto.discount_sensitivity"].rule in w for w in why)
