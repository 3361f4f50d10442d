"""The catalogue of automatic tags: each with its slug, zh and en names, where it is
computed (the warehouse, with one Ibis expression; or the store, from results already
written back and from what only the store holds), its rule in words and its window.

The rule, in English and in Chinese, is stored in the tag's definition (`tags.definition`,
"rule" and "rule_zh"), so the console and the API show what a tag means without reading
code; docs/segments.md lists the same English rules.
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
    rule: str  # in plain words, for a membership manager: exact on thresholds and windows
    rule_zh: str  # the same rule in Chinese
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
            "rule_zh": self.rule_zh,
            "window_days": self.window_days,
        }


P = wt.PREFERENCE_DAYS
# a tie goes to the more recent habit, then to a fixed order so every engine agrees
_TIES = "a tie goes to the one bought from last, then to the smaller code"
_TIES_ZH = "并列时取最近一次购买的，再取编码较小的"


def _events(what: str, what_zh: str) -> tuple[str, str]:
    """An event tag's rule, in English and in Chinese: how many in the window, banded."""
    return f"{what} in the window: 1-2, 3-9, 10+", f"窗口内的{what_zh}：1–2 次、3–9 次、10 次及以上"


CATALOGUE: tuple[AutoTag, ...] = (
    # --- computed in the warehouse ----------------------------------------------------------
    AutoTag(
        "auto.preferred_channel",
        "偏好渠道",
        "Preferred channel",
        "warehouse",
        f"the channel of the most orders in the window; {_TIES}",
        f"窗口内下单最多的渠道；{_TIES_ZH}",
        P,
        wt.preferred_channel,
    ),
    AutoTag(
        "auto.preferred_store",
        "偏好门店",
        "Preferred store",
        "warehouse",
        f"the store of the most orders in the window, of the orders placed at a store; {_TIES}",
        f"窗口内在门店下的订单中，下单最多的门店；{_TIES_ZH}",
        P,
        wt.preferred_store,
    ),
    AutoTag(
        "auto.preferred_city",
        "偏好城市",
        "Preferred city",
        "warehouse",
        "the city of the stores of the most orders in the window, of the orders placed at a "
        f"store; {_TIES}",
        f"窗口内在门店下的订单中，下单最多的门店所在城市；{_TIES_ZH}",
        P,
        wt.preferred_city,
    ),
    AutoTag(
        "auto.preferred_brand",
        "偏好品牌",
        "Preferred brand",
        "warehouse",
        f"the brand the member paid the most for in the window; {_TIES}",
        f"窗口内实付金额最多的品牌；{_TIES_ZH}",
        P,
        wt.preferred_brand,
    ),
    AutoTag(
        "auto.preferred_category",
        "偏好品类",
        "Preferred category",
        "warehouse",
        "the product category the member spent the most on in the window (products in the "
        f"catalogue only); {_TIES}",
        f"窗口内购买金额最多的商品品类（只计商品目录中的商品）；{_TIES_ZH}",
        P,
        wt.preferred_category,
    ),
    AutoTag(
        "auto.discount_sensitivity",
        "优惠敏感度",
        "Discount sensitivity",
        "warehouse",
        "the share of the orders in the window bought with a discount or coupon: none (no such "
        "order), low (under 1/3), mid (under 2/3), high (2/3 or more)",
        "窗口内使用折扣或优惠券的订单占比：从不（0 单）、低（不到 1/3）、"
        "中（不到 2/3）、高（2/3 及以上）",
        P,
        wt.discount_sensitivity,
    ),
    AutoTag(
        "auto.price_band",
        "价格带",
        "Price band",
        "warehouse",
        "the average price per item bought in the window (amount / quantity), ranked among the "
        "group's buyers of the window: low if fewer than 1/3 of them pay less on average, mid if "
        "fewer than 2/3, else high; equal prices share a band",
        "窗口内平均每件商品的价格（金额 ÷ 件数）在集团同期所有购买会员中的排位："
        "均价比其低的会员不到 1/3 为低价位，不到 2/3 为中价位，其余为高价位；均价相同者同档",
        P,
        wt.price_band,
    ),
    AutoTag(
        "auto.multi_brand",
        "多品牌",
        "Multi-brand",
        "warehouse",
        "bought from two or more of the group's brands; the value is how many",
        "在集团两个及以上品牌下过单；取值为品牌数",
        None,
        wt.multi_brand,
    ),
    AutoTag(
        "auto.online_offline",
        "线上线下",
        "Online and offline",
        "warehouse",
        "bought both on an online channel and in a store (at a till)",
        "既在线上渠道下过单，也在门店（收银台）买过",
        None,
        wt.online_offline,
    ),
    AutoTag(
        "auto.customer",
        "新老客",
        "New or existing customer",
        "warehouse",
        f"new if the first order was within the last {wt.NEW_DAYS} days, else existing",
        f"首单在最近 {wt.NEW_DAYS} 天内为新客，否则为老客",
        None,
        wt.customer_age,
    ),
    AutoTag(
        "auto.frequency",
        "购买频次",
        "Purchase frequency",
        "warehouse",
        "the number of orders in the window: 1, 2-3, 4-9, 10+",
        "窗口内的订单数：1 单、2–3 单、4–9 单、10 单及以上",
        P,
        wt.frequency,
    ),
    AutoTag(
        "auto.recency",
        "最近购买",
        "Purchase recency",
        "warehouse",
        "whole days since the last order: 0-30, 31-90, 91-180, 181-365, 366+",
        "距最近一单的整天数：0–30、31–90、91–180、181–365、366 天及以上",
        None,
        wt.recency,
    ),
    AutoTag(
        "auto.same_city",
        "同城购买",
        "Same-city buyer",
        "warehouse",
        "home_city if every store order in the window was in the member's city (the city of "
        "their first store order), elsewhere if one was not",
        "窗口内每笔门店订单都在会员所在城市（其首笔门店订单所在城市）为只在本地购买，有一笔不在则为也在外地购买",
        P,
        wt.same_city,
    ),
    AutoTag(
        "auto.sign_in",
        "签到",
        "Sign-ins",
        "warehouse",
        *_events("sign-ins", "签到次数"),
        30,
        wt.event_count("sign_in", 30),
    ),
    AutoTag(
        "auto.share",
        "分享",
        "Shares",
        "warehouse",
        *_events("shares", "分享次数"),
        90,
        wt.event_count("share", 90),
    ),
    AutoTag(
        "auto.browse",
        "浏览",
        "Product views",
        "warehouse",
        *_events("product views", "商品浏览次数"),
        30,
        wt.event_count("view", 30),
    ),
    AutoTag(
        "auto.read",
        "阅读",
        "Content reads",
        "warehouse",
        *_events("content reads (articles, posts)", "内容阅读次数（文章、帖子）"),
        30,
        wt.event_count("read", 30),
    ),
    AutoTag(
        "auto.like",
        "点赞",
        "Likes",
        "warehouse",
        *_events("likes", "点赞次数"),
        90,
        wt.event_count("like", 90),
    ),
    AutoTag(
        "auto.survey",
        "问卷",
        "Survey answers",
        "warehouse",
        *_events("questionnaires answered", "问卷填写次数"),
        365,
        wt.event_count("survey", 365),
    ),
    # --- copied or computed in the store ----------------------------------------------------
    AutoTag(
        "auto.stage",
        "生命周期阶段",
        "Lifecycle stage",
        "store",
        "the lifecycle stage the last stage analysis or snapshot gave the member",
        "最近一次生命周期分析或快照给出的生命周期阶段",
        None,
        st.stage,
    ),
    AutoTag(
        "auto.rfm",
        "RFM 分层",
        "RFM segment",
        "store",
        "the RFM segment the last snapshot gave the member",
        "最近一次快照给出的 RFM 分层",
        None,
        st.rfm_segment,
    ),
    AutoTag(
        "auto.tier",
        "会员等级",
        "Tier",
        "store",
        "the member's tier now; where each brand has its own tiers, the tier in each brand",
        "会员当前的等级；各品牌分设等级时，为会员在每个品牌的等级",
        None,
        st.tier,
    ),
    AutoTag(
        "auto.clv_band",
        "价值分层",
        "CLV band",
        "store",
        "the member's expected spend over the next 12 months (CLV, from the last snapshot), "
        "ranked in the group: high (top 20 %), mid (next 30 %), low (the rest); equal values "
        "share a band",
        "预计未来 12 个月消费（CLV，取自最近一次快照）在集团内的排名："
        "前 20% 为高价值，其后 30% 为中价值，其余为低价值；数值相同者同档",
        None,
        st.clv_band,
    ),
    AutoTag(
        "auto.affinity",
        "亲密度",
        "Affinity",
        "store",
        "the band of the affinity score (the orders, spend and events in the window the group's "
        "affinity rules set, weighed by those rules, older ones counting less): the first band "
        "whose minimum score it reaches (by default high ≥ 100, medium ≥ 30, low ≥ 1); below "
        "the lowest band, no tag; segment rules may use the score itself (attribute affinity)",
        "亲密度分数（集团亲密度规则所定窗口内的订单、消费和互动事件，按规则加权，"
        "越早的计得越少）达到的第一个档位（默认：高 ≥ 100，中 ≥ 30，低 ≥ 1）；"
        "低于最低档不打标签；分群规则可直接使用分数（属性 affinity）",
        None,
        st.affinity,
        prepare=write_scores,
    ),
    AutoTag(
        "auto.contact_method",
        "首选触达方式",
        "Preferred contact method",
        "store",
        "the best way to reach the member: WeCom (a guide's contact), else an official-account "
        "message (a follower), else a mini-program message, else a text message (a phone)",
        "触达会员的最佳方式：优先企业微信（导购好友），其次公众号消息（已关注），再次小程序订阅消息，最后短信（有手机号）",
        None,
        st.contact_method,
    ),
    AutoTag(
        "auto.gender",
        "性别",
        "Gender",
        "store",
        "the gender the member gave, female or male; a member who did not say gets no tag",
        "会员填写的性别（女或男）；未填写的不打标签",
        None,
        st.gender,
    ),
    AutoTag(
        "auto.birth_month",
        "生日月份",
        "Birthday month",
        "store",
        "the month of the member's birthday, 01 to 12 (never the day or year)",
        "会员生日所在的月份，1 至 12 月（不含日期和年份）",
        None,
        st.birth_month,
    ),
    AutoTag(
        "auto.age_band",
        "年龄段",
        "Age band",
        "store",
        "the member's age in whole years on the day the tags are computed: under 18, 18-24, "
        "25-34, 35-44, 45-54, 55+",
        "计算当天的周岁年龄：18 岁以下、18–24 岁、25–34 岁、35–44 岁、45–54 岁、55 岁及以上",
        None,
        st.age_band,
    ),
)

BY_SLUG: dict[str, AutoTag] = {t.slug: t for t in CATALOGUE}
