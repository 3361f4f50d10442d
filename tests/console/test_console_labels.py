"""No page shows a raw code: every code a person sees (statuses, posting kinds, assets,
identity types, tiers, stages, RFM segments, roles, event types, merge modes, tasks,
channels) is written as its label, in Chinese and in English.

The codes are taken from the code tables themselves, so a new code without a label fails
here. A page's text is scanned after taking out every string the console itself writes
(`console.i18n.STRINGS`, the channels' and tiers' labels): what is left is data (names,
ids, numbers, dates), where no code may stand on its own."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, get_args

import pytest
from tests.console.conftest import Brand, login
from tests.console.segment_support import define, manual_tag

from siyu.analytics.kpis import FUNNEL
from siyu.analytics.rfm import RFMConfig
from siyu.analytics.stages import AT_RISK, LAPSED, LOYAL, PROSPECT, StageConfig
from siyu.auth.principal import Role
from siyu.campaigns.models import ARMS
from siyu.campaigns.models import STATUSES as CAMPAIGN_STATUSES
from siyu.channels import registry as channels
from siyu.console.i18n import LANGS, STRINGS, tier_label
from siyu.coupons.templates import CouponTemplate
from siyu.coupons.templates import Kind as CouponKind
from siyu.guides.models import KINDS as TASK_KINDS
from siyu.guides.models import STATES as TASK_STATES
from siyu.guides.tasks import task_stages
from siyu.identity.models import MEMBER_STATUSES, MERGE_MODES, REVIEW_STATUSES
from siyu.identity.types import IDENTITY_TYPES
from siyu.ledger import program
from siyu.ledger.models import ASSETS, POSTING_KINDS, TIER_REASONS
from siyu.lotteries.models import ENTRIES, OUTCOMES
from siyu.orders.models import EVENT_TYPES, ORDER_STATUSES
from siyu.receipts.models import STATUSES as RECEIPT_STATUSES
from siyu.scenes.models import KINDS as SCENE_KINDS
from siyu.segments.automatic.catalogue import CATALOGUE
from siyu.segments.derived import MERGED, MULTICHANNEL, ONLINE_OFFLINE
from siyu.segments.models import REFRESHES, SEGMENT_REFRESHES, TAG_KINDS

# The code tables, by the label kind (console.i18n `label(kind, code)`) each is shown with.
LABELLED: dict[str, Iterable[str]] = {
    "idtype": IDENTITY_TYPES,
    "asset": ASSETS,
    "posting": POSTING_KINDS,
    "status": (*ORDER_STATUSES, *MEMBER_STATUSES),
    "event": EVENT_TYPES,
    "tier": TIER_REASONS,
    "merge": MERGE_MODES,
    "stage": (PROSPECT, LOYAL, AT_RISK, LAPSED),
    "segment": (*(r.name for r in RFMConfig().segments), RFMConfig().fallback),
    "role": tuple(r.value for r in Role),
    "step": FUNNEL,
    "tag": (MULTICHANNEL, ONLINE_OFFLINE, MERGED),
    "review": REVIEW_STATUSES,
    "refresh": (*SEGMENT_REFRESHES, *REFRESHES),
    "tagkind": TAG_KINDS,
    "couponkind": get_args(CouponKind),
    "stacking": get_args(CouponTemplate.model_fields["stacking"].annotation),
    "campstatus": CAMPAIGN_STATUSES,
    "arm": ARMS,
    "scenekind": SCENE_KINDS,
    "poolentry": ENTRIES,
    "pooloutcome": OUTCOMES,
    "receiptstatus": RECEIPT_STATUSES,
}
WORD = r"[A-Za-z0-9_]"
TOKEN = re.compile(rf"{WORD}+")
LONE_STAR = re.compile(r"(?<!\S)\*(?!\S)")  # a tier's scope key "*" (the whole group)


def task_codes() -> set[str]:
    """The guide tasks (`guides.models`): their kinds and states."""
    return set(TASK_KINDS) | set(TASK_STATES)


def known_codes(tier_codes: Iterable[str] = ()) -> set[str]:
    codes = {code for table in LABELLED.values() for code in table}
    codes |= {f"new_{k}" for k in range(1, 51)}  # the stages before the knee
    codes |= {c.code for c in channels.all()}
    codes |= task_codes()
    return codes | set(tier_codes)


def _fragments(texts: Iterable[str], codes: set[str]) -> re.Pattern[str]:
    """One pattern for every literal piece of the console's own strings (between their
    `{placeholders}`), whole words only, longest first. A piece that is itself a code is
    not taken out: a label must not be spelled like its code."""
    pieces = set()
    for text in texts:
        for piece in re.split(r"\{[^{}]*\}", text):
            piece = piece.strip()
            if len(piece) >= 2 and re.search(r"[^\W\d_]", piece) and piece not in codes:
                pieces.add(piece)
    alternatives = []
    for piece in sorted(pieces, key=len, reverse=True):
        before = rf"(?<!{WORD})" if re.match(WORD, piece) else ""
        after = rf"(?!{WORD})" if re.search(rf"{WORD}$", piece) else ""
        alternatives.append(before + re.escape(piece) + after)
    return re.compile("|".join(alternatives))


class Scanner:
    """Finds the codes left in a page's text once the console's own words are out."""

    def __init__(self, lang: str, codes: set[str], labels: Iterable[str] = ()) -> None:
        own = [zh if lang == "zh" else en for zh, en in STRINGS.values()]
        own += [getattr(c.label, lang) for c in channels.all() if c.label is not None]
        self.codes = codes
        self.words = _fragments([*own, *labels], codes)

    def untranslated(self, text: str) -> set[str]:
        rest = self.words.sub("\n", text)
        found = {token for token in TOKEN.findall(rest) if token in self.codes}
        if LONE_STAR.search(rest):
            found.add("*")
        return found


def chart_strings(option: Any) -> Iterator[str]:
    """What a chart writes: category and legend data, series and item names, labels."""
    if isinstance(option, dict):
        for key, value in option.items():
            if key in ("name", "formatter") and isinstance(value, str):
                yield value
            elif key == "data" and isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))
                yield from chart_strings([v for v in value if not isinstance(v, str)])
            else:
                yield from chart_strings(value)
    elif isinstance(option, list):
        for value in option:
            yield from chart_strings(value)


def page_strings(page: Any) -> dict[str, str]:
    """The visible text of the page, its choices, and each chart's words."""
    found = {"text": page.inner_text("body")}
    found["options"] = "\n".join(
        page.eval_on_selector_all("option", "els => els.map(e => e.textContent)")
    )
    blocks = page.eval_on_selector_all(
        'script[type="application/json"]', "els => els.map(e => [e.id, e.textContent])"
    )
    for chart_id, block in blocks:
        found[f"chart {chart_id}"] = "\n".join(chart_strings(json.loads(block)))
    return found


