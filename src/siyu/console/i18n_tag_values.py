"""The words for automatic tags' coded values, in Chinese and English (`i18n.STRINGS` takes
them in as `tv.<set>.<code>`; `console.tag_values` says which tag reads which set).

A value set is shared where tags share their codes (every event tag bands its count the
same way); the codes are the ones `segments.automatic` writes."""

from __future__ import annotations

_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

_VALUES: dict[str, dict[str, tuple[str, str]]] = {
    "discount": {
        "none": ("从不用优惠", "Never uses a discount"),
        "low": ("低（少于 1/3 的订单用优惠）", "Low (under 1/3 of orders discounted)"),
        "mid": ("中（少于 2/3 的订单用优惠）", "Medium (under 2/3 of orders discounted)"),
        "high": ("高（至少 2/3 的订单用优惠）", "High (2/3 of orders or more discounted)"),
    },
    "price": {
        "low": ("低价位", "Low price"),
        "mid": ("中价位", "Mid price"),
        "high": ("高价位", "High price"),
    },
    "clv": {
        "high": ("高价值（前 20%）", "High value (top 20%)"),
        "mid": ("中价值（其后 30%）", "Medium value (next 30%)"),
        "low": ("低价值", "Low value"),
    },
    "affinity": {  # the default bands; a group's own band names are shown as they are
        "high": ("高亲密度", "High affinity"),
        "medium": ("中亲密度", "Medium affinity"),
        "low": ("低亲密度", "Low affinity"),
    },
    "customer": {
        "new": ("新客", "New customer"),
        "existing": ("老客", "Existing customer"),
    },
    "same_city": {
        "home_city": ("只在本地门店购买", "Buys only in their home city"),
        "elsewhere": ("也在外地门店购买", "Also buys in other cities"),
    },
    "online_offline": {
        "both": ("线上线下都买过", "Buys online and in store"),
    },
    "contact": {
        "wecom": ("企业微信", "WeCom"),
        "official_account": ("公众号消息", "Official account message"),
        "miniprogram": ("小程序订阅消息", "Mini-program message"),
        "sms": ("短信", "Text message (SMS)"),
    },
    "gender": {
        "f": ("女", "Female"),
        "m": ("男", "Male"),
    },
    "month": {f"{m:02d}": (f"{m} 月", _MONTHS_EN[m - 1]) for m in range(1, 13)},
    "age": {
        "<18": ("18 岁以下", "Under 18"),
        "18-24": ("18–24 岁", "18 to 24"),
        "25-34": ("25–34 岁", "25 to 34"),
        "35-44": ("35–44 岁", "35 to 44"),
        "45-54": ("45–54 岁", "45 to 54"),
        "55+": ("55 岁及以上", "55 and over"),
    },
    "frequency": {
        "1": ("1 单", "1 order"),
        "2-3": ("2–3 单", "2 to 3 orders"),
        "4-9": ("4–9 单", "4 to 9 orders"),
        "10+": ("10 单及以上", "10 orders or more"),
    },
    "recency": {
        "0-30": ("30 天内", "Within 30 days"),
        "31-90": ("31–90 天前", "31 to 90 days ago"),
        "91-180": ("91–180 天前", "91 to 180 days ago"),
        "181-365": ("181–365 天前", "181 to 365 days ago"),
        "366+": ("一年多以前", "Over a year ago"),
    },
    "events": {
        "1-2": ("1–2 次", "1 to 2 times"),
        "3-9": ("3–9 次", "3 to 9 times"),
        "10+": ("10 次及以上", "10 times or more"),
    },
}

TAG_VALUE_STRINGS: dict[str, tuple[str, str]] = {
    f"tv.{kind}.{code}": words for kind, codes in _VALUES.items() for code, words in codes.items()
}
TAG_VALUE_STRINGS.update(
    {
        # a count of brands (auto.multi_brand), a tier in a brand (auto.tier, per brand)
        "tv.brands": ("{n} 个品牌", "{n} brands"),
        "tv.tier_in": ("{brand}：{tier}", "{brand}: {tier}"),
        "tv.joined": ("，", ", "),
    }
)
