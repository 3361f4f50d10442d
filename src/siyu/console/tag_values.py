"""A tag's value as a membership manager reads it, wherever the console shows one (a tag's
page, Member 360, a segment rule in words).

Automatic tags write codes (`segments.automatic`): each coded tag reads one value set of
`i18n_tag_values`; a stage, an RFM segment and a channel have their labels already. A
store, a brand or a tier is an id, shown by the name the store table, the brand table or
the brand's tier rules give it (`value_names`, one read per kind for a page of rows). A
city or a category is free text and is shown as it is, as is any value without a label (a
manual tag's, a group's own affinity band).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection

from siyu.console.i18n import STRINGS, channel_label, label, stage_label, tier_label, tr
from siyu.ledger.program import tier_names
from siyu.ledger.queries import TIER_PROGRAM
from siyu.segments.automatic import store_tags as st
from siyu.segments.automatic import warehouse_tags as wt
from siyu.store.reads import Sql

EVENT_TAGS = ("auto.sign_in", "auto.share", "auto.browse", "auto.read", "auto.like", "auto.survey")


def _bands(bands: Iterable[tuple[int, str]], last: str) -> tuple[str, ...]:
    return (*(code for _, code in bands), last)


# slug -> (the value set in i18n_tag_values, the codes the tag writes). The literals are
# those of warehouse_tags' expressions; the bands are its and store_tags' own tables.
VALUE_SETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "auto.discount_sensitivity": ("discount", ("none", "low", "mid", "high")),
    "auto.price_band": ("price", ("low", "mid", "high")),
    "auto.clv_band": ("clv", _bands(st.CLV_BANDS, "low")),
    "auto.affinity": ("affinity", ("high", "medium", "low")),
    "auto.customer": ("customer", ("new", "existing")),
    "auto.same_city": ("same_city", ("home_city", "elsewhere")),
    "auto.contact_method": ("contact", st.CONTACT_METHODS),
    "auto.gender": ("gender", st.GENDERS),
    "auto.birth_month": ("month", tuple(f"{m:02d}" for m in range(1, 13))),
    "auto.age_band": ("age", _bands(st.AGE_BANDS, "55+")),
    "auto.frequency": ("frequency", _bands(wt.FREQUENCY_BANDS, "10+")),
    "auto.recency": ("recency", _bands(wt.RECENCY_BANDS, "366+")),
    **{slug: ("events", _bands(wt.EVENT_BANDS, "10+")) for slug in EVENT_TAGS},
}
# tags that hold no value: being tagged is the fact (shown by the set's one label)
VALUELESS = {"auto.online_offline": "tv.online_offline.both"}
# tags whose value is an id with a name elsewhere, or free text shown as it is
NAMED = ("auto.preferred_store", "auto.preferred_brand", "auto.tier")
FREE_TEXT = ("auto.preferred_city", "auto.preferred_category")
LABELLED_ELSEWHERE = ("auto.stage", "auto.rfm", "auto.preferred_channel", "auto.multi_brand")

STORE_NAMES = Sql("SELECT store_id, name FROM stores WHERE group_id = :g AND store_id IN :ids")
BRAND_NAMES = Sql("SELECT brand_id, name FROM brands WHERE group_id = :g AND brand_id IN :ids")


@dataclass(frozen=True)
class Names:
    """The names of the ids a page's tag values hold: stores, brands, tiers by code."""

    stores: dict[str, str] = field(default_factory=dict)
    brands: dict[str, str] = field(default_factory=dict)
    tiers: dict[str, str] = field(default_factory=dict)


NO_NAMES = Names()


def tag_value(slug: str, value: str | None, lang: str, names: Names = NO_NAMES) -> str:
    """The value of tag `slug` as people read it in `lang`: a code by its label, an id by
    its name (when `names` holds it), anything else as it is; no value is "-"."""
    if slug in VALUELESS:
        return tr(VALUELESS[slug], lang) if value is None or value == "" else value
    if value is None or value == "":
        return "-"
    if slug in VALUE_SETS:
        key = f"tv.{VALUE_SETS[slug][0]}.{value}"
        return tr(key, lang) if key in STRINGS else value
    if slug == "auto.stage":
        return stage_label(value, lang)
    if slug == "auto.rfm":
        return label("segment", value, lang)
    if slug == "auto.preferred_channel":
        return channel_label(value, lang)
    if slug == "auto.multi_brand" and value.isdigit():
        return tr("tv.brands", lang, n=value)
    if slug == "auto.preferred_store":
        return names.stores.get(value, value)
    if slug == "auto.preferred_brand":
        return names.brands.get(value, value)
    if slug == "auto.tier":
        return _tiers(value, lang, names)
    return value


def _tiers(value: str, lang: str, names: Names) -> str:
    """`code`, or `brand:code` per brand joined by ',' (store_tags.tier), by their names."""
    shown = []
    for held in value.split(","):
        brand, _, code = held.rpartition(":")
        tier = tier_label(code, names.tiers)
        in_brand = names.brands.get(brand, brand)
        shown.append(tr("tv.tier_in", lang, brand=in_brand, tier=tier) if brand else tier)
    return tr("tv.joined", lang).join(shown)


def value_names(conn: Connection, group_id: str, held: Iterable[tuple[str, str | None]]) -> Names:
    """The names of the stores, brands and tiers the (slug, value) pairs shown name: at most
    one read of each kind, for the ids on the page only."""
    stores: set[str] = set()
    brands: set[str] = set()
    tiers = False
    for slug, value in held:
        if not value:
            continue
        if slug == "auto.preferred_store":
            stores.add(value)
        elif slug == "auto.preferred_brand":
            brands.add(value)
        elif slug == "auto.tier":
            tiers = True
            brands |= {h.rpartition(":")[0] for h in value.split(",") if ":" in h}

    def read(query: Sql, ids: set[str]) -> dict[str, str]:
        if not ids:
            return {}
        rows = conn.execute(query.clause_for(conn), {"g": group_id, "ids": sorted(ids)}).all()
        return {str(r[0]): str(r[1]) for r in rows}

    program = (
        conn.execute(TIER_PROGRAM.clause_for(conn), {"g": group_id}).first() if tiers else None
    )
    return Names(
        read(STORE_NAMES, stores),
        read(BRAND_NAMES, brands),
        tier_names(program.body if program is not None else None) if tiers else {},
    )


def tag_rule(definition: object, lang: str) -> str | None:
    """An automatic tag's rule in `lang` as its definition states it (`rule_zh`, `rule`);
    a definition stored before the Chinese rule existed gives the English one."""
    if not isinstance(definition, dict):
        return None
    said = (definition.get("rule_zh") if lang == "zh" else None) or definition.get("rule")
    return str(said) if said else None