# ------------------------------------------------------------------ without a browser


def test_every_code_in_the_code_tables_has_a_label_in_both_languages() -> None:
    # given every code the code tables define, by the kind of label it is shown with
    missing = [
        f"{kind}.{code}"
        for kind, table in LABELLED.items()
        for code in table
        if f"{kind}.{code}" not in STRINGS
    ]
    # then each has a label, in both languages, and no label is spelled like its code
    assert not missing, f"codes without a label in console/i18n.py: {missing}"
    for kind, table in LABELLED.items():
        for code in table:
            for text in STRINGS[f"{kind}.{code}"]:
                assert text.strip() and text != code, (kind, code, text)
    # and every guide task has its label
    assert all(f"task.{kind}" in STRINGS for kind in TASK_KINDS)
    assert all(f"task.state.{state}" in STRINGS for state in TASK_STATES)
    assert set(task_stages(StageConfig().max_k).values()) <= set(TASK_KINDS)


def test_a_tier_is_shown_by_the_name_the_brand_gave_it() -> None:
    # given a brand whose tier rules name its tiers
    rules = program.TierRules(
        tiers=[
            program.Tier(code="t0", name="绿叶会员"),
            program.Tier(code="t1", name="金叶会员", min_orders=3),
        ]
    )
    names = program.tier_names(rules.model_dump_json())
    # then its tiers are shown by those names, a retired code by itself
    assert [tier_label(code, names) for code in ("t0", "t1", "t9")] == [
        "绿叶会员",
        "金叶会员",
        "t9",
    ]
    # and a group on the default rules gets the default names
    assert program.tier_names(None)["basic"] == program.TierRules().tiers[0].name


@pytest.mark.parametrize(
    ("lang", "text", "found"),
    [
        ("zh", "账户：top_up ¥100.00 储值本金", {"top_up"}),
        ("zh", "账户：储值充值 ¥100.00 储值本金", set()),
        ("zh", "普卡 Basic *  · 全集团", {"*"}),
        ("zh", "138****1234 · 已支付 · new_1", {"new_1"}),
        ("en", "paid, every channel, cancelled orders excluded", set()),
        ("en", "Event: view (Store till)", {"view"}),
        ("en", "Ledger: Top-up ¥100.00 Stored value", set()),
        ("en", "Status: active", {"active"}),
    ],
)
def test_the_scanner_finds_codes_and_leaves_labels(lang: str, text: str, found: set[str]) -> None:
    assert Scanner(lang, known_codes()).untranslated(text) == found


# ------------------------------------------------------------------ in the browser


