"""The catalogue of automatic tags: each with its slug, zh and en names, where it is
computed (the warehouse, with one Ibis expression; or the store, from results already
written back and from what only the store holds), its rule in words and its window.

The rule text is stored as the tag's definition (`tags.definition`), so the console and
the API show what a tag means without reading code; docs/segments.md lists the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine

from siyu.segments.affinity.writeback import write_scores
from siyu.segments.automatic import store_tags as st
from siyu.segments.automatic import warehouse_tags as wt

Side = Literal["warehouse", "store"]
# Writes, in its own transaction, the per-member numbers a tag is then computed from.
Prepare = Callable[[Engine, str, datetime], object]


@dataclass(frozen=True)
class AutoTag:
    slug: str
    name_zh: str
    name_en: str
    side: Side
    rule: str
    window_days: int | None  # None: all the data up to the as-of time (or not a window)
    compute: Any  # wt.Compute for the warehouse side, st.Compute for the store side
    # Run by every refresh that chooses the tag, before it is computed, archived or not:
    # segment rules read what it writes (auto.affinity: the scores, `member_affinity`).
    prepare: Prepare | None = None

    def definition(self) -> dict[str, Any]:
        """What `tags.definition` holds for the tag: how and where it is computed."""
        return {
            "computed_in": self.side,
            "function": f"{self.compute.__module__}.{self.compute.__name__}",
            "rule": self.rule,
            "window_days": self.window_days,
        }


P = wt.PREFERENCE_DAYS
_TIES = "ties: the more recent last order, then the smaller code"

CATALOGUE: tuple[AutoTag, ...] = (
    # --- computed in the warehouse ----------------------------------------------------------
    AutoTag(
        "auto.preferred_channel",
        "偏好渠道",
        "Preferred channel",
        "warehouse",
        f"the channel of most non-cancelled orders; {_TIES}",
        P,
        wt.preferred_channel,
    ),
    AutoTag(
        "auto.preferred_store",
        "偏好门店",
        "Preferred store",
        "warehouse",
        f"the store of most non-cancelled orders with a store; {_TIES}",
        P,
        wt.preferred_store,
    ),
    AutoTag(
        "auto.preferred_city",
        "偏好城市",
        "Preferred city",
        "warehouse",
        f"the city (of the store) of most non-cancelled orders with a store; {_TIES}",
        P,
        wt.preferred_city,
    ),
    AutoTag(
        "auto.preferred_brand",
        "偏好品牌",
        "Preferred brand",
        "warehouse",
        f"the brand of the largest paid amount; {_TIES}",
        P,
        wt.preferred_brand,
    ),
    AutoTag(
        "auto.preferred_category",
        "偏好品类",
        "Preferred category",
        "warehouse",
        "the product category of the largest line amount (lines of non-cancelled orders "
        f"whose sku is in the catalogue); {_TIES}",
        P,
        wt.preferred_category,
    ),
    AutoTag(
        "auto.discount_sensitivity",
        "优惠敏感度",
        "Discount sensitivity",
        "warehouse",
        "share of non-cancelled orders with a discount or coupon (discount_fen > 0): none "
        "(0), low (< 1/3), mid (< 2/3), high",
        P,
        wt.discount_sensitivity,
    ),
    AutoTag(
        "auto.price_band",
        "价格带",
        "Price band",
        "warehouse",
        "average item price (line amount / quantity, lines with quantity > 0) ranked among "
        "the group's buyers in the window: low (rank < 1/3 of them), mid (< 2/3), high; "
        "equal prices share a band",
        P,
        wt.price_band,
    ),
    AutoTag(
        "auto.multi_brand",
        "多品牌",
        "Multi-brand",
        "warehouse",
        "non-cancelled orders of two or more brands; the value is how many",
        None,
        wt.multi_brand,
    ),
    AutoTag(
        "auto.online_offline",
        "线上线下",
        "Online and offline",
        "warehouse",
        "non-cancelled orders both on an online channel and offline (at a till)",
        None,
        wt.online_offline,
    ),
    AutoTag(
        "auto.customer",
        "新老客",
        "New or existing customer",
        "warehouse",
        f"new: the first non-cancelled order within {wt.NEW_DAYS} days; else existing",
        None,
        wt.customer_age,
    ),
    AutoTag(
        "auto.frequency",
        "购买频次",
        "Purchase frequency",
        "warehouse",
        "non-cancelled orders in the window: 1, 2-3, 4-9, 10+",
        P,
        wt.frequency,
    ),
    AutoTag(
        "auto.recency",
        "最近购买",
        "Purchase recency",
        "warehouse",
        "whole days since the last non-cancelled order: 0-30, 31-90, 91-180, 181-365, 366+",
        None,
        wt.recency,
    ),
    AutoTag(
        "auto.same_city",
        "同城购买",
        "Same-city buyer",
        "warehouse",
        "home_city when every store order was in the member's city (the city of their first "
        "store order), elsewhere when one was not",
        P,
        wt.same_city,
    ),
    AutoTag(
        "auto.sign_in",
        "签到",
        "Sign-ins",
        "warehouse",
        "sign_in events in the window: 1-2, 3-9, 10+",
        30,
        wt.event_count("sign_in", 30),
    ),
    AutoTag(
        "auto.share",
        "分享",
        "Shares",
        "warehouse",
        "share events in the window: 1-2, 3-9, 10+",
        90,
        wt.event_count("share", 90),
    ),
    AutoTag(
        "auto.browse",
        "浏览",
        "Product views",
        "warehouse",
        "view events in the window: 1-2, 3-9, 10+",
        30,
        wt.event_count("view", 30),
    ),
    AutoTag(
        "auto.read",
        "阅读",
        "Content reads",
        "warehouse",
        "read events (articles, posts) in the window: 1-2, 3-9, 10+",
        30,
        wt.event_count("read", 30),
    ),
    AutoTag(
        "auto.like",
        "点赞",
        "Likes",
        "warehouse",
        "like events in the window: 1-2, 3-9, 10+",
        90,
        wt.event_count("like", 90),
    ),
    AutoTag(
        "auto.survey",
        "问卷",
        "Survey answers",
        "warehouse",
        "survey events (a questionnaire answered) in the window: 1-2, 3-9, 10+",
        365,
        wt.event_count("survey", 365),
    ),
    # --- copied or computed in the store ----------------------------------------------------
    AutoTag(
        "auto.stage",
        "生命周期阶段",
        "Lifecycle stage",
        "store",
        "the stage member_stages holds (the last `siyu analyze stages` or snapshot)",
        None,
        st.stage,
    ),
    AutoTag(
        "auto.rfm",
        "RFM 分层",
        "RFM segment",
        "store",
        "the RFM segment member_rfm holds (the last snapshot)",
        None,
        st.rfm_segment,
    ),
    AutoTag(
        "auto.tier",
        "会员等级",
        "Tier",
        "store",
        "the tier member_tiers holds; per-brand tiers as brand:code joined by ','",
        None,
        st.tier,
    ),
    AutoTag(
        "auto.clv_band",
        "价值分层",
        "CLV band",
        "store",
        "rank of member_clv's 12-month CLV in the group: high (top 20 %), mid (next 30 %), low",
        None,
        st.clv_band,
    ),
    AutoTag(
        "auto.affinity",
        "亲密度",
        "Affinity",
        "store",
        "the band of the affinity score (Σ coefficient × decayed count of orders, spend and "
        "events in the window, by the group's affinity rules): the first band whose "
        "min_score it reaches (default high ≥ 100, medium ≥ 30, low ≥ 1); the scores are "
        "kept in member_affinity for rules on the attribute affinity",
        None,
        st.affinity,
        prepare=write_scores,
    ),
    AutoTag(
        "auto.contact_method",
        "首选触达方式",
        "Preferred contact method",
        "store",
        "the best reachable identifier: WeCom contact, then official-account openid, "
        "then mini-program openid, then phone (SMS)",
        None,
        st.contact_method,
    ),
    AutoTag(
        "auto.gender",
        "性别",
        "Gender",
        "store",
        "the gender the member gave (f or m; unknown gets no tag)",
        None,
        st.gender,
    ),
    AutoTag(
        "auto.birth_month",
        "生日月份",
        "Birthday month",
        "store",
        "the month of the birth date, 01 to 12 (never the day or year)",
        None,
        st.birth_month,
    ),
    AutoTag(
        "auto.age_band",
        "年龄段",
        "Age band",
        "store",
        "whole years at the as-of date: <18, 18-24, 25-34, 35-44, 45-54, 55+",
        None,
        st.age_band,
    ),
)

BY_SLUG: dict[str, AutoTag] = {t.slug: t for t in CATALOGUE}