def rich_members(brand: Brand) -> list[int]:
    """Members whose pages show the most kinds of code: merges, stored value, a tier above
    the first, identities of many types, a refund, events."""
    picks = [
        # a survivor of a OneID merge with the most identity types
        "SELECT g.survivor_id FROM merges g JOIN identities i ON i.member_id = g.survivor_id "
        "WHERE g.group_id = :g GROUP BY g.survivor_id "
        "ORDER BY COUNT(DISTINCT i.type) DESC, g.survivor_id LIMIT 1",
        # a member who topped up and paid with stored value
        "SELECT member_id FROM ledger_postings WHERE group_id = :g AND kind IN ('top_up', "
        "'pay') GROUP BY member_id ORDER BY COUNT(DISTINCT kind) DESC, member_id LIMIT 1",
        # the member with the highest tier
        "SELECT t.member_id FROM member_tiers t JOIN tier_changes c ON c.member_id = "
        "t.member_id WHERE t.group_id = :g AND t.tier_code <> 'basic' "
        "ORDER BY t.tier_code, t.member_id LIMIT 1",
        # a member with a refunded order and a points clawback
        "SELECT o.member_id FROM orders o JOIN ledger_postings p ON p.member_id = o.member_id "
        "AND p.kind = 'clawback' WHERE o.group_id = :g AND o.status = 'refunded' "
        "ORDER BY o.member_id LIMIT 1",
        # a member with the most kinds of behaviour event
        "SELECT member_id FROM events WHERE group_id = :g AND member_id IS NOT NULL "
        "GROUP BY member_id ORDER BY COUNT(DISTINCT type) DESC, member_id LIMIT 1",
    ]
    found = [brand.one(sql) for sql in picks]
    assert all(m is not None for m in found), found
    return list(dict.fromkeys(int(m) for m in found))


def scan(page: Any, base: str, paths: Iterable[str], scanner: Scanner) -> dict[str, Any]:
    """Open each path; what each shows that is a code."""
    bad: dict[str, Any] = {}
    for path in paths:
        response = page.goto(f"{base}{path}")
        assert response is not None and response.status == 200, (path, response)
        for where, text in page_strings(page).items():
            codes = scanner.untranslated(text)
            if codes:
                bad[f"{path} {where}"] = sorted(codes)
    return bad


def first_member(page: Any, base: str, path: str) -> str:
    page.goto(f"{base}{path}")
    return f"/console/members/{page.locator('tr[data-member]').first.get_attribute('data-member')}"


@pytest.mark.parametrize("lang", LANGS)
def test_no_page_shows_a_code_without_its_label(brand: Brand, page: Any, lang: str) -> None:
    # given the codes of every code table, the brand's tier codes and their names
    tiers = program.tier_rules(brand.engine, brand.group).tiers
    # and the automatic tags' own words: slugs (shown as ids), names and rules in words
    auto = [
        (a.slug, a.name_zh, a.rule_zh) if lang == "zh" else (a.slug, a.name_en, a.rule)
        for a in CATALOGUE
    ]
    words = [t.name for t in tiers] + [w for tag in auto for w in tag]
    scanner = Scanner(lang, known_codes(t.code for t in tiers), words)
    members = rich_members(brand)
    stages = [r[0] for r in brand.all("SELECT DISTINCT stage FROM member_stages")]
    bad: dict[str, Any] = {}
    # when an admin opens every page of the navigation, a guide's and a store's members,
    # lists filtered by each kind of code, and the Member 360 of members with rich history
    # and a segment whose rule names codes (a stage, event types, a channel), a tag on
    # one of those members
    stage = stages[0]
    rule = {
        "all": [
            {"attribute": "stage", "op": "in", "value": stages},
            {"event": {"type": "view", "within_days": 365}},
            {"orders": {"channel": ["pos", "tmall"], "count": {"gte": 1}}},
            {
                "not": {
                    "event_then_not": {
                        "event": {"type": "add_to_cart"},
                        "not_followed_by": {"type": "pay"},
                        "within_hours": 24,
                        "since_days": 30,
                    }
                }
            },
        ]
    }
    define(brand, "t-labels", {"version": 1, "rule": rule})
    define(
        brand, "t-stage", {"version": 1, "rule": {"attribute": "stage", "op": "eq", "value": stage}}
    )
    manual_tag(brand, "t-labels", members)
    login(page, brand.base, brand.keys["admin"], lang)
    nav = [a.get_attribute("href") for a in page.locator("nav.side a").all()]
    admin_paths = [
        *nav,
        "/console/segments/t-labels",
        "/console/segments/t-stage",
        "/console/builder?slug=t-labels",
        "/console/builder?slug=t-stage",
        "/console/tags/t-labels",
        f"/console/guides/{brand.guide_id}",
        f"/console/stores/{brand.store_id}",
        *(f"/console/members?stage={s}" for s in stages),
        "/console/members?rfm=win_back&funnel=tmall&step=add_to_cart&channel=pos",
        *(f"/console/members/{m}" for m in members),
    ]
    bad.update(scan(page, brand.base, admin_paths, scanner))
    # and a store key and a guide key open theirs, with one of their members
    for role in ("store", "guide"):
        page.context.clear_cookies()
        login(page, brand.base, brand.keys[role], lang)
        nav = [a.get_attribute("href") for a in page.locator("nav.side a").all()]
        listed = "/console/my-members" if role == "guide" else f"/console/stores/{brand.store_id}"
        paths = [*nav, first_member(page, brand.base, listed)]
        bad.update({f"{role} {k}": v for k, v in scan(page, brand.base, paths, scanner).items()})
    # then no page, choice or chart shows a code where its label belongs
    assert not bad, json.dumps(bad, ensure_ascii=False, indent=1)
